/* elf: reader, payload format, object diff, payload building, coldpatches.
 * Fixtures (tests/fixtures/elf/) are compiled with gcc into one scratch
 * directory per suite run; the coldpatched files run under the real loader. */
#include <CUnit/CUnit.h>
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define VALGRIND_DISCARD_TRANSLATIONS(a, n) ((void)(a), (void)(n))
#endif

#include "base/base.h"
#include "elf/elf.h"
#include "tests/testlib.h"

static char *scratch;       /* fixtures of this run */
static char fixtures[4096]; /* tests/fixtures/elf */

#define CC_OBJ "gcc -O2 -g0 -ffunction-sections -fdata-sections"

static char *path_of(const char *name)
{
	return base_strdupf("%s/%s", scratch, name);
}

/* Compile lib.c / main.c with the given flags into NAME.o. */
static int compile(const char *src, const char *out, const char *flags)
{
	return test_sh("cd %s && " CC_OBJ " %s -c %s/%s -o %s 2>&1", scratch, flags, fixtures,
		       src, out);
}

static int suite_init(void)
{
	const char *b = test_build_dir();
	snprintf(fixtures, sizeof(fixtures), "%s/../tests/fixtures/elf", b);
	scratch = test_scratch("elf");
	return scratch ? 0 : -1;
}

static int suite_clean(void)
{
	test_rmrf(scratch);
	free(scratch);
	scratch = NULL;
	return 0;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	return (uint8_t *)test_read(path, len);
}

/* ---- reader ---------------------------------------------------------------- */

static void test_reader_reads_headers_symbols_build_id(void)
{
	CU_ASSERT_EQUAL_FATAL(compile("lib.c", "r_lib.o", "-fPIC"), 0);
	CU_ASSERT_EQUAL_FATAL(test_sh("cd %s && gcc -shared -Wl,--build-id=sha1 -o r_lib.so r_lib.o",
				      scratch), 0);
	char *so = path_of("r_lib.so");
	ElfFile *f = NULL;
	BaseErr e = { 0 };
	CU_ASSERT_EQUAL_FATAL(elf_open_path(so, &f, &e), 0);
	CU_ASSERT_EQUAL(f->type, ET_DYN);
	const uint8_t *id = NULL;
	size_t idlen = 0;
	CU_ASSERT_EQUAL(elf_build_id(f, &id, &idlen), 0);
	CU_ASSERT_EQUAL(idlen, 20);
	char hex[129];
	base_hex(hex, id, idlen);
	char *want = test_sh_out("readelf -n %s | sed -n 's/.*Build ID: //p'", so);
	CU_ASSERT_PTR_NOT_NULL(want);
	if (want) {
		want[strcspn(want, "\n")] = 0;
		CU_ASSERT_STRING_EQUAL(hex, want);
	}
	free(want);
	const ElfSymbol *s = elf_find_symbol(f, "lib_add");
	CU_ASSERT_PTR_NOT_NULL(s);
	if (s) {
		char *nm = test_sh_out("nm %s | sed -n 's/ T lib_add$//p'", so);
		CU_ASSERT_EQUAL(strtoull(nm, NULL, 16), s->value);
		free(nm);
	}
	CU_ASSERT_PTR_NOT_NULL(elf_find_symbol(f, "lib_counter"));
	CU_ASSERT_PTR_NULL(elf_find_symbol(f, "no_such_symbol"));
	CU_ASSERT_PTR_NOT_NULL(elf_find_section(f, ".dynsym"));
	CU_ASSERT_TRUE(f->n_dynsyms > 0);
	int relas = 0;
	for (size_t i = 0; i < f->n_sections; i++)
		relas += f->sections[i].type == SHT_RELA && f->sections[i].n_relas > 0;
	CU_ASSERT_TRUE(relas > 0);
	elf_close(f);

	/* An object: relocations per section, STT_FILE grouping of locals. */
	char *o = path_of("r_lib.o");
	CU_ASSERT_EQUAL_FATAL(elf_open_path(o, &f, &e), 0);
	CU_ASSERT_EQUAL(f->type, ET_REL);
	const ElfSection *rs = elf_find_section(f, ".rela.text.lib_bump");
	CU_ASSERT_TRUE(rs && rs->n_relas == 3);
	const ElfSymbol *c = elf_find_symbol(f, "lib_counter");
	CU_ASSERT_TRUE(c && c->bind == STB_LOCAL && c->file != 0);
	elf_close(f);
	free(o);
	free(so);
}

/* Parse a private exact-size copy so that any out-of-bounds read is a real
 * heap overflow under valgrind. */
static int parse_copy(const uint8_t *buf, size_t len, BaseErr *e)
{
	uint8_t *c = malloc(len ? len : 1);
	memcpy(c, buf, len);
	ElfFile *f = NULL;
	int r = elf_open_mem(c, len, "fuzz", &f, e);
	if (r >= 0) {
		ElfLineage l;
		if (elf_lineage(f, &l, e) >= 0)
			elf_lineage_free(&l);
		elf_close(f);
	}
	free(c);
	return r;
}

