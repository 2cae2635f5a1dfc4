/* pending — pending-rename manifests ("transaction records"): their durable
 * text format, the record store under ROOT/var/lib/svc/, and the crash-safe,
 * idempotent replay that svc runs at install time and at early boot.
 *
 * A transaction is a list of swap operations.  Each swap replaces the file
 * at `path` with the file `source` beside it, keeping the replaced file as a
 * hard link `keep` beside it (the backup, or the undo copy).  Records never
 * change once written; the progress of a transaction is read back from the
 * files themselves (their SHA-256), which is what makes replay idempotent.
 *
 * Record states are directories (docs/formats.md):
 *   staging/     being prepared: on recovery, aborted (staged files removed)
 *   pending/     committed: on recovery, rolled forward in number order
 *   applied/     done (the ledger)
 *   quarantine/  refused: torn, invalid, or its files changed behind its back
 */
#ifndef SVC_PENDING_H
#define SVC_PENDING_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

typedef enum PendingKind {
	PENDING_INSTALL = 1,
	PENDING_ROLLBACK,
} PendingKind;

typedef enum PendingState {
	PENDING_STAGING = 0,
	PENDING_PENDING,
	PENDING_APPLIED,
	PENDING_QUARANTINED,
	PENDING_N_STATES,
} PendingState;

typedef struct PendingOp {
	char *path;                     /* absolute on the serviced system: "/usr/lib/libx.so" */
	char *source;                   /* name in the same directory, renamed onto path */
	char *keep;                     /* name in the same directory: link to the replaced file */
	int source_staged;              /* 1: source is a staged file (removed on abort);
					 * 0: source is a backup (never removed on abort) */
	uint8_t from[BASE_SHA256_LEN];  /* content expected at path before */
	uint8_t to[BASE_SHA256_LEN];    /* content of source, and of path after */
	char *fix_from;                 /* fix level names, for status: "base", "FIX-1" */
	char *fix_to;
} PendingOp;

typedef struct PendingTxn {
	uint64_t number;                /* global order of transactions, from 1 */
	PendingKind kind;
	char *package;                  /* package id */
	char *series;
	uint64_t sequence;
	uint64_t undoes;                /* rollback: number of the install it reverses */
	uint64_t created;               /* seconds since the epoch */
	size_t n_ops;
	PendingOp *ops;
} PendingTxn;

/* ---- record text ---------------------------------------------------------- */
int pending_format(const PendingTxn *t, BaseBuf *out);
/* Torn, truncated, or checksum mismatch: -EBADMSG with a reason. */
int pending_parse(const char *text, size_t len, PendingTxn **ret, BaseErr *e);
void pending_txn_free(PendingTxn *t);
PendingTxn *pending_txn_dup(const PendingTxn *t);

/* ---- record store --------------------------------------------------------- */
typedef struct PendingStore {
	int rootfd;                     /* the serviced root (not owned) */
	int dirfd[PENDING_N_STATES];    /* ROOT/var/lib/svc/<state>/ */
} PendingStore;

/* One record as found in the store; txn is NULL when the record is
 * unreadable (then `error` says why). */
typedef struct PendingEntry {
	PendingState state;
	uint64_t number;
	PendingTxn *txn;
	char *reason;                   /* quarantine reason, or parse error */
} PendingEntry;

typedef struct PendingList {
	size_t n;
	PendingEntry *entries;          /* sorted by number, then state */
} PendingList;

/* ---- paths under the root --------------------------------------------------- */
/* Split "/a/b/c" into an opened, symlink-free directory "a/b" under the root
 * and the last component "c". */
int pending_open_parent(PendingStore *s, const char *path, int *ret_dfd,
			const char **ret_name, BaseErr *e);
/* SHA-256 of dfd/name; -ENOENT if absent; -ELOOP if a symlink; -EINVAL if
 * not a regular file. */
