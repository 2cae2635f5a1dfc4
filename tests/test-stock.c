/* Stock binaries: a library built as a distribution builds it (no
 * -ffunction-sections, version script, stripped, symbols in a separate
 * debug file) and a fix built from objects of its changed unit.  Checks
 * where symbols come from (build-id directory, .gnu_debuglink with its CRC,
 * compressed debug sections, a debug file of another build) and the diff
 * rules that keep a payload from being silently wrong: hidden globals,
 * renumbered statics, __LINE__-only changes, base objects that do not match
 * the base, a changed function without a base symbol, a payload without a
 * redirect.  Fixtures: tests/fixtures/stock/, built per run. */
#include <CUnit/CUnit.h>
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/base.h"
#include "elf/elf.h"
#include "tests/testlib.h"

static char *scratch;
static char fixtures[4096];
static char build_id[129];
static int built, build_failed;

#define CC "gcc -O2 -g -fPIC"
#define CC_OBJ CC " -ffunction-sections -fdata-sections"

static int suite_init(void)
{
	snprintf(fixtures, sizeof(fixtures), "%s/../tests/fixtures/stock", test_build_dir());
	scratch = test_scratch("stock");
	return scratch ? 0 : -1;
}

static int suite_clean(void)
{
	test_rmrf(scratch);
	free(scratch);
	scratch = NULL;
	return 0;
}

static char *sp(const char *rel)
{
	return base_strdupf("%s/%s", scratch, rel);
}

/* The base as shipped (stripped/libst.so), its debug file in
 * dbg/.build-id/, a zlib-compressed one in zdbg/, a debuglinked copy with
 * the debug file beside it in link/, the debug file of another build at
 * this build-id's path in wrong/, an empty debug directory in none/, and the
 * objects lib_F.o of each fix. */
static int build(void)
{
	if (built)
		return build_failed ? -1 : 0;
	built = build_failed = 1;
	if (test_sh("cd %s && mkdir -p stripped link none && "
		    "for f in 0 1 3 4 5 6; do " CC_OBJ " -DFIX=$f -c %s/lib.c -o lib_$f.o || exit 1; done && "
		    CC_OBJ " -DSKEW -c %s/lib.c -o lib_skew.o && "
		    CC " -c %s/lib.c -o lib_base.o && " CC " -c %s/other.c -o other.o && "
		    CC " -c %s/third.c -o third.o && " CC " -DFIX=3 -c %s/lib.c -o lib_other.o && "
		    "gcc -shared -Wl,--build-id -Wl,--version-script=%s/vs.map -o libst.so "
		    "lib_base.o other.o third.o && "
		    "gcc -shared -Wl,--build-id -Wl,--version-script=%s/vs.map -o libother.so "
		    "lib_other.o other.o third.o && "
		    "gcc -O2 -o main %s/main.c -L. -lst && "
		    "objcopy --only-keep-debug libst.so libst.debug && "
		    "objcopy --only-keep-debug libother.so libother.debug && "
		    "objcopy --compress-debug-sections=zlib libst.debug libst.zdebug && "
		    "strip --remove-section=.comment --strip-unneeded -o stripped/libst.so libst.so && "
		    "cp libst.debug link/libst.debug && "
		    "objcopy --add-gnu-debuglink=link/libst.debug stripped/libst.so link/libst.so 2>&1",
		    scratch, fixtures, fixtures, fixtures, fixtures, fixtures, fixtures, fixtures,
		    fixtures, fixtures) != 0)
		return -1;
	ElfFile *f = NULL;
	char *p = sp("stripped/libst.so");
	BaseErr e = { 0 };
	int r = elf_open_path(p, &f, &e);
	free(p);
	if (r < 0 || !f->build_id_len || f->n_symbols) {
		elf_close(f);
		return -1;
	}
	base_hex(build_id, f->build_id, f->build_id_len);
	elf_close(f);
	if (test_sh("cd %s && for d in dbg zdbg wrong; do mkdir -p $d/.build-id/%.2s; done && "
		    "cp libst.debug dbg/.build-id/%.2s/%s.debug && "
		    "cp libst.zdebug zdbg/.build-id/%.2s/%s.debug && "
		    "cp libother.debug wrong/.build-id/%.2s/%s.debug",
		    scratch, build_id, build_id, build_id + 2, build_id, build_id + 2, build_id,
		    build_id + 2) != 0)
		return -1;
	build_failed = 0;
	return 0;
}

