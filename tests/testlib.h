/* Helpers shared by the CUnit suites: scratch roots, shell commands, files. */
#ifndef SVC_TESTLIB_H
#define SVC_TESTLIB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Each tests/test-<module>.c defines this: add its suites, 0 on success. */
int test_register(void);
/* CU_add_test, unless TEST_ONLY=substring is set and the name lacks it
 * (tests/cunit-main.c). */
struct CU_Suite;
void test_add(struct CU_Suite *s, const char *name, void (*fn)(void));

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

/* A victim: a fixture process the test starts, sharing a probe file with
 * it (mapped at probe, probe_size bytes; its path is the victim's first
 * argument) through which the victim reports (an int "ready" at ready_off:
 * how many of its threads run) and the test looks on. */
typedef struct TestVictim {
	pid_t pid;              /* 0 once reaped (or never started) */
	void *probe;
	size_t probe_size;
	char *probe_path;
} TestVictim;

enum { TEST_VICTIM_NO_ASLR = 1u << 0 };   /* run under setarch -R */

/* Create DIR/probe-*, run `bin PROBE args...` (killed when the test dies),
 * wait up to 5 s for ready >= want_ready, then settle_us more.  0, or -1
 * with the victim killed and reaped. */
int test_victim_start(TestVictim *v, const char *dir, size_t probe_size, size_t ready_off,
		      int want_ready, unsigned settle_us, unsigned flags, const char *bin,
		      const char *const args[]);
/* Kill and reap it (unless pid is 0), unmap and remove the probe. */
void test_victim_stop(TestVictim *v);

/* Run fn(arg) in a child that dies before durable step n (SVC_CRASH_AT,
 * base/fs.c's crash switch); 1 if it died, 0 if it finished (n is past the
 * last step), -1 on error.  The outcome itself is judged by the caller,
 * from what is on disk. */
int test_crash_at(long n, void (*fn)(void *), void *arg);

/* Absolute path of the repository's build directory (build/). */
const char *test_build_dir(void);

/* The cave of an executable as hotpatch/module.c computes it: from the end
 * of its executable PT_LOAD (16-byte aligned) to that page's end (-1: not
 * readable). */
long test_cave_of(const char *path);
/* CAVE_PAD (tests/fixtures/hotpatch/cavepad.h) for a rebuild of `built`,
 * made without it, whose cave is `want` bytes (a multiple of 16). */
long test_cave_pad(const char *built, long want);

#endif