int pending_hash_at(int dfd, const char *name, uint8_t out[BASE_SHA256_LEN]);
int pending_valid_name(const char *s);   /* one path component, no '/' */
int pending_valid_path(const char *s);   /* base_check_path */
int pending_valid_id(const char *s);     /* base_valid_id */


const char *pending_state_name(PendingState s);
int pending_store_open(int rootfd, PendingStore *ret, BaseErr *e);
/* As pending_store_open, but creates nothing (for read-only commands): a
 * missing state directory reads as empty (its dirfd is -1). */
int pending_store_open_existing(int rootfd, PendingStore *ret, BaseErr *e);
void pending_store_close(PendingStore *s);
/* Transaction numbers only grow: the next is above every record and above
 * the durable high-water mark (ROOT/var/lib/svc/txn-high), so a number a
 * cancelled record freed is not handed out again.  Only reads (a dry run
 * asks too); pending_write raises the mark. */
#define PENDING_MAX_NUMBER 9999999999ull   /* ten digits in a record's name */
int pending_next_number(PendingStore *s, uint64_t *ret, BaseErr *e);
/* Write a new record durably into a state directory, its number first
 * made durable in the high-water mark (one more step, when it raises it). */
int pending_write(PendingStore *s, PendingState state, const PendingTxn *t, BaseErr *e);
/* Move a record between state directories (rename + fsync of both). */
int pending_move(PendingStore *s, uint64_t number, PendingState from, PendingState to,
		 BaseErr *e);
int pending_list(PendingStore *s, PendingList *ret, BaseErr *e);
void pending_list_free(PendingList *l);

/* ---- replay ----------------------------------------------------------------- */

/* The state of one op, read from the files. */
typedef enum PendingOpState {
	PENDING_OP_READY = 1,           /* path == from, source == to */
	PENDING_OP_DONE,                /* path == to */
	PENDING_OP_CONFLICT,            /* anything else: changed behind our back */
} PendingOpState;

int pending_op_state(PendingStore *s, const PendingOp *op, PendingOpState *ret, BaseErr *e);

/* Roll a committed (pending/) transaction forward: check every op first,
 * then swap each, then move the record to applied/.  If any op is in
 * conflict, undo the ops already done and quarantine the record (returns
 * -ESTALE with the reason). */
int pending_apply(PendingStore *s, const PendingTxn *t, BaseErr *e);

/* Abandon a staging/ transaction: remove its staged sources, then the record. */
int pending_abort(PendingStore *s, const PendingTxn *t, BaseErr *e);

/* Move a record to quarantine/ with a reason file beside it. */
int pending_quarantine(PendingStore *s, PendingState from, uint64_t number,
		       const char *reason, BaseErr *e);

/* Abort every staging/ record (an install or cancel interrupted before its
 * commit point); pending/ records are left for replay. */
int pending_recover(PendingStore *s, BaseErr *e);

/* What one replay did, for the boot record and status. */
typedef struct PendingOutcome {
	uint64_t number;
	char *package;                  /* NULL for an unreadable record */
	PendingKind kind;
	int result;                     /* 0 applied, 1 aborted, <0 quarantined */
	char *reason;
} PendingOutcome;

typedef struct PendingReport {
	size_t n;
	PendingOutcome *outcomes;
} PendingReport;

/* Recovery and boot: abort every staging/ record, then apply every
 * pending/ record in number order.  A torn record or a conflict quarantines
 * that transaction and replay goes on with the next; an I/O failure stops
 * the replay (later records may depend on it) and leaves it pending.
 * With max_attempts > 0 each pending record counts its tries in
 * pending/N.attempts; one tried max_attempts times already (each try
 * crashed or failed) is undone and quarantined instead.  Returns the number
 * of quarantined transactions (>= 0), or a negative errno. */
int pending_replay(PendingStore *s, unsigned max_attempts, PendingReport *ret, BaseErr *e);
void pending_report_free(PendingReport *r);

#endif
