/* manifest: text format (round trip, every refusal), keys, signatures, and
 * the package archive (pack/open round trip, tampering, hostile archives
 * crafted here with libarchive directly). */
#include <CUnit/CUnit.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <mbedtls/pk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "manifest/manifest.h"
#include "tests/testlib.h"

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"
#define HA "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HB "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static const char sample[] =
	"svc-manifest 1\n"
	"id FIX-0001\n"
	"series libfoo\n"
	"sequence 7\n"
	"summary Fix the frobnicator overflow (CVE-2026-0001)\n"
	"member cold/libfoo.so 11 " H1 "\n"
	"member hp/libfoo.hp 5 " H2 "\n"
	"target /usr/lib/libfoo.so\n"
	"base-sha256 " HA "\n"
	"new-sha256 " H1 "\n"
	"mode 0755\n"
	"cold cold/libfoo.so\n"
	"payload hp/libfoo.hp\n"
	"target /usr/bin/foo+bar\n"
	"base-sha256 " HA "\n"
	"new-sha256 " HB "\n"
	"mode 4755\n"
	"payload hp/libfoo.hp\n"
	"end\n";

/* ---- text ------------------------------------------------------------------ */

static void test_parse_format_round_trip(void)
{
	ManifestPackage *pkg = NULL;
	BaseErr e = { 0 };
	BaseBuf b = { 0 };

	CU_ASSERT_EQUAL_FATAL(manifest_parse(sample, strlen(sample), &pkg, &e), 0);
	CU_ASSERT_STRING_EQUAL(pkg->id, "FIX-0001");
	CU_ASSERT_STRING_EQUAL(pkg->series, "libfoo");
	CU_ASSERT_EQUAL(pkg->sequence, 7);
	CU_ASSERT_STRING_EQUAL(pkg->summary, "Fix the frobnicator overflow (CVE-2026-0001)");
	CU_ASSERT_EQUAL(pkg->n_members, 2);
	CU_ASSERT_EQUAL(pkg->n_targets, 2);
	CU_ASSERT_EQUAL(pkg->members[0].len, 11);
	CU_ASSERT_EQUAL(pkg->members[1].sha256[0], 0x22);
	CU_ASSERT_STRING_EQUAL(pkg->targets[1].path, "/usr/bin/foo+bar");
	CU_ASSERT_EQUAL(pkg->targets[0].mode, 0755);
	CU_ASSERT_EQUAL(pkg->targets[1].mode, 04755);
	CU_ASSERT_EQUAL(pkg->targets[0].base_sha256[31], 0xaa);
	CU_ASSERT_STRING_EQUAL(pkg->targets[0].cold_member, "cold/libfoo.so");
	CU_ASSERT_PTR_NULL(pkg->targets[1].cold_member);
	CU_ASSERT_PTR_NOT_NULL(manifest_member(pkg, "hp/libfoo.hp"));
	CU_ASSERT_PTR_NULL(manifest_member(pkg, "nope"));
	CU_ASSERT_EQUAL(manifest_format(pkg, &b), 0);
	CU_ASSERT_EQUAL(b.len, strlen(sample));
	CU_ASSERT_STRING_EQUAL((char *)b.data, sample);
	base_buf_free(&b);

	/* optional keys absent, big sequence: still canonical */
	free(pkg->summary);
	pkg->summary = NULL;
	pkg->sequence = UINT64_MAX;
	CU_ASSERT_EQUAL(manifest_format(pkg, &b), 0);
	manifest_free(pkg);
	pkg = NULL;
	CU_ASSERT_EQUAL(manifest_parse((char *)b.data, b.len, &pkg, &e), 0);
	CU_ASSERT_PTR_NULL(pkg ? pkg->summary : NULL);
	BaseBuf b2 = { 0 };
	CU_ASSERT_EQUAL(pkg ? manifest_format(pkg, &b2) : -1, 0);
	CU_ASSERT_EQUAL(b2.len, b.len);
	CU_ASSERT_TRUE(b2.data && memcmp(b.data, b2.data, b.len) == 0);
	CU_ASSERT_PTR_NOT_NULL(strstr((char *)b.data, "sequence 18446744073709551615\n"));
	base_buf_free(&b);
	base_buf_free(&b2);
	manifest_free(pkg);
}

/* Replace the first occurrence of `from` in the sample by `to`; parse; the
 * result must be -EBADMSG with a message naming line `line` (0: no line). */
static void refuse(const char *from, const char *to, size_t to_len, int line)
{
	const char *at = strstr(sample, from);
	CU_ASSERT_PTR_NOT_NULL_FATAL(at);
	size_t pre = (size_t)(at - sample), fl = strlen(from), len = strlen(sample) - fl + to_len;
	char *t = malloc(len + 1);
	memcpy(t, sample, pre);
	memcpy(t + pre, to, to_len);
	strcpy(t + pre + to_len, at + fl);
	ManifestPackage *pkg = NULL;
	BaseErr e = { 0 };
	int r = manifest_parse(t, len, &pkg, &e);
	CU_ASSERT_EQUAL(r, -EBADMSG);
	CU_ASSERT_PTR_NULL(pkg);
	if (line > 0) {
		char want[32];
		snprintf(want, sizeof(want), "line %d:", line);
		if (!strstr(e.msg, want))
			fprintf(stderr, "\n  [%s -> want '%s', got '%s']", from, want, e.msg);
		CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, want));
	}
	CU_ASSERT_EQUAL(strchr(e.msg, '\n'), NULL);
	manifest_free(pkg);
	free(t);
}

#define REFUSE(from, to, line) refuse(from, to, strlen(to), line)

static void test_parse_refuses_bad_keys(void)
{
	REFUSE("id FIX-0001\n", "id FIX-0001\ncolour blue\n", 3);      /* unknown key */
	REFUSE("id FIX-0001\n", "id FIX-0001\nid FIX-0002\n", 3);      /* duplicate key */
	REFUSE("mode 0755\n", "mode 0755\nmode 0755\n", 12);           /* duplicate in a target */
	REFUSE("series libfoo\n", "", 5);   /* missing series: noticed at the first member */
	REFUSE("sequence 7\n", "", 5);                                 /* missing sequence */
	REFUSE("mode 0755\n", "", 13);                                 /* target lacks mode */
	REFUSE("base-sha256 " HA "\nnew-sha256 " HB "\n", "new-sha256 " HB "\n", 18);
	REFUSE("id FIX-0001\nseries libfoo\n", "series libfoo\nid FIX-0001\n", 3); /* order */
	REFUSE("new-sha256 " H1 "\nmode 0755\n", "mode 0755\nnew-sha256 " H1 "\n", 11);
}

static void test_parse_accepts_only_canonical_summary(void)
{
	/* a tab is a control character, even where a space would do */
	char *t = strdup(sample);
	char *at = strstr(t, "summary Fix");
	ManifestPackage *pkg = NULL;
	BaseErr e = { 0 };
	memcpy(at, "summary\tFix", 11);
	CU_ASSERT_EQUAL(manifest_parse(t, strlen(t), &pkg, &e), -EBADMSG);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "line 5:"));
	free(t);
}

