/* Child processes of `svc build` and of the compiler wrapper: the project's
 * build command, patch(1), cp(1), the real compiler.  The only file of svc/
 * that forks and waits. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "svc/internal.h"

int svc_run(char *const *argv, const SvcRunOpts *o, int *ret_status, BaseErr *e)
{
	int status = 0;
	pid_t pid = fork();
	if (pid < 0)
		return base_err(e, -errno, "%s: fork: %s", argv[0], strerror(errno));
	if (pid == 0) {
		/* the child: only async-signal-safe calls and _exit from here */
		if (o && o->cwd && chdir(o->cwd) < 0)
			_exit(126);
		if (o && o->out_fd >= 0 && o->out_fd != 0) {
			if (dup2(o->out_fd, 1) < 0 || dup2(o->out_fd, 2) < 0)
				_exit(126);
		}
		if (o && o->stdin_null) {
			int nfd = open("/dev/null", O_RDONLY);
			if (nfd >= 0)
				dup2(nfd, 0);
		}
		for (size_t i = 0; o && o->env && o->env[i]; i++)
			putenv(o->env[i]);
		if (o && o->path_exact)
			execv(argv[0], argv);
		else
			execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return base_err(e, -errno, "%s: wait: %s", argv[0], strerror(errno));
	if (WIFEXITED(status))
		*ret_status = WEXITSTATUS(status);
	else
		*ret_status = 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return 0;
}

/* The line of a log that says why a command failed: past offset from, the
 * first line starting with prefer (apt prints its cause first, then a
 * summary: "E: Can not find version '9.9' of package 'x'" before "E: Unable
 * to find a source package for x"), else the last non-empty line. */
void svc_log_reason(const char *path, size_t from, const char *prefer, char *out, size_t n)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len = 0, end, start;
	out[0] = 0;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || base_fs_read_fd(fd, (size_t)1 << 30, &buf, &len) < 0 || from > len)
		return;
	size_t plen = prefer ? strlen(prefer) : 0;
	for (start = from; plen && start < len; start = end + 1) {
		const uint8_t *nl = memchr(buf + start, '\n', len - start);
		end = nl ? (size_t)(nl - buf) : len;
		if (end - start >= plen && memcmp(buf + start, prefer, plen) == 0) {
			snprintf(out, n, "%.*s", (int)(end - start), (const char *)buf + start);
			return;
		}
	}
	end = len;
	while (end > from && (buf[end - 1] == '\n' || buf[end - 1] == ' '))
		end--;
	start = end;
	while (start > from && buf[start - 1] != '\n')
		start--;
	snprintf(out, n, "%.*s", (int)(end - start), (const char *)buf + start);
}

void svc_log_last_line(const char *path, char *out, size_t n)
{
	svc_log_reason(path, 0, NULL, out, n);
}
