/* svc pack (vendor side): a signed package from whole files, or from the
 * object files of the base and fixed builds (payload + coldpatch). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elf/elf.h"
#include "svc/internal.h"

static int open_input(const char *path, int *ret_fd, BaseErr *e)
{
	int r = base_fs_open_regular(AT_FDCWD, path, 0, ret_fd);
	if (r == -EINVAL)
		return base_err(e, r, "%s: not a regular file", path);
	if (r < 0)
		return base_err(e, r, "%s: %s", path, strerror(-r));
	return 0;
}

static int read_file(const char *path, uint8_t **buf, size_t *len, struct stat *st, BaseErr *e)
{
	_cleanup_close_ int fd = -1;
	int r = open_input(path, &fd, e);
	if (r < 0)
		return r;
	if (fstat(fd, st) < 0)
		return base_err(e, -errno, "%s: %s", path, strerror(errno));
	r = base_fs_read_fd(fd, MANIFEST_MAX_PACKAGE, buf, len);
	if (r < 0)
		return base_err(e, r, "%s: %s", path, base_strerror(r));
	return 0;
}

static ManifestMember *add_member(ManifestPackage *pkg, char *name, uint8_t *data, size_t len)
{
	ManifestMember *m = &pkg->members[pkg->n_members++];
	m->name = name;
	m->data = data;
	m->len = len;
	return m;
}

/* Payload from the objects; the coldpatch synthesized from base + payload. */
static int build_from_objects(const SvcPackSpec *spec, const SvcPackTarget *t, const uint8_t *base,
			      size_t base_len, uint8_t **ret_hp, size_t *ret_hp_len,
			      BaseBuf *ret_cold, SvcPackResult *res, BaseErr *e)
{
	const ElfBuildOptions opts = { spec->debug_dirs, spec->n_debug_dirs, spec->no_debuginfod };
	ElfBuildStats st = { 0 };
	const char *fix_id = spec->sign.id;
	ElfFile *f = NULL;
	ElfLineage lin = { 0 };
	ElfPayload *p = NULL;
	ElfObjectPair *pairs = calloc(t->n_objects, sizeof(*pairs));
	BaseBuf hp = { 0 }, cold = { 0 };
	int r;

	if (!pairs)
		return -ENOMEM;
	for (size_t i = 0; i < t->n_objects; i++)
		pairs[i] = (ElfObjectPair){ t->objects[i].old_obj, t->objects[i].new_obj };
	/* a fix of a fix builds on the lineage of the file it applies to, and
	 * binds to the original build (a coldpatch keeps its layout) */
	r = elf_open_mem(base, base_len, t->base_file, &f, e);
	if (r >= 0)
		r = elf_lineage(f, &lin, e);
	if (r >= 0 && lin.n_fixes && !t->base_build)
		r = base_err(e, -EINVAL, "%s: a coldpatch (fixes applied: %s...): give the original "
			     "build with --base-build", t->base_file, lin.fixes[0]);
	if (r >= 0)
		r = elf_build_payload_opts(t->base_build ? t->base_build : t->base_file, pairs,
					   t->n_objects, fix_id, lin.fixes, lin.n_fixes, &opts, &p, &st, e);
	if (r >= 0) {
		size_t n = strlen(res->symbols);
		res->functions_changed += st.n_changed;
		res->functions_new += st.n_new;
		res->functions_line_only += st.n_line_only;
		res->functions_verified += st.n_verified;
		snprintf(res->symbols + n, sizeof(res->symbols) - n, "%s%s: symbols from %s%s%s",
			 n ? "\n" : "", t->path, elf_symbol_source_str(st.symbols),
			 st.symbols_path[0] ? " " : "", st.symbols_path);
	}
	if (r >= 0)
		r = elf_payload_write(p, &hp, e);
	if (r >= 0)
		r = elf_coldpatch(base, base_len, p, &cold, e);
	elf_payload_free(p);
	elf_lineage_free(&lin);
	elf_close(f);
	free(pairs);
	if (r < 0) {
		base_buf_free(&hp);
		base_buf_free(&cold);
		return r;
	}
	*ret_hp = hp.data;
	*ret_hp_len = hp.len;
	*ret_cold = cold;
	return 0;
}

