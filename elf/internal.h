/* elf — private helpers shared by the files of the library. */
#ifndef SVC_ELF_INTERNAL_H
#define SVC_ELF_INTERNAL_H

#include <elf.h>
#include <stdint.h>
#include <string.h>

#include "elf/elf.h"

/* Largest file we read: bounds every size computation below 2^30. */
#define ELF_MAX_FILE (1u << 30)

static inline uint16_t elf_rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t elf_rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t elf_rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline void elf_wr16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void elf_wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void elf_wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static inline uint64_t elf_align_up(uint64_t v, uint64_t a)
{
	return a ? (v + a - 1) / a * a : v;
}

/* [off, off+size) lies inside [0, len) without overflow. */
static inline int elf_in_bounds(uint64_t off, uint64_t size, uint64_t len)
{
	return off <= len && size <= len - off;
}

/* The symbol table (.symtab or .dynsym) whose section index is shndx. */
const ElfSymbol *elf_symtab_of(const ElfFile *f, uint32_t shndx, size_t *ret_n);

/* Section symbol of an ET_REL or a defined function/object in sec covering
 * off; NULL if none.  Used to name references symbolically. */
const ElfSymbol *elf_symbol_at(const ElfFile *f, uint32_t shndx, uint64_t off);

/* Lineage note body (without the note header): serialize / parse. */
int elf_lineage_encode(const ElfLineage *l, BaseBuf *out);
int elf_lineage_decode(const uint8_t *d, size_t len, ElfLineage *ret);

#endif