static void test_reader_rejects_truncated_files(void)
{
	size_t len = 0;
	char *so = path_of("r_lib.so");
	uint8_t *buf = slurp(so, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	BaseErr e = { 0 };
	CU_ASSERT_EQUAL(parse_copy(buf, len, &e), 0);
	/* The section header table is last: every shorter prefix is refused. */
	size_t refused = 0, tried = 0;
	for (size_t n = 0; n < len; n += (n < 256 ? 1 : 7)) {
		base_err_clear(&e);
		int r = parse_copy(buf, n, &e);
		tried++;
		if (r == -ENOEXEC || r == -EBADMSG) {
			refused++;
			CU_ASSERT_TRUE(e.msg[0] != 0 && strchr(e.msg, '\n') == NULL);
		}
	}
	CU_ASSERT_EQUAL(refused, tried);
	free(buf);
	free(so);
}

static void poke(uint8_t *b, size_t off, uint64_t v, int w)
{
	if (w == 2)
		memcpy(b + off, &(uint16_t){ (uint16_t)v }, 2);
	else if (w == 4)
		memcpy(b + off, &(uint32_t){ (uint32_t)v }, 4);
	else
		memcpy(b + off, &v, 8);
}

static void test_reader_rejects_bad_offsets_and_counts(void)
{
	size_t len = 0;
	char *so = path_of("r_lib.so");
	uint8_t *orig = slurp(so, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(orig);
	Elf64_Ehdr h;
	memcpy(&h, orig, sizeof(h));
	uint8_t *b = malloc(len);
	BaseErr e = { 0 };
	struct {
		size_t off;
		uint64_t v;
		int w;
	} cases[] = {
		{ offsetof(Elf64_Ehdr, e_shoff), 0xffffffffffff0000ull, 8 },
		{ offsetof(Elf64_Ehdr, e_shoff), len - 10, 8 },
		{ offsetof(Elf64_Ehdr, e_phoff), len, 8 },
		{ offsetof(Elf64_Ehdr, e_shnum), 0xfff0, 2 },
		{ offsetof(Elf64_Ehdr, e_phnum), 0xfffe, 2 },
		{ offsetof(Elf64_Ehdr, e_shstrndx), 0x7777, 2 },
		{ offsetof(Elf64_Ehdr, e_shentsize), 12, 2 },
		{ offsetof(Elf64_Ehdr, e_ident) + EI_CLASS, ELFCLASS32, 1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(b, orig, len);
		if (cases[i].w == 1)
			b[cases[i].off] = (uint8_t)cases[i].v;
		else
			poke(b, cases[i].off, cases[i].v, cases[i].w);
		base_err_clear(&e);
		int r = parse_copy(b, len, &e);
		CU_ASSERT_TRUE(r == -EBADMSG || r == -ENOEXEC);
	}
	/* Every section: huge offset, huge size, bad name, bad link. */
	for (size_t s = 1; s < h.e_shnum; s++) {
		size_t sh = h.e_shoff + s * sizeof(Elf64_Shdr);
		Elf64_Shdr x;
		memcpy(&x, orig + sh, sizeof(x));
		size_t fields[][2] = {
			{ offsetof(Elf64_Shdr, sh_offset), 8 }, { offsetof(Elf64_Shdr, sh_size), 8 },
			{ offsetof(Elf64_Shdr, sh_name), 4 },
		};
		for (size_t k = 0; k < 3; k++) {
			if (x.sh_type == SHT_NOBITS && k < 2)
				continue;
			if (x.sh_size == 0 && k == 0)
				continue;
			memcpy(b, orig, len);
			poke(b, sh + fields[k][0], k == 2 ? 0x7fffffff : 0x7fffffffffff, (int)fields[k][1]);
			base_err_clear(&e);
			int r = parse_copy(b, len, &e);
			CU_ASSERT_TRUE(r == -EBADMSG || r == -ENOEXEC);
			if (r >= 0)
				fprintf(stderr, "accepted: section %zu field %zu\n", s, k);
		}
		if (x.sh_type == SHT_SYMTAB || x.sh_type == SHT_DYNSYM || x.sh_type == SHT_RELA) {
			memcpy(b, orig, len);
			poke(b, sh + offsetof(Elf64_Shdr, sh_link), 0x1234, 4);
			CU_ASSERT_TRUE(parse_copy(b, len, &e) < 0);
		}
	}
	/* Random byte damage over the headers and tables: refused or parsed,
	 * never a crash (valgrind run checks the reads). */
	unsigned seed = 12345;
	for (int i = 0; i < 3000; i++) {
		memcpy(b, orig, len);
		for (int k = 0; k < 4; k++) {
			seed = (unsigned)(((uint64_t)seed * 1103515245u + 12345u) & 0xffffffffu); /* no wrap */
			size_t off = (seed >> 8) % len;
			if (k & 1)
				off = h.e_shoff + (seed >> 4) % (len - h.e_shoff);
			b[off] ^= (uint8_t)(seed >> 16) | 1;
		}
		parse_copy(b, len, &e);
	}
	free(b);
	free(orig);
	free(so);
}

/* ---- payload format -------------------------------------------------------- */

static ElfPayload *sample_payload(void)
{
	ElfPayload *p = calloc(1, sizeof(*p));
	p->fix_id = strdup("FIX-0002");
	p->build_id_len = 20;
	for (int i = 0; i < 20; i++)
		p->build_id[i] = (uint8_t)(i * 7);
	p->n_lineage = 1;
	p->lineage = calloc(1, sizeof(char *));
	p->lineage[0] = strdup("FIX-0001");
	p->code_len = 64;
	p->code = calloc(1, 64);
	for (int i = 0; i < 64; i++)
		p->code[i] = (uint8_t)(0x90 + i);
	p->code_align = 16;
	p->n_relocs = 3;
	p->relocs = calloc(3, sizeof(ElfReloc));
	p->relocs[0] = (ElfReloc){ 4, R_X86_64_PC32, ELF_BIND_BASE, 0x1130, NULL, -4 };
	p->relocs[1] = (ElfReloc){ 10, R_X86_64_PC32, ELF_BIND_PAYLOAD, 40, NULL, -4 };
	p->relocs[2] = (ElfReloc){ 48, R_X86_64_64, ELF_BIND_SYMBOL, 0, strdup("getpid"), 0 };
	p->n_redirects = 2;
	p->redirects = calloc(2, sizeof(ElfRedirect));
	p->redirects[0] = (ElfRedirect){ strdup("lib_add"), 0x1120, 20, ELF_ENTRY_PAD16, 14, 16,
					 { 0 }, 0 };
	memset(p->redirects[0].expect, 0x90, 16);
	p->redirects[1] = (ElfRedirect){ strdup("lib_sub"), 0x1200, 9, ELF_ENTRY_PLAIN, 0, 5,
					 { 0x8d, 0x04, 0x37, 0xc3, 0x90 }, 32 };
	return p;
}

static void test_payload_round_trip_is_exact(void)
{
	ElfPayload *p = sample_payload(), *q = NULL;
	BaseBuf a = { 0 }, b = { 0 };
	BaseErr e = { 0 };
	CU_ASSERT_EQUAL_FATAL(elf_payload_write(p, &a, &e), 0);
	CU_ASSERT_TRUE(elf_is_payload(a.data, a.len));
	CU_ASSERT_FALSE(elf_is_payload((const uint8_t *)"\x7f" "ELF\2\1\1\0\0", 9));
	CU_ASSERT_EQUAL_FATAL(elf_payload_parse(a.data, a.len, &q, &e), 0);
	CU_ASSERT_STRING_EQUAL(q->fix_id, "FIX-0002");
	CU_ASSERT_EQUAL(q->build_id_len, 20);
	CU_ASSERT_EQUAL(memcmp(q->build_id, p->build_id, 20), 0);
	CU_ASSERT_TRUE(q->n_lineage == 1 && strcmp(q->lineage[0], "FIX-0001") == 0);
	CU_ASSERT_TRUE(q->code_len == 64 && memcmp(q->code, p->code, 64) == 0);
	CU_ASSERT_EQUAL(q->n_relocs, 3);
	CU_ASSERT_EQUAL(q->relocs[0].addend, -4);
	CU_ASSERT_EQUAL(q->relocs[0].value, 0x1130);
	CU_ASSERT_STRING_EQUAL(q->relocs[2].symbol, "getpid");
	CU_ASSERT_PTR_NULL(q->relocs[1].symbol);
	CU_ASSERT_EQUAL(q->n_redirects, 2);
	CU_ASSERT_EQUAL(q->redirects[1].kind, ELF_ENTRY_PLAIN);
	CU_ASSERT_EQUAL(memcmp(q->redirects[1].expect, p->redirects[1].expect, 5), 0);
	CU_ASSERT_EQUAL(q->redirects[1].target, 32);
	CU_ASSERT_EQUAL_FATAL(elf_payload_write(q, &b, &e), 0);
	CU_ASSERT_TRUE(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
	base_buf_free(&a);
	base_buf_free(&b);
	elf_payload_free(p);
	elf_payload_free(q);
}

static void fix_crc(uint8_t *b, size_t len)
{
	uint32_t c = base_crc32(b, len - 4);
	memcpy(b + len - 4, &c, 4);
}

static void test_payload_parse_refuses_malformed(void)
{
	ElfPayload *p = sample_payload(), *q = NULL;
	BaseBuf a = { 0 };
	BaseErr e = { 0 };
	CU_ASSERT_EQUAL_FATAL(elf_payload_write(p, &a, &e), 0);
	uint8_t *c = malloc(a.len);
	/* every truncation */
	for (size_t n = 0; n < a.len; n++) {
		memcpy(c, a.data, n);
		base_err_clear(&e);
		CU_ASSERT_EQUAL(elf_payload_parse(c, n, &q, &e), -EBADMSG);
	}
	/* every single-byte change, with the checksum both stale and recomputed:
	 * either refused, or (a field whose every value is valid) parsed. */
	size_t refused_deep = 0;
	for (size_t i = 0; i < a.len - 4; i++) {
		memcpy(c, a.data, a.len);
		c[i] ^= 0xff;
		CU_ASSERT_EQUAL(elf_payload_parse(c, a.len, &q, &e), -EBADMSG);
		fix_crc(c, a.len);
		int r = elf_payload_parse(c, a.len, &q, &e);
		CU_ASSERT_TRUE(r == 0 || r == -EBADMSG);
		if (r == 0)
			elf_payload_free(q);
		else
			refused_deep++;
	}
	CU_ASSERT_TRUE(refused_deep > 50);
	/* huge counts with a valid checksum */
	memcpy(c, a.data, a.len);
	size_t nr_off = 8 + 4 + 4 + 4 + 8 + 4 + 20 + 4 + 4 + 8 + 8 + 64;
	CU_ASSERT_EQUAL(elf_payload_parse(c, a.len, &q, &e), 0);
	elf_payload_free(q);
	poke(c, nr_off, 0xffffffffu, 4);
	fix_crc(c, a.len);
	base_err_clear(&e);
	CU_ASSERT_EQUAL(elf_payload_parse(c, a.len, &q, &e), -EBADMSG);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "relocation count"));
	/* a relocation outside the code, a redirect with a wrong window */
	ElfPayload *bad = sample_payload();
	bad->relocs[0].where = 62;
	BaseBuf x = { 0 };
	CU_ASSERT_EQUAL(elf_payload_write(bad, &x, &e), -EINVAL);
	bad->relocs[0].where = 4;
	bad->redirects[0].expect_len = 7;
	CU_ASSERT_EQUAL(elf_payload_write(bad, &x, &e), -EINVAL);
	elf_payload_free(bad);
	base_buf_free(&x);
	free(c);
	base_buf_free(&a);
	elf_payload_free(p);
}

/* ---- fixtures: base, fixed and coldpatched builds ---------------------------- */

typedef struct Variant {
	const char *tag;
	const char *flags;
	const char *ldflags;     /* for the library */
	int built;
	int failed;
} Variant;

static Variant variants[] = {
	{ "p16", "-fpatchable-function-entry=16,14", "", 0, 0 },
	{ "p7", "-fpatchable-function-entry=7,5", "", 0, 0 },
	{ "plain", "", "", 0, 0 },
	/* -Bsymbolic: ld relaxes the library's GOT loads, so the builder must
	 * relax them too (mov -> lea) and bind to the library's own variable. */
	{ "bsym", "-fpatchable-function-entry=16,14", "-Wl,-Bsymbolic", 0, 0 },
};

/* Objects V/lib_F.o and V/main_F.o for F = 0, 1, 2; linked full builds in
 * V/fixF/ (libfx.so, pie, nopie), which give the reference outputs. */
static int build_variant(Variant *v)
{
	if (v->built)
		return v->failed ? -1 : 0;
	v->built = 1;
	v->failed = 1;
	for (int fx = 0; fx <= 2; fx++) {
		if (test_sh("mkdir -p %s/%s/fix%d", scratch, v->tag, fx) != 0)
			return -1;
		if (test_sh("cd %s/%s && " CC_OBJ " -fPIC %s -DFIX=%d -c %s/lib.c -o lib_%d.o && "
			    CC_OBJ " -fPIE %s -DFIX=%d -c %s/main.c -o main_%d.o && "
			    CC_OBJ " -fPIC %s -DFIX=%d -c %s/other.c -o other_%d.o && "
			    "cd fix%d && gcc -shared %s -Wl,--build-id -Wl,-soname,libfx.so -o libfx.so ../other_%d.o ../lib_%d.o && "
			    "gcc -pie -Wl,--build-id -o pie ../main_%d.o -L. -lfx && "
			    "gcc -no-pie -Wl,--build-id -o nopie ../main_%d.o -L. -lfx",
			    scratch, v->tag, v->flags, fx, fixtures, fx, v->flags, fx, fixtures, fx,
			    v->flags, fx, fixtures, fx, fx, v->ldflags, fx, fx, fx, fx) != 0)
			return -1;
	}
	v->failed = 0;
	return 0;
}

static char *vpath(const Variant *v, const char *fmt, const char *a)
{
	char *rel = base_strdupf(fmt, a);
	char *p = base_strdupf("%s/%s/%s", scratch, v->tag, rel);
	free(rel);
	return p;
}

/* Payload of fix `to` over fix `from` of one target (lib or main). */
static int payload_for(const Variant *v, const char *what, int from, int to, const char *base,
		       const char *fix_id, char *const *lineage, size_t nl, ElfPayload **ret,
		       BaseErr *e)
{
	/* the library fix spans two translation units */
	char *o = base_strdupf("%s/%s/%s_%d.o", scratch, v->tag, what, from);
	char *n = base_strdupf("%s/%s/%s_%d.o", scratch, v->tag, what, to);
	char *o2 = base_strdupf("%s/%s/other_%d.o", scratch, v->tag, from);
	char *n2 = base_strdupf("%s/%s/other_%d.o", scratch, v->tag, to);
	ElfObjectPair pairs[2] = { { o, n }, { o2, n2 } };
	int r = elf_build_payload(base, pairs, strcmp(what, "lib") == 0 ? 2 : 1, fix_id, lineage,
				  nl, ret, e);
	free(o);
	free(n);
	free(o2);
	free(n2);
	return r;
}

static int coldpatch_to(const char *base, const ElfPayload *p, const char *out, BaseErr *e)
{
	size_t len = 0;
	uint8_t *b = slurp(base, &len);
	if (!b)
		return -errno;
	BaseBuf c = { 0 };
	int r = elf_coldpatch(b, len, p, &c, e);
	if (r >= 0)
		r = test_write(out, c.data, c.len) == 0 ? 0 : -EIO;
	if (r >= 0)
		chmod(out, 0755);
	base_buf_free(&c);
	free(b);
	return r;
}

static char *run_in(const Variant *v, const char *dir, const char *prog)
{
	return test_sh_out("cd %s/%s/%s && LD_LIBRARY_PATH=. ./%s 2>&1; echo \"exit=$?\"", scratch,
			   v->tag, dir, prog);
}

static int readelf_clean(const char *path)
{
	char *out = test_sh_out("readelf -a -W %s 2>&1 >/dev/null | head -5", path);
	int ok = out && out[0] == 0;
	if (!ok)
		fprintf(stderr, "readelf on %s: %s\n", path, out ? out : "(none)");
	free(out);
	return ok;
}

/* Coldpatch lib and both programs of variant v with fix 1; run them under
 * the real loader; the output must be the fully rebuilt fixed program's. */
static void check_fix1(Variant *v)
{
	BaseErr e = { 0 };
	CU_ASSERT_EQUAL_FATAL(build_variant(v), 0);
	CU_ASSERT_EQUAL_FATAL(test_sh("mkdir -p %s/%s/cold1", scratch, v->tag), 0);
	const char *files[][2] = { { "lib", "libfx.so" }, { "main", "pie" }, { "main", "nopie" } };
	for (int i = 0; i < 3; i++) {
		char *base = vpath(v, "fix0/%s", files[i][1]);
		char *out = vpath(v, "cold1/%s", files[i][1]);
		ElfPayload *p = NULL;
		base_err_clear(&e);
		int r = payload_for(v, files[i][0], 0, 1, base, "FIX-1", NULL, 0, &p, &e);
		if (r < 0)
			fprintf(stderr, "%s: %s\n", files[i][1], e.msg);
		CU_ASSERT_EQUAL(r, 0);
		if (r == 0) {
			r = coldpatch_to(base, p, out, &e);
			if (r < 0)
				fprintf(stderr, "coldpatch %s: %s\n", files[i][1], e.msg);
			CU_ASSERT_EQUAL(r, 0);
			CU_ASSERT_TRUE(readelf_clean(out));
			CU_ASSERT_TRUE(p->n_redirects >= 1);
			for (size_t k = 0; k < p->n_redirects; k++)
				CU_ASSERT_EQUAL(p->redirects[k].kind,
						v->flags[0] == 0	  ? ELF_ENTRY_PLAIN
						: strstr(v->flags, "16") ? ELF_ENTRY_PAD16
									  : ELF_ENTRY_PAD_REL32);
		}
		elf_payload_free(p);
		free(base);
		free(out);
	}
	for (int i = 1; i < 3; i++) {
		char *want = run_in(v, "fix1", files[i][1]);
		char *old = run_in(v, "fix0", files[i][1]);
		char *got = run_in(v, "cold1", files[i][1]);
		CU_ASSERT_PTR_NOT_NULL_FATAL(want);
		CU_ASSERT_PTR_NOT_NULL_FATAL(got);
		CU_ASSERT_STRING_NOT_EQUAL(want, old);
		CU_ASSERT_STRING_EQUAL(got, want);
		if (strcmp(got, want) != 0)
			fprintf(stderr, "\n%s %s: got\n%s\nwant\n%s\n", v->tag, files[i][1], got, want);
		/* The fixed lib_bump and the unfixed lib_peek share one counter;
		 * the fixed code writes the program's copy of lib_global. */
		if (!v->ldflags[0])
			CU_ASSERT_PTR_NOT_NULL(strstr(got, "bump 2\nbump 4\npeek 4098\nglobal 98\n"));
		CU_ASSERT_PTR_NOT_NULL(strstr(got, "format fixed<14>\nname name-fixed\nclamp 10\n"));
		CU_ASSERT_PTR_NOT_NULL(strstr(got, "calc 15\ncalc 3 calls 1\nbanner banner-fixed\n"));
		/* jump table copied with the fixed switch; other.c's locals are its
		 * own; its fix calls lib.c's new function (across objects) */
		CU_ASSERT_PTR_NOT_NULL(strstr(got, "kind 24 95 555 -1\nother 10 10\n"));
		free(want);
		free(old);
		free(got);
	}
}

static void test_coldpatch_pad16_runs_fixed(void) { check_fix1(&variants[0]); }
static void test_coldpatch_pad7_runs_fixed(void) { check_fix1(&variants[1]); }
static void test_coldpatch_plain_runs_fixed(void) { check_fix1(&variants[2]); }
static void test_coldpatch_bsymbolic_runs_fixed(void) { check_fix1(&variants[3]); }

/* ---- object diff ------------------------------------------------------------ */

static int diff_files(const char *a, const char *b, ElfFuncChange **ret, size_t *n, BaseErr *e)
{
	ElfFile *fa = NULL, *fb = NULL;
	int r = elf_open_path(a, &fa, e);
	if (r >= 0)
		r = elf_open_path(b, &fb, e);
	if (r >= 0)
		r = elf_diff_objects(fa, fb, ret, n, e);
	elf_close(fa);
	elf_close(fb);
	return r;
}

/* "name:M" / "name:N" items, sorted, comma separated. */
static char *changes_str(const ElfFuncChange *c, size_t n)
{
	char **items = calloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		items[i] = base_strdupf("%s:%c", c[i].name, c[i].change == ELF_CHANGE_NEW ? 'N' : 'M');
	for (size_t i = 0; i < n; i++)
		for (size_t k = i + 1; k < n; k++)
			if (strcmp(items[k], items[i]) < 0) {
				char *t = items[i];
				items[i] = items[k];
				items[k] = t;
			}
	BaseBuf b = { 0 };
	for (size_t i = 0; i < n; i++) {
		base_buf_printf(&b, "%s%s", i ? "," : "", items[i]);
		free(items[i]);
	}
	free(items);
	base_buf_append(&b, "", 0);
	return (char *)b.data;
}

static void test_diff_finds_changed_and_new_functions_only(void)
{
	Variant *v = &variants[0];
	CU_ASSERT_EQUAL_FATAL(build_variant(v), 0);
	BaseErr e = { 0 };
	ElfFuncChange *c = NULL;
	size_t n = 0;
	char *a = base_strdupf("%s/%s/lib_0.o", scratch, v->tag);
	char *b = base_strdupf("%s/%s/lib_1.o", scratch, v->tag);
	char *b2 = base_strdupf("%s/%s/lib_2.o", scratch, v->tag);
	char *sh = base_strdupf("%s/%s/lib_shift.o", scratch, v->tag);
	CU_ASSERT_EQUAL_FATAL(diff_files(a, b, &c, &n, &e), 0);
	char *got = changes_str(c, n);
	CU_ASSERT_STRING_EQUAL(got, "lib_add:M,lib_bump:M,lib_clamp:M,lib_format:M,lib_kind:M,"
				    "lib_name:M,lib_new_limit:N,lib_scaled:M");
	free(got);
	elf_func_changes_free(c, n);
	CU_ASSERT_EQUAL_FATAL(diff_files(b, b2, &c, &n, &e), 0);
	got = changes_str(c, n);
	CU_ASSERT_STRING_EQUAL(got, "lib_name:M,lib_sub:M");
	free(got);
	elf_func_changes_free(c, n);
	CU_ASSERT_EQUAL(diff_files(a, a, &c, &n, &e), 0);
	CU_ASSERT_EQUAL(n, 0);
	elf_func_changes_free(c, n);
	/* A function and strings added before everything else: symbol indexes,
	 * section indexes and .LC labels all move, nothing else is a change. */
	CU_ASSERT_EQUAL_FATAL(test_sh("cd %s/%s && " CC_OBJ " -fPIC %s -DSHIFT -c %s/lib.c -o lib_shift.o",
				      scratch, v->tag, v->flags, fixtures), 0);
	CU_ASSERT_EQUAL_FATAL(diff_files(a, sh, &c, &n, &e), 0);
	got = changes_str(c, n);
	CU_ASSERT_STRING_EQUAL(got, "lib_shift:N");
	free(got);
	elf_func_changes_free(c, n);
	free(a);
	free(b);
	free(b2);
	free(sh);
}

static void test_data_changes_refused_by_name(void)
{
	Variant *v = &variants[0];
	CU_ASSERT_EQUAL_FATAL(build_variant(v), 0);
	struct {
		const char *def, *msg;
	} cases[] = {
		{ "-DCHANGE_TABLE", "data change in 'lib_table': cannot be hotpatched" },
		{ "-DCHANGE_SIZE", "data change in 'lib_history': cannot be hotpatched (size 32 -> 64)" },
		{ "-DCHANGE_TLS", "TLS change in 'lib_tls': cannot be hotpatched (size 4 -> 8)" },
		{ "-DNEW_VAR", "new variable 'lib_extra'" },
	};
	char *a = base_strdupf("%s/%s/lib_0.o", scratch, v->tag);
	char *bad = base_strdupf("%s/%s/lib_bad.o", scratch, v->tag);
	char *base = vpath(v, "fix0/%s", "libfx.so");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CU_ASSERT_EQUAL_FATAL(test_sh("cd %s/%s && " CC_OBJ " -fPIC %s -DFIX=1 %s -c %s/lib.c -o lib_bad.o",
					      scratch, v->tag, v->flags, cases[i].def, fixtures), 0);
		BaseErr e = { 0 };
		ElfFuncChange *c = NULL;
		size_t n = 0;
		CU_ASSERT_EQUAL(diff_files(a, bad, &c, &n, &e), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, cases[i].msg));
		if (!strstr(e.msg, cases[i].msg))
			fprintf(stderr, "%s: got '%s'\n", cases[i].def, e.msg);
		base_err_clear(&e);
		ElfPayload *p = NULL;
		ElfObjectPair pair = { a, bad };
		CU_ASSERT_EQUAL(elf_build_payload(base, &pair, 1, "FIX-X", NULL, 0, &p, &e), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, cases[i].msg));
	}
	free(a);
	free(bad);
	free(base);
}

