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
#include <stddef.h>
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
/* the victim with a big cave (a first fix goes in with no injected run) and
 * with one too small (the stub and mappings): tests/testlib.c test_cave_pad */
static char *exe_cave, *exe_nocave;

static char *variant(const char *name, long want)
{
	long pad = test_cave_pad(exe, want);
	char *path = base_strdupf("%s/%s", dir, name);
	if (pad < 0 ||
	    test_sh("gcc -O2 -fPIE -pie -Wl,--build-id -DCAVE_PAD=%ld -o %s "
		    "tests/fixtures/hotpatch/consvictim.c %s/serve_os.o %s/serve_o2.o -lpthread "
		    "-lseccomp", pad, path, dir, dir) || test_cave_of(path) != want) {
		free(path);
		return NULL;
	}
	return path;
}

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
		    "%s/serve_o2.o -lpthread -lseccomp", exe, src, dir, dir) ||
	    test_sh("gcc -O2 -fPIC -fno-asynchronous-unwind-tables -fcf-protection=none "
		    "-c -o %s %s/fix_cons.c", fixo, src))
		return -1;
	exe_cave = variant("consvictim-cave", 3008);
	exe_nocave = variant("consvictim-nocave", 64);
	return exe_cave && exe_nocave ? 0 : -1;
}

static int suite_clean(void)
{
	test_rmrf(dir);
	free(dir);
	free(exe);
	free(fixo);
	free(exe_cave);
	free(exe_nocave);
	return 0;
}

typedef struct Victim {
	pid_t pid;
	int n;
	struct consprobe *pr;
	TestVictim tv;
} Victim;

static int victim_start(Victim *v, const char *mode, int n)
{
	char nbuf[16];
	snprintf(nbuf, sizeof(nbuf), "%d", n);
	const char *args[] = { mode, nbuf, NULL };
	/* 20 ms more: every thread in its loop */
	int r = test_victim_start(&v->tv, dir, sizeof(struct consprobe),
				  offsetof(struct consprobe, ready), n, 20000, 0, exe, args);
	v->n = n;
	v->pid = v->tv.pid;
	v->pr = v->tv.probe;
	return r;
}

