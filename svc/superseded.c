/* Superseded fixes: a fix whose target files the package manager replaced
 * (an apt upgrade or reinstall) is no longer on disk, and can never be again
 * through its records: their `from` content is gone.  The transaction
 * records never change, so the fact lives beside them, one marker per fix:
 *   ROOT/var/lib/svc/superseded/<FIX>     (docs/formats.md)
 * written atomically by svc reconcile.  A marker covers the fix's records up
 * to its `txn`: installing the fix again later (a new, higher transaction)
 * makes it live again.  New transaction numbers also count the markers
 * (svc_next_number): a marker written before the store kept its
 * high-water mark (pending_next_number) may name a number no record keeps. */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "svc/internal.h"

#define MARKER_MAX (1u << 20)

void svc_superseded_clear(SvcSuperseded *m)
{
	free(m->fix);
	free(m->series);
	for (size_t k = 0; k < m->n; k++) {
		free(m->targets[k].path);
		free(m->targets[k].package);
		free(m->targets[k].version);
	}
	free(m->targets);
	memset(m, 0, sizeof(*m));
}

void svc_superseded_free(SvcSupersededList *l)
{
	for (size_t i = 0; i < l->n; i++)
		svc_superseded_clear(&l->items[i]);
	free(l->items);
	for (size_t i = 0; i < l->n_bad; i++)
		free(l->bad[i]);
	free(l->bad);
	memset(l, 0, sizeof(*l));
}

int svc_superseded_add_target(SvcSuperseded *m, const char *path, const char *package,
			      const char *version, const uint8_t sha[BASE_SHA256_LEN])
{
	SvcSupersededTarget *t = realloc(m->targets, (m->n + 1) * sizeof(*t));
	if (!t)
		return -ENOMEM;
	m->targets = t;
	t = &t[m->n++];
	t->path = strdup(path);
	t->package = strdup(package);
	t->version = strdup(version ? version : "?");
	memcpy(t->sha256, sha, BASE_SHA256_LEN);
	return t->path && t->package && t->version ? 0 : -ENOMEM;
}

static int format(const SvcSuperseded *m, BaseBuf *b)
{
	char hex[BASE_SHA256_HEX];
	int r = base_buf_printf(b, "svc-superseded 1\nfix %s\nseries %s\nsequence %" PRIu64
				"\ntxn %" PRIu64 "\nat %" PRIu64 "\n", m->fix, m->series,
				m->sequence, m->txn, m->at);
	for (size_t i = 0; r >= 0 && i < m->n; i++) {
		base_hex(hex, m->targets[i].sha256, BASE_SHA256_LEN);
		r = base_buf_printf(b, "target %s %s %s %s\n", m->targets[i].path,
				    m->targets[i].package, m->targets[i].version, hex);
	}
	return r;
}

/* Parse one marker; -EBADMSG on anything unexpected. */
static int parse(char *text, SvcSuperseded *m)
{
	int line_no = 0, have = 0;
	for (char *line = text, *next; line && *line; line = next, line_no++) {
		next = strchr(line, '\n');
		if (!next)
			return -EBADMSG;
		*next++ = 0;
		char *sp = strchr(line, ' ');
		if (!sp)
			return -EBADMSG;
		*sp = 0;
		const char *key = line, *val = sp + 1;
		char *end = NULL;
		if (line_no == 0) {
			if (strcmp(key, "svc-superseded") != 0 || strcmp(val, "1") != 0)
				return -EBADMSG;
		} else if (strcmp(key, "fix") == 0 && !m->fix && pending_valid_id(val)) {
			m->fix = strdup(val);
			have |= 1;
		} else if (strcmp(key, "series") == 0 && !m->series && pending_valid_id(val)) {
			m->series = strdup(val);
			have |= 2;
		} else if (strcmp(key, "sequence") == 0 || strcmp(key, "txn") == 0 ||
			   strcmp(key, "at") == 0) {
			uint64_t v = strtoull(val, &end, 10);
			if (!*val || *end || *val == '-')
				return -EBADMSG;
			*(key[0] == 's' ? &m->sequence : key[0] == 't' ? &m->txn : &m->at) = v;
			have |= key[0] == 's' ? 4 : key[0] == 't' ? 8 : 16;
		} else if (strcmp(key, "target") == 0) {
			char path[4096], pkg[256], ver[256], hex[BASE_SHA256_HEX];
			uint8_t sha[BASE_SHA256_LEN];
			if (sscanf(val, "%4095s %255s %255s %64s", path, pkg, ver, hex) != 4 ||
			    !pending_valid_path(path) || base_unhex(sha, BASE_SHA256_LEN, hex) < 0 ||
			    svc_superseded_add_target(m, path, pkg, ver, sha) < 0)
				return -EBADMSG;
		} else
			return -EBADMSG;
	}
	return have == 31 && m->n > 0 ? 0 : -EBADMSG;
}