static void test_parse_refuses_bad_values(void)
{
	REFUSE("base-sha256 " HA, "base-sha256 g" HA "a", 9);                 /* bad hex */
	REFUSE("base-sha256 " HA, "base-sha256 " "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 9);
	REFUSE("base-sha256 " HA, "base-sha256 aaaa", 9);                        /* short hex */
	REFUSE("member hp/libfoo.hp 5 " H2, "member hp/libfoo.hp 5 " H2 "0", 7);
	REFUSE("member hp/libfoo.hp 5 ", "member hp/libfoo.hp 05 ", 7);         /* non-canonical size */
	REFUSE("member hp/libfoo.hp 5 ", "member hp/libfoo.hp -5 ", 7);
	REFUSE("sequence 7", "sequence 07", 4);
	/* the rules records apply too: a space in a path, a 64-byte id */
	REFUSE("target /usr/bin/foo+bar", "target /usr/bin/foo bar", 14);
	REFUSE("id FIX-0001", "id FIX-0001-123456789-123456789-123456789-123456789-123456789-12345", 2);
	REFUSE("sequence 7", "sequence 18446744073709551616", 4);               /* u64 overflow */
	REFUSE("sequence 7", "sequence ", 4);
	REFUSE("mode 0755", "mode 755", 11);
	REFUSE("mode 0755", "mode 0855", 11);
	REFUSE("id FIX-0001", "id FIX 0001", 2);
	REFUSE("id FIX-0001", "id -FIX", 2);
	REFUSE("end\n", "end \n", 19);
	REFUSE("svc-manifest 1\n", "svc-manifest 2\n", 1);                       /* version */
	REFUSE("svc-manifest 1\n", "svc-manifest 1 \n", 1);
	REFUSE("svc-manifest 1\n", "hotfix 1\n", 1);
	REFUSE("svc-manifest 1\n", "svc-manifest 01\n", 1);
	REFUSE("id FIX-0001\n", "id FIX-0001\r\n", 2);                          /* CRLF */
}

static void test_parse_refuses_bad_paths(void)
{
	REFUSE("target /usr/lib/libfoo.so", "target usr/lib/libfoo.so", 8);      /* relative */
	REFUSE("target /usr/lib/libfoo.so", "target /usr/../etc/libfoo.so", 8);
	REFUSE("target /usr/lib/libfoo.so", "target /usr/lib/..", 8);
	REFUSE("target /usr/lib/libfoo.so", "target /usr//lib/libfoo.so", 8);
	REFUSE("target /usr/lib/libfoo.so", "target /usr/./lib/libfoo.so", 8);
	REFUSE("target /usr/lib/libfoo.so", "target /usr/lib/", 8);
	REFUSE("target /usr/lib/libfoo.so", "target /", 8);
	refuse("target /usr/lib/libfoo.so", "target /usr/lib/lib\0foo.so", 26, 8);   /* NUL */
	REFUSE("target /usr/lib/libfoo.so", "target /usr/lib/li\nbfoo.so", 9);   /* newline */
	REFUSE("target /usr/bin/foo+bar", "target /usr/lib/libfoo.so", 14);     /* duplicate */
	/* member names */
	REFUSE("member hp/libfoo.hp", "member ../libfoo.hp", 7);
	REFUSE("member hp/libfoo.hp", "member /hp/libfoo.hp", 7);
	REFUSE("member hp/libfoo.hp", "member hp//libfoo.hp", 7);
	REFUSE("member hp/libfoo.hp", "member hp/./libfoo.hp", 7);
	REFUSE("member hp/libfoo.hp 5", "member manifest.sig 5", 7);            /* reserved */
}

static void test_parse_refuses_bad_structure(void)
{
	REFUSE("member hp/libfoo.hp 5 " H2 "\n", "", 12);                     /* payload not listed */
	REFUSE("cold cold/libfoo.so", "cold cold/other.so", 12);               /* cold not listed */
	REFUSE("cold cold/libfoo.so", "cold hp/libfoo.hp", 12);                /* cold hash != new */
	REFUSE("member cold/libfoo.so 11 " H1 "\nmember hp/libfoo.hp 5 " H2 "\n",
	       "member hp/libfoo.hp 5 " H2 "\nmember cold/libfoo.so 11 " H1 "\n", 7); /* unsorted */
	REFUSE("member hp/libfoo.hp 5 " H2 "\n",
	       "member hp/libfoo.hp 5 " H2 "\nmember hp/libfoo.hp 5 " H2 "\n", 8);
	REFUSE("mode 4755\npayload hp/libfoo.hp\n", "mode 4755\n", 18);        /* neither */
	REFUSE("end\n", "", 0);                                                /* no end */
	REFUSE("end\n", "end\nid X\n", 20);                                    /* after end */
	REFUSE("payload hp/libfoo.hp\ntarget", "payload hp/libfoo.hp\nmember x 1 " H1 "\ntarget", 14);
	REFUSE("mode 4755\npayload hp/libfoo.hp\nend\n", "mode 4755\npayload hp/libfoo.hp\n", 0);

	/* no target at all */
	static const char none[] = "svc-manifest 1\nid A\nseries b\nsequence 1\nend\n";
	ManifestPackage *pkg = NULL;
	BaseErr e = { 0 };
	CU_ASSERT_EQUAL(manifest_parse(none, strlen(none), &pkg, &e), -EBADMSG);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "line 5:"));
	base_err_clear(&e);
	CU_ASSERT_EQUAL(manifest_parse("", 0, &pkg, &e), -EBADMSG);
	CU_ASSERT_PTR_NULL(pkg);
}

/* Every one-byte change of the sample is either refused with -EBADMSG or
 * parses to a package that formats back to exactly the changed text: the
 * canonical property, over a few thousand neighbours of a valid manifest. */
static void test_parse_mutants_refused_or_canonical(void)
{
	static const char repl[] = { 0, '\n', ' ', '/', '.', '0', '9', 'a', 'f', 'g', 'Z', '-', '\r',
				     (char)0x80 };
	size_t len = strlen(sample), accepted = 0, refused = 0, bad = 0;
	char *t = malloc(len + 1);
	for (size_t i = 0; i < len; i++) {
		for (size_t j = 0; j <= sizeof(repl); j++) {
			ManifestPackage *pkg = NULL;
			BaseErr e = { 0 };
			memcpy(t, sample, len + 1);
			size_t n = len;
			if (j == sizeof(repl)) { /* deletion */
				memmove(t + i, t + i + 1, len - i);
				n--;
			} else {
				if (t[i] == repl[j])
					continue;
				t[i] = repl[j];
			}
			int r = manifest_parse(t, n, &pkg, &e);
			if (r == 0) {
				BaseBuf b = { 0 };
				accepted++;
				if (manifest_format(pkg, &b) != 0 || b.len != n || memcmp(b.data, t, n) != 0)
					bad++;
				base_buf_free(&b);
			} else if (r == -EBADMSG && e.msg[0] && !strchr(e.msg, '\n')) {
				refused++;
			} else {
				bad++;
			}
			manifest_free(pkg);
		}
	}
	free(t);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_TRUE(accepted > 100);
	CU_ASSERT_TRUE(refused > 1000);
}

/* ---- packages: helpers ------------------------------------------------------ */

typedef struct Ent {
	char *name;
	uint8_t *data;
	size_t len;
	unsigned type;          /* AE_IFREG by default */
	const char *link;       /* symlink target or hardlink source */
} Ent;

static void ents_free(Ent *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].data);
	}
}

static Ent ent(const char *name, const void *data, size_t len)
{
	Ent x = { .name = strdup(name), .data = malloc(len + 1), .len = len, .type = AE_IFREG };
	memcpy(x.data, data, len);
	return x;
}

/* Write entries as tar (+gzip) with libarchive, the way an attacker could. */
static int craft(const char *path, const Ent *v, size_t n, int gzip)
{
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();
	int r = 0;
	archive_write_set_format_pax_restricted(a);
	if (gzip)
		archive_write_add_filter_gzip(a);
	if (archive_write_open_filename(a, path) != ARCHIVE_OK)
		r = -1;
	for (size_t i = 0; r == 0 && i < n; i++) {
		archive_entry_clear(e);
		archive_entry_set_pathname(e, v[i].name);
		archive_entry_set_filetype(e, v[i].type ? v[i].type : AE_IFREG);
		archive_entry_set_perm(e, 0644);
		if (v[i].type == AE_IFLNK)
			archive_entry_set_symlink(e, v[i].link);
		else if (v[i].link)
			archive_entry_set_hardlink(e, v[i].link);
		archive_entry_set_size(e, (v[i].type == AE_IFLNK || v[i].link) ? 0 : (la_int64_t)v[i].len);
		if (archive_write_header(a, e) != ARCHIVE_OK)
			r = -1;
		else if (v[i].len && v[i].type != AE_IFLNK && !v[i].link &&
			 archive_write_data(a, v[i].data, v[i].len) != (la_ssize_t)v[i].len)
			r = -1;
	}
	if (archive_write_close(a) != ARCHIVE_OK)
		r = -1;
	archive_write_free(a);
	archive_entry_free(e);
	return r;
}

/* Read a package's entries in archive order (at most max). */
static size_t slurp(const char *path, Ent *v, size_t max)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	size_t n = 0;
	archive_read_support_filter_all(a);
	archive_read_support_format_all(a);
	if (archive_read_open_filename(a, path, 10240) != ARCHIVE_OK) {
		archive_read_free(a);
		return 0;
	}
	while (n < max && archive_read_next_header(a, &e) == ARCHIVE_OK) {
		size_t len = (size_t)archive_entry_size(e);
		v[n] = (Ent){ .name = strdup(archive_entry_pathname(e)), .data = malloc(len + 1),
			      .len = len, .type = AE_IFREG };
		CU_ASSERT_EQUAL(archive_read_data(a, v[n].data, len), (la_ssize_t)len);
		v[n].data[len] = 0;
		n++;
	}
	archive_read_free(a);
	return n;
}

static Ent *find_ent(Ent *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return &v[i];
	return NULL;
}

typedef struct Fix {
	char *dir, *key, *key2, *trust, *pkg;
} Fix;

static const char cold_data[] = "\177ELF new libfoo with the fix";
static const char hp_data[] = "payload bytes v1";

/* A package description with two members and one target. */
static void sample_pkg(ManifestPackage *p, ManifestMember m[2], ManifestTarget *t,
		       const char *cold, const char *hp)
{
	memset(p, 0, sizeof(*p));
	m[0] = (ManifestMember){ .name = "hp/libfoo.hp", .data = (uint8_t *)hp, .len = strlen(hp) };
	m[1] = (ManifestMember){ .name = "cold/libfoo.so", .data = (uint8_t *)cold, .len = strlen(cold) };
	memset(t, 0, sizeof(*t));
	t->path = "/usr/lib/libfoo.so";
	memset(t->base_sha256, 0xab, BASE_SHA256_LEN);
	base_sha256(cold, strlen(cold), t->new_sha256);
	t->mode = 0755;
	t->cold_member = "cold/libfoo.so";
	t->payload_member = "hp/libfoo.hp";
	p->id = "FIX-0001";
	p->series = "libfoo";
	p->sequence = 3;
	p->summary = "test fix";
	p->n_members = 2;
	p->members = m;
	p->n_targets = 1;
	p->targets = t;
}

