/* Vendor side: the payload builder on a hostile base and object pair
 * (input: base, old object, new object; fz_split). */
#include "elf/elf.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	const uint8_t *part[3];
	size_t len[3];
	FzFile f[3] = { { -1, "" }, { -1, "" }, { -1, "" } };
	ElfPayload *p = NULL;

	fz_split(d, n, 3, part, len);
	for (int i = 0; i < 3; i++)
		if (fz_file(&f[i], part[i], len[i]) < 0)
			goto out;
	ElfObjectPair pair = { f[1].path, f[2].path };
	if (elf_build_payload(f[0].path, &pair, 1, "FIX-FUZZ", NULL, 0, &p, NULL) == 0) {
		BaseBuf out = { 0 };
		(void)elf_payload_write(p, &out, NULL);
		base_buf_free(&out);
		elf_payload_free(p);
	}
out:
	for (int i = 0; i < 3; i++)
		fz_file_close(&f[i]);
	return 0;
}
