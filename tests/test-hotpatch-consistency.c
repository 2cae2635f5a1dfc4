/* hotpatch consistency: threads that still run a replaced function.
 *
 * The victim (tests/fixtures/hotpatch/consvictim.c) keeps threads inside
 * functions that loop until the probe releases them: a loop head inside the
 * first 5 bytes (hand-written, and as gcc -Os / -O2 -falign-loops=1 emit a
 * serve loop) makes the function window-hazardous, which must be refused
 * while a thread is in it; a loop head further in lets the redirect go in,
 * and the process must then be reported NOT converged, naming the thread,
 * until hp_converge finds the threads gone. */
#include <CUnit/CUnit.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hotpatch/hotpatch.h"
#include "tests/fixtures/hotpatch/consprobe.h"
#include "tests/fixtures/hotpatch/payload.h"
#include "tests/testlib.h"

static char *dir, *exe, *fixo;

static int suite_init(void)
{
	dir = test_scratch("hpcons");
	if (!dir)
		return -1;
	const char *src = "tests/fixtures/hotpatch";
	exe = base_strdupf("%s/consvictim", dir);
	fixo = base_strdupf("%s/fix_cons.o", dir);
	if (test_sh("gcc -Os -fPIE -DNAME=serve_os -c -o %s/serve_os.o %s/consserve.c", dir, src) ||
	    test_sh("gcc -O2 -falign-loops=1 -fPIE -DNAME=serve_o2 -c -o %s/serve_o2.o "
		    "%s/consserve.c", dir, src) ||
	    test_sh("gcc -O2 -fPIE -pie -Wl,--build-id -o %s %s/consvictim.c %s/serve_os.o "
		    "%s/serve_o2.o -lpthread", exe, src, dir, dir) ||
	    test_sh("gcc -O2 -fPIC -fno-asynchronous-unwind-tables -fcf-protection=none "
		    "-c -o %s %s/fix_cons.c", fixo, src))
		return -1;
	return 0;
}

static int suite_clean(void)
{
	test_rmrf(dir);
	free(dir);
	free(exe);
	free(fixo);
	return 0;
}

typedef struct Victim {
	pid_t pid;
	int n;
	struct consprobe *pr;
	char *probe_path;
} Victim;

