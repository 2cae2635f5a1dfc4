/* Object diff: which functions of one translation unit changed between the
 * base and the fixed build, and which data changes make a fix cold-only.
 * Comparison is symbolic: relocation targets are compared by name (or, for
 * anonymous data, by content), never by the offsets the assembler chose, so
 * unrelated layout shifts do not count as changes. */
#include <stdlib.h>
#include <string.h>

#include "elf/internal.h"

int elf_is_got_reloc(uint32_t type)
{
	return type == R_X86_64_GOTPCREL || type == R_X86_64_GOTPCRELX ||
	       type == R_X86_64_REX_GOTPCRELX;
}

int elf_is_pcrel(uint32_t type)
{
	return type == R_X86_64_PC32 || type == R_X86_64_PLT32 || elf_is_got_reloc(type) ||
	       type == R_X86_64_PC64;
}

const char *elf_sym_file(const ElfFile *f, const ElfSymbol *s)
{
	if (s->bind != STB_LOCAL || !s->file || s->file >= f->n_symbols)
		return "";
	return f->symbols[s->file].name;
}

const ElfSection *elf_obj_relsec(const ElfFile *f, uint32_t shndx)
{
	for (size_t i = 0; i < f->n_sections; i++)
		if (f->sections[i].type == SHT_RELA && f->sections[i].info == shndx &&
		    f->sections[i].link == f->symtab_index)
			return &f->sections[i];
	return NULL;
}

/* Assembler-local labels (.LC0, .L5) carry no identity across builds. */
static int is_label(const ElfSymbol *s)
{
	return s->name[0] == '.' && s->name[1] == 'L';
}

int elf_sym_is_named(const ElfSymbol *s)
{
	return s->name[0] && s->type != STT_SECTION && s->type != STT_FILE && !is_label(s);
}

const ElfSymbol *elf_obj_func_of(const ElfFile *f, uint32_t shndx)
{
	const ElfSymbol *found = NULL;
	for (size_t i = 1; i < f->n_symbols; i++) {
		const ElfSymbol *s = &f->symbols[i];
		if (s->shndx == shndx && s->type == STT_FUNC && elf_sym_is_named(s)) {
			if (found)
				return NULL;
			found = s;
		}
	}
	return found;
}

/* BASE_WRAPS: offsets are two's-complement sums; the usual pc-relative
 * addend -4 plus 4 wraps through zero by design (see below). */
BASE_WRAPS int elf_obj_target(const ElfFile *f, const ElfSection *relsec, const ElfRela *r,
			      ElfTarget *ret, BaseErr *e)
{
	(void)relsec;
	if (r->sym == 0 || r->sym >= f->n_symbols)
		return base_err(e, -EBADMSG, "%s: relocation without a symbol", f->name);
	const ElfSymbol *s = &f->symbols[r->sym];
	ElfTarget t = { .sym = NULL, .delta = r->addend, .shndx = s->shndx, .off = 0 };
	int got = elf_is_got_reloc(r->type);

	if (s->shndx != SHN_UNDEF && s->shndx >= f->n_sections)
		return base_err(e, -EINVAL, "%s: reference to absolute or common symbol '%s'",
				f->name, s->name);
	if (elf_sym_is_named(s)) {
		t.sym = s;
		*ret = t;
		return 0;
	}
	if (s->shndx == SHN_UNDEF)
		return base_err(e, -EBADMSG, "%s: reference to an unnamed undefined symbol", f->name);
	if (got)
		return base_err(e, -EINVAL, "%s: GOT reference to a local label", f->name);
	/* Section symbol or label: the offset it designates.  A pc-relative
	 * field is followed by the rest of the instruction, so its addend is
	 * about -4 below the offset meant; look the owner up there. */
	/* a hostile addend may be anything: the sums wrap (two's complement)
	 * instead of overflowing, and a nonsense offset finds no owner */
	int64_t off = (int64_t)((s->type == STT_SECTION ? 0 : s->value) + (uint64_t)r->addend);
	int64_t probe = (int64_t)((uint64_t)off + (elf_is_pcrel(r->type) ? 4u : 0u));
	const ElfSymbol *owner = NULL;
	for (size_t i = 1; i < f->n_symbols; i++) {
		const ElfSymbol *c = &f->symbols[i];
		if (c->shndx != s->shndx || !elf_sym_is_named(c) || c->type == STT_NOTYPE)
			continue;
		if (!owner)
			owner = c;
		if ((int64_t)c->value <= probe && probe < (int64_t)(c->value + (c->size ? c->size : 1))) {
			owner = c;
			break;
		}
	}
	if (owner) {
		t.sym = owner;
		t.delta = (int64_t)((uint64_t)off - owner->value);
	} else {
		t.off = off;
	}
	*ret = t;
	return 0;
}