int svc_pack(const SvcPackSpec *spec, SvcPackResult *ret, BaseErr *e)
{
	ManifestPackage pkg = {
		.id = (char *)spec->sign.id,
		.series = (char *)spec->sign.series,
		.sequence = spec->sign.sequence,
		.summary = (char *)spec->sign.summary,
	};
	SvcPackResult res = { 0 };
	int r = 0;

	if (spec->n_targets == 0 || spec->n_targets > MANIFEST_MAX_TARGETS)
		return base_err(e, -EINVAL, "%s: a package needs 1 to %d targets", spec->sign.out,
				MANIFEST_MAX_TARGETS);
	pkg.targets = calloc(spec->n_targets, sizeof(*pkg.targets));
	pkg.members = calloc(2 * spec->n_targets, sizeof(*pkg.members));
	if (!pkg.targets || !pkg.members)
		r = -ENOMEM;
	for (size_t i = 0; i < spec->n_targets && r >= 0; i++) {
		const SvcPackTarget *t = &spec->targets[i];
		ManifestTarget *mt = &pkg.targets[i];
		uint8_t *base = NULL, *data = NULL;
		size_t base_len = 0, len = 0;
		struct stat st;

		if (!pending_valid_path(t->path)) {
			r = base_err(e, -EINVAL, "%s: target path must be absolute and plain", t->path);
			break;
		}
		if (!t->new_file == !t->n_objects) {
			r = base_err(e, -EINVAL, "%s: give either a new file or object pairs", t->path);
			break;
		}
		r = read_file(t->base_file, &base, &base_len, &st, e);
		if (r < 0)
			break;
		base_sha256(base, base_len, mt->base_sha256);
		mt->path = (char *)t->path;
		mt->mode = st.st_mode & 07777;
		res.replaced_bytes += base_len;
		if (t->new_file) {
			free(base);
			r = read_file(t->new_file, &data, &len, &st, e);
			if (r < 0)
				break;
			mt->mode = st.st_mode & 07777;
			ManifestMember *m = add_member(&pkg, base_strdupf("cold/%zu", i), data, len);
			base_sha256(data, len, mt->new_sha256);
			mt->cold_member = m->name;
		} else {
			BaseBuf cold = { 0 };
			r = build_from_objects(spec, t, base, base_len, &data, &len, &cold, &res, e);
			free(base);
			if (r < 0)
				break;
			ManifestMember *m = add_member(&pkg, base_strdupf("hp/%zu", i), data, len);
			mt->payload_member = m->name;
			base_sha256(cold.data, cold.len, mt->new_sha256);
			if (spec->include_coldpatch) {
				m = add_member(&pkg, base_strdupf("cold/%zu", i), cold.data, cold.len);
				mt->cold_member = m->name;
			} else
				base_buf_free(&cold);
		}
		pkg.n_targets++;
		if (memcmp(mt->base_sha256, mt->new_sha256, BASE_SHA256_LEN) == 0) {
			r = base_err(e, -EINVAL, "%s: the fixed file is identical to %s: nothing to fix",
				     t->path, t->base_file);
			break;
		}
		for (size_t k = 0; k < pkg.n_members; k++)
			if (!pkg.members[k].name)
				r = -ENOMEM;
	}
	if (r >= 0)
		r = manifest_pack(&pkg, spec->sign.key, spec->sign.out, e);
	if (r >= 0) {
		struct stat st;
		if (stat(spec->sign.out, &st) == 0)
			res.package_bytes = (uint64_t)st.st_size;
	}
	for (size_t i = 0; i < pkg.n_members; i++) {
		free(pkg.members[i].name);
		free(pkg.members[i].data);
	}
	free(pkg.members);
	free(pkg.targets);
	if (r >= 0 && ret)
		*ret = res;
	return r;
}

/* The first bytes of path (fewer at its end); 0 or a negative errno. */
static int read_magic(const char *path, uint8_t *buf, size_t cap, size_t *ret_len, BaseErr *e)
{
	_cleanup_close_ int fd = -1;
	int r = open_input(path, &fd, e);
	if (r < 0)
		return r;
	ssize_t n = pread(fd, buf, cap, 0);
	if (n < 0)
		return base_err(e, -errno, "%s: %s", path, strerror(errno));
	*ret_len = (size_t)n;
	return 0;
}

int svc_inspect(const char *path, BaseBuf *out, BaseErr *e)
{
	uint8_t *buf = NULL, magic[8];
	size_t len = 0, magic_len = 0;
	struct stat st;
	/* a package is read once, as a stream, by manifest_open: only payloads
	 * and ELF files are read whole here */
	int r = read_magic(path, magic, sizeof(magic), &magic_len, e);
	if (r < 0)
		return r;
	int package = magic_len >= 2 && magic[0] == 0x1f && magic[1] == 0x8b;
	if (!package && (r = read_file(path, &buf, &len, &st, e)) < 0)
		return r;
	if (!package && len >= 8 && memcmp(buf, "SVCHP\r\n\x1a", 8) == 0) {
		ElfPayload *p = NULL;
		r = elf_payload_parse(buf, len, &p, e);
		if (r >= 0)
			r = elf_payload_describe(p, out);
		elf_payload_free(p);
	} else if (!package && len >= 4 && memcmp(buf, "\x7f" "ELF", 4) == 0) {
		r = elf_describe_lineage(buf, len, out, e);
	} else if (package) {
		/* a package: its manifest as signed (no trust check here: inspect
		 * shows, install verifies), then each payload */
		ManifestPackage *pkg = NULL;
		r = manifest_open_unverified(path, &pkg, e);
		if (r >= 0) {
			manifest_format(pkg, out);
			for (size_t i = 0; i < pkg->n_targets && r >= 0; i++) {
				const ManifestMember *m = pkg->targets[i].payload_member
					? manifest_member(pkg, pkg->targets[i].payload_member) : NULL;
				ElfPayload *p = NULL;
				if (!m)
					continue;
				base_buf_printf(out, "\n== payload %s for %s\n", m->name,
						pkg->targets[i].path);
				r = elf_payload_parse(m->data, m->len, &p, e);
				if (r >= 0)
					r = elf_payload_describe(p, out);
				elf_payload_free(p);
			}
		}
		manifest_free(pkg);
	} else
		r = base_err(e, -EINVAL, "%s: not a payload, package or ELF file", path);
	free(buf);
	return r;
}
