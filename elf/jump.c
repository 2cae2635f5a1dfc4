/* The x86-64 jumps a redirect writes over a function's entry window, and
 * their recognition: the one owner of these encodings (coldpatch.c writes
 * them into files, hotpatch/ into processes and reads them back).
 *
 *   PAD16      ff 25 00000000 <abs64> at the window (in memory: any reach),
 *              or e9 rel32 at the window with the 9 pad bytes after it kept
 *              (in files: a coldpatch), then eb f0 (jmp -16) at the entry;
 *   PAD_REL32  e9 rel32 in the 5 bytes before the entry, eb f9 (jmp -7) at
 *              the entry, the pad below entry-5 kept;
 *   PLAIN      e9 rel32 over the first 5 bytes of the function. */
#include <string.h>

#include "elf/internal.h"

static bool fits_rel32(int64_t v)
{
	return v >= INT32_MIN && v <= INT32_MAX;
}

/* Offset of the e9 in the window, and the address its rel32 counts from. */
static uint32_t rel32_at(uint32_t kind, uint32_t pad)
{
	return kind == ELF_ENTRY_PAD_REL32 ? pad - 5 : 0;
}

/* BASE_WRAPS: a backward jump's displacement is target - source in two's
 * complement; it is range-checked as signed (fits_rel32) afterwards. */
BASE_WRAPS int elf_jump_encode(uint32_t kind, uint32_t pad, uint64_t window, uint64_t target,
			       bool abs16, uint8_t *w)
{
	if (kind == ELF_ENTRY_PAD16 && abs16) {
		static const uint8_t jmp_abs[6] = { 0xff, 0x25, 0, 0, 0, 0 };
		memcpy(w, jmp_abs, 6);
		memcpy(w + 6, &target, 8);
		w[14] = 0xeb;
		w[15] = 0xf0;
		return 0;
	}
	if (kind != ELF_ENTRY_PAD16 && kind != ELF_ENTRY_PAD_REL32 && kind != ELF_ENTRY_PLAIN)
		return -EINVAL;
	uint32_t at = rel32_at(kind, pad);
	int64_t rel = (int64_t)(target - (window + at + 5));
	if (!fits_rel32(rel))
		return -ERANGE;
	int32_t r32 = (int32_t)rel;
	w[at] = 0xe9;
	memcpy(w + at + 1, &r32, 4);
	if (kind == ELF_ENTRY_PAD16) {
		w[14] = 0xeb;
		w[15] = 0xf0;
	} else if (kind == ELF_ENTRY_PAD_REL32) {
		w[pad] = 0xeb;
		w[pad + 1] = 0xf9;
	}
	return 0;
}

bool elf_jump_decode(uint32_t kind, uint32_t pad, uint64_t window, const uint8_t *expect,
		     const uint8_t *cur, uint64_t *ret_target)
{
	switch (kind) {
	case ELF_ENTRY_PAD16:
		if (pad != 14 || cur[0] != 0xe9 || memcmp(cur + 5, expect + 5, 9) != 0 ||
		    cur[14] != 0xeb || cur[15] != 0xf0)
			return false;
		break;
	case ELF_ENTRY_PAD_REL32:
		if (pad < 5 || memcmp(cur, expect, pad - 5) != 0 || cur[pad - 5] != 0xe9 ||
		    cur[pad] != 0xeb || cur[pad + 1] != 0xf9)
			return false;
		break;
	case ELF_ENTRY_PLAIN:
		if (pad != 0 || cur[0] != 0xe9)
			return false;
		break;
	default:
		return false;
	}
	uint32_t at = rel32_at(kind, pad);
	int32_t rel;
	memcpy(&rel, cur + at + 1, 4);
	if (ret_target)
		*ret_target = window + at + 5 + (uint64_t)(int64_t)rel;
	return true;
}
