/* A whole package (.hfx) as the installer opens it: gzip, tar, signature,
 * manifest, member hashes. */
#include "tests/fuzz/trust.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	ManifestPackage *p = NULL;
	FzFile f;
	const char *trust = fz_trustdir();
	if (fz_file(&f, d, n) < 0)
		return 0;
	if (manifest_open_unverified(f.path, &p, NULL) == 0)
		manifest_free(p);
	p = NULL;
	if (manifest_open(f.path, trust, &p, NULL) == 0)
		manifest_free(p);
	fz_file_close(&f);
	return 0;
}
