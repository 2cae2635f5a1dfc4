/* svc: the engine through its library API on scratch roots: ledger
 * derivation, install / rollback / boot results, the lock, status; the
 * in-use scan over children the test starts (and ends, by PID). */
#include <CUnit/CUnit.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "elf/elf.h"
#include "manifest/manifest.h"
#include "pending/pending.h"
#include "svc/internal.h"
#include "svc/svc.h"
#include "tests/testlib.h"

/* A scratch root with /lib/a holding "A1", /lib/b holding "B1", a trusted
 * vendor key, and packages: P1 (A1->A2, B1->B2, seq 1), P2 (A2->A3, seq 2). */
/* svc services ELF files only: the fixture files carry the ELF magic in
 * front of their one-word content. */
#define ELF_(x) "\177ELF " #x

typedef struct Fx {
	char *dir, *root;
} Fx;

static void fx_file(Fx *f, const char *rel, const char *content)
{
	char *p = NULL;
	if (asprintf(&p, "%s/%s", f->dir, rel) < 0)
		return;
	test_write(p, content, strlen(content));
	free(p);
}

static char *fx_read(Fx *f, const char *rel)
{
	char *p = NULL;
	if (asprintf(&p, "%s/root/%s", f->dir, rel) < 0)
		return NULL;
	char *s = test_read(p, NULL);
	free(p);
	return s;
}

static void fx_pack(Fx *f, const char *id, uint64_t seq, const char *spec)
{
	/* spec: "path=base:new,path=base:new" with names relative to f->dir */
	SvcPackTarget t[4];
	char *copy = strdup(spec), *save = NULL, *paths[4][3];
	size_t n = 0;
	for (char *tok = strtok_r(copy, ",", &save); tok && n < 4; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '='), *colon = strchr(tok, ':');
		*eq = *colon = 0;
		paths[n][0] = strdup(tok);
		if (asprintf(&paths[n][1], "%s/%s", f->dir, eq + 1) < 0 ||
		    asprintf(&paths[n][2], "%s/%s", f->dir, colon + 1) < 0)
			return;
		t[n] = (SvcPackTarget){ .path = paths[n][0], .base_file = paths[n][1],
					.new_file = paths[n][2] };
		n++;
	}
	char *key = NULL, *out = NULL;
	if (asprintf(&key, "%s/v.key", f->dir) < 0 || asprintf(&out, "%s/%s.hfx", f->dir, id) < 0)
		return;
	SvcPackSpec sp = { .sign = { .key = key, .out = out, .id = id, .series = "s", .sequence = seq },
			   .n_targets = n, .targets = t };
	BaseErr e = { 0 };
	CU_ASSERT_EQUAL(svc_pack(&sp, NULL, &e), 0);
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < 3; k++)
			free(paths[i][k]);
	free(copy);
	free(key);
	free(out);
}

static void fx_setup(Fx *f)
{
	f->dir = test_scratch("svc");
	if (asprintf(&f->root, "%s/root", f->dir) < 0)
		return;
	test_sh("mkdir -p %s/root/lib %s/root/etc/svc/trusted", f->dir, f->dir);
	fx_file(f, "root/lib/a", ELF_(A1));
	fx_file(f, "root/lib/b", ELF_(B1));
	fx_file(f, "a1", ELF_(A1));
	fx_file(f, "a2", ELF_(A2));
	fx_file(f, "a3", ELF_(A3));
	fx_file(f, "b1", ELF_(B1));
	fx_file(f, "b2", ELF_(B2));
	char *prefix = NULL;
	if (asprintf(&prefix, "%s/v", f->dir) < 0)
		return;
	CU_ASSERT_EQUAL(manifest_keygen(prefix, NULL), 0);
	free(prefix);
	test_sh("cp %s/v.pub %s/root/etc/svc/trusted/", f->dir, f->dir);
	fx_pack(f, "P1", 1, "/lib/a=a1:a2,/lib/b=b1:b2");
	fx_pack(f, "P2", 2, "/lib/a=a2:a3");
}

static void fx_done(Fx *f)
{
	test_rmrf(f->dir);
	free(f->dir);
	free(f->root);
}