/* Payload of fix `fix` (old object `old`, default lib_0.o) for base. */
static int pack(const char *base, const char *old, int fix, const char *dir, ElfPayload **ret,
		ElfBuildStats *st, BaseErr *e)
{
	char *b = sp(base), *o = sp(old ? old : "lib_0.o");
	char *n = base_strdupf("%s/lib_%d.o", scratch, fix), *d = sp(dir);
	const char *dirs[1] = { d };
	ElfBuildOptions opts = { dirs, 1, 1 };
	ElfObjectPair pair = { o, n };
	base_err_clear(e);
	int r = elf_build_payload_opts(b, &pair, 1, "FIX-S", NULL, 0, &opts, ret, st, e);
	free(b);
	free(o);
	free(n);
	free(d);
	return r;
}

static int redirected(const ElfPayload *p, const char *name)
{
	for (size_t i = 0; i < p->n_redirects; i++)
		if (strcmp(p->redirects[i].name, name) == 0)
			return 1;
	return 0;
}

static uint64_t sym_addr(const char *file, const char *name)
{
	char *p = sp(file);
	ElfFile *f = NULL;
	uint64_t v = 0;
	if (elf_open_path(p, &f, NULL) == 0) {
		const ElfSymbol *s = elf_find_symbol(f, name);
		v = s ? s->value : 0;
	}
	elf_close(f);
	free(p);
	return v;
}

static int binds_base_to(const ElfPayload *p, uint64_t v)
{
	for (size_t i = 0; i < p->n_relocs; i++)
		if (p->relocs[i].bind == ELF_BIND_BASE && p->relocs[i].value == v)
			return 1;
	return 0;
}

/* Coldpatch the shipped file with p and run main against it. */
static char *run_fixed(const char *base, const ElfPayload *p)
{
	char *b = sp(base), *out = sp("run/libst.so");
	size_t len = 0;
	char *bytes = test_read(b, &len);
	BaseBuf c = { 0 };
	char *res = NULL;
	if (bytes && test_sh("mkdir -p %s/run", scratch) == 0 &&
	    elf_coldpatch((uint8_t *)bytes, len, p, &c, NULL) == 0 &&
	    test_write(out, c.data, c.len) == 0)
		res = test_sh_out("cd %s && LD_LIBRARY_PATH=run ./main 2>&1", scratch);
	base_buf_free(&c);
	free(bytes);
	free(b);
	free(out);
	return res;
}

static void test_stripped_base_symbols_by_build_id(void)
{
	CU_ASSERT_EQUAL_FATAL(build(), 0);
	ElfPayload *p = NULL;
	ElfBuildStats st = { 0 };
	BaseErr e = { 0 };
	int r = pack("stripped/libst.so", NULL, 1, "dbg", &p, &st, &e);
	if (r < 0)
		fprintf(stderr, "\n    %s\n", e.msg);
	CU_ASSERT_EQUAL_FATAL(r, 0);
	CU_ASSERT_EQUAL(st.symbols, ELF_SYMS_BUILD_ID);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.symbols_path, "/dbg/.build-id/"));
	/* the changed functions, statics and hidden globals included */
	CU_ASSERT_TRUE(redirected(p, "stat_fn"));
	CU_ASSERT_TRUE(redirected(p, "counting"));
	CU_ASSERT_TRUE(redirected(p, "late"));
	/* api_a's code changed too: gcc's interprocedural register allocation
	 * follows its callee's new needs */
	CU_ASSERT_TRUE(redirected(p, "api_a"));
	/* __LINE__ moved in checked()'s assert, and its __PRETTY_FUNCTION__
	 * was renumbered: left alone, and counted */
	CU_ASSERT_FALSE(redirected(p, "checked"));
	CU_ASSERT_EQUAL(st.n_line_only, 1);
	CU_ASSERT_EQUAL(p->n_redirects, 4);
	/* counter.2 of the fixed object is the base's counter.1 */
	CU_ASSERT_TRUE(binds_base_to(p, sym_addr("libst.so", "counter.1")));
	/* hidden globals, LOCAL in the linked file, bound to the base's */
	CU_ASSERT_TRUE(binds_base_to(p, sym_addr("libst.so", "hidden_count")));
	CU_ASSERT_TRUE(binds_base_to(p, sym_addr("libst.so", "hidden_helper")));
	CU_ASSERT_TRUE(st.n_verified >= 3);
	/* and the shipped file, fixed with it, runs the fix on live state */
	char *out = run_fixed("stripped/libst.so", p);
	CU_ASSERT_PTR_NOT_NULL(out);
	CU_ASSERT_STRING_EQUAL(out ? out : "",
			       "api_a=23 api_b=10 counting=1001,1002 checked=30\n");
	free(out);
	elf_payload_free(p);
}

