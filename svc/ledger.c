/* The ledger: package states and fix levels, derived from the transaction
 * records (nothing else is stored, so nothing can disagree with them). */
#include <string.h>

#include "svc/internal.h"

const PendingEntry *svc_ledger_latest(const PendingList *l, const char *id)
{
	const PendingEntry *last = NULL;
	for (size_t i = 0; i < l->n; i++) {
		const PendingEntry *en = &l->entries[i];
		if (en->txn && en->state != PENDING_STAGING && strcmp(en->txn->package, id) == 0)
			last = en;
	}
	return last;
}

const PendingEntry *svc_ledger_install(const PendingList *l, const char *id)
{
	const PendingEntry *last = NULL;
	for (size_t i = 0; i < l->n; i++) {
		const PendingEntry *en = &l->entries[i];
		if (en->txn && en->state != PENDING_STAGING && en->state != PENDING_QUARANTINED &&
		    en->txn->kind == PENDING_INSTALL && strcmp(en->txn->package, id) == 0)
			last = en;
	}
	return last;
}

/* A refused rollback leaves the fix as it was: skip quarantined rollbacks. */
const char *svc_ledger_state(const PendingList *l, const char *id, const PendingEntry **ret_last)
{
	const PendingEntry *last = NULL;
	for (size_t i = 0; i < l->n; i++) {
		const PendingEntry *en = &l->entries[i];
		if (!en->txn || en->state == PENDING_STAGING || strcmp(en->txn->package, id) != 0)
			continue;
		if (en->state == PENDING_QUARANTINED && en->txn->kind == PENDING_ROLLBACK)
			continue;
		last = en;
	}
	if (ret_last)
		*ret_last = last;
	if (!last)
		return NULL;
	if (last->state == PENDING_QUARANTINED)
		return "quarantined";
	if (last->txn->kind == PENDING_INSTALL)
		return last->state == PENDING_APPLIED ? "installed" : "pending";
	return last->state == PENDING_APPLIED ? "rolled-back" : "rollback-pending";
}

const char *svc_ledger_level(const PendingList *l, const char *path, const uint8_t *sha)
{
	const char *level = NULL;
	for (size_t i = 0; i < l->n; i++) {
		const PendingEntry *en = &l->entries[i];
		if (!en->txn || en->state == PENDING_STAGING)
			continue;
		for (size_t k = 0; k < en->txn->n_ops; k++) {
			const PendingOp *o = &en->txn->ops[k];
			if (strcmp(o->path, path) != 0)
				continue;
			if (memcmp(o->to, sha, BASE_SHA256_LEN) == 0)
				level = o->fix_to;
			else if (!level && memcmp(o->from, sha, BASE_SHA256_LEN) == 0)
				level = o->fix_from;
		}
	}
	return level ? level : "unknown";
}

void svc_ledger_effective(const PendingList *l, const char *path, uint8_t sha[BASE_SHA256_LEN])
{
	for (size_t i = 0; i < l->n; i++) {
		const PendingEntry *en = &l->entries[i];
		if (!en->txn || en->state != PENDING_PENDING)
			continue;
		for (size_t k = 0; k < en->txn->n_ops; k++) {
			const PendingOp *o = &en->txn->ops[k];
			if (strcmp(o->path, path) == 0 && memcmp(o->from, sha, BASE_SHA256_LEN) == 0)
				memcpy(sha, o->to, BASE_SHA256_LEN);
		}
	}
}

int svc_level_is_fix(const char *level)
{
	return level && strcmp(level, "base") != 0 && strcmp(level, "unknown") != 0 &&
	       strcmp(level, "missing") != 0;
}