static int install_flags(Fx *f, const char *id, unsigned flags, SvcReport *rep, BaseErr *e)
{
	Svc *s = NULL;
	char *pkg = NULL;
	SvcOptions o = { .root = f->root };
	if (asprintf(&pkg, "%s/%s.hfx", f->dir, id) < 0)
		return -ENOMEM;
	int r = svc_open(&o, &s, e);
	if (r >= 0)
		r = svc_install(s, pkg, flags, rep, e);
	svc_close(s);
	free(pkg);
	return r;
}

static int install(Fx *f, const char *id, SvcReport *rep, BaseErr *e)
{
	return install_flags(f, id, 0, rep, e);
}

static int rollback(Fx *f, const char *id, SvcReport *rep, BaseErr *e)
{
	Svc *s = NULL;
	SvcOptions o = { .root = f->root };
	int r = svc_open(&o, &s, e);
	if (r >= 0)
		r = svc_rollback(s, id, 0, rep, e);
	svc_close(s);
	return r;
}

static const char *fix_state(Fx *f, const char *id, char *buf, size_t n)
{
	Svc *s = NULL;
	SvcStatus st = { 0 };
	SvcOptions o = { .root = f->root };
	snprintf(buf, n, "(none)");
	if (svc_open(&o, &s, NULL) < 0 || svc_status(s, &st, NULL) < 0) {
		svc_close(s);
		return buf;
	}
	for (size_t i = 0; i < st.n_fixes; i++)
		if (strcmp(st.fixes[i].id, id) == 0)
			snprintf(buf, n, "%s", st.fixes[i].state);
	svc_status_free(&st);
	svc_close(s);
	return buf;
}

static void test_install_swaps_all_targets_and_status_agrees(void)
{
	Fx f;
	SvcReport rep = { 0 };
	char buf[32];
	fx_setup(&f);
	BaseErr dbg_e = { 0 };
	CU_ASSERT_EQUAL(install(&f, "P1", &rep, &dbg_e), 0);
	CU_ASSERT_FALSE(rep.noop);
	CU_ASSERT_TRUE(rep.txn > 0);
	svc_report_free(&rep);
	char *a = fx_read(&f, "lib/a"), *b = fx_read(&f, "lib/b");
	CU_ASSERT_STRING_EQUAL(a, ELF_(A2));
	CU_ASSERT_STRING_EQUAL(b, ELF_(B2));
	free(a);
	free(b);
	CU_ASSERT_STRING_EQUAL(fix_state(&f, "P1", buf, sizeof(buf)), "installed");
	/* again: a no-op */
	CU_ASSERT_EQUAL(install(&f, "P1", &rep, NULL), 0);
	CU_ASSERT_TRUE(rep.noop);
	svc_report_free(&rep);
	fx_done(&f);
}

static void test_stacked_rollback_order_is_enforced(void)
{
	Fx f;
	SvcReport rep = { 0 };
	BaseErr e = { 0 };
	char buf[32];
	fx_setup(&f);
	CU_ASSERT_EQUAL(install(&f, "P1", NULL, NULL), 0);
	CU_ASSERT_EQUAL(install(&f, "P2", NULL, NULL), 0);
	CU_ASSERT_EQUAL(rollback(&f, "P1", &rep, &e), -ESTALE);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "rolled back first"));
	CU_ASSERT_EQUAL(rollback(&f, "P2", NULL, NULL), 0);
	char *a = fx_read(&f, "lib/a");
	CU_ASSERT_STRING_EQUAL(a, ELF_(A2));
	free(a);
	CU_ASSERT_EQUAL(rollback(&f, "P1", NULL, NULL), 0);
	a = fx_read(&f, "lib/a");
	char *b = fx_read(&f, "lib/b");
	CU_ASSERT_STRING_EQUAL(a, ELF_(A1));
	CU_ASSERT_STRING_EQUAL(b, ELF_(B1));
	free(a);
	free(b);
	CU_ASSERT_STRING_EQUAL(fix_state(&f, "P1", buf, sizeof(buf)), "rolled-back");
	CU_ASSERT_STRING_EQUAL(fix_state(&f, "P2", buf, sizeof(buf)), "rolled-back");
	/* rolled back twice: a no-op */
	CU_ASSERT_EQUAL(rollback(&f, "P1", &rep, NULL), 0);
	CU_ASSERT_TRUE(rep.noop);
	svc_report_free(&rep);
	fx_done(&f);
}

