/* Garbage collection of backups and kept payloads.
 *
 * What each piece is for, and so when it is garbage:
 *   - an install's backup (the `keep` link, .NAME.svc-N.orig): the way back
 *     for `svc rollback`; garbage once the fix is superseded (the package
 *     manager replaced the file: there is nothing to roll back to) — a
 *     rollback consumes it itself;
 *   - a rollback's `keep` (.NAME.svc-N.old): retired by the replay as soon
 *     as the rollback is applied; one left by a crash in between is garbage;
 *   - a kept payload (var/lib/svc/payloads/): takes the fix out of processes
 *     running it; garbage once the fix is superseded, or rolled back with no
 *     process running it any more (a rollback still waiting on processes
 *     needs it: `svc rollback ID` again brings them along).
 * Each removal is one unlink + directory fsync through base/fs.c, so a crash
 * between two of them leaves only garbage for the next run. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "svc/internal.h"

static int remove_name(int dfd, const char *name, const char *shown, const char *why,
		       SvcReport *rep, BaseErr *e)
{
	if (faccessat(dfd, name, F_OK, AT_SYMLINK_NOFOLLOW) != 0)
		return 0;
	int r = base_fs_unlinkat(dfd, name, 0);
	if (r >= 0)
		r = base_fs_fsync_dir(dfd);
	if (r < 0 && r != -ENOENT)
		return base_err(e, r, "%s: cannot remove: %s", shown, base_strerror(r));
	svc_report_line(rep, "removed %s (%s)", shown, why);
	return 0;
}

/* The keep link of op, unless it is the target itself. */
static int remove_keep(Svc *s, const PendingOp *op, const char *why, SvcReport *rep, BaseErr *e)
{
	_cleanup_close_ int dfd = -1;
	const char *name;
	struct stat a, b;
	if (pending_open_parent(&s->store, op->path, &dfd, &name, NULL) < 0 ||
	    fstatat(dfd, op->keep, &a, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	if (fstatat(dfd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino)
		return 0;
	_cleanup_free_ char *shown = base_strdupf("%s%.*s%s", s->root_real,
						  (int)(name - op->path), op->path, op->keep);
	return shown ? remove_name(dfd, op->keep, shown, why, rep, e) : -ENOMEM;
}

static int remove_payload(Svc *s, const char *fix, const char *path, const char *why,
			  SvcReport *rep, BaseErr *e)
{
	_cleanup_close_ int dfd = -1;
	char name[256];
	if (base_fs_open_dir(s->rootfd, SVC_PAYLOAD_DIR, &dfd) < 0)
		return 0;
	svc_payload_name(name, sizeof(name), fix, path);
	_cleanup_free_ char *shown = base_strdupf("%s/%s/%s", s->root_real, SVC_PAYLOAD_DIR, name);
	return shown ? remove_name(dfd, name, shown, why, rep, e) : -ENOMEM;
}

/* 1 if some process runs fix in its copy of path (from memory or from a
 * coldpatch file it mapped before the rollback); the processes that could
 * not be read (which may) go to unread. */
static int runs_fix(Svc *s, const PendingList *l, const char *path, const char *fix,
		    SvcUnread *unread, BaseErr *e)
{
	SvcScanTarget t = { .path = path };
	SvcFileStatus f = { .path = (char *)path };
	_cleanup_close_ int dfd = -1;
	const char *name;
	uint8_t h[BASE_SHA256_LEN];
	struct stat st;
	int r, runs = 0;
	f.level = (char *)"missing";
	if (pending_open_parent(&s->store, path, &dfd, &name, NULL) >= 0 &&
	    pending_hash_at(dfd, name, h) >= 0 && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		f.level = (char *)svc_ledger_level(l, path, h);
		t.dev = st.st_dev;
		t.ino = st.st_ino;
	}
	r = svc_scan_users(s, &t, 1, unread, e);
	if (r >= 0) {
		f.users = t.users;
		f.n_users = t.n_users;
		svc_hot_levels(s, l, &f);
		for (size_t i = 0; i < f.n_users; i++)
			runs |= strcmp(f.users[i].level, fix) == 0;
	}
	free(t.users);
	return r < 0 ? r : runs;
}

/* Is any payload of rb's fix kept (else nothing to collect, no scan)? */
static int has_payload(Svc *s, const PendingTxn *rb)
{
	_cleanup_close_ int dfd = -1;
	char name[256];
	if (base_fs_open_dir(s->rootfd, SVC_PAYLOAD_DIR, &dfd) < 0)
		return 0;
	for (size_t o = 0; o < rb->n_ops; o++) {
		svc_payload_name(name, sizeof(name), rb->package, rb->ops[o].path);
		if (faccessat(dfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			return 1;
	}
	return 0;
}

/* The payloads of the applied rollback rb's fix, unless a process runs it.
 * A process svc cannot read may: never "no process" from missing data (the
 * payload is that process's only way out of the fix), so they are kept and
 * the report says why: 1.  Else 0, or negative on failure. */
static int collect_rolled_back(Svc *s, const PendingList *l, const PendingTxn *rb,
			       SvcReport *rep, BaseErr *e)
{
	SvcUnread unread = { 0 };
	int r = 0, runs = 0;
	if (!has_payload(s, rb))
		return 0;
	for (size_t o = 0; r >= 0 && !runs && o < rb->n_ops; o++)
		r = runs = runs_fix(s, l, rb->ops[o].path, rb->package, &unread, e);
	if (r >= 0 && !runs && unread.n) {
		_cleanup_free_ char *kept = base_strdupf("kept the payload of %s (rolled back)",
							 rb->package);
		r = kept ? svc_report_unread(rep, &unread, kept) > 0 : -ENOMEM;
	} else if (r >= 0 && !runs) {
		_cleanup_free_ char *why = base_strdupf("%s is rolled back", rb->package);
		r = why ? 0 : -ENOMEM;
		for (size_t o = 0; r >= 0 && o < rb->n_ops; o++)
			r = remove_payload(s, rb->package, rb->ops[o].path, why, rep, e);
	} else if (r > 0)
		r = 0;
	svc_unread_free(&unread);
	return r;
}

int svc_gc(Svc *s, const PendingList *l, const SvcSupersededList *sl, SvcReport *rep,
	   BaseErr *e)
{
	int r = 0, unknown = 0;
	/* superseded fixes: every backup of their records, every payload */
	for (size_t i = 0; r >= 0 && i < sl->n; i++) {
		const SvcSuperseded *m = svc_superseded_find(sl, l, sl->items[i].fix);
		_cleanup_free_ char *why = m ? base_strdupf("%s is superseded", m->fix) : NULL;
		if (!m)
			continue;
		if (!why)
			return -ENOMEM;
		for (size_t k = 0; r >= 0 && k < l->n; k++) {
			const PendingEntry *en = &l->entries[k];
			if (!en->txn || en->state != PENDING_APPLIED || en->number > m->txn ||
			    en->txn->kind != PENDING_INSTALL || strcmp(en->txn->package, m->fix) != 0)
				continue;
			for (size_t o = 0; r >= 0 && o < en->txn->n_ops; o++)
				r = remove_keep(s, &en->txn->ops[o], why, rep, e);
		}
		for (size_t k = 0; r >= 0 && k < m->n; k++)
			r = remove_payload(s, m->fix, m->targets[k].path, why, rep, e);
	}
	/* applied rollbacks: a keep their replay did not get to retire */
	for (size_t k = 0; r >= 0 && k < l->n; k++) {
		const PendingEntry *en = &l->entries[k];
		if (!en->txn || en->state != PENDING_APPLIED || en->txn->kind != PENDING_ROLLBACK)
			continue;
		for (size_t o = 0; r >= 0 && o < en->txn->n_ops; o++)
			r = remove_keep(s, &en->txn->ops[o], "left by an interrupted rollback", rep, e);
	}
	/* rolled-back fixes no process runs any more: their payloads */
	for (size_t k = 0; r >= 0 && k < l->n; k++) {
		const PendingEntry *en = &l->entries[k];
		const PendingEntry *last = NULL;
		if (!en->txn || en->txn->kind != PENDING_ROLLBACK || en->state != PENDING_APPLIED)
			continue;
		const char *state = svc_ledger_state(l, en->txn->package, &last);
		if (!state || strcmp(state, "rolled-back") != 0 || last != en)
			continue;
		r = collect_rolled_back(s, l, en->txn, rep, e);
		unknown |= r > 0;
	}
	return r < 0 ? r : unknown ? SVC_RESTART : 0;
}
