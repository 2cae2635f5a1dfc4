/* SHA-256 (mbedTLS) and CRC-32 (zlib): the only place base touches them. */
#include <string.h>
#include <unistd.h>
#include <mbedtls/sha256.h>
#include <zlib.h>

#include "base/base.h"

void base_sha256(const void *buf, size_t len, uint8_t out[BASE_SHA256_LEN])
{
	mbedtls_sha256_ret(buf, len, out, 0);
}

int base_sha256_fd(int fd, uint8_t out[BASE_SHA256_LEN])
{
	mbedtls_sha256_context c;
	uint8_t chunk[65536];
	off_t off = 0;
	int r = 0;

	mbedtls_sha256_init(&c);
	mbedtls_sha256_starts_ret(&c, 0);
	for (;;) {
		ssize_t n = pread(fd, chunk, sizeof(chunk), off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		mbedtls_sha256_update_ret(&c, chunk, (size_t)n);
		off += n;
	}
	if (r == 0)
		mbedtls_sha256_finish_ret(&c, out);
	mbedtls_sha256_free(&c);
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
