/* elf — ELF64 reading and writing, object diff, hotpatch payloads and
 * coldpatch synthesis (x86-64).
 *
 * This header starts with the *payload contract* shared with hotpatch/: the
 * in-memory form of a hotpatch payload (*.hp).  Everything the live patcher
 * needs to place new code into a process is here; the serialized form is in
 * docs/formats.md. */
#ifndef SVC_ELF_H
#define SVC_ELF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* ---- hotpatch payload (the contract with hotpatch/) --------------------- */

/* How an old function entry is redirected to its new code. */
typedef enum ElfEntryKind {
	ELF_ENTRY_PAD16 = 1, /* -fpatchable-function-entry=16,14: 14 pad bytes before the
			      * entry take `ff 25 00 00 00 00` + abs64, the 2 entry
			      * bytes (a 2-byte NOP) take `eb f0` (jmp -16) */
	ELF_ENTRY_PAD_REL32, /* M,N with N >= 5 pad bytes before the entry and >= 2 NOP
			      * bytes at it: `e9 rel32` in the 5 bytes before the entry,
			      * `eb f9` (jmp -7) at the entry; new code within +-2 GiB.
			      * Also the padding trampoline of a plain function: pad 5
			      * of alignment fill (nop/int3, no symbol) before it, and
			      * the entry's 2 bytes are its first code bytes */
	ELF_ENTRY_PLAIN,     /* no pad: `e9 rel32` over the first 5 bytes of the
			      * function; only while no thread is inside them */
} ElfEntryKind;

typedef struct ElfRedirect {
	char *name;              /* base function symbol */
	uint64_t entry;          /* entry vaddr in the base build (ET_DYN: relative to load
				  * bias 0; ET_EXEC: absolute) */
	uint64_t size;           /* function size in bytes (from the symbol) */
	ElfEntryKind kind;
	uint32_t pad;            /* pad bytes before the entry that the redirect uses */
	uint32_t expect_len;     /* bytes of expect[]: the patched window, which starts at
				  * entry - pad and is pad + 2 (PAD16, PAD_REL32) or 5 (PLAIN)
				  * bytes long */
	uint8_t expect[32];      /* bytes that must be there before writing */
	uint64_t target;         /* offset of the new code inside the payload's code blob */
} ElfRedirect;

typedef enum ElfRelocBind {
	ELF_BIND_BASE = 1,   /* S = load bias of the target module + value (a function or
			      * variable of the *running* base module) */
	ELF_BIND_SYMBOL,     /* S = address of `symbol` resolved in the target process
			      * (another loaded module's .dynsym, e.g. libc's) */
	ELF_BIND_PAYLOAD,    /* S = address of the code blob + value */
} ElfRelocBind;

/* Only two relocation types reach the patcher; the builder lowers everything
 * else (GOTPCREL*, PLT32) to these, adding 8-byte slots / stubs to the blob. */
typedef struct ElfReloc {
	uint64_t where;          /* offset in the code blob */
	uint32_t type;           /* R_X86_64_PC32 (S + A - P, must fit int32) or
				  * R_X86_64_64 (S + A) */
	ElfRelocBind bind;
	uint64_t value;          /* BASE: vaddr in the base build; PAYLOAD: blob offset */
	char *symbol;            /* SYMBOL: name to resolve; NULL otherwise */
	int64_t addend;
} ElfReloc;

typedef struct ElfPayload {
	char *fix_id;                    /* unique id of this fix, e.g. "FIX-0002" */
	uint8_t build_id[64];            /* GNU build-id of the base build */
	size_t build_id_len;
	size_t n_lineage;                /* fix ids that must already be applied, in order */
	char **lineage;                  /* (empty: applies on the base build itself) */
	uint8_t *code;                   /* new text + read-only data, one blob */
	size_t code_len;
	uint32_t code_align;             /* required alignment of the blob (power of 2) */
	size_t n_relocs;
	ElfReloc *relocs;
	size_t n_redirects;
	ElfRedirect *redirects;
} ElfPayload;

/* The jumps of a redirect (jump.c).  elf_jump_encode writes them into w (the
 * window's bytes, entry - pad .. entry - pad + expect_len, holding the bytes
 * to keep), for a window at address `window` and new code at `target`; abs16
 * picks the any-reach absolute form for PAD16.  -ERANGE: out of rel32 reach.
 * elf_jump_decode tells whether cur holds the rel32 form (the one files
 * carry) with expect's pad bytes kept, and where it jumps. */
int elf_jump_encode(uint32_t kind, uint32_t pad, uint64_t window, uint64_t target, bool abs16,
		    uint8_t *w);
