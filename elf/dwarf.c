/* DW_AT_producer of a linked file's compile units: which compiler, which
 * version and which code-generation flags built each unit ("GNU C17 12.2.0
 * -mtune=generic -march=x86-64 -g -O2 -fPIC ...").  `.comment` names the
 * compiler only; the producer also carries -O and the other flags gcc and
 * clang record (not -D, -I, -W or the prefix maps), so `svc build` can tell
 * "the same compiler with other flags" before any function is compared.
 *
 * Only the first DIE of each compile unit is read, and only as far as its
 * producer: no line tables, no types.  Debug sections may be compressed
 * (SHF_COMPRESSED, zlib: what dh_strip and objcopy --compress-debug-sections
 * write).  Read from linked files only: in an object, a DW_FORM_strp offset
 * is a relocation's addend, not the field's bytes. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "elf/internal.h"

#define MAX_PRODUCERS 64

/* The DWARF 5 constants read here (DWARF 5 standard, sections 7.5). */
enum {
	DW_UT_compile = 0x01, DW_UT_partial = 0x03,
	DW_AT_producer = 0x25,
	DW_FORM_addr = 0x01, DW_FORM_block2 = 0x03, DW_FORM_block4 = 0x04, DW_FORM_data2 = 0x05,
	DW_FORM_data4 = 0x06, DW_FORM_data8 = 0x07, DW_FORM_string = 0x08, DW_FORM_block = 0x09,
	DW_FORM_block1 = 0x0a, DW_FORM_data1 = 0x0b, DW_FORM_flag = 0x0c, DW_FORM_sdata = 0x0d,
	DW_FORM_strp = 0x0e, DW_FORM_udata = 0x0f, DW_FORM_ref_addr = 0x10, DW_FORM_ref1 = 0x11,
	DW_FORM_ref2 = 0x12, DW_FORM_ref4 = 0x13, DW_FORM_ref8 = 0x14, DW_FORM_ref_udata = 0x15,
	DW_FORM_sec_offset = 0x17, DW_FORM_exprloc = 0x18, DW_FORM_flag_present = 0x19,
	DW_FORM_strx = 0x1a, DW_FORM_addrx = 0x1b, DW_FORM_ref_sup4 = 0x1c, DW_FORM_strp_sup = 0x1d,
	DW_FORM_data16 = 0x1e, DW_FORM_line_strp = 0x1f, DW_FORM_ref_sig8 = 0x20,
	DW_FORM_implicit_const = 0x21, DW_FORM_loclistx = 0x22, DW_FORM_rnglistx = 0x23,
	DW_FORM_ref_sup8 = 0x24, DW_FORM_strx1 = 0x25, DW_FORM_strx2 = 0x26, DW_FORM_strx3 = 0x27,
	DW_FORM_strx4 = 0x28, DW_FORM_addrx1 = 0x29, DW_FORM_addrx2 = 0x2a, DW_FORM_addrx3 = 0x2b,
	DW_FORM_addrx4 = 0x2c,
};

typedef struct Bytes {
	const uint8_t *p;
	size_t len;
	uint8_t *owned;
} Bytes;

/* The contents of section name, inflated if compressed; empty if absent. */
static int section_bytes(const ElfFile *f, const char *name, Bytes *ret, BaseErr *e)
{
	const ElfSection *s = elf_find_section(f, name);
	*ret = (Bytes){ 0 };
	if (!s || !s->data || s->type == SHT_NOBITS)
		return 0;
	if (!(s->flags & SHF_COMPRESSED)) {
		*ret = (Bytes){ s->data, s->size, NULL };
		return 0;
	}
	if (s->size < sizeof(Elf64_Chdr))
		return base_err(e, -EBADMSG, "%s: %s: truncated compression header", f->name, name);
	Elf64_Chdr ch;
	memcpy(&ch, s->data, sizeof(ch));
	if (ch.ch_type != ELFCOMPRESS_ZLIB)
		return base_err(e, -ENOTSUP, "%s: %s: compression type %u not supported", f->name,
				name, ch.ch_type);
	if (ch.ch_size > ELF_MAX_FILE)
		return base_err(e, -EBADMSG, "%s: %s: inflates to %llu bytes", f->name, name,
				(unsigned long long)ch.ch_size);
	uint8_t *out = malloc(ch.ch_size ? ch.ch_size : 1);
	uLongf out_len = (uLongf)ch.ch_size;
	if (!out)
		return -ENOMEM;
	if (uncompress(out, &out_len, s->data + sizeof(ch), (uLong)(s->size - sizeof(ch))) != Z_OK ||
	    out_len != ch.ch_size) {
		free(out);
		return base_err(e, -EBADMSG, "%s: %s: does not inflate", f->name, name);
	}
	*ret = (Bytes){ out, ch.ch_size, out };
	return 0;
}

