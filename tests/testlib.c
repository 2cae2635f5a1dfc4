#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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
