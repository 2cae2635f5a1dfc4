/* hotpatch: live processes patched and reverted under load.
 *
 * Victims (tests/fixtures/hotpatch/victim.c, libvictim.c) and fixes (fix_*.c)
 * are compiled here; the payloads are built by hand from the fix objects
 * (objcopy for the code, readelf -r for the relocations, nm for the base
 * addresses), the way elf/'s builder would. */
#include <CUnit/CUnit.h>
#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hotpatch/hotpatch.h"
#include "hotpatch/internal.h"
#include "tests/fixtures/hotpatch/coldprobe.h"
#include "tests/fixtures/hotpatch/payload.h"
#include "tests/fixtures/hotpatch/probe.h"
#include "tests/testlib.h"

static char *dir;          /* scratch: binaries, objects, probe files */
static char *exe, *lib;    /* victim PIE and its shared library */
/* the victim built with a cave (hotpatch/cave.c) of a chosen size: room for
 * a first fix's state and code / too small for any use */
static char *exe_cave, *exe_nocave;
/* the victim with plain_fn on a page of its own (ready_fn's is another) */
static char *exe_split;
#define CAVE_BIG   3008
#define CAVE_SMALL 64

/* dir/NAME: the victim with `want` bytes of cave (.text padded: victim.c) */
static char *victim_with_cave(const char *name, long want)
{
	long pad = test_cave_pad(exe, want);
	if (pad < 0)
		return NULL;
	char *path = base_strdupf("%s/%s", dir, name);
	if (test_sh("gcc -O2 -fPIE -pie -fno-ipa-icf -Wl,--build-id -DCAVE_PAD=%ld -o %s "
		    "tests/fixtures/hotpatch/victim.c -L%s -lvictim -Wl,-rpath,%s -lpthread", pad,
		    path, dir, dir) || test_cave_of(path) != want) {
		fprintf(stderr, "%s: cave %ld, wanted %ld\n", path, test_cave_of(path), want);
		free(path);
		return NULL;
	}
	return path;
}

#define FIX_CFLAGS "-O2 -fPIC -fno-asynchronous-unwind-tables -fno-stack-protector " \
		   "-fcf-protection=none"

static int suite_init(void)
{
	dir = test_scratch("hotpatch");
	if (!dir)
		return -1;
	const char *src = "tests/fixtures/hotpatch";
	exe = base_strdupf("%s/victim", dir);
	lib = base_strdupf("%s/libvictim.so", dir);
	if (test_sh("gcc -O2 -fPIC -shared -Wl,--build-id -o %s %s/libvictim.c", lib, src) ||
	    test_sh("gcc -O2 -fPIE -pie -fno-ipa-icf -Wl,--build-id -o %s %s/victim.c "
		    "-L%s -lvictim -Wl,-rpath,%s -lpthread", exe, src, dir, dir) ||
	    test_sh("gcc " FIX_CFLAGS " -c -o %s/fix_exe.o %s/fix_exe.c", dir, src) ||
	    test_sh("gcc " FIX_CFLAGS " -c -o %s/fix_lib.o %s/fix_lib.c", dir, src))
		return -1;
	/* the same exe with another build-id: a "different base" */
	if (test_sh("gcc -O2 -fPIE -pie -fno-ipa-icf -Wl,--build-id=0x1234 -o %s/victim-other "
		    "%s/victim.c -L%s -lvictim -Wl,-rpath,%s -lpthread", dir, src, dir, dir))
		return -1;
	exe_cave = victim_with_cave("victim-cave", CAVE_BIG);
	exe_nocave = victim_with_cave("victim-nocave", CAVE_SMALL);
	exe_split = base_strdupf("%s/victim-split", dir);
	if (test_sh("gcc -O2 -fPIE -pie -fno-ipa-icf -Wl,--build-id -DPLAIN_OWN_PAGE -o %s "
		    "%s/victim.c -L%s -lvictim -Wl,-rpath,%s -lpthread", exe_split, src, dir, dir))
		return -1;
	return exe_cave && exe_nocave ? 0 : -1;
}

static int suite_clean(void)
{
	test_rmrf(dir);
	free(dir);
	free(exe);
	free(lib);
	free(exe_cave);
	free(exe_nocave);
	free(exe_split);
	return 0;
}

/* ---- victims ----------------------------------------------------------- */

typedef struct Victim {
	pid_t pid;              /* 0: reaped by the test, victim_stop leaves it */
	struct probe *pr;
	TestVictim tv;
} Victim;

static bool victim_no_aslr;

static int victim_start(Victim *v, const char *bin, const char *mode, int n, int want_ready)
{
	char nbuf[16];
	snprintf(nbuf, sizeof(nbuf), "%d", n);
	const char *args[] = { mode, nbuf, NULL };
	int r = test_victim_start(&v->tv, dir, sizeof(struct probe), offsetof(struct probe, ready),
				  want_ready, 2000, victim_no_aslr ? TEST_VICTIM_NO_ASLR : 0, bin, args);
	v->pid = v->tv.pid;
	v->pr = v->tv.probe;
	return r;
}

static void victim_stop(Victim *v)
{
	v->tv.pid = v->pid;
	test_victim_stop(&v->tv);
}

/* Every spin thread completes a whole new loop iteration, then shows delta
 * for fn (and delta2 for fn2, if fn2 >= 0). */
static int wait_seen2(Victim *v, int nthreads, int fn, int delta, int fn2, int delta2)
{
	uint64_t snap[PROBE_THREADS];
	for (int t = 0; t < nthreads; t++)
		snap[t] = v->pr->iter[t];
	for (int t = 0; t < nthreads; t++)
		for (int i = 0; v->pr->iter[t] < snap[t] + 2; i++) {
			if (i > 200000)
				return -1;
			usleep(20);
		}
	for (int t = 0; t < nthreads; t++)
		if (v->pr->seen[t][fn] != delta || (fn2 >= 0 && v->pr->seen[t][fn2] != delta2))
			return -1;
	return 0;
}

static int wait_seen(Victim *v, int nthreads, int fn, int delta)
{
	return wait_seen2(v, nthreads, fn, delta, -1, 0);
}

static int mem_bytes(pid_t pid, const char *module, const char *fn, uint32_t pad, uint8_t *out,
		     size_t n)
{
	/* address = start of the module's offset-0 mapping + nm value - pad */
	char *o = test_sh_out("awk '$5!=0 && $3==\"00000000\" && $6==\"%s\"{print $1; exit}' "
			      "/proc/%d/maps", module, (int)pid);
	unsigned long long start = 0;
	uint64_t a;
	int ok = o && sscanf(o, "%llx", &start) == 1 && nm_lookup(module, fn, &a, NULL) == 0;
	free(o);
	if (!ok)
		return -1;
	char fn_mem[64];
	snprintf(fn_mem, sizeof(fn_mem), "/proc/%d/mem", (int)pid);
	int fd = open(fn_mem, O_RDONLY | O_CLOEXEC);
	ssize_t r = pread(fd, out, n, (off_t)(start + a - pad));
	close(fd);
	return r == (ssize_t)n ? 0 : -1;
}

static bool has_state_mapping(pid_t pid)
{
	return test_sh("grep -q memfd:svc-hotpatch /proc/%d/maps", (int)pid) == 0;
}

/* A state anywhere: a memfd mapping or the executable's cave. */
static bool has_state(pid_t pid)
{
	HpState *st = NULL;
	BaseErr e = { 0 };
	bool r = hp_list(pid, &st, &e) == 0 && st->addr != 0;
	hp_state_free(st);
	return r;
}

static const FixSpec SPEC_A[] = {
	{ "ready_fn", "fix_ready", ELF_ENTRY_PAD16, 14 },
	{ "plain_fn", "fix_plain", ELF_ENTRY_PLAIN, 0 },
};

/* ---- tests -------------------------------------------------------------- */

static ElfPayload *fix_bin(const char *bin, const char *id, const FixSpec *specs, size_t n,
			   const char *lineage)
{
	char *obj = base_strdupf("%s/fix_exe.o", dir);
	ElfPayload *p = payload_build(id, bin, obj, specs, n, lineage);
	free(obj);
	return p;
}

static ElfPayload *fix_exe(const char *id, const FixSpec *specs, size_t n, const char *lineage)
{
	return fix_bin(exe, id, specs, n, lineage);
}

