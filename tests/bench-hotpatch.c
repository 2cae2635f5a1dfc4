/* bench-hotpatch: how long processes are paused, and how long a fleet takes.
 *
 * Build (from the repository root, after `make build/libhotpatch.a build/libbase.a`):
 *   gcc -O2 -std=c11 -D_GNU_SOURCE -I. -o build/bench-hotpatch tests/bench-hotpatch.c \
 *       tests/testlib.c build/libhotpatch.a build/libbase.a -lmbedcrypto -lz -lpthread
 * Run as root: build/bench-hotpatch [MAX_PROCS]   (default 1000)
 *
 * Every figure comes with a baseline measured in the same run on the same
 * processes: a bare PTRACE_SEIZE + INTERRUPT + wait + DETACH of every thread,
 * i.e. the floor any ptrace-based patcher pays.  Victims: the test victim
 * (tests/fixtures/hotpatch/victim.c) in "idle N" mode; payload: FIX-A (a 16,14
 * pad redirect and a plain 5-byte one, BASE relocations, mapped near). */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <limits.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hotpatch/hotpatch.h"
#include "svc/internal.h"
#include "tests/fixtures/hotpatch/payload.h"
#include "tests/fixtures/hotpatch/probe.h"

static char *dir, *exe, *exe_nocave, *probe_path;
static const char *victim;   /* the binary spawn() starts */
static struct probe *probe;
static int pong[2] = { -1, -1 };   /* the victims' answers to SIGUSR1 (wake_ns) */

/* The victim, rebuilt with the cave it should have (tests/testlib.c). */
static char *with_cave(const char *built, const char *name, long want)
{
	const char *src = "tests/fixtures/hotpatch";
	long pad = test_cave_pad(built, want);
	char *path = base_strdupf("%s/%s", dir, name);
	if (pad < 0 ||
	    test_sh("gcc -O2 -fPIE -pie -fno-ipa-icf -Wl,--build-id -DCAVE_PAD=%ld -o %s "
		    "%s/victim.c -L%s -lvictim -Wl,-rpath,%s -lpthread", pad, path, src, dir, dir) ||
	    test_cave_of(path) != want) {
		free(path);
		return NULL;
	}
	return path;
}

static int build(void)
{
	dir = test_scratch("hpbench");
	char *plain = base_strdupf("%s/victim-plain", dir);
	probe_path = base_strdupf("%s/probe", dir);
	const char *src = "tests/fixtures/hotpatch";
	if (test_sh("gcc -O2 -fPIC -shared -o %s/libvictim.so %s/libvictim.c", dir, src) ||
	    test_sh("gcc -O2 -fPIE -pie -fno-ipa-icf -Wl,--build-id -o %s %s/victim.c -L%s "
		    "-lvictim -Wl,-rpath,%s -lpthread", plain, src, dir, dir) ||
	    test_sh("gcc -O2 -fPIC -fno-asynchronous-unwind-tables -fno-stack-protector "
		    "-fcf-protection=none -c -o %s/fix_exe.o %s/fix_exe.c", dir, src))
		return -1;
	/* the main rows: a cave of 2,032 bytes, the median of Debian 12's
	 * /usr/bin and /usr/sbin executables (785 files: 77% have 1 KiB or
	 * more, 96% 160 bytes or more); one row without a cave */
	exe = with_cave(plain, "victim", 2032);
	exe_nocave = with_cave(plain, "victim-nocave", 64);
	free(plain);
	if (!exe || !exe_nocave)
		return -1;
	int fd = open(probe_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, sizeof(struct probe)) < 0)
		return -1;
	probe = mmap(NULL, sizeof(*probe), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return probe == MAP_FAILED || pipe2(pong, O_CLOEXEC) < 0 ? -1 : 0;
}

static pid_t *spawn(size_t n, int threads)
{
	pid_t *pids = calloc(n, sizeof(pid_t));
	int base = probe->started;
	char nbuf[16];
	snprintf(nbuf, sizeof(nbuf), "%d", threads);
	for (size_t i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);   /* never outlive the bench */
			if (dup2(pong[1], 200) < 0)   /* dup2 drops O_CLOEXEC */
				_exit(126);
			execl(victim, victim, probe_path, "idle", nbuf, "200", (char *)NULL);
			_exit(127);
		}
	}
	for (int i = 0; i < 20000 && probe->started < base + (int)n; i++)
		usleep(1000);
	usleep(20000 + 50 * n);   /* let the extra threads reach their sleep */
	return pids;
}

/* The platform's own cost of running a process that has not run for a
 * while, without ptrace: one signal round trip to each of n idle victims
 * in turn (SIGUSR1, answered by one byte from the victim's handler).  Total
 * ns, or 0 if a victim did not answer within a second. */
static uint64_t wake_ns(const pid_t *pids, size_t n)
{
	uint64_t t0 = base_now_ns();
	for (size_t i = 0; i < n; i++) {
		char c;
		struct pollfd pf = { .fd = pong[0], .events = POLLIN };
		if (kill(pids[i], SIGUSR1) < 0 || poll(&pf, 1, 1000) != 1 || read(pong[0], &c, 1) != 1)
			return 0;
	}
	return base_now_ns() - t0;
}

static void reap(pid_t *pids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	for (size_t i = 0; i < n; i++)
		waitpid(pids[i], NULL, 0);
	free(pids);
}

/* ---- BENCH_OPS: what each operation of an apply costs ------------------- */

/* The system calls an apply makes on one process, each timed alone against
 * idle victims, next to the bare stop cycle of the same run: where the time
 * of a fleet goes, operation by operation.  Warm (ops_table: 2,000 times on
 * one victim) or cold (ops_cold: once on each of n victims in turn). */
