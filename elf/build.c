/* Payload building: the changed and new functions of the fixed objects, the
 * read-only data they use, and relocations bound to the *base build* (the
 * linked file as installed), so that fixed code works on the running
 * instance of every variable.
 *
 * Phases: (1) diff each object pair and collect the sections to copy
 * (closure over relocations: anything the base lacks is copied, read-only
 * only); (2) lay the sections out in the blob; (3) classify every relocation
 * (a dry run that records the slots and stubs needed); (4) lay out slots and
 * stubs after the sections, emit the relocations; (5) redirects (redirect.c), with the
 * expected bytes read from the base file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elf/internal.h"


/* Where a target lives. */
typedef enum Loc { LOC_PAYLOAD = 1, LOC_BASE, LOC_EXTERNAL } Loc;

typedef struct Place {
	Loc loc;
	uint64_t value;          /* PAYLOAD: blob offset; BASE: vaddr */
	int64_t addend;          /* to add to value (symbol delta) */
	const char *name;        /* the symbol, for GOT lookups and messages */
	int global;              /* name is resolved dynamically (GOT lookup makes sense) */
	uint64_t got;            /* base GOT entry for name, 0 if none */
} Place;

/* ---- phase 1: what to copy ---------------------------------------------- */

static int is_payload_func(const ElfBuildObj *ob, const ElfSymbol *s)
{
	for (size_t i = 0; i < ob->n_changes; i++)
		if (ob->changes[i].sym == s)
			return 1;
	return 0;
}

static int include_section(ElfBuilder *B, ElfBuildObj *ob, uint32_t shndx, uint32_t *stack, size_t *sp)
{
	(void)B;
	if (ob->incl[shndx])
		return 0;
	ob->incl[shndx] = 1;
	stack[(*sp)++] = shndx;
	return 0;
}

/* Decide whether the target of r must be copied; push its section if so. */
static int close_over(ElfBuilder *B, ElfBuildObj *ob, const ElfSection *rs, const ElfRela *r, uint32_t *stack,
		      size_t *sp)
{
	const ElfFile *o = ob->new_o;
	ElfTarget t;
	int k = elf_obj_target(o, rs, r, &t, B->e);
	if (k < 0)
		return k;
	if (t.shndx == SHN_UNDEF || t.shndx >= o->n_sections)
		return 0;
	const ElfSection *sec = &o->sections[t.shndx];
	if (!(sec->flags & SHF_ALLOC))
		return 0;
	if (sec->flags & SHF_TLS)
		return base_err(B->e, -EINVAL, "%s: thread-local '%s' used by fixed code: cannot be hotpatched",
				o->name, t.sym ? t.sym->name : sec->name);
	if (!t.sym) {
		if (sec->flags & SHF_WRITE)
			return base_err(B->e, -EINVAL,
					"%s: fixed code uses anonymous writable data in %s: cannot be hotpatched",
					o->name, sec->name);
		return include_section(B, ob, t.shndx, stack, sp);
	}
	if (sec->flags & SHF_EXECINSTR) {
		if (is_payload_func(ob, t.sym))
			return include_section(B, ob, t.shndx, stack, sp);
	}
	const ElfSymbol *bs = NULL;
	k = elf_build_lookup(B, ob, t.sym, &bs);
	if (k < 0)
		return k;
	if (bs)
		return 0;
	if (sec->flags & SHF_WRITE)
		return base_err(B->e, -EINVAL,
				"%s: variable '%s' not found in the base build%s%s%s: cannot be hotpatched",
				o->name, t.sym->name, B->no_symbols ? " (" : "",
				B->no_symbols ? B->no_symbols : "", B->no_symbols ? ")" : "");
	return include_section(B, ob, t.shndx, stack, sp);
}

