/* svc rollback: the reverse transaction.  A pending install that never
 * touched a file is cancelled; an applied one is reversed through the same
 * replay machinery, swapping each backup back in. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "svc/internal.h"

/* Cancel a committed but untouched install: back to staging/, then abort,
 * so a crash in between is finished by recovery. */
static int cancel(Svc *s, const PendingTxn *t, SvcReport *rep, BaseErr *e)
{
	int r = 0;
	if (!s->dry_run)
		r = pending_move(&s->store, t->number, PENDING_PENDING, PENDING_STAGING, e);
	if (r >= 0 && !s->dry_run)
		r = pending_abort(&s->store, t, e);
	if (r >= 0) {
		rep->changed = 1;
		svc_report_line(rep, "%s pending transaction %" PRIu64 " of %s; staged "
				"files removed", s->dry_run ? "would cancel" : "cancelled", t->number,
				t->package);
		r = svc_report_targets(rep, t, SVC_TARGET_CANCEL, NULL);
	}
	return r;
}

static int untouched(Svc *s, const PendingTxn *t)
{
	for (size_t i = 0; i < t->n_ops; i++) {
		PendingOpState st;
		if (pending_op_state(&s->store, &t->ops[i], &st, NULL) < 0 ||
		    st != PENDING_OP_READY)
			return 0;
	}
	return 1;
}

static int plan_reverse(Svc *s, const PendingTxn *inst, uint64_t number, PendingTxn **ret,
			BaseErr *e)
{
	PendingTxn *t = calloc(1, sizeof(*t));
	int r = 0;
	if (!t)
		return -ENOMEM;
	t->number = number;
	t->kind = PENDING_ROLLBACK;
	t->package = strdup(inst->package);
	t->series = strdup(inst->series);
	t->sequence = inst->sequence;
	t->undoes = inst->number;
	t->created = (uint64_t)time(NULL);
	t->ops = calloc(inst->n_ops, sizeof(*t->ops));
	if (!t->package || !t->series || !t->ops) {
		pending_txn_free(t);
		return -ENOMEM;
	}
	for (size_t i = 0; i < inst->n_ops && r >= 0; i++) {
		const PendingOp *in = &inst->ops[i];
		PendingOp *op = &t->ops[t->n_ops++];
		PendingOpState st;
		const char *slash = strrchr(in->path, '/');
		op->path = strdup(in->path);
		op->source = strdup(in->keep);      /* the backup goes back in */
		op->keep = base_strdupf(".%s.svc-%" PRIu64 ".old", slash + 1, number);
		op->source_staged = 0;
		memcpy(op->from, in->to, BASE_SHA256_LEN);
		memcpy(op->to, in->from, BASE_SHA256_LEN);
		op->fix_from = strdup(in->fix_to);
		op->fix_to = strdup(in->fix_from);
		if (!op->path || !op->source || !op->keep || !op->fix_from || !op->fix_to) {
			r = -ENOMEM;
			break;
		}
		if (!pending_valid_name(op->keep)) {
			r = base_err(e, -ENAMETOOLONG, "%s: name too long", in->path);
			break;
		}
		BaseErr why = { 0 };
		r = pending_op_state(&s->store, op, &st, &why);
		if (r >= 0 && st == PENDING_OP_CONFLICT)
			r = base_err(e, -ESTALE, "cannot roll back %s: %s (a later fix on top must "
				     "be rolled back first)", inst->package, why.msg);
	}
	if (r < 0) {
		pending_txn_free(t);
		return r;
	}
	*ret = t;
	return 0;
}

/* A superseded fix has nothing left on disk to roll back. */
static int refuse_superseded(Svc *s, const PendingList *l, const char *id, BaseErr *e)
{
	SvcSupersededList sl = { 0 };
	int r = svc_superseded_load(s, &sl, e);
	const SvcSuperseded *m = r >= 0 ? svc_superseded_find(&sl, l, id) : NULL;
	if (m)
		r = base_err(e, -EINVAL, "%s: superseded: %s %s replaced %s%s; nothing to roll back "
			     "(the package manager's own downgrade is the way back)", id,
			     m->targets[0].package, m->targets[0].version, s->root_real,
			     m->targets[0].path);
	svc_superseded_free(&sl);
	return r;
}

/* A rollback done at once (no process waits on it): its payloads and any
 * leftover backups are garbage now.  The rollback itself is done: a failure
 * here is a warning, and the next svc reconcile tries again.  SVC_RESTART
 * when a payload was kept because a process could not be read (it may still
 * run that fix), else 0. */
static int collect_garbage(Svc *s, SvcReport *rep)
{
	PendingList l = { 0 };
	SvcSupersededList sl = { 0 };
	BaseErr e = { 0 };
	int r = pending_list(&s->store, &l, &e);
	if (r >= 0)
		r = svc_superseded_load(s, &sl, &e);
	if (r >= 0)
		r = svc_gc(s, &l, &sl, rep, &e);
	if (r < 0)
		svc_report_linel(rep, 4, "garbage collection failed (svc reconcile retries): %s",
				 e.msg[0] ? e.msg : base_strerror(r));
	svc_superseded_free(&sl);
	pending_list_free(&l);
	return r == SVC_RESTART ? r : 0;
}

