/* The dpkg database, read directly (no dpkg call: svc may run against a
 * --root that has no dpkg, and from an apt hook while dpkg holds its lock):
 *   ROOT/var/lib/dpkg/info/PKG.list      every path the package installed
 *   ROOT/var/lib/dpkg/info/PKG.md5sums   "<md5>  <path without leading />"
 *   ROOT/var/lib/dpkg/status             stanzas: Package, Architecture, Version
 *   ROOT/var/lib/dpkg/diversions         dpkg-divert's records (svc/divert.c)
 * PKG is "name" or, for Multi-Arch: same packages, "name:arch".  Only read;
 * a missing or unreadable database means "not owned", never a failure. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "svc/internal.h"

#define DPKG_DIR "var/lib/dpkg"
#define LIST_MAX (64u << 20)
#define STATUS_MAX (512u << 20)

static const char *const sum_names[SVC_DPKG_SUM_MAX] = {
	[SVC_DPKG_NOT_OWNED] = "not-owned",
	[SVC_DPKG_MATCHES] = "matches",
	[SVC_DPKG_DIFFERS] = "differs",
	[SVC_DPKG_NO_SUM] = "no-md5sum",
	[SVC_DPKG_MISSING] = "missing",
};

const char *svc_dpkg_sum_name(SvcDpkgSum s)
{
	return (unsigned)s < SVC_DPKG_SUM_MAX ? sum_names[s] : "?";
}

void svc_dpkg_file_free(SvcDpkgFile *f)
{
	free(f->package);
	free(f->version);
	free(f->divert_by);
	free(f->divert_from);
	free(f->divert_to);
	memset(f, 0, sizeof(*f));
}

/* The other name of path on a merged-/usr root: svc refuses symlinked
 * directories, so it names /usr/lib/x, while a package built before the
 * merge lists /lib/x (ROOT/lib -> usr/lib).  NULL when there is none. */
static char *alias_of(Svc *s, const char *path)
{
	char top[64], link[96], want[80];
	if (strncmp(path, "/usr/", 5) != 0)
		return NULL;
	const char *rest = path + 4, *slash = strchr(rest + 1, '/');
	size_t n = slash ? (size_t)(slash - rest - 1) : 0;
	if (!n || n >= sizeof(top))
		return NULL;
	memcpy(top, rest + 1, n);
	top[n] = 0;
	ssize_t l = readlinkat(s->rootfd, top, link, sizeof(link) - 1);
	if (l < 0)
		return NULL;
	link[l] = 0;
	snprintf(want, sizeof(want), "usr/%s", top);
	if (strcmp(link[0] == '/' ? link + 1 : link, want) != 0)
		return NULL;
	return strdup(rest);
}

typedef struct Lookup {
	const char *path;        /* as svc names it */
	char *alias;             /* merged-/usr name, or NULL */
	char *owner;             /* "PKG" of the .list naming it */
	const char *listed;      /* the name the list uses: path, alias or divert->from */
	const SvcDivert *divert; /* the diversion naming path (or alias), or NULL */
	SvcDpkgDivert role;
} Lookup;

/* May the list of package `owner` name the file at q->path?  A diverted
 * path holds the diverting package's file (none of a local diversion's);
 * a divert-to path holds some other package's. */
static int may_own(const Lookup *q, const char *owner)
{
	switch (q->role) {
	case SVC_DPKG_DIVERTED:
		return svc_divert_is_by(q->divert, owner);
	case SVC_DPKG_DIVERTED_HERE:
		return !svc_divert_is_by(q->divert, owner);
	default:
		return 1;
	}
}

/* The name a list uses for the file at q->path, if `line` is it. */
static const char *listed_as(const Lookup *q, const char *line)
{
	if (q->divert) /* every list names the diverted path, whoever's file is where */
		return strcmp(line, q->divert->from) == 0 ? q->divert->from : NULL;
	if (strcmp(line, q->path) == 0)
		return q->path;
	return q->alias && strcmp(line, q->alias) == 0 ? q->alias : NULL;
}