enum { N_OPS = 11, OP_PWRITE = 7, OP_BARE = 9 };
static const char *op_names[N_OPS] = {
	"null system call (getppid)", "open+read+close /proc/PID/maps",
	"open+close /proc/PID/mem", "stat /proc/PID/exe", "open+getdents+close task",
	"process_vm_readv 40 bytes (sites)", "process_vm_readv 11000 bytes (stack)",
	NULL /* op 7: said by each table */, "fcntl OFD lock",
	"bare stop: seize+interrupt+wait+detach", "the same + GETREGS",
};

/* the bytes the victims hold at text + 64: what op 7 writes back */
static uint8_t op_orig[4];

static void op_once(int what, pid_t pid, int memfd, uint64_t text, uint64_t stack, int lockfd)
{
	char fn[64], buf[16384];
	int fd, st;
	struct iovec lo = { buf, 40 }, re = { (void *)(uintptr_t)text, 40 };
	struct iovec los = { buf, 11000 }, res = { (void *)(uintptr_t)(stack - 11000), 11000 };
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = pid, .l_len = 1 };
	struct user_regs_struct rg;
	struct stat sb;
	switch (what) {
	case 0:
		(void)getppid();
		break;
	case 1:
		snprintf(fn, sizeof(fn), "/proc/%d/maps", (int)pid);
		fd = open(fn, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && read(fd, buf, sizeof(buf)) < 0)
			perror("maps");
		close(fd);
		break;
	case 2:
		snprintf(fn, sizeof(fn), "/proc/%d/mem", (int)pid);
		close(open(fn, O_RDWR | O_CLOEXEC));
		break;
	case 3:
		snprintf(fn, sizeof(fn), "/proc/%d/exe", (int)pid);
		(void)stat(fn, &sb);
		break;
	case 4:
		snprintf(fn, sizeof(fn), "/proc/%d/task", (int)pid);
		fd = open(fn, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		(void)syscall(SYS_getdents64, fd, buf, sizeof(buf));
		close(fd);
		break;
	case 5:
		(void)process_vm_readv(pid, &lo, 1, &re, 1, 0);
		break;
	case 6:
		(void)process_vm_readv(pid, &los, 1, &res, 1, 0);
		break;
	case 7:
		if (pwrite(memfd, op_orig, 4, (off_t)(text + 64)) != 4)
			perror("pwrite");
		break;
	case 8:
		(void)fcntl(lockfd, F_OFD_SETLK, &fl);
		break;
	case 9:
	case 10:
		ptrace(PTRACE_SEIZE, pid, 0, 0);
		ptrace(PTRACE_INTERRUPT, pid, 0, 0);
		waitpid(pid, &st, __WALL);
		if (what == 10)
			ptrace(PTRACE_GETREGS, pid, 0, &rg);
		ptrace(PTRACE_DETACH, pid, 0, 0);
		break;
	}
}

static double op_ns(int what, pid_t pid, int memfd, uint64_t text, uint64_t stack, int lockfd)
{
	enum { N = 2000 };
	uint64_t t0 = base_now_ns();
	for (int i = 0; i < N; i++)
		op_once(what, pid, memfd, text, stack, lockfd);
	return (double)(base_now_ns() - t0) / N;
}

/* The start of pid's victim text and the end of its stack; 0, or -1 said. */
static int victim_addrs(pid_t pid, uint64_t *ret_text, uint64_t *ret_stack)
{
	BaseMaps m;
	BaseErr e = { 0 };
	if (base_proc_maps(pid, &m, &e) < 0) {
		fprintf(stderr, "bench-hotpatch: %s\n", e.msg);
		return -1;
	}
	uint64_t text = 0, stack = 0;
	for (size_t i = 0; i < m.n; i++) {
		if (!text && m.v[i].perms[2] == 'x' && strcmp(m.v[i].path, victim) == 0)
			text = m.v[i].start;
		if (strcmp(m.v[i].path, "[stack]") == 0)
			stack = m.v[i].end;
	}
	base_maps_free(&m);
	*ret_text = text;
	*ret_stack = stack;
	if (text && stack)
		return 0;
	fprintf(stderr, "bench-hotpatch: pid %d: no victim text or stack\n", (int)pid);
	return -1;
}

static void ops_print(const char *title, const char *op7, const double *ns)
{
	printf("\n== %s (us, mean); ratio to the bare stop\n", title);
	for (int k = 0; k < N_OPS; k++)
		printf("%-40s %8.2f us  %5.2fx\n", k == OP_PWRITE ? op7 : op_names[k], ns[k] / 1e3,
		       ns[k] / ns[OP_BARE]);
}

/* BENCH_OPS=cold: each operation once per victim, over n victims in turn,
 * so that n - 1 other processes were touched since the target last was
 * (as in a fleet, where each process is visited once); mean per call. */