static void victim_stop(Victim *v)
{
	v->tv.pid = v->pid;
	test_victim_stop(&v->tv);
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

/* The end of a case: no result was ever neither old nor new, the victim
 * is alive; stopped, the payload freed. */
static void finish(Victim *v, ElfPayload *p)
{
	CU_ASSERT_EQUAL(v->pr->bad, 0);
	CU_ASSERT_EQUAL(waitpid(v->pid, NULL, WNOHANG), 0);
	victim_stop(v);
	elf_payload_free(p);
}

/* The padding trampoline (as elf/'s builder picks it when >= 5 bytes of
 * alignment fill precede a plain entry): PAD_REL32 with pad 5. */
static bool trampoline;

static ElfPayload *payload_for(const char *fn)
{
	const FixSpec spec[] = { { fn, "fix_cons", trampoline ? ELF_ENTRY_PAD_REL32 : ELF_ENTRY_PLAIN,
				   trampoline ? 5 : 0 } };
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
	/* the code went into the cave before the stop (with the lock held):
	 * nothing records it, and the next apply writes it again */
	HpState *hs = NULL;
	CU_ASSERT_EQUAL(hp_list(v.pid, &hs, &e), 0);
	CU_ASSERT(hs && hs->n_fixes == 0);
	hp_state_free(hs);
	v.pr->release = 1;
	CU_ASSERT_EQUAL(wait_seen(&v, 1000), 0);
	if (n == 1) {
		/* the thread now leaves the function between calls */
		o.deadline_ms = 5000;
		memset(&e, 0, sizeof(e));
		CU_ASSERT_EQUAL(hp_apply(v.pid, p, &o, &rep, &e), 0);
		CU_ASSERT_FALSE(rep.not_converged);
		CU_ASSERT_EQUAL(wait_seen(&v, 3000), 0);
		/* in the executable's cave: the path that writes code before the stop */
		BaseMaps m = { 0 };
		CU_ASSERT_EQUAL(base_proc_maps(v.pid, &m, &e), 0);
		const BaseMap *x = base_maps_find(&m, rep.blob);
		CU_ASSERT(x && strcmp(x->perms, "r-xp") == 0 && strstr(x->path, "consvictim"));
		base_maps_free(&m);
	}
	finish(&v, p);
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

static void test_padding_trampoline_window_2_bytes(void)
{
	/* without the trampoline, a loop head at +3 is in the 5-byte window */
	hazard_case("padhaz3", "padhaz3_fn", 1);
	trampoline = true;
	/* with it, a loop head at +1 still is (entry+1 is rewritten) */
	hazard_case("padhaz1", "padhaz1_fn", 1);
	trampoline = false;
}

static void stale_case(const char *mode, const char *fn, int n);

static void test_padding_trampoline_loop_at_3_redirected_not_converged(void)
{
	/* +3 is past the 2 rewritten bytes: safe to redirect while the
	 * thread loops on in the old body */
	trampoline = true;
	stale_case("padhaz3", "padhaz3_fn", 1);
	trampoline = false;
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
	/* found by complete stack walks (libunwind, loaded on first use), not
	 * by the word scan a walk that cannot run falls back to */
	CU_ASSERT_EQUAL(rep.scanned, 0);
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
	finish(&v, p);
}

static void test_never_returning_thread_not_converged_1_thread(void)
{
	stale_case("stay", "stay_fn", 1);
}

static void test_never_returning_thread_not_converged_8_threads(void)
{
	stale_case("stay", "stay_fn", 8);
}

/* The old frame on the main thread's stack (the stop reads that thread's
 * first stack words with the sites, in one read: site.c) */
static void test_never_returning_main_thread_not_converged(void)
{
	setenv("CONS_MAIN", "1", 1);
	stale_case("stay", "stay_fn", 1);
	unsetenv("CONS_MAIN");
}

/* Applied with a thread held in fn: patched, NOT converged, the thread and
 * fn named, found by a complete walk (by_walk) or by the stack words; once
 * released, the fix runs and hp_converge says converged. */
static void stale_then_converged(Victim *v, ElfPayload *p, const char *fn, bool by_walk)
{
	HpOpts o = { .deadline_ms = 300 };
	BaseErr e = { 0 };
	HpReport rep;
	CU_ASSERT_EQUAL(hp_apply(v->pid, p, &o, &rep, &e), 0);
	CU_ASSERT_TRUE(rep.not_converged);
	CU_ASSERT(by_walk ? rep.scanned == 0 : rep.scanned > 0);
	CU_ASSERT(is_victim_tid(v, rep.stale_tid));
	CU_ASSERT_STRING_EQUAL(rep.stale_fn, fn);
	v->pr->release = 1;
	CU_ASSERT_EQUAL(wait_seen(v, 3000), 0);   /* new calls: the fix */
	o.deadline_ms = 5000;
	CU_ASSERT_EQUAL(hp_converge(v->pid, &o, &rep, &e), 0);
	CU_ASSERT_FALSE(rep.not_converged);
	CU_ASSERT_EQUAL(v->pr->bad, 0);
}

/* A thread whose old frame lies above code without unwind info: the walk
 * cannot step out of that code but by a guess, which once ended the walk
 * early (a "complete" walk without the old frame: converged, untrue).  It
 * is not trusted now; the stack words decide (the word scan counted). */
/* stale_then_converged on a victim in mode, then on another with env=1
 * (CONS_MAIN: the same on the main thread) */
static void stale_twice(const char *mode, const char *fn, bool by_walk, const char *env)
{
	ElfPayload *p = payload_for(fn);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	for (int second = 0; second < 2; second++) {
		if (second)
			setenv(env, "1", 1);
		Victim v;
		int r = victim_start(&v, mode, 1);
		unsetenv(env);
		CU_ASSERT_EQUAL_FATAL(r, 0);
		stale_then_converged(&v, p, fn, by_walk);
		victim_stop(&v);
	}
	elf_payload_free(p);
}

static void test_old_frame_above_code_without_unwind_info_not_converged(void)
{
	stale_twice("nocfi", "outer_fn", false, "CONS_MAIN");
}

/* svc's own shape after the swap: the process runs a file since replaced
 * on disk (its maps say "(deleted)"), and a thread is in old code.  The
 * file's unwind info cannot be opened by its path; the walk used to guess
 * its way on, end "complete" early and call the thread converged.  The
 * table is read from the process's memory now: a complete walk finds the
 * thread (the word scan not needed). */
static void test_old_frame_in_a_replaced_file_not_converged(void)
{
	ElfPayload *p = payload_for("stay_fn");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	/* a copy of the victim of its own, replaced as svc's swap does: a new
	 * file renamed over its path */
	char *own = base_strdupf("%s-replaced", exe);
	CU_ASSERT_EQUAL_FATAL(test_sh("cp -p %s %s", exe, own), 0);
	char *shared = exe;
	exe = own;
	Victim v;
	int started = victim_start(&v, "stay", 1);
	exe = shared;
	CU_ASSERT_EQUAL_FATAL(started, 0);
	CU_ASSERT_EQUAL(test_sh("cp /usr/bin/true %s.new && mv -f %s.new %s && "
				"grep -q '%s (deleted)' /proc/%d/maps", own, own, own, own, (int)v.pid), 0);
	stale_then_converged(&v, p, "stay_fn", true);
	victim_stop(&v);
	free(own);
	elf_payload_free(p);
}

/* A thread's stack mapping split in two above RSP (a page of a frame
 * between given its own flags, as mlock of a stack buffer does): the word
 * scan reached the end of RSP's mapping, not of the stack, and once
 * called the thread converged with split_fn's frame above.  That mapping
 * is not the thread's own (its thread pointer is in the upper part, the
 * main thread's [stack] label too): walked, found. */
static void test_old_frame_above_a_split_stack_mapping_not_converged(void)
{
	stale_twice("split", "split_fn", true, "CONS_MAIN");
}

/* Thread 0 runs old code past the entry bytes (safe to redirect: at the
 * deadline, "not converged"); thread 1, listed after it, has a frame
 * returning into the entry bytes where its words are not read: on its own
 * stack below a handler on an alternate one (winalt), or 96 KiB above RSP,
 * past the scan (windeep).  The walk found that frame, counted it as old
 * code only, and once a thread was stale it was skipped: the redirect tore
 * the bytes thread 1 returns into, and the process crashed when released.
 * Refused now, naming thread 1; released, both run on. */
static void window_return_case(const char *mode, const char *env, const char *says)
{
	ElfPayload *p = payload_for("winret_fn");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	if (env)
		setenv(env, "1", 1);
	Victim v;
	int r = victim_start(&v, mode, 2);
	if (env)
		unsetenv(env);
	CU_ASSERT_EQUAL_FATAL(r, 0);
	uint8_t before[5], after[5];
	CU_ASSERT_EQUAL(entry_bytes(v.pid, "winret_fn", before), 0);
	HpOpts o = { .deadline_ms = 300 };
	BaseErr e = { 0 };
	HpReport rep;
	CU_ASSERT_EQUAL(hp_apply(v.pid, p, &o, &rep, &e), -BASE_E_UNSAFE);
	CU_ASSERT_EQUAL(rep.unsafe_tid, v.pr->tid[1]);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, says));
	CU_ASSERT_EQUAL(entry_bytes(v.pid, "winret_fn", after), 0);
	CU_ASSERT_EQUAL(memcmp(before, after, 5), 0);
	v.pr->release = 1;
	CU_ASSERT_EQUAL(wait_seen(&v, 1000), 0);
	finish(&v, p);
}