static void test_refusals_change_nothing(void)
{
	Fx f;
	BaseErr e = { 0 };
	fx_setup(&f);
	/* P2 applies to A2, the system has A1 */
	CU_ASSERT_EQUAL(install(&f, "P2", NULL, &e), -ESTALE);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "/lib/a"));
	char *a = fx_read(&f, "lib/a");
	CU_ASSERT_STRING_EQUAL(a, ELF_(A1));
	free(a);
	char *ls = test_sh_out("ls -A %s/root/lib; ls -A %s/root/var/lib/svc/pending", f.dir, f.dir);
	CU_ASSERT_PTR_NULL(strstr(ls, "svc-"));
	CU_ASSERT_PTR_NULL(strstr(ls, ".txn"));
	free(ls);
	/* an older sequence of the series, once P2's level is installed */
	CU_ASSERT_EQUAL(install(&f, "P1", NULL, NULL), 0);
	CU_ASSERT_EQUAL(install(&f, "P2", NULL, NULL), 0);
	fx_pack(&f, "P0", 0, "/lib/b=b2:b1");
	base_err_clear(&e);
	CU_ASSERT_EQUAL(install(&f, "P0", NULL, &e), -ERANGE);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "not newer"));
	/* unknown fix */
	base_err_clear(&e);
	CU_ASSERT_EQUAL(rollback(&f, "NOPE", NULL, &e), -ENOENT);
	fx_done(&f);
}

/* Anti-rollback is a high-water mark per series: once P2 (seq 2) was
 * installed, P1 (seq 1) stays refused after P2 and P1 are rolled back; only
 * the operator's explicit override lets it in, with a warning. */
static void test_series_high_water_mark_survives_rollback(void)
{
	Fx f;
	BaseErr e = { 0 };
	SvcReport rep = { 0 };
	fx_setup(&f);
	CU_ASSERT_EQUAL(install(&f, "P1", NULL, NULL), 0);
	CU_ASSERT_EQUAL(install(&f, "P2", NULL, NULL), 0);
	CU_ASSERT_EQUAL(rollback(&f, "P2", NULL, NULL), 0);
	CU_ASSERT_EQUAL(rollback(&f, "P1", NULL, NULL), 0);
	CU_ASSERT_EQUAL(install(&f, "P1", NULL, &e), -ERANGE);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "high-water mark"));
	char *a = fx_read(&f, "lib/a");
	CU_ASSERT_STRING_EQUAL(a, ELF_(A1));
	free(a);
	CU_ASSERT_EQUAL(install_flags(&f, "P1", SVC_ALLOW_OLDER, &rep, NULL), 0);
	int warned = 0;
	for (size_t i = 0; i < rep.n_lines; i++)
		warned |= strstr(rep.lines[i], "WARNING") != NULL;
	CU_ASSERT_TRUE(warned);
	svc_report_free(&rep);
	a = fx_read(&f, "lib/a");
	CU_ASSERT_STRING_EQUAL(a, ELF_(A2));
	free(a);
	fx_done(&f);
}

static void test_second_transaction_is_locked_out(void)
{
	Fx f;
	Svc *s1 = NULL;
	BaseErr e = { 0 };
	SvcOptions o;
	fx_setup(&f);
	o = (SvcOptions){ .root = f.root };
	CU_ASSERT_EQUAL(svc_open(&o, &s1, NULL), 0);
	CU_ASSERT_EQUAL(svc_boot(s1, NULL, NULL), 0); /* takes the lock, keeps it */
	CU_ASSERT_EQUAL(install(&f, "P1", NULL, &e), -EBUSY);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "lock"));
	svc_close(s1);
	CU_ASSERT_EQUAL(install(&f, "P1", NULL, NULL), 0);
	fx_done(&f);
}

