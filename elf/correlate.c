/* Correlating the symbols of the base and fixed objects of one translation
 * unit.  gcc names a function-local static `name.N` with N counting over the
 * whole unit, so a patch that adds one renumbers every later one: by name,
 * unchanged functions would look changed and, worse, fixed code could bind
 * to another function's writable static.  kpatch's create-diff-object
 * correlates them through the functions that use them; so do we: the static
 * `x.M` of the fixed object is the base object's `x.N` that the same
 * function uses, in a section of the same kind.  When that is not unique the
 * build is refused by name, never guessed. */
#include <stdlib.h>
#include <string.h>

#include "elf/internal.h"

size_t elf_static_stem_len(const char *name)
{
	size_t n = strlen(name), k = n;
	while (k > 0 && name[k - 1] >= '0' && name[k - 1] <= '9')
		k--;
	if (k == n || k < 2 || name[k - 1] != '.')
		return n;
	return k - 1;
}

static int is_numbered_static(const ElfSymbol *s)
{
	return s->bind == STB_LOCAL && s->type == STT_OBJECT && elf_sym_is_named(s) &&
	       elf_static_stem_len(s->name) != strlen(s->name);
}

static uint64_t kind(const ElfFile *f, const ElfSymbol *s)
{
	if (s->shndx == SHN_UNDEF || s->shndx >= f->n_sections)
		return ~0ull;
	const ElfSection *x = &f->sections[s->shndx];
	return (x->flags & (SHF_WRITE | SHF_EXECINSTR | SHF_TLS)) | (x->type == SHT_NOBITS ? 1ull << 40 : 0);
}

static int same_stem(const ElfSymbol *a, const ElfSymbol *b)
{
	size_t la = elf_static_stem_len(a->name), lb = elf_static_stem_len(b->name);
	return la == lb && memcmp(a->name, b->name, la) == 0;
}

typedef struct Ref {
	uint32_t func_shndx;     /* section of the using function */
	const ElfSymbol *stat;   /* the numbered static it uses */
} Ref;

/* Every (function section, numbered static) use of f, in one pass. */
static int refs_of(const ElfFile *f, Ref **ret, size_t *ret_n, BaseErr *e)
{
	Ref *v = NULL;
	size_t n = 0, cap = 0;
	for (size_t i = 0; i < f->n_sections; i++) {
		const ElfSection *rs = &f->sections[i];
		if (rs->type != SHT_RELA || rs->link != f->symtab_index || rs->info >= f->n_sections ||
		    !(f->sections[rs->info].flags & SHF_EXECINSTR))
			continue;
		for (size_t k = 0; k < rs->n_relas; k++) {
			ElfTarget t;
			int r = elf_obj_target(f, rs, &rs->relas[k], &t, e);
			if (r < 0) {
				free(v);
				return r;
			}
			if (!t.sym || !is_numbered_static(t.sym))
				continue;
			if (n == cap) {
				cap = cap ? 2 * cap : 64;
				Ref *x = realloc(v, cap * sizeof(*x));
				if (!x) {
					free(v);
					return -ENOMEM;
				}
				v = x;
			}
			v[n++] = (Ref){ rs->info, t.sym };
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int elf_correlate(const ElfFile *old_o, const ElfFile *new_o, const ElfSymbol ***ret, BaseErr *e)
{
	const ElfSymbol **map = calloc(new_o->n_symbols + 1, sizeof(*map));
	Ref *nr = NULL, *or = NULL;
	size_t n_nr = 0, n_or = 0;
	int r = 0;
	if (!map)
		return -ENOMEM;
	r = refs_of(new_o, &nr, &n_nr, e);
	if (r >= 0)
		r = refs_of(old_o, &or, &n_or, e);
	for (size_t i = 1; i < new_o->n_symbols && r >= 0; i++) {
		const ElfSymbol *s = &new_o->symbols[i];
		if (!elf_sym_is_named(s) || s->shndx == SHN_UNDEF)
			continue;
		if (!is_numbered_static(s)) {
			map[i] = elf_obj_find_like(old_o, s);
			continue;
		}
		const ElfSymbol *found = NULL, *other = NULL;
		int used = 0;
		for (size_t k = 0; k < n_nr; k++) {
			if (nr[k].stat != s)
				continue;
			used = 1;
			const ElfSymbol *f = elf_obj_func_of(new_o, nr[k].func_shndx);
			const ElfSymbol *of = f ? elf_obj_find_like(old_o, f) : NULL;
			for (size_t j = 0; of && j < n_or; j++) {
				const ElfSymbol *t = or[j].stat;
				if (or[j].func_shndx != of->shndx || !same_stem(t, s) ||
				    kind(old_o, t) != kind(new_o, s))
					continue;
				if (!found)
					found = t;
				else if (found != t)
					other = t;
			}
		}
		if (other)
			r = base_err(e, -EINVAL,
				     "%s: static '%s' matches both '%s' and '%s' of the base object: "
				     "ambiguous", new_o->name, s->name, found->name, other->name);
		else if (found)
			map[i] = found;
		else if (!used)
			map[i] = elf_obj_find_like(old_o, s); /* unused: only its bytes matter */
	}
	/* one old static per new one: two that collapse are ambiguous too */
	for (size_t i = 1; i < new_o->n_symbols && r >= 0; i++)
		for (size_t k = i + 1; k < new_o->n_symbols && r >= 0 && map[i]; k++)
			if (map[k] == map[i] && is_numbered_static(&new_o->symbols[i]))
				r = base_err(e, -EINVAL,
					     "%s: statics '%s' and '%s' both match '%s' of the base "
					     "object: ambiguous", new_o->name, new_o->symbols[i].name,
					     new_o->symbols[k].name, map[i]->name);
	free(nr);
	free(or);
	if (r < 0) {
		free(map);
		return r;
	}
	*ret = map;
	return 0;
}
