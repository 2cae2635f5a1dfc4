/* Redirects: the entry of each changed function of the base, how it is
 * patched (pad or plain entry), the bytes that must be there, and the rule
 * for a changed function that has no entry in the base. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elf/internal.h"

static int symbol_within(const ElfFile *b, uint64_t lo, uint64_t hi)
{
	for (size_t i = 1; i < b->n_symbols; i++) {
		const ElfSymbol *c = &b->symbols[i];
		if (c->shndx != SHN_UNDEF && c->shndx < SHN_LORESERVE && c->type != STT_SECTION &&
		    c->type != STT_FILE && c->value >= lo && c->value < hi)
			return 1;
	}
	return 0;
}

/* Are the 5 bytes before entry alignment fill (nop or int3) that no symbol
 * covers, in a file mapping?  Then a jump can live there. */
static int align_pad_free(const ElfFile *b, uint64_t entry)
{
	uint64_t off;
	if (entry < 5 || elf_vaddr_to_offset(b, entry - 5, 5, &off) < 0)
		return 0;
	for (int i = 0; i < 5; i++)
		if (b->data[off + i] != 0x90 && b->data[off + i] != 0xcc)
			return 0;
	for (size_t i = 1; i < b->n_symbols; i++) {
		const ElfSymbol *c = &b->symbols[i];
		if (c->shndx == SHN_UNDEF || c->shndx >= SHN_LORESERVE || c->type == STT_SECTION ||
		    c->type == STT_FILE)
			continue;
		uint64_t end = c->value + (c->size ? c->size : 1);
		if (c->value < entry && end > entry - 5)
			return 0;
	}
	return 1;
}

static int is_modified(const ElfBuildObj *ob, const ElfSymbol *s)
{
	for (size_t i = 0; i < ob->n_changes; i++)
		if (ob->changes[i].sym == s && ob->changes[i].change == ELF_CHANGE_MODIFIED)
			return 1;
	return 0;
}

/* A changed function s with no symbol in the base (inlined everywhere, or
 * the base's symbols are missing): its old code is unreachable after the fix
 * only if it is local and every function of the unit that refers to it
 * changed too and is itself redirected (then the fixed callers call the
 * fixed copy).  Otherwise refuse: dropping it would leave the old code
 * running under a package that says it is fixed. */
static int unreached_after_fix(ElfBuilder *B, ElfBuildObj *ob, const ElfSymbol *s, const ElfSymbol *os)
{
	const char *why = B->no_symbols ? B->no_symbols : "inlined everywhere or dropped by the linker";
	if (s->bind != STB_LOCAL || !os)
		return base_err(B->e, -EINVAL,
				"%s: '%s' changed and the base has no symbol for it (%s): cannot redirect it",
				B->base->name, s->name, why);
	const ElfFile *o = ob->old_o;
	for (size_t i = 0; i < o->n_sections; i++) {
		const ElfSection *rs = &o->sections[i];
		if (rs->type != SHT_RELA || rs->link != o->symtab_index || rs->info >= o->n_sections)
			continue;
		for (size_t k = 0; k < rs->n_relas; k++) {
			ElfTarget t;
			int r = elf_obj_target(o, rs, &rs->relas[k], &t, B->e);
			if (r < 0)
				return r;
			if (t.sym != os || rs->info == os->shndx)
				continue;
			const ElfSection *user = &o->sections[rs->info];
			if (!(user->flags & SHF_ALLOC) || user->type == SHT_X86_64_UNWIND ||
			    strcmp(user->name, ".eh_frame") == 0)
				continue; /* debug and unwind info */
			const ElfSymbol *caller = elf_obj_func_of(o, rs->info);
			const ElfSymbol *nc = caller ? elf_obj_find_like(ob->new_o, caller) : NULL;
			const ElfSymbol *bc = NULL;
			if (nc && is_modified(ob, nc) && elf_build_lookup(B, ob, nc, &bc) >= 0 && bc &&
			    bc->type == STT_FUNC)
				continue;
			return base_err(B->e, -EINVAL,
					"%s: '%s' changed and the base has no symbol for it (%s), and %s "
					"%s%s%s is not redirected: cannot fix it", B->base->name, s->name, why,
					caller ? "its caller" : "a reference from",
					caller ? "'" : "", caller ? caller->name : user->name,
					caller ? "'" : "");
		}
	}
	return 0;
}

