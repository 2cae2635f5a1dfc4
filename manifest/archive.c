/* The package archive: tar (tar.c) over one gzip member (gzip.c), read as
 * a stream one entry at a time.  Reading refuses, rather than skips,
 * anything a package may not hold: a package is signed as a whole, so an
 * entry we do not understand is an entry someone added. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest/internal.h"

/* ---- read ----------------------------------------------------------------- */

struct ManifestArchive {
	const char *path;
	int fd;
	ManifestGunzip *gz;
	const uint8_t *chunk;    /* the unread rest of the current gzip chunk */
	size_t avail;
	int eof;                 /* the gzip stream ended (trailer checked) */
	int ended;               /* the end-of-archive marker was read */
	size_t n;                /* entries so far */
	char *names[MANIFEST_MAX_MEMBERS + 2];
	uint64_t size;           /* of the current entry */
	uint64_t skip;           /* bytes of the current entry (data, padding) not yet read */
};

/* Room for tar framing around MANIFEST_MAX_PACKAGE bytes of members: a
 * header, a pax header and padding per member, and the closing record. */
#define TAR_MAX ((uint64_t)MANIFEST_MAX_PACKAGE + \
		 (MANIFEST_MAX_MEMBERS + 2) * (3u * MANIFEST_TAR_BLOCK + MANIFEST_TAR_PAX_MAX) + 65536u)

enum { PULL_ALL = 0, PULL_NONE = 1, PULL_PART = 2 };

/* n bytes of tar into dst (or dropped if dst is NULL): PULL_ALL; PULL_NONE
 * if the stream ended before the first; PULL_PART if it ended after some;
 * negative (BaseErr set) if the gzip layer failed. */
static int pull(ManifestArchive *x, uint8_t *dst, uint64_t n, BaseErr *e)
{
	uint64_t got = 0;
	while (got < n) {
		if (x->avail == 0 && dst && !x->eof) {
			ssize_t k = manifest_gunzip_read_into(x->gz, dst + got, n - got, e);
			if (k < 0)
				return (int)k;
			if (k == 0) {
				x->eof = 1;
				return got ? PULL_PART : PULL_NONE;
			}
			got += (uint64_t)k;
			continue;
		}
		if (x->avail == 0) {
			ssize_t k = x->eof ? 0 : manifest_gunzip_read(x->gz, &x->chunk, e);
			if (k < 0)
				return (int)k;
			if (k == 0) {
				x->eof = 1;
				return got ? PULL_PART : PULL_NONE;
			}
			x->avail = (size_t)k;
		}
		size_t take = n - got < x->avail ? (size_t)(n - got) : x->avail;
		if (dst)
			memcpy(dst + got, x->chunk, take);
		x->chunk += take;
		x->avail -= take;
		got += take;
	}
	return PULL_ALL;
}

static uint64_t padding(uint64_t size)
{
	return (MANIFEST_TAR_BLOCK - size % MANIFEST_TAR_BLOCK) % MANIFEST_TAR_BLOCK;
}

int manifest_archive_open(const char *path, ManifestArchive **ret, BaseErr *e)
{
	ManifestArchive *x = calloc(1, sizeof(*x));
	int r;
	if (!x)
		return base_err(e, -ENOMEM, "%s: out of memory", path);
	x->path = path;
	x->fd = -1;
	r = base_fs_open_regular(AT_FDCWD, path, 0, &x->fd);
	if (r == -EINVAL)
		r = base_err(e, -EBADMSG, "%s: not a regular file", path);
	else if (r < 0)
		r = base_err(e, r, "%s: %s", path, strerror(-r));
	if (r >= 0)
		r = manifest_gunzip_open(x->fd, TAR_MAX, path, &x->gz, e);
	if (r < 0) {
		manifest_archive_close(x);
		return r;
	}
	*ret = x;
	return 0;
}

void manifest_archive_close(ManifestArchive *x)
{
	if (!x)
		return;
	manifest_gunzip_free(x->gz);
	if (x->fd >= 0)
		close(x->fd);
	for (size_t i = 0; i < x->n && i < MANIFEST_MAX_MEMBERS + 2; i++)
		free(x->names[i]);
	free(x);
}

static int not_ended(ManifestArchive *x, BaseErr *e)
{
	return base_err(e, -EBADMSG, "%s: tar archive does not end with its end-of-archive "
			"marker and zero padding", x->path);
}

/* After the first zero block: a second one, then nothing but zero bytes to
 * the end of the gzip stream (writers pad to their record size).  A cut or
 * an appended tail is refused even inside an intact gzip stream; draining
 * the stream checks its trailer. */
static int check_end(ManifestArchive *x, BaseErr *e)
{
	uint8_t b[MANIFEST_TAR_BLOCK];
	int r = pull(x, b, sizeof(b), e);
	if (r < 0)
		return r;
	if (r != PULL_ALL)
		return not_ended(x, e);
	for (;;) {
		for (size_t i = 0; i < sizeof(b); i++)
			if (b[i])
				return not_ended(x, e);
		memset(b, 0, sizeof(b));
		r = pull(x, b, sizeof(b), e);
		if (r < 0)
			return r;
		if (r == PULL_NONE)
			break;
	}
	x->ended = 1;
	return 0;
}

/* An entry's name as a package allows it: manifest, manifest.sig, or a
 * member name (text.c's rule, the one the manifest is held to); unique. */
