/* svc reconcile: catch up with what the package manager did.
 *
 * dpkg replaces a file by renaming its new version over the path, so a
 * coldpatched target silently becomes the package's new version: the fix is
 * gone from disk, its backup (a link beside the file) is stale, a deferred
 * swap would be quarantined at the next boot, and processes keep running the
 * old file.  Reconcile, run by the apt hook after every dpkg run (and safe
 * at any time), reads which targets no longer hold what the records put
 * there, and for those the dpkg database vouches for (owned, md5sum
 * matches):
 *   1. marks each fix whose targets were all replaced superseded (a marker,
 *      written atomically: the commit point; see superseded.c);
 *   2. cancels its pending transactions (back to staging/, then aborted, as
 *      rollback cancels: a crash in between is finished by recovery);
 *   3. removes its backups and kept payloads, and the payloads of
 *      rolled-back fixes nothing runs (gc.c);
 *   4. names every process still running a replaced file.
 * Every step reads its work from the disk, so a re-run after a crash at any
 * step finishes the job, and a re-run after success changes nothing.
 * A target changed by something else (no package's md5sum matches), or a
 * fix only some of whose targets were replaced, is left alone and reported:
 * exit 3, "not converged, because ...". */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "svc/internal.h"

typedef struct Target {
	const char *path;
	int applied;                     /* an applied record put `expect` there */
	uint8_t expect[BASE_SHA256_LEN];
	int pending;                     /* a pending record names it */
	int missing;
	uint8_t cur[BASE_SHA256_LEN];
	int replaced;                    /* holds neither: changed behind svc's back */
	SvcDpkgFile dpkg;
} Target;

typedef struct Targets {
	size_t n;
	Target *t;
} Targets;

static void targets_free(Targets *ts)
{
	for (size_t i = 0; i < ts->n; i++)
		svc_dpkg_file_free(&ts->t[i].dpkg);
	free(ts->t);
	memset(ts, 0, sizeof(*ts));
}

static Target *target_get(Targets *ts, const char *path, int add)
{
	for (size_t i = 0; i < ts->n; i++)
		if (strcmp(ts->t[i].path, path) == 0)
			return &ts->t[i];
	if (!add)
		return NULL;
	Target *n = realloc(ts->t, (ts->n + 1) * sizeof(*n));
	if (!n)
		return NULL;
	ts->t = n;
	memset(&n[ts->n], 0, sizeof(*n));
	n[ts->n].path = path;
	return &n[ts->n++];
}

static int live(const PendingEntry *en)
{
	return en->txn && (en->state == PENDING_APPLIED || en->state == PENDING_PENDING);
}

/* Every target of a live record: what it should hold, what it holds, and
 * for the replaced ones what dpkg says. */
static int survey(Svc *s, const PendingList *l, Targets *ts, BaseErr *e)
{
	for (size_t i = 0; i < l->n; i++) {
		const PendingEntry *en = &l->entries[i];
		if (!live(en))
			continue;
		for (size_t k = 0; k < en->txn->n_ops; k++) {
			Target *t = target_get(ts, en->txn->ops[k].path, 1);
			if (!t)
				return -ENOMEM;
			if (en->state == PENDING_APPLIED) {
				t->applied = 1;
				memcpy(t->expect, en->txn->ops[k].to, BASE_SHA256_LEN);
			} else
				t->pending = 1;
		}
	}
	for (size_t i = 0; i < ts->n; i++) {
		Target *t = &ts->t[i];
		_cleanup_close_ int dfd = -1;
		const char *name;
		if (pending_open_parent(&s->store, t->path, &dfd, &name, NULL) < 0 ||
		    pending_hash_at(dfd, name, t->cur) < 0) {
			t->missing = 1;
			continue;
		}
		if (t->applied && memcmp(t->cur, t->expect, BASE_SHA256_LEN) == 0)
			continue;
		/* a pending record's own work: before, half-way or done */
		int own = 0;
		for (size_t k = 0; k < l->n && !own; k++) {
			const PendingEntry *en = &l->entries[k];
			for (size_t o = 0; en->txn && en->state == PENDING_PENDING && o < en->txn->n_ops; o++)
				own |= strcmp(en->txn->ops[o].path, t->path) == 0 &&
				       (memcmp(t->cur, en->txn->ops[o].from, BASE_SHA256_LEN) == 0 ||
					memcmp(t->cur, en->txn->ops[o].to, BASE_SHA256_LEN) == 0);
		}
		t->replaced = !own && (t->applied || t->pending);
	}
	const char **paths = calloc(ts->n ? ts->n : 1, sizeof(*paths));
	SvcDpkgFile *d = calloc(ts->n ? ts->n : 1, sizeof(*d));
	size_t n = 0;
	int r = paths && d ? 0 : -ENOMEM;
	for (size_t i = 0; r >= 0 && i < ts->n; i++)
		if (ts->t[i].replaced)
			paths[n++] = ts->t[i].path;
	if (r >= 0 && n)
		r = svc_dpkg_lookup(s, paths, n, d, e);
	for (size_t i = 0, k = 0; r >= 0 && i < ts->n; i++)
		if (ts->t[i].replaced)
			ts->t[i].dpkg = d[k++];
	free(paths);
	free(d);
	return r;
}

