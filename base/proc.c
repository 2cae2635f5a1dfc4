/* Reading /proc/PID: the one reader each of the maps, the status lines and
 * the lists of processes and threads, for the patcher (hotpatch/) and the
 * scan of who uses a file (svc/inuse.c) alike.  Nothing here stops or
 * attaches to a process: these are plain reads, racing the process (a
 * process that exits meanwhile reads as -BASE_E_GONE). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/base.h"

/* "/proc/PID[/task/TID]/what", or "/proc/self/..." for pid 0 */
static void proc_path(char *buf, size_t n, pid_t pid, pid_t tid, const char *what)
{
	if (pid <= 0 && tid > 0)
		snprintf(buf, n, "/proc/self/task/%d/%s", (int)tid, what);
	else if (pid <= 0)
		snprintf(buf, n, "/proc/self/%s", what);
	else if (tid > 0)
		snprintf(buf, n, "/proc/%d/task/%d/%s", (int)pid, (int)tid, what);
	else
		snprintf(buf, n, "/proc/%d/%s", (int)pid, what);
}

void base_maps_free(BaseMaps *m)
{
	free(m->v);
	free(m->text);
	m->v = NULL;
	m->text = NULL;
	m->n = 0;
}

/* A hex digit's value + 1; 0 for any other byte (the kernel prints lower case). */
static const unsigned char hexv[256] = {
	['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8,
	['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};

/* Hex or decimal digits at *p, then one `stop` byte; -1 on anything else
 * (no digit, more than 64 bits).  By hand rather than sscanf: a fleet
 * apply parses every line of every target's maps, and the scanf family was
 * its largest cost in user time; then a table rather than tests and a
 * division per digit. */
static int num(const char **p, unsigned base, char stop, unsigned long long *ret)
{
	const unsigned char *c = (const unsigned char *)*p;
	unsigned long long v = 0;
	const unsigned char *from = c;
	if (base == 16) {
		for (unsigned d; (d = hexv[*c]) != 0; c++) {
			if (v >> 60)
				return -1;
			v = v << 4 | (d - 1);
		}
	} else {
		for (; *c >= '0' && *c <= '9'; c++)
			if (__builtin_mul_overflow(v, 10, &v) ||
			    __builtin_add_overflow(v, (unsigned)(*c - '0'), &v))
				return -1;
	}
	if (c == from || *c != (unsigned char)stop)
		return -1;
	*p = (const char *)c + 1;
	*ret = v;
	return 0;
}

/* "start-end perms offset maj:min inode   path"; the path is left in line */
static int parse_line(char *line, BaseMap *out)
{
	const char *c = line;
	unsigned long long start, end, off, maj, min, ino;
	if (num(&c, 16, '-', &start) < 0 || num(&c, 16, ' ', &end) < 0)
		return -EBADMSG;
	if (strnlen(c, 5) < 5 || c[4] != ' ')
		return -EBADMSG;
	memcpy(out->perms, c, 4);
	out->perms[4] = 0;
	c += 5;
	if (num(&c, 16, ' ', &off) < 0 || num(&c, 16, ':', &maj) < 0 ||
	    num(&c, 16, ' ', &min) < 0 || maj > UINT32_MAX || min > UINT32_MAX)
		return -EBADMSG;
	/* the inode ends the line when there is no path */
	if (num(&c, 10, ' ', &ino) < 0 && num(&c, 10, 0, &ino) < 0)
		return -EBADMSG;
	if (c[-1] == ' ')
		c += strspn(c, " ");
	else
		c--;   /* on the NUL */
	out->start = start;
	out->end = end;
	out->offset = off;
	out->dev_major = (unsigned)maj;
	out->dev_minor = (unsigned)min;
	out->ino = ino;
	out->path = line + (c - line);
	return 0;
}

/* The whole file in one buffer: the kernel builds maps a page at a time,
 * so a read loop to EOF, never a single read.  `last` (or NULL): a line
 * the kernel prints only as the file's last, so that a read ending in it
 * is the end without one more read to see EOF. */
static int read_all(const char *fn, const char *last, char **ret, size_t *ret_len, BaseErr *e)
{
	size_t last_len = last ? strlen(last) : 0;
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
		if (last_len && len >= last_len && memcmp(buf + len - last_len, last, last_len) == 0)
			break;
	}
	buf[len] = 0;
	*ret = BASE_TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

int base_proc_maps(pid_t pid, BaseMaps *ret, BaseErr *e)
{
	char fn[64];
	proc_path(fn, sizeof(fn), pid, 0, "maps");
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	/* the gate mapping is listed after every other one (x86-64 kernels
	 * with vsyscall emulation, Debian's default); without it, EOF ends */
	int r = read_all(fn, " [vsyscall]\n", &buf, &len, e);
	if (r < 0)
		return r;
	BaseMaps m = { 0 };
	size_t cap_v = 0;
	for (char *line = buf, *nl; line && *line; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = 0;
		BaseMap *nv = base_grow(m.v, m.n, &cap_v, sizeof(*m.v), 64);
		if (!nv) {
			base_maps_free(&m);
			return -ENOMEM;
		}
		m.v = nv;
		r = parse_line(line, &m.v[m.n]);
		if (r < 0) {
			base_maps_free(&m);
			return base_err(e, r, "%s: cannot parse \"%.60s\"", fn, line);
		}
		m.n++;
	}
	/* a process that is exiting (or a kernel thread) maps nothing */
	if (m.n == 0) {
		free(m.v);
		return base_err(e, -BASE_E_GONE, "%s: no mappings (process exited)", fn);
	}
	m.text = BASE_TAKE_PTR(buf);
	*ret = m;
	return 0;
}

const BaseMap *base_maps_find(const BaseMaps *m, uint64_t addr)
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

int base_proc_status(pid_t pid, pid_t tid, const char *key, char *buf, size_t n)
{
	char fn[64];
	proc_path(fn, sizeof(fn), pid, tid, "status");
	_cleanup_free_ char *text = NULL;
	size_t len = 0, klen = strlen(key);
	int r = read_all(fn, NULL, &text, &len, NULL);
	if (r < 0)
		return r;
	for (char *line = text, *nl; line && *line; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = 0;
		if (strncmp(line, key, klen) != 0 || line[klen] != ':')
			continue;
		const char *v = line + klen + 1;
		v += strspn(v, " \t");
		if (strlen(v) >= n)
			return -ENAMETOOLONG;
		memcpy(buf, v, strlen(v) + 1);
		return 0;
	}
	return -ENOENT;
}

void base_proc_comm(pid_t pid, char *out, size_t n)
{
	char fn[64];
	proc_path(fn, sizeof(fn), pid, 0, "comm");
	if (n == 0)
		return;
	out[0] = 0;
	int fd = open(fn, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t k = read(fd, out, n - 1);
	close(fd);
	out[k > 0 ? (size_t)k : 0] = 0;
	out[strcspn(out, "\n")] = 0;
}

static int id_cmp(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

int base_proc_dir_open(pid_t pid, BaseErr *e)
{
	char fn[64] = "/proc";
	if (pid != 0)
		proc_path(fn, sizeof(fn), pid, 0, "task");
	int fd = open(fn, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return base_err(e, errno == ENOENT ? -BASE_E_GONE : -errno, "%s: %s", fn,
				strerror(errno));
	return fd;
}

/* Directory entries straight from getdents64, no DIR stream: a second
 * listing of the same directory is a seek and a read, not an open. */
struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

int base_proc_ids_at(int dirfd, bool rewind, pid_t **ret, size_t *ret_n, BaseErr *e)
{
	if (rewind && lseek(dirfd, 0, SEEK_SET) < 0)
		return base_err(e, -errno, "/proc: rewinding a listing: %s", strerror(errno));
	pid_t *v = NULL;
	size_t n = 0, cap = 0;
	int r = 0;
	_Alignas(8) char buf[16384];
	for (;;) {
		long got = syscall(SYS_getdents64, dirfd, buf, sizeof(buf));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = base_err(e, errno == ENOENT ? -BASE_E_GONE : -errno,
				     "/proc: listing: %s", strerror(errno));
			break;
		}
		if (got == 0)
			break;
		for (long at = 0; at < got;) {
			const struct linux_dirent64 *de = (const void *)(buf + at);
			at += de->d_reclen;
			char *end = NULL;
			if (de->d_name[0] < '1' || de->d_name[0] > '9')
				continue;
			long id = strtol(de->d_name, &end, 10);
			if (*end || id <= 0 || id > INT32_MAX)
				continue;
			pid_t *nv = base_grow(v, n, &cap, sizeof(*v), 256);
			if (!nv) {
				r = -ENOMEM;
				break;
			}
			v = nv;
			v[n++] = (pid_t)id;
		}
		/* procfs fills the buffer while entries remain: room left
		 * for the longest entry means the listing is over (one read,
		 * not a second one that returns nothing) */
		if (r < 0 || sizeof(buf) - (size_t)got > sizeof(struct linux_dirent64) + 256 + 8)
			break;
	}
	if (r < 0) {
		free(v);
		return r;
	}
	if (n)
		qsort(v, n, sizeof(*v), id_cmp);
	*ret = v;
	*ret_n = n;
	return 0;
}

int base_proc_ids(pid_t pid, pid_t **ret, size_t *ret_n, BaseErr *e)
{
	int fd = base_proc_dir_open(pid, e);
	if (fd < 0)
		return fd;
	int r = base_proc_ids_at(fd, false, ret, ret_n, e);
	close(fd);
	return r;
}
