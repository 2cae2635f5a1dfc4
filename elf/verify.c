/* Base verification.  A payload is built from the vendor's objects of the
 * base build, but the process runs the base file: if those objects came
 * from another source tree or other flags, the payload would bind new code
 * to a layout it never had and redirect functions whose code it never saw,
 * silently.  So every function of the base object that the fix replaces or
 * calls into is compared with the base file's bytes at that symbol.  The
 * fields the linker fills in (relocations) are masked, and so are the
 * instruction bytes that ld's documented relaxations rewrite: GOTPCRELX
 * `mov foo@GOTPCREL(%rip)` -> `lea foo(%rip)`, `call/jmp *foo@GOTPCREL` ->
 * `addr32 call foo` / `jmp foo; nop`, and the TLS model relaxations. */
#include <stdlib.h>
#include <string.h>

#include "elf/internal.h"

/* Bytes [lo, hi) relative to the relocated field that ld may rewrite. */
static void relaxable(uint32_t type, int *lo, int *hi)
{
	switch (type) {
	case R_X86_64_64:
		*lo = 0, *hi = 8;
		break;
	case R_X86_64_GOTPCRELX:
	case R_X86_64_REX_GOTPCRELX:
		*lo = -2, *hi = 5; /* opcode/modrm; `jmp foo; nop` adds a byte */
		break;
	case R_X86_64_GOTTPOFF:
	case R_X86_64_GOTPC32_TLSDESC:
		*lo = -3, *hi = 4; /* rex, opcode, modrm */
		break;
	case R_X86_64_TLSGD:
	case R_X86_64_TLSLD:
		*lo = -4, *hi = 12; /* the whole lea + call __tls_get_addr sequence */
		break;
	case R_X86_64_TLSDESC_CALL:
		*lo = 0, *hi = 2;   /* the call *(%rax) itself, no field */
		break;
	default:
		*lo = 0, *hi = 4;
		break;
	}
}

int elf_verify_function(const ElfFile *base, const ElfSymbol *bs, const ElfFile *old_o,
			const ElfSymbol *os, BaseErr *e)
{
	const ElfSection *sec = &old_o->sections[os->shndx];
	if (bs->size != os->size)
		return base_err(e, -ESTALE,
				"%s does not match the base build: '%s' is %llu bytes, %llu in %s",
				old_o->name, os->name, (unsigned long long)os->size,
				(unsigned long long)bs->size, base->name);
	uint64_t off;
	if (!sec->data || !elf_in_bounds(os->value, os->size, sec->size))
		return base_err(e, -EBADMSG, "%s: '%s' outside its section", old_o->name, os->name);
	if (elf_vaddr_to_offset(base, bs->value, bs->size, &off) < 0)
		return base_err(e, -ESTALE, "%s: '%s' is not backed by file bytes", base->name,
				os->name);
	uint8_t *mask = calloc(os->size + 1, 1);
	if (!mask)
		return -ENOMEM;
	const ElfSection *rs = elf_obj_relsec(old_o, os->shndx);
	for (size_t i = 0; rs && i < rs->n_relas; i++) {
		const ElfRela *r = &rs->relas[i];
		int lo, hi;
		relaxable(r->type, &lo, &hi);
		for (int64_t k = (int64_t)r->offset + lo; k < (int64_t)r->offset + hi; k++)
			if (k >= (int64_t)os->value && k < (int64_t)(os->value + os->size))
				mask[k - (int64_t)os->value] = 1;
	}
	const uint8_t *a = sec->data + os->value, *b = base->data + off;
	int r = 0;
	for (uint64_t i = 0; i < os->size; i++)
		if (!mask[i] && a[i] != b[i]) {
			r = base_err(e, -ESTALE, "%s does not match the base build: '%s' differs at +0x%llx",
				     old_o->name, os->name, (unsigned long long)i);
			break;
		}
	free(mask);
	return r;
}
