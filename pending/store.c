/* The record store: one directory per state under ROOT/var/lib/svc/.
 * A state change is a rename between two of them, made durable by an fsync
 * of both directories (the new one first: the record must not vanish). */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pending/internal.h"

#define STATE_DIR "var/lib/svc"
#define MAX_RECORD (16u << 20)

static const char *state_dirs[PENDING_N_STATES] = {
	[PENDING_STAGING] = "staging",
	[PENDING_PENDING] = "pending",
	[PENDING_APPLIED] = "applied",
	[PENDING_QUARANTINED] = "quarantine",
};

const char *pending_state_name(PendingState s)
{
	static const char *names[PENDING_N_STATES] = {
		[PENDING_STAGING] = "staging",
		[PENDING_PENDING] = "pending",
		[PENDING_APPLIED] = "applied",
		[PENDING_QUARANTINED] = "quarantined",
	};
	return (unsigned)s < PENDING_N_STATES ? names[s] : "?";
}

/* create: make the state directories (a writer); otherwise open those that
 * exist and leave the others at -1 (a reader changes nothing on disk). */
static int store_open(int rootfd, int create, PendingStore *ret, BaseErr *e)
{
	PendingStore s = { .rootfd = rootfd };
	_cleanup_close_ int top = -1;
	int r;

	for (int i = 0; i < PENDING_N_STATES; i++)
		s.dirfd[i] = -1;
	r = create ? base_fs_mkdir_p(rootfd, STATE_DIR, 0755, &top)
		   : base_fs_open_dir(rootfd, STATE_DIR, &top);
	if (r == -ENOENT && !create) {
		*ret = s;
		return 0;
	}
	if (r < 0)
		return base_err(e, r, "%s: cannot open state directory: %s", STATE_DIR,
				base_strerror(r));
	for (int i = 0; i < PENDING_N_STATES; i++) {
		r = create ? base_fs_mkdir_p(top, state_dirs[i], 0755, &s.dirfd[i])
			   : base_fs_open_dir(top, state_dirs[i], &s.dirfd[i]);
		if (r == -ENOENT && !create)
			continue;
		if (r < 0) {
			pending_store_close(&s);
			return base_err(e, r, "%s/%s: %s", STATE_DIR, state_dirs[i], base_strerror(r));
		}
	}
	*ret = s;
	return 0;
}

int pending_store_open(int rootfd, PendingStore *ret, BaseErr *e)
{
	return store_open(rootfd, 1, ret, e);
}

int pending_store_open_existing(int rootfd, PendingStore *ret, BaseErr *e)
{
	return store_open(rootfd, 0, ret, e);
}

void pending_store_close(PendingStore *s)
{
	for (int i = 0; i < PENDING_N_STATES; i++) {
		if (s->dirfd[i] >= 0)
			close(s->dirfd[i]);
		s->dirfd[i] = -1;
	}
}

static void record_name(char *buf, size_t n, uint64_t number)
{
	snprintf(buf, n, "%010" PRIu64 ".txn", number);
}