static int collect(ElfBuilder *B, ElfBuildObj *ob)
{
	const ElfFile *o = ob->new_o;
	uint32_t *stack = calloc(o->n_sections + 1, sizeof(uint32_t));
	size_t sp = 0;
	int r = 0;
	if (!stack)
		return -ENOMEM;
	for (size_t i = 0; i < ob->n_changes; i++)
		include_section(B, ob, ob->changes[i].sym->shndx, stack, &sp);
	while (sp > 0 && r >= 0) {
		uint32_t shndx = stack[--sp];
		const ElfSection *rs = elf_obj_relsec(o, shndx);
		for (size_t i = 0; rs && i < rs->n_relas && r >= 0; i++)
			r = close_over(B, ob, rs, &rs->relas[i], stack, &sp);
	}
	free(stack);
	return r;
}

/* ---- phase 3/4: relocations ---------------------------------------------- */

static const ElfSymbol *payload_global(ElfBuilder *B, const char *name, ElfBuildObj **ret_ob)
{
	for (size_t i = 0; i < B->n_objs; i++) {
		ElfBuildObj *ob = &B->objs[i];
		for (size_t k = 1; k < ob->new_o->n_symbols; k++) {
			const ElfSymbol *s = &ob->new_o->symbols[k];
			if (s->bind != STB_LOCAL && s->shndx != SHN_UNDEF &&
			    s->shndx < ob->new_o->n_sections && ob->incl[s->shndx] &&
			    strcmp(s->name, name) == 0) {
				*ret_ob = ob;
				return s;
			}
		}
	}
	return NULL;
}

static int place_of(ElfBuilder *B, ElfBuildObj *ob, const ElfSection *rs, const ElfRela *r, Place *ret)
{
	const ElfFile *o = ob->new_o;
	ElfTarget t;
	int k = elf_obj_target(o, rs, r, &t, B->e);
	if (k < 0)
		return k;
	Place p = { 0 };
	if (!t.sym) {
		p = (Place){ LOC_PAYLOAD, ob->blob_off[t.shndx], t.off, o->sections[t.shndx].name,
			     0, 0 };
		*ret = p;
		return 0;
	}
	const ElfSymbol *s = t.sym;
	p.name = s->name;
	p.addend = t.delta;
	p.global = s->bind != STB_LOCAL && s->visibility == STV_DEFAULT;
	if (p.global)
		p.got = elf_build_got(B->base, s->name);
	if (s->shndx != SHN_UNDEF && ob->incl[s->shndx]) {
		p.loc = LOC_PAYLOAD;
		p.value = ob->blob_off[s->shndx] + s->value;
		*ret = p;
		return 0;
	}
	ElfBuildObj *other = NULL;
	const ElfSymbol *ps = s->bind != STB_LOCAL ? payload_global(B, s->name, &other) : NULL;
	if (ps) {
		p.loc = LOC_PAYLOAD;
		p.value = other->blob_off[ps->shndx] + ps->value;
		*ret = p;
		return 0;
	}
	const ElfSymbol *bs = NULL;
	k = elf_build_lookup(B, ob, s, &bs);
	if (k < 0)
		return k;
	if (bs) {
		p.loc = LOC_BASE;
		p.value = bs->value;
		if (s->type == STT_FUNC && s->shndx != SHN_UNDEF)
			ob->bound[s->index] = bs;
	} else {
		if (s->shndx != SHN_UNDEF)
			return base_err(B->e, -EINVAL, "%s: '%s' is neither in the base nor copied",
					o->name, s->name);
		p.loc = LOC_EXTERNAL;
	}
	*ret = p;
	return 0;
}

static int add_indirect(ElfBuilder *B, ElfIndirect x, size_t *ret)
{
	for (size_t i = 0; i < B->n_ind; i++) {
		ElfIndirect *y = &B->ind[i];
		if (y->bind == x.bind && y->value == x.value && y->addend == x.addend &&
		    y->stub == x.stub && y->via_slot == x.via_slot && y->base_got == x.base_got &&
		    ((!y->symbol && !x.symbol) ||
		     (y->symbol && x.symbol && strcmp(y->symbol, x.symbol) == 0))) {
			*ret = i;
			return 0;
		}
	}
	ElfIndirect *v = base_grow(B->ind, B->n_ind, &B->cap_ind, sizeof(*B->ind), 16);
	if (!v)
		return -ENOMEM;
	B->ind = v;
	B->ind[B->n_ind] = x;
	*ret = B->n_ind++;
	return 0;
}