static void match_list(const char *list_name, char *text, Lookup *q, size_t n)
{
	_cleanup_free_ char *pkg = strndup(list_name, strlen(list_name) - 5);
	if (!pkg)
		return;
	for (char *line = text, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		for (size_t i = 0; i < n; i++) {
			if (q[i].owner || !may_own(&q[i], pkg))
				continue;
			const char *as = listed_as(&q[i], line);
			if (as) {
				q[i].owner = strdup(pkg);
				q[i].listed = as;
			}
		}
	}
}

static int find_owners(int infofd, Lookup *q, size_t n)
{
	int fd = dup(infofd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	for (struct dirent *de; (de = readdir(d));) {
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len <= 5 || strcmp(de->d_name + len - 5, ".list") != 0)
			continue;
		uint8_t *buf = NULL;
		size_t blen = 0;
		if (base_fs_read_at(infofd, de->d_name, LIST_MAX, &buf, &blen) < 0)
			continue;
		match_list(de->d_name, (char *)buf, q, n);
		free(buf);
	}
	closedir(d);
	return 0;
}

/* The md5 dpkg recorded for `listed` in PKG.md5sums, as hex; 0 if found. */
static int recorded_md5(int infofd, const char *owner, const char *listed,
			char out[BASE_MD5_HEX])
{
	_cleanup_free_ char *name = base_strdupf("%s.md5sums", owner);
	uint8_t *buf = NULL;
	size_t len = 0;
	int r = -ENOENT;
	if (!name || base_fs_read_at(infofd, name, LIST_MAX, &buf, &len) < 0)
		return -ENOENT;
	for (char *line = (char *)buf, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		/* "<32 hex>  usr/lib/x" */
		if (strlen(line) > 34 && line[32] == ' ' && line[33] == ' ' &&
		    strcmp(line + 34, listed + 1) == 0) {
			memcpy(out, line, 32);
			out[32] = 0;
			r = 0;
			break;
		}
	}
	free(buf);
	return r;
}

/* Does a status stanza (Package, Architecture) describe PKG ("name[:arch]")? */
static int stanza_is(const char *owner, const char *pkg, const char *arch)
{
	const char *colon = strchr(owner, ':');
	if (!colon)
		return strcmp(owner, pkg) == 0;
	return strlen(pkg) == (size_t)(colon - owner) && strncmp(owner, pkg, strlen(pkg)) == 0 &&
	       arch && strcmp(colon + 1, arch) == 0;
}

static void find_versions(int dpkgfd, Lookup *q, SvcDpkgFile *out, size_t n)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	if (base_fs_read_at(dpkgfd, "status", STATUS_MAX, &buf, &len) < 0)
		return;
	const char *pkg = NULL, *arch = NULL, *version = NULL;
	for (char *line = (char *)buf, *next; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		if (*line == 0 || !next) {
			/* end of a stanza */
			for (size_t i = 0; pkg && version && i < n; i++)
				if (q[i].owner && !out[i].version && stanza_is(q[i].owner, pkg, arch))
					out[i].version = strdup(version);
			pkg = arch = version = NULL;
			continue;
		}
		if (strncmp(line, "Package: ", 9) == 0)
			pkg = line + 9;
		else if (strncmp(line, "Architecture: ", 14) == 0)
			arch = line + 14;
		else if (strncmp(line, "Version: ", 9) == 0)
			version = line + 9;
	}
	free(buf);
}

static SvcDpkgSum check_sum(Svc *s, int infofd, const Lookup *q)
{
	char want[BASE_MD5_HEX], have[BASE_MD5_HEX];
	uint8_t h[BASE_MD5_LEN];
	_cleanup_close_ int dfd = -1, fd = -1;
	const char *name;
	if (recorded_md5(infofd, q->owner, q->listed, want) < 0)
		return SVC_DPKG_NO_SUM;
	if (pending_open_parent(&s->store, q->path, &dfd, &name, NULL) < 0 ||
	    base_fs_open_regular(dfd, name, O_NOFOLLOW, &fd) < 0 || base_md5_fd(fd, h) < 0)
		return SVC_DPKG_MISSING;
	base_hex(have, h, BASE_MD5_LEN);
	return strcmp(have, want) == 0 ? SVC_DPKG_MATCHES : SVC_DPKG_DIFFERS;
}

