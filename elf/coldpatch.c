/* Coldpatch synthesis: base file + payload -> the base file with one more
 * PT_LOAD appended.  Every byte of the input stays at its offset except the
 * ELF header fields that locate the tables, PT_PHDR, and the redirect
 * windows; the new program header table lives in the new segment (the old
 * one has no room for another entry), the new section header table after
 * it.  Layout and reasons: docs/format-payload.md. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elf/internal.h"

#define PAGE 4096u

static int fits32(int64_t v)
{
	return v >= INT32_MIN && v <= INT32_MAX;
}

static int check_lineage(const ElfFile *f, const ElfPayload *p, const ElfLineage *l, BaseErr *e)
{
	if (f->build_id_len != p->build_id_len ||
	    memcmp(f->build_id, p->build_id, p->build_id_len) != 0 ||
	    l->build_id_len != p->build_id_len ||
	    memcmp(l->build_id, p->build_id, p->build_id_len) != 0)
		return base_err(e, -ESTALE, "%s: build-id does not match the payload's base build",
				f->name);
	for (size_t i = 0; i < l->n_fixes; i++)
		if (strcmp(l->fixes[i], p->fix_id) == 0)
			return base_err(e, -EEXIST, "%s: fix %s is already applied", f->name, p->fix_id);
	int same = l->n_fixes == p->n_lineage;
	for (size_t i = 0; same && i < l->n_fixes; i++)
		same = strcmp(l->fixes[i], p->lineage[i]) == 0;
	if (!same)
		return base_err(e, -ESTALE,
				"%s: fix %s needs %zu earlier fix(es) %s%s, the file has %zu applied",
				f->name, p->fix_id, p->n_lineage, p->n_lineage ? p->lineage[0] : "",
				p->n_lineage > 1 ? "..." : "", l->n_fixes);
	return 0;
}

/* The window holds the base bytes, or the jump an earlier coldpatch wrote. */
static int window_ok(const ElfRedirect *d, const uint8_t *w, int stacked)
{
	if (memcmp(w, d->expect, d->expect_len) == 0)
		return 1;
	return stacked && elf_jump_decode(d->kind, d->pad, d->entry - d->pad, d->expect, w, NULL);
}

static int write_redirect(const ElfFile *f, const ElfRedirect *d, uint64_t new_entry, uint8_t *out,
			  int stacked, BaseErr *e)
{
	uint64_t off;
	if (elf_vaddr_to_offset(f, d->entry - d->pad, d->expect_len, &off) < 0)
		return base_err(e, -ESTALE, "%s: entry of '%s' is not in the file", f->name, d->name);
	uint8_t *w = out + off;
	if (!window_ok(d, w, stacked))
		return base_err(e, -ESTALE, "%s: bytes at '%s' are not the expected ones", f->name,
				d->name);
	/* the pad bytes the jump leaves are the base's (a stacked window may
	 * hold an earlier jump there) */
	memcpy(w, d->expect, d->expect_len);
	if (elf_jump_encode(d->kind, d->pad, d->entry - d->pad, new_entry, false, w) < 0)
		return base_err(e, -ERANGE, "%s: new code of '%s' out of rel32 reach", f->name, d->name);
	return 0;
}

/* BASE_WRAPS: S + A - P in two's complement (a negative addend, a target
 * below the place); the result is range-checked as signed afterwards. */
BASE_WRAPS static int relocate(const ElfFile *f, const ElfPayload *p, uint64_t blob_vaddr,
			       uint8_t *blob, BaseErr *e)
{
	for (size_t i = 0; i < p->n_relocs; i++) {
		const ElfReloc *r = &p->relocs[i];
		uint64_t S;
		switch (r->bind) {
		case ELF_BIND_BASE:
			S = r->value;
			break;
		case ELF_BIND_PAYLOAD:
			S = blob_vaddr + r->value;
			break;
		default:
			return base_err(e, -EINVAL,
					"%s: fix %s needs '%s', which the base does not import: it cannot be coldpatched",
					f->name, p->fix_id, r->symbol ? r->symbol : "?");
		}
		uint64_t P = blob_vaddr + r->where;
		if (r->type == R_X86_64_PC32) {
			int64_t v = (int64_t)(S + (uint64_t)r->addend - P);
			if (!fits32(v))
				return base_err(e, -ERANGE, "%s: relocation %zu out of PC32 reach", f->name, i);
			elf_wr32(blob + r->where, (uint32_t)(int32_t)v);
		} else {
			if (f->type != ET_EXEC)
				return base_err(e, -EINVAL,
						"%s: fix %s holds an absolute address: it cannot be coldpatched into a position-independent file",
						f->name, p->fix_id);
			elf_wr64(blob + r->where, S + (uint64_t)r->addend);
		}
	}
	return 0;
}