static int by_dpkg(const Target *t)
{
	return t->replaced && t->dpkg.package && t->dpkg.sum == SVC_DPKG_MATCHES;
}

/* Step 1 for one fix: 1 if it is (now) superseded, 0 if not touched, and
 * a report line when it cannot be decided. */
static int supersede(Svc *s, const PendingList *l, Targets *ts, const PendingEntry *last,
		     int *unsettled, SvcReport *rep, BaseErr *e)
{
	const PendingEntry *inst = svc_ledger_install(l, last->txn->package);
	SvcSuperseded m = { 0 };
	size_t n_replaced = 0, n_dpkg = 0;
	int r = 0;
	if (!inst)
		return 0;
	for (size_t o = 0; o < inst->txn->n_ops; o++) {
		Target *t = target_get(ts, inst->txn->ops[o].path, 0);
		n_replaced += t && t->replaced;
		n_dpkg += t && by_dpkg(t);
		if (t && t->missing) {
			svc_report_linel(rep, 3, "%s: %s%s is missing: left alone", inst->txn->package,
					 s->root_real, t->path);
			*unsettled = 1;
		}
	}
	if (!n_replaced)
		return 0;
	if (n_dpkg < inst->txn->n_ops) {
		for (size_t o = 0; o < inst->txn->n_ops; o++) {
			Target *t = target_get(ts, inst->txn->ops[o].path, 0);
			if (t && t->replaced && !by_dpkg(t))
				svc_report_linel(rep, 3, "%s: %s%s changed, but not to its package's "
						 "version (%s): left alone", inst->txn->package,
						 s->root_real, t->path,
						 t->dpkg.package ? svc_dpkg_sum_name(t->dpkg.sum)
								 : "no package owns it");
			else if (t && !t->replaced)
				svc_report_linel(rep, 3, "%s: %s%s still carries it while other targets "
						 "were replaced: not superseded", inst->txn->package,
						 s->root_real, t->path);
		}
		*unsettled = 1;
		return 0;
	}
	m.fix = strdup(last->txn->package);
	m.series = strdup(last->txn->series);
	m.sequence = last->txn->sequence;
	m.txn = last->number;
	m.at = (uint64_t)time(NULL);
	if (!m.fix || !m.series)
		r = -ENOMEM;
	for (size_t o = 0; r >= 0 && o < inst->txn->n_ops; o++) {
		Target *t = target_get(ts, inst->txn->ops[o].path, 0);
		r = svc_superseded_add_target(&m, t->path, t->dpkg.package, t->dpkg.version, t->cur);
	}
	if (r >= 0)
		r = svc_superseded_write(s, &m, e);
	if (r >= 0)
		svc_report_line(rep, "%s: superseded: %s %s replaced %s%s", m.fix, m.targets[0].package,
				m.targets[0].version, s->root_real, m.targets[0].path);
	svc_superseded_clear(&m);
	return r < 0 ? r : 1;
}

static int untouched(Svc *s, const PendingTxn *t)
{
	for (size_t i = 0; i < t->n_ops; i++) {
		PendingOpState st = PENDING_OP_CONFLICT;
		int r = pending_op_state(&s->store, &t->ops[i], &st, NULL);
		if ((r < 0 && r != -ESTALE) || st == PENDING_OP_DONE)
			return 0;
	}
	return 1;
}

/* Step 2: the pending records of superseded fixes. */
static int cancel_pending(Svc *s, const PendingList *l, const SvcSupersededList *sl,
			  int *unsettled, SvcReport *rep, BaseErr *e)
{
	for (size_t i = 0; i < l->n; i++) {
		const PendingEntry *en = &l->entries[i];
		if (!en->txn || en->state != PENDING_PENDING)
			continue;
		const SvcSuperseded *m = svc_superseded_find(sl, l, en->txn->package);
		if (!m || en->number > m->txn)
			continue;
		if (!untouched(s, en->txn)) {
			svc_report_linel(rep, 3, "transaction %" PRIu64 " (%s) is half-applied: left "
					 "for svc boot", en->number, en->txn->package);
			*unsettled = 1;
			continue;
		}
		int r = pending_move(&s->store, en->number, PENDING_PENDING, PENDING_STAGING, e);
		if (r >= 0)
			r = pending_abort(&s->store, en->txn, e);
		if (r < 0)
			return r;
		svc_report_line(rep, "cancelled pending transaction %" PRIu64 " (%s %s): its "
				"target was replaced by %s %s", en->number,
				en->txn->kind == PENDING_INSTALL ? "install" : "rollback",
				en->txn->package, m->targets[0].package, m->targets[0].version);
	}
	return 0;
}

