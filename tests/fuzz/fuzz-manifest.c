/* The manifest text parser; what it accepts formats and parses back to the same text. */
#include "manifest/manifest.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	ManifestPackage *p = NULL, *q = NULL;
	BaseBuf a = { 0 }, b = { 0 };
	if (manifest_parse((const char *)d, n, &p, NULL) < 0)
		return 0;
	FZ_ASSERT(manifest_format(p, &a) == 0);
	FZ_ASSERT(manifest_parse((const char *)a.data, a.len, &q, NULL) == 0);
	FZ_ASSERT(manifest_format(q, &b) == 0);
	FZ_ASSERT(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
	base_buf_free(&a);
	base_buf_free(&b);
	manifest_free(p);
	manifest_free(q);
	return 0;
}