static void test_1000_cycles_under_4_threads_switch_exactly(void)
{
	ElfPayload *p = fix_exe("FIX-A", SPEC_A, 2, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	Victim v;
	CU_ASSERT_EQUAL_FATAL(victim_start(&v, exe, "spin", 4, 5), 0);
	BaseErr e = { 0 };
	HpReport rep;
	int failures = 0;
	for (int i = 0; i < 1000 && !failures; i++) {
		int r = hp_apply(v.pid, p, NULL, &rep, &e);
		if (r < 0 || rep.noop || wait_seen2(&v, 4, FN_READY, 2000, FN_PLAIN, 3000) < 0) {
			fprintf(stderr, "apply %d: %d %s\n", i, r, e.msg);
			failures++;
		}
		r = hp_revert(v.pid, "FIX-A", NULL, &rep, &e);
		if (r < 0 || rep.noop || wait_seen2(&v, 4, FN_READY, 1000, FN_PLAIN, 1000) < 0) {
			fprintf(stderr, "revert %d: %d %s\n", i, r, e.msg);
			failures++;
		}
	}
	CU_ASSERT_EQUAL(failures, 0);
	CU_ASSERT_EQUAL(v.pr->bad, 0);
	CU_ASSERT_EQUAL(v.pr->eintr, 0);
	CU_ASSERT_EQUAL(waitpid(v.pid, NULL, WNOHANG), 0); /* still running */
	/* reverted: the original bytes are back */
	uint8_t now[16];
	CU_ASSERT_EQUAL(mem_bytes(v.pid, exe, "ready_fn", 14, now, 16), 0);
	CU_ASSERT_EQUAL(memcmp(now, p->redirects[0].expect, 16), 0);
	/* the code of the reverted fix was reused, not mapped 1,000 times */
	HpState *st = NULL;
	CU_ASSERT_EQUAL_FATAL(hp_list(v.pid, &st, &e), 0);
	CU_ASSERT_EQUAL(st->n_fixes, 1);
	CU_ASSERT_EQUAL(st->fixes[0].status, HP_FIX_REVERTED);
	hp_state_free(st);
	victim_stop(&v);
	elf_payload_free(p);
}

static void test_libc_symbol_and_list_state(void)
{
	static const FixSpec spec[] = { { "libc_fn", "fix_libc", ELF_ENTRY_PLAIN, 0 } };
	ElfPayload *p = fix_exe("FIX-C", spec, 1, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	Victim v;
	CU_ASSERT_EQUAL_FATAL(victim_start(&v, exe, "spin", 2, 3), 0);
	BaseErr e = { 0 };
	HpReport rep;
	CU_ASSERT_EQUAL(hp_apply(v.pid, p, NULL, &rep, &e), 0);
	CU_ASSERT_EQUAL(wait_seen(&v, 2, FN_LIBC, 5000), 0);
	CU_ASSERT(rep.threads >= 4);
	CU_ASSERT(rep.pause_ns > 0);
	CU_ASSERT(has_state(v.pid));
	HpState *st = NULL;
	CU_ASSERT_EQUAL_FATAL(hp_list(v.pid, &st, &e), 0);
	CU_ASSERT_EQUAL_FATAL(st->n_fixes, 1);
	CU_ASSERT_STRING_EQUAL(st->fixes[0].fix_id, "FIX-C");
	CU_ASSERT_EQUAL(st->fixes[0].status, HP_FIX_APPLIED);
	CU_ASSERT_EQUAL(st->fixes[0].blob, rep.blob);
	CU_ASSERT_EQUAL_FATAL(st->fixes[0].n_sites, 1);
	CU_ASSERT_EQUAL(memcmp(st->fixes[0].sites[0].orig, p->redirects[0].expect, 5), 0);
	CU_ASSERT_EQUAL(st->fixes[0].sites[0].redirect[0], 0xe9);
	hp_state_free(st);
	/* the same fix again: a no-op that does not even stop the process */
	CU_ASSERT_EQUAL(hp_apply(v.pid, p, NULL, &rep, &e), 0);
	CU_ASSERT(rep.noop);
	CU_ASSERT_EQUAL(rep.attempts, 0);
	CU_ASSERT_EQUAL(hp_revert(v.pid, "FIX-C", NULL, &rep, &e), 0);
	CU_ASSERT_EQUAL(wait_seen(&v, 2, FN_LIBC, 1000), 0);
	CU_ASSERT_EQUAL(hp_revert(v.pid, "FIX-C", NULL, &rep, &e), 0);
	CU_ASSERT(rep.noop);
	CU_ASSERT_EQUAL(hp_revert(v.pid, "FIX-NONE", NULL, &rep, &e), -ENOENT);
	CU_ASSERT_EQUAL(v.pr->bad, 0);
	victim_stop(&v);
	elf_payload_free(p);
}

/* Two libraries define one name (an allocator interposing libc's malloc is
 * the real case): a fix binds where the program binds, which is ld.so's
 * answer (dlsym RTLD_DEFAULT in the process), not the first in address
 * order (libraries are mapped top-down: the later-loaded one sits lower). */
static void test_symbols_bind_as_ld_so_binds(void)
{
	static const char a_c[] = "int dup_sym(int x) { return x + 1; }\n";
	static const char b_c[] = "int dup_sym(int x) { return x + 2; }\n"
				  "int only_b(int x) { return x; }\n";
	static const char main_c[] =
		"#define _GNU_SOURCE\n#include <dlfcn.h>\n#include <stdio.h>\n#include <unistd.h>\n"
		"int dup_sym(int);\nint only_b(int);\n"
		"int main(void) {\n"
		"\tprintf(\"%p %p %d\\n\", dlsym(RTLD_DEFAULT, \"dup_sym\"),\n"
		"\t       dlsym(RTLD_DEFAULT, \"only_b\"), dup_sym(0) + only_b(0));\n"
		"\tfflush(stdout);\n\tfor (;;)\n\t\tpause();\n}\n";
	char *d = base_strdupf("%s/dup", dir);
	char *fa = base_strdupf("%s/a.c", d), *fb = base_strdupf("%s/b.c", d);
	char *fm = base_strdupf("%s/main.c", d), *bin = base_strdupf("%s/main", d);
	CU_ASSERT_EQUAL_FATAL(mkdir(d, 0700), 0);
	CU_ASSERT_EQUAL_FATAL(test_write(fa, a_c, strlen(a_c)), 0);
	CU_ASSERT_EQUAL_FATAL(test_write(fb, b_c, strlen(b_c)), 0);
	CU_ASSERT_EQUAL_FATAL(test_write(fm, main_c, strlen(main_c)), 0);
	/* liba first on the command line: ld.so binds dup_sym to liba's */
	CU_ASSERT_EQUAL_FATAL(test_sh("cd %s && gcc -O2 -fPIC -shared -o liba.so a.c && "
				      "gcc -O2 -fPIC -shared -o libb.so b.c && "
				      "gcc -O2 -o main main.c -L. -la -lb -Wl,-rpath,%s -ldl",
				      d, d), 0);
	int fds[2];
	CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		execl(bin, bin, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	char line[128] = { 0 };
	ssize_t got = read(fds[0], line, sizeof(line) - 1);
	close(fds[0]);
	unsigned long long want_dup = 0, want_b = 0;
	int sum = -1;
	CU_ASSERT_FATAL(got > 0 && sscanf(line, "%llx %llx %d", &want_dup, &want_b, &sum) == 3);
	CU_ASSERT_EQUAL(sum, 1);   /* liba's dup_sym: the program's binding */
	int memfd = -1;
	CU_ASSERT_EQUAL_FATAL(hp_mem_open(pid, false, &memfd), 0);
	HpMaps m = { 0 };
	BaseErr e = { 0 };
	CU_ASSERT_EQUAL_FATAL(hp_maps_read(pid, &m, &e), 0);
	HpModule *mods = NULL;
	size_t n = 0;
	CU_ASSERT_EQUAL_FATAL(hp_modules_read(pid, memfd, &m, NULL, &mods, &n), 0);
	uint64_t a = 0, b = 0;
	CU_ASSERT_EQUAL(hp_symbol_resolve(memfd, pid, mods, n, "dup_sym", NULL, &a), 0);
	CU_ASSERT_EQUAL(hp_symbol_resolve(memfd, pid, mods, n, "only_b", NULL, &b), 0);
	CU_ASSERT_EQUAL(a, want_dup);
	CU_ASSERT_EQUAL(b, want_b);
	CU_ASSERT_EQUAL(hp_symbol_resolve(memfd, pid, mods, n, "no_such_symbol_anywhere", NULL, &a),
			-ENOENT);
	/* the same answers from the files (a many-process call), the second
	 * round from what the first kept */
	HpFleet *fl = hp_fleet_new();
	for (int round = 0; round < 2; round++) {
		a = b = 0;
		CU_ASSERT_EQUAL(hp_symbol_resolve(memfd, pid, mods, n, "dup_sym", fl, &a), 0);
		CU_ASSERT_EQUAL(hp_symbol_resolve(memfd, pid, mods, n, "only_b", fl, &b), 0);
		CU_ASSERT_EQUAL(a, want_dup);
		CU_ASSERT_EQUAL(b, want_b);
		CU_ASSERT_EQUAL(hp_symbol_resolve(memfd, pid, mods, n, "no_such_symbol_anywhere", fl,
						  &a), -ENOENT);
	}
	/* one module alone defines it: nothing is read from the process */
	b = 0;
	CU_ASSERT_EQUAL(hp_symbol_resolve(-1, pid, mods, n, "only_b", fl, &b), 0);
	CU_ASSERT_EQUAL(b, want_b);
	/* the first pages a many-process call takes from the files are the
	 * process's own (twice: read, then kept), and so are the modules they
	 * give: bias, build-id, cave, .dynamic */
	for (int round = 0; round < 2; round++) {
		HpPages pg = { 0 };
		CU_ASSERT_EQUAL_FATAL(hp_pages_read(pid, &m, fl, NULL, NULL, &pg), 0);
		CU_ASSERT(pg.n >= 4);   /* main, liba, libb, libc, ld.so: offset 0, readable */
		for (size_t i = 0; i < pg.n; i++) {
			uint8_t mem[4096];
			CU_ASSERT_FATAL(pg.v[i].ok);
			CU_ASSERT_EQUAL_FATAL(hp_mem_read(memfd, pg.v[i].at, mem, sizeof(mem)), 0);
			CU_ASSERT(memcmp(mem, pg.v[i].b, sizeof(mem)) == 0);
			uintptr_t b = (uintptr_t)pg.v[i].b, own = (uintptr_t)pg.own;
			CU_ASSERT(b < own || b >= own + pg.n * HP_PAGE1);   /* the file's page */
		}
		HpModule *fm2 = NULL;
		size_t n2 = 0;
		CU_ASSERT_EQUAL_FATAL(hp_modules_read(pid, -1, &m, &pg, &fm2, &n2), 0);
		CU_ASSERT_EQUAL_FATAL(n2, n);
		for (size_t i = 0; i < n; i++) {
			CU_ASSERT_EQUAL(fm2[i].bias, mods[i].bias);
			CU_ASSERT_EQUAL(fm2[i].cave, mods[i].cave);
			CU_ASSERT_EQUAL(fm2[i].dynamic, mods[i].dynamic);
			CU_ASSERT(fm2[i].build_id_len == mods[i].build_id_len &&
				  memcmp(fm2[i].build_id, mods[i].build_id, mods[i].build_id_len) == 0);
		}
		free(fm2);
		hp_pages_free(&pg);
	}
	hp_fleet_free(fl);
	free(mods);
	hp_maps_free(&m);
	close(memfd);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	free(fa);
	free(fb);
	free(fm);
	free(bin);
	free(d);
}

static void test_shared_library_pad16_and_rel32_pad(void)
{
	static const FixSpec spec[] = {
		{ "lib_ready", "fix_lib_ready", ELF_ENTRY_PAD16, 14 },
		{ "lib_rel32", "fix_lib_rel32", ELF_ENTRY_PAD_REL32, 5 },
	};
	char *obj = base_strdupf("%s/fix_lib.o", dir);
	ElfPayload *p = payload_build("FIX-L", lib, obj, spec, 2, NULL);
	free(obj);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	Victim v;
	CU_ASSERT_EQUAL_FATAL(victim_start(&v, exe, "spin", 4, 5), 0);
	BaseErr e = { 0 };
	HpReport rep;
	for (int i = 0; i < 50; i++) {
		CU_ASSERT_EQUAL_FATAL(hp_apply(v.pid, p, NULL, &rep, &e), 0);
		CU_ASSERT_EQUAL(wait_seen(&v, 4, FN_LIB_READY, 6000), 0);
		CU_ASSERT_EQUAL(wait_seen(&v, 4, FN_LIB_REL32, 7000), 0);
		CU_ASSERT_EQUAL(wait_seen(&v, 4, FN_READY, 1000), 0);
		CU_ASSERT_EQUAL_FATAL(hp_revert(v.pid, "FIX-L", NULL, &rep, &e), 0);
		CU_ASSERT_EQUAL(wait_seen(&v, 4, FN_LIB_READY, 1000), 0);
		CU_ASSERT_EQUAL(wait_seen(&v, 4, FN_LIB_REL32, 1000), 0);
	}
	uint8_t now[7];
	CU_ASSERT_EQUAL(mem_bytes(v.pid, lib, "lib_rel32", 5, now, 7), 0);
	CU_ASSERT_EQUAL(memcmp(now, p->redirects[1].expect, 7), 0);
	CU_ASSERT_EQUAL(v.pr->bad, 0);
	victim_stop(&v);
	elf_payload_free(p);
}

static void test_stacking_revert_order_and_lineage(void)
{
	static const FixSpec spec_b[] = { { "ready_fn", "fix2_ready", ELF_ENTRY_PAD16, 14 } };
	ElfPayload *a = fix_exe("FIX-A", SPEC_A, 2, NULL);
	ElfPayload *b = fix_exe("FIX-B", spec_b, 1, "FIX-A");
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	Victim v;
	CU_ASSERT_EQUAL_FATAL(victim_start(&v, exe, "spin", 4, 5), 0);
	BaseErr e = { 0 };
	HpReport rep;
	/* FIX-B needs FIX-A first: refused, nothing written */
	CU_ASSERT_EQUAL(hp_apply(v.pid, b, NULL, &rep, &e), -BASE_E_MISMATCH);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "FIX-A"));
	CU_ASSERT_EQUAL(wait_seen(&v, 4, FN_READY, 1000), 0);
	CU_ASSERT_EQUAL(hp_apply(v.pid, a, NULL, &rep, &e), 0);
	CU_ASSERT_EQUAL(wait_seen(&v, 4, FN_READY, 2000), 0);
	CU_ASSERT_EQUAL(hp_apply(v.pid, b, NULL, &rep, &e), 0);
	CU_ASSERT_EQUAL(wait_seen(&v, 4, FN_READY, 4000), 0);
	CU_ASSERT_EQUAL(wait_seen(&v, 4, FN_PLAIN, 3000), 0);
	/* reverse order only */
	base_err_clear(&e);
	CU_ASSERT_EQUAL(hp_revert(v.pid, "FIX-A", NULL, &rep, &e), -BASE_E_LOCKED);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "FIX-B"));
	CU_ASSERT_EQUAL(wait_seen(&v, 4, FN_READY, 4000), 0);
	/* reverting the second falls back to the first */
	CU_ASSERT_EQUAL(hp_revert(v.pid, "FIX-B", NULL, &rep, &e), 0);
	CU_ASSERT_EQUAL(wait_seen(&v, 4, FN_READY, 2000), 0);
	CU_ASSERT_EQUAL(hp_revert(v.pid, "FIX-A", NULL, &rep, &e), 0);
	CU_ASSERT_EQUAL(wait_seen(&v, 4, FN_READY, 1000), 0);
	CU_ASSERT_EQUAL(wait_seen(&v, 4, FN_PLAIN, 1000), 0);
	/* and up again, B on A */
	CU_ASSERT_EQUAL(hp_apply(v.pid, a, NULL, &rep, &e), 0);
	CU_ASSERT_EQUAL(hp_apply(v.pid, b, NULL, &rep, &e), 0);
	CU_ASSERT_EQUAL(wait_seen(&v, 4, FN_READY, 4000), 0);
	HpState *st = NULL;
	const char **ids = NULL;
	size_t n = 0;
	CU_ASSERT_EQUAL_FATAL(hp_list(v.pid, &st, &e), 0);
	CU_ASSERT_EQUAL_FATAL(hp_state_active(st, &ids, &n), 0);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_STRING_EQUAL(ids[0], "FIX-A");
	CU_ASSERT_STRING_EQUAL(ids[1], "FIX-B");
	free(ids);
	hp_state_free(st);
	CU_ASSERT_EQUAL(v.pr->bad, 0);
	victim_stop(&v);
	elf_payload_free(a);
	elf_payload_free(b);
}

