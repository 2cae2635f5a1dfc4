/* The power-loss recorder behind the durable-step layer (see internal.h).
 *
 * The crash switch (SVC_CRASH_AT) kills the process; the page cache
 * survives it, so every write svc made before the kill is still there.  A
 * power cut keeps only what reached the disk.  To test that, this file
 * appends each completed step to SVC_POWER_LOG with enough to replay it
 * on a copy of the tree: absolute paths, the inode a step touched, the
 * offset and bytes of each write.  tests/powerloss.c reads the log and
 * builds every disk state a file system could be left in.
 *
 * Record: one header line "STEP\tOP\tINO\tARG\tLEN\tPATH\tPATH2\n", then
 * LEN raw bytes (the written data; 0 for every other op).  The recorder
 * never changes what svc does: its own failures are ignored. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "base/internal.h"

static int rec_open_log(void)
{
	const char *log = getenv("SVC_POWER_LOG");
	if (!log || !*log)
		return -1;
	return open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

/* dfd/name as an absolute path ("" when it cannot be known). */
static void rec_path(int dfd, const char *name, char out[PATH_MAX])
{
	char link[64];
	ssize_t n;

	out[0] = 0;
	if (dfd == AT_FDCWD) {
		if (!getcwd(out, PATH_MAX))
			out[0] = 0;
	} else {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", dfd);
		n = readlink(link, out, PATH_MAX - 1);
		out[n < 0 ? 0 : n] = 0;
	}
	if (name && *name && name[0] != '/') {
		size_t l = strlen(out);
		snprintf(out + l, PATH_MAX - l, "/%s", name);
	} else if (name && name[0] == '/') {
		snprintf(out, PATH_MAX, "%s", name);
	}
}

static void rec_emit(const char *op, unsigned long long ino, unsigned long arg,
		     const void *buf, size_t len, const char *p1, const char *p2)
{
	int fd = rec_open_log();
	if (fd < 0)
		return;
	BaseBuf b = { 0 };
	if (base_buf_printf(&b, "%ld\t%s\t%llu\t%lu\t%zu\t%s\t%s\n", base_fs_step_count(), op,
			    ino, arg, len, p1 ? p1 : "", p2 ? p2 : "") >= 0 &&
	    (len == 0 || base_buf_append(&b, buf, len) >= 0)) {
		const uint8_t *p = b.data;
		size_t left = b.len;
		while (left > 0) {
			ssize_t n = write(fd, p, left);
			if (n <= 0)
				break;
			p += n;
			left -= (size_t)n;
		}
	}
	base_buf_free(&b);
	close(fd);
}

static unsigned long long rec_ino(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 ? (unsigned long long)st.st_ino : 0;
}

int base_fs_rec_exists(int dfd, const char *name)
{
	if (!getenv("SVC_POWER_LOG"))
		return 0;
	struct stat st;
	return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

void base_fs_rec_open(int dfd, const char *name, int flags, mode_t mode, int existed, int fd)
{
	char p[PATH_MAX];
	if (!getenv("SVC_POWER_LOG"))
		return;
	rec_path(dfd, name, p);
	/* a new name is a directory entry (lost until the directory is
	 * synced); truncating an old file is a change of its data */
	if ((flags & O_CREAT) && !existed)
		rec_emit("create", rec_ino(fd), mode, NULL, 0, p, NULL);
	else if (flags & O_TRUNC)
		rec_emit("trunc", rec_ino(fd), 0, NULL, 0, p, NULL);
}

void base_fs_rec_write(int fd, const void *buf, size_t len)
{
	if (!getenv("SVC_POWER_LOG"))
		return;
	off_t off = lseek(fd, 0, SEEK_CUR);
	rec_emit("write", rec_ino(fd), off < 0 ? 0 : (unsigned long)off, buf, len, NULL, NULL);
}

void base_fs_rec_fd(const char *op, int fd, unsigned long arg)
{
	char p[PATH_MAX];
	if (!getenv("SVC_POWER_LOG"))
		return;
	rec_path(fd, NULL, p);
	rec_emit(op, rec_ino(fd), arg, NULL, 0, p, NULL);
}

void base_fs_rec_path(const char *op, int dfd, const char *name, int flags)
{
	char p[PATH_MAX];
	if (!getenv("SVC_POWER_LOG"))
		return;
	rec_path(dfd, name, p);
	rec_emit(op, 0, (unsigned long)flags, NULL, 0, p, NULL);
}

void base_fs_rec_two(const char *op, int odfd, const char *oname, int ndfd, const char *nname)
{
	char a[PATH_MAX], b[PATH_MAX];
	struct stat st;
	if (!getenv("SVC_POWER_LOG"))
		return;
	rec_path(odfd, oname, a);
	rec_path(ndfd, nname, b);
	unsigned long long ino = fstatat(ndfd, nname, &st, AT_SYMLINK_NOFOLLOW) == 0 ? st.st_ino : 0;
	rec_emit(op, ino, 0, NULL, 0, a, b);
}
