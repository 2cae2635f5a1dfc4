/* The ELF reader: headers, sections, symbols, relocations, notes, the
 * build-id and a coldpatch's lineage. */
#include <elf.h>

#include "elf/elf.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	ElfFile *f = NULL;
	ElfLineage l;
	BaseBuf desc = { 0 };
	const uint8_t *id;
	size_t id_len;
	uint64_t off;

	(void)elf_describe_lineage(d, n, &desc, NULL);
	base_buf_free(&desc);
	if (elf_open_mem(d, n, "fuzz", &f, NULL) < 0)
		return 0;
	(void)elf_build_id(f, &id, &id_len);
	if (elf_lineage(f, &l, NULL) == 0)
		elf_lineage_free(&l);
	(void)elf_find_section(f, ".text");
	(void)elf_find_symbol(f, "main");
	(void)elf_vaddr_to_offset(f, f->entry, 16, &off);
	for (size_t i = 0; i < f->n_sections; i++) {
		const ElfSection *s = &f->sections[i];
		uint64_t pos = 0;
		ElfNote note;
		if (s->type != SHT_NOTE)
			continue;
		for (int k = 0; k < 64 && elf_note_next(f, s->offset, s->size, &pos, &note) == 1; k++)
			;
	}
	elf_close(f);
	return 0;
}
