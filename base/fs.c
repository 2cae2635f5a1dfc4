/* The durable file-system layer.  Every disk-changing call of svc passes
 * through one of these wrappers, so the crash switch (SVC_CRASH_AT) can stop
 * the process before any of them, and tests can prove recovery from each. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"

static long step_no;

void base_fs_crash_reset(void)
{
	step_no = 0;
}

int base_fs_step(const char *op, const char *path)
{
	const char *s = getenv("SVC_CRASH_AT");
	long crash_at = s ? strtol(s, NULL, 10) : 0;

	step_no++;
	const char *log = getenv("SVC_CRASH_LOG");
	if (log) {
		int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dprintf(fd, "%ld %s %s\n", step_no, op, path ? path : "-");
			close(fd);
		}
	}
	/* SVC_STALL_AT=N: stop before step N and say so on stderr, so a test
	 * can cut the power (kill the VM) at a moment it knows for certain */
	const char *stall = getenv("SVC_STALL_AT");
	if (stall && strtol(stall, NULL, 10) == step_no) {
		dprintf(2, "svc: stalled before step %ld (%s %s)\n", step_no, op, path ? path : "-");
		for (;;)
			pause();
	}
	if (crash_at > 0 && step_no == crash_at) {
		/* a crash, not an exit: no atexit, no buffered output */
		kill(getpid(), SIGKILL);
		pause();
	}
	return 0;
}

int base_fs_openat(int dfd, const char *name, int flags, mode_t mode, int *ret_fd)
{
	if (flags & (O_CREAT | O_TRUNC | O_WRONLY | O_RDWR))
		base_fs_step("open", name);
	int fd = openat(dfd, name, flags | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	*ret_fd = fd;
	return 0;
}

int base_fs_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	base_fs_step("write", NULL);
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int base_fs_fsync(int fd)
{
	base_fs_step("fsync", NULL);
	return fsync(fd) < 0 ? -errno : 0;
}

int base_fs_fsync_dir(int dfd)
{
	base_fs_step("fsync-dir", NULL);
	/* some file systems refuse fsync on a directory: nothing more to do there */
	if (fsync(dfd) < 0 && errno != EINVAL && errno != EROFS)
		return -errno;
	return 0;
}

int base_fs_renameat(int odfd, const char *oname, int ndfd, const char *nname)
{
	base_fs_step("rename", nname);
	return renameat(odfd, oname, ndfd, nname) < 0 ? -errno : 0;
}

int base_fs_linkat(int odfd, const char *oname, int ndfd, const char *nname)
{
	base_fs_step("link", nname);
	return linkat(odfd, oname, ndfd, nname, 0) < 0 ? -errno : 0;
}

int base_fs_unlinkat(int dfd, const char *name, int flags)
{
	base_fs_step("unlink", name);
	return unlinkat(dfd, name, flags) < 0 ? -errno : 0;
}

int base_fs_mkdirat(int dfd, const char *name, mode_t mode)
{
	base_fs_step("mkdir", name);
	return mkdirat(dfd, name, mode) < 0 ? -errno : 0;
}

int base_fs_fchown(int fd, uid_t uid, gid_t gid)
{
	base_fs_step("chown", NULL);
	return fchown(fd, uid, gid) < 0 ? -errno : 0;
}

int base_fs_fchmod(int fd, mode_t mode)
{
	base_fs_step("chmod", NULL);
	return fchmod(fd, mode) < 0 ? -errno : 0;
}

int base_fs_write_atomic(int dfd, const char *name, const void *buf, size_t len,
			 mode_t mode)
{
	_cleanup_free_ char *tmp = base_strdupf(".%s.tmp", name);
	_cleanup_close_ int fd = -1;
	int r;

	if (!tmp)
		return -ENOMEM;
	r = base_fs_openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, mode, &fd);
	if (r < 0)
		return r;
	r = base_fs_write_all(fd, buf, len);
	if (r >= 0)
		r = base_fs_fsync(fd);
	if (r >= 0)
		r = base_fs_renameat(dfd, tmp, dfd, name);
	if (r < 0) {
		unlinkat(dfd, tmp, 0);
		return r;
	}
	/* rename is atomic, not durable: the directory must reach the disk too */
	return base_fs_fsync_dir(dfd);
}

/* Walk relpath one component at a time with O_NOFOLLOW, so no symlink
 * anywhere in it can redirect us outside the tree we were given. */
static int walk(int dfd, const char *relpath, int create, mode_t mode, int *ret_fd)
{
	_cleanup_free_ char *copy = strdup(relpath);
	_cleanup_close_ int cur = -1;
	char *save = NULL;
	int r;

	if (!copy)
		return -ENOMEM;
	cur = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return -errno;
	for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (strcmp(c, ".") == 0)
			continue;
		if (strcmp(c, "..") == 0)
			return -EINVAL;
		int next = openat(cur, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT && create) {
			r = base_fs_mkdirat(cur, c, mode);
			if (r < 0 && r != -EEXIST)
				return r;
			if (r >= 0) {
				r = base_fs_fsync_dir(cur);
				if (r < 0)
					return r;
			}
			next = openat(cur, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (next < 0) {
			r = -errno;
			if (r == -ENOTDIR) {
				struct stat st;
				if (fstatat(cur, c, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
					r = -ELOOP;
			}
			return r;
		}
		close(cur);
		cur = next;
	}
	*ret_fd = BASE_TAKE_FD(cur);
	return 0;
}

int base_fs_mkdir_p(int dfd, const char *relpath, mode_t mode, int *ret_fd)
{
	return walk(dfd, relpath, 1, mode, ret_fd);
}

int base_fs_open_dir(int dfd, const char *relpath, int *ret_fd)
{
	return walk(dfd, relpath, 0, 0, ret_fd);
}

int base_fs_read_fd(int fd, size_t max, uint8_t **ret_buf, size_t *ret_len)
{
	BaseBuf b = { 0 };
	uint8_t chunk[65536];
	int r;

	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			base_buf_free(&b);
			return -errno;
		}
		if (n == 0)
			break;
		if (b.len + (size_t)n > max) {
			base_buf_free(&b);
			return -EFBIG;
		}
		r = base_buf_append(&b, chunk, (size_t)n);
		if (r < 0) {
			base_buf_free(&b);
			return r;
		}
	}
	if (!b.data && base_buf_append(&b, "", 0) < 0)
		return -ENOMEM;
	*ret_buf = b.data;
	*ret_len = b.len;
	return 0;
}

/* O_NONBLOCK on the open itself: opening a FIFO for reading blocks until a
 * writer comes, which at early boot is never (a FIFO planted where a target,
 * a staged file, a record or a trusted key should be hung `svc boot`).  With
 * it the open returns at once, fstat sees the FIFO, and it is refused; for a
 * regular file the flag means nothing, and it is cleared anyway so readers
 * see ordinary blocking semantics. */
int base_fs_open_regular(int dfd, const char *name, int flags, int *ret_fd)
{
	_cleanup_close_ int fd = openat(dfd, name,
					O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | flags);
	struct stat st;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
		return -errno;
	*ret_fd = BASE_TAKE_FD(fd);
	return 0;
}

int base_fs_read_at(int dfd, const char *name, size_t max, uint8_t **ret_buf,
		    size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	int r = base_fs_open_regular(dfd, name, O_NOFOLLOW, &fd);
	if (r < 0)
		return r;
	return base_fs_read_fd(fd, max, ret_buf, ret_len);
}
