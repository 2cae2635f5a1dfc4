/* elf — private helpers shared by the files of the library. */
#ifndef SVC_ELF_INTERNAL_H
#define SVC_ELF_INTERNAL_H

#include <capstone/capstone.h>   /* types only: x86.c loads the library */
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

/* ---- objects (ET_REL) ------------------------------------------------------ */

/* What a relocation of an object refers to, named so that two builds of one
 * translation unit can be compared and so that the base build can be
 * searched: a named symbol + delta, or bytes of an anonymous section
 * (string literals, constants, jump tables) at an offset. */
typedef struct ElfTarget {
	const ElfSymbol *sym;    /* named symbol (defined or undefined); NULL: anonymous */
	int64_t delta;           /* S_target + A == S_sym + delta (GOT types: the A) */
	uint32_t shndx;          /* anonymous: section; named: its section or SHN_UNDEF */
	int64_t off;             /* anonymous: offset of S + A in the section */
} ElfTarget;

/* Resolve relocation r (of section relsec) of object f. */
int elf_obj_target(const ElfFile *f, const ElfSection *relsec, const ElfRela *r, ElfTarget *ret,
		   BaseErr *e);
/* The relocation section applying to section shndx of object f, or NULL. */
const ElfSection *elf_obj_relsec(const ElfFile *f, uint32_t shndx);
/* Name of the STT_FILE symbol governing local symbol s ("" if none). */
const char *elf_sym_file(const ElfFile *f, const ElfSymbol *s);
/* The "function symbol" of executable section shndx (-ffunction-sections:
 * exactly one named STT_FUNC, or NULL). */
const ElfSymbol *elf_obj_func_of(const ElfFile *f, uint32_t shndx);
int elf_is_got_reloc(uint32_t type);
/* A symbol with an identity across builds (not a section, file or .L label). */
int elf_sym_is_named(const ElfSymbol *s);
/* The defined symbol of f with s's name, type and locality, or NULL. */
const ElfSymbol *elf_obj_find_like(const ElfFile *f, const ElfSymbol *s);
/* Length of name without gcc's numbering of function-local statics
 * ("counter.2" -> 7); strlen(name) if it has none. */
size_t elf_static_stem_len(const char *name);
/* Correlate the named symbols of new_o with those of old_o: ret[i] is the
 * counterpart of new_o->symbols[i] or NULL (new).  Exact name for all but
 * numbered local objects, which gcc renumbers when a patch adds one: those
 * by stem, section kind and the functions that use them (ambiguity refused
 * by name).  Free with free(). */
int elf_correlate(const ElfFile *old_o, const ElfFile *new_o, const ElfSymbol ***ret,
		  BaseErr *e);
int elf_is_pcrel(uint32_t type);

typedef struct ElfDiffItem {
	const ElfSymbol *sym;    /* in the new object */
	ElfChange change;
} ElfDiffItem;
/* The changed and new functions; ret_map (optional): elf_correlate's map;
 * ret_line_only (optional): functions left alone because only __LINE__
 * constants moved. */
int elf_diff_internal(const ElfFile *old_o, const ElfFile *new_o, ElfDiffItem **ret, size_t *ret_n,
		      const ElfSymbol ***ret_map, size_t *ret_line_only, BaseErr *e);
/* 1 if function sections os of old_o and ns of new_o (same size, different
 * bytes) differ only in constants that are line numbers passed with
 * __FILE__ to a call (assert-like); 0 if not. */
int elf_line_only(const ElfFile *old_o, uint32_t os, const ElfFile *new_o, uint32_t ns, BaseErr *e);

/* Function os of base object old_o against the base's bytes at bs, with the
 * linker-filled fields masked: -ESTALE naming function and offset. */
int elf_verify_function(const ElfFile *base, const ElfSymbol *bs, const ElfFile *old_o,
			const ElfSymbol *os, BaseErr *e);