static int ops_cold(size_t n)
{
	pid_t *pids = spawn(n, 1);
	uint64_t *text = calloc(n, sizeof(uint64_t)), *stack = calloc(n, sizeof(uint64_t));
	for (size_t v = 0; v < n; v++) {
		if (victim_addrs(pids[v], &text[v], &stack[v]) < 0)
			return 1;
		struct iovec lo = { op_orig, 4 }, re = { (void *)(uintptr_t)(text[v] + 64), 4 };
		if (process_vm_readv(pids[v], &lo, 1, &re, 1, 0) != 4) {
			fprintf(stderr, "bench-hotpatch: cannot set up the operations victims\n");
			return 1;
		}
	}
	char lockp[PATH_MAX];
	snprintf(lockp, sizeof(lockp), "%s/lock", dir);
	int lockfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	double ns[N_OPS] = { 0 };
	for (int k = 0; k < N_OPS; k++) {
		uint64_t sum = 0;
		for (size_t v = 0; v < n; v++) {
			int memfd = -1;
			if (k == OP_PWRITE) {
				char fn[64];
				snprintf(fn, sizeof(fn), "/proc/%d/mem", (int)pids[v]);
				memfd = open(fn, O_RDWR | O_CLOEXEC);
			}
			uint64_t t0 = base_now_ns();
			op_once(k, pids[v], memfd, text[v], stack[v], lockfd);
			sum += base_now_ns() - t0;
			if (memfd >= 0)
				close(memfd);
		}
		ns[k] = (double)sum / (double)n;
	}
	char title[96];
	snprintf(title, sizeof(title), "one operation on each of %zu idle processes in turn", n);
	ops_print(title, "first pwrite 4 bytes into a text page", ns);
	close(lockfd);
	free(text);
	free(stack);
	reap(pids, n);
	return 0;
}

static int ops_table(void)
{
	pid_t *pids = spawn(1, 1);
	pid_t pid = pids[0];
	uint64_t text, stack;
	if (victim_addrs(pid, &text, &stack) < 0)
		return 1;
	char fn[64];
	snprintf(fn, sizeof(fn), "/proc/%d/mem", (int)pid);
	int memfd = open(fn, O_RDWR | O_CLOEXEC);
	char lockp[PATH_MAX];
	snprintf(lockp, sizeof(lockp), "%s/lock", dir);
	int lockfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (memfd < 0 || lockfd < 0 || pread(memfd, op_orig, 4, (off_t)(text + 64)) != 4 ||
	    pwrite(memfd, op_orig, 4, (off_t)(text + 64)) != 4) {   /* the page copied once, as an apply does */
		fprintf(stderr, "bench-hotpatch: cannot set up the operations victim\n");
		return 1;
	}
	double ns[N_OPS];
	for (int k = 0; k < N_OPS; k++)
		ns[k] = op_ns(k, pid, memfd, text, stack, lockfd);
	ops_print("one operation on one idle process, 2,000 times",
		  "pwrite 4 bytes, page copied already", ns);
	close(memfd);
	close(lockfd);
	reap(pids, 1);
	return 0;
}

/* ---- baseline: bare stop + detach -------------------------------------- */

static uint64_t bare_stop(pid_t pid)
{
	char fn[64];
	pid_t tids[64];
	int n = 0;
	snprintf(fn, sizeof(fn), "/proc/%d/task", (int)pid);
	DIR *d = opendir(fn);
	if (!d)
		return 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < 64)
		if (de->d_name[0] >= '0' && de->d_name[0] <= '9')
			tids[n++] = atoi(de->d_name);
	closedir(d);
	uint64_t t0 = base_now_ns();
	for (int i = 0; i < n; i++) {
		ptrace(PTRACE_SEIZE, tids[i], 0, (void *)(long)PTRACE_O_TRACECLONE);
		ptrace(PTRACE_INTERRUPT, tids[i], 0, 0);
	}
	for (int i = 0; i < n; i++) {
		int st;
		waitpid(tids[i], &st, __WALL);
	}
	for (int i = 0; i < n; i++)
		ptrace(PTRACE_DETACH, tids[i], 0, 0);
	return base_now_ns() - t0;
}

typedef struct BarePool {
	const pid_t *pids;
	size_t n;
	atomic_size_t next;
	uint64_t *pause;
} BarePool;

static void *bare_worker(void *arg)
{
	BarePool *b = arg;
	for (size_t i; (i = atomic_fetch_add(&b->next, 1)) < b->n;)
		b->pause[i] = bare_stop(b->pids[i]);
	return NULL;
}

static uint64_t bare_many(const pid_t *pids, size_t n, unsigned workers, uint64_t *pause)
{
	BarePool b = { .pids = pids, .n = n, .pause = pause };
	pthread_t th[16];
	uint64_t t0 = base_now_ns();
	for (unsigned i = 0; i < workers; i++)
		pthread_create(&th[i], NULL, bare_worker, &b);
	for (unsigned i = 0; i < workers; i++)
		pthread_join(th[i], NULL);
	return base_now_ns() - t0;
}

/* ---- figures ------------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void pctl(uint64_t *v, size_t n, double *med, double *p99)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	*med = v[n / 2] / 1e6;
	size_t k = (n * 99) / 100;
	*p99 = v[k < n ? k : n - 1] / 1e6;
}

/* p10 and p90 of v (already sorted by pctl) */
static void spread(const uint64_t *v, size_t n, double *p10, double *p90)
{
	*p10 = v[n / 10] / 1e6;
	*p90 = v[(n * 9) / 10 < n ? (n * 9) / 10 : n - 1] / 1e6;
}

/* Private memory of a process (smaps_rollup: Private_Clean + Private_Dirty), KiB. */
static long private_kib(pid_t pid)
{
	char fn[64], line[256];
	snprintf(fn, sizeof(fn), "/proc/%d/smaps_rollup", (int)pid);
	FILE *f = fopen(fn, "re");
	if (!f)
		return -1;
	long sum = 0, v;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Private_Clean: %ld kB", &v) == 1 ||
		    sscanf(line, "Private_Dirty: %ld kB", &v) == 1)
			sum += v;
	fclose(f);
	return sum;
}

static FILE *rows;   /* BENCH_ROWS: TSV rows for tests/bench.sh */

static void tsv(const char *key, const char *label, const char *unit, double med, double p10,
		double p90, double bmed, double bp10, double bp90, const char *goal)
{
	if (rows)
		fprintf(rows, "%s\t%s\t%s\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%s\n", key, label,
			unit, med, p10, p90, bmed, bp10, bp90, goal);
}

