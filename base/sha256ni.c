/* SHA-256 compression with the x86 SHA extensions (SHA-NI), for hash.c.
 *
 * Why our own: every package member, staged file, backup and replayed
 * target is hashed, and mbedTLS 2.28's portable C compression runs at a
 * third of coreutils' sha256sum on the same machine, while the CPUs svc
 * runs on (AMD since Zen, Intel since Ice Lake / Goldmont) do a 64-byte
 * block in hardware several times faster still (docs/performance.md).
 * hash.c asks base_sha256ni_available() once and falls back to mbedTLS.
 *
 * The state lives in the two registers the instructions want: ABEF and
 * CDGH (sha256rnds2 takes the a,b,e,f words in one operand and c,d,g,h in
 * the other).  Each group of four rounds adds four round constants to four
 * schedule words; sha256msg1/msg2 extend the schedule four words at a time
 * (W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16], the W[t-7] term from
 * an alignr of the two previous groups). */
#include <cpuid.h>
#include <immintrin.h>
#include <stdint.h>
#include <stddef.h>

#include "base/internal.h"

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

int base_sha256ni_available(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return 0;
	int ssse3 = !!(c & bit_SSSE3), sse41 = !!(c & bit_SSE4_1);
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return 0;
	return ssse3 && sse41 && (b & bit_SHA);
}

__attribute__((target("sha,sse4.1,ssse3")))
void base_sha256ni_blocks(uint32_t h[8], const uint8_t *p, size_t nblocks)
{
	/* big-endian words of the message, as little-endian lanes */
	const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
	__m128i abcd = _mm_loadu_si128((const __m128i *)&h[0]);  /* lanes a b c d */
	__m128i efgh = _mm_loadu_si128((const __m128i *)&h[4]);  /* lanes e f g h */
	/* ABEF: lanes (from high to low) a b e f; CDGH: c d g h */
	__m128i t = _mm_shuffle_epi32(abcd, 0xb1);        /* b a d c */
	efgh = _mm_shuffle_epi32(efgh, 0x1b);             /* h g f e */
	__m128i abef = _mm_alignr_epi8(t, efgh, 8);       /* f e b a -> high: a b e f */
	__m128i cdgh = _mm_blend_epi16(efgh, t, 0xf0);    /* h g d c -> high: c d g h */

	for (; nblocks; nblocks--, p += 64) {
		__m128i abef0 = abef, cdgh0 = cdgh, w[4], x;
		for (int g = 0; g < 16; g++) {
			__m128i *cur = &w[g & 3];
			if (g < 4) {
				*cur = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * g)),
							bswap);
			} else {
				/* w[g&3] holds W of group g-4; the previous three groups
				 * are g-3, g-2, g-1 */
				__m128i m1 = _mm_sha256msg1_epu32(*cur, w[(g - 3) & 3]);
				__m128i w7 = _mm_alignr_epi8(w[(g - 1) & 3], w[(g - 2) & 3], 4);
				*cur = _mm_sha256msg2_epu32(_mm_add_epi32(m1, w7), w[(g - 1) & 3]);
			}
			x = _mm_add_epi32(*cur, _mm_loadu_si128((const __m128i *)&K[4 * g]));
			cdgh = _mm_sha256rnds2_epu32(cdgh, abef, x);
			x = _mm_shuffle_epi32(x, 0x0e);
			abef = _mm_sha256rnds2_epu32(abef, cdgh, x);
		}
		abef = _mm_add_epi32(abef, abef0);
		cdgh = _mm_add_epi32(cdgh, cdgh0);
	}

	t = _mm_shuffle_epi32(abef, 0x1b);                /* lanes f e b a -> a b e f reversed */
	cdgh = _mm_shuffle_epi32(cdgh, 0xb1);
	abcd = _mm_blend_epi16(t, cdgh, 0xf0);
	efgh = _mm_alignr_epi8(cdgh, t, 8);
	_mm_storeu_si128((__m128i *)&h[0], abcd);
	_mm_storeu_si128((__m128i *)&h[4], efgh);
}
