/* The one file that talks to libdebuginfod: a debug file by build-id from
 * the servers in DEBUGINFOD_URLS (the client library reads the variable,
 * caches under DEBUGINFOD_CACHE_PATH or ~/.cache/debuginfod_client, and
 * verifies nothing: the caller checks the build-id of what it gets).
 *
 * Why dlopen and not a link: svc runs at early boot (svc boot) and only the
 * vendor side (svc pack, svc build) ever fetches symbols.  Linked, the
 * library would load libcurl and through it krb5, ldap, ssh and the TLS
 * stack into every svc run, and make a missing one of them fail svc boot.
 * Loaded here, on first use only, the runtime package is a Recommends: a
 * system without it packs with --debug-dir and says so when asked for more. */
#include <dlfcn.h>
#include <elfutils/debuginfod.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elf/internal.h"

#define DEBUGINFOD_SONAME "libdebuginfod.so.1"

/* The library's entry points, typed by its own header. */
static struct {
	__typeof__(debuginfod_begin) *begin;
	__typeof__(debuginfod_find_debuginfo) *find_debuginfo;
	__typeof__(debuginfod_end) *end;
	char error[200];
} lib;

static void load(void)
{
	/* RTLD_NODELETE: the client may leave threads or atexit handlers of
	 * libcurl behind; never unload it under them */
	void *h = dlopen(DEBUGINFOD_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (!h) {
		const char *why = dlerror();
		snprintf(lib.error, sizeof(lib.error), "%s", why ? why : "cannot be loaded");
		return;
	}
	lib.begin = (__typeof__(lib.begin))dlsym(h, "debuginfod_begin");
	lib.find_debuginfo = (__typeof__(lib.find_debuginfo))dlsym(h, "debuginfod_find_debuginfo");
	lib.end = (__typeof__(lib.end))dlsym(h, "debuginfod_end");
	if (!lib.begin || !lib.find_debuginfo || !lib.end) {
		snprintf(lib.error, sizeof(lib.error), "lacks debuginfod_begin, _find_debuginfo "
			 "or _end");
		lib.begin = NULL;
	}
}

int elf_debuginfod_find(const uint8_t *id, size_t id_len, char **ret_path, BaseErr *e)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	const char *urls = getenv("DEBUGINFOD_URLS");
	if (!urls || !urls[0])
		return -ENOENT;
	pthread_once(&once, load);
	if (!lib.begin)
		return base_err(e, -ENOPKG, "debuginfod (%s): %s (Debian package libdebuginfod1) "
				"is not usable: %s", urls, DEBUGINFOD_SONAME, lib.error);
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