/* ---- payloads from the fixtures --------------------------------------------- */

static void test_built_payload_binds_to_base_and_round_trips(void)
{
	Variant *v = &variants[0];
	CU_ASSERT_EQUAL_FATAL(build_variant(v), 0);
	char *base = vpath(v, "fix0/%s", "libfx.so");
	BaseErr e = { 0 };
	ElfPayload *p = NULL, *q = NULL;
	CU_ASSERT_EQUAL_FATAL(payload_for(v, "lib", 0, 1, base, "FIX-1", NULL, 0, &p, &e), 0);
	ElfFile *f = NULL;
	CU_ASSERT_EQUAL_FATAL(elf_open_path(base, &f, &e), 0);
	CU_ASSERT_EQUAL(p->build_id_len, f->build_id_len);
	CU_ASSERT_EQUAL(memcmp(p->build_id, f->build_id, f->build_id_len), 0);
	/* lib_counter (static) binds to the base's instance; only PC32 / 64. */
	const ElfSymbol *counter = NULL;
	for (size_t i = 1; i < f->n_symbols; i++)
		if (strcmp(f->symbols[i].name, "lib_counter") == 0 && f->symbols[i].file &&
		    strcmp(f->symbols[f->symbols[i].file].name, "lib.c") == 0)
			counter = &f->symbols[i];
	CU_ASSERT_PTR_NOT_NULL_FATAL(counter);
	int to_counter = 0, symbol = 0;
	for (size_t i = 0; i < p->n_relocs; i++) {
		CU_ASSERT_TRUE(p->relocs[i].type == R_X86_64_PC32 || p->relocs[i].type == R_X86_64_64);
		to_counter += p->relocs[i].bind == ELF_BIND_BASE && p->relocs[i].value == counter->value;
		symbol += p->relocs[i].bind == ELF_BIND_SYMBOL;
	}
	CU_ASSERT_TRUE(to_counter >= 2);
	const ElfSymbol *first = elf_find_symbol(f, "lib_counter"); /* other.c's */
	CU_ASSERT_TRUE(first && first != counter);
	CU_ASSERT_EQUAL(symbol, 0); /* snprintf goes through the base's GOT */
	/* redirects name the base functions with the exact base bytes */
	for (size_t i = 0; i < p->n_redirects; i++) {
		const ElfRedirect *d = &p->redirects[i];
		const ElfSymbol *s = elf_find_symbol(f, d->name);
		CU_ASSERT_TRUE(s && s->value == d->entry && s->size == d->size);
		uint64_t off = 0;
		CU_ASSERT_EQUAL(elf_vaddr_to_offset(f, d->entry - d->pad, d->expect_len, &off), 0);
		CU_ASSERT_EQUAL(memcmp(f->data + off, d->expect, d->expect_len), 0);
		CU_ASSERT_TRUE(d->target < p->code_len);
	}
	CU_ASSERT_PTR_NULL(elf_find_symbol(f, "lib_new_limit"));
	BaseBuf a = { 0 }, b = { 0 };
	CU_ASSERT_EQUAL_FATAL(elf_payload_write(p, &a, &e), 0);
	CU_ASSERT_EQUAL_FATAL(elf_payload_parse(a.data, a.len, &q, &e), 0);
	CU_ASSERT_EQUAL_FATAL(elf_payload_write(q, &b, &e), 0);
	CU_ASSERT_TRUE(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
	BaseBuf d = { 0 };
	CU_ASSERT_EQUAL(elf_payload_describe(q, &d), 0);
	CU_ASSERT_TRUE(d.data && strstr((char *)d.data, "redirect lib_bump"));
	base_buf_free(&d);
	base_buf_free(&a);
	base_buf_free(&b);
	elf_payload_free(p);
	elf_payload_free(q);
	elf_close(f);
	free(base);
}

static void test_builds_are_deterministic(void)
{
	Variant *v = &variants[0];
	CU_ASSERT_EQUAL_FATAL(build_variant(v), 0);
	char *base = vpath(v, "fix0/%s", "pie");
	BaseBuf w[2] = { { 0 }, { 0 } }, c[2] = { { 0 }, { 0 } };
	size_t len = 0;
	uint8_t *bytes = slurp(base, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(bytes);
	for (int k = 0; k < 2; k++) {
		BaseErr e = { 0 };
		ElfPayload *p = NULL;
		CU_ASSERT_EQUAL_FATAL(payload_for(v, "main", 0, 1, base, "FIX-1", NULL, 0, &p, &e), 0);
		CU_ASSERT_EQUAL(elf_payload_write(p, &w[k], &e), 0);
		CU_ASSERT_EQUAL(elf_coldpatch(bytes, len, p, &c[k], &e), 0);
		elf_payload_free(p);
	}
	CU_ASSERT_TRUE(w[0].len == w[1].len && memcmp(w[0].data, w[1].data, w[0].len) == 0);
	CU_ASSERT_TRUE(c[0].len == c[1].len && memcmp(c[0].data, c[1].data, c[0].len) == 0);
	for (int k = 0; k < 2; k++) {
		base_buf_free(&w[k]);
		base_buf_free(&c[k]);
	}
	free(bytes);
	free(base);
}

/* Only the ELF header and the redirect windows change in the base's bytes;
 * the lineage names the base build-id and the fix; the build-id stays. */
static void test_coldpatch_keeps_bytes_build_id_and_lineage(void)
{
	Variant *v = &variants[0];
	CU_ASSERT_EQUAL_FATAL(build_variant(v), 0);
	char *base = vpath(v, "fix0/%s", "libfx.so");
	size_t len = 0;
	uint8_t *bytes = slurp(base, &len);
	BaseErr e = { 0 };
	ElfPayload *p = NULL;
	CU_ASSERT_EQUAL_FATAL(payload_for(v, "lib", 0, 1, base, "FIX-1", NULL, 0, &p, &e), 0);
	BaseBuf c = { 0 };
	CU_ASSERT_EQUAL_FATAL(elf_coldpatch(bytes, len, p, &c, &e), 0);
	CU_ASSERT_TRUE(c.len > len);
	ElfFile *bf = NULL, *cf = NULL;
	CU_ASSERT_EQUAL_FATAL(elf_open_mem(bytes, len, "base", &bf, &e), 0);
	CU_ASSERT_EQUAL_FATAL(elf_open_mem(c.data, c.len, "cold", &cf, &e), 0);
	size_t outside = 0;
	for (size_t i = sizeof(Elf64_Ehdr); i < len; i++) {
		if (bytes[i] == c.data[i])
			continue;
		int in_window = 0;
		for (size_t k = 0; k < p->n_redirects; k++) {
			uint64_t off = 0;
			const ElfRedirect *d = &p->redirects[k];
			elf_vaddr_to_offset(bf, d->entry - d->pad, d->expect_len, &off);
			in_window |= i >= off && i < off + d->expect_len;
		}
		outside += !in_window;
	}
	CU_ASSERT_EQUAL(outside, 0);
	CU_ASSERT_TRUE(cf->build_id_len == bf->build_id_len &&
		       memcmp(cf->build_id, bf->build_id, bf->build_id_len) == 0);
	ElfLineage l = { 0 };
	CU_ASSERT_EQUAL_FATAL(elf_lineage(cf, &l, &e), 0);
	CU_ASSERT_TRUE(l.n_fixes == 1 && strcmp(l.fixes[0], "FIX-1") == 0);
	CU_ASSERT_TRUE(l.build_id_len == bf->build_id_len &&
		       memcmp(l.build_id, bf->build_id, bf->build_id_len) == 0);
	elf_lineage_free(&l);
	BaseBuf d = { 0 };
	CU_ASSERT_EQUAL(elf_describe_lineage(c.data, c.len, &d, &e), 0);
	CU_ASSERT_TRUE(d.data && strstr((char *)d.data, "fixes FIX-1\n"));
	base_buf_free(&d);
	/* wrong base, wrong expected bytes, applied twice */
	char *pie = vpath(v, "fix0/%s", "pie");
	size_t plen = 0;
	uint8_t *pbytes = slurp(pie, &plen);
	BaseBuf x = { 0 };
	CU_ASSERT_EQUAL(elf_coldpatch(pbytes, plen, p, &x, &e), -ESTALE);
	CU_ASSERT_EQUAL(elf_coldpatch(c.data, c.len, p, &x, &e), -EEXIST);
	p->redirects[0].expect[3] ^= 0x55;
	base_err_clear(&e);
	CU_ASSERT_EQUAL(elf_coldpatch(bytes, len, p, &x, &e), -ESTALE);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "not the expected"));
	CU_ASSERT_EQUAL(x.len, 0);
	elf_close(bf);
	elf_close(cf);
	base_buf_free(&c);
	elf_payload_free(p);
	free(pbytes);
	free(pie);
	free(bytes);
	free(base);
}

