/* The one file that talks to libdebuginfod: a debug file by build-id from
 * the servers in DEBUGINFOD_URLS (the client library reads the variable,
 * caches under DEBUGINFOD_CACHE_PATH or ~/.cache/debuginfod_client, and
 * verifies nothing: the caller checks the build-id of what it gets). */
#include <elfutils/debuginfod.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elf/internal.h"

int elf_debuginfod_find(const uint8_t *id, size_t id_len, char **ret_path, BaseErr *e)
{
	const char *urls = getenv("DEBUGINFOD_URLS");
	if (!urls || !urls[0])
		return -ENOENT;
	debuginfod_client *c = debuginfod_begin();
	if (!c)
		return base_err(e, -ENOMEM, "debuginfod: cannot start a client");
	char *path = NULL;
	int fd = debuginfod_find_debuginfo(c, id, (int)id_len, &path);
	debuginfod_end(c);
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
