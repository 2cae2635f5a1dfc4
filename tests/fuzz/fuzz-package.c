/* A whole package (.hfx) as the installer opens it: gzip, tar, signature,
 * manifest, member hashes. */
#include "tests/fuzz/trust.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	FzFile f;
	if (fz_file(&f, d, n) < 0)
		return 0;
	fz_open_package(f.path);
	fz_file_close(&f);
	return 0;
}