static void test_window_return_below_alternate_stack_after_a_stale_thread_refused(void)
{
	window_return_case("winalt", "CONS_ALTSTACK", "return address into winret_fn");
}

static void test_window_return_past_the_scan_refused(void)
{
	window_return_case("windeep", NULL, "return address into winret_fn");
}

/* Neither the words nor the walk reach thread 1's frame in winret_fn (the
 * walk stops at code without unwind info, the words 64 KiB above RSP):
 * nothing says it is not there, and winret_fn's own call returns inside
 * its entry bytes.  Refused; before, redirected, and the process crashed
 * when the thread returned. */
static void test_window_return_unseen_refused(void)
{
	window_return_case("winnocfi", NULL, "calls from its entry bytes (returning to entry+3)");
}

static void test_recursion_not_converged(void)
{
	stale_case("rec", "rec_fn", 1);
}

static void test_signal_handler_frame_not_converged(void)
{
	stale_case("sig", "sig_fn", 1);
}

/* The handler on an alternate signal stack: sig_fn's frame lies on the
 * thread's own stack, the thread's RSP on another mapping.  The walk
 * crosses the signal frame (complete: scanned 0). */
static void test_signal_handler_on_alternate_stack_not_converged(void)
{
	setenv("CONS_ALTSTACK", "1", 1);
	stale_case("sig", "sig_fn", 1);
	setenv("CONS_MAIN", "1", 1);   /* the main thread's own stack is [stack] */
	stale_case("sig", "sig_fn", 1);
	unsetenv("CONS_MAIN");
	unsetenv("CONS_ALTSTACK");
}

