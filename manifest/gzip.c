/* The gzip layer of a package, done with zlib rather than libarchive's
 * filter: libarchive tolerates trailing bytes after a gzip stream (and
 * further concatenated members), a package must be exactly one gzip member,
 * CRC and length checked, ending at the last byte of the file. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "manifest/internal.h"

int manifest_gunzip_fd(int fd, size_t max, const char *what, uint8_t **ret_buf,
		       size_t *ret_len, BaseErr *e)
{
	uint8_t in[65536];
	BaseBuf out = { 0 };
	z_stream z;
	int zr = Z_OK, r = 0, first = 1, done = 0;

	memset(&z, 0, sizeof(z));
	/* 16 + MAX_WBITS: a gzip wrapper, and only that */
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return base_err(e, -ENOMEM, "%s: out of memory", what);
	while (!done) {
		ssize_t n = read(fd, in, sizeof(in));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = base_err(e, -errno, "%s: read: %s", what, strerror(errno));
			goto out;
		}
		if (n == 0) {
			r = base_err(e, -EBADMSG, "%s: truncated gzip stream", what);
			goto out;
		}
		if (first && (n < 2 || in[0] != 0x1f || in[1] != 0x8b)) {
			r = base_err(e, -EBADMSG, "%s: not a gzip-compressed tar archive", what);
			goto out;
		}
		first = 0;
		z.next_in = in;
		z.avail_in = (uInt)n;
		/* until the input is used up and the output no longer fills the chunk */
		do {
			uint8_t chunk[65536];
			z.next_out = chunk;
			z.avail_out = sizeof(chunk);
			zr = inflate(&z, Z_NO_FLUSH);
			if (zr == Z_BUF_ERROR)  /* no progress possible: wants more input */
				break;
			if (zr != Z_OK && zr != Z_STREAM_END) {
				r = base_err(e, -EBADMSG, "%s: corrupt gzip data: %s", what,
					     z.msg ? z.msg : "inflate failed");
				goto out;
			}
			size_t got = sizeof(chunk) - z.avail_out;
			if (out.len + got > max) {
				r = base_err(e, -EBADMSG, "%s: unpacks to more than %zu bytes", what, max);
				goto out;
			}
			if (base_buf_append(&out, chunk, got) < 0) {
				r = base_err(e, -ENOMEM, "%s: out of memory", what);
				goto out;
			}
			if (zr == Z_STREAM_END) {
				done = 1;
				break;
			}
		} while (z.avail_in > 0 || z.avail_out == 0);
	}
	/* nothing may follow: not in this read, not in the file */
	if (z.avail_in > 0 || read(fd, in, 1) != 0) {
		r = base_err(e, -EBADMSG, "%s: data after the gzip stream", what);
		goto out;
	}
	if (!out.data && base_buf_append(&out, "", 0) < 0) {
		r = base_err(e, -ENOMEM, "%s: out of memory", what);
		goto out;
	}
	*ret_buf = BASE_TAKE_PTR(out.data);
	*ret_len = out.len;
out:
	inflateEnd(&z);
	base_buf_free(&out);
	return r;
}
