/* The hotpatch payload (.hp): parse, check, describe, write and parse back. */
#include "elf/elf.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	ElfPayload *p = NULL, *q = NULL;
	BaseBuf desc = { 0 }, out = { 0 };
	(void)elf_is_payload(d, n);
	if (elf_payload_parse(d, n, &p, NULL) < 0)
		return 0;
	(void)elf_payload_check(p, NULL);
	(void)elf_payload_describe(p, &desc);
	if (elf_payload_write(p, &out, NULL) == 0) {
		FZ_ASSERT(elf_payload_parse(out.data, out.len, &q, NULL) == 0);
		elf_payload_free(q);
	}
	base_buf_free(&desc);
	base_buf_free(&out);
	elf_payload_free(p);
	return 0;
}
