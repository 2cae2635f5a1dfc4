/* Package archive I/O: the only file of svc that sees libarchive.  A package
 * is a gzip-compressed tar (ustar, pax where a name needs it) of regular
 * files only.  The gzip layer is read by gzip.c (zlib), the tar inside here.  Reading refuses, rather than skips, anything else: a package
 * is signed as a whole, so an entry we do not understand is an entry someone
 * added. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "manifest/internal.h"

/* ---- read ----------------------------------------------------------------- */

struct ManifestArchive {
	const char *path;
	int fd;
	ManifestGunzip *gz;
	struct archive *a;
	BaseErr *e;              /* where the gzip layer records its failure */
	BaseErr gz_err;
	uint64_t off;            /* tar bytes handed to libarchive so far */
	int64_t last_nonzero;    /* offset of the last non-zero tar byte seen */
	size_t n;                /* entries so far */
	char *names[MANIFEST_MAX_MEMBERS + 2];
	uint64_t size;           /* of the current entry */
	int data_read;
};

/* Room for tar framing around MANIFEST_MAX_PACKAGE bytes of members: a
 * header, a pax header and padding per member, and the closing record. */
#define TAR_MAX ((uint64_t)MANIFEST_MAX_PACKAGE + (MANIFEST_MAX_MEMBERS + 2) * 4096u + 65536u)

static la_ssize_t tar_read(struct archive *a, void *ctx, const void **buf)
{
	ManifestArchive *x = ctx;
	const uint8_t *p = NULL;
	ssize_t n = manifest_gunzip_read(x->gz, &p, &x->gz_err);
	if (n < 0) {
		archive_set_error(a, EIO, "%s", x->gz_err.msg);
		return -1;
	}
	for (ssize_t i = n; i-- > 0;)
		if (p[i]) {
			x->last_nonzero = (int64_t)(x->off + (uint64_t)i);
			break;
		}
	x->off += (uint64_t)n;
	*buf = p;
	return n;
}

int manifest_archive_open(const char *path, ManifestArchive **ret, BaseErr *e)
{
	ManifestArchive *x = calloc(1, sizeof(*x));
	int r;
	if (!x)
		return base_err(e, -ENOMEM, "%s: out of memory", path);
	x->path = path;
	x->fd = -1;
	x->last_nonzero = -1;
	r = base_fs_open_regular(AT_FDCWD, path, 0, &x->fd);
	if (r == -EINVAL)
		r = base_err(e, -EBADMSG, "%s: not a regular file", path);
	else if (r < 0)
		r = base_err(e, r, "%s: %s", path, strerror(-r));
	if (r >= 0)
		r = manifest_gunzip_open(x->fd, TAR_MAX, path, &x->gz, e);
	if (r >= 0 && !(x->a = archive_read_new()))
		r = base_err(e, -ENOMEM, "%s: out of memory", path);
	if (r >= 0 && (archive_read_support_format_tar(x->a) != ARCHIVE_OK ||
		       archive_read_open(x->a, x, NULL, tar_read, NULL) != ARCHIVE_OK))
		r = x->gz_err.code ? base_err(e, x->gz_err.code, "%s", x->gz_err.msg)
				   : base_err(e, -EBADMSG, "%s: not a tar archive: %s", path,
					      archive_error_string(x->a) ?
						      archive_error_string(x->a) : "unreadable");
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
	if (x->a)
		archive_read_free(x->a);
	manifest_gunzip_free(x->gz);
	if (x->fd >= 0)
		close(x->fd);
	for (size_t i = 0; i < x->n && i < MANIFEST_MAX_MEMBERS + 2; i++)
		free(x->names[i]);
	free(x);
}

static int check_entry(struct archive_entry *ent, const char *path, const char *name,
		       BaseErr *e)
{
	const char *why;
	if (archive_entry_filetype(ent) != AE_IFREG || archive_entry_hardlink(ent) ||
	    archive_entry_symlink(ent))
		return base_err(e, -EBADMSG, "%s: member %s: not a regular file", path, name);
	if (archive_entry_sparse_count(ent) > 0)
		return base_err(e, -EBADMSG, "%s: member %s: sparse file", path, name);
	if (strcmp(name, MANIFEST_NAME) != 0 && strcmp(name, MANIFEST_SIG_NAME) != 0 &&
	    manifest_check_member_name(name, &why) < 0)
		return base_err(e, -EBADMSG, "%s: member %s: %s", path, name, why);
	if (!archive_entry_size_is_set(ent) || archive_entry_size(ent) < 0)
		return base_err(e, -EBADMSG, "%s: member %s: no size", path, name);
	return 0;
}

/* libarchive stops at the first zero block, and does not mind if there is
 * none.  A package ends with the end-of-archive marker (two zero blocks)
 * followed by nothing but zero padding to the end of the gzip stream: a cut
 * or an appended tail is refused even inside an intact gzip stream.  The
 * rest of the stream is drained (its trailer checked) watching for any
 * non-zero byte at or after the marker. */
