/* The gzip layer of a package, zlib's: a package must be exactly one gzip
 * member, CRC and length checked, ending at the last byte of the file
 * (gunzip and libarchive accept trailing bytes and concatenated members).
 *
 * A stream, not a whole-file inflate: the archive reader pulls one chunk at
 * a time, so reading the manifest and its signature (the first two entries)
 * costs only their bytes, and an untrusted package is refused before the
 * rest of it is inflated at all. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "manifest/internal.h"

struct ManifestGunzip {
	int fd, started, done;
	uint64_t total, max;
	const char *what;
	z_stream z;
	uint8_t in[65536], out[65536];
};

int manifest_gunzip_open(int fd, uint64_t max, const char *what, ManifestGunzip **ret,
			 BaseErr *e)
{
	ManifestGunzip *g = calloc(1, sizeof(*g));
	if (!g)
		return base_err(e, -ENOMEM, "%s: out of memory", what);
	g->fd = fd;
	g->max = max;
	g->what = what;
	/* 16 + MAX_WBITS: a gzip wrapper, and only that */
	if (inflateInit2(&g->z, 16 + MAX_WBITS) != Z_OK) {
		free(g);
		return base_err(e, -ENOMEM, "%s: out of memory", what);
	}
	*ret = g;
	return 0;
}

void manifest_gunzip_free(ManifestGunzip *g)
{
	if (!g)
		return;
	inflateEnd(&g->z);
	free(g);
}

/* Refill the input; 0 at the end of the file. */
static ssize_t fill(ManifestGunzip *g, BaseErr *e)
{
	for (;;) {
		ssize_t n = read(g->fd, g->in, sizeof(g->in));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return base_err(e, -errno, "%s: read: %s", g->what, strerror(errno));
		if (n > 0 && !g->started && (n < 2 || g->in[0] != 0x1f || g->in[1] != 0x8b))
			return base_err(e, -EBADMSG, "%s: not a gzip-compressed tar archive", g->what);
		g->started = 1;
		g->z.next_in = g->in;
		g->z.avail_in = (uInt)n;
		return n;
	}
}

/* Inflate into out (at most cap bytes): the count, 0 at the end. */
static ssize_t inflate_to(ManifestGunzip *g, uint8_t *out, size_t cap, BaseErr *e)
{
	if (cap > UINT32_MAX)
		cap = UINT32_MAX;
	while (!g->done) {
		if (g->z.avail_in == 0) {
			ssize_t n = fill(g, e);
			if (n < 0)
				return n;
			if (n == 0)
				return base_err(e, -EBADMSG, "%s: truncated gzip stream", g->what);
		}
		g->z.next_out = out;
		g->z.avail_out = (uInt)cap;
		int zr = inflate(&g->z, Z_NO_FLUSH);
		if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
			return base_err(e, -EBADMSG, "%s: corrupt gzip data: %s", g->what,
					g->z.msg ? g->z.msg : "inflate failed");
		size_t got = cap - g->z.avail_out;
		if (got > g->max - g->total)
			return base_err(e, -EBADMSG, "%s: unpacks to more than %ju bytes", g->what,
					(uintmax_t)g->max);
		g->total += got;
		if (zr == Z_STREAM_END) {
			/* nothing may follow: not in this read, not in the file */
			char c;
			if (g->z.avail_in > 0 || read(g->fd, &c, 1) != 0)
				return base_err(e, -EBADMSG, "%s: data after the gzip stream", g->what);
			g->done = 1;
		}
		if (got)
			return (ssize_t)got;
	}
	return 0;
}

ssize_t manifest_gunzip_read(ManifestGunzip *g, const uint8_t **ret, BaseErr *e)
{
	ssize_t n = inflate_to(g, g->out, sizeof(g->out), e);
	if (n > 0)
		*ret = g->out;
	return n;
}

/* A member's data straight into its buffer: one copy fewer of every byte
 * (inflating stored blocks is itself a copy). */
ssize_t manifest_gunzip_read_into(ManifestGunzip *g, uint8_t *dst, size_t cap, BaseErr *e)
{
	return inflate_to(g, dst, cap, e);
}

/* zlib's own gzip wrapper with no gz_header set writes MTIME 0, no name,
 * XFL 0 (default level) and OS 3: with raw deflate at the default level,
 * window 15 and memLevel 8 inside, these are the bytes libarchive's gzip
 * filter wrote for svc before (tests/test-manifest.c compares them). */
int manifest_gzip(const uint8_t *data, size_t len, BaseBuf *out)
{
	z_stream z;
	uint8_t chunk[65536];
	int r = 0, zr = Z_OK;
	if (len > UINT32_MAX)
		return -EFBIG;
	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	z.next_in = (Bytef *)data;
	z.avail_in = (uInt)len;
	while (r >= 0 && zr != Z_STREAM_END) {
		z.next_out = chunk;
		z.avail_out = sizeof(chunk);
		zr = deflate(&z, Z_FINISH);
		if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
			r = -EIO;
		else
			r = base_buf_append(out, chunk, sizeof(chunk) - z.avail_out);
	}
	deflateEnd(&z);
	return r;
}