/* Fix 2 over fix 1: built against the base build with lineage FIX-1, applied
 * to the first coldpatch; the result runs as the rebuilt fix-2 program. */
static void check_stack(Variant *v)
{
	check_fix1(v);
	CU_ASSERT_EQUAL_FATAL(test_sh("mkdir -p %s/%s/cold2 && cp %s/%s/cold1/pie %s/%s/cold2/", scratch,
				      v->tag, scratch, v->tag, scratch, v->tag), 0);
	char *base = vpath(v, "fix0/%s", "libfx.so");
	char *cold1 = vpath(v, "cold1/%s", "libfx.so");
	char *cold2 = vpath(v, "cold2/%s", "libfx.so");
	BaseErr e = { 0 };
	ElfPayload *p = NULL;
	char *lineage[] = { "FIX-1" };
	CU_ASSERT_EQUAL_FATAL(payload_for(v, "lib", 1, 2, base, "FIX-2", lineage, 1, &p, &e), 0);
	CU_ASSERT_EQUAL(p->n_redirects, 2); /* lib_name again, lib_sub */
	/* payloads are built against the base build, not a coldpatch */
	ElfPayload *q = NULL;
	CU_ASSERT_EQUAL(payload_for(v, "lib", 1, 2, cold1, "FIX-2", lineage, 1, &q, &e), -EINVAL);
	base_err_clear(&e);
	/* not on the base build itself: FIX-1 is missing */
	BaseBuf x = { 0 };
	size_t len = 0;
	uint8_t *bb = slurp(base, &len);
	CU_ASSERT_EQUAL(elf_coldpatch(bb, len, p, &x, &e), -ESTALE);
	free(bb);
	base_err_clear(&e);
	int r = coldpatch_to(cold1, p, cold2, &e);
	if (r < 0)
		fprintf(stderr, "stack: %s\n", e.msg);
	CU_ASSERT_EQUAL_FATAL(r, 0);
	CU_ASSERT_TRUE(readelf_clean(cold2));
	char *want = run_in(v, "fix2", "pie");
	char *got = run_in(v, "cold2", "pie");
	CU_ASSERT_STRING_EQUAL(got, want);
	CU_ASSERT_PTR_NOT_NULL(strstr(got, "name name-fixed-twice\nclamp 10\nsub 5\n"));
	if (!v->ldflags[0])
		CU_ASSERT_PTR_NOT_NULL(strstr(got, "peek 4098\n"));
	ElfFile *f = NULL;
	CU_ASSERT_EQUAL_FATAL(elf_open_path(cold2, &f, &e), 0);
	ElfLineage l = { 0 };
	CU_ASSERT_EQUAL(elf_lineage(f, &l, &e), 0);
	CU_ASSERT_TRUE(l.n_fixes == 2 && strcmp(l.fixes[0], "FIX-1") == 0 &&
		       strcmp(l.fixes[1], "FIX-2") == 0);
	elf_lineage_free(&l);
	elf_close(f);
	free(want);
	free(got);
	elf_payload_free(p);
	free(base);
	free(cold1);
	free(cold2);
}