static void test_status_reports_levels_and_boot_record(void)
{
	Fx f;
	Svc *s = NULL;
	SvcStatus st = { 0 };
	SvcOptions o;
	fx_setup(&f);
	o = (SvcOptions){ .root = f.root };
	CU_ASSERT_EQUAL(install(&f, "P1", NULL, NULL), 0);
	CU_ASSERT_EQUAL(install(&f, "P2", NULL, NULL), 0);
	CU_ASSERT_EQUAL(svc_open(&o, &s, NULL), 0);
	CU_ASSERT_EQUAL(svc_boot(s, NULL, NULL), 0);
	CU_ASSERT_EQUAL(svc_status(s, &st, NULL), 0);
	CU_ASSERT_EQUAL(st.n_files, 2);
	for (size_t i = 0; i < st.n_files; i++) {
		if (strcmp(st.files[i].path, "/lib/a") == 0)
			CU_ASSERT_STRING_EQUAL(st.files[i].level, "P2");
		if (strcmp(st.files[i].path, "/lib/b") == 0)
			CU_ASSERT_STRING_EQUAL(st.files[i].level, "P1");
		CU_ASSERT_TRUE(st.files[i].converged);
	}
	CU_ASSERT_PTR_NOT_NULL(st.last_boot);
	if (st.last_boot)
		CU_ASSERT_PTR_NOT_NULL(strstr(st.last_boot, "nothing pending"));
	svc_status_free(&st);
	svc_close(s);
	fx_done(&f);
}

/* A read-only open (status) creates nothing on a fresh root, sees the
 * ledger of a used one, and refuses anything that would take the lock. */
static void test_read_only_open_creates_nothing(void)
{
	Fx f;
	Svc *s = NULL;
	SvcStatus st = { 0 };
	SvcReport rep = { 0 };
	BaseErr e = { 0 };
	char *state = NULL;
	struct stat sb;
	fx_setup(&f);
	SvcOptions o = { .root = f.root, .read_only = 1 };
	if (asprintf(&state, "%s/var", f.root) < 0)
		return;
	CU_ASSERT_EQUAL(svc_open(&o, &s, NULL), 0);
	CU_ASSERT_EQUAL(svc_status(s, &st, NULL), 0);
	CU_ASSERT_EQUAL(st.n_fixes, 0);
	CU_ASSERT_PTR_NULL(st.last_boot);
	CU_ASSERT_EQUAL(st.last_boot_at, 0);
	svc_status_free(&st);
	CU_ASSERT_EQUAL(svc_rollback(s, "P1", 0, &rep, &e), -EROFS);
	CU_ASSERT_EQUAL(svc_boot(s, NULL, NULL), -EROFS);
	svc_close(s);
	CU_ASSERT_NOT_EQUAL(stat(state, &sb), 0); /* not even ROOT/var */

	CU_ASSERT_EQUAL(install(&f, "P1", NULL, NULL), 0);
	o.read_only = 0;
	CU_ASSERT_EQUAL(svc_open(&o, &s, NULL), 0);
	CU_ASSERT_EQUAL(svc_boot(s, NULL, NULL), 0);
	svc_close(s);
	o.read_only = 1;
	CU_ASSERT_EQUAL(svc_open(&o, &s, NULL), 0);
	CU_ASSERT_EQUAL(svc_status(s, &st, NULL), 0);
	CU_ASSERT_EQUAL(st.n_fixes, 1);
	if (st.n_fixes)
		CU_ASSERT_TRUE(st.fixes[0].created > 1700000000u);
	CU_ASSERT_TRUE(st.last_boot_at > 1700000000u);
	CU_ASSERT_EQUAL(st.last_boot_result, SVC_BOOT_OK);
	CU_ASSERT_PTR_NOT_NULL(st.last_boot_lines);
	if (st.last_boot_lines)
		CU_ASSERT_STRING_EQUAL(st.last_boot_lines, "nothing pending\n");
	svc_status_free(&st);
	svc_close(s);
	free(state);
	fx_done(&f);
}

/* A package that ships only the payload: install synthesizes the coldpatch
 * from the installed file, and refuses to stage it unless its SHA-256 is the
 * one the vendor signed.  Here the vendor signed a wrong hash. */
