/* SHA-256 (SHA-NI via sha256ni.c, else mbedTLS), MD5 (mbedTLS) and CRC-32
 * (zlib): the only place base touches them.
 * MD5 only to compare with dpkg's md5sums files, never to trust content. */
#include <string.h>
#include <unistd.h>
#include <mbedtls/md5.h>
#include <mbedtls/sha256.h>
#include <zlib.h>

#include "base/base.h"
#include "base/internal.h"

/* SHA-256: in hardware when the CPU has the SHA extensions (sha256ni.c),
 * else mbedTLS.  One streaming context for both. */
typedef struct Sha256 {
	int ni;
	mbedtls_sha256_context m;
	uint32_t h[8];
	uint8_t buf[64];
	size_t fill;
	uint64_t total;
} Sha256;

static int sha256_ni(void)
{
	/* cpuid traps to the hypervisor in a VM: ask once (a race only
	 * computes the same answer twice) */
	static _Atomic int have = -1;
	int v = have;
	if (v < 0)
		have = v = base_sha256ni_available();
	return v;
}

static void sha256_init(Sha256 *c)
{
	static const uint32_t iv[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
					0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
	c->ni = sha256_ni();
	c->fill = 0;
	c->total = 0;
	if (c->ni) {
		memcpy(c->h, iv, sizeof(iv));
		return;
	}
	mbedtls_sha256_init(&c->m);
	mbedtls_sha256_starts_ret(&c->m, 0);
}

static void sha256_update(void *ctx, const uint8_t *p, size_t n)
{
	Sha256 *c = ctx;
	if (!c->ni) {
		mbedtls_sha256_update_ret(&c->m, p, n);
		return;
	}
	c->total += n;
	if (c->fill) {
		size_t k = 64 - c->fill < n ? 64 - c->fill : n;
		memcpy(c->buf + c->fill, p, k);
		c->fill += k;
		p += k;
		n -= k;
		if (c->fill < 64)
			return;
		base_sha256ni_blocks(c->h, c->buf, 1);
		c->fill = 0;
	}
	if (n >= 64) {
		base_sha256ni_blocks(c->h, p, n / 64);
		p += n & ~(size_t)63;
		n &= 63;
	}
	memcpy(c->buf, p, n);
	c->fill = n;
}

static void sha256_final(Sha256 *c, uint8_t out[BASE_SHA256_LEN])
{
	if (!c->ni) {
		mbedtls_sha256_finish_ret(&c->m, out);
		mbedtls_sha256_free(&c->m);
		return;
	}
	/* 0x80, zeros to 56 mod 64, the length in bits, big-endian */
	uint64_t bits = c->total * 8;
	uint8_t pad[72] = { 0x80 };
	size_t k = (c->fill < 56 ? 56 : 120) - c->fill;
	for (int i = 0; i < 8; i++)
		pad[k + i] = (uint8_t)(bits >> (56 - 8 * i));
	sha256_update(c, pad, k + 8);
	for (int i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(c->h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
		out[4 * i + 3] = (uint8_t)c->h[i];
	}
}

void base_sha256(const void *buf, size_t len, uint8_t out[BASE_SHA256_LEN])
{
	Sha256 c;
	sha256_init(&c);
	sha256_update(&c, buf, len);
	sha256_final(&c, out);
}

/* Feed every byte of fd (from offset 0) to update(). */
static int feed_fd(int fd, void (*update)(void *ctx, const uint8_t *p, size_t n), void *ctx)
{
	uint8_t chunk[65536];
	off_t off = 0;
	for (;;) {
		ssize_t n = pread(fd, chunk, sizeof(chunk), off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return 0;
		update(ctx, chunk, (size_t)n);
		off += n;
	}
}

static void md5_update(void *c, const uint8_t *p, size_t n)
{
	mbedtls_md5_update_ret(c, p, n);
}

int base_sha256_fd(int fd, uint8_t out[BASE_SHA256_LEN])
{
	Sha256 c;
	sha256_init(&c);
	int r = feed_fd(fd, sha256_update, &c);
	uint8_t h[BASE_SHA256_LEN];
	sha256_final(&c, h);   /* always: frees the mbedTLS context */
	if (r == 0)
		memcpy(out, h, sizeof(h));
	return r;
}

int base_md5_fd(int fd, uint8_t out[BASE_MD5_LEN])
{
	mbedtls_md5_context c;
	mbedtls_md5_init(&c);
	mbedtls_md5_starts_ret(&c);
	int r = feed_fd(fd, md5_update, &c);
	if (r == 0)
		mbedtls_md5_finish_ret(&c, out);
	mbedtls_md5_free(&c);
	return r;
}

void base_hex(char *out, const uint8_t *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	/* lower case only: svc writes lower case, and a second spelling of
	 * one hash would let two texts mean the same (records, manifests) */
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int base_unhex(uint8_t *out, size_t n, const char *hex)
{
	if (strlen(hex) != 2 * n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

uint32_t base_crc32(const void *buf, size_t len)
{
	uLong c = crc32(0L, Z_NULL, 0);
	const uint8_t *p = buf;
	while (len > 0) {
		uInt n = len > 1u << 30 ? 1u << 30 : (uInt)len;
		c = crc32(c, p, n);
		p += n;
		len -= n;
	}
	return (uint32_t)c;
}
