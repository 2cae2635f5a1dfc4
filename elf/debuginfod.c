/* The one file that talks to libdebuginfod: a debug file by build-id from
 * the servers in DEBUGINFOD_URLS (the client library reads the variable,
 * caches under DEBUGINFOD_CACHE_PATH or ~/.cache/debuginfod_client, and
 * verifies nothing: the caller checks the build-id of what it gets).
 *
 * Loaded with dlopen, on first use, as elfutils' own libdw does: linking it
 * brings libcurl and its ~30 libraries (TLS, Kerberos, LDAP, IDN, ...) into
 * every svc process, and loading and relocating them cost more CPU than the
 * whole of `svc inspect` (docs/performance.md).  Only `svc pack` and `svc
 * build` with DEBUGINFOD_URLS set ever ask a server. */
#include <dlfcn.h>
#include <elfutils/debuginfod.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elf/internal.h"

#define DEBUGINFOD_SONAME "libdebuginfod.so.1"

struct Client {
	debuginfod_client *(*begin)(void);
	int (*find_debuginfo)(debuginfod_client *, const unsigned char *, int, char **);
	void (*end)(debuginfod_client *);
};

static int client_load(struct Client *c, BaseErr *e)
{
	/* never dlclose'd: libcurl registers handlers that outlive a client */
	void *h = dlopen(DEBUGINFOD_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return base_err(e, -ENOENT, "debuginfod: cannot load %s: %s", DEBUGINFOD_SONAME,
				dlerror());
	*(void **)&c->begin = dlsym(h, "debuginfod_begin");
	*(void **)&c->find_debuginfo = dlsym(h, "debuginfod_find_debuginfo");
	*(void **)&c->end = dlsym(h, "debuginfod_end");
	if (!c->begin || !c->find_debuginfo || !c->end)
		return base_err(e, -ENOENT, "debuginfod: %s lacks the client functions",
				DEBUGINFOD_SONAME);
	return 0;
}

int elf_debuginfod_find(const uint8_t *id, size_t id_len, char **ret_path, BaseErr *e)
{
	const char *urls = getenv("DEBUGINFOD_URLS");
	if (!urls || !urls[0])
		return -ENOENT;
	struct Client lib;
	int r = client_load(&lib, e);
	if (r < 0)
		return r;
	debuginfod_client *c = lib.begin();
	if (!c)
		return base_err(e, -ENOMEM, "debuginfod: cannot start a client");
	char *path = NULL;
	int fd = lib.find_debuginfo(c, id, (int)id_len, &path);
	lib.end(c);
	if (fd < 0) {
		free(path);
		return base_err(e, fd == -ENOENT ? -ENOENT : fd, "debuginfod (%s): %s", urls,
				strerror(-fd));
	}
	close(fd);
	if (!path)
		return base_err(e, -ENOENT, "debuginfod (%s): no path for the debug file", urls);
	*ret_path = path;
	return 0;
}
