/* Which processes use a file: one pass over /proc/PID/maps (base/proc.c).  A mapping is of
 * the current file when its dev:inode matches; of an older version when its
 * path names the same file but the inode differs (the file was replaced
 * under it, the kernel shows " (deleted)"). */
#include <limits.h>
#include <inttypes.h>
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

/* The user entry of pid, if it has one.  One scan fills the list (empty on
 * entry: svc_scan_users) in ascending pid order, one whole process at a
 * time: a pid already listed is the last one, and the search from the end
 * stops at the first smaller pid (a linear search over 10,000 users per
 * user was most of a 10,000-process scan). */
static SvcUser *find_user(SvcScanTarget *t, pid_t pid)
{
	for (size_t i = t->n_users; i > 0; i--) {
		if (t->users[i - 1].pid == pid)
			return &t->users[i - 1];
		if (t->users[i - 1].pid < pid)
			break;
	}
	return NULL;
}

static int add_user(SvcScanTarget *t, pid_t pid, const char *comm, int old, dev_t dev,
		    ino_t ino, const char *map)
{
	SvcUser *u = find_user(t, pid);
	if (u) {
		/* a process mapping both versions counts as old */
		if (old && !u->old_version) {
			u->old_version = 1;
			u->dev = dev;
			u->ino = ino;
			snprintf(u->map, sizeof(u->map), "%s", map);
		}
		return 0;
	}
	u = base_grow(t->users, t->n_users, &t->cap_users, sizeof(*t->users), 8);
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
 * by anyone; pid 0: svc itself), or ~0 if unknown. */
static uint64_t cap_permitted(pid_t pid)
{
	char v[32];
	if (base_proc_status(pid, 0, "CapPrm", v, sizeof(v)) < 0)
		return ~(uint64_t)0;
	return strtoull(v, NULL, 16);
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
	if (!have) {
		mine = cap_permitted(0);
		have = 1;
	}
	if (!(mine & (UINT64_C(1) << CAP_SYS_PTRACE)))
		return 1;
	return (cap_permitted(pid) & ~mine) == 0;
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
	base_proc_comm(pid, comm, sizeof(comm));
	base_escape(p->comm, sizeof(p->comm), comm);
	return 0;
}

/* 1 if the process could not be read (its use of the targets is unknown;
 * *ret_err says why), 0 if read or gone, negative on failure. */
static int scan_pid(pid_t pid, SvcScanTarget *t, size_t n, char **full, int *ret_err)
{
	char comm[32] = "";
	BaseMaps m = { 0 };
	int r = base_proc_maps(pid, &m, NULL);

	if (r == -ENOMEM)
		return r;
	if (r == -BASE_E_GONE)
		return 0;   /* exited, or maps nothing (a kernel thread) */
	if (r < 0) {
		*ret_err = -r;
		return unknown_process(pid);
	}
	for (size_t k = 0; r >= 0 && k < m.n; k++) {
		const BaseMap *mp = &m.v[k];
		char map[48] = "";   /* its /proc/PID/map_files name, for a user only */
		if (mp->ino == 0)
			continue;
		/* a file replaced under the process: the kernel shows its old
		 * name with " (deleted)" */
		size_t plen = strlen(mp->path), dl = strlen(" (deleted)");
		if (plen >= dl && strcmp(mp->path + plen - dl, " (deleted)") == 0)
			plen -= dl;
		for (size_t i = 0; i < n; i++) {
			int cur = t[i].dev && major(t[i].dev) == mp->dev_major &&
				  minor(t[i].dev) == mp->dev_minor && t[i].ino == mp->ino;
			if (!cur && (strncmp(mp->path, full[i], plen) != 0 || full[i][plen]))
				continue;
			if (!comm[0])
				base_proc_comm(pid, comm, sizeof(comm));
			if (!map[0])
				snprintf(map, sizeof(map), "%" PRIx64 "-%" PRIx64, mp->start, mp->end);
			r = add_user(&t[i], pid, comm, !cur, makedev(mp->dev_major, mp->dev_minor),
				     (ino_t)mp->ino, map);
		}
	}
	base_maps_free(&m);
	return r;
}

int svc_scan_users(Svc *s, SvcScanTarget *t, size_t n, SvcUnread *unread, BaseErr *e)
{
	return svc_scan_users_except(s, t, n, NULL, 0, unread, e);
}

int svc_scan_users_except(Svc *s, SvcScanTarget *t, size_t n, const pid_t *skip, size_t n_skip,
			  SvcUnread *unread, BaseErr *e)
{
	char **full = calloc(n ? n : 1, sizeof(char *));
	pid_t *pids = NULL;
	size_t n_pids = 0;
	unsigned unreadable = 0;
	int r = 0;

	if (!full)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (!(full[i] = base_strdupf("%s%s", s->root_real, t[i].path)))
			r = -ENOMEM;
	if (r >= 0)
		r = svc_proc_check(e);
	if (r >= 0 && (r = base_proc_ids(0, &pids, &n_pids, NULL)) < 0)
		r = base_err(e, r, "/proc: cannot scan processes: %s", strerror(-r));
	/* both lists ascending: one walk skips the processes the caller knows */
	size_t sk = 0;
	for (size_t k = 0; r >= 0 && k < n_pids; k++) {
		while (sk < n_skip && skip[sk] < pids[k])
			sk++;
		if (pids[k] == getpid() || (sk < n_skip && skip[sk] == pids[k]))
			continue;
		int err = 0;
		int x = scan_pid(pids[k], t, n, full, &err);
		if (x > 0 && unread)
			x = unread_add(unread, pids[k], err) < 0 ? -ENOMEM : x;
		if (x < 0)
			r = x;
		else
			unreadable += (unsigned)x;
	}
	free(pids);
	for (size_t i = 0; i < n; i++)
		free(full[i]);
	free(full);
	return r < 0 ? r : (int)(unreadable > INT_MAX ? INT_MAX : unreadable);
}
