/* The transaction record: a strict, line-based text with a SHA-256 trailer,
 * so a torn or edited record is detected before anything acts on it. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pending/internal.h"

#define RECORD_MAGIC "svc-txn 1"

int pending_valid_name(const char *s)
{
	if (!s || !*s || strlen(s) > 255 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	for (const char *p = s; *p; p++)
		if (*p == '/' || (unsigned char)*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

int pending_valid_path(const char *s)
{
	const char *why;
	return s && base_check_path(s, &why) == 0;
}

int pending_valid_id(const char *s)
{
	return base_valid_id(s);
}

static const char *kind_name(PendingKind k)
{
	return k == PENDING_ROLLBACK ? "rollback" : "install";
}

int pending_format(const PendingTxn *t, BaseBuf *out)
{
	BaseBuf b = { 0 };
	char from[BASE_SHA256_HEX], to[BASE_SHA256_HEX], sum[BASE_SHA256_HEX];
	uint8_t d[BASE_SHA256_LEN];
	int r = 0;

	r |= base_buf_printf(&b, "%s\nnumber %" PRIu64 "\nkind %s\npackage %s\nseries %s\n"
			     "sequence %" PRIu64 "\nundoes %" PRIu64 "\ncreated %" PRIu64 "\n",
			     RECORD_MAGIC, t->number, kind_name(t->kind), t->package, t->series,
			     t->sequence, t->undoes, t->created);
	for (size_t i = 0; i < t->n_ops; i++) {
		const PendingOp *o = &t->ops[i];
		base_hex(from, o->from, BASE_SHA256_LEN);
		base_hex(to, o->to, BASE_SHA256_LEN);
		r |= base_buf_printf(&b, "op %s\nsource %s\nstaged %d\nkeep %s\nfrom %s\nto %s\n"
				     "fix-from %s\nfix-to %s\n",
				     o->path, o->source, o->source_staged ? 1 : 0, o->keep, from,
				     to, o->fix_from, o->fix_to);
	}
	if (r < 0) {
		base_buf_free(&b);
		return -ENOMEM;
	}
	base_sha256(b.data, b.len, d);
	base_hex(sum, d, BASE_SHA256_LEN);
	if (base_buf_printf(&b, "end %s\n", sum) < 0) {
		base_buf_free(&b);
		return -ENOMEM;
	}
	*out = b;
	return 0;
}

void pending_txn_free(PendingTxn *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_ops; i++) {
		free(t->ops[i].path);
		free(t->ops[i].source);
		free(t->ops[i].keep);
		free(t->ops[i].fix_from);
		free(t->ops[i].fix_to);
	}
	free(t->ops);
	free(t->package);
	free(t->series);
	free(t);
}

PendingTxn *pending_txn_dup(const PendingTxn *t)
{
	BaseBuf b = { 0 };
	PendingTxn *copy = NULL;
	if (pending_format(t, &b) < 0)
		return NULL;
	pending_parse((const char *)b.data, b.len, &copy, NULL);
	base_buf_free(&b);
	return copy;
}

/* Parser state: one "key value" line at a time. */
typedef struct Lines {
	const char *p, *end;
	unsigned line;
	char key[32];
	char *val;
} Lines;

static int next_line(Lines *l, BaseErr *e)
{
	free(l->val);
	l->val = NULL;
	if (l->p >= l->end)
		return 0;
	const char *nl = memchr(l->p, '\n', (size_t)(l->end - l->p));
	if (!nl)
		return base_err(e, -EBADMSG, "line %u: truncated (no newline)", l->line + 1);
	l->line++;
	const char *sp = memchr(l->p, ' ', (size_t)(nl - l->p));
	if (!sp || sp == l->p || (size_t)(sp - l->p) >= sizeof(l->key) ||
	    memchr(l->p, 0, (size_t)(sp - l->p)))
		return base_err(e, -EBADMSG, "line %u: expected 'key value'", l->line);
	memcpy(l->key, l->p, (size_t)(sp - l->p));
	l->key[sp - l->p] = 0;
	l->val = strndup(sp + 1, (size_t)(nl - sp - 1));
	if (!l->val)
		return -ENOMEM;
	if (strlen(l->val) != (size_t)(nl - sp - 1) || !*l->val)
		return base_err(e, -EBADMSG, "line %u: empty value or NUL byte", l->line);
	l->p = nl + 1;
	return 1;
}

static int expect(Lines *l, const char *key, BaseErr *e)
{
	int r = next_line(l, e);
	if (r < 0)
		return r;
	if (r == 0)
		return base_err(e, -EBADMSG, "line %u: truncated, expected '%s'", l->line + 1, key);
	if (strcmp(l->key, key) != 0)
		return base_err(e, -EBADMSG, "line %u: expected '%s', found '%s'", l->line, key,
				l->key);
	return 0;
}

static int parse_u64(Lines *l, const char *key, uint64_t *ret, BaseErr *e)
{
	int r = expect(l, key, e);
	if (r < 0)
		return r;
	char *endp = NULL;
	errno = 0;
	unsigned long long v = strtoull(l->val, &endp, 10);
	/* one spelling per number: strtoull alone would also take leading
	 * blanks and a sign (" -1" reads as UINT64_MAX) */
	if (l->val[0] < '0' || l->val[0] > '9' || errno || *endp ||
	    (l->val[0] == '0' && l->val[1]))
		return base_err(e, -EBADMSG, "line %u: bad number '%s'", l->line, l->val);
	*ret = v;
	return 0;
}

