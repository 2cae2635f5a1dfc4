/* The in-process state (hotpatch/state.c) as svc reads it from another
 * process: hostile bytes at an address of a file read like /proc/PID/mem
 * (a memfd holding the input at that offset). */
#include "hotpatch/internal.h"
#include "tests/fuzz/fuzz.h"

#define FZ_ADDR 4096

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	HpState *s = NULL;
	int fd = memfd_create("svc-fuzz-state", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (pwrite(fd, d, n, FZ_ADDR) == (ssize_t)n &&
	    hp_state_load(fd, getpid(), FZ_ADDR, &s, NULL, NULL) == 0) {
		const char **ids = NULL;
		size_t k = 0;
		if (hp_state_active(s, &ids, &k) == 0)
			free(ids);
		hp_state_free(s);
	}
	close(fd);
	return 0;
}