int elf_build_redirect(ElfBuilder *B, ElfBuildObj *ob, const ElfDiffItem *it, ElfRedirect *ret, int *ret_have)
{
	const ElfSymbol *s = it->sym, *bs = NULL, *os = ob->old_of[it->sym->index];
	*ret_have = 0;
	if (it->change != ELF_CHANGE_MODIFIED)
		return 0;
	/* A split-off cold part is jumped into from its parent's body, never
	 * called: redirecting it would send old hot code into new cold code. */
	if (strstr(s->name, ".cold"))
		return 0;
	int r = elf_build_lookup(B, ob, s, &bs);
	if (r < 0)
		return r;
	if (!bs || bs->type != STT_FUNC)
		return unreached_after_fix(B, ob, s, os);
	if (!os || os->shndx >= ob->old_o->n_sections)
		return base_err(B->e, -EINVAL, "%s: changed '%s' has no base object counterpart",
				ob->old_o->name, s->name);
	r = B->verify ? elf_verify_function(B->base, bs, ob->old_o, os, B->e) : 0;
	if (r < 0)
		return r;
	const ElfSection *osec = &ob->old_o->sections[os->shndx];
	/* Pad before the entry and NOPs at it, as the base object has them. */
	uint64_t pad = 0, at = 0;
	while (pad < os->value && osec->data && osec->data[os->value - 1 - pad] == 0x90)
		pad++;
	while (at < 2 && osec->data && os->value + at < osec->size && osec->data[os->value + at] == 0x90)
		at++;
	ElfRedirect d = { 0 };
	int align = 0;   /* PAD_REL32 in alignment fill, not in a compiler's pad */
	d.entry = bs->value;
	d.size = bs->size;
	if (at == 2 && pad >= 14) {
		d.kind = ELF_ENTRY_PAD16;
		d.pad = 14;
		d.expect_len = 16;
	} else if (at == 2 && pad >= 5) {
		d.kind = ELF_ENTRY_PAD_REL32;
		d.pad = (uint32_t)(pad > 30 ? 30 : pad);
		d.expect_len = d.pad + 2;
	} else {
		/* A function shorter than the jump may still take it when only
		 * alignment padding follows it: no other symbol starts there. */
		if (bs->size < 5 && (!B->base->n_symbols || symbol_within(B->base, bs->value + 1, bs->value + 5)))
			return base_err(B->e, -EINVAL, "%s: function '%s' is too small to redirect (%llu bytes)",
					B->base->name, s->name, (unsigned long long)bs->size);
		d.kind = ELF_ENTRY_PLAIN;
		d.expect_len = 5;
		if (bs->size >= 2 && align_pad_free(B->base, bs->value)) {
			/* the padding trampoline: `e9 rel32` in 5 free bytes of
			 * alignment fill before the entry, `eb f9` over the first 2
			 * bytes of the function; the window a thread must not be in
			 * (and the body must not branch into) shrinks to entry+1 */
			d.kind = ELF_ENTRY_PAD_REL32;
			d.pad = 5;
			d.expect_len = 7;
			align = 1;
		}
	}
	uint64_t off;
	if (d.entry < d.pad || elf_vaddr_to_offset(B->base, d.entry - d.pad, d.expect_len, &off) < 0)
		return base_err(B->e, -EINVAL, "%s: entry of '%s' not in the file", B->base->name,
				s->name);
	memcpy(d.expect, B->base->data + off, d.expect_len);
	if (d.kind != ELF_ENTRY_PLAIN && !align)
		for (uint32_t i = 0; i < d.expect_len; i++)
			if (d.expect[i] != 0x90)
				return base_err(B->e, -ESTALE,
						"%s: entry of '%s' does not match the base object (no NOP pad)",
						B->base->name, s->name);
	d.target = ob->blob_off[s->shndx] + s->value;
	d.name = strdup(s->name);
	if (!d.name)
		return -ENOMEM;
	*ret = d;
	*ret_have = 1;
	return 0;
}
