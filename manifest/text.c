/* The manifest text and the signature file text: strict, line-based,
 * canonical.  Exactly one spelling is valid for each package, so
 * format(parse(x)) == x, and a signature over the bytes is a signature over
 * the meaning.  Grammar: docs/format-package.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest/internal.h"

#define MAGIC      "svc-manifest"
#define VERSION    1
#define SIG_MAGIC  "svc-signature 1"
#define SIG_ALG    "ecdsa-p256-sha256"

/* ---- value rules --------------------------------------------------------- */

static int is_token_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '+' || c == '-';
}

/* id and series end up in file names, records and command lines elsewhere:
 * the one rule (base_valid_id) that records and the patcher apply too. */
static int check_token(const char *s, const char **why)
{
	if (!base_valid_id(s)) {
		*why = "must be 1 to 63 characters of letters, digits and . _ + -, starting "
		       "with a letter or digit";
		return -EBADMSG;
	}
	return 0;
}

/* Member names are space-free so a member line splits unambiguously, and
 * relative with no "." or ".." component so no reader can be tricked into
 * writing outside a directory it extracts into. */
int manifest_check_member_name(const char *name, const char **why)
{
	size_t n = strlen(name);
	if (n == 0 || n > MANIFEST_MAX_NAME) {
		*why = "name must be 1 to 255 bytes";
		return -EBADMSG;
	}
	if (name[0] == '/') {
		*why = "name is absolute";
		return -EBADMSG;
	}
	for (size_t i = 0; i < n; i++)
		if (!is_token_char(name[i]) && name[i] != '/' && name[i] != '@') {
			*why = "name holds a character outside [A-Za-z0-9._+@/-]";
			return -EBADMSG;
		}
	for (const char *c = name; *c;) {
		size_t len = strcspn(c, "/");
		if (len == 0) {
			*why = "name has an empty component (// or trailing /)";
			return -EBADMSG;
		}
		if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.')) {
			*why = "name has a . or .. component";
			return -EBADMSG;
		}
		c += len;
		if (*c == '/') {
			c++;
			if (!*c) {
				*why = "name has an empty component (// or trailing /)";
				return -EBADMSG;
			}
		}
	}
	return 0;
}

/* Target paths are used as given on the serviced system: one spelling per
 * file, so two targets cannot alias silently (the rule is base_check_path,
 * which the records apply too). */
int manifest_check_target_path(const char *path, const char **why)
{
	return base_check_path(path, why);
}

static int check_summary(const char *s, const char **why)
{
	size_t n = strlen(s);
	if (n == 0 || n > MANIFEST_MAX_SUMMARY) {
		*why = "summary must be 1 to 1024 bytes";
		return -EBADMSG;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f) {
			*why = "summary holds a control character";
			return -EBADMSG;
		}
	}
	return 0;
}

/* Decimal, no sign, no leading zero: one spelling per number. */
static int parse_u64(const char *s, uint64_t *ret)
{
	uint64_t v = 0;
	if (!*s || (s[0] == '0' && s[1]))
		return -EBADMSG;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EBADMSG;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EBADMSG;
		v = v * 10 + d;
	}
	*ret = v;
	return 0;
}

/* Lower-case hex only: upper case would be a second spelling. */
static int parse_hex(const char *s, uint8_t *out, size_t n)
{
	return base_unhex(out, n, s) < 0 ? -EBADMSG : 0;
}

static int cmp_names(const void *a, const void *b, void *arg)
{
	const ManifestMember *m = arg;
	return strcmp(m[*(const size_t *)a].name, m[*(const size_t *)b].name);
}