static int fix_setup(Fix *f)
{
	BaseErr e = { 0 };
	memset(f, 0, sizeof(*f));
	f->dir = test_scratch("manifest");
	if (!f->dir)
		return -1;
	f->key = base_strdupf("%s/vendor", f->dir);
	f->key2 = base_strdupf("%s/rogue", f->dir);
	f->trust = base_strdupf("%s/trust", f->dir);
	f->pkg = base_strdupf("%s/fix.hfx", f->dir);
	if (manifest_keygen(f->key, &e) < 0 || manifest_keygen(f->key2, &e) < 0) {
		fprintf(stderr, "keygen: %s\n", e.msg);
		return -1;
	}
	if (test_sh("mkdir '%s' && cp '%s.pub' '%s/vendor.pub'", f->trust, f->key, f->trust) != 0)
		return -1;
	ManifestPackage p;
	ManifestMember m[2];
	ManifestTarget t;
	sample_pkg(&p, m, &t, cold_data, hp_data);
	_cleanup_free_ char *keyfile = base_strdupf("%s.key", f->key);
	if (manifest_pack(&p, keyfile, f->pkg, &e) < 0) {
		fprintf(stderr, "pack: %s\n", e.msg);
		return -1;
	}
	return 0;
}

static void fix_teardown(Fix *f)
{
	if (f->dir)
		test_rmrf(f->dir);
	free(f->dir);
	free(f->key);
	free(f->key2);
	free(f->trust);
	free(f->pkg);
}

/* A 255-byte member name (a 10-byte directory, then a 244-byte file name):
 * longer than ustar's name field and not splittable into prefix/name. */
static void long_name(char name[256])
{
	memset(name, 'n', 255);
	name[255] = 0;
	name[10] = '/';
}

/* The sample package with its payload member named `name`, packed to out
 * with the fixture's vendor key. */
static int pack_with_name(Fix *f, const char *name, const char *out)
{
	ManifestPackage p;
	ManifestMember m[2];
	ManifestTarget t;
	BaseErr e = { 0 };
	sample_pkg(&p, m, &t, cold_data, hp_data);
	m[0].name = (char *)name;
	t.payload_member = (char *)name;
	_cleanup_free_ char *keyfile = base_strdupf("%s.key", f->key);
	return manifest_pack(&p, keyfile, out, &e);
}

/* Open `path` against the fixture's trust dir; expect r and a message naming
 * the package path and containing `needle`. */
static void expect_open(Fix *f, const char *path, int want, const char *needle)
{
	ManifestPackage *pkg = NULL;
	BaseErr e = { 0 };
	int r = manifest_open(path, f->trust, &pkg, &e);
	if (r != want || (needle && !strstr(e.msg, needle)))
		fprintf(stderr, "\n  [open: want %d '%s', got %d '%s']", want, needle ? needle : "",
			r, e.msg);
	CU_ASSERT_EQUAL(r, want);
	if (want < 0) {
		CU_ASSERT_PTR_NULL(pkg);
		CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, path));
		if (needle)
			CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, needle));
	}
	manifest_free(pkg);
}

/* Key id as defined by the format: sha256 of the DER public key, computed
 * here independently of the library. */
static void key_id_of(const char *pubfile, char out[BASE_SHA256_HEX])
{
	mbedtls_pk_context pk;
	unsigned char der[512];
	uint8_t sha[32];
	out[0] = 0;
	mbedtls_pk_init(&pk);
	if (mbedtls_pk_parse_public_keyfile(&pk, pubfile) == 0) {
		int n = mbedtls_pk_write_pubkey_der(&pk, der, sizeof(der));
		if (n > 0) {
			base_sha256(der + sizeof(der) - n, (size_t)n, sha);
			base_hex(out, sha, 32);
		}
	}
	mbedtls_pk_free(&pk);
}

/* ---- packages: tests --------------------------------------------------------- */

static void test_pack_open_round_trip(void)
{
	Fix f;
	CU_ASSERT_EQUAL_FATAL(fix_setup(&f), 0);
	char *before = test_sh_out("ls -la '%s' '%s'", f.dir, f.trust);
	ManifestPackage *pkg = NULL;
	BaseErr e = { 0 };
	int r = manifest_open(f.pkg, f.trust, &pkg, &e);
	CU_ASSERT_EQUAL(r, 0);
	if (r == 0) {
		const ManifestMember *c = manifest_member(pkg, "cold/libfoo.so");
		const ManifestMember *h = manifest_member(pkg, "hp/libfoo.hp");
		CU_ASSERT_TRUE(c && c->len == strlen(cold_data) && memcmp(c->data, cold_data, c->len) == 0);
		CU_ASSERT_TRUE(h && h->len == strlen(hp_data) && memcmp(h->data, hp_data, h->len) == 0);
		CU_ASSERT_STRING_EQUAL(pkg->id, "FIX-0001");
		CU_ASSERT_EQUAL(pkg->sequence, 3);
		CU_ASSERT_EQUAL(pkg->n_targets, 1);
		CU_ASSERT_EQUAL(pkg->targets[0].mode, 0755);
		CU_ASSERT_STRING_EQUAL(pkg->targets[0].payload_member, "hp/libfoo.hp");
		char want[BASE_SHA256_HEX];
		_cleanup_free_ char *pub = base_strdupf("%s.pub", f.key);
		key_id_of(pub, want);
		CU_ASSERT_EQUAL(strlen(want), 64);
		CU_ASSERT_STRING_EQUAL(pkg->key_id, want);
		manifest_free(pkg);
	} else {
		fprintf(stderr, "\n  [open: %s]", e.msg);
	}
	/* open writes nothing */
	char *after = test_sh_out("ls -la '%s' '%s'", f.dir, f.trust);
	CU_ASSERT_TRUE(before && after && strcmp(before, after) == 0);
	free(before);
	free(after);

	/* archive layout: manifest, manifest.sig, members by name; fixed metadata */
	char *list = test_sh_out("tar tvzf '%s'", f.pkg);
	CU_ASSERT_PTR_NOT_NULL(list);
	if (list) {
		char *m = strstr(list, " manifest\n"), *s = strstr(list, " manifest.sig\n");
		char *c = strstr(list, " cold/libfoo.so\n"), *h = strstr(list, " hp/libfoo.hp\n");
		CU_ASSERT_TRUE(m && s && c && h && m < s && s < c && c < h);
		CU_ASSERT_PTR_NOT_NULL(strstr(list, "-rw-r--r-- 0/0"));
		CU_ASSERT_PTR_NOT_NULL(strstr(list, "1970-01-01 00:00"));
	}
	free(list);
	fix_teardown(&f);
}

static void test_pack_is_deterministic(void)
{
	Fix f;
	CU_ASSERT_EQUAL_FATAL(fix_setup(&f), 0);
	ManifestPackage p;
	ManifestMember m[2];
	ManifestTarget t;
	BaseErr e = { 0 };
	sample_pkg(&p, m, &t, cold_data, hp_data);
	/* members given in another order: same package */
	ManifestMember swapped[2] = { m[1], m[0] };
	p.members = swapped;
	_cleanup_free_ char *keyfile = base_strdupf("%s.key", f.key);
	_cleanup_free_ char *second = base_strdupf("%s/again.hfx", f.dir);
	CU_ASSERT_EQUAL(manifest_pack(&p, keyfile, second, &e), 0);
	size_t l1 = 0, l2 = 0;
	char *a = test_read(f.pkg, &l1), *b = test_read(second, &l2);
	CU_ASSERT_TRUE(a && b && l1 == l2 && l1 > 0 && memcmp(a, b, l1) == 0);
	/* gzip header: no timestamp */
	CU_ASSERT_TRUE(a && l1 > 10 && (uint8_t)a[0] == 0x1f && (uint8_t)a[1] == 0x8b &&
		       a[4] == 0 && a[5] == 0 && a[6] == 0 && a[7] == 0);
	free(a);
	free(b);
	fix_teardown(&f);
}

/* Names past ustar's 100+155 split go through pax headers: still
 * reproducible, still opened. */
static void test_pack_long_member_name(void)
{
	Fix f;
	CU_ASSERT_EQUAL_FATAL(fix_setup(&f), 0);
	char name[256];
	long_name(name);
	BaseErr e = { 0 };
	_cleanup_free_ char *o1 = base_strdupf("%s/l1.hfx", f.dir);
	_cleanup_free_ char *o2 = base_strdupf("%s/l2.hfx", f.dir);
	CU_ASSERT_EQUAL(pack_with_name(&f, name, o1), 0);
	CU_ASSERT_EQUAL(pack_with_name(&f, name, o2), 0);
	CU_ASSERT_EQUAL(test_sh("cmp -s '%s' '%s'", o1, o2), 0);
	ManifestPackage *pkg = NULL;
	CU_ASSERT_EQUAL(manifest_open(o1, f.trust, &pkg, &e), 0);
	const ManifestMember *mm = manifest_member(pkg, name);
	CU_ASSERT_TRUE(mm && mm->len == strlen(hp_data) && memcmp(mm->data, hp_data, mm->len) == 0);
	manifest_free(pkg);
	/* one byte longer: refused by pack */
	char longer[257];
	memset(longer, 'n', 256);
	longer[256] = 0;
	CU_ASSERT_TRUE(pack_with_name(&f, longer, o1) < 0);
	fix_teardown(&f);
}