int svc_dpkg_lookup(Svc *s, const char *const *paths, size_t n, SvcDpkgFile *ret, BaseErr *e)
{
	_cleanup_close_ int dpkgfd = -1, infofd = -1;
	SvcDiverts dv = { 0 };
	Lookup *q = calloc(n ? n : 1, sizeof(*q));
	int r = 0;
	(void)e;
	if (!q)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		memset(&ret[i], 0, sizeof(ret[i]));
		q[i].path = paths[i];
		q[i].alias = alias_of(s, paths[i]);
	}
	/* no dpkg database under this root: nothing is owned; nor when the
	 * diversions cannot be read (whose file is where would be a guess) */
	if (base_fs_open_dir(s->rootfd, DPKG_DIR, &dpkgfd) < 0 ||
	    base_fs_open_dir(dpkgfd, "info", &infofd) < 0 || svc_diverts_read(dpkgfd, &dv) < 0)
		goto out;
	for (size_t i = 0; i < n && r >= 0; i++) {
		q[i].divert = svc_diverts_find(&dv, q[i].path, &q[i].role);
		if (!q[i].divert)
			q[i].divert = svc_diverts_find(&dv, q[i].alias, &q[i].role);
		if (!q[i].divert)
			continue;
		ret[i].divert = q[i].role;
		ret[i].divert_from = strdup(q[i].divert->from);
		ret[i].divert_to = strdup(q[i].divert->to);
		ret[i].divert_by = q[i].divert->by ? strdup(q[i].divert->by) : NULL;
		if (!ret[i].divert_from || !ret[i].divert_to || (q[i].divert->by && !ret[i].divert_by))
			r = -ENOMEM;
	}
	if (r < 0 || find_owners(infofd, q, n) < 0)
		goto out;
	for (size_t i = 0; i < n && r >= 0; i++) {
		if (!q[i].owner)
			continue;
		if (!(ret[i].package = strdup(q[i].owner)))
			r = -ENOMEM;
		ret[i].sum = check_sum(s, infofd, &q[i]);
	}
	find_versions(dpkgfd, q, ret, n);
out:
	svc_diverts_free(&dv);
	for (size_t i = 0; i < n; i++) {
		free(q[i].owner);
		free(q[i].alias);
		if (r < 0)
			svc_dpkg_file_free(&ret[i]);
	}
	free(q);
	return r;
}

/* Fill the dpkg view of every file of a status. */
int svc_dpkg_status(Svc *s, SvcStatus *st, BaseErr *e)
{
	const char **paths = calloc(st->n_files ? st->n_files : 1, sizeof(*paths));
	SvcDpkgFile *d = calloc(st->n_files ? st->n_files : 1, sizeof(*d));
	int r = paths && d ? 0 : -ENOMEM;
	for (size_t i = 0; r >= 0 && i < st->n_files; i++)
		paths[i] = st->files[i].path;
	if (r >= 0)
		r = svc_dpkg_lookup(s, paths, st->n_files, d, e);
	for (size_t i = 0; r >= 0 && i < st->n_files; i++) {
		SvcFileStatus *f = &st->files[i];
		f->dpkg = d[i];
		f->dpkg.accounted = f->dpkg.sum == SVC_DPKG_DIFFERS && svc_level_is_fix(f->level);
	}
	free(paths);
	free(d);
	return r;
}

int svc_verify(Svc *s, SvcStatus *ret, BaseErr *e)
{
	SvcStatus st = { 0 };
	int r = svc_status(s, &st, e);
	if (r < 0)
		return r;
	int unaccounted = 0;
	for (size_t i = 0; i < st.n_files; i++)
		if (st.files[i].dpkg.sum == SVC_DPKG_DIFFERS && !st.files[i].dpkg.accounted)
			unaccounted++;
	*ret = st;
	return unaccounted;
}