int manifest_member_order(const ManifestMember *m, size_t n, size_t **ret_order)
{
	size_t *o = calloc(n ? n : 1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		o[i] = i;
	qsort_r(o, n, sizeof(*o), cmp_names, (void *)m);
	*ret_order = o;
	return 0;
}

/* ---- format -------------------------------------------------------------- */

static int format_checked(const ManifestPackage *pkg, BaseBuf *out, const char *what,
			  BaseErr *e)
{
	_cleanup_free_ size_t *order = NULL;
	char hex[BASE_SHA256_HEX];
	const char *why = NULL;
	BaseBuf b = { 0 };
	int r;

	if (!pkg->id || check_token(pkg->id, &why) < 0)
		return base_err(e, -EINVAL, "%s: id: %s", what, why ? why : "missing");
	why = NULL;
	if (!pkg->series || check_token(pkg->series, &why) < 0)
		return base_err(e, -EINVAL, "%s: series: %s", what, why ? why : "missing");
	if (pkg->summary && check_summary(pkg->summary, &why) < 0)
		return base_err(e, -EINVAL, "%s: %s", what, why);
	for (size_t i = 0; i < pkg->n_members; i++)
		if (!pkg->members[i].name ||
		    manifest_check_member_name(pkg->members[i].name, &why) < 0)
			return base_err(e, -EINVAL, "%s: member %zu: %s", what, i,
					pkg->members[i].name ? why : "no name");
	for (size_t i = 0; i < pkg->n_targets; i++) {
		const ManifestTarget *t = &pkg->targets[i];
		if (!t->path || manifest_check_target_path(t->path, &why) < 0)
			return base_err(e, -EINVAL, "%s: target %zu: %s", what, i,
					t->path ? why : "no path");
		if (t->mode > 07777)
			return base_err(e, -EINVAL, "%s: target %s: mode %o is not within 07777",
					what, t->path, t->mode);
		if ((t->cold_member && manifest_check_member_name(t->cold_member, &why) < 0) ||
		    (t->payload_member && manifest_check_member_name(t->payload_member, &why) < 0))
			return base_err(e, -EINVAL, "%s: target %s: member %s", what, t->path, why);
	}
	r = manifest_member_order(pkg->members, pkg->n_members, &order);
	if (r < 0)
		return r;

	r = base_buf_printf(&b, "%s %d\nid %s\nseries %s\nsequence %llu\n", MAGIC, VERSION,
			    pkg->id, pkg->series, (unsigned long long)pkg->sequence);
	if (r >= 0 && pkg->summary)
		r = base_buf_printf(&b, "summary %s\n", pkg->summary);
	for (size_t i = 0; r >= 0 && i < pkg->n_members; i++) {
		const ManifestMember *m = &pkg->members[order[i]];
		base_hex(hex, m->sha256, BASE_SHA256_LEN);
		r = base_buf_printf(&b, "member %s %zu %s\n", m->name, m->len, hex);
	}
	for (size_t i = 0; r >= 0 && i < pkg->n_targets; i++) {
		const ManifestTarget *t = &pkg->targets[i];
		char hex2[BASE_SHA256_HEX];
		base_hex(hex, t->base_sha256, BASE_SHA256_LEN);
		base_hex(hex2, t->new_sha256, BASE_SHA256_LEN);
		r = base_buf_printf(&b, "target %s\nbase-sha256 %s\nnew-sha256 %s\nmode %04o\n",
				    t->path, hex, hex2, t->mode);
		if (r >= 0 && t->cold_member)
			r = base_buf_printf(&b, "cold %s\n", t->cold_member);
		if (r >= 0 && t->payload_member)
			r = base_buf_printf(&b, "payload %s\n", t->payload_member);
	}
	if (r >= 0)
		r = base_buf_printf(&b, "end\n");
	if (r < 0) {
		base_buf_free(&b);
		return base_err(e, r, "%s: out of memory", what);
	}
	r = base_buf_append(out, b.data, b.len);
	base_buf_free(&b);
	return r;
}

int manifest_format(const ManifestPackage *pkg, BaseBuf *out)
{
	return format_checked(pkg, out, "manifest", NULL);
}

int manifest_check(const ManifestPackage *pkg, const char *what, BaseErr *e)
{
	BaseBuf b = { 0 };
	ManifestPackage *back = NULL;
	int r = format_checked(pkg, &b, what, e);
	if (r >= 0)
		r = manifest_parse_named((const char *)b.data, b.len, what, &back, e);
	manifest_free(back);
	base_buf_free(&b);
	return r;
}

/* ---- parse --------------------------------------------------------------- */

/* Keys in the one order they may appear in; the rank is that order. */
enum {
	K_ID = 1, K_SERIES, K_SEQUENCE, K_SUMMARY, K_MEMBER, K_TARGET,
	K_BASE, K_NEW, K_MODE, K_COLD, K_PAYLOAD, K_END,
};

static const struct {
	const char *name;
	int repeat;     /* may appear more than once (per target for target keys) */
} keys[] = {
	[K_ID] = { "id", 0 },
	[K_SERIES] = { "series", 0 },
	[K_SEQUENCE] = { "sequence", 0 },
	[K_SUMMARY] = { "summary", 0 },
	[K_MEMBER] = { "member", 1 },
	[K_TARGET] = { "target", 1 },
	[K_BASE] = { "base-sha256", 0 },
	[K_NEW] = { "new-sha256", 0 },
	[K_MODE] = { "mode", 0 },
	[K_COLD] = { "cold", 0 },
	[K_PAYLOAD] = { "payload", 0 },
	[K_END] = { "end", 0 },
};

static int key_lookup(const char *k)
{
	for (int i = K_ID; i <= K_END; i++)
		if (strcmp(keys[i].name, k) == 0)
			return i;
	return 0;
}

typedef struct Parser {
	const char *what;
	unsigned line;
	BaseErr *e;
	ManifestPackage *pkg;
	unsigned seen;        /* bit per key: header keys, and target keys of the open target */
	int last;             /* rank of the previous key */
	uint64_t total;       /* sum of listed member sizes */
} Parser;

#define BIT(k) (1u << (k))

static int perr(Parser *p, const char *fmt, const char *arg)
{
	char reason[512];
	snprintf(reason, sizeof(reason), fmt, arg ? arg : "");
	return base_err(p->e, -EBADMSG, "%s line %u: %s", p->what, p->line, reason);
}

static ManifestMember *find_member(ManifestPackage *pkg, const char *name)
{
	for (size_t i = 0; i < pkg->n_members; i++)
		if (strcmp(pkg->members[i].name, name) == 0)
			return &pkg->members[i];
	return NULL;
}

/* A target closes at the next target or at end: its required keys must be in. */
static int close_target(Parser *p)
{
	static const int required[] = { K_BASE, K_NEW, K_MODE };
	if (p->pkg->n_targets == 0)
		return 0;
	ManifestTarget *t = &p->pkg->targets[p->pkg->n_targets - 1];
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (!(p->seen & BIT(required[i])))
			return perr(p, "target before this line lacks required key '%s'",
				    keys[required[i]].name);
	if (!t->cold_member && !t->payload_member)
		return perr(p, "target %s has neither 'cold' nor 'payload'", t->path);
	return 0;
}

static int header_complete(Parser *p)
{
	static const int required[] = { K_ID, K_SERIES, K_SEQUENCE };
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (!(p->seen & BIT(required[i])))
			return perr(p, "missing required key '%s' before this line",
				    keys[required[i]].name);
	return 0;
}

static int dup_str(Parser *p, const char *v, char **ret)
{
	char *s = strdup(v);
	if (!s)
		return base_err(p->e, -ENOMEM, "%s: out of memory", p->what);
	*ret = s;
	return 0;
}

static int parse_member(Parser *p, char *v)
{
	ManifestPackage *pkg = p->pkg;
	const char *why;
	char *name = v, *size, *hex;
	uint64_t len;
	uint8_t sha[BASE_SHA256_LEN];

	size = strchr(name, ' ');
	if (!size)
		return perr(p, "member line needs: member NAME SIZE SHA256%s", NULL);
	*size++ = 0;
	hex = strchr(size, ' ');
	if (!hex)
		return perr(p, "member line needs: member NAME SIZE SHA256%s", NULL);
	*hex++ = 0;
	if (strchr(hex, ' '))
		return perr(p, "member line has more than three fields%s", NULL);
	if (manifest_check_member_name(name, &why) < 0)
		return perr(p, "member %s", why);
	if (strcmp(name, MANIFEST_NAME) == 0 || strcmp(name, MANIFEST_SIG_NAME) == 0)
		return perr(p, "member name '%s' is reserved", name);
	if (parse_u64(size, &len) < 0)
		return perr(p, "member size '%s' is not a canonical decimal number", size);
	if (parse_hex(hex, sha, sizeof(sha)) < 0)
		return perr(p, "member sha256 '%s' is not 64 lower-case hex digits", hex);
	if (pkg->n_members > 0) {
		int c = strcmp(pkg->members[pkg->n_members - 1].name, name);
		if (c == 0)
			return perr(p, "duplicate member '%s'", name);
		if (c > 0)
			return perr(p, "member '%s' is out of order (members are sorted by name)",
				    name);
	}
	if (pkg->n_members >= MANIFEST_MAX_MEMBERS)
		return perr(p, "more than 256 members%s", NULL);
	if (len > MANIFEST_MAX_PACKAGE || p->total + len > MANIFEST_MAX_PACKAGE)
		return perr(p, "members add up to more than the package limit (%s)", "256 MiB");
	p->total += len;

	ManifestMember *m = realloc(pkg->members, (pkg->n_members + 1) * sizeof(*m));
	if (!m)
		return base_err(p->e, -ENOMEM, "%s: out of memory", p->what);
	pkg->members = m;
	m = &pkg->members[pkg->n_members];
	memset(m, 0, sizeof(*m));
	if (dup_str(p, name, &m->name) < 0)
		return -ENOMEM;
	pkg->n_members++;
	m->len = (size_t)len;
	memcpy(m->sha256, sha, sizeof(sha));
	return 0;
}

static int parse_target(Parser *p, const char *v)
{
	ManifestPackage *pkg = p->pkg;
	const char *why;

	if (manifest_check_target_path(v, &why) < 0)
		return perr(p, "target %s", why);
	for (size_t i = 0; i < pkg->n_targets; i++)
		if (strcmp(pkg->targets[i].path, v) == 0)
			return perr(p, "duplicate target %s", v);
	if (pkg->n_targets >= MANIFEST_MAX_TARGETS)
		return perr(p, "more than 64 targets%s", NULL);
	ManifestTarget *t = realloc(pkg->targets, (pkg->n_targets + 1) * sizeof(*t));
	if (!t)
		return base_err(p->e, -ENOMEM, "%s: out of memory", p->what);
	pkg->targets = t;
	t = &pkg->targets[pkg->n_targets];
	memset(t, 0, sizeof(*t));
	if (dup_str(p, v, &t->path) < 0)
		return -ENOMEM;
	pkg->n_targets++;
	return 0;
}

static int parse_target_member(Parser *p, int k, const char *v)
{
	ManifestTarget *t = &p->pkg->targets[p->pkg->n_targets - 1];
	const ManifestMember *m = find_member(p->pkg, v);
	if (!m)
		return perr(p, "'%s' names a member that is not listed", v);
	/* the whole coldpatch is the new file: its hash is the one the target
	 * promises, so there is one hash to trust, not two */
	if (k == K_COLD && memcmp(m->sha256, t->new_sha256, BASE_SHA256_LEN) != 0)
		return perr(p, "cold member '%s' does not hash to new-sha256", v);
	return dup_str(p, v, k == K_COLD ? &t->cold_member : &t->payload_member);
}

static int parse_line(Parser *p, char *line)
{
	ManifestPackage *pkg = p->pkg;
	char *v = strchr(line, ' ');
	int k, r;

	if (v)
		*v++ = 0;
	k = key_lookup(line);
	if (!k)
		return perr(p, "unknown key '%s'", line);
	if ((k == K_END) != (v == NULL))
		return perr(p, k == K_END ? "key '%s' takes no value" : "key '%s' needs a value",
			    line);
	if (v && !*v)
		return perr(p, "key '%s' has an empty value", line);
	if (!keys[k].repeat && (p->seen & BIT(k)))
		return perr(p, "duplicate key '%s'", line);
	/* target keys belong inside a target block, header keys outside */
	if (k >= K_BASE && k <= K_PAYLOAD && pkg->n_targets == 0)
		return perr(p, "key '%s' outside a target block", line);
	if (k < K_MEMBER && p->last >= K_MEMBER)
		return perr(p, "header key '%s' after members or targets", line);
	if (k == K_MEMBER && p->last > K_MEMBER)
		return perr(p, "member line after a target%s", NULL);
	if (k < p->last && k != K_TARGET && k != K_END)
		return perr(p, "key '%s' is out of order", line);
	if (k >= K_MEMBER) {
		r = header_complete(p);
		if (r < 0)
			return r;
	}

	switch (k) {
	case K_ID:
	case K_SERIES: {
		const char *why;
		if (check_token(v, &why) < 0)
			return perr(p, k == K_ID ? "id %s" : "series %s", why);
		r = dup_str(p, v, k == K_ID ? &pkg->id : &pkg->series);
		break;
	}
	case K_SEQUENCE:
		r = parse_u64(v, &pkg->sequence) < 0 ?
			perr(p, "sequence '%s' is not a canonical decimal u64", v) : 0;
		break;
	case K_SUMMARY: {
		const char *why;
		r = check_summary(v, &why) < 0 ? perr(p, "%s", why) : dup_str(p, v, &pkg->summary);
		break;
	}
	case K_MEMBER:
		r = parse_member(p, v);
		break;
	case K_TARGET:
		r = close_target(p);
		if (r >= 0)
			r = parse_target(p, v);
		p->seen &= ~(BIT(K_BASE) | BIT(K_NEW) | BIT(K_MODE) | BIT(K_COLD) | BIT(K_PAYLOAD));
		break;
	case K_BASE:
	case K_NEW: {
		ManifestTarget *t = &pkg->targets[pkg->n_targets - 1];
		r = parse_hex(v, k == K_BASE ? t->base_sha256 : t->new_sha256, BASE_SHA256_LEN);
		if (r < 0)
			r = perr(p, "'%s' is not 64 lower-case hex digits", v);
		break;
	}
	case K_MODE: {
		ManifestTarget *t = &pkg->targets[pkg->n_targets - 1];
		if (strlen(v) != 4 || strspn(v, "01234567") != 4)
			return perr(p, "mode '%s' is not 4 octal digits", v);
		t->mode = (uint32_t)strtoul(v, NULL, 8);
		r = 0;
		break;
	}
	case K_COLD:
	case K_PAYLOAD:
		r = parse_target_member(p, k, v);
		break;
	case K_END:
		r = close_target(p);
		if (r >= 0 && pkg->n_targets == 0)
			r = perr(p, "no target before 'end'%s", NULL);
		break;
	default:
		r = -EINVAL;
	}
	if (r < 0)
		return r;
	p->seen |= BIT(k);
	p->last = k;
	return 0;
}

int manifest_parse_named(const char *text, size_t len, const char *what,
			 ManifestPackage **ret_pkg, BaseErr *e)
{
	Parser p = { .what = what, .e = e };
	_cleanup_free_ char *copy = NULL;
	size_t pos = 0;
	int r = 0;

	if (len > MANIFEST_MAX_TEXT)
		return base_err(e, -EBADMSG, "%s: larger than 1 MiB", what);
	if (len == 0 || text[len - 1] != '\n')
		return base_err(e, -EBADMSG, "%s: does not end with a newline (truncated?)", what);
	copy = malloc(len + 1);
	p.pkg = calloc(1, sizeof(*p.pkg));
	if (!copy || !p.pkg) {
		free(p.pkg);
		return base_err(e, -ENOMEM, "%s: out of memory", what);
	}
	memcpy(copy, text, len);
	copy[len] = 0;

	while (pos < len && r >= 0) {
		char *line = copy + pos, *nl = memchr(line, '\n', len - pos);
		size_t n = (size_t)(nl - line);
		p.line++;
		*nl = 0;
		pos += n + 1;
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)line[i];
			if (c < 0x20 || c == 0x7f) {
				r = c == 0 ? perr(&p, "holds a NUL byte%s", NULL) :
					     perr(&p, "holds a control character%s", NULL);
				break;
			}
		}
		if (r < 0)
			break;
		if (p.line == 1) {
			int ver;
			char rest;
			if (strcmp(line, MAGIC " 1") == 0)
				continue;
			if (sscanf(line, MAGIC " %d%c", &ver, &rest) == 1 && ver != VERSION)
				r = base_err(e, -EBADMSG, "%s line 1: unsupported format version %d",
					     what, ver);
			else
				r = base_err(e, -EBADMSG, "%s line 1: not '%s %d'", what, MAGIC, VERSION);
			break;
		}
		if (p.last == K_END) {
			r = perr(&p, "text after 'end'%s", NULL);
			break;
		}
		r = parse_line(&p, line);
	}
	if (r >= 0 && p.last != K_END)
		r = base_err(e, -EBADMSG, "%s: missing 'end' line (truncated?)", what);
	if (r < 0) {
		manifest_free(p.pkg);
		return r;
	}
	*ret_pkg = p.pkg;
	return 0;
}