static void test_synthesized_coldpatch_must_match_the_signed_hash(void)
{
	Fx f;
	fx_setup(&f);
	const char *cf = "-O2 -fPIC -ffunction-sections -fdata-sections -fpatchable-function-entry=16,14";
	CU_ASSERT_EQUAL_FATAL(test_sh("cd %s && gcc %s -DGREET_VERSION=1 -c %s/../tests/fixtures/cold/libgreet.c -o v1.o"
				      " && gcc %s -DGREET_VERSION=2 -c %s/../tests/fixtures/cold/libgreet.c -o v2.o"
				      " && gcc -shared -o base.so v1.o && cp base.so root/lib/g.so",
				      f.dir, cf, test_build_dir(), cf, test_build_dir()), 0);
	char *base = NULL, *o1 = NULL, *o2 = NULL, *out = NULL, *key = NULL;
	CU_ASSERT_FATAL(asprintf(&base, "%s/base.so", f.dir) > 0 && asprintf(&o1, "%s/v1.o", f.dir) > 0 &&
			asprintf(&o2, "%s/v2.o", f.dir) > 0 && asprintf(&out, "%s/bad.hfx", f.dir) > 0 &&
			asprintf(&key, "%s/v.key", f.dir) > 0);
	ElfObjectPair pair = { o1, o2 };
	ElfPayload *p = NULL;
	BaseBuf hp = { 0 };
	CU_ASSERT_EQUAL_FATAL(elf_build_payload(base, &pair, 1, "BAD", NULL, 0, &p, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(elf_payload_write(p, &hp, NULL), 0);
	ManifestMember m = { .name = "hp/0", .data = hp.data, .len = hp.len };
	ManifestTarget t = { .path = "/lib/g.so", .mode = 0755, .payload_member = "hp/0" };
	uint8_t *bytes = NULL;
	size_t len = 0;
	int fd = open(base, O_RDONLY);
	CU_ASSERT_EQUAL(base_fs_read_fd(fd, 1 << 24, &bytes, &len), 0);
	close(fd);
	base_sha256(bytes, len, t.base_sha256);
	memset(t.new_sha256, 0x5a, sizeof(t.new_sha256)); /* not what synthesis gives */
	ManifestPackage pkg = { .id = "BAD", .series = "g", .sequence = 1, .n_targets = 1,
				.targets = &t, .n_members = 1, .members = &m };
	CU_ASSERT_EQUAL_FATAL(manifest_pack(&pkg, key, out, NULL), 0);
	const char *tree = "cd %s/root && find lib -printf '%%p %%s\\n' | sort && sha256sum lib/*";
	char *before = test_sh_out(tree, f.dir);
	BaseErr e = { 0 };
	CU_ASSERT_EQUAL(install(&f, "bad", NULL, &e), -EBADMSG);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "not the signed one"));
	char *after = test_sh_out(tree, f.dir);
	CU_ASSERT_STRING_EQUAL(after, before);
	CU_ASSERT_PTR_NULL(strstr(after, "svc-"));
	CU_ASSERT_PTR_NOT_NULL(strstr(after, "lib/g.so"));
	free(before);
	free(after);
	free(bytes);
	base_buf_free(&hp);
	elf_payload_free(p);
	free(base);
	free(o1);
	free(o2);
	free(out);
	free(key);
	fx_done(&f);
}

/* A dry run on a read-only Svc: the verdict of a real run, per target, with
 * nothing created (not even var/lib/svc), and `changed` as the no-op answer. */
static int dry(Fx *f, const char *what, int is_rollback, SvcReport *rep, BaseErr *e)
{
	Svc *s = NULL;
	char *pkg = NULL;
	SvcOptions o = { .root = f->root, .read_only = 1 };
	if (asprintf(&pkg, "%s/%s.hfx", f->dir, what) < 0)
		return -ENOMEM;
	int r = svc_open(&o, &s, e);
	if (r >= 0)
		r = is_rollback ? svc_rollback(s, what, SVC_DRY_RUN, rep, e)
				: svc_install(s, pkg, SVC_DRY_RUN, rep, e);
	svc_close(s);
	free(pkg);
	return r;
}

