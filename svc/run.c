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

/* The last non-empty line of a log, for a one-line error. */
void svc_log_last_line(const char *path, char *out, size_t n)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len = 0, end, start;
	out[0] = 0;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || base_fs_read_fd(fd, (size_t)1 << 30, &buf, &len) < 0)
		return;
	end = len;
	while (end && (buf[end - 1] == '\n' || buf[end - 1] == ' '))
		end--;
	start = end;
	while (start && buf[start - 1] != '\n')
		start--;
	snprintf(out, n, "%.*s", (int)(end - start), (const char *)buf + start);
}