typedef struct Cursor {
	const uint8_t *p, *end;
	int bad;
} Cursor;

static uint64_t rd(Cursor *c, size_t n)
{
	uint64_t v = 0;
	if (c->bad || (size_t)(c->end - c->p) < n) {
		c->bad = 1;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)c->p[i] << (8 * i);
	c->p += n;
	return v;
}

static uint64_t uleb(Cursor *c)
{
	uint64_t v = 0;
	for (unsigned shift = 0; !c->bad; shift += 7) {
		uint8_t b = (uint8_t)rd(c, 1);
		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			break;
	}
	return v;
}

static void skip(Cursor *c, uint64_t n)
{
	if (c->bad || (uint64_t)(c->end - c->p) < n)
		c->bad = 1;
	else
		c->p += n;
}

/* The NUL-terminated string at off of sec, or NULL. */
static const char *str_at(const Bytes *sec, uint64_t off)
{
	if (off >= sec->len || !memchr(sec->p + off, 0, sec->len - off))
		return NULL;
	return (const char *)sec->p + off;
}

/* The abbreviation declaration with code `code` in the table at off. */
static int find_abbrev(const Bytes *abbrev, uint64_t off, uint64_t code, Cursor *ret)
{
	if (off >= abbrev->len)
		return -EBADMSG;
	Cursor c = { abbrev->p + off, abbrev->p + abbrev->len, 0 };
	for (;;) {
		uint64_t k = uleb(&c);
		if (c.bad || k == 0)
			return -EBADMSG;
		(void)uleb(&c); /* tag */
		(void)rd(&c, 1); /* children */
		if (k == code) {
			*ret = c;
			return 0;
		}
		for (uint64_t at, form; !c.bad;) {
			at = uleb(&c);
			form = uleb(&c);
			if (form == DW_FORM_implicit_const)
				(void)uleb(&c);
			if (!at && !form)
				break;
		}
	}
}

/* Skip an attribute value of form; 0, or -ENOTSUP for a form we do not size. */
static int skip_form(Cursor *c, uint64_t form, unsigned offsz, unsigned addrsz)
{
	static const uint8_t fixed[] = {
		[DW_FORM_data1] = 1, [DW_FORM_ref1] = 1, [DW_FORM_flag] = 1, [DW_FORM_strx1] = 1,
		[DW_FORM_addrx1] = 1, [DW_FORM_data2] = 2, [DW_FORM_ref2] = 2, [DW_FORM_strx2] = 2,
		[DW_FORM_addrx2] = 2, [DW_FORM_strx3] = 3, [DW_FORM_addrx3] = 3, [DW_FORM_data4] = 4,
		[DW_FORM_ref4] = 4, [DW_FORM_ref_sup4] = 4, [DW_FORM_strx4] = 4, [DW_FORM_addrx4] = 4,
		[DW_FORM_data8] = 8, [DW_FORM_ref8] = 8, [DW_FORM_ref_sig8] = 8, [DW_FORM_ref_sup8] = 8,
		[DW_FORM_data16] = 16,
	};
	switch (form) {
	case DW_FORM_addr: skip(c, addrsz); return 0;
	case DW_FORM_strp: case DW_FORM_line_strp: case DW_FORM_sec_offset: case DW_FORM_ref_addr:
	case DW_FORM_strp_sup: skip(c, offsz); return 0;
	case DW_FORM_string: {
		const uint8_t *z = c->bad ? NULL : memchr(c->p, 0, (size_t)(c->end - c->p));
		if (!z)
			c->bad = 1;
		else
			c->p = z + 1;
		return 0;
	}
	case DW_FORM_block1: skip(c, rd(c, 1)); return 0;
	case DW_FORM_block2: skip(c, rd(c, 2)); return 0;
	case DW_FORM_block4: skip(c, rd(c, 4)); return 0;
	case DW_FORM_block: case DW_FORM_exprloc: skip(c, uleb(c)); return 0;
	case DW_FORM_sdata: case DW_FORM_udata: case DW_FORM_ref_udata: case DW_FORM_strx:
	case DW_FORM_addrx: case DW_FORM_loclistx: case DW_FORM_rnglistx: (void)uleb(c); return 0;
	case DW_FORM_flag_present: case DW_FORM_implicit_const: return 0;
	default:
		if (form < sizeof(fixed) && fixed[form]) {
			skip(c, fixed[form]);
			return 0;
		}
		return -ENOTSUP;
	}
}