static void test_thread_parked_in_entry_bytes_refused_with_tid(void)
{
	static const FixSpec spec[] = { { "parked_fn", "fix_plain", ELF_ENTRY_PLAIN, 0 } };
	ElfPayload *p = fix_exe("FIX-P", spec, 1, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	Victim v;
	CU_ASSERT_EQUAL_FATAL(victim_start(&v, exe, "parked", 0, 1), 0);
	for (int i = 0; i < 1000 && !v.pr->parked_tid; i++)
		usleep(1000);
	uint8_t before[5], after[5];
	CU_ASSERT_EQUAL(mem_bytes(v.pid, exe, "parked_fn", 0, before, 5), 0);
	HpOpts o = { .deadline_ms = 200 };
	BaseErr e = { 0 };
	HpReport rep;
	CU_ASSERT_EQUAL(hp_apply(v.pid, p, &o, &rep, &e), -BASE_E_UNSAFE);
	CU_ASSERT_EQUAL(rep.unsafe_tid, v.pr->parked_tid);
	char want[32];
	snprintf(want, sizeof(want), "thread %d", v.pr->parked_tid);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, want));
	CU_ASSERT(rep.attempts > 1);  /* it waited and retried */
	CU_ASSERT_EQUAL(mem_bytes(v.pid, exe, "parked_fn", 0, after, 5), 0);
	CU_ASSERT_EQUAL(memcmp(before, after, 5), 0);
	CU_ASSERT_EQUAL(memcmp(before, p->redirects[0].expect, 5), 0);
	CU_ASSERT_EQUAL(waitpid(v.pid, NULL, WNOHANG), 0);
	victim_stop(&v);
	elf_payload_free(p);
}

static void test_thread_one_byte_past_2_byte_entry_refused(void)
{
	static const FixSpec spec[] = { { "parked16_fn", "fix_plain", ELF_ENTRY_PAD16, 14 } };
	ElfPayload *p = fix_exe("FIX-P16", spec, 1, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	Victim v;
	CU_ASSERT_EQUAL_FATAL(victim_start(&v, exe, "parked16", 0, 1), 0);
	for (int i = 0; i < 1000 && !v.pr->parked_tid; i++)
		usleep(1000);
	HpOpts o = { .deadline_ms = 100 };
	BaseErr e = { 0 };
	HpReport rep;
	CU_ASSERT_EQUAL(hp_apply(v.pid, p, &o, &rep, &e), -BASE_E_UNSAFE);
	CU_ASSERT_EQUAL(rep.unsafe_tid, v.pr->parked_tid);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "parked16_fn"));
	uint8_t now[16];
	CU_ASSERT_EQUAL(mem_bytes(v.pid, exe, "parked16_fn", 14, now, 16), 0);
	CU_ASSERT_EQUAL(memcmp(now, p->redirects[0].expect, 16), 0);
	victim_stop(&v);
	elf_payload_free(p);
}

/* mode "stack": the thread blocked below stack_fn; "stackalt": blocked in
 * a signal handler on an alternate stack, where the words RSP is among
 * hold no such address (the walk finds it on the thread's own stack) */
static void return_address_case(const char *mode)
{
	static const FixSpec spec[] = { { "stack_fn", "fix_plain", ELF_ENTRY_PLAIN, 0 } };
	ElfPayload *p = fix_exe("FIX-S", spec, 1, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	Victim v;
	CU_ASSERT_EQUAL_FATAL(victim_start(&v, exe, mode, 0, 1), 0);
	for (int i = 0; i < 1000 && !v.pr->stack_tid; i++)
		usleep(1000);
	HpOpts o = { .deadline_ms = 100 };
	BaseErr e = { 0 };
	HpReport rep;
	CU_ASSERT_EQUAL(hp_apply(v.pid, p, &o, &rep, &e), -BASE_E_UNSAFE);
	CU_ASSERT_EQUAL(rep.unsafe_tid, v.pr->stack_tid);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "return address"));
	uint8_t now[5];
	CU_ASSERT_EQUAL(mem_bytes(v.pid, exe, "stack_fn", 0, now, 5), 0);
	CU_ASSERT_EQUAL(memcmp(now, p->redirects[0].expect, 5), 0);
	CU_ASSERT_FALSE(has_state(v.pid));
	CU_ASSERT_EQUAL(v.pr->eintr, 0);
	victim_stop(&v);
	elf_payload_free(p);
}

static void test_return_address_into_entry_bytes_refused(void)
{
	return_address_case("stack");
}

static void test_return_address_into_entry_bytes_below_alternate_stack_refused(void)
{
	return_address_case("stackalt");
}

/* An apply of p to pid (with o) is refused with `want`, the message
 * naming `says`; ready_fn's bytes in bin stay as they were and no state
 * appears.  The refusal's report into *rep. */
static void refused_untouched(pid_t pid, const char *bin, const ElfPayload *p, const HpOpts *o,
			      int want, const char *says, HpReport *rep)
{
	uint8_t before[16], after[16];
	CU_ASSERT_EQUAL(mem_bytes(pid, bin, "ready_fn", 14, before, 16), 0);
	BaseErr e = { 0 };
	CU_ASSERT_EQUAL(hp_apply(pid, p, o, rep, &e), want);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, says));
	CU_ASSERT_EQUAL(mem_bytes(pid, bin, "ready_fn", 14, after, 16), 0);
	CU_ASSERT_EQUAL(memcmp(before, after, 16), 0);
	CU_ASSERT_FALSE(has_state(pid));
}