static int append_zeros(BaseBuf *b, size_t upto)
{
	static const uint8_t z[256];
	while (b->len < upto) {
		size_t n = upto - b->len < sizeof(z) ? upto - b->len : sizeof(z);
		int r = base_buf_append(b, z, n);
		if (r < 0)
			return r;
	}
	return 0;
}

int elf_coldpatch(const uint8_t *base, size_t base_len, const ElfPayload *p, BaseBuf *ret,
		  BaseErr *e)
{
	ElfFile *f = NULL;
	ElfLineage lin = { 0 };
	BaseBuf out = { 0 }, note = { 0 };
	int r = elf_payload_check(p, e);
	if (r < 0)
		return r;
	r = elf_open_mem(base, base_len, "base", &f, e);
	if (r < 0)
		return r;
	if (f->type != ET_DYN && f->type != ET_EXEC) {
		r = base_err(e, -EINVAL, "base: not an executable or shared library");
		goto out;
	}
	if (!f->n_sections || !f->n_segments || f->shoff == 0 ||
	    elf_rd16(base + offsetof(Elf64_Ehdr, e_shstrndx)) == SHN_UNDEF) {
		r = base_err(e, -EINVAL, "base: needs program and section headers");
		goto out;
	}
	r = elf_lineage(f, &lin, e);
	if (r >= 0)
		r = check_lineage(f, p, &lin, e);
	if (r < 0)
		goto out;

	/* Where the segment goes: after every byte and every mapped address,
	 * with vaddr - offset equal to the first PT_LOAD's, so that kernels
	 * computing AT_PHDR as load_addr + e_phoff agree with those that
	 * look the table up in its segment. */
	const ElfSegment *first = NULL;
	uint64_t max_end = 0;
	size_t last_load = 0;
	for (size_t i = 0; i < f->n_segments; i++) {
		const ElfSegment *s = &f->segments[i];
		if (s->type != PT_LOAD)
			continue;
		if (!first)
			first = s;
		last_load = i;
		if (s->vaddr + s->memsz > max_end)
			max_end = s->vaddr + s->memsz;
	}
	if (!first || first->vaddr < first->offset || (first->vaddr - first->offset) % PAGE) {
		r = base_err(e, -EINVAL, "base: unexpected first PT_LOAD");
		goto out;
	}
	uint64_t delta = first->vaddr - first->offset;
	/* The gap up to the new segment is zero-filled in the file: a huge
	 * address span (damaged or hostile) must not make a huge file. */
	if (max_end - delta > ELF_MAX_FILE) {
		r = base_err(e, -EBADMSG, "base: segments span more than %u bytes", ELF_MAX_FILE);
		goto out;
	}
	uint64_t seg_off = elf_align_up(base_len > max_end - delta ? base_len : max_end - delta, PAGE);
	uint64_t seg_vaddr = seg_off + delta;
	size_t n_ph = f->n_segments + 1;
	uint64_t blob_align = p->code_align > 16 ? p->code_align : 16;
	uint64_t blob_rel = elf_align_up(n_ph * sizeof(Elf64_Phdr), blob_align);
	uint64_t note_rel = elf_align_up(blob_rel + p->code_len, 8);

	/* The lineage note: base build-id, earlier fixes, this fix. */
	ElfLineage nl = lin;
	char **fixes = calloc(lin.n_fixes + 1, sizeof(char *));
	if (!fixes) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(fixes, lin.fixes, lin.n_fixes * sizeof(char *));
	fixes[lin.n_fixes] = p->fix_id;
	nl.fixes = fixes;
	nl.n_fixes = lin.n_fixes + 1;
	uint8_t nh[16];
	elf_wr32(nh, 4);
	elf_wr32(nh + 8, ELF_NOTE_SVC_LINEAGE);
	memcpy(nh + 12, "SVC", 4);
	r = base_buf_append(&note, nh, 16);
	if (r >= 0)
		r = elf_lineage_encode(&nl, &note);
	free(fixes);
	if (r < 0)
		goto out;
	elf_wr32(note.data + 4, (uint32_t)(note.len - 16));
	r = append_zeros(&note, elf_align_up(note.len, 4));
	if (r < 0)
		goto out;
	uint64_t seg_size = note_rel + note.len;

	/* Copy, then pad to the segment. */
	r = base_buf_append(&out, base, base_len);
	if (r >= 0)
		r = append_zeros(&out, seg_off);
	if (r < 0)
		goto out;

	/* Program headers: the old ones (PT_PHDR moved), the new PT_LOAD after
	 * the last one (PT_LOADs must stay sorted by address). */
	for (size_t i = 0; i < f->n_segments && r >= 0; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, base + f->phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_PHDR) {
			ph.p_offset = seg_off;
			ph.p_vaddr = ph.p_paddr = seg_vaddr;
			ph.p_filesz = ph.p_memsz = n_ph * sizeof(Elf64_Phdr);
		}
		r = base_buf_append(&out, &ph, sizeof(ph));
		if (r >= 0 && i == last_load) {
			Elf64_Phdr nw = { .p_type = PT_LOAD, .p_flags = PF_R | PF_X,
					  .p_offset = seg_off, .p_vaddr = seg_vaddr,
					  .p_paddr = seg_vaddr, .p_filesz = seg_size,
					  .p_memsz = seg_size, .p_align = PAGE };
			r = base_buf_append(&out, &nw, sizeof(nw));
		}
	}
	if (r >= 0)
		r = append_zeros(&out, seg_off + blob_rel);
	if (r >= 0)
		r = base_buf_append(&out, p->code, p->code_len);
	if (r >= 0)
		r = append_zeros(&out, seg_off + note_rel);
	if (r >= 0)
		r = base_buf_append(&out, note.data, note.len);
	if (r < 0)
		goto out;
	r = relocate(f, p, seg_vaddr + blob_rel, out.data + seg_off + blob_rel, e);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < p->n_redirects; i++) {
		r = write_redirect(f, &p->redirects[i], seg_vaddr + blob_rel + p->redirects[i].target,
				   out.data, lin.n_fixes > 0, e);
		if (r < 0)
			goto out;
	}

	/* Not loaded: the new section name table and section header table. */
	Elf64_Ehdr h;
	memcpy(&h, base, sizeof(h));
	const ElfSection *oldstr = &f->sections[h.e_shstrndx];
	const ElfSection *oldnote = elf_find_section(f, ".note.svc.lineage");
	uint64_t str_off = out.len;
	char text_name[32];
	snprintf(text_name, sizeof(text_name), ".svc.text.%zu", nl.n_fixes);
	r = base_buf_append(&out, oldstr->data, oldstr->size);
	uint32_t text_name_off = (uint32_t)oldstr->size, note_name_off = 0;
	if (r >= 0)
		r = base_buf_append(&out, text_name, strlen(text_name) + 1);
	if (r >= 0 && !oldnote) {
		note_name_off = (uint32_t)(oldstr->size + strlen(text_name) + 1);
		r = base_buf_append(&out, ".note.svc.lineage", sizeof(".note.svc.lineage"));
	}
	uint64_t str_size = out.len - str_off;
	if (r >= 0)
		r = append_zeros(&out, elf_align_up(out.len, 8));
	if (r < 0)
		goto out;
	uint64_t sh_off = out.len;
	size_t n_sh = f->n_sections + 1 + (oldnote ? 0 : 1);
	for (size_t i = 0; i < f->n_sections && r >= 0; i++) {
		Elf64_Shdr sh;
		memcpy(&sh, base + f->shoff + i * sizeof(sh), sizeof(sh));
		if (i == h.e_shstrndx) {
			sh.sh_offset = str_off;
			sh.sh_size = str_size;
		}
		if (oldnote && i == oldnote->index) {
			sh.sh_offset = seg_off + note_rel;
			sh.sh_addr = seg_vaddr + note_rel;
			sh.sh_size = note.len;
		}
		r = base_buf_append(&out, &sh, sizeof(sh));
	}
	Elf64_Shdr ts = { .sh_name = text_name_off, .sh_type = SHT_PROGBITS,
			  .sh_flags = SHF_ALLOC | SHF_EXECINSTR, .sh_addr = seg_vaddr + blob_rel,
			  .sh_offset = seg_off + blob_rel, .sh_size = p->code_len,
			  .sh_addralign = blob_align };
	if (r >= 0)
		r = base_buf_append(&out, &ts, sizeof(ts));
	if (r >= 0 && !oldnote) {
		Elf64_Shdr ns = { .sh_name = note_name_off, .sh_type = SHT_NOTE, .sh_flags = SHF_ALLOC,
				  .sh_addr = seg_vaddr + note_rel, .sh_offset = seg_off + note_rel,
				  .sh_size = note.len, .sh_addralign = 4 };
		r = base_buf_append(&out, &ns, sizeof(ns));
	}
	if (r < 0)
		goto out;
	if (n_sh >= SHN_LORESERVE || n_ph >= PN_XNUM) {
		r = base_err(e, -EINVAL, "base: too many headers");
		goto out;
	}
	h.e_phoff = seg_off;
	h.e_phnum = (uint16_t)n_ph;
	h.e_shoff = sh_off;
	h.e_shnum = (uint16_t)n_sh;
	memcpy(out.data, &h, sizeof(h));
	r = base_buf_append(ret, out.data, out.len);
out:
	base_buf_free(&out);
	base_buf_free(&note);
	elf_lineage_free(&lin);
	elf_close(f);
	return r;
}