/* ---- payload builder (build.c, lookup.c, redirect.c) ---------------------- */

typedef struct ElfBuildObj {
	ElfFile *old_o, *new_o;
	uint8_t *incl;           /* per section of new_o: copied into the blob */
	uint64_t *blob_off;      /* per section of new_o */
	ElfDiffItem *changes;
	size_t n_changes;
	const ElfSymbol **old_of; /* per symbol of new_o: its counterpart in old_o */
	const ElfSymbol **bound;  /* per symbol of new_o: the base function fixed
				   * code binds to (checked against old_o) */
} ElfBuildObj;

/* An 8-byte slot holding an absolute address, or a 6-byte indirect jump. */
typedef struct ElfIndirect {
	ElfRelocBind bind;
	uint64_t value;
	int64_t addend;
	const char *symbol;      /* SYMBOL: borrowed from an object's string table */
	int stub;                /* 1: `jmp *X(%rip)`; X is a slot (via_slot) or BASE GOT */
	size_t via_slot;         /* stub through slot index */
	int base_got;            /* stub through the base's GOT entry `value` */
} ElfIndirect;

typedef struct ElfBuilder {
	ElfFile *base;
	const char *no_symbols;  /* why the base has no full symbol table, or NULL */
	int verify;              /* check base objects against the base's bytes: not
				  * for a fix on a fix, whose base objects are the
				  * earlier fix's, which the base file does not hold */
	char no_symbols_buf[1100];
	ElfBuildObj *objs;
	size_t n_objs;
	BaseBuf code;
	uint64_t sections_end;
	uint32_t align;
	ElfIndirect *ind;
	size_t n_ind, cap_ind;
	uint64_t slots_off, stubs_off;
	ElfReloc *relocs;
	size_t n_relocs, cap_relocs;
	BaseErr *e;
} ElfBuilder;

/* The base symbol of s (of ob's fixed object), or NULL in *ret if none;
 * < 0 when ambiguous. */
int elf_build_lookup(ElfBuilder *B, ElfBuildObj *ob, const ElfSymbol *s, const ElfSymbol **ret);
/* The base's own GOT entry for name (GLOB_DAT / JUMP_SLOT), 0 if none. */
uint64_t elf_build_got(const ElfFile *b, const char *name);
/* The redirect of change it into *ret (*ret_have 0: none needed), or a
 * refusal. */
int elf_build_redirect(ElfBuilder *B, ElfBuildObj *ob, const ElfDiffItem *it, ElfRedirect *ret, int *ret_have);

/* ---- symbol sources -------------------------------------------------------- */

/* A debug file for build-id id from the debuginfod servers of
 * DEBUGINFOD_URLS: its path in the client cache (malloc'ed); -ENOENT if no
 * server is configured or none has it. */
int elf_debuginfod_find(const uint8_t *id, size_t id_len, char **ret_path, BaseErr *e);

/* Capstone's functions (x86.c loads libcapstone with dlopen on first use);
 * NULL, with the reason in e, when it cannot be loaded. */
typedef struct ElfCapstone {
	cs_err (*open)(cs_arch, cs_mode, csh *);
	cs_err (*option)(csh, cs_opt_type, size_t);
	cs_insn *(*malloc)(csh);
	bool (*disasm_iter)(csh, const uint8_t **, size_t *, uint64_t *, cs_insn *);
	bool (*insn_group)(csh, const cs_insn *, unsigned int);
	void (*free)(cs_insn *, size_t);
	cs_err (*close)(csh *);
} ElfCapstone;
const ElfCapstone *elf_capstone(BaseErr *e);
/* An x86-64 decoder with detail on and one instruction buffer, from the
 * idle ones (x86.c); given back when done. */
typedef struct ElfDecoder {
	csh h;
	cs_insn *insn;
} ElfDecoder;
int elf_decoder_take(ElfDecoder *ret, BaseErr *e);
void elf_decoder_give(ElfDecoder *d);

#endif