static void test_wrong_build_id_refused_process_untouched(void)
{
	ElfPayload *p = fix_exe("FIX-A", SPEC_A, 2, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	char *other = base_strdupf("%s/victim-other", dir);
	Victim v;
	CU_ASSERT_EQUAL_FATAL(victim_start(&v, other, "spin", 2, 3), 0);
	HpReport rep;
	/* by build-id: no such module in the process */
	refused_untouched(v.pid, other, p, NULL, -BASE_E_MISMATCH, "build-id", &rep);
	/* naming the module: found, but its build-id differs */
	HpOpts o = { .module.path = other };
	refused_untouched(v.pid, other, p, &o, -BASE_E_MISMATCH, "has build-id 1234", &rep);
	CU_ASSERT_EQUAL(rep.attempts, 0);   /* refused before any stop */
	CU_ASSERT_EQUAL(wait_seen(&v, 2, FN_READY, 1000), 0);
	victim_stop(&v);
	free(other);
	elf_payload_free(p);
}

/* Another tracer holds the process (a debugger): the seize is refused,
 * the reason read from its status (TracerPid is not us), nothing written
 * where it runs; once that tracer is gone the same apply goes in. */
static void test_traced_by_another_refused_then_patched(void)
{
	ElfPayload *p = fix_exe("FIX-A", SPEC_A, 2, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	Victim v;
	CU_ASSERT_EQUAL_FATAL(victim_start(&v, exe, "spin", 2, 3), 0);
	int go[2];
	CU_ASSERT_EQUAL_FATAL(pipe(go), 0);
	pid_t tracer = fork();
	if (tracer == 0) {
		char c = ptrace(PTRACE_SEIZE, v.pid, 0, 0) == 0 ? 'y' : 'n';
		if (write(go[1], &c, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	char c = 0;
	CU_ASSERT_EQUAL_FATAL(read(go[0], &c, 1), 1);
	CU_ASSERT_EQUAL_FATAL(c, 'y');
	close(go[0]);
	close(go[1]);
	HpReport rep;
	refused_untouched(v.pid, exe, p, NULL, -EPERM, "cannot trace", &rep);
	kill(tracer, SIGKILL);   /* its tracee is detached as it dies */
	waitpid(tracer, NULL, 0);
	BaseErr e = { 0 };
	CU_ASSERT_EQUAL(hp_apply(v.pid, p, NULL, &rep, &e), 0);
	CU_ASSERT_EQUAL(wait_seen(&v, 2, FN_READY, 2000), 0);
	CU_ASSERT_EQUAL(v.pr->bad, 0);
	CU_ASSERT_EQUAL(waitpid(v.pid, NULL, WNOHANG), 0);
	victim_stop(&v);
	elf_payload_free(p);
}

static void test_forks_and_new_threads_while_patching(void)
{
	ElfPayload *p = fix_exe("FIX-A", SPEC_A, 2, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	Victim v;
	CU_ASSERT_EQUAL_FATAL(victim_start(&v, exe, "churn", 2, 5), 0);
	BaseErr e = { 0 };
	HpReport rep;
	int fails = 0;
	for (int i = 0; i < 100; i++) {
		if (hp_apply(v.pid, p, NULL, &rep, &e) < 0 || wait_seen(&v, 2, FN_READY, 2000) < 0)
			fails++;
		if (hp_revert(v.pid, "FIX-A", NULL, &rep, &e) < 0 ||
		    wait_seen(&v, 2, FN_READY, 1000) < 0)
			fails++;
	}
	if (fails)
		fprintf(stderr, "churn: %s (attempts %u)\n", e.msg, rep.attempts);
	CU_ASSERT_EQUAL(fails, 0);
	/* children forked while the fix is in see the new code */
	uint64_t fork_new = v.pr->fork_new;
	CU_ASSERT_EQUAL(hp_apply(v.pid, p, NULL, &rep, &e), 0);
	for (int i = 0; i < 3000 && v.pr->fork_new < fork_new + 3; i++)
		usleep(1000);
	CU_ASSERT(v.pr->fork_new >= fork_new + 3);
	CU_ASSERT(v.pr->clones > 0);
	CU_ASSERT_EQUAL(v.pr->fork_bad, 0);
	CU_ASSERT_EQUAL(v.pr->bad, 0);
	CU_ASSERT_EQUAL(waitpid(v.pid, NULL, WNOHANG), 0);
	victim_stop(&v);
	elf_payload_free(p);
}

static void test_process_exiting_while_patched(void)
{
	ElfPayload *p = fix_exe("FIX-A", SPEC_A, 2, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	for (int round = 0; round < 3; round++) {
		Victim v;
		CU_ASSERT_EQUAL_FATAL(victim_start(&v, exe, "exit", 150 + 40 * round, 5), 0);
		int gone = 0, other = 0;
		uint64_t t_end = base_now_ns() + 3000000000ull;
		while (!gone && base_now_ns() < t_end) {
			BaseErr e = { 0 };
			HpReport rep;
			int r = hp_apply(v.pid, p, NULL, &rep, &e);
			if (r == 0)
				r = hp_revert(v.pid, "FIX-A", NULL, &rep, &e);
			if (r == -BASE_E_GONE)
				gone = 1;
			else if (r < 0 && kill(v.pid, 0) == 0 && waitpid(v.pid, NULL, WNOHANG) == 0) {
				fprintf(stderr, "exiting: %d %s\n", r, e.msg);
				other++;
			}
			else if (r < 0)
				gone = 1;
		}
		CU_ASSERT(gone);
		CU_ASSERT_EQUAL(other, 0);
		int st = 0;
		pid_t w = waitpid(v.pid, &st, 0);
		/* exited normally (exit(0)), never killed by a stray trap */
		CU_ASSERT(w < 0 || (WIFEXITED(st) && WEXITSTATUS(st) == 0));
		v.pid = 0;
		victim_stop(&v);
	}
	elf_payload_free(p);
}

static void test_many_processes_scan_and_pool(void)
{
	ElfPayload *p = fix_exe("FIX-A", SPEC_A, 2, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	enum { N = 6 };
	Victim v[N];
	pid_t pids[N];
	for (int i = 0; i < N; i++) {
		CU_ASSERT_EQUAL_FATAL(victim_start(&v[i], exe, i % 2 ? "idle" : "spin",
						   i % 2 ? 2 : 1, i % 2 ? 1 : 2), 0);
		pids[i] = v[i].pid;
	}
	BaseErr e = { 0 };
	pid_t *found = NULL;
	size_t nf = 0;
	CU_ASSERT_EQUAL_FATAL(hp_scan(NULL, p->build_id, p->build_id_len, &found, &nf, &e), 0);
	int hits = 0;
	for (size_t k = 0; k < nf; k++)
		for (int i = 0; i < N; i++)
			hits += found[k] == pids[i];
	CU_ASSERT_EQUAL(hits, N);
	free(found);
	struct stat sb;
	CU_ASSERT_EQUAL(stat(exe, &sb), 0);
	HpModuleRef ref = { .by_inode = true, .dev = sb.st_dev, .ino = sb.st_ino };
	CU_ASSERT_EQUAL_FATAL(hp_scan(&ref, NULL, 0, &found, &nf, &e), 0);
	CU_ASSERT_EQUAL(nf, N);
	free(found);
	HpReport rep[N];
	CU_ASSERT_EQUAL(hp_apply_many(pids, N, 2, p, NULL, rep, &e), 0);
	/* the workers drop their per-pid locks in batches, and all of them
	 * by the time the call returns: another patcher may lock each now */
	int lk = open("/run/svc-hotpatch.lock", O_RDWR | O_CLOEXEC);
	for (int i = 0; lk >= 0 && i < N; i++) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = pids[i],
				    .l_len = 1 };
		CU_ASSERT_EQUAL(fcntl(lk, F_OFD_GETLK, &fl), 0);
		CU_ASSERT_EQUAL(fl.l_type, F_UNLCK);
	}
	CU_ASSERT(lk >= 0 || geteuid() != 0);   /* root's sessions made it */
	if (lk >= 0)
		close(lk);
	for (int i = 0; i < N; i++) {
		CU_ASSERT_EQUAL(rep[i].result, 0);
		if (rep[i].result < 0)
			fprintf(stderr, "pool: %s\n", rep[i].msg);
		CU_ASSERT_EQUAL(rep[i].pid, pids[i]);
		HpState *st = NULL;
		CU_ASSERT_EQUAL_FATAL(hp_list(pids[i], &st, &e), 0);
		CU_ASSERT_EQUAL(st->n_fixes, 1);
		hp_state_free(st);
		if (i % 2 == 0)
			CU_ASSERT_EQUAL(wait_seen(&v[i], 1, FN_READY, 2000), 0);
	}
	CU_ASSERT_EQUAL_FATAL(hp_scan_patched(&found, &nf, &e), 0);
	hits = 0;
	for (size_t k = 0; k < nf; k++)
		for (int i = 0; i < N; i++)
			hits += found[k] == pids[i];
	CU_ASSERT_EQUAL(hits, N);
	free(found);
	CU_ASSERT_EQUAL(hp_revert_many(pids, N, 2, "FIX-A", NULL, rep, &e), 0);
	/* a fix with a libc symbol through the pool: the call asks libc's
	 * file once (fleet.c) and every process runs the fix bound right */
	static const FixSpec spec_c[] = { { "libc_fn", "fix_libc", ELF_ENTRY_PLAIN, 0 } };
	ElfPayload *pc = fix_exe("FIX-C", spec_c, 1, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
	HpReport rc[N];
	CU_ASSERT_EQUAL(hp_apply_many(pids, N, 2, pc, NULL, rc, &e), 0);
	for (int i = 0; i < N; i += 2)
		CU_ASSERT_EQUAL(rc[i].result == 0 ? wait_seen(&v[i], 1, FN_LIBC, 5000) : -1, 0);
	CU_ASSERT_EQUAL(hp_revert_many(pids, N, 2, "FIX-C", NULL, rc, &e), 0);
	elf_payload_free(pc);
	for (int i = 0; i < N; i++) {
		CU_ASSERT_EQUAL(rep[i].result, 0);
		CU_ASSERT_EQUAL(rc[i].result, 0);
		if (i % 2 == 0) {
			CU_ASSERT_EQUAL(wait_seen(&v[i], 1, FN_READY, 1000), 0);
			CU_ASSERT_EQUAL(wait_seen(&v[i], 1, FN_LIBC, 1000), 0);
		}
		CU_ASSERT_EQUAL(v[i].pr->eintr, 0);
		CU_ASSERT_EQUAL(v[i].pr->bad, 0);
		victim_stop(&v[i]);
	}
	elf_payload_free(p);
}

/* Without ASLR the heap starts right after the executable and the libraries
 * are terabytes away: the only room within 2 GiB is below the executable. */
static void test_near_code_placed_without_aslr(void)
{
	ElfPayload *p = fix_exe("FIX-A", SPEC_A, 2, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	Victim v;
	victim_no_aslr = true;
	int r = victim_start(&v, exe, "spin", 2, 3);
	victim_no_aslr = false;
	CU_ASSERT_EQUAL_FATAL(r, 0);
	char *heap_follows = test_sh_out("awk 'prev && /\\[heap\\]/{split($1,a,\"-\"); "
					 "print (a[1]==prev)} {split($1,b,\"-\"); prev=b[2]}' "
					 "/proc/%d/maps", (int)v.pid);
	BaseErr e = { 0 };
	HpReport rep;
	CU_ASSERT_EQUAL(hp_apply(v.pid, p, NULL, &rep, &e), 0);
	CU_ASSERT_EQUAL(wait_seen2(&v, 2, FN_READY, 2000, FN_PLAIN, 3000), 0);
	CU_ASSERT(heap_follows && heap_follows[0] == '1');   /* the case meant */
	free(heap_follows);
	CU_ASSERT_EQUAL(v.pr->bad, 0);
	victim_stop(&v);
	elf_payload_free(p);
}

/* Do the windows of a payload's sites lie in one page?  (The load bias is
 * page-aligned: the file's addresses tell.) */
static bool sites_one_page(const ElfPayload *p)
{
	for (size_t i = 1; i < p->n_redirects; i++)
		if ((p->redirects[i].entry - p->redirects[i].pad) / 4096 !=
		    (p->redirects[0].entry - p->redirects[0].pad) / 4096)
			return false;
	return true;
}

/* The tool killed (SIGKILL) right after each step of apply and of revert:
 * the target runs on with every function old or new, and a later revert and
 * apply bring it to a clean state.  The sites of one page are one write:
 * killed after the first, both functions are new (one_page) or only the
 * first in address order, ready_fn (two pages). */
static void killed_walk(const char *bin, bool one_page)
{
	struct { const char *step; int ready, plain, rec; } steps[] = {
		{ "stopped", 1000, 1000, 0 }, { "mapped", 1000, 1000, 0 },
		{ "state", 1000, 1000, 0 }, { "settled", 1000, 1000, 0 },
		{ "recorded", 1000, 1000, HP_FIX_PENDING },
		{ "redirect", 2000, one_page ? 3000 : 1000, HP_FIX_PENDING },
		{ "committed", 2000, 3000, HP_FIX_APPLIED },
	};
	ElfPayload *p = fix_bin(bin, "FIX-A", SPEC_A, 2, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(sites_one_page(p), one_page);   /* the shape meant */
	for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
		Victim v;
		CU_ASSERT_EQUAL_FATAL(victim_start(&v, bin, "spin", 4, 5), 0);
		pid_t c = fork();
		if (c == 0) {
			setenv("HP_CRASH_AT", steps[k].step, 1);
			BaseErr e = { 0 };
			HpReport rep;
			hp_apply(v.pid, p, NULL, &rep, &e);
			_exit(0);
		}
		int st = 0;
		waitpid(c, &st, 0);
		CU_ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);   /* the step was reached */
		CU_ASSERT_EQUAL(wait_seen2(&v, 4, FN_READY, steps[k].ready, FN_PLAIN, steps[k].plain), 0);
		HpState *hs = NULL;
		BaseErr e = { 0 };
		CU_ASSERT_EQUAL_FATAL(hp_list(v.pid, &hs, &e), 0);
		CU_ASSERT_EQUAL(hs->n_fixes, steps[k].rec ? 1u : 0u);
		if (hs->n_fixes)
			CU_ASSERT_EQUAL((int)hs->fixes[0].status, steps[k].rec);
		hp_state_free(hs);
		HpReport rep;
		CU_ASSERT_EQUAL(hp_revert(v.pid, "FIX-A", NULL, &rep, &e), steps[k].rec ? 0 : -ENOENT);
		CU_ASSERT_EQUAL(wait_seen2(&v, 4, FN_READY, 1000, FN_PLAIN, 1000), 0);
		CU_ASSERT_EQUAL(hp_apply(v.pid, p, NULL, &rep, &e), 0);
		CU_ASSERT_EQUAL(wait_seen2(&v, 4, FN_READY, 2000, FN_PLAIN, 3000), 0);
		if (k + 1 == sizeof(steps) / sizeof(steps[0])) {
			/* and a revert killed after its first write (the last
			 * page first: plain_fn's, or the one of both) */
			c = fork();
			if (c == 0) {
				setenv("HP_CRASH_AT", "revert-site", 1);
				hp_revert(v.pid, "FIX-A", NULL, &rep, &e);
				_exit(0);
			}
			waitpid(c, &st, 0);
			CU_ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
			CU_ASSERT_EQUAL(wait_seen2(&v, 4, FN_READY, one_page ? 1000 : 2000, FN_PLAIN,
						   1000), 0);
			CU_ASSERT_EQUAL(hp_revert(v.pid, "FIX-A", NULL, &rep, &e), 0);
			CU_ASSERT_EQUAL(wait_seen2(&v, 4, FN_READY, 1000, FN_PLAIN, 1000), 0);
		}
		CU_ASSERT_EQUAL(v.pr->bad, 0);
		CU_ASSERT_EQUAL(v.pr->eintr, 0);
		CU_ASSERT_EQUAL(waitpid(v.pid, NULL, WNOHANG), 0);
		if (v.pr->bad || v.pr->eintr)
			fprintf(stderr, "step %s: bad %llu eintr %d\n", steps[k].step,
				(unsigned long long)v.pr->bad, v.pr->eintr);
		victim_stop(&v);
	}
	elf_payload_free(p);
}

/* A first fix whose state and code fit the executable's cave: no injected
 * run, no mapping; listed, reverted, applied again on the same code; found
 * by the scan for patched processes.  With a cave too small: one stub run
 * and the memfd state mapping, as before. */
static void test_first_fix_in_cave_no_injected_run(void)
{
	ElfPayload *p = fix_bin(exe_cave, "FIX-A", SPEC_A, 2, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	Victim v;
	CU_ASSERT_EQUAL_FATAL(victim_start(&v, exe_cave, "spin", 4, 5), 0);
	BaseErr e = { 0 };
	HpReport rep;
	CU_ASSERT_EQUAL_FATAL(hp_apply(v.pid, p, NULL, &rep, &e), 0);
	CU_ASSERT_EQUAL(wait_seen2(&v, 4, FN_READY, 2000, FN_PLAIN, 3000), 0);
	CU_ASSERT_EQUAL(rep.runs, 0);
	CU_ASSERT_EQUAL(rep.syscalls, 0);
	CU_ASSERT_FALSE(has_state_mapping(v.pid));
	HpState *st = NULL;
	CU_ASSERT_EQUAL_FATAL(hp_list(v.pid, &st, &e), 0);
	CU_ASSERT_EQUAL_FATAL(st->n_fixes, 1);
	CU_ASSERT_EQUAL(st->fixes[0].status, HP_FIX_APPLIED);
	/* the code after the state, in the last page of the executable's code */
	CU_ASSERT(st->fixes[0].blob > st->addr);
	CU_ASSERT_EQUAL(st->fixes[0].blob >> 12, st->addr >> 12);
	uint64_t blob = st->fixes[0].blob;
	hp_state_free(st);
	pid_t *found = NULL;
	size_t nf = 0, hits = 0;
	CU_ASSERT_EQUAL_FATAL(hp_scan_patched(&found, &nf, &e), 0);
	for (size_t k = 0; k < nf; k++)
		hits += found[k] == v.pid;
	free(found);
	CU_ASSERT_EQUAL(hits, 1);
	CU_ASSERT_EQUAL(hp_revert(v.pid, "FIX-A", NULL, &rep, &e), 0);
	CU_ASSERT_EQUAL(wait_seen2(&v, 4, FN_READY, 1000, FN_PLAIN, 1000), 0);
	CU_ASSERT_EQUAL(hp_apply(v.pid, p, NULL, &rep, &e), 0);
	CU_ASSERT(rep.blob_reused);
	CU_ASSERT_EQUAL(rep.blob, blob);
	CU_ASSERT_EQUAL(rep.runs, 0);
	CU_ASSERT_EQUAL(wait_seen2(&v, 4, FN_READY, 2000, FN_PLAIN, 3000), 0);
	CU_ASSERT_EQUAL(v.pr->bad, 0);
	CU_ASSERT_EQUAL(v.pr->eintr, 0);
	victim_stop(&v);
	elf_payload_free(p);

	p = fix_bin(exe_nocave, "FIX-A", SPEC_A, 2, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL_FATAL(victim_start(&v, exe_nocave, "spin", 4, 5), 0);
	CU_ASSERT_EQUAL_FATAL(hp_apply(v.pid, p, NULL, &rep, &e), 0);
	CU_ASSERT_EQUAL(wait_seen2(&v, 4, FN_READY, 2000, FN_PLAIN, 3000), 0);
	CU_ASSERT(rep.runs >= 1);
	CU_ASSERT(has_state_mapping(v.pid));
	CU_ASSERT_EQUAL(v.pr->bad, 0);
	victim_stop(&v);
	elf_payload_free(p);
}

/* A cave with room for the first fix only: the second fix's record moves
 * the state to a memfd mapping (records copied, header last, the cave's
 * copy cleared); both fixes listed and reverted in order. */
static void test_cave_state_full_moves_to_mapping(void)
{
	static const FixSpec spec_c[] = { { "libc_fn", "fix_libc", ELF_ENTRY_PLAIN, 0 } };
	ElfPayload *pa = fix_bin(exe_cave, "FIX-A", SPEC_A, 2, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pa);
	/* header 72 + one record of 2 sites (112 + 144 per site) + the code,
	 * and less than a second record (112 + 144) spare */
	long want = 72 + 112 + 2 * 144 + (long)((pa->code_len + 15) & ~15ull) + 64;
	want = (want + 15) & ~15l;
	elf_payload_free(pa);
	char *tight = victim_with_cave("victim-tight", want);
	CU_ASSERT_PTR_NOT_NULL_FATAL(tight);
	pa = fix_bin(tight, "FIX-A", SPEC_A, 2, NULL);
	ElfPayload *pc = fix_bin(tight, "FIX-C", spec_c, 1, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pa);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
	Victim v;
	CU_ASSERT_EQUAL_FATAL(victim_start(&v, tight, "spin", 2, 3), 0);
	BaseErr e = { 0 };
	HpReport rep;
	CU_ASSERT_EQUAL_FATAL(hp_apply(v.pid, pa, NULL, &rep, &e), 0);
	CU_ASSERT_EQUAL(rep.runs, 0);
	CU_ASSERT_FALSE(has_state_mapping(v.pid));
	HpState *st = NULL;
	CU_ASSERT_EQUAL_FATAL(hp_list(v.pid, &st, &e), 0);
	uint64_t cave_state = st->addr;
	hp_state_free(st);
	CU_ASSERT_EQUAL_FATAL(hp_apply(v.pid, pc, NULL, &rep, &e), 0);
	CU_ASSERT(rep.runs >= 1);
	CU_ASSERT(has_state_mapping(v.pid));
	CU_ASSERT_EQUAL(wait_seen(&v, 2, FN_LIBC, 5000), 0);
	CU_ASSERT_EQUAL(wait_seen2(&v, 2, FN_READY, 2000, FN_PLAIN, 3000), 0);
	CU_ASSERT_EQUAL_FATAL(hp_list(v.pid, &st, &e), 0);
	CU_ASSERT_NOT_EQUAL(st->addr, cave_state);
	CU_ASSERT_EQUAL_FATAL(st->n_fixes, 2);
	CU_ASSERT_STRING_EQUAL(st->fixes[0].fix_id, "FIX-A");
	CU_ASSERT_STRING_EQUAL(st->fixes[1].fix_id, "FIX-C");
	CU_ASSERT_EQUAL(st->fixes[0].status, HP_FIX_APPLIED);
	CU_ASSERT_EQUAL(st->fixes[1].status, HP_FIX_APPLIED);
	hp_state_free(st);
	/* the cave's copy no longer reads as a state */
	char magic[8] = { 0 };
	char fn[64];
	snprintf(fn, sizeof(fn), "/proc/%d/mem", (int)v.pid);
	int fd = open(fn, O_RDONLY | O_CLOEXEC);
	CU_ASSERT_EQUAL(pread(fd, magic, 8, (off_t)cave_state), 8);
	close(fd);
	CU_ASSERT_NOT_EQUAL(memcmp(magic, "SVCHPST1", 8), 0);
	CU_ASSERT_EQUAL(hp_revert(v.pid, "FIX-C", NULL, &rep, &e), 0);
	CU_ASSERT_EQUAL(hp_revert(v.pid, "FIX-A", NULL, &rep, &e), 0);
	CU_ASSERT_EQUAL(wait_seen(&v, 2, FN_LIBC, 1000), 0);
	CU_ASSERT_EQUAL(wait_seen2(&v, 2, FN_READY, 1000, FN_PLAIN, 1000), 0);
	CU_ASSERT_EQUAL(v.pr->bad, 0);
	victim_stop(&v);
	elf_payload_free(pa);
	elf_payload_free(pc);
	free(tight);
}

/* the walk with the first fix's state and code in the executable's cave
 * (no injected run), with a cave too small (one stub run, mappings), and
 * with the two sites in two pages (two writes) */
static void test_tool_killed_at_every_step(void)
{
	killed_walk(exe_cave, true);
	killed_walk(exe_nocave, true);
	killed_walk(exe_split, false);
}

static void test_corrupt_payload_rejected(void)
{
	ElfPayload *p = fix_exe("FIX-A", SPEC_A, 2, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	BaseErr e = { 0 };
	HpReport rep;
	p->redirects[0].expect_len = 9;   /* PAD16 must be 16 */
	CU_ASSERT_EQUAL(hp_apply(getpid(), p, NULL, &rep, &e), -BASE_E_CORRUPT);
	p->redirects[0].expect_len = 16;
	p->relocs[0].where = p->code_len - 2;
	base_err_clear(&e);
	CU_ASSERT_EQUAL(hp_apply(getpid(), p, NULL, &rep, &e), -BASE_E_CORRUPT);
	elf_payload_free(p);
}


/* ---- processes started from a coldpatch --------------------------------- */

#define COLD_CF "-O2 -fPIC -ffunction-sections -fdata-sections"

static char *cold_dir;                 /* dir/cold: objects, base/, fix1/ */
static char *cold_exe_base, *cold_exe_fix1;
static ElfPayload *cold_p1, *cold_p2;  /* FIX-C1 (v1 -> v2), FIX-C2 (v2 -> v3, on FIX-C1) */

static int cold_init(void)
{
	if (suite_init() < 0)
		return -1;
	const char *src = "tests/fixtures/hotpatch";
	cold_dir = base_strdupf("%s/cold", dir);
	cold_exe_base = base_strdupf("%s/base/coldvictim", cold_dir);
	cold_exe_fix1 = base_strdupf("%s/fix1/coldvictim", cold_dir);
	for (int v = 1; v <= 3; v++)
		if (test_sh("mkdir -p %s/base %s/fix1 && gcc " COLD_CF " -DCOLD_VERSION=%d -c "
			    "-o %s/cold%d.o %s/libcold.c", cold_dir, cold_dir, v, cold_dir, v, src))
			return -1;
	if (test_sh("gcc -shared -Wl,--build-id -o %s/base/libcold.so %s/cold1.o", cold_dir,
		    cold_dir))
		return -1;
	for (int k = 0; k < 2; k++)
		if (test_sh("gcc -O2 -fPIE -pie -o %s %s/coldvictim.c -L%s/base -lcold "
			    "-Wl,-rpath,%s/%s -lpthread", k ? cold_exe_fix1 : cold_exe_base, src,
			    cold_dir, cold_dir, k ? "fix1" : "base"))
			return -1;
	char *base = base_strdupf("%s/base/libcold.so", cold_dir);
	char *o1 = base_strdupf("%s/cold1.o", cold_dir), *o2 = base_strdupf("%s/cold2.o", cold_dir);
	char *o3 = base_strdupf("%s/cold3.o", cold_dir);
	ElfObjectPair pr1 = { o1, o2 }, pr2 = { o2, o3 };
	char *lin[] = { (char *)"FIX-C1" };
	BaseErr e = { 0 };
	size_t len = 0;
	uint8_t *b = (uint8_t *)test_read(base, &len);
	BaseBuf c = { 0 };
	int r = b ? 0 : -1;
	if (r == 0)
		r = elf_build_payload(base, &pr1, 1, "FIX-C1", NULL, 0, &cold_p1, &e);
	if (r == 0)
		r = elf_build_payload(base, &pr2, 1, "FIX-C2", lin, 1, &cold_p2, &e);
	if (r == 0)
		r = elf_coldpatch(b, len, cold_p1, &c, &e);
	char *out = base_strdupf("%s/fix1/libcold.so", cold_dir);
	if (r == 0)
		r = test_write(out, c.data, c.len);
	if (r < 0)
		fprintf(stderr, "cold fixture: %s\n", e.msg);
	base_buf_free(&c);
	free(b);
	free(out);
	free(base);
	free(o1);
	free(o2);
	free(o3);
	return r < 0 ? -1 : 0;
}

static int cold_clean(void)
{
	elf_payload_free(cold_p1);
	elf_payload_free(cold_p2);
	free(cold_exe_base);
	free(cold_exe_fix1);
	free(cold_dir);
	return suite_clean();
}

typedef struct ColdVictim {
	pid_t pid;
	struct coldprobe *pr;
	char *lib;                 /* the library file it maps */
	TestVictim tv;
} ColdVictim;

static int cold_start(ColdVictim *v, bool from_fix1, const char *mode)
{
	const char *args[] = { mode, NULL };
	int want = COLD_THREADS + (strcmp(mode, "stack") == 0);
	int r = test_victim_start(&v->tv, dir, sizeof(struct coldprobe),
				  offsetof(struct coldprobe, ready), want, 0, 0,
				  from_fix1 ? cold_exe_fix1 : cold_exe_base, args);
	v->pid = v->tv.pid;
	v->pr = v->tv.probe;
	v->lib = base_strdupf("%s/%s/libcold.so", cold_dir, from_fix1 ? "fix1" : "base");
	return r;
}

static void cold_stop(ColdVictim *v)
{
	v->tv.pid = v->pid;
	test_victim_stop(&v->tv);
	free(v->lib);
}

/* Every thread completes two more calls of each, then shows a, b, p. */
static int cold_seen(ColdVictim *v, int a, int b, int p)
{
	long snap[COLD_THREADS];
	for (int t = 0; t < COLD_THREADS; t++)
		snap[t] = v->pr->iter[t];
	for (int t = 0; t < COLD_THREADS; t++)
		for (int i = 0; v->pr->iter[t] < snap[t] + 2; i++) {
			if (i > 200000)
				return -1;
			usleep(20);
		}
	for (int t = 0; t < COLD_THREADS; t++)
		if (v->pr->a[t] != a || v->pr->b[t] != b || v->pr->p[t] != p)
			return -1;
	return 0;
}

/* The 16 bytes before cold_a's entry + 2 and the 5 of cold_plain. */
static int cold_bytes(ColdVictim *v, uint8_t a[16], uint8_t pl[5])
{
	return mem_bytes(v->pid, v->lib, "cold_a", 14, a, 16) |
	       mem_bytes(v->pid, v->lib, "cold_plain", 0, pl, 5);
}

/* What the process runs in lib, as "ID,ID", through hp_effective_state_in
 * with fleet's file facts (NULL: hp_effective's answer) */
static int effective_in(pid_t pid, const char *lib, HpFleet *fleet, char *out, size_t outsz)
{
	HpModuleRef m = { .path = lib };
	char **ids = NULL;
	size_t n = 0;
	HpState *st = NULL;
	BaseErr e = { 0 };
	int r = hp_effective_state_in(pid, &m, fleet, &ids, &n, &st, &e);
	if (r < 0)
		return r;
	out[0] = 0;
	for (size_t i = 0; i < n; i++)
		snprintf(out + strlen(out), outsz - strlen(out), "%s%s", i ? "," : "", ids[i]);
	free(ids);
	hp_state_free(st);
	return 0;
}

/* hp_effective, as "ID,ID" */
static int effective(pid_t pid, const char *lib, char *out, size_t outsz)
{
	return effective_in(pid, lib, NULL, out, outsz);
}

static void test_cold_second_fix_stacks_on_baked_first(void)
{
	ColdVictim v;
	CU_ASSERT_EQUAL_FATAL(cold_start(&v, true, "spin"), 0);
	CU_ASSERT_EQUAL(cold_seen(&v, 21, 8, 47), 0);
	uint8_t a0[16], p0[5], a1[16], p1[5];
	CU_ASSERT_EQUAL_FATAL(cold_bytes(&v, a0, p0), 0);
	/* the file's jump is there, not the base bytes */
	CU_ASSERT_NOT_EQUAL(memcmp(a0, cold_p2->redirects[0].expect, 16), 0);
	char eff[256];
	CU_ASSERT_EQUAL(effective(v.pid, v.lib, eff, sizeof(eff)), 0);
	CU_ASSERT_STRING_EQUAL(eff, "FIX-C1");
	BaseErr e = { 0 };
	HpReport rep;
	/* FIX-C1 is in the file already */
	CU_ASSERT_EQUAL(hp_apply(v.pid, cold_p1, NULL, &rep, &e), 0);
	CU_ASSERT_TRUE(rep.noop);
	for (int i = 0; i < 20; i++) {
		CU_ASSERT_EQUAL_FATAL(hp_apply(v.pid, cold_p2, NULL, &rep, &e), 0);
		CU_ASSERT_FALSE(rep.noop);
		CU_ASSERT_EQUAL(cold_seen(&v, 28, 9, 47), 0);
		if (i == 0) {
			CU_ASSERT_EQUAL(effective(v.pid, v.lib, eff, sizeof(eff)), 0);
			CU_ASSERT_STRING_EQUAL(eff, "FIX-C1,FIX-C2");
		}
		CU_ASSERT_EQUAL_FATAL(hp_revert(v.pid, "FIX-C2", NULL, &rep, &e), 0);
		CU_ASSERT_EQUAL(cold_seen(&v, 21, 8, 47), 0);
	}
	/* the coldpatch's jumps are back, byte for byte */
	CU_ASSERT_EQUAL(cold_bytes(&v, a1, p1), 0);
	CU_ASSERT_EQUAL(memcmp(a0, a1, 16), 0);
	CU_ASSERT_EQUAL(memcmp(p0, p1, 5), 0);
	CU_ASSERT_EQUAL(v.pr->bad, 0);
	CU_ASSERT_EQUAL(waitpid(v.pid, NULL, WNOHANG), 0);
	cold_stop(&v);
}

static void test_cold_unbake_then_apply_again(void)
{
	ColdVictim v;
	CU_ASSERT_EQUAL_FATAL(cold_start(&v, true, "spin"), 0);
	BaseErr e = { 0 };
	HpReport rep;
	char eff[256];
	uint8_t a[16], pl[5];
	/* locked while FIX-C2 sits on top */
	CU_ASSERT_EQUAL_FATAL(hp_apply(v.pid, cold_p2, NULL, &rep, &e), 0);
	base_err_clear(&e);
	CU_ASSERT_EQUAL(hp_unbake(v.pid, cold_p1, NULL, &rep, &e), -BASE_E_LOCKED);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "FIX-C2"));
	CU_ASSERT_EQUAL(cold_seen(&v, 28, 9, 47), 0);
	CU_ASSERT_EQUAL_FATAL(hp_revert(v.pid, "FIX-C2", NULL, &rep, &e), 0);
	CU_ASSERT_EQUAL_FATAL(hp_unbake(v.pid, cold_p1, NULL, &rep, &e), 0);
	CU_ASSERT_FALSE(rep.noop);
	CU_ASSERT_EQUAL(cold_seen(&v, 14, 8, 48), 0);
	CU_ASSERT_EQUAL(cold_bytes(&v, a, pl), 0);
	CU_ASSERT_EQUAL(memcmp(a, cold_p1->redirects[0].expect, 16) == 0 ||
			memcmp(a, cold_p1->redirects[1].expect, 16) == 0, 1);
	CU_ASSERT_EQUAL(memcmp(pl, cold_p1->redirects[0].expect, 5) == 0 ||
			memcmp(pl, cold_p1->redirects[1].expect, 5) == 0, 1);
	CU_ASSERT_EQUAL(effective(v.pid, v.lib, eff, sizeof(eff)), 0);
	CU_ASSERT_STRING_EQUAL(eff, "");
	/* again: nothing to do; FIX-C2 now lacks its lineage */
	CU_ASSERT_EQUAL(hp_unbake(v.pid, cold_p1, NULL, &rep, &e), 0);
	CU_ASSERT_TRUE(rep.noop);
	base_err_clear(&e);
	CU_ASSERT_EQUAL(hp_apply(v.pid, cold_p2, NULL, &rep, &e), -BASE_E_MISMATCH);
	for (int i = 0; i < 10; i++) {
		/* FIX-C1 again, in memory this time */
		CU_ASSERT_EQUAL_FATAL(hp_apply(v.pid, cold_p1, NULL, &rep, &e), 0);
		CU_ASSERT_FALSE(rep.noop);
		CU_ASSERT_EQUAL(cold_seen(&v, 21, 8, 47), 0);
		CU_ASSERT_EQUAL(effective(v.pid, v.lib, eff, sizeof(eff)), 0);
		CU_ASSERT_STRING_EQUAL(eff, "FIX-C1");
		/* unbaked already: a no-op, it stays in memory */
		CU_ASSERT_EQUAL(hp_unbake(v.pid, cold_p1, NULL, &rep, &e), 0);
		CU_ASSERT_TRUE(rep.noop);
		/* and FIX-C2 on it, both ways */
		CU_ASSERT_EQUAL_FATAL(hp_apply(v.pid, cold_p2, NULL, &rep, &e), 0);
		CU_ASSERT_EQUAL(cold_seen(&v, 28, 9, 47), 0);
		CU_ASSERT_EQUAL_FATAL(hp_revert(v.pid, "FIX-C2", NULL, &rep, &e), 0);
		CU_ASSERT_EQUAL(cold_seen(&v, 21, 8, 47), 0);
		CU_ASSERT_EQUAL_FATAL(hp_revert(v.pid, "FIX-C1", NULL, &rep, &e), 0);
		/* out of memory and still unbaked: the base, not the file's jumps */
		CU_ASSERT_EQUAL(cold_seen(&v, 14, 8, 48), 0);
		CU_ASSERT_EQUAL(effective(v.pid, v.lib, eff, sizeof(eff)), 0);
		CU_ASSERT_STRING_EQUAL(eff, "");
	}
	HpState *st = NULL;
	const char **ids = NULL;
	size_t n = 0;
	CU_ASSERT_EQUAL_FATAL(hp_list(v.pid, &st, &e), 0);
	CU_ASSERT_EQUAL(hp_state_active(st, &ids, &n), 0);
	CU_ASSERT_EQUAL(n, 0);
	bool seen_baked = false;
	for (size_t i = 0; i < st->n_fixes; i++)
		if (st->fixes[i].baked) {
			seen_baked = true;
			CU_ASSERT_EQUAL(st->fixes[i].status, HP_FIX_REVERTED);
			CU_ASSERT_STRING_EQUAL(st->fixes[i].fix_id, "FIX-C1");
		}
	CU_ASSERT_TRUE(seen_baked);
	free(ids);
	hp_state_free(st);
	CU_ASSERT_EQUAL(v.pr->bad, 0);
	CU_ASSERT_EQUAL(waitpid(v.pid, NULL, WNOHANG), 0);
	cold_stop(&v);
}

/* One many-process call over a process of the coldpatch and one of the base
 * file (same build-id, other inode): what the call learns of one file's
 * lineage must not be taken for the other's.  The coldpatch's process first
 * (one worker): FIX-C2 stacks there; the base's process lacks FIX-C1 and is
 * refused, untouched. */
static void test_cold_fleet_tells_files_apart(void)
{
	ColdVictim vf, vb;
	CU_ASSERT_EQUAL_FATAL(cold_start(&vf, true, "spin"), 0);
	CU_ASSERT_EQUAL_FATAL(cold_start(&vb, false, "spin"), 0);
	uint8_t a0[16], p0[5], a1[16], p1[5];
	CU_ASSERT_EQUAL(cold_bytes(&vb, a0, p0), 0);
	pid_t pids[2] = { vf.pid, vb.pid };
	HpReport reps[2];
	BaseErr e = { 0 };
	CU_ASSERT_EQUAL(hp_apply_many(pids, 2, 1, cold_p2, NULL, reps, &e), 1);
	CU_ASSERT_EQUAL(reps[0].result, 0);
	CU_ASSERT_EQUAL(reps[1].result, -BASE_E_MISMATCH);
	CU_ASSERT_PTR_NOT_NULL(strstr(reps[1].msg, "FIX-C1"));
	CU_ASSERT_EQUAL(cold_seen(&vf, 28, 9, 47), 0);
	CU_ASSERT_EQUAL(cold_seen(&vb, 14, 8, 48), 0);
	CU_ASSERT_EQUAL(cold_bytes(&vb, a1, p1), 0);
	CU_ASSERT_EQUAL(memcmp(a0, a1, 16) | memcmp(p0, p1, 5), 0);
	CU_ASSERT_FALSE(has_state(vb.pid));
	/* and the other way round: the base's process first */
	HpReport rep;
	CU_ASSERT_EQUAL_FATAL(hp_revert(vf.pid, "FIX-C2", NULL, &rep, &e), 0);
	pids[0] = vb.pid;
	pids[1] = vf.pid;
	CU_ASSERT_EQUAL(hp_apply_many(pids, 2, 1, cold_p2, NULL, reps, &e), 1);
	CU_ASSERT_EQUAL(reps[0].result, -BASE_E_MISMATCH);
	CU_ASSERT_EQUAL(reps[1].result, 0);
	CU_ASSERT_EQUAL(cold_seen(&vf, 28, 9, 47), 0);
	CU_ASSERT_EQUAL(cold_seen(&vb, 14, 8, 48), 0);
	/* a status read-back's shared file facts (first pages, lineage) tell
	 * the two files apart as well, whichever is read first */
	for (int order = 0; order < 2; order++) {
		HpFleet *fl = hp_fleet_new();
		CU_ASSERT_PTR_NOT_NULL_FATAL(fl);
		for (int k = 0; k < 2; k++) {
			bool base = (k ^ order) != 0;
			ColdVictim *v = base ? &vb : &vf;
			char got[256], want[256];
			CU_ASSERT_EQUAL(effective_in(v->pid, v->lib, fl, got, sizeof(got)), 0);
			CU_ASSERT_EQUAL(effective(v->pid, v->lib, want, sizeof(want)), 0);
			CU_ASSERT_STRING_EQUAL(got, want);
			CU_ASSERT_STRING_EQUAL(got, base ? "" : "FIX-C1,FIX-C2");
		}
		hp_fleet_free(fl);
	}
	CU_ASSERT_EQUAL(vf.pr->bad | vb.pr->bad, 0);
	cold_stop(&vb);
	cold_stop(&vf);
}

static void test_cold_lineage_missing_refused_untouched(void)
{
	ColdVictim vb, vf;
	CU_ASSERT_EQUAL_FATAL(cold_start(&vb, false, "spin"), 0);
	CU_ASSERT_EQUAL_FATAL(cold_start(&vf, true, "spin"), 0);
	uint8_t a0[16], p0[5], a1[16], p1[5];
	BaseErr e = { 0 };
	HpReport rep;
	/* from the base: FIX-C2 needs FIX-C1 */
	CU_ASSERT_EQUAL(cold_bytes(&vb, a0, p0), 0);
	CU_ASSERT_EQUAL(hp_apply(vb.pid, cold_p2, NULL, &rep, &e), -BASE_E_MISMATCH);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "FIX-C1"));
	CU_ASSERT_EQUAL(cold_bytes(&vb, a1, p1), 0);
	CU_ASSERT_EQUAL(memcmp(a0, a1, 16) | memcmp(p0, p1, 5), 0);
	CU_ASSERT_FALSE(has_state(vb.pid));
	CU_ASSERT_EQUAL(cold_seen(&vb, 14, 8, 48), 0);
	/* not carried by the base file: nothing to unbake */
	CU_ASSERT_EQUAL(hp_unbake(vb.pid, cold_p1, NULL, &rep, &e), -ENOENT);
	/* from the coldpatch: a fix built on a lineage it lacks */
	ElfPayload *x = cold_p2;
	char *saved = x->lineage[0];
	x->lineage[0] = (char *)"FIX-C0";
	CU_ASSERT_EQUAL(cold_bytes(&vf, a0, p0), 0);
	base_err_clear(&e);
	CU_ASSERT_EQUAL(hp_apply(vf.pid, x, NULL, &rep, &e), -BASE_E_MISMATCH);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "[FIX-C1]"));
	x->lineage[0] = saved;
	CU_ASSERT_EQUAL(cold_bytes(&vf, a1, p1), 0);
	CU_ASSERT_EQUAL(memcmp(a0, a1, 16) | memcmp(p0, p1, 5), 0);
	CU_ASSERT_FALSE(has_state(vf.pid));
	CU_ASSERT_EQUAL(cold_seen(&vf, 21, 8, 47), 0);
	CU_ASSERT_EQUAL(vb.pr->bad + vf.pr->bad, 0);
	cold_stop(&vb);
	cold_stop(&vf);
}

static void test_cold_unbake_refused_while_thread_in_window(void)
{
	ColdVictim v;
	CU_ASSERT_EQUAL_FATAL(cold_start(&v, true, "stack"), 0);
	uint8_t a0[16], p0[5], a1[16], p1[5];
	CU_ASSERT_EQUAL(cold_bytes(&v, a0, p0), 0);
	HpOpts o = { .deadline_ms = 200 };
	BaseErr e = { 0 };
	HpReport rep;
	CU_ASSERT_EQUAL(hp_unbake(v.pid, cold_p1, &o, &rep, &e), -BASE_E_UNSAFE);
	CU_ASSERT_EQUAL(rep.unsafe_tid, v.pr->holder_tid);
	char want[32];
	snprintf(want, sizeof(want), "thread %d", v.pr->holder_tid);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, want));
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "cold_plain"));
	CU_ASSERT(rep.attempts > 1);
	CU_ASSERT_EQUAL(cold_bytes(&v, a1, p1), 0);
	CU_ASSERT_EQUAL(memcmp(a0, a1, 16) | memcmp(p0, p1, 5), 0);
	CU_ASSERT_FALSE(has_state(v.pid));
	CU_ASSERT_EQUAL(cold_seen(&v, 21, 8, 47), 0);
	CU_ASSERT_EQUAL(v.pr->bad, 0);
	CU_ASSERT_EQUAL(waitpid(v.pid, NULL, WNOHANG), 0);
	cold_stop(&v);
}

