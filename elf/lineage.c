/* The lineage note of a coldpatch: which base build and which fixes, in order. */
#include <stdlib.h>
#include <string.h>

#include "elf/internal.h"

void elf_lineage_free(ElfLineage *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n_fixes; i++)
		free(l->fixes[i]);
	free(l->fixes);
	memset(l, 0, sizeof(*l));
}

int elf_lineage_encode(const ElfLineage *l, BaseBuf *out)
{
	uint8_t x[4];
	int r;
	elf_wr32(x, (uint32_t)l->build_id_len);
	r = base_buf_append(out, x, 4);
	if (r >= 0)
		r = base_buf_append(out, l->build_id, l->build_id_len);
	elf_wr32(x, (uint32_t)l->n_fixes);
	if (r >= 0)
		r = base_buf_append(out, x, 4);
	for (size_t i = 0; r >= 0 && i < l->n_fixes; i++) {
		size_t n = strlen(l->fixes[i]);
		elf_wr32(x, (uint32_t)n);
		r = base_buf_append(out, x, 4);
		if (r >= 0)
			r = base_buf_append(out, l->fixes[i], n);
	}
	return r;
}

int elf_lineage_decode(const uint8_t *d, size_t len, ElfLineage *ret)
{
	ElfLineage l = { 0 };
	size_t pos = 0;
	if (len < 4)
		return -EBADMSG;
	l.build_id_len = elf_rd32(d);
	pos = 4;
	if (l.build_id_len > sizeof(l.build_id) || len - pos < l.build_id_len + 4)
		return -EBADMSG;
	memcpy(l.build_id, d + pos, l.build_id_len);
	pos += l.build_id_len;
	uint32_t n = elf_rd32(d + pos);
	pos += 4;
	if (n > (len - pos) / 5)
		return -EBADMSG;
	l.fixes = calloc(n ? n : 1, sizeof(char *));
	if (!l.fixes)
		return -ENOMEM;
	for (; l.n_fixes < n; l.n_fixes++) {
		if (len - pos < 4)
			goto bad;
		uint32_t sl = elf_rd32(d + pos);
		pos += 4;
		if (sl == 0 || sl > 4096 || sl > len - pos || memchr(d + pos, 0, sl))
			goto bad;
		l.fixes[l.n_fixes] = strndup((const char *)d + pos, sl);
		if (!l.fixes[l.n_fixes]) {
			elf_lineage_free(&l);
			return -ENOMEM;
		}
		pos += sl;
	}
	*ret = l;
	return 0;
bad:
	elf_lineage_free(&l);
	return -EBADMSG;
}

int elf_lineage(const ElfFile *f, ElfLineage *ret, BaseErr *e)
{
	const ElfSection *s = elf_find_section(f, ".note.svc.lineage");
	if (!s || s->type != SHT_NOTE || !s->data) {
		ElfLineage l = { 0 };
		memcpy(l.build_id, f->build_id, f->build_id_len);
		l.build_id_len = f->build_id_len;
		l.fixes = calloc(1, sizeof(char *));
		if (!l.fixes)
			return -ENOMEM;
		*ret = l;
		return 0;
	}
	uint64_t pos = 0;
	ElfNote n;
	int r;
	while ((r = elf_note_next(f, s->offset, s->size, &pos, &n)) > 0) {
		if (n.type != ELF_NOTE_SVC_LINEAGE || strcmp(n.owner, "SVC") != 0)
			continue;
		r = elf_lineage_decode(n.desc, n.desc_len, ret);
		if (r == -EBADMSG)
			return base_err(e, r, "%s: corrupt lineage note", f->name);
		return r;
	}
	if (r < 0)
		return base_err(e, r, "%s: corrupt note in the lineage section", f->name);
	return base_err(e, -EBADMSG, "%s: lineage section without a lineage note", f->name);
}