/* "0000000007.txn" -> 7; anything else -> 0 (not a record). */
static uint64_t record_number(const char *name)
{
	size_t len = strlen(name);
	if (len != 14 || strcmp(name + 10, ".txn") != 0)
		return 0;
	uint64_t v = 0;
	for (int i = 0; i < 10; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	return v;
}

/* The highest transaction number ever handed out, kept durably so that a
 * number freed by a cancelled (removed) record is never handed out again:
 * kept payloads, attempt counts and superseded markers name records by
 * number.  "N\n", one spelling (as in records); absent: 0 (a store older
 * than the mark: its records are the only evidence). */
#define HIGH_MARK "txn-high"

static int read_high_mark(PendingStore *s, uint64_t *ret, BaseErr *e)
{
	_cleanup_close_ int top = -1;
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len = 0;
	int r = base_fs_open_dir(s->rootfd, STATE_DIR, &top);
	if (r >= 0)
		r = base_fs_read_at(top, HIGH_MARK, 32, &buf, &len);
	if (r == -ENOENT) {
		*ret = 0;
		return 0;
	}
	if (r < 0)
		return base_err(e, r, "%s/%s: %s", STATE_DIR, HIGH_MARK, base_strerror(r));
	uint64_t v = 0;
	size_t i = 0;
	for (; i < len && buf[i] >= '0' && buf[i] <= '9'; i++) {
		if (v > (UINT64_MAX - 9) / 10)
			break;
		v = v * 10 + (uint64_t)(buf[i] - '0');
	}
	if (i == 0 || i + 1 != len || buf[i] != '\n' || (buf[0] == '0' && i > 1))
		return base_err(e, -EBADMSG, "%s/%s: not a transaction number (remove it to "
				"derive the mark from the records)", STATE_DIR, HIGH_MARK);
	*ret = v;
	return 0;
}

int pending_next_number(PendingStore *s, uint64_t *ret, BaseErr *e)
{
	uint64_t max = 0;
	int r = read_high_mark(s, &max, e);
	if (r < 0)
		return r;
	for (int i = 0; i < PENDING_N_STATES; i++) {
		if (s->dirfd[i] < 0)
			continue; /* opened read-only, not there: no records */
		int fd = dup(s->dirfd[i]);
		if (fd < 0)
			return -errno;
		DIR *d = fdopendir(fd);
		if (!d) {
			close(fd);
			return -errno;
		}
		rewinddir(d);
		for (struct dirent *de; (de = readdir(d));) {
			uint64_t n = record_number(de->d_name);
			if (n > max)
				max = n;
		}
		closedir(d);
	}
	if (max >= PENDING_MAX_NUMBER)
		return base_err(e, -EOVERFLOW, "%s: transaction numbers exhausted", STATE_DIR);
	*ret = max + 1;
	return 0;
}

/* Raise the mark to number (one durable step: temp, fsync, rename, fsync
 * of the directory) unless it is there already. */
static int reserve_number(PendingStore *s, uint64_t number, BaseErr *e)
{
	_cleanup_close_ int top = -1;
	uint64_t high = 0;
	char text[32];
	int r = read_high_mark(s, &high, e);
	if (r < 0 || number <= high)
		return r;
	int len = snprintf(text, sizeof(text), "%" PRIu64 "\n", number);
	r = base_fs_open_dir(s->rootfd, STATE_DIR, &top);
	if (r >= 0)
		r = base_fs_write_atomic(top, HIGH_MARK, text, (size_t)len, 0644);
	if (r < 0)
		return base_err(e, r, "%s/%s: %s", STATE_DIR, HIGH_MARK, base_strerror(r));
	return 0;
}

int pending_write(PendingStore *s, PendingState state, const PendingTxn *t, BaseErr *e)
{
	BaseBuf b = { 0 };
	char name[32];
	int r = pending_format(t, &b);
	if (r < 0)
		return base_err(e, r, "cannot format record %" PRIu64, t->number);
	record_name(name, sizeof(name), t->number);
	/* the number is spent before any record carries it: after a crash
	 * here it is never handed out again, at worst left unused */
	r = reserve_number(s, t->number, e);
	if (r < 0) {
		base_buf_free(&b);
		return r;
	}
	r = base_fs_write_atomic(s->dirfd[state], name, b.data, b.len, 0644);
	base_buf_free(&b);
	if (r < 0)
		return base_err(e, r, "%s/%s/%s: %s", STATE_DIR, state_dirs[state], name,
				base_strerror(r));
	return 0;
}

int pending_move(PendingStore *s, uint64_t number, PendingState from, PendingState to,
		 BaseErr *e)
{
	char name[32];
	int r;

	record_name(name, sizeof(name), number);
	r = base_fs_renameat(s->dirfd[from], name, s->dirfd[to], name);
	if (r >= 0)
		r = base_fs_fsync_dir(s->dirfd[to]);
	if (r >= 0)
		r = base_fs_fsync_dir(s->dirfd[from]);
	if (r < 0)
		return base_err(e, r, "%s/%s/%s -> %s: %s", STATE_DIR, state_dirs[from], name,
				state_dirs[to], base_strerror(r));
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	const PendingEntry *x = a, *y = b;
	if (x->number != y->number)
		return x->number < y->number ? -1 : 1;
	return (int)x->state - (int)y->state;
}

static char *read_reason(int dfd, const char *name)
{
	char rname[40];
	uint8_t *buf = NULL;
	size_t len = 0;
	snprintf(rname, sizeof(rname), "%.14s.reason", name);
	if (base_fs_read_at(dfd, rname, 4096, &buf, &len) < 0)
		return NULL;
	while (len > 0 && buf[len - 1] == '\n')
		buf[--len] = 0;
	/* shown on terminals: one line, no control bytes */
	char *safe = memchr(buf, 0, len) ? NULL : base_escape_dup((char *)buf);
	free(buf);
	return safe;
}

int pending_list(PendingStore *s, PendingList *ret, BaseErr *e)
{
	PendingList l = { 0 };
	int r = 0;

	for (int i = 0; i < PENDING_N_STATES && r >= 0; i++) {
		if (s->dirfd[i] < 0)
			continue; /* opened read-only, not there: no records */
		int fd = dup(s->dirfd[i]);
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
		if (!d) {
			r = -errno;
			if (fd >= 0)
				close(fd);
			break;
		}
		rewinddir(d);
		for (struct dirent *de; (de = readdir(d));) {
			uint64_t n = record_number(de->d_name);
			if (!n)
				continue;
			PendingEntry *ne = realloc(l.entries, (l.n + 1) * sizeof(*ne));
			if (!ne) {
				r = -ENOMEM;
				break;
			}
			l.entries = ne;
			PendingEntry *en = &l.entries[l.n++];
			memset(en, 0, sizeof(*en));
			en->state = (PendingState)i;
			en->number = n;
			uint8_t *buf = NULL;
			size_t len = 0;
			BaseErr pe = { 0 };
			int pr = base_fs_read_at(s->dirfd[i], de->d_name, MAX_RECORD, &buf, &len);
			if (pr < 0)
				base_err(&pe, pr, "%s", base_strerror(pr));
			else
				pending_parse((const char *)buf, len, &en->txn, &pe);
			free(buf);
			if (en->txn && en->txn->number != n) {
				pending_txn_free(en->txn);
				en->txn = NULL;
				base_err(&pe, -EBADMSG, "record number does not match its name");
			}
			if (i == PENDING_QUARANTINED)
				en->reason = read_reason(s->dirfd[i], de->d_name);
			if (!en->txn && !en->reason)
				en->reason = base_strdupf("%s/%s/%s: %s", STATE_DIR, state_dirs[i],
							  de->d_name, pe.msg);
		}
		closedir(d);
	}
	if (r < 0) {
		pending_list_free(&l);
		return base_err(e, r, "%s: cannot list records: %s", STATE_DIR, base_strerror(r));
	}
	if (l.n)
		qsort(l.entries, l.n, sizeof(*l.entries), entry_cmp);
	*ret = l;
	return 0;
}

void pending_list_free(PendingList *l)
{
	for (size_t i = 0; i < l->n; i++) {
		pending_txn_free(l->entries[i].txn);
		free(l->entries[i].reason);
	}
	free(l->entries);
	l->entries = NULL;
	l->n = 0;
}

int pending_quarantine(PendingStore *s, PendingState from, uint64_t number,
		       const char *reason, BaseErr *e)
{
	char name[32], rname[40];
	_cleanup_free_ char *text = base_strdupf("%s\n", reason ? reason : "unknown");
	int r;

	record_name(name, sizeof(name), number);
	snprintf(rname, sizeof(rname), "%.14s.reason", name);
	if (!text)
		return -ENOMEM;
	/* the reason first: a quarantined record is never without its why */
	r = base_fs_write_atomic(s->dirfd[PENDING_QUARANTINED], rname, text, strlen(text), 0644);
	if (r < 0)
		return base_err(e, r, "%s/quarantine/%s: %s", STATE_DIR, rname, base_strerror(r));
	return pending_move(s, number, from, PENDING_QUARANTINED, e);
}
