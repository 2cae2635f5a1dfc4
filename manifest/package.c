/* Packing and opening a package: the order of the checks is the security
 * argument.  open reads the archive as a stream: the first two entries must
 * be `manifest` and `manifest.sig` (bounded: 1 MiB, 4 KiB); the signature
 * over the manifest bytes is checked against the trust store, and the
 * manifest parsed, before one byte of any other entry is inflated.  Each
 * further entry must be listed, with the listed size, before its data is
 * read (so memory is bounded by what the signed manifest declares), and its
 * SHA-256 must match; every listed member must come.  Nothing is handed to
 * the caller before all of that, and nothing is ever written to disk. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "manifest/internal.h"

/* The next entry, which must be `want`, at most max bytes, read whole. */
static int read_first(ManifestArchive *a, const char *path, const char *want, uint64_t max,
		      uint8_t **ret, size_t *ret_len, BaseErr *e)
{
	const char *name;
	uint64_t size;
	int r = manifest_archive_next(a, &name, &size, e);
	if (r < 0)
		return r;
	if (r == 0 || strcmp(name, want) != 0)
		return base_err(e, -EBADMSG, "%s: member %s: missing (it must come %s in the "
				"archive)", path, want,
				strcmp(want, MANIFEST_NAME) == 0 ? "first" : "second");
	if (size > max)
		return base_err(e, -EBADMSG, "%s: member %s: %ju bytes, at most %ju", path, want,
				(uintmax_t)size, (uintmax_t)max);
	r = manifest_archive_data(a, ret, e);
	if (r >= 0)
		*ret_len = (size_t)size;
	return r;
}

static int open_package(const char *path, const char *trustdir, int verify,
			ManifestPackage **ret_pkg, BaseErr *e)
{
	_cleanup_free_ char *what_m = base_strdupf("%s: %s", path, MANIFEST_NAME);
	_cleanup_free_ char *what_s = base_strdupf("%s: %s", path, MANIFEST_SIG_NAME);
	_cleanup_free_ uint8_t *text = NULL, *sig = NULL;
	ManifestArchive *a = NULL;
	ManifestPackage *pkg = NULL;
	char key_id[BASE_SHA256_HEX];
	size_t text_len = 0, sig_len = 0;
	int r;

	if (!what_m || !what_s)
		return -ENOMEM;
	r = manifest_archive_open(path, &a, e);
	if (r >= 0)
		r = read_first(a, path, MANIFEST_NAME, MANIFEST_MAX_TEXT, &text, &text_len, e);
	if (r >= 0)
		r = read_first(a, path, MANIFEST_SIG_NAME, MANIFEST_MAX_SIGTEXT, &sig, &sig_len, e);
	if (r < 0)
		goto out;
	/* the signer first: nothing else of the package is inflated until
	 * its signer is known and trusted */
	key_id[0] = 0;
	if (verify) {
		r = manifest_verify(trustdir, text, text_len, sig, sig_len, what_s, key_id, e);
		if (r < 0)
			goto out;
	}
	r = manifest_parse_named((const char *)text, text_len, what_m, &pkg, e);
	if (r < 0)
		goto out;

	size_t seen = 0;
	for (;;) {
		const char *name;
		uint64_t size;
		r = manifest_archive_next(a, &name, &size, e);
		if (r < 0)
			goto out;
		if (r == 0)
			break;
		ManifestMember *m = (ManifestMember *)manifest_member(pkg, name);
		if (!m) {
			r = base_err(e, -EBADMSG, "%s: member %s: not listed in the manifest", path,
				     name);
			goto out;
		}
		if (size != m->len) {
			r = base_err(e, -EBADMSG, "%s: member %s: %ju bytes, manifest says %zu", path,
				     name, (uintmax_t)size, m->len);
			goto out;
		}
		uint8_t *data = NULL, h[BASE_SHA256_LEN];
		r = manifest_archive_data(a, &data, e);
		if (r < 0)
			goto out;
		base_sha256(data, m->len, h);
		if (memcmp(h, m->sha256, BASE_SHA256_LEN) != 0) {
			free(data);
			r = base_err(e, -EBADMSG, "%s: member %s: sha256 does not match the manifest",
				     path, name);
			goto out;
		}
		m->data = data;
		seen++;
	}
	for (size_t i = 0; i < pkg->n_members && seen != pkg->n_members; i++)
		if (!pkg->members[i].data) {
			r = base_err(e, -EBADMSG, "%s: member %s: listed in the manifest but missing",
				     path, pkg->members[i].name);
			goto out;
		}
	memcpy(pkg->key_id, key_id, BASE_SHA256_HEX);
	*ret_pkg = BASE_TAKE_PTR(pkg);
	r = 0;
out:
	manifest_free(pkg);
	manifest_archive_close(a);
	return r;
}