static int victim_start(Victim *v, const char *mode, int n)
{
	static int seq;
	memset(v, 0, sizeof(*v));
	v->n = n;
	v->probe_path = base_strdupf("%s/probe-%d", dir, seq++);
	int fd = open(v->probe_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, sizeof(struct consprobe)) < 0)
		return -1;
	v->pr = mmap(NULL, sizeof(struct consprobe), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	char nbuf[16];
	snprintf(nbuf, sizeof(nbuf), "%d", n);
	v->pid = fork();
	if (v->pid == 0) {
		execl(exe, exe, v->probe_path, mode, nbuf, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 5000 && v->pr->ready < n; i++)
		usleep(1000);
	usleep(20000);   /* every thread in its loop */
	if (v->pr->ready >= n)
		return 0;
	kill(v->pid, SIGKILL);
	waitpid(v->pid, NULL, 0);
	v->pid = 0;
	return -1;
}

static void victim_stop(Victim *v)
{
	if (v->pid > 0) {
		kill(v->pid, SIGKILL);
		waitpid(v->pid, NULL, 0);
	}
	munmap(v->pr, sizeof(struct consprobe));
	unlink(v->probe_path);
	free(v->probe_path);
}

static bool is_victim_tid(const Victim *v, pid_t tid)
{
	for (int t = 0; t < v->n; t++)
		if (v->pr->tid[t] == tid)
			return true;
	return false;
}

/* Every thread finished two more calls, the last one giving delta. */
static int wait_seen(Victim *v, int delta)
{
	unsigned long snap[CONS_THREADS];
	for (int t = 0; t < v->n; t++)
		snap[t] = v->pr->iter[t];
	for (int t = 0; t < v->n; t++)
		for (int i = 0; v->pr->iter[t] < snap[t] + 2; i++) {
			if (i > 20000)
				return -1;
			usleep(200);
		}
	for (int t = 0; t < v->n; t++)
		if (v->pr->seen[t] != delta)
			return -1;
	return 0;
}

static ElfPayload *payload_for(const char *fn)
{
	const FixSpec spec[] = { { fn, "fix_cons", ELF_ENTRY_PLAIN, 0 } };
	return payload_build("FIX-C", exe, fixo, spec, 1, NULL);
}

static int entry_bytes(pid_t pid, const char *fn, uint8_t out[5])
{
	char *o = test_sh_out("awk '$5!=0 && $3==\"00000000\" && $6==\"%s\"{print $1; exit}' "
			      "/proc/%d/maps", exe, (int)pid);
	unsigned long long start = 0;
	uint64_t a;
	int ok = o && sscanf(o, "%llx", &start) == 1 && nm_lookup(exe, fn, &a, NULL) == 0;
	free(o);
	if (!ok)
		return -1;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r = pread(fd, out, 5, (off_t)(start + a));
	close(fd);
	return r == 5 ? 0 : -1;
}

/* A function whose loop jumps back into its first 5 bytes, with n threads
 * in that loop: refused past the deadline, naming a thread and the
 * function; the bytes and the behaviour unchanged.  Released, with 1
 * thread: applied, converged, the new code runs. */
static void hazard_case(const char *mode, const char *fn, int n)
{
	ElfPayload *p = payload_for(fn);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	Victim v;
	CU_ASSERT_EQUAL_FATAL(victim_start(&v, mode, n), 0);
	uint8_t before[5], after[5];
	CU_ASSERT_EQUAL(entry_bytes(v.pid, fn, before), 0);
	HpOpts o = { .deadline_ms = 300 };
	BaseErr e = { 0 };
	HpReport rep;
	CU_ASSERT_EQUAL(hp_apply(v.pid, p, &o, &rep, &e), -BASE_E_UNSAFE);
	CU_ASSERT(is_victim_tid(&v, rep.unsafe_tid));
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, fn));
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "branches into its entry window"));
	if (!strstr(e.msg, "branches into"))
		fprintf(stderr, "%s: %s\n", mode, e.msg);
	CU_ASSERT_EQUAL(entry_bytes(v.pid, fn, after), 0);
	CU_ASSERT_EQUAL(memcmp(before, after, 5), 0);
	v.pr->release = 1;
	CU_ASSERT_EQUAL(wait_seen(&v, 1000), 0);
	if (n == 1) {
		/* the thread now leaves the function between calls */
		o.deadline_ms = 5000;
		memset(&e, 0, sizeof(e));
		CU_ASSERT_EQUAL(hp_apply(v.pid, p, &o, &rep, &e), 0);
		CU_ASSERT_FALSE(rep.not_converged);
		CU_ASSERT_EQUAL(wait_seen(&v, 3000), 0);
	}
	CU_ASSERT_EQUAL(v.pr->bad, 0);
	CU_ASSERT_EQUAL(waitpid(v.pid, NULL, WNOHANG), 0);
	victim_stop(&v);
	elf_payload_free(p);
}

static void test_loop_head_in_window_refused_hand_written(void)
{
	hazard_case("hazard1", "hazard1_fn", 1);
	hazard_case("hazard2", "hazard2_fn", 1);
	hazard_case("hazard3", "hazard3_fn", 1);
	hazard_case("hazard4", "hazard4_fn", 1);
}

static void test_loop_head_in_window_refused_compiled(void)
{
	hazard_case("serve_os", "serve_os", 1);
	hazard_case("serve_o2", "serve_o2", 1);
}

static void test_loop_head_in_window_refused_8_threads(void)
{
	hazard_case("hazard2", "hazard2_fn", 8);
	hazard_case("serve_o2", "serve_o2", 8);
}

/* Threads that stay in a function the redirect may safely replace: applied,
 * NOT converged (thread and function named, in the report and the state),
 * the old loop still runs; once they leave, hp_converge clears it. */