static void test_open_refuses_tampered_member(void)
{
	Fix f;
	CU_ASSERT_EQUAL_FATAL(fix_setup(&f), 0);
	Ent v[8];
	size_t n = slurp(f.pkg, v, 8);
	CU_ASSERT_EQUAL_FATAL(n, 4);
	_cleanup_free_ char *bad = base_strdupf("%s/bad.hfx", f.dir);

	/* rewritten untouched: still fine (the crafting itself is not the cause) */
	CU_ASSERT_EQUAL(craft(bad, v, n, 1), 0);
	expect_open(&f, bad, 0, NULL);

	Ent *h = find_ent(v, n, "hp/libfoo.hp");
	h->data[3] ^= 1;
	CU_ASSERT_EQUAL(craft(bad, v, n, 1), 0);
	expect_open(&f, bad, -EBADMSG, "hp/libfoo.hp");
	h->data[3] ^= 1;

	/* one byte longer */
	h->data[h->len++] = 'x';
	CU_ASSERT_EQUAL(craft(bad, v, n, 1), 0);
	expect_open(&f, bad, -EBADMSG, "hp/libfoo.hp");
	h->len--;

	/* a manifest byte changed, still a valid manifest: the signature says no */
	Ent *mf = find_ent(v, n, "manifest");
	char *seq = strstr((char *)mf->data, "sequence 3\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(seq);
	seq[9] = '4';
	CU_ASSERT_EQUAL(craft(bad, v, n, 1), 0);
	expect_open(&f, bad, -EKEYREJECTED, "manifest.sig");
	seq[9] = '3';

	/* a signature byte changed */
	Ent *sg = find_ent(v, n, "manifest.sig");
	char *sig = strstr((char *)sg->data, "\nsignature ");
	CU_ASSERT_PTR_NOT_NULL_FATAL(sig);
	sig[30] = sig[30] == '0' ? '1' : '0';
	CU_ASSERT_EQUAL(craft(bad, v, n, 1), 0);
	expect_open(&f, bad, -EKEYREJECTED, NULL);
	ents_free(v, n);
	fix_teardown(&f);
}

/* The signature as (r, n - s): mathematically valid, a second spelling.
 * python3 does the big-number step (the test must not share the code it
 * checks).  Prints the new DER hex, and "low"/"high" for the given s. */
#define MALLEATE_PY \
	"import sys\n" \
	"n=0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551\n" \
	"d=bytes.fromhex(sys.argv[1]); assert d[0]==0x30 and d[2]==2\n" \
	"lr=d[3]; r=d[4:4+lr]; ls=d[5+lr]; s=int.from_bytes(d[6+lr:6+lr+ls],'big')\n" \
	"t=n-s; b=t.to_bytes((t.bit_length()+8)//8,'big')\n" \
	"b=b[1:] if len(b)>1 and b[0]==0 and b[1]<0x80 else b\n" \
	"body=bytes([2,len(r)])+r+bytes([2,len(b)])+b\n" \
	"print((bytes([0x30,len(body)])+body).hex(), 'low' if s<=n//2 else 'high')\n"

static void test_open_refuses_high_s_signature(void)
{
	Fix f;
	CU_ASSERT_EQUAL_FATAL(fix_setup(&f), 0);
	Ent v[8];
	size_t n = slurp(f.pkg, v, 8);
	_cleanup_free_ char *bad = base_strdupf("%s/highs.hfx", f.dir);
	Ent *sg = find_ent(v, n, "manifest.sig");
	CU_ASSERT_PTR_NOT_NULL_FATAL(sg);
	char *sig = strstr((char *)sg->data, "\nsignature ");
	CU_ASSERT_PTR_NOT_NULL_FATAL(sig);
	sig += strlen("\nsignature ");
	_cleanup_free_ char *hex = strndup(sig, strcspn(sig, "\n"));
	_cleanup_free_ char *py = base_strdupf("%s/malleate.py", f.dir);
	CU_ASSERT_EQUAL_FATAL(test_write(py, MALLEATE_PY, strlen(MALLEATE_PY)), 0);
	_cleanup_free_ char *out = test_sh_out("python3 %s %s", py, hex);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	/* the signer emits low S */
	CU_ASSERT_PTR_NOT_NULL(strstr(out, " low"));
	char *sp = strchr(out, ' ');
	CU_ASSERT_PTR_NOT_NULL_FATAL(sp);
	*sp = 0;
	/* the other spelling, same key, same manifest: refused */
	BaseBuf nb = { 0 };
	base_buf_append(&nb, sg->data, (size_t)((uint8_t *)sig - sg->data));
	base_buf_printf(&nb, "%s\n", out);
	free(sg->data);
	sg->data = nb.data;
	sg->len = nb.len;
	CU_ASSERT_EQUAL(craft(bad, v, n, 1), 0);
	expect_open(&f, bad, -EKEYREJECTED, "one accepted spelling");
	ents_free(v, n);
	fix_teardown(&f);
}

/* Signer first: a package from an untrusted key whose member inflates to
 * 64 MiB is refused before that member is inflated: the opening process
 * stays small and quick.  (Before, everything was unpacked first: about
 * twice the unpacked size in memory, seconds of work.)  Pack and open each
 * run in a child, so the measured peak is the opener's alone. */
static void test_untrusted_package_refused_before_unpacking(void)
{
	Fix f;
	CU_ASSERT_EQUAL_FATAL(fix_setup(&f), 0);
	_cleanup_free_ char *big = base_strdupf("%s/big.hfx", f.dir);
	_cleanup_free_ char *rogue = base_strdupf("%s.key", f.key2);
	pid_t pid = fork();
	if (pid == 0) {
		size_t n = 64u << 20;
		char *zeros = calloc(1, n);
		ManifestPackage p;
		ManifestMember m[2];
		ManifestTarget t;
		BaseErr e = { 0 };
		sample_pkg(&p, m, &t, cold_data, hp_data);
		m[0].data = (uint8_t *)zeros;
		m[0].len = n;
		_exit(zeros && manifest_pack(&p, rogue, big, &e) == 0 ? 0 : 1);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	CU_ASSERT_FATAL(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	uint64_t t0 = base_now_ns();
	pid = fork();
	if (pid == 0) {
		ManifestPackage *pkg = NULL;
		BaseErr e = { 0 };
		_exit(manifest_open(big, f.trust, &pkg, &e) == -ENOKEY ? 0 : 1);
	}
	struct rusage ru;
	CU_ASSERT_EQUAL(wait4(pid, &st, 0, &ru), pid);
	double secs = (double)(base_now_ns() - t0) / 1e9;
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* KiB: far below the 64 MiB member (AddressSanitizer's shadow and
	 * quarantine inflate RSS on their own, as valgrind does with ~100 MiB
	 * of its own in the forked child: not measured there) */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED_ADDRESS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED_ADDRESS 1
#endif
#endif
#ifndef SANITIZED_ADDRESS
	if (!getenv("SVC_UNDER_VALGRIND"))   /* set by make valgrind */
		CU_ASSERT(ru.ru_maxrss < 32 * 1024);
#endif
	CU_ASSERT(secs < 2.0);
	printf("\n    untrusted 64 MiB-inflating package: refused, peak RSS %ld KiB, %.3f s ",
	       ru.ru_maxrss, secs);
	fix_teardown(&f);
}

static void test_open_refuses_untrusted_signer(void)
{
	Fix f;
	CU_ASSERT_EQUAL_FATAL(fix_setup(&f), 0);
	ManifestPackage p;
	ManifestMember m[2];
	ManifestTarget t;
	BaseErr e = { 0 };
	sample_pkg(&p, m, &t, cold_data, hp_data);
	_cleanup_free_ char *rogue = base_strdupf("%s.key", f.key2);
	_cleanup_free_ char *out = base_strdupf("%s/rogue.hfx", f.dir);
	CU_ASSERT_EQUAL_FATAL(manifest_pack(&p, rogue, out, &e), 0);
	expect_open(&f, out, -ENOKEY, "not signed by a trusted key");

	/* the rogue signature relabelled with the vendor's key id: found, rejected */
	Ent v[8];
	size_t n = slurp(out, v, 8);
	Ent *sg = find_ent(v, n, "manifest.sig");
	char want[BASE_SHA256_HEX];
	_cleanup_free_ char *pub = base_strdupf("%s.pub", f.key);
	key_id_of(pub, want);
	char *id = strstr((char *)sg->data, "key-id ");
	CU_ASSERT_PTR_NOT_NULL_FATAL(id);
	memcpy(id + 7, want, 64);
	CU_ASSERT_EQUAL(craft(out, v, n, 1), 0);
	expect_open(&f, out, -EKEYREJECTED, NULL);
	ents_free(v, n);

	/* no trust dir at all */
	ManifestPackage *pkg = NULL;
	_cleanup_free_ char *none = base_strdupf("%s/none", f.dir);
	CU_ASSERT_EQUAL(manifest_open(f.pkg, none, &pkg, &e), -ENOKEY);
	fix_teardown(&f);
}

/* Junk in the trust dir is ignored, not fatal, and never trusted. */
static void test_trust_dir_ignores_junk(void)
{
	Fix f;
	CU_ASSERT_EQUAL_FATAL(fix_setup(&f), 0);
	CU_ASSERT_EQUAL(test_sh("cd '%s' && echo junk > a.pub && : > b.pub && mkdir c.pub && "
				"echo x > notes.txt && ln -s vendor.pub d.pub && "
				"cp '%s.pub' rogue.pem && cp '%s.pub' .hidden.pub",
				f.trust, f.key2, f.key2), 0);
	expect_open(&f, f.pkg, 0, NULL);
	/* the vendor key only through a symlink: ignored, so untrusted */
	CU_ASSERT_EQUAL(test_sh("cd '%s' && mv vendor.pub ../vendor-real.pub && rm d.pub && "
				"ln -s ../vendor-real.pub e.pub", f.trust), 0);
	expect_open(&f, f.pkg, -ENOKEY, "not signed by a trusted key");
	/* rogue key present only under names that do not count */
	ManifestPackage p;
	ManifestMember m[2];
	ManifestTarget t;
	BaseErr e = { 0 };
	sample_pkg(&p, m, &t, cold_data, hp_data);
	_cleanup_free_ char *rogue = base_strdupf("%s.key", f.key2);
	_cleanup_free_ char *out = base_strdupf("%s/rogue.hfx", f.dir);
	CU_ASSERT_EQUAL(manifest_pack(&p, rogue, out, &e), 0);
	expect_open(&f, out, -ENOKEY, NULL);
	fix_teardown(&f);
}

static void test_open_refuses_truncated_archive(void)
{
	Fix f;
	CU_ASSERT_EQUAL_FATAL(fix_setup(&f), 0);
	size_t len = 0;
	char *data = test_read(f.pkg, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(data);
	_cleanup_free_ char *cut = base_strdupf("%s/cut.hfx", f.dir);
	size_t refused = 0, tried = 0;
	for (size_t at = 0; at < len; at += (at < 64 || at + 64 > len) ? 1 : 7) {
		ManifestPackage *pkg = NULL;
		BaseErr e = { 0 };
		CU_ASSERT_EQUAL_FATAL(test_write(cut, data, at), 0);
		int r = manifest_open(cut, f.trust, &pkg, &e);
		tried++;
		if (r == -EBADMSG)
			refused++;
		else
			fprintf(stderr, "\n  [cut at %zu of %zu: %d %s]", at, len, r, e.msg);
		CU_ASSERT_PTR_NULL(pkg);
		manifest_free(pkg);
	}
	CU_ASSERT_EQUAL(refused, tried);
	/* garbage appended to a complete package: not a package either */
	char *more = malloc(len + 100);
	memcpy(more, data, len);
	memset(more + len, 'Z', 100);
	CU_ASSERT_EQUAL(test_write(cut, more, len + 100), 0);
	expect_open(&f, cut, -EBADMSG, NULL);
	free(more);
	/* two gzip members back to back (gunzip would accept it) */
	CU_ASSERT_EQUAL(test_sh("cat '%s' '%s' > '%s'", f.pkg, f.pkg, cut), 0);
	expect_open(&f, cut, -EBADMSG, "data after the gzip stream");
	free(data);
	fix_teardown(&f);
}

/* The tar inside an intact gzip stream: cut, or with a tail, is refused. */
static void test_open_refuses_truncated_tar_in_valid_gzip(void)
{
	Fix f;
	CU_ASSERT_EQUAL_FATAL(fix_setup(&f), 0);
	_cleanup_free_ char *tar = base_strdupf("%s/p.tar", f.dir);
	_cleanup_free_ char *cut = base_strdupf("%s/cut.hfx", f.dir);
	CU_ASSERT_EQUAL_FATAL(test_sh("gzip -dc '%s' > '%s'", f.pkg, tar), 0);
	size_t len = 0;
	char *data = test_read(tar, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(data);
	CU_ASSERT_EQUAL(len % 512, 0);
	const size_t cuts[] = { 0, 100, 512, 1024, 1536, len / 2, len - 1024, len - 513, len - 1 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		CU_ASSERT_EQUAL(test_sh("head -c %zu '%s' | gzip -n > '%s'", cuts[i], tar, cut), 0);
		expect_open(&f, cut, -EBADMSG, NULL);
	}
	/* whole tar re-gzipped: fine; with zero padding: fine; with a tail: no */
	CU_ASSERT_EQUAL(test_sh("gzip -n < '%s' > '%s'", tar, cut), 0);
	expect_open(&f, cut, 0, NULL);
	CU_ASSERT_EQUAL(test_sh("(cat '%s'; head -c 10240 /dev/zero) | gzip -n > '%s'", tar, cut), 0);
	expect_open(&f, cut, 0, NULL);
	CU_ASSERT_EQUAL(test_sh("(cat '%s'; echo tail) | gzip -n > '%s'", tar, cut), 0);
	expect_open(&f, cut, -EBADMSG, "end-of-archive");
	free(data);
	fix_teardown(&f);
}

static void test_open_refuses_hostile_names(void)
{
	Fix f;
	CU_ASSERT_EQUAL_FATAL(fix_setup(&f), 0);
	Ent v[10];
	size_t n = slurp(f.pkg, v, 8);
	CU_ASSERT_EQUAL_FATAL(n, 4);
	_cleanup_free_ char *bad = base_strdupf("%s/bad.hfx", f.dir);
	static const char *const names[] = { "../x", "a/../../x", "/etc/x", "./x", "a//b" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		v[n] = ent(names[i], "evil", 4);
		CU_ASSERT_EQUAL(craft(bad, v, n + 1, 1), 0);
		expect_open(&f, bad, -EBADMSG, "member");
		ents_free(&v[n], 1);
	}
	/* an extra member with a fine name that the manifest does not list */
	v[n] = ent("extra.txt", "hello", 5);
	CU_ASSERT_EQUAL(craft(bad, v, n + 1, 1), 0);
	expect_open(&f, bad, -EBADMSG, "extra.txt: not listed");
	ents_free(&v[n], 1);
	/* the same member twice */
	v[n] = ent("hp/libfoo.hp", hp_data, strlen(hp_data));
	CU_ASSERT_EQUAL(craft(bad, v, n + 1, 1), 0);
	expect_open(&f, bad, -EBADMSG, "duplicate");
	ents_free(&v[n], 1);
	ents_free(v, n);
	fix_teardown(&f);
}

static void test_open_refuses_non_regular_members(void)
{
	Fix f;
	CU_ASSERT_EQUAL_FATAL(fix_setup(&f), 0);
	Ent v[10];
	size_t n = slurp(f.pkg, v, 8);
	CU_ASSERT_EQUAL_FATAL(n, 4);
	_cleanup_free_ char *bad = base_strdupf("%s/bad.hfx", f.dir);

	v[n] = (Ent){ .name = strdup("link"), .type = AE_IFLNK, .link = "/etc/shadow" };
	CU_ASSERT_EQUAL(craft(bad, v, n + 1, 1), 0);
	expect_open(&f, bad, -EBADMSG, "link: not a regular file");
	ents_free(&v[n], 1);

	v[n] = (Ent){ .name = strdup("hard"), .type = AE_IFREG, .link = "hp/libfoo.hp" };
	CU_ASSERT_EQUAL(craft(bad, v, n + 1, 1), 0);
	expect_open(&f, bad, -EBADMSG, "hard: not a regular file");
	ents_free(&v[n], 1);

	v[n] = (Ent){ .name = strdup("dir"), .type = AE_IFDIR };
	CU_ASSERT_EQUAL(craft(bad, v, n + 1, 1), 0);
	expect_open(&f, bad, -EBADMSG, "dir");
	ents_free(&v[n], 1);

	/* a listed member replaced by a symlink of the same name */
	Ent saved = v[3];
	v[3] = (Ent){ .name = strdup(saved.name), .type = AE_IFLNK, .link = "x" };
	CU_ASSERT_EQUAL(craft(bad, v, n, 1), 0);
	expect_open(&f, bad, -EBADMSG, "not a regular file");
	ents_free(&v[3], 1);
	v[3] = saved;

	/* plain tar, not gzip */
	CU_ASSERT_EQUAL(craft(bad, v, n, 0), 0);
	expect_open(&f, bad, -EBADMSG, "gzip");
	ents_free(v, n);
	fix_teardown(&f);
}

static void test_open_refuses_missing_pieces(void)
{
	Fix f;
	CU_ASSERT_EQUAL_FATAL(fix_setup(&f), 0);
	Ent v[8];
	size_t n = slurp(f.pkg, v, 8);
	CU_ASSERT_EQUAL_FATAL(n, 4);
	_cleanup_free_ char *bad = base_strdupf("%s/bad.hfx", f.dir);
	CU_ASSERT_EQUAL(craft(bad, v + 1, n - 1, 1), 0);             /* no manifest */
	expect_open(&f, bad, -EBADMSG, "manifest: missing");
	Ent w[3] = { v[0], v[2], v[3] };                               /* no signature */
	CU_ASSERT_EQUAL(craft(bad, w, 3, 1), 0);
	expect_open(&f, bad, -EBADMSG, "manifest.sig: missing");
	CU_ASSERT_EQUAL(craft(bad, v, 3, 1), 0);                       /* a listed member gone */
	expect_open(&f, bad, -EBADMSG, "listed in the manifest but missing");
	CU_ASSERT_EQUAL(test_write(bad, "", 0), 0);
	expect_open(&f, bad, -EBADMSG, NULL);
	ents_free(v, n);
	fix_teardown(&f);
}

static void test_open_refuses_mixed_package(void)
{
	Fix f;
	CU_ASSERT_EQUAL_FATAL(fix_setup(&f), 0);
	ManifestPackage p;
	ManifestMember m[2];
	ManifestTarget t;
	BaseErr e = { 0 };
	/* B: same names, same key, other contents */
	sample_pkg(&p, m, &t, "\177ELF new libfoo with the fiX", "payload bytes v2");
	p.id = "FIX-0002";
	p.sequence = 4;
	_cleanup_free_ char *keyfile = base_strdupf("%s.key", f.key);
	_cleanup_free_ char *b = base_strdupf("%s/b.hfx", f.dir);
	_cleanup_free_ char *mix = base_strdupf("%s/mix.hfx", f.dir);
	CU_ASSERT_EQUAL_FATAL(manifest_pack(&p, keyfile, b, &e), 0);
	expect_open(&f, b, 0, NULL);
	Ent va[8], vb[8];
	size_t na = slurp(f.pkg, va, 8), nb = slurp(b, vb, 8);
	CU_ASSERT_EQUAL_FATAL(na, 4);
	CU_ASSERT_EQUAL_FATAL(nb, 4);
	Ent mixed[4] = { va[0], va[1], vb[2], vb[3] };
	CU_ASSERT_EQUAL(craft(mix, mixed, 4, 1), 0);
	expect_open(&f, mix, -EBADMSG, "does not match the manifest");
	/* only one member from B */
	Ent mixed2[4] = { va[0], va[1], va[2], vb[3] };
	CU_ASSERT_EQUAL(craft(mix, mixed2, 4, 1), 0);
	expect_open(&f, mix, -EBADMSG, NULL);
	/* manifest of A with the signature of B */
	Ent mixed3[4] = { va[0], vb[1], va[2], va[3] };
	CU_ASSERT_EQUAL(craft(mix, mixed3, 4, 1), 0);
	expect_open(&f, mix, -EKEYREJECTED, NULL);
	ents_free(va, na);
	ents_free(vb, nb);
	fix_teardown(&f);
}

static void test_pack_refuses_invalid_package(void)
{
	Fix f;
	CU_ASSERT_EQUAL_FATAL(fix_setup(&f), 0);
	ManifestPackage p;
	ManifestMember m[2];
	ManifestTarget t;
	BaseErr e = { 0 };
	_cleanup_free_ char *keyfile = base_strdupf("%s.key", f.key);
	_cleanup_free_ char *out = base_strdupf("%s/x.hfx", f.dir);

	sample_pkg(&p, m, &t, cold_data, hp_data);
	t.path = "usr/lib/libfoo.so";
	CU_ASSERT_TRUE(manifest_pack(&p, keyfile, out, &e) < 0);
	base_err_clear(&e);
	sample_pkg(&p, m, &t, cold_data, hp_data);
	t.new_sha256[0] ^= 1;    /* cold member is not the new file */
	CU_ASSERT_EQUAL(manifest_pack(&p, keyfile, out, &e), -EBADMSG);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "new-sha256"));
	base_err_clear(&e);
	sample_pkg(&p, m, &t, cold_data, hp_data);
	m[0].name = "manifest";
	CU_ASSERT_TRUE(manifest_pack(&p, keyfile, out, &e) < 0);
	base_err_clear(&e);
	sample_pkg(&p, m, &t, cold_data, hp_data);
	p.summary = "two\nlines";
	CU_ASSERT_TRUE(manifest_pack(&p, keyfile, out, &e) < 0);
	base_err_clear(&e);
	sample_pkg(&p, m, &t, cold_data, hp_data);
	_cleanup_free_ char *pub = base_strdupf("%s.pub", f.key);
	CU_ASSERT_TRUE(manifest_pack(&p, pub, out, &e) < 0);   /* a public key cannot sign */
	CU_ASSERT_NOT_EQUAL(access(out, F_OK), 0);
	fix_teardown(&f);
}

static void test_keygen_refuses_overwrite(void)
{
	char *dir = test_scratch("manifest");
	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	_cleanup_free_ char *prefix = base_strdupf("%s/k", dir);
	_cleanup_free_ char *keyf = base_strdupf("%s/k.key", dir);
	_cleanup_free_ char *pubf = base_strdupf("%s/k.pub", dir);
	BaseErr e = { 0 };
	CU_ASSERT_EQUAL(manifest_keygen(prefix, &e), 0);
	struct stat st;
	CU_ASSERT_EQUAL(stat(keyf, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
	CU_ASSERT_EQUAL(stat(pubf, &st), 0);
	size_t l1 = 0, l2 = 0;
	char *k1 = test_read(keyf, &l1);
	CU_ASSERT_PTR_NOT_NULL(k1 ? strstr(k1, "-----BEGIN EC PRIVATE KEY-----") : NULL);
	char *p1 = test_read(pubf, &l2);
	CU_ASSERT_PTR_NOT_NULL(p1 ? strstr(p1, "-----BEGIN PUBLIC KEY-----") : NULL);

	CU_ASSERT_EQUAL(manifest_keygen(prefix, &e), -EEXIST);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "refusing to overwrite"));
	/* only the .pub there: still refused, and nothing created */
	CU_ASSERT_EQUAL(unlink(keyf), 0);
	base_err_clear(&e);
	CU_ASSERT_EQUAL(manifest_keygen(prefix, &e), -EEXIST);
	CU_ASSERT_NOT_EQUAL(access(keyf, F_OK), 0);
	size_t l3 = 0;
	char *p2 = test_read(pubf, &l3);
	CU_ASSERT_TRUE(p1 && p2 && l2 == l3 && memcmp(p1, p2, l2) == 0);
	/* a dangling symlink counts as existing */
	CU_ASSERT_EQUAL(symlink("/nonexistent", keyf), 0);
	CU_ASSERT_EQUAL(unlink(pubf), 0);
	CU_ASSERT_EQUAL(manifest_keygen(prefix, &e), -EEXIST);
	/* two keys differ */
	_cleanup_free_ char *other = base_strdupf("%s/o", dir);
	_cleanup_free_ char *otherk = base_strdupf("%s/o.key", dir);
	CU_ASSERT_EQUAL(manifest_keygen(other, &e), 0);
	size_t l4 = 0;
	char *k2 = test_read(otherk, &l4);
	CU_ASSERT_TRUE(k1 && k2 && (l1 != l4 || memcmp(k1, k2, l1) != 0));
	free(k1);
	free(k2);
	free(p1);
	free(p2);
	test_rmrf(dir);
	free(dir);
}

typedef struct PackArgs {
	const char *key, *out;
} PackArgs;

static void pack_b(void *arg)
{
	PackArgs *a = arg;
	ManifestPackage p;
	ManifestMember m[2];
	ManifestTarget t;
	sample_pkg(&p, m, &t, "\177ELF new libfoo with the fiX", "payload bytes v2");
	p.sequence = 4;
	manifest_pack(&p, a->key, a->out, NULL);
}

/* Packing over an existing package, killed before each durable step: the
 * path holds the old package or the new one, never a torn file. */
static void test_pack_crash_leaves_old_or_new(void)
{
	Fix f;
	CU_ASSERT_EQUAL_FATAL(fix_setup(&f), 0);
	_cleanup_free_ char *keyfile = base_strdupf("%s.key", f.key);
	PackArgs a = { keyfile, f.pkg };
	long n;
	int r = 1;
	for (n = 1; r == 1 && n < 50; n++) {
		r = test_crash_at(n, pack_b, &a);
		CU_ASSERT_TRUE(r >= 0);
		ManifestPackage *pkg = NULL;
		BaseErr e = { 0 };
		CU_ASSERT_EQUAL(manifest_open(f.pkg, f.trust, &pkg, &e), 0);
		CU_ASSERT_TRUE(pkg && (pkg->sequence == 3 || pkg->sequence == 4));
		if (r == 0)
			CU_ASSERT_TRUE(pkg && pkg->sequence == 4);
		manifest_free(pkg);
	}
	CU_ASSERT_EQUAL(r, 0);
	CU_ASSERT_TRUE(n > 3);   /* the walk crossed several steps */
	fix_teardown(&f);
}

static void keygen_into(void *arg)
{
	manifest_keygen(arg, NULL);
}

static int whole_or_absent(const char *path, const char *last_line)
{
	size_t len = 0;
	char *d = test_read(path, &len);
	if (!d)
		return access(path, F_OK) != 0;
	int ok = len > strlen(last_line) && strcmp(d + len - strlen(last_line), last_line) == 0;
	free(d);
	return ok;
}

/* keygen killed before each durable step: each key file is absent or whole. */
static void test_keygen_crash_leaves_no_torn_key(void)
{
	char *dir = test_scratch("manifest");
	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	int r = 1;
	long n;
	for (n = 1; r == 1 && n < 50; n++) {
		_cleanup_free_ char *prefix = base_strdupf("%s/k%ld", dir, n);
		_cleanup_free_ char *key = base_strdupf("%s.key", prefix);
		_cleanup_free_ char *pub = base_strdupf("%s.pub", prefix);
		r = test_crash_at(n, keygen_into, prefix);
		CU_ASSERT_TRUE(r >= 0);
		CU_ASSERT_TRUE(whole_or_absent(key, "-----END EC PRIVATE KEY-----\n"));
		CU_ASSERT_TRUE(whole_or_absent(pub, "-----END PUBLIC KEY-----\n"));
		if (r == 0)
			CU_ASSERT_TRUE(access(key, F_OK) == 0 && access(pub, F_OK) == 0);
	}
	CU_ASSERT_EQUAL(r, 0);
	CU_ASSERT_TRUE(n > 5);
	test_rmrf(dir);
	free(dir);
}

/* ---- the tar layer: svc's writer and reader against GNU tar and bsdtar ------ */

/* libarchive's writer as svc used it before it had its own (pax where
 * ustar cannot hold a name, gzip without timestamp, no block padding) */
static int write_like_libarchive(const char *path, const Ent *v, size_t n)
{
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();
	int r = 0;
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
	    archive_write_set_filter_option(a, "gzip", "timestamp", NULL) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open_filename(a, path) != ARCHIVE_OK)
		r = -1;
	for (size_t i = 0; r == 0 && i < n; i++) {
		archive_entry_clear(e);
		archive_entry_set_pathname(e, v[i].name);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, (la_int64_t)v[i].len);
		archive_entry_set_mtime(e, 0, 0);
		if (archive_write_header(a, e) != ARCHIVE_OK ||
		    (v[i].len && archive_write_data(a, v[i].data, v[i].len) != (la_ssize_t)v[i].len))
			r = -1;
	}
	if (archive_write_close(a) != ARCHIVE_OK)
		r = -1;
	archive_write_free(a);
	archive_entry_free(e);
	return r;
}

/* Packages svc wrote with libarchive keep opening, and svc's own writer
 * gives those very bytes for names that fit ustar: the package layout did
 * not change (docs/format-package.md §1). */
static void test_pack_bytes_equal_libarchive_writer(void)
{
	Fix f;
	CU_ASSERT_EQUAL_FATAL(fix_setup(&f), 0);
	Ent v[8];
	size_t n = slurp(f.pkg, v, 8);
	CU_ASSERT_EQUAL_FATAL(n, 4);
	_cleanup_free_ char *old = base_strdupf("%s/old.hfx", f.dir);
	CU_ASSERT_EQUAL(write_like_libarchive(old, v, n), 0);
	CU_ASSERT_EQUAL(test_sh("cmp '%s' '%s'", old, f.pkg), 0);
	expect_open(&f, old, 0, NULL);
	ents_free(v, n);
	/* a 150-byte name split into ustar's prefix and name: the same too */
	char name[151];
	memset(name, 'p', 150);
	name[150] = 0;
	name[60] = '/';
	_cleanup_free_ char *sp = base_strdupf("%s/split.hfx", f.dir);
	CU_ASSERT_EQUAL_FATAL(pack_with_name(&f, name, sp), 0);
	n = slurp(sp, v, 8);
	CU_ASSERT_EQUAL_FATAL(n, 4);
	CU_ASSERT_EQUAL(write_like_libarchive(old, v, n), 0);
	CU_ASSERT_EQUAL(test_sh("cmp '%s' '%s'", old, sp), 0);
	expect_open(&f, old, 0, NULL);
	ents_free(v, n);
	fix_teardown(&f);
}

/* GNU tar and bsdtar list and extract what svc writes identically (names,
 * sizes, bytes), a 255-byte pax name included. */
static void test_tar_tools_read_svc_packages(void)
{
	Fix f;
	CU_ASSERT_EQUAL_FATAL(fix_setup(&f), 0);
	char name[256];
	long_name(name);
	BaseErr e = { 0 };
	_cleanup_free_ char *lp = base_strdupf("%s/long.hfx", f.dir);
	CU_ASSERT_EQUAL_FATAL(pack_with_name(&f, name, lp), 0);
	const char *pkgs[] = { f.pkg, lp };
	for (size_t i = 0; i < 2; i++) {
		char *gnu = test_sh_out("tar tzf '%s'", pkgs[i]);
		char *bsd = test_sh_out("bsdtar tzf '%s'", pkgs[i]);
		CU_ASSERT_TRUE(gnu && bsd && strcmp(gnu, bsd) == 0);
		CU_ASSERT(gnu && strstr(gnu, "manifest\nmanifest.sig\n") == gnu);
		if (i == 1)
			CU_ASSERT(gnu && strstr(gnu, name));
		free(gnu);
		free(bsd);
		CU_ASSERT_EQUAL(test_sh("cd '%s' && rm -rf g b && mkdir g b && tar xzf '%s' -C g && "
					"bsdtar xzf '%s' -C b && diff -r g b >/dev/null",
					f.dir, pkgs[i], pkgs[i]), 0);
	}
	/* what they extracted is what svc opens */
	ManifestPackage *pkg = NULL;
	CU_ASSERT_EQUAL_FATAL(manifest_open(lp, f.trust, &pkg, &e), 0);
	_cleanup_free_ char *ex = base_strdupf("%s/g/%s", f.dir, name);
	size_t len = 0;
	char *got = test_read(ex, &len);
	const ManifestMember *mm = manifest_member(pkg, name);
	CU_ASSERT_TRUE(got && mm && len == mm->len && memcmp(got, mm->data, len) == 0);
	free(got);
	manifest_free(pkg);
	fix_teardown(&f);
}

/* A package repacked by GNU tar or bsdtar, in each format that can hold it,
 * opens; GNU's long-name extension cannot (refused, by name). */
static void test_open_reads_tar_tools_packages(void)
{
	Fix f;
	CU_ASSERT_EQUAL_FATAL(fix_setup(&f), 0);
	_cleanup_free_ char *out = base_strdupf("%s/re.hfx", f.dir);
	CU_ASSERT_EQUAL_FATAL(test_sh("mkdir '%s/x' && tar xzf '%s' -C '%s/x'", f.dir, f.pkg,
				      f.dir), 0);
	static const char *const tools[] = {
		"tar --format=ustar", "tar --format=gnu", "tar --format=pax", "tar --format=v7",
		"bsdtar --format=ustar", "bsdtar --format=pax", "bsdtar",
	};
	for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
		CU_ASSERT_EQUAL(test_sh("cd '%s/x' && %s -czf '%s' manifest manifest.sig "
					"cold/libfoo.so hp/libfoo.hp", f.dir, tools[i], out), 0);
		/* v7 has no ustar magic: refused by name, the others open */
		if (strstr(tools[i], "v7"))
			expect_open(&f, out, -EBADMSG, "no ustar magic");
		else
			expect_open(&f, out, 0, NULL);
	}
	/* a 255-byte member name: pax from both tools, GNU's 'L' refused */
	char name[256];
	long_name(name);
	_cleanup_free_ char *lp = base_strdupf("%s/long.hfx", f.dir);
	CU_ASSERT_EQUAL_FATAL(pack_with_name(&f, name, lp), 0);
	CU_ASSERT_EQUAL_FATAL(test_sh("mkdir '%s/y' && tar xzf '%s' -C '%s/y'", f.dir, lp, f.dir),
			      0);
	static const char *const ltools[] = { "tar --format=pax", "bsdtar --format=pax", "bsdtar",
					       "tar --format=gnu" };
	for (size_t i = 0; i < sizeof(ltools) / sizeof(ltools[0]); i++) {
		CU_ASSERT_EQUAL(test_sh("cd '%s/y' && %s -czf '%s' manifest manifest.sig "
					"cold/libfoo.so '%s'", f.dir, ltools[i], out, name), 0);
		if (strstr(ltools[i], "gnu"))
			expect_open(&f, out, -EBADMSG, "GNU long-name header not supported");
		else
			expect_open(&f, out, 0, NULL);
	}
	fix_teardown(&f);
}

