/* The compiler wrapper and its compile log (svc build's first step), through
 * the public API: svc_cc_wrap runs the real cc in a scratch directory and
 * records; svc_cc_log_read reads the records back (and refuses torn ones). */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "svc/svc.h"
#include "tests/testlib.h"

typedef struct Fx {
	char *dir, *log, *old_cwd;
} Fx;

static void fx_file(Fx *f, const char *rel, const char *text)
{
	char *p = NULL;
	if (asprintf(&p, "%s/%s", f->dir, rel) >= 0)
		test_write(p, text, strlen(text));
	free(p);
}

static int fx_open(Fx *f)
{
	f->dir = test_scratch("cc");
	f->old_cwd = getcwd(NULL, 0);
	if (!f->dir || !f->old_cwd || asprintf(&f->log, "%s/log", f->dir) < 0)
		return -1;
	test_sh("mkdir -p '%s/log' '%s/inc'", f->dir, f->dir);
	fx_file(f, "inc/h.h", "#define H 1\n");
	fx_file(f, "a.c", "#include \"h.h\"\nint a(void) { return H; }\n");
	fx_file(f, "b.c", "int b(void) { return 2; }\n");
	fx_file(f, "m.c", "int a(void); int b(void);\nint main(void) { return a() + b() - 3; }\n");
	setenv("SVC_CC_LOG", f->log, 1);
	return chdir(f->dir);
}

static void fx_close(Fx *f)
{
	unsetenv("SVC_CC_LOG");
	if (f->old_cwd && chdir(f->old_cwd) < 0)
		CU_FAIL("chdir back");
	test_rmrf(f->dir);
	free(f->dir);
	free(f->log);
	free(f->old_cwd);
}

/* Run the wrapper as `cc ARGS...`; its exit status. */
static int wrap(char **argv)
{
	int argc = 0, status = -1;
	BaseErr e = { 0 };
	while (argv[argc])
		argc++;
	int r = svc_cc_wrap(argc, argv, &status, &e);
	if (r < 0)
		fprintf(stderr, "svc_cc_wrap: %s\n", e.msg);
	return r < 0 ? r : status;
}

static const SvcCcRecord *find(const SvcCcRecord *recs, size_t n, const char *output_suffix)
{
	for (size_t i = 0; i < n; i++) {
		size_t lo = strlen(recs[i].output), ls = strlen(output_suffix);
		if (lo >= ls && strcmp(recs[i].output + lo - ls, output_suffix) == 0)
			return &recs[i];
	}
	return NULL;
}

static int has(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return 1;
	return 0;
}

static void test_compile_records_command_dir_and_header_inputs(void)
{
	Fx f = { 0 };
	SvcCcRecord *recs = NULL;
	size_t n = 0;
	BaseErr e = { 0 };
	char *argv[] = { "cc", "-O2", "-Iinc", "-MD", "-MF", "a.d", "-c", "-o", "out/a.o", "a.c", NULL };
	CU_ASSERT_FATAL(fx_open(&f) == 0);
	test_sh("mkdir -p '%s/out'", f.dir);
	CU_ASSERT_EQUAL(wrap(argv), 0);
	CU_ASSERT(access("out/a.o", F_OK) == 0);
	/* the build's own dependency file is still the build's */
	char *d = test_read("a.d", NULL);
	CU_ASSERT(d && strstr(d, "out/a.o:") && strstr(d, "inc/h.h"));
	free(d);
	CU_ASSERT_EQUAL_FATAL(svc_cc_log_read(f.log, &recs, &n, &e), 0);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	char *out = NULL, *hdr = NULL, *src = NULL;
	CU_ASSERT(asprintf(&out, "%s/out/a.o", f.dir) > 0 && asprintf(&hdr, "%s/inc/h.h", f.dir) > 0 &&
		  asprintf(&src, "%s/a.c", f.dir) > 0);
	CU_ASSERT_EQUAL(recs[0].kind, SVC_CC_COMPILE);
	CU_ASSERT_STRING_EQUAL(recs[0].output, out);
	CU_ASSERT_STRING_EQUAL(recs[0].cwd, f.dir);
	CU_ASSERT_STRING_EQUAL(recs[0].source, "a.c");
	CU_ASSERT_EQUAL(recs[0].argc, 10);
	CU_ASSERT_STRING_EQUAL(recs[0].argv[0], "cc");
	CU_ASSERT(has(recs[0].argv, recs[0].argc, "-MD"));
	CU_ASSERT(has(recs[0].inputs, recs[0].n_inputs, hdr));
	CU_ASSERT(has(recs[0].inputs, recs[0].n_inputs, src));
	CU_ASSERT(recs[0].compiler[0] == '/' && !strstr(recs[0].compiler, "test-cc"));
	free(out);
	free(hdr);
	free(src);
	svc_cc_records_free(recs, n);
	fx_close(&f);
}