static void stale_case(const char *mode, const char *fn, int n)
{
	ElfPayload *p = payload_for(fn);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	Victim v;
	CU_ASSERT_EQUAL_FATAL(victim_start(&v, mode, n), 0);
	HpOpts o = { .deadline_ms = 300 };
	BaseErr e = { 0 };
	HpReport rep;
	CU_ASSERT_EQUAL(hp_apply(v.pid, p, &o, &rep, &e), 0);
	if (rep.result < 0)
		fprintf(stderr, "%s: %s\n", mode, e.msg);
	CU_ASSERT_TRUE(rep.not_converged);
	CU_ASSERT(is_victim_tid(&v, rep.stale_tid));
	CU_ASSERT_STRING_EQUAL(rep.stale_fn, fn);
	HpState *st = NULL;
	CU_ASSERT_EQUAL_FATAL(hp_list(v.pid, &st, &e), 0);
	CU_ASSERT_EQUAL_FATAL(st->n_fixes, 1);
	CU_ASSERT_TRUE(st->fixes[0].stale);
	CU_ASSERT(is_victim_tid(&v, st->fixes[0].stale_tid));
	CU_ASSERT_STRING_EQUAL(st->fixes[0].stale_fn, fn);
	hp_state_free(st);
	/* still there: the re-check says so again */
	CU_ASSERT_EQUAL(hp_converge(v.pid, &o, &rep, &e), 0);
	CU_ASSERT_TRUE(rep.not_converged);
	CU_ASSERT_EQUAL(v.pr->iter[0], 0);   /* no call has returned yet */
	v.pr->release = 1;
	CU_ASSERT_EQUAL(wait_seen(&v, 3000), 0);   /* new calls: the fix */
	o.deadline_ms = 5000;
	CU_ASSERT_EQUAL(hp_converge(v.pid, &o, &rep, &e), 0);
	CU_ASSERT_FALSE(rep.not_converged);
	CU_ASSERT_EQUAL_FATAL(hp_list(v.pid, &st, &e), 0);
	CU_ASSERT_FALSE(st->fixes[0].stale);
	hp_state_free(st);
	CU_ASSERT_EQUAL(hp_converge(v.pid, &o, &rep, &e), 0);
	CU_ASSERT_TRUE(rep.noop);
	CU_ASSERT_EQUAL(hp_revert(v.pid, "FIX-C", &o, &rep, &e), 0);
	CU_ASSERT_FALSE(rep.not_converged);
	CU_ASSERT_EQUAL(wait_seen(&v, 1000), 0);
	CU_ASSERT_EQUAL(v.pr->bad, 0);
	CU_ASSERT_EQUAL(waitpid(v.pid, NULL, WNOHANG), 0);
	victim_stop(&v);
	elf_payload_free(p);
}

static void test_never_returning_thread_not_converged_1_thread(void)
{
	stale_case("stay", "stay_fn", 1);
}

static void test_never_returning_thread_not_converged_8_threads(void)
{
	stale_case("stay", "stay_fn", 8);
}

static void test_recursion_not_converged(void)
{
	stale_case("rec", "rec_fn", 1);
}

static void test_signal_handler_frame_not_converged(void)
{
	stale_case("sig", "sig_fn", 1);
}

/* HP_TEST_ONLY=substring runs the matching tests only (while debugging). */
static void add(CU_pSuite s, const char *name, CU_TestFunc fn)
{
	const char *only = getenv("HP_TEST_ONLY");
	if (!only || strstr(name, only))
		CU_add_test(s, name, fn);
}

int test_register(void)
{
	CU_pSuite s = CU_add_suite("hotpatch-consistency", suite_init, suite_clean);
	if (!s)
		return -1;
	add(s, "loop head at entry+1..+4 (asm), thread inside: refused, named, untouched",
	    test_loop_head_in_window_refused_hand_written);
	add(s, "loop head in the window as gcc -Os / -O2 emit it: refused",
	    test_loop_head_in_window_refused_compiled);
	add(s, "8 threads in a window-hazardous loop: refused",
	    test_loop_head_in_window_refused_8_threads);
	add(s, "thread never returning (blocked in a syscall below): not converged, then converged",
	    test_never_returning_thread_not_converged_1_thread);
	add(s, "8 threads never returning: not converged, then converged",
	    test_never_returning_thread_not_converged_8_threads);
	add(s, "recursion: old frames found, not converged", test_recursion_not_converged);
	add(s, "signal handler frame on top of the old function: not converged",
	    test_signal_handler_frame_not_converged);
	return 0;
}