/* ---- symbolic comparison ------------------------------------------------- */

/* BASE_WRAPS: the offset a pc-relative addend designates is a
 * two's-complement sum (-4 + 4 wraps through zero), as in elf_obj_target. */
BASE_WRAPS static int target_key(const ElfFile *f, const ElfSection *relsec, const ElfRela *r,
				 BaseBuf *b, BaseErr *e)
{
	ElfTarget t;
	int k = elf_obj_target(f, relsec, r, &t, e);
	if (k < 0)
		return k;
	/* numbered statics by stem: elf_correlate pairs them (a renumbering
	 * alone is no change) */
	if (t.sym)
		return base_buf_printf(b, "%u@%llx:%.*s%+lld;", r->type, (unsigned long long)r->offset,
				       t.sym->bind == STB_LOCAL && t.sym->type == STT_OBJECT
					       ? (int)elf_static_stem_len(t.sym->name)
					       : (int)strlen(t.sym->name),
				       t.sym->name, (long long)t.delta);
	const ElfSection *s = &f->sections[t.shndx];
	if ((s->flags & SHF_STRINGS) && s->data) {
		int64_t at = (int64_t)((uint64_t)t.off + (elf_is_pcrel(r->type) ? 4u : 0u));
		if (at >= 0 && (uint64_t)at < s->size) {
			size_t n = strnlen((const char *)s->data + at, s->size - at);
			k = base_buf_printf(b, "%u@%llx:str[", r->type, (unsigned long long)r->offset);
			if (k >= 0)
				k = base_buf_append(b, s->data + at, n);
			return k < 0 ? k : base_buf_printf(b, "];");
		}
	}
	uint32_t crc = s->data ? base_crc32(s->data, s->size) : 0;
	return base_buf_printf(b, "%u@%llx:anon[%s/%llx/%08x]%+lld;", r->type,
			       (unsigned long long)r->offset, s->name, (unsigned long long)s->size,
			       crc, (long long)t.off);
}

/* Relocations of section shndx falling in [lo, hi), as a key string. */
static int relocs_key(const ElfFile *f, uint32_t shndx, uint64_t lo, uint64_t hi, BaseBuf *b,
		      BaseErr *e)
{
	const ElfSection *rs = elf_obj_relsec(f, shndx);
	if (!rs)
		return 0;
	for (size_t i = 0; i < rs->n_relas; i++) {
		const ElfRela *r = &rs->relas[i];
		if (r->offset < lo || r->offset >= hi)
			continue;
		ElfRela rel = *r;
		rel.offset -= lo;
		int k = target_key(f, rs, &rel, b, e);
		if (k < 0)
			return k;
	}
	return 0;
}

/* 1 if the relocations of the two ranges are symbolically the same. */
static int same_relocs(const ElfFile *a, const ElfSymbol *sa, uint64_t la, const ElfFile *b,
		       const ElfSymbol *sb, uint64_t lb, BaseErr *e)
{
	uint64_t oa = sa->value, ob = sb->value;
	BaseBuf ka = { 0 }, kb = { 0 };
	int r = relocs_key(a, sa->shndx, oa, oa + la, &ka, e);
	if (r >= 0)
		r = relocs_key(b, sb->shndx, ob, ob + lb, &kb, e);
	if (r >= 0)
		r = ka.len == kb.len && (!ka.len || memcmp(ka.data, kb.data, ka.len) == 0);
	base_buf_free(&ka);
	base_buf_free(&kb);
	return r;
}

