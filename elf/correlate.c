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
	const ElfFile *file;
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
			Ref *x = base_grow(v, n, &cap, sizeof(*v), 64);
			if (!x) {
				free(v);
				return -ENOMEM;
			}
			v = x;
			v[n++] = (Ref){ f, rs->info, t.sym };
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* The distinct statics of s's stem and kind that function section shndx
 * uses, in order of first use (at most max). */
static size_t distinct(const Ref *refs, size_t n, uint32_t shndx, const ElfFile *s_file,
		       const ElfSymbol *s, const ElfSymbol **out, size_t max)
{
	size_t m = 0;
	for (size_t i = 0; i < n && m < max; i++) {
		const ElfSymbol *t = refs[i].stat;
		if (refs[i].func_shndx != shndx || !same_stem(t, s) || kind(refs[i].file, t) != kind(s_file, s))
			continue;
		size_t k = 0;
		while (k < m && out[k] != t)
			k++;
		if (k == m)
			out[m++] = t;
	}
	return m;
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
		for (size_t k = 0; k < n_nr && !other; k++) {
			if (nr[k].stat != s)
				continue;
			used = 1;
			const ElfSymbol *f = elf_obj_func_of(new_o, nr[k].func_shndx);
			const ElfSymbol *of = f ? elf_obj_find_like(old_o, f) : NULL;
			if (!of)
				continue;
			/* a function may use several statics of one stem (block-scope
			 * namesakes): pair them by order of first use, when both
			 * builds have as many; otherwise it cannot be told */
			const ElfSymbol *ln[64], *lo[64];
			size_t nn = distinct(nr, n_nr, nr[k].func_shndx, new_o, s, ln, 64);
			size_t no = distinct(or, n_or, of->shndx, new_o, s, lo, 64);
			if (!no)
				continue;
			size_t pos = 0;
			while (pos < nn && ln[pos] != s)
				pos++;
			const ElfSymbol *t = nn == no && pos < nn ? lo[pos] : NULL;
			if (!t) {
				r = base_err(e, -EINVAL,
					     "%s: static '%s' of '%s': %zu statics of that name in the base "
					     "object's function, %zu in the fixed one: ambiguous",
					     new_o->name, s->name, f->name, no, nn);
				break;
			} else if (!found)
				found = t;
			else if (found != t)
				other = t;
		}
		if (r < 0)
			break;
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