typedef struct Row {
	double fleet_ms, base_fleet_ms;
	double med, p99, base_med, base_p99;
	double p10, p90, base_p10, base_p90;
	double mem_kib, base_mem_kib;   /* private memory gained by a patched process;
					 * its private memory before */
	size_t failed;
	double phase[HP_PH_COUNT];   /* medians, ms */
	double runs;                 /* median round trips */
	double outside;              /* median ms of the call outside the stop */
	double wake_ms;              /* one signal round trip to each bare-side victim */
} Row;

/* Two sets of n processes started together, interleaved: the bare stop
 * takes one, svc the other.  Each process is stopped for the first time by
 * whichever measures it: a process's first stop costs 2-3x a later one
 * (/proc/PID dentries and inodes are made on first lookup; a /tmp harness
 * of 1,000 idle children: 0.20 ms first, 0.065 ms second), so measuring
 * both on the same processes would hand the second one a cheaper stop. */
static Row run(const ElfPayload *p, size_t n, int threads)
{
	Row row = { 0 };
	pid_t *all = spawn(2 * n, threads);
	pid_t *pids = calloc(n, sizeof(pid_t)), *bare = calloc(n, sizeof(pid_t));
	for (size_t i = 0; i < n; i++) {
		bare[i] = all[2 * i];
		pids[i] = all[2 * i + 1];
	}
	uint64_t *bp = calloc(n, sizeof(uint64_t)), *pp = calloc(n, sizeof(uint64_t));
	HpReport *rep = calloc(n, sizeof(HpReport));
	enum { MEM_SAMPLE = 8 };
	long before[MEM_SAMPLE];
	for (size_t i = 0; i < MEM_SAMPLE && i < n; i++)
		before[i] = private_kib(pids[i]);
	bool svc_first = getenv("BENCH_SVC_FIRST") != NULL;
	if (!svc_first)
		row.base_fleet_ms = bare_many(bare, n, 2, bp) / 1e6;
	BaseErr e = { 0 };
	uint64_t t0 = base_now_ns();
	int failed = hp_apply_many(pids, n, 2, p, NULL, rep, &e);
	row.fleet_ms = (base_now_ns() - t0) / 1e6;
	if (svc_first)
		row.base_fleet_ms = bare_many(bare, n, 2, bp) / 1e6;
	/* after both sides: each of these was last run n processes ago, as
	 * each process of a fleet is when its stop comes */
	row.wake_ms = wake_ns(bare, n) / 1e6;
	row.failed = failed < 0 ? n : (size_t)failed;
	uint64_t gain[MEM_SAMPLE], prior[MEM_SAMPLE];
	size_t ns = 0;
	for (size_t i = 0; i < MEM_SAMPLE && i < n; i++) {
		long after = private_kib(pids[i]);
		if (before[i] >= 0 && after >= before[i]) {
			gain[ns] = (uint64_t)(after - before[i]) * 1000000ull;
			prior[ns++] = (uint64_t)before[i] * 1000000ull;
		}
	}
	if (ns) {
		double ign;
		pctl(gain, ns, &row.mem_kib, &ign);
		pctl(prior, ns, &row.base_mem_kib, &ign);
	}
	for (size_t i = 0; i < n; i++) {
		pp[i] = rep[i].pause_ns;
		if (rep[i].result < 0 && row.failed <= 3)
			fprintf(stderr, "  pid %d: %s\n", (int)pids[i], rep[i].msg);
	}
	for (int ph = 0; ph < HP_PH_COUNT; ph++) {
		double ign;
		for (size_t i = 0; i < n; i++)
			pp[i] = rep[i].phase_ns[ph];
		pctl(pp, n, &row.phase[ph], &ign);
	}
	for (size_t i = 0; i < n; i++)
		pp[i] = rep[i].total_ns > rep[i].pause_ns ? rep[i].total_ns - rep[i].pause_ns : 0;
	pctl(pp, n, &row.outside, &(double){ 0 });
	for (size_t i = 0; i < n; i++)
		pp[i] = rep[i].runs * 1000000ull;
	pctl(pp, n, &row.runs, &(double){ 0 });
	for (size_t i = 0; i < n; i++)
		pp[i] = rep[i].pause_ns;
	pctl(pp, n, &row.med, &row.p99);
	spread(pp, n, &row.p10, &row.p90);
	pctl(bp, n, &row.base_med, &row.base_p99);
	spread(bp, n, &row.base_p10, &row.base_p90);
	free(bp);
	free(pp);
	free(rep);
	free(pids);
	free(bare);
	reap(all, 2 * n);
	return row;
}

static void print_pause(const char *what, Row r)
{
	printf("%-34s %8.3f %8.3f   %8.3f %8.3f   %5.2fx %5.2fx   %zu\n", what, r.med, r.p99,
	       r.base_med, r.base_p99, r.med / r.base_med, r.p99 / r.base_p99, r.failed);
	static const char *names[HP_PH_COUNT] = { "stop", "check", "safety", "map", "write",
						  "resume" };
	printf("  phases (median ms):");
	for (int ph = 0; ph < HP_PH_COUNT; ph++)
		printf(" %s %.3f", names[ph], r.phase[ph]);
	printf("; round trips %.0f; outside the stop %.3f\n", r.runs, r.outside);
}

static double median(double *v, int n)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
			double t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void print_fleet(const char *what, Row r)
{
	printf("%-34s %10.1f   %10.1f   %5.2fx   %zu   (wake each: %.1f)\n", what, r.fleet_ms,
	       r.base_fleet_ms, r.fleet_ms / r.base_fleet_ms, r.failed, r.wake_ms);
}