/* Step 4: processes still running a replaced file of a superseded fix. */
static int old_runners(Svc *s, const PendingList *l, const SvcSupersededList *sl,
		       int *unsettled, SvcReport *rep, BaseErr *e)
{
	const SvcSupersededTarget **tg = NULL;
	SvcScanTarget *scan = NULL;
	size_t n = 0;
	int r = 0;
	for (size_t i = 0; i < sl->n; i++) {
		const SvcSuperseded *m = svc_superseded_find(sl, l, sl->items[i].fix);
		for (size_t k = 0; m && k < m->n; k++) {
			size_t j = 0;
			while (j < n && strcmp(tg[j]->path, m->targets[k].path) != 0)
				j++;
			if (j < n)
				continue;
			const SvcSupersededTarget **x = realloc(tg, (n + 1) * sizeof(*x));
			if (!x) {
				free(tg);
				return -ENOMEM;
			}
			tg = x;
			tg[n++] = &m->targets[k];
		}
	}
	if (n && !(scan = calloc(n, sizeof(*scan))))
		r = -ENOMEM;
	for (size_t i = 0; r >= 0 && i < n; i++) {
		struct stat st;
		scan[i].path = tg[i]->path;
		if (fstatat(s->rootfd, tg[i]->path + 1, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			scan[i].dev = st.st_dev;
			scan[i].ino = st.st_ino;
		}
	}
	if (r >= 0 && n)
		r = svc_scan_users(s, scan, n, NULL, e);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		SvcFileStatus f = { .path = (char *)tg[i]->path, .level = (char *)"unknown",
				    .users = scan[i].users, .n_users = scan[i].n_users };
		svc_hot_levels(s, l, &f);
		for (size_t k = 0; k < f.n_users; k++) {
			const SvcUser *u = &f.users[k];
			if (!u->old_version)
				continue;
			const char *how = u->hot ? ", fixed in memory" : ", coldpatch";
			if (svc_level_is_fix(u->level))
				svc_report_linel(rep, 4, "pid %d (%s) still runs the replaced %s%s (%s%s): "
						 "restart it to run %s %s", (int)u->pid, u->comm,
						 s->root_real, f.path, u->level, how, tg[i]->package,
						 tg[i]->version);
			else
				svc_report_linel(rep, 4, "pid %d (%s) still runs the replaced %s%s (not "
						 "fixed): restart it to run %s %s", (int)u->pid, u->comm,
						 s->root_real, f.path, tg[i]->package, tg[i]->version);
			*unsettled = 1;
		}
	}
	svc_scan_free(scan, n);
	free(tg);
	return r;
}

int svc_reconcile(Svc *s, SvcReport *ret, BaseErr *e)
{
	PendingList l = { 0 };
	SvcSupersededList sl = { 0 };
	Targets ts = { 0 };
	SvcReport rep = { 0 };
	int unsettled = 0;
	int r = svc_lock(s, e);
	if (r >= 0)
		r = pending_list(&s->store, &l, e);
	if (r >= 0)
		r = svc_superseded_load(s, &sl, e);
	if (r >= 0)
		r = survey(s, &l, &ts, e);
	/* 1. */
	for (size_t i = 0; r >= 0 && i < l.n; i++) {
		const PendingEntry *en = &l.entries[i], *last = NULL;
		if (!live(en))
			continue;
		const char *state = svc_ledger_state(&l, en->txn->package, &last);
		if (last != en || !state || strcmp(state, "rolled-back") == 0 ||
		    svc_superseded_find(&sl, &l, en->txn->package))
			continue;
		r = supersede(s, &l, &ts, last, &unsettled, &rep, e);
	}
	/* 2.-4. from what is on disk now */
	if (r >= 0) {
		svc_superseded_free(&sl);
		r = svc_superseded_load(s, &sl, e);
	}
	if (r >= 0)
		r = cancel_pending(s, &l, &sl, &unsettled, &rep, e);
	if (r >= 0) {
		pending_list_free(&l);
		r = pending_list(&s->store, &l, e);
	}
	if (r >= 0)
		r = svc_gc(s, &l, &sl, &rep, e);
	if (r == SVC_RESTART) {   /* a payload kept: a process could not be read */
		unsettled = 1;
		r = 0;
	}
	if (r >= 0)
		r = old_runners(s, &l, &sl, &unsettled, &rep, e);
	targets_free(&ts);
	svc_superseded_free(&sl);
	pending_list_free(&l);
	if (r < 0) {
		svc_report_free(&rep);
		return r;
	}
	if (ret)
		*ret = rep;
	else
		svc_report_free(&rep);
	return unsettled ? SVC_RESTART : 0;
}
