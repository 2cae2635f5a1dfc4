/* dpkg's diversions, read from ROOT/var/lib/dpkg/diversions (no dpkg-divert
 * call, as for the rest of the database: svc/dpkg.c).  The file holds one
 * diversion per three lines:
 *   FROM     the path packages ship (/usr/lib/libfoo.so.1)
 *   TO       where dpkg puts other packages' file of FROM (/usr/lib/libfoo.so.1.distrib)
 *   PKG      the diverting package, whose own FROM stays at FROM; ":" when local
 *            (dpkg-divert --local: no package's file stays at FROM)
 * Every PKG.list and PKG.md5sums keeps naming FROM, whichever package's
 * file sits where, so the owner of a serviced path and the md5sum line to
 * compare it with depend on the diversion (svc_dpkg_lookup). */
#include <stdlib.h>
#include <string.h>

#include "svc/internal.h"

#define DIVERSIONS_MAX (64u << 20)

static const char *const divert_names[SVC_DPKG_DIVERT_MAX] = {
	[SVC_DPKG_NOT_DIVERTED] = "none",
	[SVC_DPKG_DIVERTED] = "diverted",
	[SVC_DPKG_DIVERTED_HERE] = "divert-to",
};

const char *svc_dpkg_divert_name(SvcDpkgDivert d)
{
	return (unsigned)d < SVC_DPKG_DIVERT_MAX ? divert_names[d] : "?";
}

void svc_diverts_free(SvcDiverts *d)
{
	free(d->buf);
	free(d->d);
	memset(d, 0, sizeof(*d));
}

int svc_diverts_read(int dpkgfd, SvcDiverts *ret)
{
	SvcDiverts d = { 0 };
	size_t len = 0, cap = 0;
	int r = base_fs_read_at(dpkgfd, "diversions", DIVERSIONS_MAX, &d.buf, &len);
	if (r == -ENOENT) {
		*ret = d; /* no diversion ever made */
		return 0;
	}
	if (r < 0)
		return r;
	char *line[3];
	size_t k = 0;
	for (char *p = (char *)d.buf, *next; p && *p; p = next) {
		next = strchr(p, '\n');
		if (next)
			*next++ = 0;
		line[k++] = p;
		if (k < 3)
			continue;
		k = 0;
		/* FROM and TO are absolute paths; anything else is not dpkg's */
		if (line[0][0] != '/' || line[1][0] != '/' || !line[2][0]) {
			svc_diverts_free(&d);
			return -EBADMSG;
		}
		SvcDivert *nd = base_grow(d.d, d.n, &cap, sizeof(*d.d), 16);
		if (!nd) {
			svc_diverts_free(&d);
			return -ENOMEM;
		}
		d.d = nd;
		d.d[d.n++] = (SvcDivert){ .from = line[0], .to = line[1],
					  .by = strcmp(line[2], ":") == 0 ? NULL : line[2] };
	}
	if (k != 0) { /* a truncated triple */
		svc_diverts_free(&d);
		return -EBADMSG;
	}
	*ret = d;
	return 0;
}

const SvcDivert *svc_diverts_find(const SvcDiverts *d, const char *name, SvcDpkgDivert *ret_role)
{
	for (size_t i = 0; name && i < d->n; i++) {
		if (strcmp(d->d[i].from, name) == 0) {
			*ret_role = SVC_DPKG_DIVERTED;
			return &d->d[i];
		}
		if (strcmp(d->d[i].to, name) == 0) {
			*ret_role = SVC_DPKG_DIVERTED_HERE;
			return &d->d[i];
		}
	}
	*ret_role = SVC_DPKG_NOT_DIVERTED;
	return NULL;
}

int svc_divert_is_by(const SvcDivert *dv, const char *owner)
{
	/* owner: "name" or "name:arch" (a .list file's name); dpkg records the
	 * diverting package by its name alone */
	size_t n = strcspn(owner, ":");
	return dv->by && strlen(dv->by) == n && strncmp(dv->by, owner, n) == 0;
}