static double tv_ms(struct timeval t)
{
	return t.tv_sec * 1e3 + t.tv_usec / 1e3;
}

/* busy and idle jiffies of the whole machine (/proc/stat's cpu line) */
static void cpu_ticks(unsigned long long v[2])
{
	unsigned long long u = 0, n = 0, s = 0, id = 0, io = 0, irq = 0, sirq = 0;
	FILE *f = fopen("/proc/stat", "re");
	if (f && fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu", &u, &n, &s, &id, &io, &irq,
			&sirq) == 7) {
		v[0] = u + n + s + irq + sirq;
		v[1] = id + io;
	} else {
		v[0] = v[1] = 0;
	}
	if (f)
		fclose(f);
}

/* time the processes have run on a CPU, ns (schedstat's first field) */
static uint64_t run_ns(const pid_t *pids, size_t n)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++) {
		char fn[64];
		unsigned long long v = 0;
		snprintf(fn, sizeof(fn), "/proc/%d/schedstat", (int)pids[i]);
		FILE *f = fopen(fn, "re");
		if (f && fscanf(f, "%llu", &v) == 1)
			sum += v;
		if (f)
			fclose(f);
	}
	return sum;
}

static pid_t busy[2];

static void load(bool on)
{
	for (int i = 0; i < 2; i++) {
		if (on) {
			busy[i] = fork();
			if (busy[i] == 0 && prctl(PR_SET_PDEATHSIG, SIGKILL) == 0)
				for (;;)
					__asm__ volatile("" ::: "memory");
		} else {
			kill(busy[i], SIGKILL);
			waitpid(busy[i], NULL, 0);
		}
	}
}

/* ---- the in-use scan: who maps a file ---------------------------------- */

/* The floor of any maps-based scan: list /proc, read every /proc/PID/maps
 * whole, look for the path (what grep -l over every maps file does). */
static uint64_t bare_scan(const char *path, size_t *found)
{
	uint64_t t0 = base_now_ns();
	DIR *d = opendir("/proc");
	static char buf[1 << 16];
	*found = 0;
	if (!d)
		return 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		char fn[300];
		snprintf(fn, sizeof(fn), "/proc/%s/maps", de->d_name);
		int fd = open(fn, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		/* a line may straddle two reads: keep the tail of the last */
		size_t keep = 0, pl = strlen(path);
		ssize_t got;
		bool hit = false;
		while (!hit && (got = read(fd, buf + keep, sizeof(buf) - keep)) > 0) {
			size_t len = keep + (size_t)got;
			hit = memmem(buf, len, path, pl) != NULL;
			keep = len < pl ? len : pl;
			memmove(buf, buf + len - keep, keep);
		}
		*found += hit;
		close(fd);
	}
	closedir(d);
	return base_now_ns() - t0;
}

/* n idle victims alive; svc's scan (svc_scan_users: /proc listing, each
 * process's maps parsed, matched by dev:inode) against bare_scan, five
 * times each, alternating, after one untimed pass of each (the first
 * lookup of a /proc/PID/maps makes its dentry, for whichever side comes
 * first).  Each side's median, min and max in ms ([0], [1], [2]); -1 if
 * either side missed a victim. */
static int scan_row(size_t n, double svc_ms[3], double bare_ms[3])
{
	enum { REPS = 5 };
	pid_t *pids = spawn(n, 1);
	Svc *s = NULL;
	BaseErr e = { 0 };
	SvcOptions o = { .root = dir, .read_only = 1 };
	struct stat st;
	int r = svc_open(&o, &s, &e) < 0 || stat(victim, &st) < 0 ? -1 : 0;
	double sv[REPS], bv[REPS];
	for (int i = -1; r == 0 && i < REPS; i++) {
		SvcScanTarget t = { .path = "/not-in-this-root", .dev = st.st_dev,
				    .ino = st.st_ino };
		size_t bare_found = 0;
		uint64_t b = 0;
		if (i % 2)
			b = bare_scan(victim, &bare_found);
		uint64_t t0 = base_now_ns();
		int x = svc_scan_users(s, &t, 1, NULL, &e);
		uint64_t sn = base_now_ns() - t0;
		if (i % 2 == 0)
			b = bare_scan(victim, &bare_found);
		if (x != 0 || t.n_users < n || bare_found < n) {
			fprintf(stderr, "bench-hotpatch: scan found %zu (bare %zu) of %zu: %s\n",
				t.n_users, bare_found, n, e.msg);
			r = -1;
		}
		free(t.users);
		if (i >= 0) {
			sv[i] = (double)sn / 1e6;
			bv[i] = (double)b / 1e6;
		}
	}
	svc_close(s);
	reap(pids, n);
	if (r == 0) {
		/* median() sorts: the ends are min and max */
		svc_ms[0] = median(sv, REPS);
		bare_ms[0] = median(bv, REPS);
		svc_ms[1] = sv[0];
		svc_ms[2] = sv[REPS - 1];
		bare_ms[1] = bv[0];
		bare_ms[2] = bv[REPS - 1];
	}
	return r;
}