static int check_end(ManifestArchive *x, BaseErr *e)
{
	la_int64_t end = archive_read_header_position(x->a);
	const uint8_t *p;
	ssize_t n;
	while ((n = tar_read(x->a, x, (const void **)&p)) > 0)
		;
	if (n < 0)
		return base_err(e, x->gz_err.code, "%s", x->gz_err.msg);
	if (end < 0 || (uint64_t)end > x->off || x->off - (uint64_t)end < 1024 ||
	    x->last_nonzero >= end)
		return base_err(e, -EBADMSG, "%s: tar archive does not end with its "
				"end-of-archive marker and zero padding", x->path);
	return 0;
}

int manifest_archive_next(ManifestArchive *x, const char **ret_name, uint64_t *ret_size,
			  BaseErr *e)
{
	struct archive_entry *ent;
	int ar = archive_read_next_header(x->a, &ent);
	int r;
	if (ar == ARCHIVE_EOF) {
		r = check_end(x, e);
		return r < 0 ? r : 0;
	}
	/* warnings included: a package we write never provokes one */
	if (ar != ARCHIVE_OK) {
		if (x->gz_err.code)
			return base_err(e, x->gz_err.code, "%s", x->gz_err.msg);
		return base_err(e, -EBADMSG, "%s: corrupt archive after member %zu: %s", x->path,
				x->n, archive_error_string(x->a) ? archive_error_string(x->a)
								 : "read error");
	}
	const char *name = archive_entry_pathname(ent);
	if (!name)
		return base_err(e, -EBADMSG, "%s: member %zu has no usable name", x->path, x->n);
	r = check_entry(ent, x->path, name, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < x->n; i++)
		if (strcmp(x->names[i], name) == 0)
			return base_err(e, -EBADMSG, "%s: member %s: duplicate name", x->path, name);
	if (x->n >= MANIFEST_MAX_MEMBERS + 2)
		return base_err(e, -EBADMSG, "%s: more than %d members", x->path,
				MANIFEST_MAX_MEMBERS + 2);
	if (!(x->names[x->n] = strdup(name)))
		return base_err(e, -ENOMEM, "%s: out of memory", x->path);
	x->n++;
	x->size = (uint64_t)archive_entry_size(ent);
	x->data_read = 0;
	*ret_name = x->names[x->n - 1];
	*ret_size = x->size;
	return 1;
}

int manifest_archive_data(ManifestArchive *x, uint8_t **ret, BaseErr *e)
{
	const char *name = x->n ? x->names[x->n - 1] : "?";
	if (x->size > MANIFEST_MAX_PACKAGE)
		return base_err(e, -EBADMSG, "%s: member %s: more than %u bytes", x->path, name,
				MANIFEST_MAX_PACKAGE);
	uint8_t *buf = malloc(x->size ? (size_t)x->size : 1);
	size_t got = 0;
	if (!buf)
		return base_err(e, -ENOMEM, "%s: out of memory", x->path);
	while (got < x->size) {
		la_ssize_t n = archive_read_data(x->a, buf + got, (size_t)x->size - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got != x->size) {
		free(buf);
		if (x->gz_err.code)
			return base_err(e, x->gz_err.code, "%s", x->gz_err.msg);
		return base_err(e, -EBADMSG, "%s: member %s: %s", x->path, name,
				archive_error_string(x->a) ? archive_error_string(x->a)
							   : "truncated data");
	}
	x->data_read = 1;
	*ret = buf;
	return 0;
}

/* ---- write ---------------------------------------------------------------- */

static la_ssize_t buf_write(struct archive *a, void *ctx, const void *p, size_t n)
{
	(void)a;
	return base_buf_append(ctx, p, n) < 0 ? -1 : (la_ssize_t)n;
}

int manifest_archive_write(const ManifestMember *members, size_t n, BaseBuf *out,
			   const char *what, BaseErr *e)
{
	struct archive *a = archive_write_new();
	struct archive_entry *ent = archive_entry_new();
	BaseBuf b = { 0 };
	int r = 0;

	if (!a || !ent) {
		r = -ENOMEM;
		goto out;
	}
	/* pax only where ustar cannot say it (long names); no gzip timestamp,
	 * no padding of the compressed stream: the same input, the same bytes */
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
	    archive_write_set_filter_option(a, "gzip", "timestamp", NULL) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open2(a, &b, NULL, buf_write, NULL, NULL) != ARCHIVE_OK) {
		r = -EIO;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		archive_entry_clear(ent);
		archive_entry_set_pathname(ent, members[i].name);
		archive_entry_set_filetype(ent, AE_IFREG);
		archive_entry_set_perm(ent, 0644);
		archive_entry_set_size(ent, (la_int64_t)members[i].len);
		archive_entry_set_mtime(ent, 0, 0);
		archive_entry_set_uid(ent, 0);
		archive_entry_set_gid(ent, 0);
		if (archive_write_header(a, ent) != ARCHIVE_OK ||
		    (members[i].len && archive_write_data(a, members[i].data, members[i].len) !=
					       (la_ssize_t)members[i].len)) {
			r = -EIO;
			goto out;
		}
	}
	if (archive_write_close(a) != ARCHIVE_OK)
		r = -EIO;
out:
	if (r < 0)
		r = base_err(e, r, "%s: writing the archive failed: %s", what,
			     a && archive_error_string(a) ? archive_error_string(a) : base_strerror(r));
	if (a)
		archive_write_free(a);
	if (ent)
		archive_entry_free(ent);
	if (r >= 0)
		r = base_buf_append(out, b.data, b.len);
	base_buf_free(&b);
	return r;
}