static int parse_str(Lines *l, const char *key, int (*valid)(const char *), char **ret,
		     BaseErr *e)
{
	int r = expect(l, key, e);
	if (r < 0)
		return r;
	if (valid && !valid(l->val))
		return base_err(e, -EBADMSG, "line %u: invalid %s '%s'", l->line, key, l->val);
	*ret = BASE_TAKE_PTR(l->val);
	return 0;
}

static int parse_hash(Lines *l, const char *key, uint8_t out[BASE_SHA256_LEN], BaseErr *e)
{
	int r = expect(l, key, e);
	if (r < 0)
		return r;
	if (base_unhex(out, BASE_SHA256_LEN, l->val) < 0)
		return base_err(e, -EBADMSG, "line %u: bad sha256 '%s'", l->line, l->val);
	return 0;
}

static int parse_body(Lines *l, PendingTxn *t, BaseErr *e)
{
	uint64_t v;
	int r;

	if ((r = expect(l, "svc-txn", e)) < 0)
		return r;
	if (strcmp(l->val, "1") != 0)
		return base_err(e, -EBADMSG, "line 1: unsupported record version '%s'", l->val);
	if ((r = parse_u64(l, "number", &t->number, e)) < 0)
		return r;
	if ((r = expect(l, "kind", e)) < 0)
		return r;
	if (strcmp(l->val, "install") == 0)
		t->kind = PENDING_INSTALL;
	else if (strcmp(l->val, "rollback") == 0)
		t->kind = PENDING_ROLLBACK;
	else
		return base_err(e, -EBADMSG, "line %u: unknown kind '%s'", l->line, l->val);
	if ((r = parse_str(l, "package", pending_valid_id, &t->package, e)) < 0 ||
	    (r = parse_str(l, "series", pending_valid_id, &t->series, e)) < 0 ||
	    (r = parse_u64(l, "sequence", &t->sequence, e)) < 0 ||
	    (r = parse_u64(l, "undoes", &t->undoes, e)) < 0 ||
	    (r = parse_u64(l, "created", &t->created, e)) < 0)
		return r;
	for (;;) {
		const char *save = l->p;
		unsigned save_line = l->line;
		r = next_line(l, e);
		if (r < 0)
			return r;
		if (r == 0)
			return base_err(e, -EBADMSG, "line %u: truncated, no 'end' line", l->line + 1);
		if (strcmp(l->key, "end") == 0) {
			l->p = save;
			l->line = save_line;
			return 0;
		}
		if (strcmp(l->key, "op") != 0)
			return base_err(e, -EBADMSG, "line %u: expected 'op' or 'end', found '%s'",
					l->line, l->key);
		if (t->n_ops >= 4096)
			return base_err(e, -EBADMSG, "line %u: too many operations", l->line);
		PendingOp *ops = realloc(t->ops, (t->n_ops + 1) * sizeof(*ops));
		if (!ops)
			return -ENOMEM;
		t->ops = ops;
		PendingOp *o = &t->ops[t->n_ops++];
		memset(o, 0, sizeof(*o));
		if (!pending_valid_path(l->val))
			return base_err(e, -EBADMSG, "line %u: invalid path '%s'", l->line, l->val);
		/* one op per file: replay checks every op before it swaps any, so
		 * a second op on a file would be checked against the file before
		 * the first one changed it */
		for (size_t i = 0; i + 1 < t->n_ops; i++)
			if (strcmp(t->ops[i].path, l->val) == 0)
				return base_err(e, -EBADMSG, "line %u: second operation on %s",
						l->line, l->val);
		o->path = BASE_TAKE_PTR(l->val);
		if ((r = parse_str(l, "source", pending_valid_name, &o->source, e)) < 0 ||
		    (r = parse_u64(l, "staged", &v, e)) < 0)
			return r;
		if (v > 1)
			return base_err(e, -EBADMSG, "line %u: staged must be 0 or 1", l->line);
		o->source_staged = (int)v;
		if ((r = parse_str(l, "keep", pending_valid_name, &o->keep, e)) < 0 ||
		    (r = parse_hash(l, "from", o->from, e)) < 0 ||
		    (r = parse_hash(l, "to", o->to, e)) < 0 ||
		    (r = parse_str(l, "fix-from", pending_valid_id, &o->fix_from, e)) < 0 ||
		    (r = parse_str(l, "fix-to", pending_valid_id, &o->fix_to, e)) < 0)
			return r;
	}
}

int pending_parse(const char *text, size_t len, PendingTxn **ret, BaseErr *e)
{
	Lines l = { .p = text, .end = text + len };
	PendingTxn *t = calloc(1, sizeof(*t));
	uint8_t want[BASE_SHA256_LEN], got[BASE_SHA256_LEN];
	int r;

	if (!t)
		return -ENOMEM;
	r = parse_body(&l, t, e);
	if (r >= 0) {
		size_t body = (size_t)(l.p - text);
		r = expect(&l, "end", e);
		if (r >= 0 && base_unhex(want, BASE_SHA256_LEN, l.val) < 0)
			r = base_err(e, -EBADMSG, "line %u: bad checksum", l.line);
		if (r >= 0) {
			base_sha256(text, body, got);
			if (memcmp(want, got, BASE_SHA256_LEN) != 0)
				r = base_err(e, -EBADMSG, "checksum mismatch (torn or edited record)");
		}
		if (r >= 0 && l.p != l.end)
			r = base_err(e, -EBADMSG, "line %u: data after 'end'", l.line + 1);
		if (r >= 0 && t->n_ops == 0)
			r = base_err(e, -EBADMSG, "record has no operations");
	}
	free(l.val);
	if (r < 0) {
		pending_txn_free(t);
		return r;
	}
	*ret = t;
	return 0;
}