int svc_superseded_load(Svc *s, SvcSupersededList *ret, BaseErr *e)
{
	SvcSupersededList l = { 0 };
	_cleanup_close_ int dfd = -1;
	int r = base_fs_open_dir(s->rootfd, SVC_SUPERSEDED_DIR, &dfd);
	(void)e;
	if (r == -ENOENT) {
		*ret = l;
		return 0;
	}
	if (r < 0)
		return base_err(e, r, "%s/%s: %s", s->root_real, SVC_SUPERSEDED_DIR, base_strerror(r));
	int fd = dup(dfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	for (struct dirent *de; r >= 0 && (de = readdir(d));) {
		if (!pending_valid_id(de->d_name))
			continue; /* ".", "..", and ".NAME.tmp" of an interrupted write */
		uint8_t *buf = NULL;
		size_t len = 0;
		SvcSuperseded m = { 0 };
		int pr = base_fs_read_at(dfd, de->d_name, MARKER_MAX, &buf, &len);
		if (pr >= 0)
			pr = strlen((char *)buf) == len ? parse((char *)buf, &m) : -EBADMSG;
		if (pr >= 0 && strcmp(m.fix, de->d_name) != 0)
			pr = -EBADMSG;
		free(buf);
		if (pr < 0) {
			char **bad = realloc(l.bad, (l.n_bad + 1) * sizeof(*bad));
			if (bad) {
				l.bad = bad;
				bad[l.n_bad++] = base_strdupf("%s/%s: unreadable superseded marker",
							      SVC_SUPERSEDED_DIR, de->d_name);
			}
			svc_superseded_clear(&m);
			continue;
		}
		SvcSuperseded *n = realloc(l.items, (l.n + 1) * sizeof(*n));
		if (!n) {
			r = -ENOMEM;
			break;
		}
		l.items = n;
		l.items[l.n++] = m;
	}
	closedir(d);
	if (r < 0) {
		svc_superseded_free(&l);
		return r;
	}
	*ret = l;
	return 0;
}

const SvcSuperseded *svc_superseded_find(const SvcSupersededList *sl, const PendingList *l,
					 const char *fix)
{
	for (size_t i = 0; i < sl->n; i++) {
		if (strcmp(sl->items[i].fix, fix) != 0)
			continue;
		const PendingEntry *last = svc_ledger_latest(l, fix);
		return !last || last->number <= sl->items[i].txn ? &sl->items[i] : NULL;
	}
	return NULL;
}

int svc_superseded_write(Svc *s, const SvcSuperseded *m, BaseErr *e)
{
	_cleanup_close_ int dfd = -1;
	BaseBuf b = { 0 };
	int r = base_fs_mkdir_p(s->rootfd, SVC_SUPERSEDED_DIR, 0755, &dfd);
	if (r >= 0)
		r = format(m, &b);
	if (r >= 0)
		r = base_fs_write_atomic(dfd, m->fix, b.data, b.len, 0644);
	base_buf_free(&b);
	if (r < 0)
		return base_err(e, r, "%s/%s/%s: %s", s->root_real, SVC_SUPERSEDED_DIR, m->fix,
				base_strerror(r));
	return 0;
}

int svc_next_number(Svc *s, uint64_t *ret, BaseErr *e)
{
	SvcSupersededList sl = { 0 };
	uint64_t n = 0;
	int r = pending_next_number(&s->store, &n, e);
	if (r >= 0 && svc_superseded_load(s, &sl, NULL) >= 0)
		for (size_t i = 0; i < sl.n; i++)
			if (sl.items[i].txn >= n)
				n = sl.items[i].txn + 1;
	svc_superseded_free(&sl);
	if (r < 0)
		return r;
	*ret = n;
	return 0;
}

/* Status: superseded fixes get that state and the package that replaced
 * them; a fix whose every record was cancelled is listed from its marker. */
int svc_superseded_status(Svc *s, const PendingList *l, SvcStatus *st, BaseErr *e)
{
	SvcSupersededList sl = { 0 };
	int r = svc_superseded_load(s, &sl, e);
	for (size_t i = 0; r >= 0 && i < sl.n; i++) {
		const SvcSuperseded *m = svc_superseded_find(&sl, l, sl.items[i].fix);
		if (!m)
			continue;
		SvcFixStatus *f = NULL;
		for (size_t k = 0; k < st->n_fixes; k++)
			if (strcmp(st->fixes[k].id, m->fix) == 0)
				f = &st->fixes[k];
		if (!f) {
			SvcFixStatus *n = realloc(st->fixes, (st->n_fixes + 1) * sizeof(*n));
			if (!n) {
				r = -ENOMEM;
				break;
			}
			st->fixes = n;
			f = &n[st->n_fixes++];
			memset(f, 0, sizeof(*f));
			f->id = strdup(m->fix);
			f->series = strdup(m->series);
			f->sequence = m->sequence;
			f->txn = m->txn;
		}
		f->state = svc_fix_states[SVC_FIX_SUPERSEDED];
		free(f->superseded_by);
		free(f->superseded_version);
		f->superseded_by = strdup(m->targets[0].package);
		f->superseded_version = strdup(m->targets[0].version);
		if (!f->id || !f->series || !f->superseded_by || !f->superseded_version)
			r = -ENOMEM;
	}
	for (size_t i = 0; r >= 0 && i < sl.n_bad; i++) {
		char **u = realloc(st->unreadable, (st->n_unreadable + 1) * sizeof(*u));
		if (!u) {
			r = -ENOMEM;
			break;
		}
		st->unreadable = u;
		u[st->n_unreadable++] = BASE_TAKE_PTR(sl.bad[i]);
	}
	svc_superseded_free(&sl);
	return r;
}