/* The same with the handler waiting in code without unwind info: the walk
 * is not trusted, and the words of the stack RSP is on (the alternate one)
 * hold no old frame: sig_fn's return address is on the other stack.  The
 * word scan reached the end of its mapping, which once counted as the
 * whole stack: converged, untrue. */
static void test_signal_handler_on_alternate_stack_no_unwind_info_not_converged(void)
{
	stale_twice("signocfi", "sig_fn", false, "CONS_ALTSTACK");
}

/* A target under a seccomp filter that kills (or EPERMs) every system call
 * the patcher injects: the filters are suspended for the session
 * (PTRACE_O_SUSPEND_SECCOMP, as root), so the patch goes in and the
 * process lives. */
/* One filtered target per placement: with a cave nothing runs in it at
 * all (the filter never sees a call of ours); without, the injected calls
 * run under the suspended filter. */
static void seccomp_one(const char *action, bool cave)
{
	bool mdwe = strcmp(action, "mdwe") == 0;
	if (mdwe)
		setenv("CONS_MDWE", "1", 1);
	else
		setenv("CONS_SECCOMP", action, 1);
	ElfPayload *p = payload_for("stay_fn");
	Victim v;
	int started = victim_start(&v, "stay", 1);
	unsetenv("CONS_SECCOMP");
	unsetenv("CONS_MDWE");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL_FATAL(started, 0);
	char *mode = test_sh_out("awk '/^Seccomp:/{print $2}' /proc/%d/status", (int)v.pid);
	CU_ASSERT(mode && mode[0] == (mdwe ? '0' : '2'));
	free(mode);
	v.pr->release = 1;
	CU_ASSERT_EQUAL(wait_seen(&v, 1000), 0);
	HpOpts o = { .deadline_ms = 3000 };
	BaseErr e = { 0 };
	HpReport rep;
	int r = hp_apply(v.pid, p, &o, &rep, &e);
	if (r < 0)
		fprintf(stderr, "seccomp %s: %s\n", action, e.msg);
	CU_ASSERT_EQUAL(r, 0);
	if (cave)
		CU_ASSERT_EQUAL(rep.syscalls, 0)
	else
		CU_ASSERT(rep.syscalls > 0);   /* it did inject, under the suspended filter */
	CU_ASSERT_EQUAL(wait_seen(&v, 3000), 0);
	CU_ASSERT_EQUAL(waitpid(v.pid, NULL, WNOHANG), 0);
	CU_ASSERT_EQUAL(v.pr->bad, 0);
	victim_stop(&v);
	elf_payload_free(p);
}

static void seccomp_case(const char *action)
{
	char *base = exe;
	exe = exe_cave;
	seccomp_one(action, true);
	exe = exe_nocave;
	seccomp_one(action, false);
	exe = base;
}

static void test_seccomp_kill_filter_suspended(void)
{
	seccomp_case("kill");
}

static void test_seccomp_eperm_filter_suspended(void)
{
	seccomp_case("eperm");
}

/* PR_SET_MDWE (this kernel has it): code is mapped R+X from the start and
 * written through /proc/PID/mem, never made writable, so it goes in. */
static void test_mdwe_target_patched(void)
{
	seccomp_case("mdwe");
}

/* 1,000 apply/revert cycles on a plain entry while 2 threads call it all the
 * time (each call waits in tick() inside it): every call gives the old or
 * the new result, and every reported state is true: not converged is
 * recorded in the state with a thread of the victim; converged (at once or
 * after hp_converge) is followed by the new result from every thread. */