/* 1 if the two ranges hold the same bytes and symbolic relocations. */
static int same_range(const ElfFile *a, const ElfSymbol *sa, uint64_t la, const ElfFile *b,
		      const ElfSymbol *sb, uint64_t lb, BaseErr *e)
{
	if (la != lb)
		return 0;
	const ElfSection *xa = &a->sections[sa->shndx], *xb = &b->sections[sb->shndx];
	uint64_t oa = sa->value, ob = sb->value;
	if (!elf_in_bounds(oa, la, xa->size) || !elf_in_bounds(ob, lb, xb->size))
		return base_err(e, -EBADMSG, "%s: symbol '%s' outside its section", a->name, sa->name);
	for (uint64_t i = 0; i < la; i++) {
		uint8_t ca = xa->data ? xa->data[oa + i] : 0, cb = xb->data ? xb->data[ob + i] : 0;
		if (ca != cb)
			return 0;
	}
	return same_relocs(a, sa, la, b, sb, lb, e);
}


const ElfSymbol *elf_obj_find_like(const ElfFile *f, const ElfSymbol *s)
{
	for (size_t i = 1; i < f->n_symbols; i++) {
		const ElfSymbol *c = &f->symbols[i];
		if (c->shndx != SHN_UNDEF && elf_sym_is_named(c) && c->type == s->type &&
		    (c->bind == STB_LOCAL) == (s->bind == STB_LOCAL) && strcmp(c->name, s->name) == 0)
			return c;
	}
	return NULL;
}

static int check_objects(const ElfFile *o, const char *what, BaseErr *e)
{
	if (o->type != ET_REL)
		return base_err(e, -EINVAL, "%s: %s is not a relocatable object", o->name, what);
	if (!o->symtab_index)
		return base_err(e, -EINVAL, "%s: object has no symbol table", o->name);
	for (size_t i = 1; i < o->n_symbols; i++) {
		const ElfSymbol *s = &o->symbols[i];
		if (s->type == STT_FUNC && elf_sym_is_named(s) && s->shndx < o->n_sections &&
		    s->shndx != SHN_UNDEF && !elf_obj_func_of(o, s->shndx))
			return base_err(e, -EINVAL,
					"%s: functions share section %s: compile with -ffunction-sections",
					o->name, o->sections[s->shndx].name);
	}
	return 0;
}

static int is_data(const ElfFile *f, const ElfSymbol *s)
{
	return (s->type == STT_OBJECT || s->type == STT_TLS) && elf_sym_is_named(s) &&
	       s->shndx != SHN_UNDEF && s->shndx < f->n_sections;
}

static int check_data(const ElfFile *old_o, const ElfFile *new_o, const ElfSymbol **map,
		      BaseErr *e)
{
	for (size_t i = 1; i < new_o->n_symbols; i++) {
		const ElfSymbol *s = &new_o->symbols[i];
		if (!is_data(new_o, s))
			continue;
		const ElfSymbol *o = map[i];
		const ElfSection *sec = &new_o->sections[s->shndx];
		if (!o) {
			if (s->type == STT_TLS)
				return base_err(e, -EINVAL,
						"TLS change: new thread-local '%s': cannot be hotpatched",
						s->name);
			if (sec->flags & SHF_WRITE)
				return base_err(e, -EINVAL,
						"data change: new variable '%s': cannot be hotpatched",
						s->name);
			continue;
		}
		const char *what = s->type == STT_TLS ? "TLS change" : "data change";
		if (o->size != s->size)
			return base_err(e, -EINVAL,
					"%s in '%s': cannot be hotpatched (size %llu -> %llu)", what,
					s->name, (unsigned long long)o->size,
					(unsigned long long)s->size);
		int r = same_range(old_o, o, o->size, new_o, s, s->size, e);
		if (r < 0)
			return r;
		if (!r)
			return base_err(e, -EINVAL, "%s in '%s': cannot be hotpatched", what, s->name);
	}
	for (size_t i = 1; i < old_o->n_symbols; i++) {
		const ElfSymbol *s = &old_o->symbols[i];
		if (is_data(old_o, s) && s->type == STT_TLS && !elf_obj_find_like(new_o, s))
			return base_err(e, -EINVAL,
					"TLS change: thread-local '%s' removed: cannot be hotpatched",
					s->name);
	}
	return 0;
}