static void test_coldpatch_of_coldpatch_stacks(void)
{
	for (size_t k = 0; k < sizeof(variants) / sizeof(variants[0]); k++)
		check_stack(&variants[k]);
}

/* A fix calling a libc function the base does not import: the payload
 * carries a SYMBOL slot for the live patcher; a coldpatch is refused. */
static void test_import_missing_from_base_symbol_slot_and_cold_refusal(void)
{
	Variant *v = &variants[0];
	CU_ASSERT_EQUAL_FATAL(build_variant(v), 0);
	CU_ASSERT_EQUAL_FATAL(test_sh("cd %s/%s && " CC_OBJ " -fPIC %s -DNEED_IMPORT -c %s/lib.c -o lib_imp0.o && "
				      CC_OBJ " -fPIC %s -DNEED_IMPORT -DFIX=1 -c %s/lib.c -o lib_imp1.o && "
				      "gcc -shared -Wl,--build-id -o libimp.so lib_imp0.o",
				      scratch, v->tag, v->flags, fixtures, v->flags, fixtures), 0);
	/* lib_pid_positive is unchanged; make a fix that calls getpid anew:
	 * the base without NEED_IMPORT does not import it. */
	char *base = vpath(v, "fix0/%s", "libfx.so");
	char *o = base_strdupf("%s/%s/lib_0.o", scratch, v->tag);
	char *n = base_strdupf("%s/%s/lib_imp1.o", scratch, v->tag);
	ElfObjectPair pair = { o, n };
	BaseErr e = { 0 };
	ElfPayload *p = NULL;
	CU_ASSERT_EQUAL_FATAL(elf_build_payload(base, &pair, 1, "FIX-I", NULL, 0, &p, &e), 0);
	int sym = 0;
	for (size_t i = 0; i < p->n_relocs; i++)
		sym += p->relocs[i].bind == ELF_BIND_SYMBOL && p->relocs[i].type == R_X86_64_64 &&
		       strcmp(p->relocs[i].symbol, "getpid") == 0;
	CU_ASSERT_EQUAL(sym, 1);
	size_t len = 0;
	uint8_t *bytes = slurp(base, &len);
	BaseBuf c = { 0 };
	CU_ASSERT_EQUAL(elf_coldpatch(bytes, len, p, &c, &e), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "'getpid', which the base does not import"));
	free(bytes);
	elf_payload_free(p);
	free(base);
	free(o);
	free(n);
}

