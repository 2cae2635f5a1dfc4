/* Helpers shared by the CUnit suites: scratch roots, shell commands, files. */
#ifndef SVC_TESTLIB_H
#define SVC_TESTLIB_H

#include <stddef.h>
#include <stdint.h>

/* Each tests/test-<module>.c defines this: add its suites, 0 on success. */
int test_register(void);

/* A fresh scratch directory under $TMPDIR (default /tmp), removed by
 * test_rmrf().  Returned string is malloc'ed. */
char *test_scratch(const char *tag);
void test_rmrf(const char *path);

/* Run a shell command (printf-style); returns its exit status, or 128+sig. */
int test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Run a shell command and capture its stdout (malloc'ed, NUL-terminated). */
char *test_sh_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Whole file into a NUL-terminated malloc'ed buffer; NULL if unreadable. */
char *test_read(const char *path, size_t *ret_len);
int test_write(const char *path, const void *buf, size_t len);

/* Absolute path of the repository's build directory (build/). */
const char *test_build_dir(void);

#endif