static void test_dry_run_reports_and_changes_nothing(void)
{
	Fx f;
	SvcReport rep = { 0 };
	BaseErr e = { 0 };
	fx_setup(&f);
	char *before = test_sh_out("cd %s && find . -printf '%%p %%m\\n' | sort && "
				   "find . -type f | sort | xargs sha256sum", f.root);
	CU_ASSERT_EQUAL(dry(&f, "P1", 0, &rep, &e), 0);
	CU_ASSERT_TRUE(rep.dry_run && rep.changed && !rep.noop && !rep.refused);
	CU_ASSERT_EQUAL(rep.n_targets, 2);
	for (size_t i = 0; i < rep.n_targets; i++) {
		CU_ASSERT_EQUAL(rep.targets[i].action, SVC_TARGET_SWAP);
		CU_ASSERT_STRING_EQUAL(rep.targets[i].from, "base");
		CU_ASSERT_STRING_EQUAL(rep.targets[i].to, "P1");
	}
	svc_report_free(&rep);
	/* P2 applies to A2: refused by name, the reason in the report and the error */
	CU_ASSERT_EQUAL(dry(&f, "P2", 0, &rep, &e), 0);
	CU_ASSERT_EQUAL(rep.refused, 1);
	CU_ASSERT_EQUAL(rep.n_targets, 1);
	CU_ASSERT_EQUAL(rep.targets[0].action, SVC_TARGET_REFUSED);
	CU_ASSERT_PTR_NOT_NULL(strstr(rep.targets[0].reason, "not the base version"));
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "/lib/a"));
	svc_report_free(&rep);
	base_err_clear(&e);
	CU_ASSERT_EQUAL(dry(&f, "P1", 1, &rep, &e), -ENOENT);
	char *after = test_sh_out("cd %s && find . -printf '%%p %%m\\n' | sort && "
				  "find . -type f | sort | xargs sha256sum", f.root);
	CU_ASSERT_STRING_EQUAL(before, after);
	free(before);
	free(after);
	/* installed: the dry runs answer no-op, and a rollback would change */
	CU_ASSERT_EQUAL(install(&f, "P1", &rep, NULL), 0);
	CU_ASSERT_TRUE(rep.changed && !rep.dry_run);
	svc_report_free(&rep);
	CU_ASSERT_EQUAL(dry(&f, "P1", 0, &rep, NULL), 0);
	CU_ASSERT_TRUE(rep.noop && !rep.changed);
	CU_ASSERT_EQUAL(rep.n_targets, 2);
	CU_ASSERT_EQUAL(rep.targets[0].action, SVC_TARGET_NOOP);
	svc_report_free(&rep);
	CU_ASSERT_EQUAL(dry(&f, "P1", 1, &rep, NULL), 0);
	CU_ASSERT_TRUE(rep.changed && rep.txn > 0);
	CU_ASSERT_EQUAL(rep.targets[0].action, SVC_TARGET_SWAP);
	CU_ASSERT_STRING_EQUAL(rep.targets[0].to, "base");
	svc_report_free(&rep);
	char *a = fx_read(&f, "lib/a");
	CU_ASSERT_STRING_EQUAL(a, ELF_(A2));
	free(a);
	/* a read-only Svc never takes the lock */
	Svc *s = NULL;
	SvcOptions o = { .root = f.root, .read_only = 1 };
	base_err_clear(&e);
	CU_ASSERT_EQUAL(svc_open(&o, &s, NULL), 0);
	CU_ASSERT_EQUAL(svc_rollback(s, "P1", 0, NULL, &e), -EROFS);
	svc_close(s);
	fx_done(&f);
}

static void test_metrics_count_states_and_files(void)
{
	Fx f;
	Svc *s = NULL;
	BaseBuf out = { 0 };
	fx_setup(&f);
	SvcOptions o = { .root = f.root, .read_only = 1 };
	CU_ASSERT_EQUAL(install(&f, "P1", NULL, NULL), 0);
	CU_ASSERT_EQUAL(svc_open(&o, &s, NULL), 0);
	CU_ASSERT_EQUAL(svc_metrics(s, &out, NULL), 0);
	svc_close(s);
	CU_ASSERT_PTR_NOT_NULL(out.data);
	const char *t = (const char *)out.data;
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "# TYPE svc_fixes gauge\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nsvc_fixes{state=\"installed\"} 1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nsvc_fixes{state=\"quarantined\"} 0\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nsvc_files_serviced 2\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nsvc_file_converged{path=\"/lib/a\",level=\"P1\"} 1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nsvc_unconverged_processes 0\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nsvc_last_boot_result{result=\"none\"} 1\n"));
	base_buf_free(&out);
	fx_done(&f);
}

/* The dpkg database as svc reads it: the owner from info/PKG.list (a
 * Multi-Arch "name:arch" list, the version from the status stanza of that
 * architecture), the md5sum check, and svc's coldpatch as the explanation
 * of a mismatch; verify counts what svc cannot explain. */
