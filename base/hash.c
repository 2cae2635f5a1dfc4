/* SHA-256 and MD5 (mbedTLS) and CRC-32 (zlib): the only place base touches them.
 * MD5 only to compare with dpkg's md5sums files, never to trust content. */
#include <string.h>
#include <unistd.h>
#include <mbedtls/md5.h>
#include <mbedtls/sha256.h>
#include <zlib.h>

#include "base/base.h"

void base_sha256(const void *buf, size_t len, uint8_t out[BASE_SHA256_LEN])
{
	mbedtls_sha256_ret(buf, len, out, 0);
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

static void sha256_update(void *c, const uint8_t *p, size_t n)
{
	mbedtls_sha256_update_ret(c, p, n);
}

static void md5_update(void *c, const uint8_t *p, size_t n)
{
	mbedtls_md5_update_ret(c, p, n);
}

int base_sha256_fd(int fd, uint8_t out[BASE_SHA256_LEN])
{
	mbedtls_sha256_context c;
	mbedtls_sha256_init(&c);
	mbedtls_sha256_starts_ret(&c, 0);
	int r = feed_fd(fd, sha256_update, &c);
	if (r == 0)
		mbedtls_sha256_finish_ret(&c, out);
	mbedtls_sha256_free(&c);
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
