/* elf: reader, payload format, object diff, payload building, coldpatches.
 * Fixtures (tests/fixtures/elf/) are compiled with gcc into one scratch
 * directory per suite run; the coldpatched files run under the real loader. */
#include <CUnit/CUnit.h>
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
			seed = seed * 1103515245u + 12345u;
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
	return 0;
}