/* The in-use scan rows at max and (if larger) big victims alive. */
static void scan_rows(size_t max, size_t big)
{
	char what[64], key[64], label[160];
	printf("\n== in-use scan: every process's maps, the victims found by "
	       "dev:inode (ms, median of 5, min-max)\n");
	printf("%-34s %10s   %10s   %6s   %s\n", "", "svc", "bare read", "ratio",
	       "svc min-max, bare min-max");
	size_t ss[2] = { max, big > max ? big : 0 };
	double scan_pp = 0;
	for (int k = 0; k < 2 && ss[k]; k++) {
		double sv[3], bv[3];
		snprintf(what, sizeof(what), "%zu victims alive", ss[k]);
		if (scan_row(ss[k], sv, bv) < 0) {
			printf("%-34s failed\n", what);
			continue;
		}
		double sm = sv[0], bm = bv[0];
		printf("%-34s %10.1f   %10.1f   %5.2fx   %.1f-%.1f, %.1f-%.1f\n", what, sm,
		       bm, sm / bm, sv[1], sv[2], bv[1], bv[2]);
		snprintf(key, sizeof(key), "scan_%zu", ss[k]);
		snprintf(label, sizeof(label), "in-use scan, %zu victims alive "
			 "(vs reading every maps file; median of 5, min-max)", ss[k]);
		tsv(key, label, "ms", sm, sv[1], sv[2], bm, bv[1], bv[2], "-");
		if (k == 0)
			scan_pp = sm / (double)ss[k];
		else if (scan_pp > 0)
			printf("  scan cost per process: %.4f ms at %zu, %.4f ms at "
			       "%zu: %.2fx\n", sm / (double)ss[k], ss[k], scan_pp, max,
			       sm / (double)ss[k] / scan_pp);
	}
}

