#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "tests/testlib.h"

char *test_scratch(const char *tag)
{
	const char *tmp = getenv("TMPDIR");
	char *p = NULL;
	if (asprintf(&p, "%s/svc-%s-XXXXXX", tmp ? tmp : "/tmp", tag) < 0)
		return NULL;
	if (!mkdtemp(p)) {
		free(p);
		return NULL;
	}
	return p;
}

void test_rmrf(const char *path)
{
	if (path && strncmp(path, "/tmp/", 5) == 0)
		test_sh("rm -rf '%s'", path);
}

static char *vfmt(const char *fmt, va_list ap)
{
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		return NULL;
	return s;
}

int test_sh(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *cmd = vfmt(fmt, ap);
	va_end(ap);
	if (!cmd)
		return -1;
	int st = system(cmd);
	free(cmd);
	if (st < 0)
		return -1;
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

char *test_sh_out(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *cmd = vfmt(fmt, ap);
	va_end(ap);
	if (!cmd)
		return NULL;
	FILE *f = popen(cmd, "r");
	free(cmd);
	if (!f)
		return NULL;
	size_t cap = 4096, len = 0;
	char *out = malloc(cap);
	size_t n;
	while (out && (n = fread(out + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len < 2) {
			char *o = realloc(out, cap *= 2);
			if (!o) {
				free(out);
				out = NULL;
			} else
				out = o;
		}
	}
	pclose(f);
	if (out)
		out[len] = 0;
	return out;
}

char *test_read(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (buf) {
		buf[n] = 0;
		if (ret_len)
			*ret_len = (size_t)n;
	}
	return buf;
}

int test_write(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t n = fwrite(buf, 1, len, f);
	return (fclose(f) == 0 && n == len) ? 0 : -1;
}

const char *test_build_dir(void)
{
	static char dir[4096];
	if (!dir[0]) {
		const char *b = getenv("SVC_BUILD");
		if (b)
			snprintf(dir, sizeof(dir), "%s", b);
		else if (getcwd(dir, sizeof(dir) - 8))
			strcat(dir, "/build");
	}
	return dir;
}

int test_victim_start(TestVictim *v, const char *dir, size_t probe_size, size_t ready_off,
		      int want_ready, unsigned settle_us, unsigned flags, const char *bin,
		      const char *const args[])
{
	static int seq;
	const char *argv[16];
	size_t n = 0;
	memset(v, 0, sizeof(*v));
	v->probe_size = probe_size;
	if (asprintf(&v->probe_path, "%s/probe-%d-%d", dir, (int)getpid(), seq++) < 0) {
		v->probe_path = NULL;
		return -1;
	}
	int fd = open(v->probe_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)probe_size) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	v->probe = mmap(NULL, probe_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (v->probe == MAP_FAILED) {
		v->probe = NULL;
		return -1;
	}
	if (flags & TEST_VICTIM_NO_ASLR) {   /* setarch execs in place: same pid */
		argv[n++] = "setarch";
		argv[n++] = "x86_64";
		argv[n++] = "-R";
	}
	argv[n++] = bin;
	argv[n++] = v->probe_path;
	for (size_t i = 0; args && args[i] && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	v->pid = fork();
	if (v->pid == 0) {
		/* a failed FATAL assertion skips test_victim_stop: die with the test */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (v->pid < 0) {
		v->pid = 0;
		return -1;
	}
	const volatile int *ready = (const volatile int *)((char *)v->probe + ready_off);
	for (int i = 0; i < 5000 && *ready < want_ready; i++)
		usleep(1000);
	usleep(settle_us);
	if (*ready >= want_ready)
		return 0;
	kill(v->pid, SIGKILL);   /* never leave a victim behind */
	waitpid(v->pid, NULL, 0);
	v->pid = 0;
	return -1;
}

void test_victim_stop(TestVictim *v)
{
	if (v->pid > 0) {
		kill(v->pid, SIGKILL);
		waitpid(v->pid, NULL, 0);
	}
	v->pid = 0;
	if (v->probe)
		munmap(v->probe, v->probe_size);
	v->probe = NULL;
	if (v->probe_path)
		unlink(v->probe_path);
	free(v->probe_path);
	v->probe_path = NULL;
}

int test_crash_at(long n, void (*fn)(void *), void *arg)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		char v[32];
		snprintf(v, sizeof(v), "%ld", n);
		setenv("SVC_CRASH_AT", v, 1);
		base_fs_crash_reset();
		fn(arg);
		_exit(0);
	}
	int st = 0;
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
		return 1;
	/* any exit status: under valgrind a child's exit code reports leaks of
	 * the parent's memory, not the outcome of fn */
	return WIFEXITED(st) ? 0 : -1;
}

long test_cave_of(const char *path)
{
	char *o = test_sh_out("readelf -lW %s | awk '$1==\"LOAD\" && ($7 ~ /E/ || $8 ~ /E/) "
			      "{print $3, $6}'", path);
	unsigned long long va = 0, memsz = 0;
	int ok = o && sscanf(o, "%llx %llx", &va, &memsz) == 2;
	free(o);
	if (!ok)
		return -1;
	unsigned long long end = va + memsz, at = (end + 15) & ~15ull, pe = (end + 4095) & ~4095ull;
	return at < pe ? (long)(pe - at) : 0;
}

long test_cave_pad(const char *built, long want)
{
	long c0 = test_cave_of(built);
	return c0 < 0 ? -1 : ((c0 - want) % 4096 + 4096) % 4096;
}