static void test_cold_unbake_many(void)
{
	ColdVictim v[3];
	pid_t pids[3];
	HpReport reps[3];
	BaseErr e = { 0 };
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL_FATAL(cold_start(&v[i], true, "spin"), 0);
		pids[i] = v[i].pid;
	}
	CU_ASSERT_EQUAL(hp_unbake_many(pids, 3, 2, cold_p1, NULL, reps, &e), 0);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(reps[i].result, 0);
		CU_ASSERT_EQUAL(cold_seen(&v[i], 14, 8, 48), 0);
		CU_ASSERT_EQUAL(v[i].pr->bad, 0);
		cold_stop(&v[i]);
	}
}

static void test_cold_unbake_killed_midway_finishes_on_rerun(void)
{
	static const char *steps[] = { "unbake-recorded", "unbake-site" };
	for (size_t k = 0; k < 2; k++) {
		ColdVictim v;
		CU_ASSERT_EQUAL_FATAL(cold_start(&v, true, "spin"), 0);
		pid_t c = fork();
		if (c == 0) {
			setenv("HP_CRASH_AT", steps[k], 1);
			BaseErr e = { 0 };
			HpReport rep;
			hp_unbake(v.pid, cold_p1, NULL, &rep, &e);
			_exit(0);
		}
		int st = 0;
		waitpid(c, &st, 0);
		CU_ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		/* each function is either FIX-1 or base, never torn; the
		 * sites of one page are one write (both base after it) */
		if (k == 0) {
			CU_ASSERT_EQUAL(cold_seen(&v, 21, 8, 47), 0);
		} else if (sites_one_page(cold_p1)) {
			CU_ASSERT_EQUAL(cold_seen(&v, 14, 8, 48), 0);
		} else {
			CU_ASSERT(cold_seen(&v, 14, 8, 47) == 0 || cold_seen(&v, 21, 8, 48) == 0);
		}
		char eff[256];
		CU_ASSERT_EQUAL(effective(v.pid, v.lib, eff, sizeof(eff)), 0);
		CU_ASSERT_STRING_EQUAL(eff, "FIX-C1");   /* a PENDING unbake: still in effect */
		BaseErr e = { 0 };
		HpReport rep;
		CU_ASSERT_EQUAL(hp_unbake(v.pid, cold_p1, NULL, &rep, &e), 0);
		CU_ASSERT_FALSE(rep.noop);
		CU_ASSERT_EQUAL(cold_seen(&v, 14, 8, 48), 0);
		CU_ASSERT_EQUAL(effective(v.pid, v.lib, eff, sizeof(eff)), 0);
		CU_ASSERT_STRING_EQUAL(eff, "");
		CU_ASSERT_EQUAL(v.pr->bad, 0);
		CU_ASSERT_EQUAL(waitpid(v.pid, NULL, WNOHANG), 0);
		cold_stop(&v);
	}
}

