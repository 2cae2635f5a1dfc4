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

int svc_report_unread(SvcReport *r, const SvcUnread *u, const char *verdict)
{
	enum { NAMED = 5 };
	for (size_t i = 0; i < u->n && i < NAMED; i++)
		svc_report_line(r, "%s, because pid %d (%s) could not be read: %s (whether it "
				"runs a target is unknown)", verdict, (int)u->procs[i].pid,
				u->procs[i].comm, strerror(u->procs[i].err));
	if (u->n > NAMED)
		svc_report_line(r, "%s, because %zu more processes could not be read", verdict,
				u->n - NAMED);
	return u->n ? SVC_RESTART : 0;
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

static const char *const target_actions[SVC_TARGET_N_ACTIONS] = {
	[SVC_TARGET_SWAP] = "swap",
	[SVC_TARGET_PENDING] = "pending",
	[SVC_TARGET_NOOP] = "no-op",
	[SVC_TARGET_CANCEL] = "cancel",
	[SVC_TARGET_REFUSED] = "refused",
};

const char *svc_target_action_name(SvcTargetAction a)
{
	return (unsigned)a < SVC_TARGET_N_ACTIONS ? target_actions[a] : "?";
}

static const char *const proc_outcomes[SVC_PROC_N_OUTCOMES] = {
	[SVC_PROC_IN_USE] = "in-use",
	[SVC_PROC_NOT_PATCHED] = "not-patched",
	[SVC_PROC_NOT_CONVERGED] = "not-converged",
	[SVC_PROC_WOULD_PATCH] = "would-patch",
	[SVC_PROC_WOULD_REVERT] = "would-revert",
};

const char *svc_proc_outcome_name(SvcProcOutcome o)
{
	return (unsigned)o < SVC_PROC_N_OUTCOMES ? proc_outcomes[o] : "?";
}

int svc_report_user(SvcReport *r, const char *path, const SvcUser *u, SvcProcOutcome o,
		    const char *reason)
{
	size_t n = r->n_users + 1;
	SvcUser *nu = realloc(r->users, n * sizeof(*nu));
	if (nu)
		r->users = nu;
	char **np = realloc(r->user_paths, n * sizeof(*np));
	if (np)
		r->user_paths = np;
	SvcProcOutcome *no = realloc(r->user_outcomes, n * sizeof(*no));
	if (no)
		r->user_outcomes = no;
	char **nr = realloc(r->user_reasons, n * sizeof(*nr));
	if (nr)
		r->user_reasons = nr;
	if (!nu || !np || !no || !nr)
		return -ENOMEM;
	r->users[r->n_users] = *u;
	r->user_paths[r->n_users] = strdup(path);
	r->user_outcomes[r->n_users] = o;
	r->user_reasons[r->n_users] = reason ? strdup(reason) : NULL;
	r->n_users++;
	return r->user_paths[r->n_users - 1] ? 0 : -ENOMEM;
}

int svc_report_users(SvcReport *r, const SvcScanTarget *t, size_t n)
{
	int x = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < t[i].n_users && x >= 0; k++)
			if (!t[i].users[k].old_version)
				x = svc_report_user(r, t[i].path, &t[i].users[k], SVC_PROC_IN_USE,
						    "maps the file: the swap waits for `svc boot`");
	return x;
}

int svc_report_target(SvcReport *r, const char *path, SvcTargetAction a, const char *from,
		      const char *to, const char *reason)
{
	SvcTargetPlan *t = realloc(r->targets, (r->n_targets + 1) * sizeof(*t));
	if (!t)
		return -ENOMEM;
	r->targets = t;
	t = &r->targets[r->n_targets++];
	*t = (SvcTargetPlan){ .action = a };
	t->path = strdup(path);
	t->from = from ? strdup(from) : NULL;
	t->to = to ? strdup(to) : NULL;
	t->reason = reason ? strdup(reason) : NULL;
	return t->path ? 0 : -ENOMEM;
}

int svc_report_targets(SvcReport *r, const PendingTxn *t, SvcTargetAction a, const char *reason)
{
	int x = 0;
	for (size_t i = 0; i < t->n_ops && x >= 0; i++)
		x = svc_report_target(r, t->ops[i].path, a, t->ops[i].fix_from, t->ops[i].fix_to,
				      reason);
	return x;
}

void svc_report_free(SvcReport *r)
{
	free(r->package);
	for (size_t i = 0; i < r->n_users; i++) {
		free(r->user_paths[i]);
		free(r->user_reasons[i]);
	}
	free(r->users);
	free(r->user_paths);
	free(r->user_outcomes);
	free(r->user_reasons);
	for (size_t i = 0; i < r->n_targets; i++) {
		free(r->targets[i].path);
		free(r->targets[i].from);
		free(r->targets[i].to);
		free(r->targets[i].reason);
	}
	free(r->targets);
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
	r = svc_scan_users(s, t, txn->n_ops, NULL, e);
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
	rep->changed = 1; /* the record is (or, dry run, would be) committed */
	if (busy || unknown) {
		rep->pending = 1;
		for (size_t i = 0; i < rep->n_users; i++)
			svc_report_line(rep, "in use: %s by pid %d (%s)", rep->user_paths[i],
					(int)rep->users[i].pid, rep->users[i].comm);
		/* a process we cannot read may map a target: not a swap */
		if (unknown)
			svc_report_line(rep, "%d process%s could not be read: cannot tell whether "
					"the targets are in use", unknown, unknown == 1 ? "" : "es");
		svc_report_line(rep, "transaction %llu %spending: files swap at the next "
				"`svc boot` (restart required)", (unsigned long long)t->number,
				s->dry_run ? "would be left " : "");
		r = svc_report_targets(rep, t, SVC_TARGET_PENDING,
				       unknown ? "in use, or a process could not be read: the swap "
						 "waits for `svc boot`"
					       : "in use: the swap waits for `svc boot`");
		return r < 0 ? r : SVC_RESTART;
	}
	if (!s->dry_run) {
		r = pending_apply(&s->store, t, e);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < t->n_ops; i++)
		svc_report_line(rep, "%s %s: %s -> %s", s->dry_run ? "would swap" : "swapped",
				t->ops[i].path, t->ops[i].fix_from, t->ops[i].fix_to);
	return svc_report_targets(rep, t, SVC_TARGET_SWAP, NULL);
}
