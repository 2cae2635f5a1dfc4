/* svc pack: a package from whole files (base + coldpatch per target). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "svc/internal.h"

static int read_file(const char *path, uint8_t **buf, size_t *len, struct stat *st, BaseErr *e)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r;
	if (fd < 0)
		return base_err(e, -errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode))
		return base_err(e, -EINVAL, "%s: not a regular file", path);
	r = base_fs_read_fd(fd, MANIFEST_MAX_PACKAGE, buf, len);
	if (r < 0)
		return base_err(e, r, "%s: %s", path, base_strerror(r));
	return 0;
}

int svc_pack(const SvcPackSpec *spec, BaseErr *e)
{
	ManifestPackage pkg = {
		.id = (char *)spec->id,
		.series = (char *)spec->series,
		.sequence = spec->sequence,
		.summary = (char *)spec->summary,
	};
	int r = 0;

	if (spec->n_targets == 0 || spec->n_targets > MANIFEST_MAX_TARGETS)
		return base_err(e, -EINVAL, "%s: a package needs 1 to %d targets", spec->out,
				MANIFEST_MAX_TARGETS);
	pkg.targets = calloc(spec->n_targets, sizeof(*pkg.targets));
	pkg.members = calloc(spec->n_targets, sizeof(*pkg.members));
	if (!pkg.targets || !pkg.members)
		r = -ENOMEM;
	for (size_t i = 0; i < spec->n_targets && r >= 0; i++) {
		const SvcPackTarget *t = &spec->targets[i];
		ManifestTarget *mt = &pkg.targets[i];
		ManifestMember *m = &pkg.members[i];
		uint8_t *base = NULL;
		size_t base_len = 0;
		struct stat st;

		if (!pending_valid_path(t->path)) {
			r = base_err(e, -EINVAL, "%s: target path must be absolute and plain", t->path);
			break;
		}
		r = read_file(t->base_file, &base, &base_len, &st, e);
		if (r < 0)
			break;
		base_sha256(base, base_len, mt->base_sha256);
		free(base);
		r = read_file(t->new_file, &m->data, &m->len, &st, e);
		if (r < 0)
			break;
		pkg.n_members++;
		base_sha256(m->data, m->len, mt->new_sha256);
		if (memcmp(mt->base_sha256, mt->new_sha256, BASE_SHA256_LEN) == 0) {
			r = base_err(e, -EINVAL, "%s: identical to %s: nothing to fix", t->new_file,
				     t->base_file);
			break;
		}
		mt->path = (char *)t->path;
		mt->mode = st.st_mode & 07777;
		m->name = base_strdupf("cold/%zu", i);
		mt->cold_member = m->name;
		if (!m->name)
			r = -ENOMEM;
		pkg.n_targets++;
	}
	if (r >= 0)
		r = manifest_pack(&pkg, spec->key, spec->out, e);
	for (size_t i = 0; i < pkg.n_members; i++) {
		free(pkg.members[i].name);
		free(pkg.members[i].data);
	}
	free(pkg.members);
	free(pkg.targets);
	return r;
}