bool elf_jump_decode(uint32_t kind, uint32_t pad, uint64_t window, const uint8_t *expect,
		     const uint8_t *cur, uint64_t *ret_target);

/* x86-64 decoding (x86.c, Capstone).  elf_x86_scan decodes code (len bytes
 * at address addr) instruction by instruction and reports, for the window
 * [lo, hi) a redirect overwrites: the first direct branch or call into it
 * other than to addr itself (a call of the function, e.g. recursion, enters
 * at the entry, which stays an instruction boundary), an indirect jump
 * (targets unknown), and where decoding stopped on bytes that are no
 * instruction.  Each is the address of the instruction, 0 for none. */
typedef struct ElfX86Scan {
	uint64_t into, target;   /* a branch at `into` lands at `target` in the window */
	uint64_t indirect;
	uint64_t undecoded;
	uint64_t ret_inside;     /* a call returns to this address in the window
				  * (strictly inside, not addr): a frame there
				  * would return into the bytes a redirect rewrites */
	uint32_t first_len;      /* length of the first instruction (0: undecodable) */
} ElfX86Scan;
int elf_x86_scan(const uint8_t *code, size_t len, uint64_t addr, uint64_t lo, uint64_t hi,
		 ElfX86Scan *ret);
/* Loads the decoder (libcapstone, dlopen'd once per process, thread-safe);
 * elf_x86_scan does it on first use, -ENOENT if it cannot.  Call it before
 * stopping processes, so that no pause waits for the dynamic loader. */
int elf_x86_load(BaseErr *e);

/* Serialized payload (*.hp): parse defensively (any malformed input is
 * -EBADMSG with a reason, never a crash), write deterministically. */
int elf_payload_parse(const uint8_t *buf, size_t len, ElfPayload **ret, BaseErr *e);
int elf_payload_write(const ElfPayload *p, BaseBuf *out, BaseErr *e);
void elf_payload_free(ElfPayload *p);
/* 1 if buf starts with the payload magic (to tell a *.hp from an ELF file). */
int elf_is_payload(const uint8_t *buf, size_t len);
/* The field checks of elf_payload_write on an in-memory payload (-EINVAL). */
int elf_payload_check(const ElfPayload *p, BaseErr *e);

/* ---- ELF64 reader -------------------------------------------------------- */
/*
 * elf_open_mem() validates the whole file up front: every header, offset,
 * size and count is bounds-checked against the buffer, every symbol name and
 * relocation symbol index is checked, so the accessors below never read out of
 * bounds.  A malformed file is -ENOEXEC (not an ELF64 x86-64 file we handle)
 * or -EBADMSG (corrupt), with a one-line reason in the BaseErr.
 */

typedef struct ElfSection {
	const char *name;        /* "" if none */
	uint32_t index;
	uint32_t type;           /* SHT_* */
	uint64_t flags;          /* SHF_* */
	uint64_t addr, offset, size, entsize, align;
	uint32_t link, info;
	const uint8_t *data;     /* file bytes, NULL for SHT_NOBITS / empty */
	size_t n_relas;          /* SHT_RELA only: validated entries */
	const struct ElfRela *relas;
} ElfSection;

typedef struct ElfRela {
	uint64_t offset;
	uint32_t type;           /* R_X86_64_* */
	uint32_t sym;            /* index into the symbol table of sh_link */
	int64_t addend;
} ElfRela;

typedef struct ElfSymbol {
	const char *name;        /* "" if none */
	uint32_t index;          /* in its table */
	uint8_t type, bind, visibility;
	uint16_t shndx;          /* SHN_UNDEF, SHN_ABS, SHN_COMMON or a valid section */
	uint64_t value, size;
	uint32_t file;           /* index of the governing STT_FILE symbol (0: none) */
} ElfSymbol;

typedef struct ElfSegment {
	uint32_t type, flags;
	uint64_t offset, vaddr, paddr, filesz, memsz, align;
} ElfSegment;

typedef struct ElfFile {
	const uint8_t *data;     /* the whole file (owned if opened by path) */
	size_t len;
	uint16_t type;           /* ET_REL, ET_EXEC, ET_DYN */
	uint64_t entry;
	uint64_t phoff, shoff;
	size_t n_sections;
	ElfSection *sections;
	size_t n_segments;
	ElfSegment *segments;
	size_t n_symbols;        /* .symtab (0 if stripped) */
	ElfSymbol *symbols;
	uint32_t symtab_index;   /* section index of .symtab, 0 if none */
	size_t n_dynsyms;        /* .dynsym */
	ElfSymbol *dynsyms;
	uint32_t dynsym_index;
	uint8_t build_id[64];    /* GNU build-id (first NT_GNU_BUILD_ID note) */
	size_t build_id_len;
	char *name;              /* for messages */
	uint8_t *owned;
	struct ElfFile *symfile; /* owned debug file whose .symtab symbols[] is */
} ElfFile;

