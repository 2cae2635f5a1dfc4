/* Which processes use a file: one pass over /proc/PID/maps.  A mapping is of
 * the current file when its dev:inode matches; of an older version when its
 * path names the same file but the inode differs (the file was replaced
 * under it, the kernel shows " (deleted)"). */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static int scan_pid(Svc *s, pid_t pid, SvcScanTarget *t, size_t n, char **full)
{
	char path[64], comm[32] = "";
	char *line = NULL;
	size_t cap = 0;
	int r = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0; /* gone, or not ours to read */
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

int svc_scan_users(Svc *s, SvcScanTarget *t, size_t n, BaseErr *e)
{
	char **full = calloc(n ? n : 1, sizeof(char *));
	DIR *d = NULL;
	int r = 0;

	if (!full)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (!(full[i] = base_strdupf("%s%s", s->root_real, t[i].path)))
			r = -ENOMEM;
	if (r >= 0 && !(d = opendir("/proc")))
		r = base_err(e, -errno, "/proc: cannot scan processes: %s", strerror(errno));
	for (struct dirent *de; r >= 0 && (de = readdir(d));) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid_t pid = (pid_t)atoi(de->d_name);
		if (pid == getpid())
			continue;
		r = scan_pid(s, pid, t, n, full);
	}
	if (d)
		closedir(d);
	for (size_t i = 0; i < n; i++)
		free(full[i]);
	free(full);
	return r;
}
