/* Which processes use a file: one pass over /proc/PID/maps.  A mapping is of
 * the current file when its dev:inode matches; of an older version when its
 * path names the same file but the inode differs (the file was replaced
 * under it, the kernel shows " (deleted)"). */
#include <ctype.h>
#include <limits.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "svc/internal.h"

static int add_user(SvcScanTarget *t, pid_t pid, const char *comm, int old, dev_t dev,
		    ino_t ino, const char *map)
{
	for (size_t i = 0; i < t->n_users; i++)
		if (t->users[i].pid == pid) {
			/* a process mapping both versions counts as old */
			if (old && !t->users[i].old_version) {
				t->users[i].old_version = 1;
				t->users[i].dev = dev;
				t->users[i].ino = ino;
				snprintf(t->users[i].map, sizeof(t->users[i].map), "%s", map);
			}
			return 0;
		}
	SvcUser *u = realloc(t->users, (t->n_users + 1) * sizeof(*u));
	if (!u)
		return -ENOMEM;
	t->users = u;
	u = &t->users[t->n_users++];
	memset(u, 0, sizeof(*u));
	u->pid = pid;
	u->old_version = old;
	u->dev = dev;
	u->ino = ino;
	snprintf(u->map, sizeof(u->map), "%s", map);
	base_escape(u->comm, sizeof(u->comm), comm);
	return 0;
}

static void read_comm(pid_t pid, char *out, size_t n)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	FILE *f = fopen(path, "re");
	out[0] = 0;
	if (!f)
		return;
	if (fgets(out, (int)n, f))
		out[strcspn(out, "\n")] = 0;
	fclose(f);
}

/* An empty directory, or anything else mounted on /proc, lists no process:
 * every file would look unused, and a swap of an in-use library would be
 * reported as converged.  Only procfs can say who maps what. */
int svc_proc_check(BaseErr *e)
{
	struct statfs sf;
	if (statfs("/proc", &sf) < 0)
		return base_err(e, -ENODEV, "/proc: %s: cannot tell which processes use the "
				"targets", strerror(errno));
	if (sf.f_type != PROC_SUPER_MAGIC)
		return base_err(e, -ENODEV, "/proc is not procfs (not mounted?): cannot tell "
				"which processes use the targets");
	return 0;
}

/* The permitted capability set of a process (/proc/PID/status is readable
 * by anyone), or ~0 if unknown. */
static uint64_t cap_permitted(const char *pid)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	uint64_t v = ~(uint64_t)0;
	snprintf(path, sizeof(path), "/proc/%s/status", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return v;
	while (getline(&line, &cap, f) > 0)
		if (strncmp(line, "CapPrm:", 7) == 0) {
			v = strtoull(line + 7, NULL, 16);
			break;
		}
	free(line);
	fclose(f);
	return v;
}

/* A process whose maps svc cannot read is of unknown use, with one
 * exception: svc holds CAP_SYS_PTRACE (it runs as root, the way it services
 * a machine) and the process holds capabilities even svc lacks.  That
 * process is more privileged than svc (a container supervisor, say), outside
 * what svc can see or service, and not a process svc's answer is about; it
 * is not counted (the kernel shields it even from root).  Without
 * CAP_SYS_PTRACE (svc run as a plain user) the kernel hides every other
 * user's process, root's included, and those are exactly the ones that map
 * system files: each is unknown. */
static int unknown_process(pid_t pid)
{
	static uint64_t mine;
	static int have;
	char p[24];
	if (!have) {
		mine = cap_permitted("self");
		have = 1;
	}
	if (!(mine & (UINT64_C(1) << CAP_SYS_PTRACE)))
		return 1;
	snprintf(p, sizeof(p), "%d", (int)pid);
	return (cap_permitted(p) & ~mine) == 0;
}

void svc_unread_free(SvcUnread *u)
{
	free(u->procs);
	u->procs = NULL;
	u->n = 0;
}

static int unread_add(SvcUnread *u, pid_t pid, int err)
{
	char comm[32];
	for (size_t i = 0; i < u->n; i++)
		if (u->procs[i].pid == pid)
			return 0;
	SvcUnreadProc *p = realloc(u->procs, (u->n + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	u->procs = p;
	p = &u->procs[u->n++];
	p->pid = pid;
	p->err = err;
	read_comm(pid, comm, sizeof(comm));
	base_escape(p->comm, sizeof(p->comm), comm);
	return 0;
}

/* 1 if the process could not be read (its use of the targets is unknown;
 * *ret_err says why), 0 if read or gone, negative on failure. */
static int scan_pid(Svc *s, pid_t pid, SvcScanTarget *t, size_t n, char **full, int *ret_err)
{
	char path[64], comm[32] = "";
	char *line = NULL;
	size_t cap = 0;
	int r = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f) {
		*ret_err = errno;
		return *ret_err == ENOENT || *ret_err == ESRCH ? 0 : unknown_process(pid);
	}
	while (r >= 0 && getline(&line, &cap, f) > 0) {
		unsigned maj, min;
		unsigned long ino, start, end;
		int off = 0;
		char map[48];
		if (sscanf(line, "%lx-%lx %*s %*x %x:%x %lu %n", &start, &end, &maj, &min, &ino,
			   &off) < 5 || ino == 0)
			continue;
		snprintf(map, sizeof(map), "%lx-%lx", start, end);
		char *p = line + off;
		p[strcspn(p, "\n")] = 0;
		char *del = strstr(p, " (deleted)");
		if (del && del[10] == 0)
			*del = 0;
		for (size_t i = 0; i < n; i++) {
			int cur = t[i].dev && major(t[i].dev) == maj && minor(t[i].dev) == min &&
				  t[i].ino == ino;
			if (!cur && strcmp(p, full[i]) != 0)
				continue;
			if (!comm[0])
				read_comm(pid, comm, sizeof(comm));
			r = add_user(&t[i], pid, comm, !cur, makedev(maj, min), (ino_t)ino, map);
		}
	}
	free(line);
	fclose(f);
	(void)s;
	return r;
}

int svc_scan_users(Svc *s, SvcScanTarget *t, size_t n, SvcUnread *unread, BaseErr *e)
{
	char **full = calloc(n ? n : 1, sizeof(char *));
	DIR *d = NULL;
	unsigned unreadable = 0;
	int r = 0;

	if (!full)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (!(full[i] = base_strdupf("%s%s", s->root_real, t[i].path)))
			r = -ENOMEM;
	if (r >= 0)
		r = svc_proc_check(e);
	if (r >= 0 && !(d = opendir("/proc")))
		r = base_err(e, -errno, "/proc: cannot scan processes: %s", strerror(errno));
	for (struct dirent *de; r >= 0 && d && (de = readdir(d));) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid_t pid = (pid_t)atoi(de->d_name);
		if (pid == getpid())
			continue;
		int err = 0;
		int x = scan_pid(s, pid, t, n, full, &err);
		if (x > 0 && unread)
			x = unread_add(unread, pid, err) < 0 ? -ENOMEM : x;
		if (x < 0)
			r = x;
		else
			unreadable += (unsigned)x;
	}
	if (d)
		closedir(d);
	for (size_t i = 0; i < n; i++)
		free(full[i]);
	free(full);
	return r < 0 ? r : (int)(unreadable > INT_MAX ? INT_MAX : unreadable);
}