int svc_rollback(Svc *s, const char *id, unsigned flags, SvcReport *ret, BaseErr *e)
{
	PendingList l = { 0 };
	SvcReport rep = { 0 };
	PendingTxn *t = NULL;
	const PendingEntry *last = NULL;
	const char *state;
	uint64_t number;
	int r = svc_txn_begin(s, flags, &rep, e);

	if (r >= 0)
		r = pending_list(&s->store, &l, e);
	if (r < 0)
		goto out;
	rep.package = strdup(id);
	state = svc_ledger_state(&l, id, &last);
	r = refuse_superseded(s, &l, id, e);
	if (r < 0)
		goto out;
	if (!state) {
		r = base_err(e, -ENOENT, "%s: no such fix in %s/var/lib/svc", id, s->root_real);
		goto out;
	}
	if (strcmp(state, "quarantined") == 0) {
		r = base_err(e, -EINVAL, "%s: quarantined, its files were never changed: nothing "
			     "to roll back (%s)", id, last->reason ? last->reason : "");
		goto out;
	}
	if (strcmp(state, "rolled-back") == 0) {
		/* on disk already: bring along every process still running it
		 * (a rollback interrupted before its hot part, or run cold) */
		rep.noop = 1;
		svc_report_line(&rep, "%s is already rolled back on disk", id);
		r = svc_report_targets(&rep, last->txn, SVC_TARGET_NOOP, state);
		if (r >= 0)
			r = svc_hot_rollback(s, last->txn, 1, &rep, e);
		goto out;
	}
	if (strcmp(state, "rollback-pending") == 0) {
		rep.noop = 1;
		rep.pending = 1;
		svc_report_line(&rep, "%s is already %s: nothing to do", id, state);
		r = svc_report_targets(&rep, last->txn, SVC_TARGET_NOOP, state);
		if (r >= 0)
			r = SVC_RESTART;
		goto out;
	}
	if (strcmp(state, "pending") == 0) {
		if (untouched(s, last->txn)) {
			r = cancel(s, last->txn, &rep, e);
			goto out;
		}
		/* an interrupted swap: once committed it rolls forward, then back;
		 * but only as the oldest pending transaction: applied ahead of an
		 * earlier one (a rollback waiting for the reboot), its record
		 * would say "applied" for files that the earlier one then puts
		 * back at boot, and the ledger would lie.  Refuse, change nothing. */
		for (size_t i = 0; i < l.n; i++) {
			const PendingEntry *en = &l.entries[i];
			if (en->state == PENDING_PENDING && en->number < last->number) {
				r = base_err(e, -EBUSY, "%s: transaction %" PRIu64 " (%s of %s) is "
					     "still pending before it: run `svc boot` (restart) "
					     "first; nothing changed", id, en->number,
					     en->txn && en->txn->kind == PENDING_ROLLBACK ?
						     "rollback" : "install",
					     en->txn ? en->txn->package : "an unreadable record");
				goto out;
			}
		}
		if (s->dry_run) {
			/* a real run rolls the interrupted swap forward first */
			rep.changed = 1;
			svc_report_line(&rep, "would finish the interrupted install of %s, then roll "
					"it back", id);
			r = svc_report_targets(&rep, last->txn, SVC_TARGET_SWAP, "interrupted install "
					       "finished, then rolled back");
			goto out;
		}
		r = pending_apply(&s->store, last->txn, e);
		pending_list_free(&l);
		if (r >= 0)
			r = pending_list(&s->store, &l, e);
		if (r < 0)
			goto out;
		last = svc_ledger_latest(&l, id);
	}
	r = svc_next_number(s, &number, e);
	if (r >= 0)
		r = plan_reverse(s, last->txn, number, &t, e);
	/* no staged files: the record is written straight into pending/ */
	if (r >= 0 && !s->dry_run)
		r = pending_write(&s->store, PENDING_PENDING, t, e);
	if (r < 0)
		goto out;
	rep.txn = number;
	rep.changed = 1;
	int hot = (flags & SVC_HOTPATCH) != 0;
	if (!hot) {
		hot = svc_hot_in_memory(s, last->txn, e);
		if (hot < 0) {
			r = hot;
			goto out;
		}
	}
	r = hot ? svc_hot_rollback(s, t, 0, &rep, e) : svc_commit_or_defer(s, t, &rep, e);
	if (r == 0 && !s->dry_run)   /* a dry run removes nothing either */
		r = collect_garbage(s, &rep);
out:
	s->dry_run = 0;
	pending_txn_free(t);
	pending_list_free(&l);
	if (r >= 0 && ret)
		*ret = rep;
	else
		svc_report_free(&rep);
	return r;
}