static void test_two_sources_two_records_then_a_link(void)
{
	Fx f = { 0 };
	SvcCcRecord *recs = NULL;
	size_t n = 0;
	BaseErr e = { 0 };
	char *compile[] = { "cc", "-Iinc", "-c", "a.c", "b.c", NULL };
	char *link[] = { "cc", "-o", "prog", "m.c", "a.o", "b.o", NULL };
	char *pre[] = { "cc", "-E", "-Iinc", "a.c", "-o", "a.i", NULL };
	CU_ASSERT_FATAL(fx_open(&f) == 0);
	CU_ASSERT_EQUAL(wrap(compile), 0);
	CU_ASSERT_EQUAL(wrap(link), 0);
	CU_ASSERT_EQUAL(wrap(pre), 0);
	CU_ASSERT_EQUAL(test_sh("cd '%s' && ./prog", f.dir), 0);
	CU_ASSERT_EQUAL_FATAL(svc_cc_log_read(f.log, &recs, &n, &e), 0);
	CU_ASSERT_EQUAL(n, 3); /* a.o, b.o, prog; -E records nothing */
	const SvcCcRecord *a = find(recs, n, "/a.o"), *b = find(recs, n, "/b.o");
	const SvcCcRecord *p = find(recs, n, "/prog");
	CU_ASSERT(a && a->kind == SVC_CC_COMPILE && strcmp(a->source, "a.c") == 0);
	CU_ASSERT(b && b->kind == SVC_CC_COMPILE && strcmp(b->source, "b.c") == 0);
	CU_ASSERT_FATAL(p != NULL);
	CU_ASSERT_EQUAL(p->kind, SVC_CC_LINK);
	CU_ASSERT(a && has(p->inputs, p->n_inputs, a->output));
	CU_ASSERT_EQUAL(p->n_inputs, 3);
	svc_cc_records_free(recs, n);
	fx_close(&f);
}

static void test_failed_compile_is_passed_on_and_not_recorded(void)
{
	Fx f = { 0 };
	SvcCcRecord *recs = NULL;
	size_t n = 0;
	BaseErr e = { 0 };
	char *argv[] = { "cc", "-c", "missing.c", NULL };
	CU_ASSERT_FATAL(fx_open(&f) == 0);
	int st = wrap(argv);
	CU_ASSERT(st > 0);
	CU_ASSERT_EQUAL(svc_cc_log_read(f.log, &recs, &n, &e), 0);
	CU_ASSERT_EQUAL(n, 0);
	svc_cc_records_free(recs, n);
	fx_close(&f);
}

static void test_log_values_escaped_and_torn_records_refused(void)
{
	Fx f = { 0 };
	SvcCcRecord *recs = NULL;
	size_t n = 0;
	BaseErr e = { 0 };
	CU_ASSERT_FATAL(fx_open(&f) == 0);
	fx_file(&f, "log/1.0.rec", "svc-cc 1\nkind compile\ncompiler /usr/bin/cc\ncwd /a%20b\n"
				   "output /a%20b/x.o\nsource x%25.c\narg cc\narg -DX=%22a%20b%22\n"
				   "input /a%20b/x%25.c\nend\n");
	CU_ASSERT_EQUAL_FATAL(svc_cc_log_read(f.log, &recs, &n, &e), 0);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_STRING_EQUAL(recs[0].cwd, "/a b");
	CU_ASSERT_STRING_EQUAL(recs[0].source, "x%.c");
	CU_ASSERT_STRING_EQUAL(recs[0].argv[1], "-DX=\"a b\"");
	svc_cc_records_free(recs, n);
	fx_file(&f, "log/2.0.rec", "svc-cc 1\nkind link\ncompiler /usr/bin/cc\ncwd /\noutput /p\narg cc\n");
	CU_ASSERT_EQUAL(svc_cc_log_read(f.log, &recs, &n, &e), -EBADMSG);
	CU_ASSERT(strstr(e.msg, "2.0.rec: torn record") != NULL);
	fx_close(&f);
}

int test_register(void)
{
	CU_pSuite s = CU_add_suite("cc", NULL, NULL);
	if (!s)
		return -1;
	CU_add_test(s, "compile: the command, its directory, source and header inputs; the build's .d kept",
		    test_compile_records_command_dir_and_header_inputs);
	CU_add_test(s, "two sources give two records, a link one, -E none",
		    test_two_sources_two_records_then_a_link);
	CU_add_test(s, "a failed compile keeps its status and records nothing",
		    test_failed_compile_is_passed_on_and_not_recorded);
	CU_add_test(s, "log values are escaped; a torn record is refused by name",
		    test_log_values_escaped_and_torn_records_refused);
	return 0;
}
