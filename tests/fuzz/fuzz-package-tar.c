/* A package whose tar layer is the input: wrapped here in valid gzip
 * framing (CRC and length right), so mutations reach svc's own tar reader
 * (manifest/tar.c, archive.c: headers, pax records, the end marker), the
 * signature and the manifest instead of dying at the CRC check.  Seeds:
 * svc's packages, and the same members archived by GNU tar (gnu, pax) and
 * bsdtar (pax). */
#include <zlib.h>

#include "tests/fuzz/trust.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	z_stream z;
	FzFile f;

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return 0;
	size_t cap = deflateBound(&z, (uLong)n);
	uint8_t *gz = malloc(cap);
	z.next_in = (Bytef *)d;
	z.avail_in = (uInt)n;
	z.next_out = gz;
	z.avail_out = (uInt)cap;
	int zr = gz ? deflate(&z, Z_FINISH) : Z_MEM_ERROR;
	size_t gz_len = cap - z.avail_out;
	deflateEnd(&z);
	if (zr != Z_STREAM_END || fz_file(&f, gz, gz_len) < 0) {
		free(gz);
		return 0;
	}
	free(gz);
	fz_open_package(f.path);
	fz_file_close(&f);
	return 0;
}
