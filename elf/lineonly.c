/* __LINE__-only changes.  A patch that adds lines moves every later
 * __LINE__, so the assert-like calls of functions the patch never touched
 * pass other constants; counting those as changes would redirect a score of
 * functions (the hottest ones included) for a two-function fix.  kpatch's
 * create-diff-object leaves such functions alone too.  A constant counts as
 * a line number here only when all of these hold: the two function bodies
 * decode to the same instructions, the only differing bytes are the
 * immediates of `mov $imm` instructions, and each such mov sets up a call
 * that also receives __FILE__ (a string whose last path component is the
 * unit's source file name).  Anything else is a change.  Decoding through
 * elf_capstone() (x86.c loads the library). */
#include <stdlib.h>
#include <string.h>

#include "elf/internal.h"

static const char *unit_file(const ElfFile *f)
{
	for (size_t i = 1; i < f->n_symbols; i++)
		if (f->symbols[i].type == STT_FILE && f->symbols[i].name[0])
			return f->symbols[i].name;
	return NULL;
}

/* 1 if a relocation of section shndx in [lo, hi) points at __FILE__. */
static int passes_file(const ElfFile *f, uint32_t shndx, uint64_t lo, uint64_t hi, BaseErr *e)
{
	const char *file = unit_file(f);
	const ElfSection *rs = elf_obj_relsec(f, shndx);
	if (!file || !rs)
		return 0;
	const char *slash = strrchr(file, '/');
	const char *base = slash ? slash + 1 : file;
	for (size_t i = 0; i < rs->n_relas; i++) {
		const ElfRela *r = &rs->relas[i];
		ElfTarget t;
		if (r->offset < lo || r->offset >= hi)
			continue;
		int k = elf_obj_target(f, rs, r, &t, e);
		if (k < 0)
			return k;
		if (t.sym || t.shndx >= f->n_sections)
			continue;
		const ElfSection *s = &f->sections[t.shndx];
		int64_t at = t.off + (elf_is_pcrel(r->type) ? 4 : 0);
		if (!(s->flags & SHF_STRINGS) || !s->data || at < 0 || (uint64_t)at >= s->size)
			continue;
		const char *str = (const char *)s->data + at;
		size_t n = strnlen(str, s->size - (uint64_t)at), lb = strlen(base);
		if (n == s->size - (uint64_t)at)
			continue;
		if (n >= lb && strcmp(str + n - lb, base) == 0 && (n == lb || str[n - lb - 1] == '/'))
			return 1;
	}
	return 0;
}

typedef struct Insn {
	uint64_t off;
	uint16_t size;
	unsigned id;
	uint8_t imm_off, imm_size;
} Insn;

static int decode(const ElfCapstone *cs, const ElfDecoder *d, const uint8_t *code, size_t len,
		  Insn **ret, size_t *ret_n)
{
	cs_insn *in = d->insn;
	Insn *v = calloc(len ? len : 1, sizeof(*v));
	size_t n = 0;
	const uint8_t *p = code;
	size_t left = len;
	uint64_t addr = 0;
	if (!v)
		return -ENOMEM;
	while (left && cs->disasm_iter(d->h, &p, &left, &addr, in))
		v[n++] = (Insn){ in->address, in->size, in->id, in->detail->x86.encoding.imm_offset,
				 in->detail->x86.encoding.imm_size };
	if (left) {
		free(v);
		return 0; /* undecodable: not provably line-only */
	}
	*ret = v;
	*ret_n = n;
	return 1;
}

int elf_line_only(const ElfFile *old_o, uint32_t os, const ElfFile *new_o, uint32_t ns, BaseErr *e)
{
	const ElfSection *a = &old_o->sections[os], *b = &new_o->sections[ns];
	if (a->size != b->size || !a->data || !b->data)
		return 0;
	const ElfCapstone *cs = elf_capstone(e);
	if (!cs)
		return -ENOENT;
	ElfDecoder d;
	int r = elf_decoder_take(&d, e);
	if (r < 0)
		return r;
	Insn *ia = NULL, *ib = NULL;
	size_t na = 0, nb = 0;
	r = decode(cs, &d, a->data, a->size, &ia, &na);
	if (r > 0)
		r = decode(cs, &d, b->data, b->size, &ib, &nb);
	elf_decoder_give(&d);
	if (r > 0 && na != nb)
		r = 0;
	size_t moved = 0;
	for (size_t i = 0; r > 0 && i < nb; i++) {
		const Insn *x = &ia[i], *y = &ib[i];
		if (x->off != y->off || x->size != y->size || x->id != y->id) {
			r = 0;
			break;
		}
		if (memcmp(a->data + x->off, b->data + y->off, x->size) == 0)
			continue;
		/* only the immediate of a mov may differ */
		if (y->id != X86_INS_MOV || y->imm_size != 4 || x->imm_off != y->imm_off ||
		    x->imm_size != y->imm_size ||
		    memcmp(a->data + x->off, b->data + y->off, y->imm_off) != 0 ||
		    memcmp(a->data + x->off + y->imm_off + 4, b->data + y->off + y->imm_off + 4,
			   y->size - y->imm_off - 4u) != 0) {
			r = 0;
			break;
		}
		/* the call this mov sets up, and the one before it, bound the
		 * argument set-up where __FILE__ must be passed too */
		uint64_t lo = 0, hi = 0;
		for (size_t k = i; k > 0; k--) /* backwards, without wrapping below 0 */
			if (ib[k - 1].id == X86_INS_CALL) {
				lo = ib[k - 1].off + ib[k - 1].size;
				break;
			}
		for (size_t k = i + 1; k < nb; k++)
			if (ib[k].id == X86_INS_CALL || ib[k].id == X86_INS_JMP) {
				hi = ib[k].off + ib[k].size;
				break;
			}
		if (!hi) {
			r = 0;
			break;
		}
		r = passes_file(new_o, ns, lo, hi, e);
		if (r > 0)
			r = passes_file(old_o, os, lo, hi, e);
		moved++;
	}
	free(ia);
	free(ib);
	return r > 0 && moved ? 1 : r < 0 ? r : 0;
}
