/* Text descriptions of payloads and coldpatch lineages, for `svc inspect`. */
#include <stdlib.h>
#include <string.h>

#include "elf/internal.h"

static const char *kind_name(ElfEntryKind k)
{
	switch (k) {
	case ELF_ENTRY_PAD16:
		return "pad16";
	case ELF_ENTRY_PAD_REL32:
		return "pad-rel32";
	case ELF_ENTRY_PLAIN:
		return "plain";
	}
	return "?";
}

static const char *bind_name(ElfRelocBind b)
{
	switch (b) {
	case ELF_BIND_BASE:
		return "base";
	case ELF_BIND_SYMBOL:
		return "symbol";
	case ELF_BIND_PAYLOAD:
		return "payload";
	}
	return "?";
}

int elf_payload_describe(const ElfPayload *p, BaseBuf *out)
{
	char hex[2 * 64 + 1];
	base_hex(hex, p->build_id, p->build_id_len);
	int r = base_buf_printf(out, "payload %s\nbase build-id %s\nlineage", p->fix_id, hex);
	for (size_t i = 0; r >= 0 && i < p->n_lineage; i++)
		r = base_buf_printf(out, " %s", p->lineage[i]);
	if (r >= 0)
		r = base_buf_printf(out, "%s\ncode %zu bytes, align %u\n", p->n_lineage ? "" : " (none)",
				    p->code_len, p->code_align);
	for (size_t i = 0; r >= 0 && i < p->n_redirects; i++) {
		const ElfRedirect *d = &p->redirects[i];
		char ex[2 * 32 + 1];
		base_hex(ex, d->expect, d->expect_len);
		r = base_buf_printf(out, "redirect %s entry 0x%llx size %llu %s pad %u -> +0x%llx expect %s\n",
				    d->name, (unsigned long long)d->entry, (unsigned long long)d->size,
				    kind_name(d->kind), d->pad, (unsigned long long)d->target, ex);
	}
	for (size_t i = 0; r >= 0 && i < p->n_relocs; i++) {
		const ElfReloc *x = &p->relocs[i];
		r = base_buf_printf(out, "reloc +0x%llx %s %s %s%s0x%llx%+lld\n",
				    (unsigned long long)x->where,
				    x->type == R_X86_64_PC32 ? "pc32" : "abs64", bind_name(x->bind),
				    x->symbol ? x->symbol : "", x->symbol ? " " : "",
				    (unsigned long long)x->value, (long long)x->addend);
	}
	return r;
}

int elf_describe_lineage(const uint8_t *buf, size_t len, BaseBuf *out, BaseErr *e)
{
	ElfFile *f = NULL;
	ElfLineage l = { 0 };
	int r = elf_open_mem(buf, len, "file", &f, e);
	if (r < 0)
		return r;
	r = elf_lineage(f, &l, e);
	if (r >= 0) {
		char hex[2 * 64 + 1];
		base_hex(hex, l.build_id, l.build_id_len);
		r = base_buf_printf(out, "build-id %s\nfixes", hex);
		for (size_t i = 0; r >= 0 && i < l.n_fixes; i++)
			r = base_buf_printf(out, " %s", l.fixes[i]);
		if (r >= 0)
			r = base_buf_printf(out, "%s\n", l.n_fixes ? "" : " (none: base build)");
		elf_lineage_free(&l);
	}
	elf_close(f);
	return r;
}
