/* /proc/PID/maps and /proc/PID/mem: the only views of the target's memory. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hotpatch/internal.h"

void hp_maps_free(HpMaps *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].path);
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

static int parse_line(char *line, HpMap *out)
{
	unsigned long long start, end, off, ino;
	unsigned maj, min;
	char perms[8];
	int pos = 0;
	if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %n", &start, &end, perms, &off, &maj,
		   &min, &ino, &pos) < 7)
		return -EBADMSG;
	const char *path = pos > 0 ? line + pos : "";
	out->start = start;
	out->end = end;
	out->offset = off;
	out->dev_major = maj;
	out->dev_minor = min;
	out->ino = ino;
	memcpy(out->perms, perms, 4);
	out->perms[4] = 0;
	out->path = strdup(path);
	return out->path ? 0 : -ENOMEM;
}

int hp_maps_read(pid_t pid, HpMaps *ret, BaseErr *e)
{
	char fn[64];
	snprintf(fn, sizeof(fn), "/proc/%d/maps", (int)pid);
	_cleanup_close_ int fd = open(fn, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return base_err(e, errno == ENOENT ? -BASE_E_GONE : -errno, "%s: %s", fn,
				strerror(errno));
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 16384;
			char *nb = realloc(buf, cap + 1);
			if (!nb)
				return -ENOMEM;
			buf = nb;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return base_err(e, errno == ESRCH ? -BASE_E_GONE : -errno, "%s: %s", fn,
					strerror(errno));
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (!buf)
		return base_err(e, -BASE_E_GONE, "%s: empty (process exited)", fn);
	buf[len] = 0;
	HpMaps m = { 0 };
	size_t cap_v = 0;
	for (char *line = buf, *nl; line && *line; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = 0;
		if (m.n == cap_v) {
			cap_v = cap_v ? cap_v * 2 : 64;
			HpMap *nv = realloc(m.v, cap_v * sizeof(*nv));
			if (!nv) {
				hp_maps_free(&m);
				return -ENOMEM;
			}
			m.v = nv;
		}
		int r = parse_line(line, &m.v[m.n]);
		if (r < 0) {
			hp_maps_free(&m);
			return base_err(e, r, "%s: cannot parse \"%.60s\"", fn, line);
		}
		m.n++;
	}
	if (m.n == 0)
		return base_err(e, -BASE_E_GONE, "%s: no mappings (process exited)", fn);
	*ret = m;
	return 0;
}

const HpMap *hp_maps_find(const HpMaps *m, uint64_t addr)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (addr < m->v[mid].start)
			hi = mid;
		else if (addr >= m->v[mid].end)
			lo = mid + 1;
		else
			return &m->v[mid];
	}
	return NULL;
}

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

int hp_mem_read(int fd, uint64_t addr, void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(addr + done));
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

int hp_mem_write(int fd, uint64_t addr, const void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, (off_t)(addr + done));
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

int hp_proc_seccomp(pid_t pid, int *ret_mode)
{
	char fn[64], line[256];
	snprintf(fn, sizeof(fn), "/proc/%d/status", (int)pid);
	FILE *f = fopen(fn, "re");
	if (!f)
		return errno == ENOENT ? -BASE_E_GONE : -errno;
	int mode = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Seccomp: %d", &mode) == 1)
			break;
	fclose(f);
	*ret_mode = mode;
	return 0;
}
