/* Shared by the libFuzzer harnesses of tests/fuzz/ (built by `make fuzz`).
 *
 * Inputs that carry several files (an object pair, a base and a payload)
 * are cut with fz_split: each part but the last is a 4-byte little-endian
 * length and its bytes, the last part is the rest (tests/fuzz/seeds.sh
 * writes seeds in this shape).  APIs that take a path are given a memfd's
 * /proc/self/fd/N name: the bytes under test, and no file on disk. */
#ifndef SVC_FUZZ_H
#define SVC_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/base.h"

/* A failed invariant: libFuzzer reports the crash and keeps the input. */
#define FZ_ASSERT(c) do { if (!(c)) { fprintf(stderr, "fuzz: %s:%d: %s\n", __FILE__, \
					__LINE__, #c); abort(); } } while (0)

static inline void fz_split(const uint8_t *d, size_t n, size_t k, const uint8_t **part,
			    size_t *len)
{
	for (size_t i = 0; i < k; i++) {
		size_t l = n;
		if (i + 1 < k) {
			uint32_t v = 0;
			if (n >= 4) {
				memcpy(&v, d, 4);
				d += 4;
				n -= 4;
			} else {
				d += n;
				n = 0;
			}
			l = v < n ? v : n;
		}
		part[i] = d;
		len[i] = l;
		d += l;
		n -= l;
	}
}

typedef struct FzFile {
	int fd;
	char path[64];
} FzFile;

static inline int fz_file(FzFile *f, const uint8_t *d, size_t n)
{
	f->fd = memfd_create("svc-fuzz", MFD_CLOEXEC);
	if (f->fd < 0)
		return -1;
	for (size_t done = 0; done < n;) {
		ssize_t w = write(f->fd, d + done, n - done);
		if (w <= 0) {
			close(f->fd);
			return -1;
		}
		done += (size_t)w;
	}
	snprintf(f->path, sizeof(f->path), "/proc/self/fd/%d", f->fd);
	return 0;
}

static inline void fz_file_close(FzFile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

#endif