static void test_1000_cycles_busy_threads_state_matches_behaviour(void)
{
	ElfPayload *p = payload_for("stay_fn");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	Victim v;
	CU_ASSERT_EQUAL_FATAL(victim_start(&v, "stay", 2), 0);
	v.pr->release = 1;
	CU_ASSERT_EQUAL_FATAL(wait_seen(&v, 1000), 0);
	HpOpts o = { .deadline_ms = 20 }, wait = { .deadline_ms = 5000 };
	BaseErr e = { 0 };
	HpReport rep;
	int failures = 0, stale = 0;
	for (int i = 0; i < 1000 && !failures; i++) {
		for (int revert = 0; revert < 2 && !failures; revert++) {
			int r = revert ? hp_revert(v.pid, "FIX-C", &o, &rep, &e)
				       : hp_apply(v.pid, p, &o, &rep, &e);
			HpState *st = NULL;
			if (r < 0 || rep.noop || hp_list(v.pid, &st, &e) < 0 || st->n_fixes != 1 ||
			    st->fixes[0].stale != rep.not_converged ||
			    (rep.not_converged && !is_victim_tid(&v, st->fixes[0].stale_tid))) {
				fprintf(stderr, "cycle %d/%d: %d %s\n", i, revert, r, e.msg);
				failures++;
			}
			hp_state_free(st);
			if (rep.not_converged) {
				stale++;
				if (hp_converge(v.pid, &wait, &rep, &e) < 0 || rep.not_converged)
					failures++;
			}
			if (wait_seen(&v, revert ? 1000 : 3000) < 0)
				failures++;
		}
	}
	fprintf(stderr, "(%d of 2,000 switches not converged at first) ", stale);
	CU_ASSERT_EQUAL(failures, 0);
	finish(&v, p);
}

/* Revert follows the same rules: a thread that stays in the fix's code
 * leaves the revert done (the entry holds the old bytes again) but NOT
 * converged, until it leaves. */