static void test_status_names_dpkg_owner_and_explains_md5_mismatch(void)
{
	Fx f;
	Svc *s = NULL;
	SvcStatus st = { 0 };
	SvcOptions o;
	fx_setup(&f);
	o = (SvcOptions){ .root = f.root };
	char *md5 = test_sh_out("printf A1 | md5sum | cut -c1-32");
	test_sh("mkdir -p %s/var/lib/dpkg/info", f.root);
	fx_file(&f, "root/var/lib/dpkg/info/liba:amd64.list", "/.\n/lib\n/lib/a\n");
	fx_file(&f, "root/var/lib/dpkg/info/libb.list", "/lib/b\n");
	char *sums = NULL;
	if (md5 && asprintf(&sums, "%.32s  lib/a\n", md5) > 0)
		fx_file(&f, "root/var/lib/dpkg/info/liba:amd64.md5sums", sums);
	fx_file(&f, "root/var/lib/dpkg/status",
		"Package: liba\nStatus: install ok installed\nArchitecture: i386\nVersion: 9\n\n"
		"Package: liba\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.2-3\n\n"
		"Package: libb\nStatus: install ok installed\nArchitecture: all\nVersion: 4\n");
	CU_ASSERT_EQUAL(install(&f, "P1", NULL, NULL), 0);
	CU_ASSERT_EQUAL(svc_open(&o, &s, NULL), 0);
	CU_ASSERT_EQUAL(svc_status(s, &st, NULL), 0);
	for (size_t i = 0; i < st.n_files; i++) {
		const SvcDpkgFile *d = &st.files[i].dpkg;
		if (strcmp(st.files[i].path, "/lib/a") == 0) {
			CU_ASSERT_STRING_EQUAL(d->package, "liba:amd64");
			CU_ASSERT_STRING_EQUAL(d->version, "1.2-3");
			CU_ASSERT_EQUAL(d->sum, SVC_DPKG_DIFFERS);
			CU_ASSERT_TRUE(d->accounted);
		} else {
			CU_ASSERT_STRING_EQUAL(d->package, "libb");
			CU_ASSERT_STRING_EQUAL(d->version, "4");
			CU_ASSERT_EQUAL(d->sum, SVC_DPKG_NO_SUM);
			CU_ASSERT_FALSE(d->accounted);
		}
	}
	svc_status_free(&st);
	CU_ASSERT_EQUAL(svc_verify(s, &st, NULL), 0);
	svc_status_free(&st);
	fx_file(&f, "root/lib/a", "ZZ");
	CU_ASSERT_EQUAL(svc_verify(s, &st, NULL), 1);
	svc_status_free(&st);
	svc_close(s);
	free(md5);
	free(sums);
	fx_done(&f);
}

/* A child that maps fd_a twice and fd_b (-1: none) once, says so on the
 * pipe, and waits to be killed (by its PID, by the test that started it). */
