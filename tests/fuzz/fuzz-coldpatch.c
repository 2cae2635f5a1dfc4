/* Coldpatch synthesis on a hostile base (input: base, then payload;
 * fz_split): the base comes from the serviced system, the payload from a
 * signed package. */
#include "elf/elf.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	const uint8_t *part[2];
	size_t len[2];
	ElfPayload *p = NULL;
	BaseBuf out = { 0 };

	fz_split(d, n, 2, part, len);
	if (elf_payload_parse(part[1], len[1], &p, NULL) < 0)
		return 0;
	if (elf_coldpatch(part[0], len[0], p, &out, NULL) == 0) {
		ElfFile *f = NULL;
		/* what svc would install must read as ELF again */
		FZ_ASSERT(elf_open_mem(out.data, out.len, "coldpatch", &f, NULL) == 0);
		elf_close(f);
	}
	base_buf_free(&out);
	elf_payload_free(p);
	return 0;
}