typedef struct Sections {
	Bytes info, abbrev, str, line_str;
} Sections;

/* The producer of the compile unit whose header starts at c (advanced past
 * the unit); NULL if it has none we can read. */
static const char *unit_producer(const Sections *s, Cursor *c, int *ret_bad)
{
	unsigned offsz = 4, addrsz;
	uint64_t len = rd(c, 4), abbrev_off;
	if (len == 0xffffffffu) {
		offsz = 8;
		len = rd(c, 8);
	}
	if (c->bad || len > (uint64_t)(c->end - c->p)) {
		*ret_bad = 1;
		return NULL;
	}
	Cursor u = { c->p, c->p + len, 0 };
	c->p += len;
	unsigned version = (unsigned)rd(&u, 2);
	if (version >= 5) {
		unsigned type = (unsigned)rd(&u, 1);
		addrsz = (unsigned)rd(&u, 1);
		abbrev_off = rd(&u, offsz);
		if (type != DW_UT_compile && type != DW_UT_partial)
			return NULL; /* type and split units carry no producer of ours */
	} else if (version >= 2) {
		abbrev_off = rd(&u, offsz);
		addrsz = (unsigned)rd(&u, 1);
	} else {
		return NULL;
	}
	Cursor a;
	uint64_t code = uleb(&u);
	if (u.bad || !code || find_abbrev(&s->abbrev, abbrev_off, code, &a) < 0)
		return NULL;
	for (;;) {
		uint64_t at = uleb(&a), form = uleb(&a);
		if (form == DW_FORM_implicit_const)
			(void)uleb(&a);
		if (a.bad || (!at && !form))
			return NULL;
		if (at == DW_AT_producer) {
			if (form == DW_FORM_string)
				return memchr(u.p, 0, (size_t)(u.end - u.p)) ? (const char *)u.p : NULL;
			if (form == DW_FORM_strp) {
				uint64_t off = rd(&u, offsz);
				return u.bad ? NULL : str_at(&s->str, off);
			}
			if (form == DW_FORM_line_strp) {
				uint64_t off = rd(&u, offsz);
				return u.bad ? NULL : str_at(&s->line_str, off);
			}
			return NULL; /* strx: needs DW_AT_str_offsets_base, not used by gcc here */
		}
		if (skip_form(&u, form, offsz, addrsz) < 0 || u.bad)
			return NULL;
	}
}

void elf_producers_free(char **p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(p[i]);
	free(p);
}

int elf_dwarf_producers(const ElfFile *f, char ***ret, size_t *ret_n, BaseErr *e)
{
	Sections s;
	char **out = NULL;
	size_t n = 0;
	int r = 0, bad = 0;
	if (f->type == ET_REL)
		return base_err(e, -EINVAL, "%s: producers are read from linked files only", f->name);
	r = section_bytes(f, ".debug_info", &s.info, e);
	if (r >= 0)
		r = section_bytes(f, ".debug_abbrev", &s.abbrev, e);
	if (r >= 0)
		r = section_bytes(f, ".debug_str", &s.str, e);
	if (r >= 0)
		r = section_bytes(f, ".debug_line_str", &s.line_str, e);
	Cursor c = { s.info.p, s.info.p + s.info.len, 0 };
	while (r >= 0 && s.info.len && c.p < c.end && !bad) {
		const char *p = unit_producer(&s, &c, &bad);
		size_t k = 0;
		while (p && k < n && strcmp(out[k], p) != 0)
			k++;
		if (!p || k < n)
			continue;
		if (n == MAX_PRODUCERS)
			break;
		char **grown = realloc(out, (n + 1) * sizeof(*out));
		if (!grown || !(grown[n] = strdup(p))) {
			out = grown ? grown : out;
			r = -ENOMEM;
			break;
		}
		out = grown;
		n++;
	}
	if (r >= 0 && bad)
		r = base_err(e, -EBADMSG, "%s: .debug_info: a unit runs past the section", f->name);
	free(s.info.owned);
	free(s.abbrev.owned);
	free(s.str.owned);
	free(s.line_str.owned);
	if (r < 0) {
		elf_producers_free(out, n);
		return r;
	}
	*ret = out;
	*ret_n = n;
	return 0;
}