static pid_t mapper(int fd_a, int fd_b)
{
	int p[2];
	char c = 0;
	if (pipe(p) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		int ok = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd_a, 0) != MAP_FAILED &&
			 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd_a, 0) != MAP_FAILED &&
			 (fd_b < 0 || mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd_b, 0) != MAP_FAILED);
		c = ok ? 'y' : 'n';
		if (write(p[1], &c, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	if (pid < 0 || read(p[0], &c, 1) != 1 || c != 'y') {
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		pid = -1;
	}
	close(p[0]);
	return pid;
}

/* The in-use scan lists every process once, in pid order, whatever the
 * number of mappings it has of the file; one mapping of a replaced version
 * (the kernel names it "PATH (deleted)") makes the process an old user. */
static void test_scan_lists_each_user_once_old_versions_marked(void)
{
	Fx f;
	fx_setup(&f);
	char *path = NULL, *tmp = NULL;
	CU_ASSERT_FATAL(asprintf(&path, "%s/lib/x", f.root) > 0 &&
			asprintf(&tmp, "%s/lib/.x.new", f.root) > 0);
	char page[4096] = ELF_(X1);
	test_write(path, page, sizeof(page));
	int old_fd = open(path, O_RDONLY | O_CLOEXEC);
	memcpy(page, ELF_(X2), sizeof(ELF_(X2)));
	test_write(tmp, page, sizeof(page));
	CU_ASSERT_EQUAL_FATAL(rename(tmp, path), 0);
	int cur_fd = open(path, O_RDONLY | O_CLOEXEC);
	CU_ASSERT_FATAL(old_fd >= 0 && cur_fd >= 0);
	/* old only, current only, current then old, and current only again */
	pid_t pid[4] = { mapper(old_fd, -1), mapper(cur_fd, -1), mapper(cur_fd, old_fd),
			 mapper(cur_fd, -1) };
	const int want_old[4] = { 1, 0, 1, 0 };
	struct stat st;
	CU_ASSERT_EQUAL(fstat(cur_fd, &st), 0);
	Svc *s = NULL;
	SvcOptions o = { .root = f.root, .read_only = 1 };
	BaseErr e = { 0 };
	SvcScanTarget t = { .path = "/lib/x", .dev = st.st_dev, .ino = st.st_ino };
	CU_ASSERT_EQUAL(svc_open(&o, &s, &e), 0);
	CU_ASSERT(svc_scan_users(s, &t, 1, NULL, &e) >= 0);
	CU_ASSERT_EQUAL(t.n_users, 4);
	for (size_t i = 0; i < t.n_users; i++) {
		if (i > 0)
			CU_ASSERT(t.users[i].pid > t.users[i - 1].pid);
		size_t k = 0;
		while (k < 4 && pid[k] != t.users[i].pid)
			k++;
		CU_ASSERT_FATAL(k < 4);
		CU_ASSERT_EQUAL(t.users[i].old_version, want_old[k]);
		CU_ASSERT_STRING_EQUAL(t.users[i].comm, "test-svc");
	}
	free(t.users);
	/* the processes the caller names are not read: not listed */
	pid_t skip[2] = { pid[1] < pid[3] ? pid[1] : pid[3], pid[1] < pid[3] ? pid[3] : pid[1] };
	SvcScanTarget t2 = { .path = "/lib/x", .dev = st.st_dev, .ino = st.st_ino };
	CU_ASSERT(svc_scan_users_except(s, &t2, 1, skip, 2, NULL, &e) >= 0);
	CU_ASSERT_EQUAL(t2.n_users, 2);
	for (size_t i = 0; i < t2.n_users; i++)
		CU_ASSERT(t2.users[i].pid == pid[0] || t2.users[i].pid == pid[2]);
	free(t2.users);
	svc_close(s);
	for (int k = 0; k < 4; k++)
		if (pid[k] > 0) {
			kill(pid[k], SIGKILL);
			waitpid(pid[k], NULL, 0);
		}
	close(old_fd);
	close(cur_fd);
	free(path);
	free(tmp);
	fx_done(&f);
}

int test_register(void)
{
	CU_pSuite s = CU_add_suite("svc", NULL, NULL);
	if (!s)
		return -1;
	CU_add_test(s, "install swaps every target; status agrees; again is a no-op",
		    test_install_swaps_all_targets_and_status_agrees);
	CU_add_test(s, "stacked fixes roll back newest first only", test_stacked_rollback_order_is_enforced);
	CU_add_test(s, "wrong base, older sequence, unknown fix: refused, nothing changed",
		    test_refusals_change_nothing);
	CU_add_test(s, "series high-water mark survives rollback; override is loud",
		    test_series_high_water_mark_survives_rollback);
	CU_add_test(s, "a second transaction is locked out", test_second_transaction_is_locked_out);
	CU_add_test(s, "status: fix level per file, last boot record", test_status_reports_levels_and_boot_record);
	CU_add_test(s, "read-only open: creates nothing, refuses changes, reads times",
		    test_read_only_open_creates_nothing);
	CU_add_test(s, "a synthesized coldpatch must match the signed hash", test_synthesized_coldpatch_must_match_the_signed_hash);
	CU_add_test(s, "dry run: per-target verdicts, every refusal named, nothing created or changed",
		    test_dry_run_reports_and_changes_nothing);
	CU_add_test(s, "metrics: every fix state, files, convergence, boot result",
		    test_metrics_count_states_and_files);
	CU_add_test(s, "status: dpkg owner, version, md5sum; verify counts the unexplained",
		    test_status_names_dpkg_owner_and_explains_md5_mismatch);
	CU_add_test(s, "in-use scan: each process once, in pid order; a replaced version marks it old; "
		    "skipped processes not read",
		    test_scan_lists_each_user_once_old_versions_marked);
	return 0;
}