static void test_revert_with_thread_in_new_code_not_converged(void)
{
	const FixSpec spec[] = { { "stay_fn", "fix_cons_loop", ELF_ENTRY_PLAIN, 0 } };
	ElfPayload *p = payload_build("FIX-L", exe, fixo, spec, 1, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	Victim v;
	CU_ASSERT_EQUAL_FATAL(victim_start(&v, "stay", 1), 0);
	v.pr->release = 1;
	CU_ASSERT_EQUAL_FATAL(wait_seen(&v, 1000), 0);
	HpOpts o = { .deadline_ms = 5000 };
	BaseErr e = { 0 };
	HpReport rep;
	CU_ASSERT_EQUAL_FATAL(hp_apply(v.pid, p, &o, &rep, &e), 0);
	CU_ASSERT_FALSE(rep.not_converged);
	CU_ASSERT_EQUAL(wait_seen(&v, 3000), 0);
	v.pr->release = 0;   /* the next call stays in the new code */
	usleep(100000);
	o.deadline_ms = 300;
	CU_ASSERT_EQUAL(hp_revert(v.pid, "FIX-L", &o, &rep, &e), 0);
	CU_ASSERT_TRUE(rep.not_converged);
	CU_ASSERT_EQUAL(rep.stale_tid, v.pr->tid[0]);
	CU_ASSERT_STRING_EQUAL(rep.stale_fn, "stay_fn");
	HpState *st = NULL;
	CU_ASSERT_EQUAL_FATAL(hp_list(v.pid, &st, &e), 0);
	CU_ASSERT_EQUAL(st->fixes[0].status, HP_FIX_REVERTED);
	CU_ASSERT_TRUE(st->fixes[0].stale);
	hp_state_free(st);
	v.pr->release = 1;
	CU_ASSERT_EQUAL(wait_seen(&v, 1000), 0);   /* new calls: the old code again */
	o.deadline_ms = 5000;
	CU_ASSERT_EQUAL(hp_converge(v.pid, &o, &rep, &e), 0);
	CU_ASSERT_FALSE(rep.not_converged);
	CU_ASSERT_EQUAL_FATAL(hp_list(v.pid, &st, &e), 0);
	CU_ASSERT_FALSE(st->fixes[0].stale);
	hp_state_free(st);
	finish(&v, p);
}

/* Many processes, each with 2 threads that never leave the old function:
 * the pool finishes within its deadline budget and names every process as
 * not converged, with one of its own threads. */
static void test_many_processes_each_unconverged_named(void)
{
	enum { N = 12 };
	ElfPayload *p = payload_for("stay_fn");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	Victim v[N];
	pid_t pids[N];
	for (int i = 0; i < N; i++) {
		CU_ASSERT_EQUAL_FATAL(victim_start(&v[i], "stay", 2), 0);
		pids[i] = v[i].pid;
	}
	HpOpts o = { .deadline_ms = 300 };
	HpReport reps[N];
	BaseErr e = { 0 };
	uint64_t t0 = base_now_ns();
	CU_ASSERT_EQUAL(hp_apply_many(pids, N, 2, p, &o, reps, &e), 0);
	double secs = (double)(base_now_ns() - t0) / 1e9;
	/* 2 workers, N/2 deadlines each, plus the work: well under 2x that */
	CU_ASSERT(secs < 2.0 * (N / 2) * 0.3 + 2.0);
	for (int i = 0; i < N; i++) {
		CU_ASSERT_EQUAL(reps[i].pid, pids[i]);
		CU_ASSERT_EQUAL(reps[i].result, 0);
		CU_ASSERT_TRUE(reps[i].not_converged);
		CU_ASSERT(is_victim_tid(&v[i], reps[i].stale_tid));
		v[i].pr->release = 1;
	}
	for (int i = 0; i < N; i++) {
		CU_ASSERT_EQUAL(wait_seen(&v[i], 3000), 0);
		CU_ASSERT_EQUAL(v[i].pr->bad, 0);
		victim_stop(&v[i]);
	}
	elf_payload_free(p);
}

int test_register(void)
{
	CU_pSuite s = CU_add_suite("hotpatch-consistency", suite_init, suite_clean);
	if (!s)
		return -1;
	test_add(s, "loop head at entry+1..+4 (asm), thread inside: refused, named, untouched",
	    test_loop_head_in_window_refused_hand_written);
	test_add(s, "loop head in the window as gcc -Os / -O2 emit it: refused",
	    test_loop_head_in_window_refused_compiled);
	test_add(s, "8 threads in a window-hazardous loop: refused",
	    test_loop_head_in_window_refused_8_threads);
	test_add(s, "thread never returning (blocked in a syscall below): not converged, then converged",
	    test_never_returning_thread_not_converged_1_thread);
	test_add(s, "8 threads never returning: not converged, then converged",
	    test_never_returning_thread_not_converged_8_threads);
	test_add(s, "main thread never returning: not converged, then converged",
	    test_never_returning_main_thread_not_converged);
	test_add(s, "padding trampoline: 2-byte window; loop at +3 hazardous only without it",
	    test_padding_trampoline_window_2_bytes);
	test_add(s, "padding trampoline, loop head at +3, thread inside: redirected, not converged",
	    test_padding_trampoline_loop_at_3_redirected_not_converged);
	test_add(s, "recursion: old frames found, not converged", test_recursion_not_converged);
	test_add(s, "old frame above code without unwind info: walk not trusted, not converged",
	    test_old_frame_above_code_without_unwind_info_not_converged);
	test_add(s, "old frame in a file replaced on disk (after the swap): not converged",
	    test_old_frame_in_a_replaced_file_not_converged);
	test_add(s, "old frame above a split in the stack mapping: not converged",
	    test_old_frame_above_a_split_stack_mapping_not_converged);
	test_add(s, "a stale thread, then one returning into the entry bytes from another stack: refused",
	    test_window_return_below_alternate_stack_after_a_stale_thread_refused);
	test_add(s, "a return address into the entry bytes 96 KiB above RSP (past the scan): refused",
	    test_window_return_past_the_scan_refused);
	test_add(s, "the same beyond a frame without unwind info (seen by nothing): refused",
	    test_window_return_unseen_refused);
	test_add(s, "revert with a thread staying in the new code: done, not converged, then converged",
	    test_revert_with_thread_in_new_code_not_converged);
	test_add(s, "12 processes never converging: within the deadline, each pid named",
	    test_many_processes_each_unconverged_named);
	test_add(s, "1,000 apply/revert cycles, busy threads: results and reported state agree",
	    test_1000_cycles_busy_threads_state_matches_behaviour);
	test_add(s, "signal handler frame on top of the old function: not converged",
	    test_signal_handler_frame_not_converged);
	test_add(s, "signal handler on an alternate stack above the old function: not converged",
	    test_signal_handler_on_alternate_stack_not_converged);
	test_add(s, "the same, handler in code without unwind info (walk not trusted): not converged",
	    test_signal_handler_on_alternate_stack_no_unwind_info_not_converged);
	test_add(s, "seccomp KILL filter on everything injected: suspended, patched, alive",
	    test_seccomp_kill_filter_suspended);
	test_add(s, "seccomp EPERM filter on everything injected: suspended, patched",
	    test_seccomp_eperm_filter_suspended);
	test_add(s, "PR_SET_MDWE target: patched without a writable executable mapping",
	    test_mdwe_target_patched);
	return 0;
}
