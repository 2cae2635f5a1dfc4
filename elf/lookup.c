/* The payload builder's view of the base build: which base symbol a symbol
 * of the fixed objects is (globals, ld-demoted hidden globals, locals of the
 * unit through their base-object counterparts), and the base's own GOT
 * entries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elf/internal.h"

/* ---- base build lookups ------------------------------------------------- */

/* A global of the objects in the base: a global or dynamic symbol of that
 * name, else, because ld demotes hidden globals (and a version script's
 * `local: *` ones) to LOCAL in the linked .symtab, the one LOCAL symbol of
 * that name and type; two such locals are refused by name, since binding to
 * the wrong one would be silently wrong. */
static int base_global(ElfBuilder *B, const ElfSymbol *s, const ElfSymbol **ret)
{
	const ElfFile *b = B->base;
	const ElfSymbol *hit = NULL;
	size_t n_hit = 0;
	*ret = NULL;
	for (size_t i = 1; i < b->n_symbols; i++) {
		const ElfSymbol *c = &b->symbols[i];
		if (c->bind != STB_LOCAL && c->shndx != SHN_UNDEF && c->type != STT_SECTION &&
		    strcmp(c->name, s->name) == 0) {
			*ret = c;
			return 0;
		}
	}
	for (size_t i = 1; i < b->n_dynsyms; i++) {
		const ElfSymbol *c = &b->dynsyms[i];
		if (c->shndx != SHN_UNDEF && strcmp(c->name, s->name) == 0) {
			*ret = c;
			return 0;
		}
	}
	for (size_t i = 1; i < b->n_dynsyms; i++)
		if (strcmp(b->dynsyms[i].name, s->name) == 0)
			return 0; /* an import of the base: never one of its locals */
	/* an undefined reference does not know its type: a function or object;
	 * among several, the one ld kept marked hidden (a version script's
	 * local and a static both stay STV_DEFAULT) */
	const ElfSymbol *hid = NULL;
	size_t n_hid = 0;
	for (size_t i = 1; i < b->n_symbols; i++) {
		const ElfSymbol *c = &b->symbols[i];
		int type_ok = s->shndx == SHN_UNDEF && s->type == STT_NOTYPE
				      ? c->type == STT_FUNC || c->type == STT_OBJECT
				      : c->type == s->type;
		if (c->bind != STB_LOCAL || c->shndx == SHN_UNDEF || !type_ok ||
		    strcmp(c->name, s->name) != 0)
			continue;
		hit = c;
		n_hit++;
		if (c->visibility != STV_DEFAULT) {
			hid = c;
			n_hid++;
		}
	}
	if (n_hit > 1 && n_hid == 1)
		hit = hid;
	else if (n_hit > 1)
		return base_err(B->e, -EINVAL,
				"%s: global '%s' is local in the base build and %zu locals bear that "
				"name: ambiguous", b->name, s->name, n_hit);
	*ret = hit;
	return 0;
}

/* A local of the object's translation unit in the base: same name, same
 * STT_FILE name; if several files share that name, refuse as ambiguous. */
static int base_local(ElfBuilder *B, const ElfFile *o, const ElfSymbol *s, const ElfSymbol **ret)
{
	const ElfFile *b = B->base;
	const char *file = elf_sym_file(o, s);
	const ElfSymbol *hit = NULL, *any = NULL;
	size_t n_hit = 0, n_any = 0;
	for (size_t i = 1; i < b->n_symbols; i++) {
		const ElfSymbol *c = &b->symbols[i];
		if (c->bind != STB_LOCAL || c->shndx == SHN_UNDEF || c->type != s->type ||
		    strcmp(c->name, s->name) != 0)
			continue;
		any = c;
		n_any++;
		if (strcmp(elf_sym_file(b, c), file) == 0) {
			hit = c;
			n_hit++;
		}
	}
	if (n_hit > 1 || (!n_hit && n_any > 1))
		return base_err(B->e, -EINVAL, "%s: local '%s' of %s is ambiguous in the base build",
				b->name, s->name, file);
	*ret = n_hit ? hit : (n_any ? any : NULL);
	return 0;
}

/* The base's symbol for s of ob's fixed object.  A local goes through its
 * correlated symbol of the base object (numbered statics are renumbered by
 * patches; the base was built from the base object's source): a local with
 * no counterpart is new, never the base's namesake. */
int elf_build_lookup(ElfBuilder *B, ElfBuildObj *ob, const ElfSymbol *s, const ElfSymbol **ret)
{
	if (s->bind == STB_LOCAL) {
		const ElfSymbol *os = ob->old_of[s->index];
		*ret = NULL;
		return os ? base_local(B, ob->old_o, os, ret) : 0;
	}
	return base_global(B, s, ret);
}

/* The base's own GOT entry for name (GLOB_DAT / JUMP_SLOT), 0 if none. */
uint64_t elf_build_got(const ElfFile *b, const char *name)
{
	for (size_t i = 0; i < b->n_sections; i++) {
		const ElfSection *rs = &b->sections[i];
		if (rs->type != SHT_RELA || !rs->link || rs->link != b->dynsym_index)
			continue;
		for (size_t k = 0; k < rs->n_relas; k++) {
			const ElfRela *r = &rs->relas[k];
			if ((r->type == R_X86_64_GLOB_DAT || r->type == R_X86_64_JUMP_SLOT) && r->sym &&
			    strcmp(b->dynsyms[r->sym].name, name) == 0)
				return r->offset;
		}
	}
	return 0;
}