int elf_diff_internal(const ElfFile *old_o, const ElfFile *new_o, ElfDiffItem **ret, size_t *ret_n,
		      const ElfSymbol ***ret_map, size_t *ret_line_only, BaseErr *e)
{
	const ElfSymbol **map = NULL;
	ElfDiffItem *items = NULL;
	size_t n = 0, line_only = 0;
	int r = check_objects(old_o, "base object", e);
	if (r >= 0)
		r = check_objects(new_o, "fixed object", e);
	if (r >= 0)
		r = elf_correlate(old_o, new_o, &map, e);
	if (r >= 0)
		r = check_data(old_o, new_o, map, e);
	if (r >= 0 && !(items = calloc(new_o->n_symbols ? new_o->n_symbols : 1, sizeof(*items))))
		r = -ENOMEM;
	for (size_t i = 1; i < new_o->n_symbols && r >= 0; i++) {
		const ElfSymbol *s = &new_o->symbols[i];
		if (s->type != STT_FUNC || !elf_sym_is_named(s) || s->shndx == SHN_UNDEF ||
		    s->shndx >= new_o->n_sections)
			continue;
		const ElfSymbol *o = map[i];
		if (!o) {
			items[n++] = (ElfDiffItem){ s, ELF_CHANGE_NEW };
			continue;
		}
		/* The whole section: the patchable-entry pad before the symbol
		 * belongs to the function too. */
		const ElfSection *so = &old_o->sections[o->shndx], *sn = &new_o->sections[s->shndx];
		ElfSymbol wo = *o, wn = *s;
		wo.value = 0;
		wn.value = 0;
		r = so->size == sn->size && o->value == s->value
			    ? same_range(old_o, &wo, so->size, new_o, &wn, sn->size, e)
			    : 0;
		if (r == 0 && so->size == sn->size && o->value == s->value &&
		    (r = same_relocs(old_o, &wo, so->size, new_o, &wn, sn->size, e)) > 0) {
			r = elf_line_only(old_o, o->shndx, new_o, s->shndx, e);
			line_only += r > 0;
		}
		if (r == 0)
			items[n++] = (ElfDiffItem){ s, ELF_CHANGE_MODIFIED };
	}
	if (r < 0) {
		free(items);
		free(map);
		return r;
	}
	*ret = items;
	*ret_n = n;
	if (ret_map)
		*ret_map = map;
	else
		free(map);
	if (ret_line_only)
		*ret_line_only = line_only;
	return 0;
}

void elf_func_changes_free(ElfFuncChange *c, size_t n)
{
	for (size_t i = 0; c && i < n; i++)
		free(c[i].name);
	free(c);
}

int elf_diff_objects(const ElfFile *old_o, const ElfFile *new_o, ElfFuncChange **ret,
		     size_t *ret_n, BaseErr *e)
{
	ElfDiffItem *items = NULL;
	size_t n = 0;
	int r = elf_diff_internal(old_o, new_o, &items, &n, NULL, NULL, e);
	if (r < 0)
		return r;
	ElfFuncChange *c = calloc(n ? n : 1, sizeof(*c));
	if (!c) {
		free(items);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		c[i] = (ElfFuncChange){ strdup(items[i].sym->name), items[i].change,
					items[i].sym->bind == STB_LOCAL };
		if (!c[i].name) {
			elf_func_changes_free(c, i);
			free(items);
			return -ENOMEM;
		}
	}
	free(items);
	*ret = c;
	*ret_n = n;
	return 0;
}