int manifest_open(const char *path, const char *trustdir, ManifestPackage **ret_pkg,
		  BaseErr *e)
{
	return open_package(path, trustdir, 1, ret_pkg, e);
}

int manifest_open_unverified(const char *path, ManifestPackage **ret_pkg, BaseErr *e)
{
	return open_package(path, NULL, 0, ret_pkg, e);
}

static int write_out(const char *out, const BaseBuf *b, BaseErr *e)
{
	_cleanup_free_ char *dir = NULL;
	_cleanup_close_ int dfd = -1;
	const char *slash = strrchr(out, '/'), *name = slash ? slash + 1 : out;
	int r;

	if (!*name)
		return base_err(e, -EINVAL, "%s: output names a directory", out);
	dir = slash ? (slash == out ? strdup("/") : strndup(out, (size_t)(slash - out))) : strdup(".");
	if (!dir)
		return -ENOMEM;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return base_err(e, -errno, "%s: cannot open directory: %s", dir, strerror(errno));
	r = base_fs_write_atomic(dfd, name, b->data, b->len, 0644);
	if (r < 0)
		return base_err(e, r, "%s: cannot write: %s", out, base_strerror(r));
	return 0;
}

int manifest_pack(const ManifestPackage *pkg, const char *keyfile, const char *out,
		  BaseErr *e)
{
	ManifestPackage work = *pkg;
	ManifestMember *members = NULL, *arch = NULL;
	_cleanup_free_ size_t *order = NULL;
	_cleanup_free_ char *what = NULL;
	BaseBuf text = { 0 }, sig = { 0 }, bytes = { 0 };
	int r;

	if (pkg->n_members > MANIFEST_MAX_MEMBERS)
		return base_err(e, -EINVAL, "%s: more than %d members", out, MANIFEST_MAX_MEMBERS);
	members = calloc(pkg->n_members + 1, sizeof(*members));
	arch = calloc(pkg->n_members + 2, sizeof(*arch));
	if (!members || !arch) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < pkg->n_members; i++) {
		members[i] = pkg->members[i];
		if (!members[i].data && members[i].len) {
			r = base_err(e, -EINVAL, "%s: member %s: no data", out,
				     members[i].name ? members[i].name : "?");
			goto out;
		}
		base_sha256(members[i].data, members[i].len, members[i].sha256);
	}
	work.members = members;

	/* check through a format+parse round: pack can only emit what open accepts */
	what = base_strdupf("%s: %s", out, MANIFEST_NAME);
	r = what ? manifest_check(&work, what, e) : -ENOMEM;
	if (r >= 0)
		r = manifest_format(&work, &text);
	if (r >= 0)
		r = manifest_sign(keyfile, text.data, text.len, &sig, e);
	if (r >= 0)
		r = manifest_member_order(members, pkg->n_members, &order);
	if (r < 0)
		goto out;

	arch[0] = (ManifestMember){ .name = (char *)MANIFEST_NAME, .data = text.data, .len = text.len };
	arch[1] = (ManifestMember){ .name = (char *)MANIFEST_SIG_NAME, .data = sig.data, .len = sig.len };
	for (size_t i = 0; i < pkg->n_members; i++)
		arch[2 + i] = members[order[i]];
	r = manifest_archive_write(arch, pkg->n_members + 2, &bytes, out, e);
	if (r >= 0)
		r = write_out(out, &bytes, e);
out:
	if (r == -ENOMEM)
		base_err(e, r, "%s: out of memory", out);
	free(members);
	free(arch);
	base_buf_free(&text);
	base_buf_free(&sig);
	base_buf_free(&bytes);
	return r;
}