int manifest_parse(const char *text, size_t len, ManifestPackage **ret_pkg, BaseErr *e)
{
	return manifest_parse_named(text, len, "manifest", ret_pkg, e);
}

/* ---- the signature file --------------------------------------------------- */

int manifest_sigfile_format(const char key_id[BASE_SHA256_HEX], const uint8_t *der,
			    size_t der_len, BaseBuf *out)
{
	_cleanup_free_ char *hex = malloc(2 * der_len + 1);
	if (!hex)
		return -ENOMEM;
	base_hex(hex, der, der_len);
	return base_buf_printf(out, "%s\nalgorithm %s\nkey-id %s\nsignature %s\n", SIG_MAGIC,
			       SIG_ALG, key_id, hex);
}

int manifest_sigfile_parse(const char *text, size_t len, const char *what,
			   char ret_key_id[BASE_SHA256_HEX], uint8_t *ret_der,
			   size_t *ret_der_len, BaseErr *e)
{
	static const char *const want[] = { SIG_MAGIC, "algorithm " SIG_ALG, "key-id ",
					    "signature " };
	_cleanup_free_ char *copy = NULL;
	char *lines[4];
	uint8_t id[BASE_SHA256_LEN];
	size_t n = 0;

	if (len > MANIFEST_MAX_SIGTEXT || len == 0 || text[len - 1] != '\n' ||
	    memchr(text, 0, len))
		return base_err(e, -EBADMSG, "%s: malformed signature file", what);
	copy = strndup(text, len);
	if (!copy)
		return -ENOMEM;
	for (char *c = copy; *c; n++) {
		char *nl = strchr(c, '\n');
		if (n == 4)
			return base_err(e, -EBADMSG, "%s line 5: text after the signature", what);
		*nl = 0;
		lines[n] = c;
		c = nl + 1;
	}
	if (n != 4)
		return base_err(e, -EBADMSG, "%s: %zu lines, want 4", what, n);
	for (size_t i = 0; i < 4; i++) {
		size_t wl = strlen(want[i]);
		if (i < 2 ? strcmp(lines[i], want[i]) != 0 : strncmp(lines[i], want[i], wl) != 0)
			return base_err(e, -EBADMSG, "%s line %zu: expected '%s'", what, i + 1,
					want[i]);
	}
	const char *idhex = lines[2] + strlen("key-id "), *sighex = lines[3] + strlen("signature ");
	if (parse_hex(idhex, id, sizeof(id)) < 0)
		return base_err(e, -EBADMSG, "%s line 3: key id is not 64 lower-case hex digits",
				what);
	size_t sl = strlen(sighex);
	if (sl == 0 || sl % 2 || sl / 2 > MANIFEST_MAX_SIG_DER || parse_hex(sighex, ret_der, sl / 2) < 0)
		return base_err(e, -EBADMSG, "%s line 4: signature is not lower-case hex DER", what);
	memcpy(ret_key_id, idhex, BASE_SHA256_HEX);
	*ret_der_len = sl / 2;
	return 0;
}

/* ---- lookup and release --------------------------------------------------- */

const ManifestMember *manifest_member(const ManifestPackage *pkg, const char *name)
{
	if (!pkg || !name)
		return NULL;
	for (size_t i = 0; i < pkg->n_members; i++)
		if (strcmp(pkg->members[i].name, name) == 0)
			return &pkg->members[i];
	return NULL;
}

void manifest_members_free(ManifestMember *m, size_t n)
{
	for (size_t i = 0; m && i < n; i++) {
		free(m[i].name);
		free(m[i].data);
	}
	free(m);
}

void manifest_free(ManifestPackage *pkg)
{
	if (!pkg)
		return;
	free(pkg->id);
	free(pkg->series);
	free(pkg->summary);
	for (size_t i = 0; i < pkg->n_targets; i++) {
		free(pkg->targets[i].path);
		free(pkg->targets[i].cold_member);
		free(pkg->targets[i].payload_member);
	}
	free(pkg->targets);
	manifest_members_free(pkg->members, pkg->n_members);
	free(pkg);
}