/* Non-PIC objects hold 32-bit absolute addresses: refused with the remedy. */
static void test_non_pic_objects_refused(void)
{
	Variant *v = &variants[2];
	CU_ASSERT_EQUAL_FATAL(build_variant(v), 0);
	CU_ASSERT_EQUAL_FATAL(test_sh("cd %s/%s && " CC_OBJ " -fno-pie -c %s/main.c -o np_0.o && "
				      CC_OBJ " -fno-pie -DFIX=1 -c %s/main.c -o np_1.o && "
				      "gcc -no-pie -Wl,--build-id -o np np_0.o fix0/libfx.so",
				      scratch, v->tag, fixtures, fixtures), 0);
	char *base = vpath(v, "%s", "np");
	char *o = vpath(v, "%s", "np_0.o"), *n = vpath(v, "%s", "np_1.o");
	ElfObjectPair pair = { o, n };
	BaseErr e = { 0 };
	ElfPayload *p = NULL;
	CU_ASSERT_EQUAL(elf_build_payload(base, &pair, 1, "FIX-N", NULL, 0, &p, &e), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "compile with -fPIC or -fPIE"));
	free(base);
	free(o);
	free(n);
}

/* Payload size against the file it replaces (the figure for the report). */
static void test_payload_size_ratio(void)
{
	for (size_t k = 0; k < 3; k++) {
		Variant *v = &variants[k];
		CU_ASSERT_EQUAL_FATAL(build_variant(v), 0);
		const char *files[][2] = { { "lib", "libfx.so" }, { "main", "pie" } };
		for (int i = 0; i < 2; i++) {
			char *base = vpath(v, "fix0/%s", files[i][1]);
			BaseErr e = { 0 };
			ElfPayload *p = NULL;
			BaseBuf w = { 0 };
			CU_ASSERT_EQUAL_FATAL(payload_for(v, files[i][0], 0, 1, base, "FIX-1", NULL, 0, &p, &e), 0);
			CU_ASSERT_EQUAL(elf_payload_write(p, &w, &e), 0);
			struct stat st;
			CU_ASSERT_EQUAL(stat(base, &st), 0);
			CU_ASSERT_TRUE(w.len < (size_t)st.st_size);
			printf("\n    payload/file %-5s %-8s %5zu / %6lld = %.3f (%zu functions)", v->tag,
			       files[i][1], w.len, (long long)st.st_size, (double)w.len / (double)st.st_size,
			       p->n_redirects);
			base_buf_free(&w);
			elf_payload_free(p);
			free(base);
		}
	}
	printf("\n    ");
}