/* Header offsets of a tar's entries, found here independently of svc. */
static size_t tar_entries(const uint8_t *t, size_t len, size_t *off, size_t max)
{
	size_t n = 0, at = 0;
	while (n < max && at + 512 <= len && t[at]) {
		off[n++] = at;
		size_t size = (size_t)strtoull((const char *)t + at + 124, NULL, 8);
		at += 512 + (size + 511) / 512 * 512;
	}
	return n;
}

static void tar_fix_checksum(uint8_t *h)
{
	unsigned sum = 0;
	memset(h + 148, ' ', 8);
	for (size_t i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
}

/* Hostile tar shapes inside a valid gzip stream and a validly signed
 * package: each refused with its reason (and open writes nothing). */
static void test_open_refuses_hostile_tar_shapes(void)
{
	Fix f;
	CU_ASSERT_EQUAL_FATAL(fix_setup(&f), 0);
	_cleanup_free_ char *tarp = base_strdupf("%s/p.tar", f.dir);
	_cleanup_free_ char *mut = base_strdupf("%s/m.tar", f.dir);
	_cleanup_free_ char *bad = base_strdupf("%s/bad.hfx", f.dir);
	CU_ASSERT_EQUAL_FATAL(test_sh("gzip -dc '%s' > '%s'", f.pkg, tarp), 0);
	size_t len = 0;
	uint8_t *orig = (uint8_t *)test_read(tarp, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(orig);
	size_t off[8];
	CU_ASSERT_EQUAL_FATAL(tar_entries(orig, len, off, 8), 4);
	uint8_t *t = malloc(len + 2048);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	const size_t h = off[2];      /* the first member after manifest.sig */
	static const char pax_comment[] = "17 comment=hello\n";
	static const char pax_bad[] = "99 path=x\n";
	enum { CKSUM, MODE, SIZE, UID_B256, CHR, BLK, FIFO, DIR, LNK, HLNK, GLOBAL, GNU_L, LINKNAME,
	       NOMAGIC, PAX_KEY, PAX_BAD, PAX_LAST, CUT_HDR, CUT_DATA, DOTDOT, ABS, DUP, N_SHAPES };
	static const char *const needle[N_SHAPES] = {
		[CKSUM] = "checksum does not match", [MODE] = "field mode is not a valid octal",
		[SIZE] = "more than 268435456", [UID_B256] = "field uid is not a valid octal",
		[CHR] = "not a regular file", [BLK] = "not a regular file",
		[FIFO] = "not a regular file", [DIR] = "not a regular file",
		[LNK] = "not a regular file", [HLNK] = "not a regular file",
		[GLOBAL] = "pax global header not supported",
		[GNU_L] = "GNU long-name header not supported", [LINKNAME] = "with a link name",
		[NOMAGIC] = "no ustar magic", [PAX_KEY] = "pax key 'comment' not supported",
		[PAX_BAD] = "malformed", [PAX_LAST] = "pax header with no entry after it",
		[CUT_HDR] = "truncated header", [CUT_DATA] = "truncated data",
		[DOTDOT] = ". or .. component", [ABS] = "name is absolute", [DUP] = "duplicate name",
	};
	for (int s = 0; s < N_SHAPES; s++) {
		size_t n = len;
		memcpy(t, orig, len);
		uint8_t *hd = t + h;
		switch (s) {
		case CKSUM: hd[0] ^= 1; break;
		case MODE: hd[103] = '9'; break;
		case SIZE: memcpy(hd + 124, "02000000001", 11); break;
		case UID_B256: hd[108] = 0x80; break;
		case CHR: hd[156] = '3'; break;
		case BLK: hd[156] = '4'; break;
		case FIFO: hd[156] = '6'; break;
		case DIR: hd[156] = '5'; break;
		case LNK: hd[156] = '2'; memcpy(hd + 157, "/etc/shadow", 11); break;
		case HLNK: hd[156] = '1'; memcpy(hd + 157, "manifest", 8); break;
		case GLOBAL: hd[156] = 'g'; break;
		case GNU_L: hd[156] = 'L'; break;
		case LINKNAME: memcpy(hd + 157, "x", 1); break;
		case NOMAGIC: memset(hd + 257, 0, 8); break;
		case DOTDOT: memset(hd, 0, 100); memcpy(hd, "../x", 4); break;
		case ABS: memset(hd, 0, 100); memcpy(hd, "/etc/x", 6); break;
		case DUP: memset(hd, 0, 100); memcpy(hd, "manifest", 8); break;
		case PAX_KEY:
		case PAX_BAD:
		case PAX_LAST: {
			/* a pax header inserted before the entry (or as the last one) */
			const char *rec = s == PAX_BAD ? pax_bad : pax_comment;
			size_t at = s == PAX_LAST ? off[3] + 512 +
							    (strtoull((char *)orig + off[3] + 124, NULL, 8) + 511) / 512 * 512
						  : h;
			if (s == PAX_LAST)
				rec = "30 mtime=1796229560.485757767\n";
			memmove(t + at + 1024, t + at, len - at);
			uint8_t *x = t + at;
			memset(x, 0, 1024);
			memcpy(x, "PaxHeader", 9);
			memcpy(x + 100, "000644 ", 7);
			memcpy(x + 108, "000000 ", 7);
			memcpy(x + 116, "000000 ", 7);
			snprintf((char *)x + 124, 12, "%011o", (unsigned)strlen(rec) & 0777);
			memcpy(x + 136, "00000000000", 11);
			x[156] = 'x';
			memcpy(x + 257, "ustar\0" "00", 8);
			tar_fix_checksum(x);
			memcpy(x + 512, rec, strlen(rec));
			n = len + 1024;
			hd = NULL;
			break;
		}
		case CUT_HDR: n = h + 100; hd = NULL; break;
		case CUT_DATA: n = h + 512 + 3; hd = NULL; break;
		}
		if (hd && s != CKSUM)
			tar_fix_checksum(hd);
		CU_ASSERT_EQUAL(test_write(mut, t, n), 0);
		CU_ASSERT_EQUAL(test_sh("gzip -n < '%s' > '%s'", mut, bad), 0);
		expect_open(&f, bad, -EBADMSG, needle[s]);
	}
	/* the untouched tar, re-gzipped the same way, opens */
	CU_ASSERT_EQUAL(test_write(mut, orig, len), 0);
	CU_ASSERT_EQUAL(test_sh("gzip -n < '%s' > '%s'", mut, bad), 0);
	expect_open(&f, bad, 0, NULL);
	free(t);
	free(orig);
	fix_teardown(&f);
}

int test_register(void)
{
	CU_pSuite s = CU_add_suite("manifest", NULL, NULL);
	if (!s)
		return -1;
	CU_add_test(s, "parse then format gives the same bytes", test_parse_format_round_trip);
	CU_add_test(s, "parse refuses unknown, duplicate, missing, misordered keys",
		    test_parse_refuses_bad_keys);
	CU_add_test(s, "parse refuses control characters in a summary",
		    test_parse_accepts_only_canonical_summary);
	CU_add_test(s, "parse refuses bad hex, numbers, modes, versions",
		    test_parse_refuses_bad_values);
	CU_add_test(s, "parse refuses relative, .., //, NUL, newline paths and names",
		    test_parse_refuses_bad_paths);
	CU_add_test(s, "parse refuses unlisted cold/payload, unsorted members, no end",
		    test_parse_refuses_bad_structure);
	CU_add_test(s, "every one-byte mutant of a manifest is refused or canonical",
		    test_parse_mutants_refused_or_canonical);
	CU_add_test(s, "keygen + pack + open round trip, key id, open writes nothing",
		    test_pack_open_round_trip);
	CU_add_test(s, "pack twice gives identical bytes", test_pack_is_deterministic);
	CU_add_test(s, "pack/open a 255-byte member name (pax header), reproducibly",
		    test_pack_long_member_name);
	CU_add_test(s, "open refuses a tampered member, manifest or signature",
		    test_open_refuses_tampered_member);
	CU_add_test(s, "open refuses a high-S (malleated) signature; pack emits low S",
		    test_open_refuses_high_s_signature);
	CU_add_test(s, "open refuses an untrusted signer (-ENOKEY)", test_open_refuses_untrusted_signer);
	CU_add_test(s, "untrusted package refused before its members are unpacked",
		    test_untrusted_package_refused_before_unpacking);
	CU_add_test(s, "trust dir: junk, symlinks, hidden and non-.pub files are not trusted",
		    test_trust_dir_ignores_junk);
	CU_add_test(s, "open refuses truncated archives at every cut (-EBADMSG)",
		    test_open_refuses_truncated_archive);
	CU_add_test(s, "open refuses a cut tar or a tail inside an intact gzip stream",
		    test_open_refuses_truncated_tar_in_valid_gzip);
	CU_add_test(s, "open refuses ../, absolute, duplicate and unlisted members",
		    test_open_refuses_hostile_names);
	CU_add_test(s, "open refuses symlink, hardlink, directory members and plain tar",
		    test_open_refuses_non_regular_members);
	CU_add_test(s, "open refuses a package without manifest, signature or a member",
		    test_open_refuses_missing_pieces);
	CU_add_test(s, "open refuses a package mixed from two packages",
		    test_open_refuses_mixed_package);
	CU_add_test(s, "svc's tar writer gives libarchive's bytes; old packages open",
		    test_pack_bytes_equal_libarchive_writer);
	CU_add_test(s, "GNU tar and bsdtar list and extract svc packages identically",
		    test_tar_tools_read_svc_packages);
	CU_add_test(s, "open reads packages repacked by GNU tar and bsdtar (ustar, gnu, pax)",
		    test_open_reads_tar_tools_packages);
	CU_add_test(s, "open refuses hostile tar headers, each with its reason",
		    test_open_refuses_hostile_tar_shapes);
	CU_add_test(s, "pack refuses what open would refuse", test_pack_refuses_invalid_package);
	CU_add_test(s, "keygen refuses to overwrite keys", test_keygen_refuses_overwrite);
	CU_add_test(s, "pack killed at every durable step leaves the old or the new package",
		    test_pack_crash_leaves_old_or_new);
	CU_add_test(s, "keygen killed at every durable step leaves no torn key file",
		    test_keygen_crash_leaves_no_torn_key);
	return 0;
}
