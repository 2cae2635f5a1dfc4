/* The trust store of the package and signature harnesses: SVC_FUZZ_TRUST
 * (a directory with the *.pub that signed the seeds, set by run.sh), else a
 * key made for this run. */
#ifndef SVC_FUZZ_TRUST_H
#define SVC_FUZZ_TRUST_H

#include "manifest/manifest.h"
#include "tests/fuzz/fuzz.h"

static inline const char *fz_trustdir(void)
{
	static char dir[] = "/tmp/svc-fuzz-trust-XXXXXX";
	static const char *done;
	if (done)
		return done;
	done = getenv("SVC_FUZZ_TRUST");
	if (done)
		return done;
	if (!mkdtemp(dir))
		abort();
	char *prefix = base_strdupf("%s/fuzz", dir);
	if (!prefix || manifest_keygen(prefix, NULL) < 0)
		abort();
	free(prefix);
	return done = dir;
}

/* Open the package at path as `svc inspect` does and as install does
 * (against the trust store); either may refuse it. */
static inline void fz_open_package(const char *path)
{
	ManifestPackage *p = NULL;
	if (manifest_open_unverified(path, &p, NULL) == 0)
		manifest_free(p);
	p = NULL;
	if (manifest_open(path, fz_trustdir(), &p, NULL) == 0)
		manifest_free(p);
}

#endif
