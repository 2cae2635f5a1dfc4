/* elf — ELF64 reading and writing, object diff, hotpatch payloads and
 * coldpatch synthesis (x86-64).
 *
 * This header starts with the *payload contract* shared with hotpatch/: the
 * in-memory form of a hotpatch payload (*.hp).  Everything the live patcher
 * needs to place new code into a process is here; the serialized form is in
 * docs/formats.md. */
#ifndef SVC_ELF_H
#define SVC_ELF_H

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
			      * `eb f9` (jmp -7) at the entry; new code within +-2 GiB */
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

/* Serialized payload (*.hp): parse defensively (any malformed input is
 * -EBADMSG with a reason, never a crash), write deterministically. */
int elf_payload_parse(const uint8_t *buf, size_t len, ElfPayload **ret, BaseErr *e);
int elf_payload_write(const ElfPayload *p, BaseBuf *out, BaseErr *e);
void elf_payload_free(ElfPayload *p);

#endif