/* Parse buf[0..len) (not copied: it must outlive the ElfFile).  name is used
 * in error messages only. */
int elf_open_mem(const uint8_t *buf, size_t len, const char *name, ElfFile **ret, BaseErr *e);
/* Read the whole file (at most 1 GiB) and parse it. */
int elf_open_path(const char *path, ElfFile **ret, BaseErr *e);
void elf_close(ElfFile *f);

/* The GNU build-id; -ENOENT if the file has none. */
int elf_build_id(const ElfFile *f, const uint8_t **ret_id, size_t *ret_len);
/* First section named name, or NULL. */
const ElfSection *elf_find_section(const ElfFile *f, const char *name);
/* First defined symbol named name in .symtab, then .dynsym; NULL if none. */
const ElfSymbol *elf_find_symbol(const ElfFile *f, const char *name);
/* File offset holding vaddr..vaddr+len inside one PT_LOAD's file bytes;
 * -ERANGE if not backed by file bytes. */
int elf_vaddr_to_offset(const ElfFile *f, uint64_t vaddr, uint64_t len, uint64_t *ret_off);

/* Iterate the notes of a SHT_NOTE section or PT_NOTE segment given by its
 * file range (validated by elf_open_mem for sections and segments). *pos
 * starts at 0; returns 1 with a note, 0 at the end, -EBADMSG if torn. */
typedef struct ElfNote {
	const char *owner;       /* NUL-terminated inside the file */
	uint32_t type;
	const uint8_t *desc;
	uint32_t desc_len;
} ElfNote;
int elf_note_next(const ElfFile *f, uint64_t off, uint64_t size, uint64_t *pos, ElfNote *ret);
/* The same over a buffer of notes (e.g. a PT_NOTE read from memory). */
int elf_note_next_buf(const uint8_t *d, uint64_t size, uint64_t *pos, ElfNote *ret);
/* The GNU build-id among the notes in d[0..size): 0 and *ret_len bytes in
 * out, -ENOENT if there is none, -EBADMSG if torn or oversized.  The one
 * build-id note reader: files and process memory both use it. */
int elf_notes_build_id(const uint8_t *d, uint64_t size, uint8_t out[64], size_t *ret_len);

/* ---- lineage of a coldpatch ---------------------------------------------- */

/* Note "SVC" type ELF_NOTE_SVC_LINEAGE in section .note.svc.lineage; format in
 * docs/format-payload.md. */
#define ELF_NOTE_SVC_LINEAGE 0x4c4e4731u /* "1GNL" */

typedef struct ElfLineage {
	uint8_t build_id[64];
	size_t build_id_len;
	size_t n_fixes;
	char **fixes;            /* fix ids applied, oldest first */
} ElfLineage;

/* The lineage of f: from its note if it is a coldpatch, else the base build
 * itself (its build-id, no fixes).  Free with elf_lineage_free. */
int elf_lineage(const ElfFile *f, ElfLineage *ret, BaseErr *e);
void elf_lineage_free(ElfLineage *l);

/* ---- object diff ---------------------------------------------------------- */

typedef enum ElfChange {
	ELF_CHANGE_MODIFIED = 1, /* code bytes or relocation targets differ */
	ELF_CHANGE_NEW,          /* only in the fixed object */
} ElfChange;

typedef struct ElfFuncChange {
	char *name;
	ElfChange change;
	int local;               /* STB_LOCAL */
} ElfFuncChange;

/* Diff two ET_REL objects of one translation unit (built with
 * -ffunction-sections -fdata-sections).  Data changes are refused with
 * -EINVAL: "data change in 'table': cannot be hotpatched". */
int elf_diff_objects(const ElfFile *old_o, const ElfFile *new_o, ElfFuncChange **ret,
		     size_t *ret_n, BaseErr *e);
void elf_func_changes_free(ElfFuncChange *c, size_t n);

/* ---- payload building ----------------------------------------------------- */

typedef struct ElfObjectPair {
	const char *old_path;    /* object of the base build */
	const char *new_path;    /* object of the fixed build */
} ElfObjectPair;

/* Where the base's full symbol table comes from when the target file as
 * shipped is stripped (see docs/vendor-guide.md): the file itself, then
 * DIR/.build-id/xx/yyyy.debug under each debug directory, then the file its
 * .gnu_debuglink names (CRC checked) beside the target or in the debug
 * directories, then the debuginfod servers of DEBUGINFOD_URLS. */
