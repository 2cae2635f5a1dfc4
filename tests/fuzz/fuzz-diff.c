/* Vendor side: the object diff on a hostile pair of relocatable objects
 * (input: old object, then new object; fz_split). */
#include "elf/elf.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	const uint8_t *part[2];
	size_t len[2];
	ElfFile *a = NULL, *b = NULL;
	ElfFuncChange *c = NULL;
	size_t nc = 0;

	fz_split(d, n, 2, part, len);
	if (elf_open_mem(part[0], len[0], "old.o", &a, NULL) == 0 &&
	    elf_open_mem(part[1], len[1], "new.o", &b, NULL) == 0 &&
	    elf_diff_objects(a, b, &c, &nc, NULL) == 0)
		elf_func_changes_free(c, nc);
	elf_close(a);
	elf_close(b);
	return 0;
}