static int emit(ElfBuilder *B, ElfReloc r, int dry)
{
	if (dry)
		return 0;
	if (B->n_relocs == B->cap_relocs) {
		size_t cap = B->cap_relocs ? 2 * B->cap_relocs : 32;
		ElfReloc *n = realloc(B->relocs, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		B->relocs = n;
		B->cap_relocs = cap;
	}
	if (r.symbol) {
		r.symbol = strdup(r.symbol);
		if (!r.symbol)
			return -ENOMEM;
	}
	B->relocs[B->n_relocs++] = r;
	return 0;
}

/* Slots and stubs are laid out after the sections: slots first (8 bytes),
 * then stubs (8 bytes each: ff 25 rel32 + 2 x int3); the index order is the
 * order of first use, so the layout is deterministic. */
static uint64_t ind_off(const ElfBuilder *B, size_t i)
{
	size_t slot_i = 0, stub_i = 0;
	for (size_t k = 0; k < i; k++)
		B->ind[k].stub ? stub_i++ : slot_i++;
	return B->ind[i].stub ? B->stubs_off + 8 * stub_i : B->slots_off + 8 * slot_i;
}

static int direct(ElfBuilder *B, uint64_t where, uint32_t type, const Place *p, int64_t addend,
		  int dry)
{
	ElfReloc x = { where, type, 0, 0, NULL, addend };
	switch (p->loc) {
	case LOC_PAYLOAD:
		x.bind = ELF_BIND_PAYLOAD;
		x.value = p->value;
		break;
	case LOC_BASE:
		x.bind = ELF_BIND_BASE;
		x.value = p->value;
		break;
	default:
		x.bind = ELF_BIND_SYMBOL;
		x.symbol = (char *)p->name;
		break;
	}
	return emit(B, x, dry);
}

/* An 8-byte slot holding the address of p; returns its index. */
static int slot_for(ElfBuilder *B, const Place *p, size_t *ret)
{
	ElfIndirect x = { 0 };
	x.bind = p->loc == LOC_PAYLOAD ? ELF_BIND_PAYLOAD
		 : p->loc == LOC_BASE  ? ELF_BIND_BASE
				       : ELF_BIND_SYMBOL;
	x.value = p->loc == LOC_EXTERNAL ? 0 : p->value;
	x.addend = p->loc == LOC_EXTERNAL ? 0 : p->addend;
	x.symbol = p->loc == LOC_EXTERNAL ? p->name : NULL;
	return add_indirect(B, x, ret);
}

static int do_reloc(ElfBuilder *B, ElfBuildObj *ob, const ElfSection *rs, const ElfRela *r, int dry)
{
	const ElfFile *o = ob->new_o;
	const ElfSection *sec = &o->sections[rs->info];
	uint64_t where = ob->blob_off[rs->info] + r->offset;
	uint32_t type = r->type;
	Place p = { 0 };
	size_t idx;
	int k;

	switch (type) {
	case R_X86_64_PC32:
	case R_X86_64_PLT32:
	case R_X86_64_64:
	case R_X86_64_GOTPCREL:
	case R_X86_64_GOTPCRELX:
	case R_X86_64_REX_GOTPCRELX:
		break;
	case R_X86_64_32:
	case R_X86_64_32S:
		return base_err(B->e, -EINVAL,
				"%s: absolute 32-bit relocation in %s: compile with -fPIC or -fPIE",
				o->name, sec->name);
	case R_X86_64_TLSGD:
	case R_X86_64_TLSLD:
	case R_X86_64_GOTTPOFF:
	case R_X86_64_TPOFF32:
	case R_X86_64_DTPOFF32:
	case R_X86_64_GOTPC32_TLSDESC:
	case R_X86_64_TLSDESC_CALL:
		return base_err(B->e, -EINVAL, "%s: %s uses thread-local storage: cannot be hotpatched",
				o->name, sec->name);
	default:
		return base_err(B->e, -EINVAL, "%s: relocation type %u in %s not supported", o->name,
				type, sec->name);
	}
	if (!elf_in_bounds(r->offset, type == R_X86_64_64 ? 8 : 4, sec->size))
		return base_err(B->e, -EBADMSG, "%s: relocation outside %s", o->name, sec->name);
	k = place_of(B, ob, rs, r, &p);
	if (k < 0)
		return k;

	if (elf_is_got_reloc(type)) {
		/* G + GOT + A - P: the addend belongs to the instruction, the
		 * GOT entry (or our slot, or the relaxed lea) holds S itself. */
		p.addend = 0;
		/* The base's own GOT entry: the same instance the base uses, even
		 * when the variable was copy-relocated into the executable. */
		if (p.got && p.loc != LOC_PAYLOAD) {
			Place g = { LOC_BASE, p.got, 0, p.name, 0, 0 };
			return direct(B, where, R_X86_64_PC32, &g, r->addend, dry);
		}
		/* `mov X@GOTPCREL(%rip), %reg` -> `lea X(%rip), %reg`, as ld relaxes. */
		if (p.loc != LOC_EXTERNAL && type != R_X86_64_GOTPCREL && r->offset >= 2 &&
		    sec->data[r->offset - 2] == 0x8b) {
			if (!dry)
				B->code.data[where - 2] = 0x8d;
			return direct(B, where, R_X86_64_PC32, &p, r->addend, dry);
		}
		k = slot_for(B, &p, &idx);
		if (k < 0)
			return k;
		Place s = { LOC_PAYLOAD, dry ? 0 : ind_off(B, idx), 0, NULL, 0, 0 };
		return direct(B, where, R_X86_64_PC32, &s, r->addend, dry);
	}
	if (type == R_X86_64_64) {
		if (p.loc == LOC_EXTERNAL)
			return direct(B, where, R_X86_64_64, &p, r->addend, dry);
		return direct(B, where, R_X86_64_64, &p, p.addend, dry);
	}
	/* PC32 / PLT32 */
	if (p.loc == LOC_PAYLOAD)
		return direct(B, where, R_X86_64_PC32, &p, p.addend, dry);
	if (type == R_X86_64_PLT32 && (p.got || p.loc == LOC_EXTERNAL)) {
		/* A call through the base's GOT entry keeps lazy binding and
		 * interposition as the base has them; an import the base lacks
		 * gets a slot that the patcher fills by name. */
		ElfIndirect st = { 0 };
		st.stub = 1;
		if (p.got) {
			st.base_got = 1;
			st.value = p.got;
		} else {
			size_t sl;
			k = slot_for(B, &p, &sl);
			if (k < 0)
				return k;
			st.via_slot = sl;
		}
		k = add_indirect(B, st, &idx);
		if (k < 0)
			return k;
		Place s = { LOC_PAYLOAD, dry ? 0 : ind_off(B, idx), 0, NULL, 0, 0 };
		return direct(B, where, R_X86_64_PC32, &s, r->addend, dry);
	}
	if (p.loc == LOC_EXTERNAL)
		return base_err(B->e, -EINVAL,
				"%s: '%s' is not defined in the base build%s%s%s and is referenced "
				"pc-relatively", o->name, p.name, B->no_symbols ? " (" : "",
				B->no_symbols ? B->no_symbols : "", B->no_symbols ? ")" : "");
	return direct(B, where, R_X86_64_PC32, &p, p.addend, dry);
}

static int for_all_relocs(ElfBuilder *B, int dry)
{
	for (size_t i = 0; i < B->n_objs; i++) {
		ElfBuildObj *ob = &B->objs[i];
		for (uint32_t s = 0; s < ob->new_o->n_sections; s++) {
			if (!ob->incl[s])
				continue;
			const ElfSection *rs = elf_obj_relsec(ob->new_o, s);
			for (size_t k = 0; rs && k < rs->n_relas; k++) {
				int r = do_reloc(B, ob, rs, &rs->relas[k], dry);
				if (r < 0)
					return r;
			}
		}
	}
	return 0;
}

static int layout(ElfBuilder *B)
{
	static const uint8_t int3[16] = { 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
					  0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc };
	B->align = 16;
	for (size_t i = 0; i < B->n_objs; i++) {
		ElfBuildObj *ob = &B->objs[i];
		for (uint32_t s = 0; s < ob->new_o->n_sections; s++) {
			if (!ob->incl[s])
				continue;
			const ElfSection *sec = &ob->new_o->sections[s];
			uint64_t a = sec->align > 1 ? sec->align : 1;
			if (a > 4096)
				return base_err(B->e, -EINVAL, "%s: section %s alignment too large",
						ob->new_o->name, sec->name);
			if (a > B->align)
				B->align = (uint32_t)a;
			while (B->code.len % a) {
				int r = base_buf_append(&B->code, int3, 1);
				if (r < 0)
					return r;
			}
			ob->blob_off[s] = B->code.len;
			int r = sec->type == SHT_NOBITS || !sec->data ? 0 : base_buf_append(&B->code, sec->data, sec->size);
			if (r < 0)
				return r;
			if (sec->type == SHT_NOBITS)
				return base_err(B->e, -EINVAL, "%s: section %s holds no bytes", ob->new_o->name,
						sec->name);
		}
	}
	B->sections_end = B->code.len;
	return 0;
}

static int layout_indirect(ElfBuilder *B)
{
	static const uint8_t zero[8];
	static const uint8_t stub[8] = { 0xff, 0x25, 0, 0, 0, 0, 0xcc, 0xcc };
	while (B->code.len % 8)
		if (base_buf_append(&B->code, "\xcc", 1) < 0)
			return -ENOMEM;
	B->slots_off = B->code.len;
	size_t n_slots = 0;
	for (size_t i = 0; i < B->n_ind; i++)
		n_slots += !B->ind[i].stub;
	B->stubs_off = B->slots_off + 8 * n_slots;
	for (size_t i = 0; i < B->n_ind; i++)
		if (!B->ind[i].stub && base_buf_append(&B->code, zero, 8) < 0)
			return -ENOMEM;
	for (size_t i = 0; i < B->n_ind; i++)
		if (B->ind[i].stub && base_buf_append(&B->code, stub, 8) < 0)
			return -ENOMEM;
	for (size_t i = 0; i < B->n_ind; i++) {
		const ElfIndirect *x = &B->ind[i];
		uint64_t off = ind_off(B, i);
		int r;
		if (!x->stub) {
			Place p = { x->bind == ELF_BIND_PAYLOAD ? LOC_PAYLOAD
				    : x->bind == ELF_BIND_BASE  ? LOC_BASE
								: LOC_EXTERNAL,
				    x->value, x->addend, x->symbol, 0, 0 };
			r = direct(B, off, R_X86_64_64, &p, x->addend, 0);
		} else if (x->base_got) {
			Place p = { LOC_BASE, x->value, 0, NULL, 0, 0 };
			r = direct(B, off + 2, R_X86_64_PC32, &p, -4, 0);
		} else {
			Place p = { LOC_PAYLOAD, ind_off(B, x->via_slot), 0, NULL, 0, 0 };
			r = direct(B, off + 2, R_X86_64_PC32, &p, -4, 0);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- entry point --------------------------------------------------------- */

static void builder_free(ElfBuilder *B)
{
	/* n_objs is set only once objs is allocated; the analyzer loses that
	 * across base_symbols(), so the test is spelt out */
	for (size_t i = 0; B->objs && i < B->n_objs; i++) {
		elf_close(B->objs[i].old_o);
		elf_close(B->objs[i].new_o);
		free(B->objs[i].incl);
		free(B->objs[i].blob_off);
		free(B->objs[i].changes);
		free(B->objs[i].old_of);
		free(B->objs[i].bound);
	}
	free(B->objs);
	for (size_t i = 0; i < B->n_relocs; i++)
		free(B->relocs[i].symbol);
	free(B->relocs);
	free(B->ind);
	base_buf_free(&B->code);
	elf_close(B->base);
}

/* The base's full symbol table: its own, else its debug file's. */
static int base_symbols(ElfBuilder *B, const char *base_path, const ElfBuildOptions *opts,
			ElfBuildStats *st)
{
	if (B->base->n_symbols) {
		st->symbols = ELF_SYMS_FILE;
		return 0;
	}
	ElfFile *dbg = NULL;
	char *where = NULL;
	BaseErr why = { 0 };
	int r = elf_find_debug_file(B->base, base_path, opts, &dbg, &st->symbols, &where, &why);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		/* go on with .dynsym: every change that needs more is refused by
		 * name, with this reason */
		st->symbols = ELF_SYMS_NONE;
		snprintf(B->no_symbols_buf, sizeof(B->no_symbols_buf), "stripped, %s", why.msg);
		B->no_symbols = B->no_symbols_buf;
		return 0;
	}
	snprintf(st->symbols_path, sizeof(st->symbols_path), "%s", where);
	free(where);
	return elf_attach_symbols(B->base, dbg, B->e);
}

/* Every unchanged function of a base object that fixed code calls into. */
static int verify_bound(ElfBuilder *B, ElfBuildStats *st)
{
	for (size_t i = 0; i < B->n_objs; i++) {
		ElfBuildObj *ob = &B->objs[i];
		for (size_t k = 1; k < ob->new_o->n_symbols; k++) {
			const ElfSymbol *os = ob->old_of[k];
			if (!B->verify || !ob->bound[k] || !os || os->shndx >= ob->old_o->n_sections)
				continue;
			int r = elf_verify_function(B->base, ob->bound[k], ob->old_o, os, B->e);
			if (r < 0)
				return r;
			st->n_verified++;
		}
	}
	return 0;
}

int elf_build_payload_opts(const char *base_path, const ElfObjectPair *pairs, size_t n_pairs,
			   const char *fix_id, char *const *lineage, size_t n_lineage,
			   const ElfBuildOptions *opts, ElfPayload **ret, ElfBuildStats *ret_stats,
			   BaseErr *e)
{
	ElfBuilder B = { .e = e, .verify = n_lineage == 0 };
	ElfBuildStats st = { 0 };
	ElfPayload *p = NULL;
	size_t total = 0;
	int r;

	if (!fix_id || !fix_id[0] || n_pairs == 0)
		return base_err(e, -EINVAL, "payload: a fix id and at least one object pair are needed");
	r = elf_open_path(base_path, &B.base, e);
	if (r < 0)
		goto out;
	if (B.base->type == ET_REL) {
		r = base_err(e, -EINVAL, "%s: base must be a linked file", base_path);
		goto out;
	}
	if (elf_find_section(B.base, ".note.svc.lineage")) {
		r = base_err(e, -EINVAL, "%s: base is a coldpatch: build against the base build",
			     base_path);
		goto out;
	}
	if (!B.base->build_id_len) {
		r = base_err(e, -EINVAL, "%s: base has no GNU build-id", base_path);
		goto out;
	}
	r = base_symbols(&B, base_path, opts, &st);
	if (r < 0)
		goto out;
	B.objs = calloc(n_pairs, sizeof(ElfBuildObj));
	if (!B.objs) {
		r = -ENOMEM;
		goto out;
	}
	B.n_objs = n_pairs;
	for (size_t i = 0; i < n_pairs; i++) {
		ElfBuildObj *ob = &B.objs[i];
		size_t line_only = 0;
		r = elf_open_path(pairs[i].old_path, &ob->old_o, e);
		if (r >= 0)
			r = elf_open_path(pairs[i].new_path, &ob->new_o, e);
		if (r >= 0)
			r = elf_diff_internal(ob->old_o, ob->new_o, &ob->changes, &ob->n_changes,
					      &ob->old_of, &line_only, e);
		if (r < 0)
			goto out;
		ob->incl = calloc(ob->new_o->n_sections + 1, 1);
		ob->blob_off = calloc(ob->new_o->n_sections + 1, sizeof(uint64_t));
		ob->bound = calloc(ob->new_o->n_symbols + 1, sizeof(*ob->bound));
		if (!ob->incl || !ob->blob_off || !ob->bound) {
			r = -ENOMEM;
			goto out;
		}
		total += ob->n_changes;
		st.n_line_only += line_only;
		for (size_t k = 0; k < ob->n_changes; k++) {
			st.n_changed += ob->changes[k].change == ELF_CHANGE_MODIFIED;
			st.n_new += ob->changes[k].change == ELF_CHANGE_NEW;
		}
	}
	if (total == 0) {
		r = base_err(e, -EINVAL, "payload: no function changed%s",
			     st.n_line_only ? " (only __LINE__ constants moved)" : "");
		goto out;
	}
	for (size_t i = 0; i < n_pairs && r >= 0; i++)
		r = collect(&B, &B.objs[i]);
	if (r >= 0)
		r = layout(&B);
	if (r >= 0)
		r = for_all_relocs(&B, 1);
	if (r >= 0)
		r = layout_indirect(&B);
	if (r >= 0)
		r = for_all_relocs(&B, 0);
	if (r >= 0)
		r = verify_bound(&B, &st);
	if (r < 0)
		goto out;

	p = calloc(1, sizeof(*p));
	if (!p || !(p->fix_id = strdup(fix_id)) ||
	    !(p->lineage = calloc(n_lineage ? n_lineage : 1, sizeof(char *))) ||
	    !(p->redirects = calloc(total, sizeof(ElfRedirect)))) {
		r = -ENOMEM;
		goto out;
	}
	for (; p->n_lineage < n_lineage; p->n_lineage++)
		if (!(p->lineage[p->n_lineage] = strdup(lineage[p->n_lineage]))) {
			r = -ENOMEM;
			goto out;
		}
	memcpy(p->build_id, B.base->build_id, B.base->build_id_len);
	p->build_id_len = B.base->build_id_len;
	for (size_t i = 0; i < n_pairs; i++) {
		for (size_t k = 0; k < B.objs[i].n_changes; k++) {
			int have = 0;
			r = elf_build_redirect(&B, &B.objs[i], &B.objs[i].changes[k],
					  &p->redirects[p->n_redirects], &have);
			if (r < 0)
				goto out;
			p->n_redirects += have;
			st.n_verified += have && B.verify;
		}
	}
	/* new code nothing jumps to changes nothing: never a "fix" that way */
	if (!p->n_redirects) {
		r = base_err(e, -EINVAL, "%s: no changed function of the fix has an entry in the base "
			     "to redirect: the payload would change nothing", base_path);
		goto out;
	}
	p->code_align = B.align;
	p->code_len = B.code.len;
	p->code = BASE_TAKE_PTR(B.code.data);
	B.code.len = B.code.cap = 0;
	p->relocs = BASE_TAKE_PTR(B.relocs);
	p->n_relocs = B.n_relocs;
	B.n_relocs = 0;
	*ret = BASE_TAKE_PTR(p);
	if (ret_stats)
		*ret_stats = st;
	r = 0;
out:
	elf_payload_free(p);
	builder_free(&B);
	return r;
}

int elf_build_payload(const char *base_path, const ElfObjectPair *pairs, size_t n_pairs,
		      const char *fix_id, char *const *lineage, size_t n_lineage,
		      ElfPayload **ret, BaseErr *e)
{
	return elf_build_payload_opts(base_path, pairs, n_pairs, fix_id, lineage, n_lineage, NULL,
				      ret, NULL, e);
}