typedef struct ElfBuildOptions {
	const char *const *debug_dirs; /* NULL / 0: ELF_DEFAULT_DEBUG_DIR */
	size_t n_debug_dirs;
	int no_debuginfod;             /* 1: do not ask debuginfod servers */
} ElfBuildOptions;

#define ELF_DEFAULT_DEBUG_DIR "/usr/lib/debug"

typedef enum ElfSymbolSource {
	ELF_SYMS_NONE = 0,       /* .dynsym only */
	ELF_SYMS_FILE,           /* the target's own .symtab */
	ELF_SYMS_BUILD_ID,       /* DIR/.build-id/xx/yyyy.debug */
	ELF_SYMS_DEBUGLINK,      /* .gnu_debuglink */
	ELF_SYMS_DEBUGINFOD,     /* a debuginfod server */
} ElfSymbolSource;

const char *elf_symbol_source_str(ElfSymbolSource s);

/* What the builder decided, for the vendor's report. */
typedef struct ElfBuildStats {
	size_t n_changed;        /* functions whose code changed */
	size_t n_new;            /* functions only in the fixed objects */
	size_t n_line_only;      /* left alone: only __LINE__ constants moved */
	size_t n_verified;       /* base-object functions checked against the base */
	ElfSymbolSource symbols; /* where the base's symbol table came from */
	char symbols_path[512];  /* the file it came from ("" for NONE / FILE) */
} ElfBuildStats;

/* Build the hotpatch payload for base (the linked file as installed) from the
 * object pairs of the translation units the fix touches.  lineage: fix ids
 * already applied that this fix builds on (n_lineage may be 0).  Objects must
 * be position independent (-fPIC or -fPIE).  Fails with -EINVAL and a reason
 * for anything that cannot be hotpatched (data changes, TLS, no changes), and
 * with -ESTALE when a base object does not match the base's bytes.  opts and
 * ret_stats may be NULL. */
int elf_build_payload_opts(const char *base_path, const ElfObjectPair *pairs, size_t n_pairs,
			   const char *fix_id, char *const *lineage, size_t n_lineage,
			   const ElfBuildOptions *opts, ElfPayload **ret, ElfBuildStats *ret_stats,
			   BaseErr *e);
/* elf_build_payload_opts with the default options. */
int elf_build_payload(const char *base_path, const ElfObjectPair *pairs, size_t n_pairs,
		      const char *fix_id, char *const *lineage, size_t n_lineage,
		      ElfPayload **ret, BaseErr *e);

/* Open the separate debug file of target f (path: where f was read, for
 * .gnu_debuglink's directory) by the rules of ElfBuildOptions, skipping the
 * file itself.  -ENOENT if none is found; a candidate with another build-id
 * or a bad CRC is skipped (its reason kept in e if nothing else is found). */
int elf_find_debug_file(const ElfFile *f, const char *path, const ElfBuildOptions *opts,
			ElfFile **ret, ElfSymbolSource *ret_source, char **ret_path, BaseErr *e);
/* The distinct DW_AT_producer strings of linked file f's compile units, in
 * order of first appearance (none: *ret_n 0), from .debug_info, compressed or
 * not (dwarf.c).  Free with elf_producers_free. */
int elf_dwarf_producers(const ElfFile *f, char ***ret, size_t *ret_n, BaseErr *e);
void elf_producers_free(char **p, size_t n);
/* Give f the symbol table of its debug file dbg (same build-id, else
 * -ESTALE); f takes ownership of dbg. */
int elf_attach_symbols(ElfFile *f, ElfFile *dbg, BaseErr *e);

/* ---- coldpatch synthesis -------------------------------------------------- */

/* base (a base build or an earlier coldpatch of it) + payload -> the coldpatch
 * bytes in *ret (caller frees with base_buf_free).  Deterministic.  The
 * payload's build-id must match and its lineage must equal the fixes already
 * applied to base (-ESTALE otherwise, -EEXIST if it is applied already).
 * Refused (-EINVAL): SYMBOL binds (imports the base lacks) and absolute
 * relocations in a position-independent base. */
int elf_coldpatch(const uint8_t *base, size_t base_len, const ElfPayload *p, BaseBuf *ret,
		  BaseErr *e);

/* ---- description (for `svc inspect`) -------------------------------------- */

/* Human-readable multi-line description of a payload / of a linked file's
 * lineage, appended to out. */
int elf_payload_describe(const ElfPayload *p, BaseBuf *out);
int elf_describe_lineage(const uint8_t *buf, size_t len, BaseBuf *out, BaseErr *e);

#endif