static void test_debuglink_crc_and_compressed_sections(void)
{
	CU_ASSERT_EQUAL_FATAL(build(), 0);
	ElfPayload *p = NULL;
	ElfBuildStats st = { 0 };
	BaseErr e = { 0 };
	CU_ASSERT_EQUAL_FATAL(pack("link/libst.so", NULL, 1, "none", &p, &st, &e), 0);
	CU_ASSERT_EQUAL(st.symbols, ELF_SYMS_DEBUGLINK);
	CU_ASSERT_EQUAL(p->n_redirects, 4);
	elf_payload_free(p);
	p = NULL;

	/* compressed .debug_* sections in the debug file are normal */
	char *z = sp("libst.zdebug");
	ElfFile *zf = NULL;
	int compressed = 0;
	CU_ASSERT_EQUAL_FATAL(elf_open_path(z, &zf, &e), 0);
	for (size_t i = 0; i < zf->n_sections; i++)
		compressed += (zf->sections[i].flags & SHF_COMPRESSED) != 0;
	CU_ASSERT_TRUE(compressed > 0);
	elf_close(zf);
	free(z);
	CU_ASSERT_EQUAL(pack("stripped/libst.so", NULL, 1, "zdbg", &p, &st, &e), 0);
	CU_ASSERT_EQUAL(st.symbols, ELF_SYMS_BUILD_ID);
	elf_payload_free(p);
	p = NULL;

	/* a debug file whose CRC differs from the debuglink's is not used */
	CU_ASSERT_EQUAL_FATAL(test_sh("cd %s && mkdir -p link2 && cp link/libst.so link2/ && "
				      "cp libst.debug link2/ && printf x >>link2/libst.debug",
				      scratch), 0);
	CU_ASSERT_EQUAL(pack("link2/libst.so", NULL, 3, "none", &p, &st, &e), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "CRC does not match"));
	CU_ASSERT_PTR_NULL(p);
}

static void test_debug_file_of_another_build_refused(void)
{
	CU_ASSERT_EQUAL_FATAL(build(), 0);
	ElfPayload *p = NULL;
	BaseErr e = { 0 };
	CU_ASSERT_EQUAL(pack("stripped/libst.so", NULL, 3, "wrong", &p, NULL, &e), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "build-id differs"));
	CU_ASSERT_PTR_NULL(p);
	/* attaching it by hand is refused too */
	char *a = sp("stripped/libst.so"), *b = sp("libother.debug");
	ElfFile *f = NULL, *d = NULL;
	CU_ASSERT_EQUAL_FATAL(elf_open_path(a, &f, &e), 0);
	CU_ASSERT_EQUAL_FATAL(elf_open_path(b, &d, &e), 0);
	CU_ASSERT_EQUAL(elf_attach_symbols(f, d, &e), -ESTALE);
	elf_close(f);
	free(a);
	free(b);
}

static void test_changed_function_without_base_symbol(void)
{
	CU_ASSERT_EQUAL_FATAL(build(), 0);
	ElfPayload *p = NULL;
	ElfBuildStats st = { 0 };
	BaseErr e = { 0 };
	/* stat_fn changed, the stripped base has no symbol for it and its
	 * caller api_a did not change: refused, never dropped */
	CU_ASSERT_EQUAL(pack("stripped/libst.so", NULL, 3, "none", &p, &st, &e), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "'stat_fn' changed and the base has no symbol"));
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "'api_a' is not redirected"));
	CU_ASSERT_PTR_NULL(p);
	/* stat2 changed with its only caller api_b, which is redirected: the
	 * old stat2 is unreachable after the fix */
	CU_ASSERT_EQUAL_FATAL(pack("stripped/libst.so", NULL, 6, "none", &p, &st, &e), 0);
	CU_ASSERT_EQUAL(st.symbols, ELF_SYMS_NONE);
	CU_ASSERT_EQUAL(p->n_redirects, 1);
	CU_ASSERT_TRUE(redirected(p, "api_b"));
	char *out = run_fixed("stripped/libst.so", p);
	CU_ASSERT_STRING_EQUAL(out ? out : "", "api_a=5 api_b=7 counting=1,2 checked=30\n");
	free(out);
	elf_payload_free(p);
}

