/* Packing and opening a package: the order of the checks is the security
 * argument.  open: archive sane -> signature over the manifest bytes from a
 * trusted key -> manifest well-formed -> every archive member is listed and
 * matches its listed size and hash, every listed member is there.  Only then
 * is anything handed to the caller, and nothing is ever written to disk. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "manifest/internal.h"

static ManifestMember *find(ManifestMember *m, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(m[i].name, name) == 0)
			return &m[i];
	return NULL;
}

static int open_package(const char *path, const char *trustdir, int verify,
			ManifestPackage **ret_pkg, BaseErr *e)
{
	_cleanup_free_ char *what_m = base_strdupf("%s: %s", path, MANIFEST_NAME);
	_cleanup_free_ char *what_s = base_strdupf("%s: %s", path, MANIFEST_SIG_NAME);
	ManifestMember *ents = NULL, *text, *sig;
	ManifestPackage *pkg = NULL;
	char key_id[BASE_SHA256_HEX];
	size_t n = 0;
	int r;

	if (!what_m || !what_s)
		return -ENOMEM;
	r = manifest_archive_read(path, &ents, &n, e);
	if (r < 0)
		return r;

	text = find(ents, n, MANIFEST_NAME);
	sig = find(ents, n, MANIFEST_SIG_NAME);
	if (!text || !sig) {
		r = base_err(e, -EBADMSG, "%s: member %s: missing", path,
			     !text ? MANIFEST_NAME : MANIFEST_SIG_NAME);
		goto out;
	}
	/* the signature first: nothing else of the package is looked at
	 * beyond archive framing until its signer is known and trusted */
	key_id[0] = 0;
	if (verify) {
		r = manifest_verify(trustdir, text->data, text->len, sig->data, sig->len, what_s,
				    key_id, e);
		if (r < 0)
			goto out;
	}
	r = manifest_parse_named((const char *)text->data, text->len, what_m, &pkg, e);
	if (r < 0)
		goto out;

	for (size_t i = 0; i < n; i++) {
		if (&ents[i] == text || &ents[i] == sig)
			continue;
		if (!manifest_member(pkg, ents[i].name)) {
			r = base_err(e, -EBADMSG, "%s: member %s: not listed in the manifest", path,
				     ents[i].name);
			goto out;
		}
	}
	for (size_t i = 0; i < pkg->n_members; i++) {
		ManifestMember *m = &pkg->members[i], *ent = find(ents, n, m->name);
		if (!ent) {
			r = base_err(e, -EBADMSG, "%s: member %s: listed in the manifest but missing",
				     path, m->name);
			goto out;
		}
		if (ent->len != m->len) {
			r = base_err(e, -EBADMSG, "%s: member %s: %zu bytes, manifest says %zu", path,
				     m->name, ent->len, m->len);
			goto out;
		}
		if (memcmp(ent->sha256, m->sha256, BASE_SHA256_LEN) != 0) {
			r = base_err(e, -EBADMSG, "%s: member %s: sha256 does not match the manifest",
				     path, m->name);
			goto out;
		}
		m->data = BASE_TAKE_PTR(ent->data);
	}
	memcpy(pkg->key_id, key_id, BASE_SHA256_HEX);
	*ret_pkg = BASE_TAKE_PTR(pkg);
	r = 0;
out:
	manifest_free(pkg);
	manifest_members_free(ents, n);
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
