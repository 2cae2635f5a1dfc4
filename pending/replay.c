/* Replay of transaction records: the one code path that swaps files, used by
 * `svc install` (swap now), `svc rollback` and `svc boot` alike.
 *
 * Each swap is:   link(path -> keep); fsync(dir); rename(source -> path); fsync(dir)
 * and its undo:   link(path -> source); fsync(dir); rename(keep -> path); fsync(dir)
 * Progress is read from the files (SHA-256 of path and source), so a crash
 * between any two steps resumes correctly: a record in pending/ rolls forward. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pending/internal.h"

int pending_open_parent(PendingStore *s, const char *path, int *ret_dfd,
			const char **ret_name, BaseErr *e)
{
	const char *slash = strrchr(path, '/');
	_cleanup_free_ char *dir = NULL;
	int r;

	if (!pending_valid_path(path) || !slash)
		return base_err(e, -EINVAL, "%s: invalid target path", path);
	dir = strndup(path + 1, (size_t)(slash - path - (slash > path ? 1 : 0)));
	if (!dir)
		return -ENOMEM;
	r = base_fs_open_dir(s->rootfd, dir, ret_dfd);
	if (r < 0)
		return base_err(e, r, "%s: cannot open its directory: %s", path, base_strerror(r));
	*ret_name = slash + 1;
	return 0;
}

int pending_hash_at(int dfd, const char *name, uint8_t out[BASE_SHA256_LEN])
{
	_cleanup_close_ int fd = -1;
	int r = base_fs_open_regular(dfd, name, O_NOFOLLOW, &fd);
	if (r < 0)
		return r;
	return base_sha256_fd(fd, out);
}

static int op_state_at(int dfd, const char *name, const PendingOp *op, PendingOpState *ret,
		       BaseErr *e)
{
	uint8_t h[BASE_SHA256_LEN];
	int r = pending_hash_at(dfd, name, h);

	if (r == -ELOOP || r == -EINVAL) {
		base_err(e, -ESTALE, "%s: %s", op->path,
			 r == -ELOOP ? "is now a symbolic link" : "is no longer a regular file");
		*ret = PENDING_OP_CONFLICT;
		return 0;
	}
	if (r < 0 && r != -ENOENT)
		return base_err(e, r, "%s: cannot read: %s", op->path, base_strerror(r));
	if (r >= 0 && memcmp(h, op->to, BASE_SHA256_LEN) == 0) {
		*ret = PENDING_OP_DONE;
		return 0;
	}
	if (r == -ENOENT || memcmp(h, op->from, BASE_SHA256_LEN) != 0) {
		base_err(e, -ESTALE, "%s: %s (expected fix level %s)", op->path,
			 r == -ENOENT ? "is missing" : "was changed behind svc's back",
			 op->fix_from);
		*ret = PENDING_OP_CONFLICT;
		return 0;
	}
	r = pending_hash_at(dfd, op->source, h);
	if (r < 0 || memcmp(h, op->to, BASE_SHA256_LEN) != 0) {
		base_err(e, -ESTALE, "%s: its replacement %s is %s", op->path, op->source,
			 r < 0 ? "missing" : "not the signed version");
		*ret = PENDING_OP_CONFLICT;
		return 0;
	}
	*ret = PENDING_OP_READY;
	return 0;
}

int pending_op_state(PendingStore *s, const PendingOp *op, PendingOpState *ret, BaseErr *e)
{
	_cleanup_close_ int dfd = -1;
	const char *name;
	int r = pending_open_parent(s, op->path, &dfd, &name, e);
	if (r == -ELOOP || r == -ENOENT || r == -ENOTDIR) {
		*ret = PENDING_OP_CONFLICT; /* its directory moved or became a link */
		return 0;
	}
	if (r < 0)
		return r;
	return op_state_at(dfd, name, op, ret, e);
}