/* ---- the payload applied in memory, as the live patcher will --------------- */

/* Map the blob within rel32 reach of the module, relocate it, write the
 * redirect forms of elf/elf.h after checking the expected bytes. */
/* BASE_WRAPS: S + A - P in two's complement, as the patcher computes it */
BASE_WRAPS static int apply_in_process(uintptr_t bias, const ElfPayload *p)
{
	uint8_t *blob = MAP_FAILED;
	for (uintptr_t hint = (bias + (256u << 20)) & ~(uintptr_t)0xfff; blob == MAP_FAILED;
	     hint += 1u << 20) {
		blob = mmap((void *)hint, p->code_len, PROT_READ | PROT_WRITE | PROT_EXEC,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (hint > bias + (1u << 30))
			return -1;
	}
	memcpy(blob, p->code, p->code_len);
	for (size_t i = 0; i < p->n_relocs; i++) {
		const ElfReloc *r = &p->relocs[i];
		uintptr_t S = r->bind == ELF_BIND_BASE	  ? bias + r->value
			      : r->bind == ELF_BIND_PAYLOAD ? (uintptr_t)blob + r->value
							    : (uintptr_t)dlsym(RTLD_DEFAULT, r->symbol);
		if (!S)
			return -2;
		uintptr_t P = (uintptr_t)blob + r->where;
		if (r->type == R_X86_64_PC32) {
			int64_t v = (int64_t)(S + (uintptr_t)r->addend - P);
			if (v != (int32_t)v)
				return -3;
			int32_t v32 = (int32_t)v;
			memcpy(blob + r->where, &v32, 4);
		} else {
			uint64_t v = S + (uintptr_t)r->addend;
			memcpy(blob + r->where, &v, 8);
		}
	}
	for (size_t i = 0; i < p->n_redirects; i++) {
		const ElfRedirect *d = &p->redirects[i];
		uint8_t *w = (uint8_t *)(bias + d->entry - d->pad);
		uintptr_t to = (uintptr_t)blob + d->target;
		uintptr_t pg = (uintptr_t)w & ~(uintptr_t)0xfff;
		if (mprotect((void *)pg, 0x2000, PROT_READ | PROT_WRITE | PROT_EXEC) < 0)
			return -4;
		if (memcmp(w, d->expect, d->expect_len) != 0)
			return -5;
		if (d->kind == ELF_ENTRY_PAD16) {
			memcpy(w, "\xff\x25\0\0\0\0", 6);
			memcpy(w + 6, &to, 8);
			memcpy(w + 14, "\xeb\xf0", 2);
		} else if (d->kind == ELF_ENTRY_PAD_REL32) {
			int32_t rel = (int32_t)(to - (bias + d->entry));
			w[d->pad - 5] = 0xe9;
			memcpy(w + d->pad - 4, &rel, 4);
			memcpy(w + d->pad, "\xeb\xf9", 2);
		} else {
			int32_t rel = (int32_t)(to - (bias + d->entry + 5));
			w[0] = 0xe9;
			memcpy(w + 1, &rel, 4);
		}
		mprotect((void *)pg, 0x2000, PROT_READ | PROT_EXEC);
		/* valgrind caches translated code: the test must run under it too */
		VALGRIND_DISCARD_TRANSLATIONS(w, d->expect_len);
	}
	return 0;
}

/* In a child: load the base library, patch it in memory, call into it. */
static int child_hotpatch(const char *so, const ElfPayload *p)
{
	void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
	struct link_map *lm = NULL;
	if (!h || dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0)
		return 10;
	int (*bump)(void) = (int (*)(void))dlsym(h, "lib_bump");
	int (*peek)(void) = (int (*)(void))dlsym(h, "lib_peek");
	int (*add)(int, int) = (int (*)(int, int))dlsym(h, "lib_add");
	int (*clamp)(int) = (int (*)(int))dlsym(h, "lib_clamp");
	int (*kind)(int) = (int (*)(int))dlsym(h, "lib_kind");
	int (*fmt)(char *, size_t, int) = (int (*)(char *, size_t, int))dlsym(h, "lib_format");
	const char *(*name)(void) = (const char *(*)(void))dlsym(h, "lib_name");
	if (!bump || !peek || !add || !clamp || !kind || !fmt || !name)
		return 11;
	/* state before the patch must survive it */
	if (bump() != 1 || add(2, 3) != 6)
		return 12;
	int r = apply_in_process(lm->l_addr, p);
	if (r < 0)
		return 20 - r;
	char buf[32];
	fmt(buf, sizeof(buf), 4);
	if (bump() != 3 || peek() != 3000 + 100 + 1 - 1 || add(2, 3) != 5 || clamp(42) != 10 ||
	    kind(5) != 555 || kind(1) != 23 || strcmp(buf, "fixed<8>") != 0 ||
	    strcmp(name(), "name-fixed") != 0)
		return 30;
	return 0;
}

static void test_payload_applies_in_memory(void)
{
	for (size_t k = 0; k < 3; k++) {
		Variant *v = &variants[k];
		CU_ASSERT_EQUAL_FATAL(build_variant(v), 0);
		char *so = vpath(v, "fix0/%s", "libfx.so");
		BaseErr e = { 0 };
		ElfPayload *p = NULL, *q = NULL;
		BaseBuf w = { 0 };
		CU_ASSERT_EQUAL_FATAL(payload_for(v, "lib", 0, 1, so, "FIX-1", NULL, 0, &p, &e), 0);
		/* through the serialized form, as the patcher receives it */
		CU_ASSERT_EQUAL_FATAL(elf_payload_write(p, &w, &e), 0);
		CU_ASSERT_EQUAL_FATAL(elf_payload_parse(w.data, w.len, &q, &e), 0);
		fflush(NULL);
		pid_t pid = fork();
		if (pid == 0) {
			int rc = child_hotpatch(so, q);
			/* the child's own leak report must not count */
			elf_payload_free(p);
			elf_payload_free(q);
			base_buf_free(&w);
			free(so);
			_exit(rc);
		}
		int st = 0;
		CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
		CU_ASSERT_TRUE(WIFEXITED(st));
		CU_ASSERT_EQUAL(WEXITSTATUS(st), 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			fprintf(stderr, "%s: child status %#x\n", v->tag, st);
		elf_payload_free(p);
		elf_payload_free(q);
		base_buf_free(&w);
		free(so);
	}
}

/* Damaged bases and objects reach the builder and the synthesizer only as
 * clean refusals. */
/* The decoder's report of a call that returns strictly inside the window:
 * the return address of a frame a redirect would tear. */
static void test_x86_scan_call_returning_inside_the_window(void)
{
	static const uint8_t inside[] = { 0x57, 0xff, 0xd6, 0x90, 0x90, 0xc3 };   /* push; call *%rsi */
	static const uint8_t at_end[] = { 0xe8, 0, 0, 0, 0, 0xc3 };                /* call rel32 */
	static const uint8_t jump[] = { 0x57, 0xff, 0xe6, 0x90, 0x90, 0xc3 };     /* push; jmp *%rsi */
	ElfX86Scan sc;
	CU_ASSERT_EQUAL_FATAL(elf_x86_scan(inside, sizeof(inside), 0x1000, 0x1000, 0x1005, &sc), 0);
	CU_ASSERT_EQUAL(sc.ret_inside, 0x1003);
	/* the window of a 16,14 pad ends at entry + 2: the call returns past it */
	CU_ASSERT_EQUAL(elf_x86_scan(inside, sizeof(inside), 0x1000, 0xff0, 0x1002, &sc), 0);
	CU_ASSERT_EQUAL(sc.ret_inside, 0);
	/* a 5-byte call at the entry returns to the window's end, not inside */
	CU_ASSERT_EQUAL(elf_x86_scan(at_end, sizeof(at_end), 0x1000, 0x1000, 0x1005, &sc), 0);
	CU_ASSERT_EQUAL(sc.ret_inside, 0);
	/* a jump leaves no return address (an indirect one is its own hazard) */
	CU_ASSERT_EQUAL(elf_x86_scan(jump, sizeof(jump), 0x1000, 0x1000, 0x1005, &sc), 0);
	CU_ASSERT_EQUAL(sc.ret_inside, 0);
	CU_ASSERT_EQUAL(sc.indirect, 0x1001);
}

static void test_damaged_inputs_refused_by_builder_and_coldpatch(void)
{
	Variant *v = &variants[0];
	CU_ASSERT_EQUAL_FATAL(build_variant(v), 0);
	char *so = vpath(v, "fix0/%s", "libfx.so");
	BaseErr e = { 0 };
	ElfPayload *p = NULL;
	CU_ASSERT_EQUAL_FATAL(payload_for(v, "lib", 0, 1, so, "FIX-1", NULL, 0, &p, &e), 0);
	size_t len = 0;
	uint8_t *bytes = slurp(so, &len);
	for (size_t n = 0; n < len; n += 61) {
		uint8_t *c = malloc(n ? n : 1);
		memcpy(c, bytes, n);
		BaseBuf out = { 0 };
		CU_ASSERT_TRUE(elf_coldpatch(c, n, p, &out, &e) < 0);
		CU_ASSERT_EQUAL(out.len, 0);
		free(c);
	}
	unsigned seed = 99;
	for (int i = 0; i < 300; i++) {
		uint8_t *c = malloc(len);
		memcpy(c, bytes, len);
		for (int k = 0; k < 3; k++) {
			seed = (unsigned)(((uint64_t)seed * 1103515245u + 12345u) & 0xffffffffu); /* no wrap */
			c[(seed >> 8) % len] ^= (uint8_t)(seed >> 20) | 1;
		}
		BaseBuf out = { 0 };
		elf_coldpatch(c, len, p, &out, &e);
		base_buf_free(&out);
		free(c);
	}
	/* truncated objects */
	char *o = base_strdupf("%s/%s/lib_1.o", scratch, v->tag);
	char *t = base_strdupf("%s/%s/lib_trunc.o", scratch, v->tag);
	char *a = base_strdupf("%s/%s/lib_0.o", scratch, v->tag);
	size_t olen = 0;
	uint8_t *ob = slurp(o, &olen);
	for (size_t n = 0; n < olen; n += olen / 13 + 1) {
		test_write(t, ob, n);
		ElfObjectPair pair = { a, t };
		ElfPayload *x = NULL;
		CU_ASSERT_TRUE(elf_build_payload(so, &pair, 1, "FIX-T", NULL, 0, &x, &e) < 0);
	}
	free(ob);
	free(o);
	free(t);
	free(a);
	free(bytes);
	elf_payload_free(p);
	free(so);
}

int test_register(void)
{
	CU_pSuite s = CU_add_suite("elf", suite_init, suite_clean);
	if (!s)
		return -1;
	CU_add_test(s, "reader: headers, symbols, relocations, build-id match readelf/nm",
		    test_reader_reads_headers_symbols_build_id);
	CU_add_test(s, "reader: every truncation refused with a one-line reason",
		    test_reader_rejects_truncated_files);
	CU_add_test(s, "reader: bad offsets, huge counts, damaged tables refused",
		    test_reader_rejects_bad_offsets_and_counts);
	CU_add_test(s, "payload: write/parse round trip is byte-exact",
		    test_payload_round_trip_is_exact);
	CU_add_test(s, "payload: truncated, altered, huge counts, bad fields refused",
		    test_payload_parse_refuses_malformed);
	CU_add_test(s, "coldpatch 16,14: .so, PIE and non-PIE run the fixed code, state shared",
		    test_coldpatch_pad16_runs_fixed);
	CU_add_test(s, "coldpatch 7,5: .so, PIE and non-PIE run the fixed code, state shared",
		    test_coldpatch_pad7_runs_fixed);
	CU_add_test(s, "coldpatch plain: .so, PIE and non-PIE run the fixed code, state shared",
		    test_coldpatch_plain_runs_fixed);
	CU_add_test(s, "coldpatch -Bsymbolic library: relaxed GOT loads, runs the fixed code",
		    test_coldpatch_bsymbolic_runs_fixed);
	CU_add_test(s, "diff: changed and new functions only, layout shifts ignored",
		    test_diff_finds_changed_and_new_functions_only);
	CU_add_test(s, "diff: data, size, TLS and new-variable changes refused by name",
		    test_data_changes_refused_by_name);
	CU_add_test(s, "payload: statics bind to the base instance, expect bytes from base, round trip",
		    test_built_payload_binds_to_base_and_round_trips);
	CU_add_test(s, "payload and coldpatch: same inputs, same bytes",
		    test_builds_are_deterministic);
	CU_add_test(s, "coldpatch: base bytes kept, build-id kept, lineage, wrong base refused",
		    test_coldpatch_keeps_bytes_build_id_and_lineage);
	CU_add_test(s, "coldpatch of a coldpatch: runs fix 2, lineage lists both",
		    test_coldpatch_of_coldpatch_stacks);
	CU_add_test(s, "import the base lacks: SYMBOL slot in payload, coldpatch refused",
		    test_import_missing_from_base_symbol_slot_and_cold_refusal);
	CU_add_test(s, "non-PIC objects refused with the remedy", test_non_pic_objects_refused);
	CU_add_test(s, "payload size / replaced file size", test_payload_size_ratio);
	CU_add_test(s, "payload applied in memory (patcher forms) runs fixed code on live state",
		    test_payload_applies_in_memory);
	CU_add_test(s, "damaged bases and objects refused by builder and coldpatch",
		    test_damaged_inputs_refused_by_builder_and_coldpatch);
	CU_add_test(s, "x86 scan: a call returning inside the entry window is reported",
		    test_x86_scan_call_returning_inside_the_window);
	return 0;
}
