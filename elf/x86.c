/* x86-64 decoding behind one small interface (Capstone), for the builder
 * and the live patcher alike: instruction boundaries and branch targets of a
 * function, to tell whether its body jumps back into the bytes a redirect
 * overwrites.
 *
 * Why Capstone and not Zydis: both decode x86-64 correctly; Capstone is in
 * Debian 12 as a stable shared library (libcapstone4) with a decade-old C API
 * whose "detail" mode gives the branch groups and immediate targets directly,
 * while Debian's Zydis (libzydis-dev) is a 3.x API that 4.x reworked, and we
 * only need a decoder, not its formatter or encoder. */
#include <capstone/capstone.h>
#include <stdio.h>

#include "elf/internal.h"

int elf_x86_scan(const uint8_t *code, size_t len, uint64_t addr, uint64_t lo, uint64_t hi,
		 ElfX86Scan *ret)
{
	ElfX86Scan out = { .first_len = 0 };
	csh h;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK)
		return -ENOMEM;
	cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
	cs_insn *insn = cs_malloc(h);
	if (!insn) {
		cs_close(&h);
		return -ENOMEM;
	}
	const uint8_t *p = code;
	size_t left = len;
	uint64_t at = addr;
	while (left) {
		uint64_t here = at;
		if (!cs_disasm_iter(h, &p, &left, &at, insn)) {
			/* data or padding we cannot read as code: what follows is
			 * unknown, so the caller must assume the worst */
			out.undecoded = here;
			break;
		}
		if (!out.first_len)
			out.first_len = insn->size;
		bool jump = cs_insn_group(h, insn, CS_GRP_JUMP);
		if (!jump && !cs_insn_group(h, insn, CS_GRP_CALL))
			continue;
		const cs_x86 *x = &insn->detail->x86;
		if (x->op_count == 1 && x->operands[0].type == X86_OP_IMM) {
			uint64_t t = (uint64_t)x->operands[0].imm;
			if (t >= lo && t < hi && t != addr && !out.into) {
				out.into = here;
				out.target = t;
			}
		} else if (jump && !out.indirect) {
			out.indirect = here;
		}
	}
	cs_free(insn, 1);
	cs_close(&h);
	*ret = out;
	return 0;
}