static int same_inode(int dfd, const char *a, const char *b)
{
	struct stat x, y;
	if (fstatat(dfd, a, &x, AT_SYMLINK_NOFOLLOW) < 0 ||
	    fstatat(dfd, b, &y, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	return x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/* link(name -> alias) unless alias already names the same file */
static int link_alias(int dfd, const char *name, const char *alias)
{
	int r;
	if (same_inode(dfd, name, alias))
		return 0;
	if (faccessat(dfd, alias, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		r = base_fs_unlinkat(dfd, alias, 0);
		if (r < 0)
			return r;
	}
	r = base_fs_linkat(dfd, name, dfd, alias);
	if (r < 0)
		return r;
	return base_fs_fsync_dir(dfd);
}

/* Swaps one op that pending_apply found READY (both files hashed a moment
 * ago, under svc's lock: hashing them again would read every byte twice). */
static int swap_op(PendingStore *s, const PendingOp *op, BaseErr *e)
{
	_cleanup_close_ int dfd = -1;
	const char *name;
	int r = pending_open_parent(s, op->path, &dfd, &name, e);
	if (r < 0)
		return r;
	/* the replaced file keeps a name before it loses its own */
	r = link_alias(dfd, name, op->keep);
	if (r >= 0)
		r = base_fs_renameat(dfd, op->source, dfd, name);
	if (r >= 0)
		r = base_fs_fsync_dir(dfd);
	if (r < 0)
		return base_err(e, r, "%s: swap failed: %s", op->path, base_strerror(r));
	return 0;
}

static int unswap_op(PendingStore *s, const PendingOp *op, BaseErr *e)
{
	_cleanup_close_ int dfd = -1;
	const char *name;
	uint8_t h[BASE_SHA256_LEN];
	int r = pending_open_parent(s, op->path, &dfd, &name, e);
	if (r < 0)
		return r;
	if (pending_hash_at(dfd, name, h) < 0 || memcmp(h, op->to, BASE_SHA256_LEN) != 0)
		return 0; /* not swapped: nothing to undo */
	if (pending_hash_at(dfd, op->keep, h) < 0 || memcmp(h, op->from, BASE_SHA256_LEN) != 0)
		return base_err(e, -ESTALE, "%s: cannot undo: %s is gone", op->path, op->keep);
	r = link_alias(dfd, name, op->source);
	if (r >= 0)
		r = base_fs_renameat(dfd, op->keep, dfd, name);
	if (r >= 0)
		r = base_fs_fsync_dir(dfd);
	if (r < 0)
		return base_err(e, r, "%s: undo failed: %s", op->path, base_strerror(r));
	return 0;
}

/* After a rollback is committed, the files it replaced are garbage. */
static void retire(PendingStore *s, const PendingTxn *t)
{
	if (t->kind != PENDING_ROLLBACK)
		return;
	for (size_t i = 0; i < t->n_ops; i++) {
		_cleanup_close_ int dfd = -1;
		const char *name;
		if (pending_open_parent(s, t->ops[i].path, &dfd, &name, NULL) < 0)
			continue;
		if (faccessat(dfd, t->ops[i].keep, F_OK, AT_SYMLINK_NOFOLLOW) == 0 &&
		    base_fs_unlinkat(dfd, t->ops[i].keep, 0) >= 0)
			base_fs_fsync_dir(dfd);
	}
}

/* A quarantined install will never be replayed: its staged files go.  Only
 * sources that are not the target's current content are removed. */
static void drop_staged(PendingStore *s, const PendingTxn *t)
{
	for (size_t i = 0; i < t->n_ops; i++) {
		_cleanup_close_ int dfd = -1;
		const char *name;
		if (!t->ops[i].source_staged ||
		    pending_open_parent(s, t->ops[i].path, &dfd, &name, NULL) < 0)
			continue;
		if (faccessat(dfd, t->ops[i].source, F_OK, AT_SYMLINK_NOFOLLOW) == 0 &&
		    !same_inode(dfd, name, t->ops[i].source) &&
		    base_fs_unlinkat(dfd, t->ops[i].source, 0) >= 0)
			base_fs_fsync_dir(dfd);
	}
}

/* A record too torn to parse is quarantined without being believed; but
 * the files it staged are svc's own and named by the record's number,
 * ".NAME.svc-N.new" beside each target.  For each "op PATH" line still
 * legible (a valid path), exactly that name goes, if it is a regular file
 * and not the target itself: nothing else a hostile record names is
 * touched.  (The backups, ".orig", are never removed: not staged.) */
static void drop_staged_unreadable(PendingStore *s, int state_dfd, uint64_t number)
{
	char rec[32];
	uint8_t *buf = NULL;
	size_t len = 0;
	snprintf(rec, sizeof(rec), "%010" PRIu64 ".txn", number);
	if (base_fs_read_at(state_dfd, rec, 16u << 20, &buf, &len) < 0)
		return;
	for (const char *p = (const char *)buf, *end = p + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		if (eol - p > 3 && memcmp(p, "op ", 3) == 0) {
			_cleanup_free_ char *path = strndup(p + 3, (size_t)(eol - p - 3));
			_cleanup_free_ char *staged = NULL;
			_cleanup_close_ int dfd = -1;
			const char *name;
			struct stat st;
			if (path && pending_valid_path(path) &&
			    pending_open_parent(s, path, &dfd, &name, NULL) >= 0 &&
			    (staged = base_strdupf(".%s.svc-%" PRIu64 ".new", name, number)) &&
			    pending_valid_name(staged) &&
			    fstatat(dfd, staged, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
			    !same_inode(dfd, name, staged) && base_fs_unlinkat(dfd, staged, 0) >= 0)
				base_fs_fsync_dir(dfd);
		}
		p = eol + 1;
	}
	free(buf);
}

/* Quarantine an unreadable record, then drop what it staged. */
static int quarantine_unreadable(PendingStore *s, PendingState from, const PendingEntry *en,
				 BaseErr *e)
{
	int r = pending_quarantine(s, from, en->number, en->reason, e);
	if (r >= 0)
		drop_staged_unreadable(s, s->dirfd[PENDING_QUARANTINED], en->number);
	return r;
}

static void undo_all(PendingStore *s, const PendingTxn *t, BaseErr *e)
{
	for (size_t i = t->n_ops; i > 0; i--)   /* newest first, no unsigned wrap */
		unswap_op(s, &t->ops[i - 1], e);
}

int pending_apply(PendingStore *s, const PendingTxn *t, BaseErr *e)
{
	BaseErr why = { 0 };
	int conflict = 0, r;
	PendingOpState *st = calloc(t->n_ops, sizeof(*st));

	if (!st)
		return -ENOMEM;
	/* check every op before changing anything (a record names each file
	 * once: no swap below changes a file another op was checked against) */
	for (size_t i = 0; i < t->n_ops; i++) {
		r = pending_op_state(s, &t->ops[i], &st[i], &why);
		if (r < 0) { /* a refusal is st == CONFLICT with the reason in why */
			free(st);
			return base_err(e, r, "%s", why.msg);
		}
		if (st[i] == PENDING_OP_CONFLICT)
			conflict = 1;
	}
	if (conflict) {
		free(st);
		/* refused whole: ops done by an earlier, interrupted replay go back */
		undo_all(s, t, NULL);
		r = pending_quarantine(s, PENDING_PENDING, t->number, why.msg, e);
		if (r < 0)
			return r;
		drop_staged(s, t);
		return base_err(e, -ESTALE, "transaction %" PRIu64 " (%s) refused: %s", t->number,
				t->package, why.msg);
	}
	for (size_t i = 0; i < t->n_ops; i++) {
		r = st[i] == PENDING_OP_READY ? swap_op(s, &t->ops[i], e) : 0;
		if (r < 0) {
			/* an I/O failure, not a crash: put back what was done; the record
			 * stays pending and the next replay tries again */
			free(st);
			undo_all(s, t, NULL);
			return r;
		}
	}
	free(st);
	r = pending_move(s, t->number, PENDING_PENDING, PENDING_APPLIED, e);
	if (r < 0)
		return r;
	retire(s, t);
	return 0;
}

int pending_abort(PendingStore *s, const PendingTxn *t, BaseErr *e)
{
	char name[32];
	int r;

	for (size_t i = 0; i < t->n_ops; i++) {
		_cleanup_close_ int dfd = -1;
		const char *tname;
		if (!t->ops[i].source_staged)
			continue;
		r = pending_open_parent(s, t->ops[i].path, &dfd, &tname, NULL);
		if (r == -ENOENT)
			continue;
		if (r < 0)
			return base_err(e, r, "%s: cannot open its directory", t->ops[i].path);
		if (faccessat(dfd, t->ops[i].source, F_OK, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		r = base_fs_unlinkat(dfd, t->ops[i].source, 0);
		if (r >= 0)
			r = base_fs_fsync_dir(dfd);
		if (r < 0)
			return base_err(e, r, "%s: cannot remove staged %s: %s", t->ops[i].path,
					t->ops[i].source, base_strerror(r));
	}
	/* the record goes last: while it exists, the staged files can be found */
	snprintf(name, sizeof(name), "%010" PRIu64 ".txn", t->number);
	r = base_fs_unlinkat(s->dirfd[PENDING_STAGING], name, 0);
	if (r >= 0)
		r = base_fs_fsync_dir(s->dirfd[PENDING_STAGING]);
	if (r < 0 && r != -ENOENT)
		return base_err(e, r, "staging/%s: %s", name, base_strerror(r));
	return 0;
}

/* A crash inside base_fs_write_atomic leaves ".NAME.tmp" in a state
 * directory: never a record, always safe to remove. */
static int sweep_temps(PendingStore *s, BaseErr *e)
{
	for (int i = 0; i < PENDING_N_STATES; i++) {
		int fd = dup(s->dirfd[i]), r = 0;
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
		if (!d) {
			if (fd >= 0)
				close(fd);
			return base_err(e, -errno, "var/lib/svc/%s: %s", pending_state_name((PendingState)i),
					strerror(errno));
		}
		rewinddir(d);
		for (struct dirent *de; r >= 0 && (de = readdir(d));) {
			size_t n = strlen(de->d_name);
			int tmp = de->d_name[0] == '.' && n >= 5 && strcmp(de->d_name + n - 4, ".tmp") == 0;
			/* an attempt count whose record has left pending/ */
			int stale = 0;
			if (i == PENDING_PENDING && n == 19 && strcmp(de->d_name + 10, ".attempts") == 0) {
				char rec[16];
				snprintf(rec, sizeof(rec), "%.10s.txn", de->d_name);
				stale = faccessat(s->dirfd[i], rec, F_OK, AT_SYMLINK_NOFOLLOW) != 0;
			}
			if (!tmp && !stale)
				continue;
			r = base_fs_unlinkat(s->dirfd[i], de->d_name, 0);
			if (r >= 0)
				r = base_fs_fsync_dir(s->dirfd[i]);
		}
		closedir(d);
		if (r < 0)
			return base_err(e, r, "var/lib/svc: cannot remove a stale temp file: %s",
					base_strerror(r));
	}
	return 0;
}

int pending_recover(PendingStore *s, BaseErr *e)
{
	PendingList l = { 0 };
	int r = sweep_temps(s, e);
	if (r < 0)
		return r;
	r = pending_list(s, &l, e);
	for (size_t i = 0; r >= 0 && i < l.n; i++) {
		PendingEntry *en = &l.entries[i];
		if (en->state != PENDING_STAGING)
			continue;
		r = en->txn ? pending_abort(s, en->txn, e)
			    : quarantine_unreadable(s, PENDING_STAGING, en, e);
	}
	pending_list_free(&l);
	return r < 0 ? r : 0;
}

static int add_outcome(PendingReport *rep, const PendingEntry *en, int result,
		       const char *reason)
{
	PendingOutcome *o = realloc(rep->outcomes, (rep->n + 1) * sizeof(*o));
	if (!o)
		return -ENOMEM;
	rep->outcomes = o;
	o = &rep->outcomes[rep->n++];
	memset(o, 0, sizeof(*o));
	o->number = en->number;
	o->result = result;
	if (en->txn) {
		o->package = strdup(en->txn->package);
		o->kind = en->txn->kind;
	}
	if (reason)
		o->reason = strdup(reason);
	return 0;
}

/* Boot attempts of a pending transaction: pending/N.attempts, a decimal
 * count written before each try, removed once the record leaves pending/. */
static void attempts_name(char *buf, size_t n, uint64_t number)
{
	snprintf(buf, n, "%010" PRIu64 ".attempts", number);
}

static unsigned read_attempts(PendingStore *s, uint64_t number)
{
	char name[40];
	uint8_t *buf = NULL;
	size_t len = 0;
	unsigned c = 0;
	attempts_name(name, sizeof(name), number);
	if (base_fs_read_at(s->dirfd[PENDING_PENDING], name, 64, &buf, &len) >= 0)
		c = (unsigned)strtoul((char *)buf, NULL, 10);
	free(buf);
	return c;
}

static int write_attempts(PendingStore *s, uint64_t number, unsigned c, BaseErr *e)
{
	char name[40], text[32];
	attempts_name(name, sizeof(name), number);
	snprintf(text, sizeof(text), "%u\n", c);
	int r = base_fs_write_atomic(s->dirfd[PENDING_PENDING], name, text, strlen(text), 0644);
	if (r < 0)
		return base_err(e, r, "var/lib/svc/pending/%s: %s", name, base_strerror(r));
	return 0;
}

static void drop_attempts(PendingStore *s, uint64_t number)
{
	char name[40];
	attempts_name(name, sizeof(name), number);
	if (faccessat(s->dirfd[PENDING_PENDING], name, F_OK, AT_SYMLINK_NOFOLLOW) == 0 &&
	    base_fs_unlinkat(s->dirfd[PENDING_PENDING], name, 0) >= 0)
		base_fs_fsync_dir(s->dirfd[PENDING_PENDING]);
}

/* Replay one committed record at boot, counting the attempt first: a
 * transaction that keeps crashing or failing the boot is given up on after
 * max_attempts, its files put back to their old content. */
static int replay_pending(PendingStore *s, const PendingTxn *t, unsigned max_attempts,
			  BaseErr *e)
{
	int r;
	if (max_attempts) {
		unsigned c = read_attempts(s, t->number);
		if (c >= max_attempts) {
			_cleanup_free_ char *why = base_strdupf(
				"gave up after %u interrupted or failed boot attempts", c);
			undo_all(s, t, NULL);
			r = pending_quarantine(s, PENDING_PENDING, t->number, why, e);
			if (r < 0)
				return r;
			drop_staged(s, t);
			drop_attempts(s, t->number);
			return base_err(e, -ESTALE, "%s", why ? why : "gave up");
		}
		r = write_attempts(s, t->number, c + 1, e);
		if (r < 0)
			return r;
	}
	r = pending_apply(s, t, e);
	if (max_attempts && (r >= 0 || r == -ESTALE))
		drop_attempts(s, t->number);
	return r;
}

int pending_replay(PendingStore *s, unsigned max_attempts, PendingReport *ret, BaseErr *e)
{
	PendingList l = { 0 };
	PendingReport rep = { 0 };
	int quarantined = 0, r;

	r = sweep_temps(s, e);
	if (r >= 0)
		r = pending_list(s, &l, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < l.n && r >= 0; i++) {
		PendingEntry *en = &l.entries[i];
		BaseErr one = { 0 };
		int res;

		switch (en->state) {
		case PENDING_STAGING:
			/* an install or cancel interrupted before its commit point */
			if (en->txn)
				res = pending_abort(s, en->txn, &one);
			else
				res = quarantine_unreadable(s, PENDING_STAGING, en, &one);
			if (res < 0) {
				r = base_err(e, res, "%s", one.msg);
				break;
			}
			r = add_outcome(&rep, en, en->txn ? 1 : -EBADMSG, en->reason);
			quarantined += !en->txn;
			break;
		case PENDING_PENDING:
			if (!en->txn) {
				res = quarantine_unreadable(s, PENDING_PENDING, en, &one);
				if (res < 0) {
					r = base_err(e, res, "%s", one.msg);
					break;
				}
				quarantined++;
				r = add_outcome(&rep, en, -EBADMSG, en->reason);
				break;
			}
			res = replay_pending(s, en->txn, max_attempts, &one);
			if (res == -ESTALE)
				quarantined++;
			else if (res < 0) {
				r = base_err(e, res, "%s", one.msg);
				break;
			}
			r = add_outcome(&rep, en, res, res < 0 ? one.msg : NULL);
			break;
		case PENDING_APPLIED:
			if (en->txn)
				retire(s, en->txn); /* a crash may have come before it */
			break;
		case PENDING_QUARANTINED:
			if (en->txn)
				drop_staged(s, en->txn); /* likewise */
			break;
		default:
			break;
		}
	}
	pending_list_free(&l);
	if (r < 0) {
		pending_report_free(&rep);
		return r;
	}
	if (ret)
		*ret = rep;
	else
		pending_report_free(&rep);
	return quarantined;
}

void pending_report_free(PendingReport *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->outcomes[i].package);
		free(r->outcomes[i].reason);
	}
	free(r->outcomes);
	r->outcomes = NULL;
	r->n = 0;
}
