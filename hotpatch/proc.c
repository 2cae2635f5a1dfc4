/* The target's memory: /proc/PID/mem (which writes read-only pages too),
 * and process_vm_readv for reads of many pieces in one call (its maps:
 * base/proc.c). */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include "hotpatch/internal.h"

int hp_mem_open(pid_t pid, bool write, int *ret_fd)
{
	char fn[64];
	snprintf(fn, sizeof(fn), "/proc/%d/mem", (int)pid);
	int fd = open(fn, (write ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -BASE_E_GONE : -errno;
	*ret_fd = fd;
	return 0;
}

/* The whole range or an error: a short transfer continues where it
 * stopped, and 0 bytes (an unmapped page) is -EIO. */
static int mem_io(int fd, uint64_t addr, void *buf, size_t len, bool write)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = write ? pwrite(fd, (const char *)buf + done, len - done, (off_t)(addr + done))
				  : pread(fd, (char *)buf + done, len - done, (off_t)(addr + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

int hp_mem_read(int fd, uint64_t addr, void *buf, size_t len)
{
	return mem_io(fd, addr, buf, len, false);
}

int hp_mem_readv(pid_t pid, int fd, const HpIo *io, size_t n, size_t *ret_bad)
{
	enum { MAX = 64 };
	size_t done = 0;   /* pieces read whole by process_vm_readv */
	if (n > 0 && n <= MAX) {
		struct iovec lo[MAX], re[MAX];
		size_t want = 0;
		for (size_t i = 0; i < n; i++) {
			lo[i] = (struct iovec){ io[i].buf, io[i].len };
			re[i] = (struct iovec){ (void *)(uintptr_t)io[i].addr, io[i].len };
			want += io[i].len;
		}
		ssize_t got = process_vm_readv(pid, lo, n, re, n, 0);
		if (got == (ssize_t)want)
			return 0;
		/* a transfer stops at the first piece it cannot read */
		for (size_t sum = 0; got > 0 && done < n && sum + io[done].len <= (size_t)got; done++)
			sum += io[done].len;
	}
	for (size_t i = done; i < n; i++) {
		int r = hp_mem_read(fd, io[i].addr, io[i].buf, io[i].len);
		if (r < 0) {
			if (ret_bad)
				*ret_bad = i;
			return r;
		}
	}
	return 0;
}

int hp_mem_write(int fd, uint64_t addr, const void *buf, size_t len)
{
	return mem_io(fd, addr, (void *)buf, len, true);
}

int hp_map_file_open(pid_t pid, const HpMap *mp)
{
	char fn[4200];
	snprintf(fn, sizeof(fn), "/proc/%d/map_files/%llx-%llx", (int)pid,
		 (unsigned long long)mp->start, (unsigned long long)mp->end);
	int fd = open(fn, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && mp->path[0] == '/') {
		/* map_files needs CAP_SYS_ADMIN (or CHECKPOINT_RESTORE): the
		 * path in the process's root, if it is still the same file */
		snprintf(fn, sizeof(fn), "/proc/%d/root%s", (int)pid, mp->path);
		fd = open(fn, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_ino != mp->ino ||
	    major(st.st_dev) != mp->dev_major || minor(st.st_dev) != mp->dev_minor) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

int hp_proc_seccomp(pid_t pid, int *ret_mode)
{
	char v[32];
	int r = base_proc_status(pid, 0, "Seccomp", v, sizeof(v));
	if (r == -ENOENT)
		v[0] = '0', v[1] = 0;   /* a kernel without seccomp */
	else if (r < 0)
		return r;
	*ret_mode = atoi(v);
	return 0;
}