static void test_payload_without_redirect_refused(void)
{
	CU_ASSERT_EQUAL_FATAL(build(), 0);
	ElfPayload *p = NULL;
	BaseErr e = { 0 };
	CU_ASSERT_EQUAL(pack("libst.so", NULL, 4, "none", &p, NULL, &e), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "the payload would change nothing"));
	CU_ASSERT_PTR_NULL(p);
}

static void test_ambiguous_local_refused_by_name(void)
{
	CU_ASSERT_EQUAL_FATAL(build(), 0);
	ElfPayload *p = NULL;
	BaseErr e = { 0 };
	CU_ASSERT_EQUAL(pack("stripped/libst.so", NULL, 5, "dbg", &p, NULL, &e), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "'vs_local'"));
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "ambiguous"));
	CU_ASSERT_PTR_NULL(p);
}

static void test_base_object_mismatch_refused(void)
{
	CU_ASSERT_EQUAL_FATAL(build(), 0);
	ElfPayload *p = NULL;
	BaseErr e = { 0 };
	/* an old object built from another source than the base */
	CU_ASSERT_EQUAL(pack("stripped/libst.so", "lib_skew.o", 1, "dbg", &p, NULL, &e), -ESTALE);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "lib_skew.o does not match the base build: 'stat_fn' "
					     "differs at +0x"));
	CU_ASSERT_PTR_NULL(p);
	/* ... or with other flags */
	CU_ASSERT_EQUAL_FATAL(test_sh("cd %s && gcc -O1 -g -fPIC -ffunction-sections "
				      "-fdata-sections -c %s/lib.c -o lib_o1.o", scratch, fixtures), 0);
	CU_ASSERT_EQUAL(pack("stripped/libst.so", "lib_o1.o", 1, "dbg", &p, NULL, &e), -ESTALE);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "lib_o1.o does not match the base build"));
	CU_ASSERT_PTR_NULL(p);
}

static void test_diff_ignores_renumbering_and_line_moves(void)
{
	CU_ASSERT_EQUAL_FATAL(build(), 0);
	char *a = sp("lib_0.o"), *b = sp("lib_1.o");
	ElfFile *o = NULL, *n = NULL;
	ElfFuncChange *c = NULL;
	size_t nc = 0;
	BaseErr e = { 0 };
	CU_ASSERT_EQUAL_FATAL(elf_open_path(a, &o, &e), 0);
	CU_ASSERT_EQUAL_FATAL(elf_open_path(b, &n, &e), 0);
	CU_ASSERT_EQUAL_FATAL(elf_diff_objects(o, n, &c, &nc, &e), 0);
	int seen = 0;
	for (size_t i = 0; i < nc; i++) {
		CU_ASSERT_EQUAL(c[i].change, ELF_CHANGE_MODIFIED);
		seen |= strcmp(c[i].name, "stat_fn") == 0 ? 1 : strcmp(c[i].name, "counting") == 0 ? 2
			: strcmp(c[i].name, "late") == 0 ? 4 : strcmp(c[i].name, "api_a") == 0 ? 16 : 8;
	}
	CU_ASSERT_EQUAL(seen, 23);
	elf_func_changes_free(c, nc);
	elf_close(o);
	elf_close(n);
	free(a);
	free(b);
}

int test_register(void)
{
	CU_pSuite s = CU_add_suite("stock", suite_init, suite_clean);
	if (!s)
		return -1;
	CU_add_test(s, "stripped base: symbols by build-id, statics, hidden globals, runs fixed",
		    test_stripped_base_symbols_by_build_id);
	CU_add_test(s, "debuglink with CRC checked; compressed debug sections",
		    test_debuglink_crc_and_compressed_sections);
	CU_add_test(s, "debug file of another build: not used, attach refused",
		    test_debug_file_of_another_build_refused);
	CU_add_test(s, "changed function without base symbol: refused or callers redirected",
		    test_changed_function_without_base_symbol);
	CU_add_test(s, "payload without a redirect refused", test_payload_without_redirect_refused);
	CU_add_test(s, "global demoted to one of two locals: refused by name",
		    test_ambiguous_local_refused_by_name);
	CU_add_test(s, "base objects from another source or flags: refused at function+offset",
		    test_base_object_mismatch_refused);
	CU_add_test(s, "diff: renumbered statics and moved __LINE__ are no change",
		    test_diff_ignores_renumbering_and_line_moves);
	return 0;
}
