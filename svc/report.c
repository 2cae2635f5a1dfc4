/* Reports, and the step every transaction ends with: swap now or defer. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "svc/internal.h"

static int report_vline(SvcReport *r, int level, const char *fmt, va_list ap)
{
	char *raw = NULL;
	if (vasprintf(&raw, fmt, ap) < 0)
		return -ENOMEM;
	/* report lines quote paths, ids and process names: printable only */
	char *s = base_escape_dup(raw);
	free(raw);
	if (!s)
		return -ENOMEM;
	char **l = realloc(r->lines, (r->n_lines + 1) * sizeof(*l));
	if (l)
		r->lines = l;
	int *lv = realloc(r->levels, (r->n_lines + 1) * sizeof(*lv));
	if (lv)
		r->levels = lv;
	if (!l || !lv) {
		free(s);
		return -ENOMEM;
	}
	r->levels[r->n_lines] = level;
	r->lines[r->n_lines++] = s;
	return 0;
}

int svc_report_line(SvcReport *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int x = report_vline(r, 6, fmt, ap);
	va_end(ap);
	return x;
}

int svc_report_linel(SvcReport *r, int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int x = report_vline(r, level, fmt, ap);
	va_end(ap);
	return x;
}

int svc_report_users(SvcReport *r, const SvcScanTarget *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < t[i].n_users; k++) {
			if (t[i].users[k].old_version)
				continue;
			SvcUser *u = realloc(r->users, (r->n_users + 1) * sizeof(*u));
			char **p = realloc(r->user_paths, (r->n_users + 1) * sizeof(*p));
			if (u)
				r->users = u;
			if (p)
				r->user_paths = p;
			if (!u || !p)
				return -ENOMEM;
			r->users[r->n_users] = t[i].users[k];
			r->user_paths[r->n_users++] = strdup(t[i].path);
		}
	return 0;
}

void svc_report_free(SvcReport *r)
{
	free(r->package);
	for (size_t i = 0; i < r->n_users; i++)
		free(r->user_paths[i]);
	free(r->users);
	free(r->user_paths);
	for (size_t i = 0; i < r->n_lines; i++)
		free(r->lines[i]);
	free(r->lines);
	free(r->levels);
	memset(r, 0, sizeof(*r));
}

void svc_scan_free(SvcScanTarget *t, size_t n)
{
	if (!t)
		return;
	for (size_t i = 0; i < n; i++)
		free(t[i].users);
	free(t);
}

int svc_scan_ops(Svc *s, const PendingTxn *txn, SvcScanTarget **ret, BaseErr *e)
{
	SvcScanTarget *t = calloc(txn->n_ops ? txn->n_ops : 1, sizeof(*t));
	int r;
	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < txn->n_ops; i++) {
		struct stat st;
		t[i].path = txn->ops[i].path;
		if (fstatat(s->rootfd, txn->ops[i].path + 1, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			t[i].dev = st.st_dev;
			t[i].ino = st.st_ino;
		}
	}
	r = svc_scan_users(s, t, txn->n_ops, e);
	if (r < 0) {
		svc_scan_free(t, txn->n_ops);
		return r;
	}
	*ret = t;
	return r;
}

int svc_commit_or_defer(Svc *s, const PendingTxn *t, SvcReport *rep, BaseErr *e)
{
	SvcScanTarget *scan = NULL;
	size_t busy = 0;
	int r = svc_scan_ops(s, t, &scan, e);
	if (r < 0)
		return r;
	int unknown = r;
	r = svc_report_users(rep, scan, t->n_ops);
	busy = rep->n_users;
	svc_scan_free(scan, t->n_ops);
	if (r < 0)
		return r;
	if (busy || unknown) {
		rep->pending = 1;
		for (size_t i = 0; i < rep->n_users; i++)
			svc_report_line(rep, "in use: %s by pid %d (%s)", rep->user_paths[i],
					(int)rep->users[i].pid, rep->users[i].comm);
		/* a process we cannot read may map a target: not a swap */
		if (unknown)
			svc_report_line(rep, "%d process%s could not be read: cannot tell whether "
					"the targets are in use", unknown, unknown == 1 ? "" : "es");
		svc_report_line(rep, "transaction %llu pending: files swap at the next `svc boot` "
				"(restart required)", (unsigned long long)t->number);
		return SVC_RESTART;
	}
	r = pending_apply(&s->store, t, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < t->n_ops; i++)
		svc_report_line(rep, "swapped %s: %s -> %s", t->ops[i].path, t->ops[i].fix_from,
				t->ops[i].fix_to);
	return 0;
}