static int take_name(ManifestArchive *x, const char *name, BaseErr *e)
{
	const char *why;
	if (strcmp(name, MANIFEST_NAME) != 0 && strcmp(name, MANIFEST_SIG_NAME) != 0 &&
	    manifest_check_member_name(name, &why) < 0)
		return base_err(e, -EBADMSG, "%s: member %s: %s", x->path, name, why);
	for (size_t i = 0; i < x->n; i++)
		if (strcmp(x->names[i], name) == 0)
			return base_err(e, -EBADMSG, "%s: member %s: duplicate name", x->path, name);
	if (x->n >= MANIFEST_MAX_MEMBERS + 2)
		return base_err(e, -EBADMSG, "%s: more than %d members", x->path,
				MANIFEST_MAX_MEMBERS + 2);
	if (!(x->names[x->n] = strdup(name)))
		return base_err(e, -ENOMEM, "%s: out of memory", x->path);
	x->n++;
	return 0;
}

int manifest_archive_next(ManifestArchive *x, const char **ret_name, uint64_t *ret_size,
			  BaseErr *e)
{
	uint8_t b[MANIFEST_TAR_BLOCK], pax[MANIFEST_TAR_PAX_MAX];
	char why[MANIFEST_TAR_WHY], path[MANIFEST_MAX_NAME + 1];
	ManifestTarHeader h;
	int r, have_pax = 0;

	if (x->ended)
		return 0;
	/* the rest of an entry whose data the caller did not take */
	r = pull(x, NULL, x->skip, e);
	if (r < 0)
		return r;
	if (r != PULL_ALL)
		return base_err(e, -EBADMSG, "%s: member %s: truncated data", x->path,
				x->names[x->n - 1]);
	x->skip = 0;
	path[0] = 0;
	for (;;) {
		r = pull(x, b, sizeof(b), e);
		if (r < 0)
			return r;
		if (r == PULL_NONE)
			return not_ended(x, e);
		if (r == PULL_PART)
			return base_err(e, -EBADMSG, "%s: entry %zu: truncated header", x->path,
					x->n + 1);
		r = manifest_tar_header_parse(b, &h, why);
		if (r < 0)
			return h.name[0] ? base_err(e, r, "%s: member %s: %s", x->path, h.name, why)
					 : base_err(e, r, "%s: entry %zu: %s", x->path, x->n + 1, why);
		if (h.kind == MANIFEST_TAR_ZERO) {
			if (have_pax)
				return base_err(e, -EBADMSG, "%s: entry %zu: pax header with no entry "
						"after it", x->path, x->n + 1);
			r = check_end(x, e);
			return r < 0 ? r : 0;
		}
		if (h.kind == MANIFEST_TAR_FILE)
			break;
		/* a pax header: its records, then the entry they describe */
		if (have_pax)
			return base_err(e, -EBADMSG, "%s: entry %zu: two pax headers in a row",
					x->path, x->n + 1);
		r = pull(x, pax, h.size, e);
		if (r == PULL_ALL)
			r = pull(x, NULL, padding(h.size), e);
		if (r < 0)
			return r;
		if (r != PULL_ALL)
			return base_err(e, -EBADMSG, "%s: entry %zu: truncated pax header", x->path,
					x->n + 1);
		r = manifest_tar_pax_parse(pax, (size_t)h.size, path, why);
		if (r < 0)
			return base_err(e, r, "%s: entry %zu: %s", x->path, x->n + 1, why);
		have_pax = 1;
	}
	r = take_name(x, path[0] ? path : h.name, e);
	if (r < 0)
		return r;
	x->size = h.size;
	x->skip = h.size + padding(h.size);
	*ret_name = x->names[x->n - 1];
	*ret_size = x->size;
	return 1;
}

/* A large member buffer is fresh mmap'ed memory: its pages are faulted in
 * with one madvise instead of one fault per page as inflate first writes
 * them (512 faults for 2 MiB, a measurable part of `svc inspect`;
 * docs/performance.md).  Best effort: before Linux 5.14 the faults happen
 * as before. */
static void prefault(uint8_t *buf, size_t len)
{
	const uintptr_t page = 4096;
	if (len < (256u << 10))
		return;
	uintptr_t a = ((uintptr_t)buf + page - 1) & ~(page - 1);
	uintptr_t b = ((uintptr_t)buf + len) & ~(page - 1);
	if (b > a)
		(void)madvise((void *)a, b - a, MADV_POPULATE_WRITE);
}

int manifest_archive_data(ManifestArchive *x, uint8_t **ret, BaseErr *e)
{
	const char *name = x->n ? x->names[x->n - 1] : "?";
	if (x->skip != x->size + padding(x->size))
		return base_err(e, -EINVAL, "%s: member %s: data already read", x->path, name);
	uint8_t *buf = malloc(x->size ? (size_t)x->size : 1);
	if (!buf)
		return base_err(e, -ENOMEM, "%s: out of memory", x->path);
	prefault(buf, (size_t)x->size);
	int r = pull(x, buf, x->size, e);
	if (r == PULL_ALL)
		r = pull(x, NULL, padding(x->size), e);
	if (r != PULL_ALL) {
		free(buf);
		return r < 0 ? r : base_err(e, -EBADMSG, "%s: member %s: truncated data", x->path,
					    name);
	}
	x->skip = 0;
	*ret = buf;
	return 0;
}

/* ---- write ---------------------------------------------------------------- */

int manifest_archive_write(const ManifestMember *members, size_t n, BaseBuf *out,
			   const char *what, BaseErr *e)
{
	BaseBuf tar = { 0 };
	int r = manifest_tar_write(members, n, &tar);
	if (r >= 0)
		r = manifest_gzip(tar.data, tar.len, out);
	base_buf_free(&tar);
	if (r < 0)
		return base_err(e, r, "%s: writing the archive failed: %s", what, base_strerror(r));
	return 0;
}
