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

static int read_entry_data(struct archive *a, size_t size, uint8_t **ret)
{
	uint8_t *buf = malloc(size ? size : 1);
	size_t got = 0;

	if (!buf)
		return -ENOMEM;
	while (got < size) {
		la_ssize_t n = archive_read_data(a, buf + got, size - got);
		if (n < 0) {
			free(buf);
			return -EBADMSG;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got != size) {
		free(buf);
		return -EBADMSG;
	}
	*ret = buf;
	return 0;
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
 * followed by nothing but zero padding: a cut or an appended tail is refused
 * even inside an intact gzip stream. */
static int check_tar_end(struct archive *a, const uint8_t *tar, size_t len)
{
	la_int64_t end = archive_read_header_position(a);
	if (end < 0 || (uint64_t)end > len || len - (size_t)end < 1024)
		return -EBADMSG;
	for (size_t i = (size_t)end; i < len; i++)
		if (tar[i])
			return -EBADMSG;
	return 0;
}

static int read_all(struct archive *a, const char *path, const uint8_t *tar, size_t tar_len,
		    ManifestMember **ret_m, size_t *ret_n, BaseErr *e)
{
	ManifestMember *m = NULL;
	size_t n = 0, total = 0;
	struct archive_entry *ent;
	int r = 0;

	for (;;) {
		int ar = archive_read_next_header(a, &ent);
		if (ar == ARCHIVE_EOF) {
			if (check_tar_end(a, tar, tar_len) < 0) {
				r = base_err(e, -EBADMSG, "%s: tar archive does not end with its "
					     "end-of-archive marker and zero padding", path);
				goto fail;
			}
			break;
		}
		/* warnings included: a package we write never provokes one */
		if (ar != ARCHIVE_OK) {
			r = base_err(e, -EBADMSG, "%s: corrupt archive after member %zu: %s", path, n,
				     archive_error_string(a) ? archive_error_string(a) : "read error");
			goto fail;
		}
		const char *name = archive_entry_pathname(ent);
		if (!name) {
			r = base_err(e, -EBADMSG, "%s: member %zu has no usable name", path, n);
			goto fail;
		}
		r = check_entry(ent, path, name, e);
		if (r < 0)
			goto fail;
		for (size_t i = 0; i < n; i++)
			if (strcmp(m[i].name, name) == 0) {
				r = base_err(e, -EBADMSG, "%s: member %s: duplicate name", path, name);
				goto fail;
			}
		if (n >= MANIFEST_MAX_MEMBERS + 2) {
			r = base_err(e, -EBADMSG, "%s: more than %d members", path,
				     MANIFEST_MAX_MEMBERS + 2);
			goto fail;
		}
		uint64_t size = (uint64_t)archive_entry_size(ent);
		if (size > MANIFEST_MAX_PACKAGE - total) {
			r = base_err(e, -EBADMSG, "%s: member %s: package unpacks to more than %u bytes",
				     path, name, MANIFEST_MAX_PACKAGE);
			goto fail;
		}
		total += (size_t)size;

		ManifestMember *nm = realloc(m, (n + 1) * sizeof(*m));
		if (!nm) {
			r = base_err(e, -ENOMEM, "%s: out of memory", path);
			goto fail;
		}
		m = nm;
		memset(&m[n], 0, sizeof(m[n]));
		m[n].name = strdup(name);
		n++;
		if (!m[n - 1].name) {
			r = base_err(e, -ENOMEM, "%s: out of memory", path);
			goto fail;
		}
		r = read_entry_data(a, (size_t)size, &m[n - 1].data);
		if (r < 0) {
			r = base_err(e, r, "%s: member %s: %s", path, name,
				     r == -EBADMSG ? (archive_error_string(a) ?
						      archive_error_string(a) : "truncated data")
						   : base_strerror(r));
			goto fail;
		}
		m[n - 1].len = (size_t)size;
		base_sha256(m[n - 1].data, m[n - 1].len, m[n - 1].sha256);
	}
	*ret_m = m;
	*ret_n = n;
	return 0;
fail:
	manifest_members_free(m, n);
	return r;
}

/* Room for tar framing around MANIFEST_MAX_PACKAGE bytes of members: a
 * header, a pax header and padding per member, and the closing record. */
#define TAR_MAX ((size_t)MANIFEST_MAX_PACKAGE + (MANIFEST_MAX_MEMBERS + 2) * 4096u + 65536u)

int manifest_archive_read(const char *path, ManifestMember **ret_members, size_t *ret_n,
			  BaseErr *e)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ uint8_t *tar = NULL;
	size_t tar_len = 0;
	struct archive *a;
	int r = base_fs_open_regular(AT_FDCWD, path, 0, &fd);

	if (r == -EINVAL)
		return base_err(e, -EBADMSG, "%s: not a regular file", path);
	if (r < 0)
		return base_err(e, r, "%s: %s", path, strerror(-r));
	r = manifest_gunzip_fd(fd, TAR_MAX, path, &tar, &tar_len, e);
	if (r < 0)
		return r;
	a = archive_read_new();
	if (!a)
		return base_err(e, -ENOMEM, "%s: out of memory", path);
	if (archive_read_support_format_tar(a) != ARCHIVE_OK ||
	    archive_read_open_memory(a, tar, tar_len) != ARCHIVE_OK) {
		r = base_err(e, -EBADMSG, "%s: not a tar archive: %s", path,
			     archive_error_string(a) ? archive_error_string(a) : "unreadable");
		archive_read_free(a);
		return r;
	}
	r = read_all(a, path, tar, tar_len, ret_members, ret_n, e);
	archive_read_free(a);
	return r;
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