int test_register(void)
{
	CU_pSuite s = CU_add_suite("hotpatch", suite_init, suite_clean);
	if (!s)
		return -1;
	test_add(s, "1,000 apply/revert cycles under 4 threads switch exactly",
		    test_1000_cycles_under_4_threads_switch_exactly);
	test_add(s, "libc symbol fix applies; list reads the state back",
		    test_libc_symbol_and_list_state);
	test_add(s, "symbols bind as ld.so binds: two libraries define one name; "
		 "a call's file pages are the process's", test_symbols_bind_as_ld_so_binds);
	test_add(s, "shared library: 16,14 pad and rel32 pad",
		    test_shared_library_pad16_and_rel32_pad);
	test_add(s, "stacking falls back, reverse order, lineage checked",
		    test_stacking_revert_order_and_lineage);
	test_add(s, "thread parked in the entry bytes: refused naming it, bytes unchanged",
		    test_thread_parked_in_entry_bytes_refused_with_tid);
	test_add(s, "thread one byte past a 2-byte entry: refused",
	    test_thread_one_byte_past_2_byte_entry_refused);
	test_add(s, "return address into the entry bytes: refused",
		    test_return_address_into_entry_bytes_refused);
	test_add(s, "return address into the entry bytes, thread on an alternate signal stack: refused",
		    test_return_address_into_entry_bytes_below_alternate_stack_refused);
	test_add(s, "wrong build-id refused, process untouched",
		    test_wrong_build_id_refused_process_untouched);
	test_add(s, "traced by another tracer: refused by name, then patched once it is gone",
		 test_traced_by_another_refused_then_patched);
	test_add(s, "forks and new threads while patching",
		    test_forks_and_new_threads_while_patching);
	test_add(s, "process exiting while patched: gone, never stuck",
		    test_process_exiting_while_patched);
	test_add(s, "scan finds the processes, the pool patches them all (a libc symbol too)",
		    test_many_processes_scan_and_pool);
	test_add(s, "near code placed when the heap follows the executable (no ASLR)",
	    test_near_code_placed_without_aslr);
	test_add(s, "tool killed after every step: target runs on, recovers",
	    test_tool_killed_at_every_step);
	test_add(s, "first fix in the executable's cave: no injected run, no mapping",
	    test_first_fix_in_cave_no_injected_run);
	test_add(s, "cave state full: moves to a mapping, both fixes kept",
	    test_cave_state_full_moves_to_mapping);
	test_add(s, "malformed payload rejected before touching anything",
		    test_corrupt_payload_rejected);
	s = CU_add_suite("hotpatch-coldpatch", cold_init, cold_clean);
	if (!s)
		return -1;
	test_add(s, "started from FIX-1's coldpatch: FIX-2 stacks, reverts to the file's jumps",
	    test_cold_second_fix_stacks_on_baked_first);
	test_add(s, "unbake of the baked fix: base behaviour; applying it again: in memory",
	    test_cold_unbake_then_apply_again);
	test_add(s, "one call over the coldpatch's process and the base's: files told apart",
		 test_cold_fleet_tells_files_apart);
	test_add(s, "lineage the process lacks: refused, untouched",
	    test_cold_lineage_missing_refused_untouched);
	test_add(s, "unbake refused while a thread holds an address inside a window",
	    test_cold_unbake_refused_while_thread_in_window);
	test_add(s, "unbake many through the pool", test_cold_unbake_many);
	test_add(s, "unbake killed after recording / after one window: finishes on re-run",
	    test_cold_unbake_killed_midway_finishes_on_rerun);
	return 0;
}
