/* The signature file (manifest.sig): its parser, and verification against
 * the trust store.  Input: the signed manifest text, then the signature
 * file (fz_split). */
#include "manifest/internal.h"
#include "tests/fuzz/trust.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	const uint8_t *part[2];
	size_t len[2];
	char key_id[BASE_SHA256_HEX];
	uint8_t der[512];
	size_t der_len = sizeof(der);
	const char *trust = fz_trustdir();

	fz_split(d, n, 2, part, len);
	(void)manifest_sigfile_parse((const char *)part[1], len[1], "fuzz", key_id, der, &der_len,
				     NULL);
	(void)manifest_verify(trust, part[0], len[0], part[1], len[1], "fuzz", key_id, NULL);
	return 0;
}