int main(int argc, char **argv)
{
	size_t max = argc > 1 ? (size_t)atol(argv[1]) : 1000;
	BaseErr le = { 0 };
	if (hp_load(&le) < 0) {   /* once, as svc does before any stop */
		fprintf(stderr, "bench-hotpatch: %s\n", le.msg);
		return 1;
	}
	if (build() < 0) {
		fprintf(stderr, "bench-hotpatch: building the fixtures failed\n");
		return 1;
	}
	static const FixSpec spec[] = {
		{ "ready_fn", "fix_ready", ELF_ENTRY_PAD16, 14 },
		{ "plain_fn", "fix_plain", ELF_ENTRY_PLAIN, 0 },
	};
	char *obj = base_strdupf("%s/fix_exe.o", dir);
	ElfPayload *p = payload_build("FIX-A", exe, obj, spec, 2, NULL);
	ElfPayload *pn = payload_build("FIX-A", exe_nocave, obj, spec, 2, NULL);
	free(obj);
	victim = exe;
	if (!p || !pn) {
		fprintf(stderr, "bench-hotpatch: building the payload failed\n");
		return 1;
	}
	if (getenv("BENCH_OPS"))
		return strcmp(getenv("BENCH_OPS"), "cold") == 0 ? ops_cold(max) : ops_table();
	/* BENCH_PROFILE=svc|bare: one fleet of max idle processes patched by
	 * one of the two, nothing else (a run to record with perf). */
	const char *prof = getenv("BENCH_PROFILE");
	unsigned bw = getenv("BENCH_WORKERS") ? (unsigned)atoi(getenv("BENCH_WORKERS")) : 2;
	if (prof) {
		/* BENCH_IDLE=N: N more idle processes alive, never stopped,
		 * started before the measured ones, or after them with
		 * BENCH_IDLE_AFTER (does a stop cost more with many processes
		 * alive, or with many run since the target last ran?) */
		size_t idle_n = getenv("BENCH_IDLE") ? (size_t)atol(getenv("BENCH_IDLE")) : 0;
		bool after = getenv("BENCH_IDLE_AFTER") != NULL;
		pid_t *idle = idle_n && !after ? spawn(idle_n, 1) : NULL;
		pid_t *pids = spawn(max, 1);
		if (idle_n && after)
			idle = spawn(idle_n, 1);
		uint64_t *pause = calloc(max, sizeof(uint64_t));
		HpReport *rep = calloc(max, sizeof(HpReport));
		BaseErr pe = { 0 };
		struct rusage r0, r1;
		unsigned long long c0[2], c1[2];
		/* BENCH_PERF_CTL=FIFO BENCH_PERF_ACK=FIFO2: perf record -D -1
		 * --control=fifo:FIFO,FIFO2 records the fleet only */
		const char *ctl = getenv("BENCH_PERF_CTL");
		int ctl_fd = ctl ? open(ctl, O_WRONLY | O_CLOEXEC) : -1;
		const char *ack = getenv("BENCH_PERF_ACK");
		int ack_fd = ack ? open(ack, O_RDONLY | O_CLOEXEC) : -1;
		char ackb[16];
		if (ctl_fd >= 0 && write(ctl_fd, "enable\n", 7) != 7)
			perror("BENCH_PERF_CTL");
		if (ack_fd >= 0 && read(ack_fd, ackb, sizeof(ackb)) < 0)
			perror("BENCH_PERF_ACK");
		uint64_t v0 = run_ns(pids, max);
		cpu_ticks(c0);
		getrusage(RUSAGE_SELF, &r0);
		uint64_t t0 = base_now_ns();
		int failed = strcmp(prof, "bare") == 0 ? (int)(bare_many(pids, max, bw, pause) * 0)
						      : hp_apply_many(pids, max, bw, p, NULL, rep, &pe);
		double wall = (base_now_ns() - t0) / 1e6;
		getrusage(RUSAGE_SELF, &r1);
		cpu_ticks(c1);
		uint64_t v1 = run_ns(pids, max);
		if (ctl_fd >= 0) {
			if (write(ctl_fd, "disable\n", 8) != 8)
				perror("BENCH_PERF_CTL");
			if (ack_fd >= 0 && read(ack_fd, ackb, sizeof(ackb)) < 0)
				perror("BENCH_PERF_ACK");
			close(ctl_fd);
		}
		printf("%s: %zu processes in %.1f ms, %d failed; own cpu %.1f ms (user %.1f); "
		       "victims' cpu %.1f ms; machine busy %.0f%% of 2x wall\n", prof, max, wall, failed,
		       tv_ms(r1.ru_utime) + tv_ms(r1.ru_stime) - tv_ms(r0.ru_utime) - tv_ms(r0.ru_stime),
		       tv_ms(r1.ru_utime) - tv_ms(r0.ru_utime), (double)(v1 - v0) / 1e6,
		       100.0 * (double)(c1[0] - c0[0]) / (double)((c1[0] - c0[0]) + (c1[1] - c0[1])));
		if (getenv("BENCH_PHASES")) {   /* means per process, us */
			double m[HP_PH_COUNT + 3] = { 0 };
			for (size_t i = 0; i < max; i++) {
				for (int ph = 0; ph < HP_PH_COUNT; ph++)
					m[ph] += rep[i].phase_ns[ph] / 1e3 / (double)max;
				m[HP_PH_COUNT] += rep[i].pause_ns / 1e3 / (double)max;
				m[HP_PH_COUNT + 1] += rep[i].total_ns / 1e3 / (double)max;
				m[HP_PH_COUNT + 2] += pause[i] / 1e3 / (double)max;
			}
			printf("  us/process: stop %.1f check %.1f safety %.1f map %.1f write %.1f resume "
			       "%.1f; pause %.1f; whole %.1f (outside %.1f); bare pause %.1f\n", m[0], m[1],
			       m[2], m[3], m[4], m[5], m[HP_PH_COUNT], m[HP_PH_COUNT + 1],
			       m[HP_PH_COUNT + 1] - m[HP_PH_COUNT], m[HP_PH_COUNT + 2]);
		}
		reap(pids, max);
		if (idle)
			reap(idle, idle_n);
		free(pause);
		free(rep);
		return 0;
	}
	size_t n_pause = max < 200 ? max : 200;
	const char *rows_path = getenv("BENCH_ROWS");
	rows = rows_path ? fopen(rows_path, "ae") : NULL;
	const char *big_env = getenv("BENCH_PROCS_BIG");
	/* 9: the sides of one run drift together, the runs apart (one
	 * sitting's five pair ratios spread 1.29x-1.68x) */
	int fleet_runs = getenv("BENCH_FLEET_RUNS") ? atoi(getenv("BENCH_FLEET_RUNS")) : 9;
	if (fleet_runs < 1 || fleet_runs > 16)
		fleet_runs = 9;
	size_t big = big_env ? (size_t)atol(big_env) : 0;
	double per_proc_max = 0, bare_per_proc_max = 0, wake_per_proc_max = 0;
	/* BENCH_SCAN_ONLY=1: the in-use scan rows alone (with BENCH_PROCS_BIG,
	 * the 10,000-process scan without the 10,000-process fleet) */
	for (int loaded = getenv("BENCH_SCAN_ONLY") ? 2 : 0; loaded < 2; loaded++) {
		if (loaded)
			load(true);
		const char *tag = loaded ? "  [2 busy loops]" : "";
		const char *kt = loaded ? "busy_" : "";
		char key[64], label[160];
		printf("\n== pause per process, first apply (ms)%s; baseline = bare "
		       "seize+interrupt+detach\n", tag);
		printf("%-34s %8s %8s   %8s %8s   %13s   %s\n", "", "median", "p99", "base med",
		       "base p99", "ratio med/p99", "failed");
		char what[64];
		int tcounts[2] = { 1, 8 };
		for (int k = 0; k < 2; k++) {
			snprintf(what, sizeof(what), "%d thread%s, %zu procs", tcounts[k],
				 tcounts[k] > 1 ? "s" : "", n_pause);
			Row r = run(p, n_pause, tcounts[k]);
			print_pause(what, r);
			snprintf(key, sizeof(key), "%spause_%dt", kt, tcounts[k]);
			snprintf(label, sizeof(label), "%spause, first apply, %d thread%s (median of %zu)",
				 loaded ? "2 busy loops: " : "", tcounts[k], tcounts[k] > 1 ? "s" : "",
				 n_pause);
			tsv(key, label, "ms", r.med, r.p10, r.p90, r.base_med, r.base_p10, r.base_p90,
			    loaded ? "3" : "1.5");
			if (!loaded) {
				snprintf(key, sizeof(key), "pause_%dt_p99", tcounts[k]);
				snprintf(label, sizeof(label), "pause, first apply, %d thread%s: p99",
					 tcounts[k], tcounts[k] > 1 ? "s" : "");
				tsv(key, label, "ms", r.p99, r.p99, r.p99, r.base_p99, r.base_p99,
				    r.base_p99, "2");
			}
			if (k == 0) {
				/* the same without a cave: code and state mapped
				 * by one injected run */
				victim = exe_nocave;
				Row rn = run(pn, n_pause, 1);
				victim = exe;
				snprintf(what, sizeof(what), "1 thread, no cave, %zu procs", n_pause);
				print_pause(what, rn);
				snprintf(key, sizeof(key), "%spause_1t_nocave", kt);
				snprintf(label, sizeof(label), "%spause, first apply, 1 thread, "
					 "executable without a cave (median of %zu)",
					 loaded ? "2 busy loops: " : "", n_pause);
				tsv(key, label, "ms", rn.med, rn.p10, rn.p90, rn.base_med,
				    rn.base_p10, rn.base_p90, "-");
			}
			if (!loaded && k == 0) {
				tsv("mem_per_process", "private memory a patched process gains "
				    "(vs its private memory before)", "KiB", r.mem_kib, r.mem_kib,
				    r.mem_kib, r.base_mem_kib, r.base_mem_kib, r.base_mem_kib, "-");
				tsv("round_trips", "round trips with the target per first apply "
				    "(vs the bare stop's one)", "runs", r.runs + 1, r.runs + 1,
				    r.runs + 1, 1, 1, 1, "-");
			}
		}
		printf("\n== fleet, idle 1-thread processes, 2 workers (ms)%s\n", tag);
		printf("%-34s %10s   %10s   %6s   %s\n", "", "hp_apply", "bare stop", "ratio",
		       "failed");
		size_t sizes[3] = { 100, max, loaded ? 0 : big };
		for (int k = 0; k < 3; k++) {
			if ((k == 1 && max <= 100) || (k == 2 && sizes[2] <= max))
				break;
			snprintf(what, sizeof(what), "%zu processes", sizes[k]);
			/* the main figure: several runs (each its own cold
			 * processes, the two sides interleaved), medians; one
			 * run here spreads by 0.3x */
			int runs = k == 1 && !loaded ? fleet_runs : 1;
			double sv[16], bv[16], pr[16], wv[16];
			Row r = { 0 };
			for (int j = 0; j < runs; j++) {
				r = run(p, sizes[k], 1);
				print_fleet(what, r);
				sv[j] = r.fleet_ms;
				bv[j] = r.base_fleet_ms;
				pr[j] = r.base_fleet_ms > 0 ? r.fleet_ms / r.base_fleet_ms : 0;
				wv[j] = r.wake_ms;
			}
			r.wake_ms = median(wv, runs);
			double s10 = sv[0], s90 = sv[0], b10 = bv[0], b90 = bv[0];
			for (int j = 0; j < runs; j++) {
				s10 = sv[j] < s10 ? sv[j] : s10;
				s90 = sv[j] > s90 ? sv[j] : s90;
				b10 = bv[j] < b10 ? bv[j] : b10;
				b90 = bv[j] > b90 ? bv[j] : b90;
			}
			r.fleet_ms = median(sv, runs);
			r.base_fleet_ms = median(bv, runs);
			if (runs > 1)
				printf("%-34s %10.1f   %10.1f   %5.2fx   (medians of %d runs; the "
				       "pairs' ratios: median %.2fx)\n", "", r.fleet_ms, r.base_fleet_ms,
				       r.fleet_ms / r.base_fleet_ms, runs, median(pr, runs));
			if (k == 1) {
				snprintf(what, sizeof(what), "  pause at %zu (med/p99 ms)", sizes[k]);
				printf("%-34s %8.3f %8.3f   bare %.3f %.3f\n", what, r.med, r.p99,
				       r.base_med, r.base_p99);
				per_proc_max = r.fleet_ms / (double)sizes[k];
				bare_per_proc_max = r.base_fleet_ms / (double)sizes[k];
				wake_per_proc_max = r.wake_ms / (double)sizes[k];
			}
			if (k >= 1) {
				snprintf(key, sizeof(key), "%sfleet_%zu", kt, sizes[k]);
				snprintf(label, sizeof(label), "%s%zu idle processes, 2 workers (%d run%s%s)",
					 loaded ? "2 busy loops: " : "", sizes[k], runs, runs > 1 ? "s" : "",
					 runs > 1 ? ": median, min-max" : "");
				tsv(key, label, "ms", r.fleet_ms, s10, s90, r.base_fleet_ms, b10, b90,
				    loaded ? "-" : "1.5");
			}
			if (k == 2 && per_proc_max > 0) {
				double pp = r.fleet_ms / (double)sizes[k];
				printf("  cost per process: %.4f ms at %zu, %.4f ms at %zu: %.2fx\n",
				       pp, sizes[k], per_proc_max, max, pp / per_proc_max);
				snprintf(key, sizeof(key), "fleet_per_process_%zu", sizes[k]);
				snprintf(label, sizeof(label), "cost per process at %zu vs at %zu",
					 sizes[k], max);
				tsv(key, label, "ms", pp, pp, pp, per_proc_max, per_proc_max,
				    per_proc_max, "1.2");
				/* the floor's own growth, same run: the bare stop, and
				 * a signal round trip (no ptrace at all) */
				double bpp = r.base_fleet_ms / (double)sizes[k];
				double wpp = r.wake_ms / (double)sizes[k];
				printf("  the same for the bare stop: %.4f vs %.4f ms: %.2fx; a signal "
				       "round trip (no ptrace): %.4f vs %.4f ms: %.2fx\n", bpp, bare_per_proc_max,
				       bpp / bare_per_proc_max, wpp, wake_per_proc_max,
				       wake_per_proc_max > 0 ? wpp / wake_per_proc_max : 0);
				snprintf(key, sizeof(key), "bare_per_process_%zu", sizes[k]);
				snprintf(label, sizeof(label), "bare stop: cost per process at %zu vs "
					 "at %zu", sizes[k], max);
				tsv(key, label, "ms", bpp, bpp, bpp, bare_per_proc_max,
				    bare_per_proc_max, bare_per_proc_max, "-");
				snprintf(key, sizeof(key), "wake_per_process_%zu", sizes[k]);
				snprintf(label, sizeof(label), "a signal round trip (no ptrace): per "
					 "process at %zu vs at %zu", sizes[k], max);
				tsv(key, label, "ms", wpp, wpp, wpp, wake_per_proc_max,
				    wake_per_proc_max, wake_per_proc_max, "-");
			}
		}
		if (!loaded)
			scan_rows(max, big);
		if (loaded)
			load(false);
	}
	if (getenv("BENCH_SCAN_ONLY"))
		scan_rows(max, big);
	if (rows)
		fclose(rows);
	elf_payload_free(p);
	elf_payload_free(pn);
	munmap(probe, sizeof(*probe));
	test_rmrf(dir);
	free(dir);
	free(exe);
	free(exe_nocave);
	free(probe_path);
	return 0;
}
