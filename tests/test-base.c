/* base: error context, durable fs layer (incl. the crash switch), hashing. */
#include <CUnit/CUnit.h>
#include <mbedtls/sha256.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "tests/testlib.h"

static void test_err_keeps_first_message(void)
{
	BaseErr e = { 0 };
	CU_ASSERT_EQUAL(base_err(&e, -EBADMSG, "%s: bad magic", "a.hfx"), -EBADMSG);
	CU_ASSERT_EQUAL(base_err(&e, -EIO, "second"), -EIO);
	CU_ASSERT_STRING_EQUAL(e.msg, "a.hfx: bad magic");
	CU_ASSERT_EQUAL(e.code, -EBADMSG);
	base_err_replace(&e, -EIO, "line\nbreak");
	CU_ASSERT_STRING_EQUAL(e.msg, "line\\x0abreak");
	CU_ASSERT_STRING_EQUAL(base_strerror(-EKEYREJECTED), "signature does not verify");
}

/* Control bytes from records, process names or fix ids never reach a
 * terminal raw: C0, DEL and UTF-8 C1 are escaped, other UTF-8 is kept, and
 * a short buffer never ends in half an escape. */
static void test_escape_control_bytes(void)
{
	char out[64];
	base_escape(out, sizeof(out), "a\x1b[2Jb\x7f\xc2\x9b\xc3\xa9");
	CU_ASSERT_STRING_EQUAL(out, "a\\x1b[2Jb\\x7f\\xc2\\x9b\xc3\xa9");
	base_escape(out, 6, "ab\x01" "cd");
	CU_ASSERT_STRING_EQUAL(out, "ab");
	char *d = base_escape_dup("\r\n");
	CU_ASSERT_STRING_EQUAL(d, "\\x0d\\x0a");
	free(d);
}

static void test_sha256_known_vector(void)
{
	uint8_t d[32];
	char hex[BASE_SHA256_HEX];
	base_sha256("abc", 3, d);
	base_hex(hex, d, 32);
	CU_ASSERT_STRING_EQUAL(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	uint8_t back[32];
	CU_ASSERT_EQUAL(base_unhex(back, 32, hex), 0);
	CU_ASSERT_EQUAL(memcmp(back, d, 32), 0);
	CU_ASSERT_EQUAL(base_unhex(back, 32, "zz"), -EINVAL);
	/* one spelling: upper-case hex is refused */
	uint8_t one;
	CU_ASSERT_EQUAL(base_unhex(&one, 1, "AB"), -EINVAL);
	CU_ASSERT_EQUAL(base_unhex(&one, 1, "ab"), 0);
	CU_ASSERT_EQUAL(base_crc32("123456789", 9), 0xCBF43926u);
}

/* base_sha256 (SHA-NI when the CPU has it) against mbedTLS's portable one,
 * at every length around the block and padding boundaries, in one call and
 * streamed from a file in 64 KiB reads (a block split across reads) */
static void test_sha256_matches_mbedtls_at_every_boundary(void)
{
	size_t big = (1u << 17) + 77;
	uint8_t *b = malloc(big), want[BASE_SHA256_LEN], got[BASE_SHA256_LEN];
	CU_ASSERT_FATAL(b != NULL);
	for (size_t i = 0; i < big; i++)
		b[i] = (uint8_t)(i * 131 + (i >> 9));
	int bad = 0;
	for (size_t len = 0; len <= 200; len++) {
		mbedtls_sha256_ret(b, len, want, 0);
		base_sha256(b, len, got);
		bad += memcmp(want, got, sizeof(got)) != 0;
	}
	CU_ASSERT_EQUAL(bad, 0);
	char *dir = test_scratch("sha");
	char path[512];
	snprintf(path, sizeof(path), "%s/f", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(write(fd, b, big), (ssize_t)big);
	mbedtls_sha256_ret(b, big, want, 0);
	CU_ASSERT_EQUAL(base_sha256_fd(fd, got), 0);
	CU_ASSERT_EQUAL(memcmp(want, got, sizeof(got)), 0);
	base_sha256(b, big, got);
	CU_ASSERT_EQUAL(memcmp(want, got, sizeof(got)), 0);
	close(fd);
	test_rmrf(dir);
	free(dir);
	free(b);
}

static void test_write_atomic_and_read(void)
{
	char *dir = test_scratch("base");
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	CU_ASSERT_EQUAL(base_fs_write_atomic(dfd, "f", "hello", 5, 0640), 0);
	uint8_t *buf = NULL;
	size_t len = 0;
	CU_ASSERT_EQUAL(base_fs_read_at(dfd, "f", 100, &buf, &len), 0);
	CU_ASSERT_EQUAL(len, 5);
	CU_ASSERT_EQUAL(memcmp(buf, "hello", 5), 0);
	free(buf);
	CU_ASSERT_EQUAL(base_fs_read_at(dfd, "f", 3, &buf, &len), -EFBIG);
	struct stat st;
	CU_ASSERT_EQUAL(fstatat(dfd, "f", &st, 0), 0);
	CU_ASSERT_EQUAL(st.st_mode & 07777, 0640);
	CU_ASSERT_NOT_EQUAL(fstatat(dfd, ".f.tmp", &st, 0), 0);
	close(dfd);
	test_rmrf(dir);
	free(dir);
}

static void test_open_dir_refuses_symlink(void)
{
	char *dir = test_scratch("base");
	int dfd = open(dir, O_RDONLY | O_DIRECTORY), fd = -1;
	CU_ASSERT_EQUAL(base_fs_mkdir_p(dfd, "a/b/c", 0755, &fd), 0);
	close(fd);
	CU_ASSERT_EQUAL(symlinkat("a/b", dfd, "link"), 0);
	CU_ASSERT_EQUAL(base_fs_open_dir(dfd, "link/c", &fd), -ELOOP);
	CU_ASSERT_EQUAL(base_fs_open_dir(dfd, "a/../a", &fd), -EINVAL);
	CU_ASSERT_EQUAL(base_fs_open_dir(dfd, "a/b/c", &fd), 0);
	close(fd);
	close(dfd);
	test_rmrf(dir);
	free(dir);
}

/* A FIFO where a regular file should be must be refused at once, never
 * block the open (svc boot would hang forever waiting for a writer); the
 * alarm turns a hang into a failed test. */
static void test_open_regular_refuses_fifo_without_blocking(void)
{
	char *dir = test_scratch("base");
	int dfd = open(dir, O_RDONLY | O_DIRECTORY), fd = -1;
	uint8_t *buf = NULL;
	size_t len = 0;
	CU_ASSERT_EQUAL(mkfifoat(dfd, "fifo", 0644), 0);
	alarm(10);
	CU_ASSERT_EQUAL(base_fs_open_regular(dfd, "fifo", O_NOFOLLOW, &fd), -EINVAL);
	CU_ASSERT_EQUAL(base_fs_read_at(dfd, "fifo", 100, &buf, &len), -EINVAL);
	CU_ASSERT_EQUAL(base_fs_open_regular(AT_FDCWD, "/dev/null", 0, &fd), -EINVAL);
	alarm(0);
	CU_ASSERT_EQUAL(base_fs_write_atomic(dfd, "f", "x", 1, 0644), 0);
	CU_ASSERT_EQUAL(base_fs_open_regular(dfd, "f", O_NOFOLLOW, &fd), 0);
	CU_ASSERT_EQUAL(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	close(fd);
	close(dfd);
	test_rmrf(dir);
	free(dir);
}

/* The crash switch must kill the process before the Nth step, not after:
 * step 3 of write_atomic is the rename, so the target must not exist. */
/* The one /proc reader (base/proc.c): this process's own maps hold the
 * code of this very function, executable, named as /proc/self/exe; its
 * status lines and its place in the process and thread lists read back;
 * a reaped child reads as gone. */
static void test_proc_reader_self_and_gone(void)
{
	BaseMaps m = { 0 };
	BaseErr e = { 0 };
	char exe[4096], v[64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	CU_ASSERT_FATAL(n > 0);
	exe[n] = 0;
	CU_ASSERT_EQUAL_FATAL(base_proc_maps(getpid(), &m, &e), 0);
	const BaseMap *mp = base_maps_find(&m, (uint64_t)(uintptr_t)test_proc_reader_self_and_gone);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mp);
	CU_ASSERT_EQUAL(mp->perms[2], 'x');
	CU_ASSERT_STRING_EQUAL(mp->path, exe);
	struct stat st;
	CU_ASSERT_EQUAL(stat(exe, &st), 0);
	CU_ASSERT_EQUAL(mp->ino, (uint64_t)st.st_ino);
	CU_ASSERT_PTR_NULL(base_maps_find(&m, 0));
	base_maps_free(&m);

	CU_ASSERT_EQUAL(base_proc_status(0, 0, "Pid", v, sizeof(v)), 0);
	CU_ASSERT_EQUAL(atoi(v), (int)getpid());
	CU_ASSERT_EQUAL(base_proc_status(getpid(), getpid(), "Tgid", v, sizeof(v)), 0);
	CU_ASSERT_EQUAL(atoi(v), (int)getpid());
	CU_ASSERT_EQUAL(base_proc_status(0, 0, "NoSuchKey", v, sizeof(v)), -ENOENT);
	/* "Pi" is a prefix of "Pid", not a key */
	CU_ASSERT_EQUAL(base_proc_status(0, 0, "Pi", v, sizeof(v)), -ENOENT);

	pid_t *ids = NULL;
	size_t nid = 0;
	int found = 0;
	CU_ASSERT_EQUAL_FATAL(base_proc_ids(0, &ids, &nid, &e), 0);
	for (size_t i = 0; i < nid; i++) {
		found |= ids[i] == getpid();
		CU_ASSERT(i == 0 || ids[i - 1] < ids[i]);
	}
	CU_ASSERT(found);
	free(ids);
	CU_ASSERT_EQUAL_FATAL(base_proc_ids(getpid(), &ids, &nid, &e), 0);
	CU_ASSERT(nid >= 1 && ids[0] == getpid());
	free(ids);

	pid_t child = fork();
	CU_ASSERT_FATAL(child >= 0);
	if (child == 0)
		_exit(0);
	CU_ASSERT_EQUAL(waitpid(child, NULL, 0), child);
	CU_ASSERT_EQUAL(base_proc_maps(child, &m, NULL), -BASE_E_GONE);
	CU_ASSERT_EQUAL(base_proc_status(child, 0, "Pid", v, sizeof(v)), -BASE_E_GONE);
	CU_ASSERT_EQUAL(base_proc_ids(child, &ids, &nid, NULL), -BASE_E_GONE);
}

/* The maps reader on the shapes of a line: a path with spaces, one marked
 * deleted, an anonymous mapping (no path), each with its fields. */
static void test_proc_maps_line_shapes(void)
{
	char *dir = test_scratch("maps");
	char *fn = base_strdupf("%s/a  b c", dir);
	CU_ASSERT_EQUAL_FATAL(test_write(fn, "0123456789", 10), 0);
	int fd = open(fn, O_RDONLY | O_CLOEXEC);
	CU_ASSERT_FATAL(fd >= 0);
	struct stat st;
	CU_ASSERT_EQUAL(fstat(fd, &st), 0);
	void *f = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	void *anon = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CU_ASSERT_FATAL(f != MAP_FAILED && anon != MAP_FAILED);
	close(fd);
	BaseMaps m = { 0 };
	BaseErr e = { 0 };
	CU_ASSERT_EQUAL_FATAL(base_proc_maps(0, &m, &e), 0);
	const BaseMap *a = base_maps_find(&m, (uint64_t)(uintptr_t)f);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_STRING_EQUAL(a->path, fn);
	CU_ASSERT_STRING_EQUAL(a->perms, "r--p");
	CU_ASSERT_EQUAL(a->offset, 0);
	CU_ASSERT_EQUAL(a->ino, (uint64_t)st.st_ino);
	CU_ASSERT_EQUAL(a->dev_major, major(st.st_dev));
	CU_ASSERT_EQUAL(a->dev_minor, minor(st.st_dev));
	const BaseMap *b = base_maps_find(&m, (uint64_t)(uintptr_t)anon);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_STRING_EQUAL(b->path, "");
	CU_ASSERT_EQUAL(b->ino, 0);
	CU_ASSERT_STRING_EQUAL(b->perms, "rw-p");
	base_maps_free(&m);
	CU_ASSERT_EQUAL(unlink(fn), 0);
	CU_ASSERT_EQUAL_FATAL(base_proc_maps(0, &m, &e), 0);
	a = base_maps_find(&m, (uint64_t)(uintptr_t)f);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	char *del = base_strdupf("%s (deleted)", fn);
	CU_ASSERT_STRING_EQUAL(a->path, del);
	free(del);
	base_maps_free(&m);
	munmap(f, 4096);
	munmap(anon, 8192);
	test_rmrf(dir);
	free(dir);
	free(fn);
}

/* Every line, also when the text spans many reads: 300 mappings of
 * alternating protection (300 lines, > 4 KiB of text, the kernel's page
 * per read), each found, and the last line the kernel's last (the gate
 * mapping ends the read without one more read for EOF). */
static void test_proc_maps_many_reads(void)
{
	enum { N = 300 };
	uint8_t *base = mmap(NULL, 2 * N * 4096ul, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CU_ASSERT_FATAL(base != MAP_FAILED);
	for (size_t i = 0; i < 2 * N; i += 2)
		CU_ASSERT_EQUAL(mprotect(base + i * 4096, 4096, PROT_READ | PROT_WRITE), 0);
	size_t lines = 0;
	char line[4200], lastline[4200] = "";
	FILE *f = fopen("/proc/self/maps", "re");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	while (fgets(line, sizeof(line), f)) {
		lines++;
		snprintf(lastline, sizeof(lastline), "%s", line);
	}
	fclose(f);
	BaseMaps m = { 0 };
	BaseErr e = { 0 };
	CU_ASSERT_EQUAL_FATAL(base_proc_maps(0, &m, &e), 0);
	CU_ASSERT(lines >= 2 * N);
	CU_ASSERT_EQUAL(m.n, lines);   /* nothing between the two reads maps or unmaps */
	for (size_t i = 0; i < 2 * N; i++) {
		const BaseMap *a = base_maps_find(&m, (uint64_t)(uintptr_t)(base + i * 4096));
		CU_ASSERT_PTR_NOT_NULL_FATAL(a);
		CU_ASSERT_STRING_EQUAL(a->perms, i % 2 ? "r--p" : "rw-p");
	}
	unsigned long long lo = 0;
	CU_ASSERT_EQUAL(sscanf(lastline, "%llx-", &lo), 1);
	CU_ASSERT_EQUAL(m.v[m.n - 1].start, lo);
	base_maps_free(&m);
	munmap(base, 2 * N * 4096ul);
}

static void *sleeper(void *arg)
{
	int *fds = arg;
	char c;
	/* until the test closes the pipe */
	while (read(fds[0], &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

/* One open /proc/PID/task listed twice: the second listing sees a thread
 * born in between (the stop lists again after its waits), and a listing of
 * a process that has gone says so. */
static void test_proc_listing_again_sees_new_thread(void)
{
	BaseErr e = { 0 };
	int fd = base_proc_dir_open(getpid(), &e);
	CU_ASSERT_FATAL(fd >= 0);
	pid_t *a = NULL, *b = NULL;
	size_t na = 0, nb = 0;
	CU_ASSERT_EQUAL_FATAL(base_proc_ids_at(fd, false, &a, &na, &e), 0);
	int fds[2];
	CU_ASSERT_FATAL(pipe(fds) == 0);
	pthread_t th;
	CU_ASSERT_FATAL(pthread_create(&th, NULL, sleeper, fds) == 0);
	CU_ASSERT_EQUAL_FATAL(base_proc_ids_at(fd, true, &b, &nb, &e), 0);
	CU_ASSERT_EQUAL(nb, na + 1);
	close(fds[1]);
	pthread_join(th, NULL);
	close(fds[0]);
	free(a);
	free(b);
	close(fd);

	pid_t child = fork();
	CU_ASSERT_FATAL(child >= 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	fd = base_proc_dir_open(child, &e);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL_FATAL(base_proc_ids_at(fd, false, &a, &na, &e), 0);
	CU_ASSERT(na == 1 && a[0] == child);
	free(a);
	kill(child, SIGKILL);
	CU_ASSERT_EQUAL(waitpid(child, NULL, 0), child);
	/* the fd names that process, never a later one with its number */
	CU_ASSERT_EQUAL(base_proc_ids_at(fd, true, &a, &na, NULL), -BASE_E_GONE);
	close(fd);
}

static void test_crash_switch_kills_before_step(void)
{
	char *dir = test_scratch("base");
	pid_t pid = fork();
	if (pid == 0) {
		setenv("SVC_CRASH_AT", "4", 1); /* open, write, fsync, rename */
		base_fs_crash_reset();
		int dfd = open(dir, O_RDONLY | O_DIRECTORY);
		base_fs_write_atomic(dfd, "f", "x", 1, 0644);
		_exit(0);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	CU_ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	char *p = base_strdupf("%s/f", dir), *t = base_strdupf("%s/.f.tmp", dir);
	CU_ASSERT_NOT_EQUAL(access(p, F_OK), 0);
	CU_ASSERT_EQUAL(access(t, F_OK), 0);
	free(p);
	free(t);
	test_rmrf(dir);
	free(dir);
}

/* base_grow: room for one more element, the capacity doubling, the
 * elements kept; an impossible size refused, the array left as it was. */
static void test_grow_doubles_and_keeps(void)
{
	int *v = NULL;
	size_t n = 0, cap = 0;
	for (int i = 0; i < 1000; i++) {
		int *g = base_grow(v, n, &cap, sizeof(*v), 4);
		CU_ASSERT_PTR_NOT_NULL_FATAL(g);
		v = g;
		CU_ASSERT(cap > n);
		v[n++] = i;
	}
	CU_ASSERT_EQUAL(cap, 1024);
	int ok = 1;
	for (int i = 0; i < 1000; i++)
		ok &= v[i] == i;
	CU_ASSERT_TRUE(ok);
	size_t full = cap;
	CU_ASSERT_PTR_NULL(base_grow(v, full, &cap, SIZE_MAX / 1024, 4));
	CU_ASSERT_EQUAL(cap, full);
	CU_ASSERT_EQUAL(v[999], 999);   /* still the caller's */
	free(v);
}

int test_register(void)
{
	CU_pSuite s = CU_add_suite("base", NULL, NULL);
	if (!s)
		return -1;
	CU_add_test(s, "error context keeps the first message, one line", test_err_keeps_first_message);
	CU_add_test(s, "escape turns control bytes into \\xNN", test_escape_control_bytes);
	CU_add_test(s, "grow doubles the capacity and keeps the elements", test_grow_doubles_and_keeps);
	CU_add_test(s, "sha256/hex/crc32 known vectors", test_sha256_known_vector);
	CU_add_test(s, "sha256 equals mbedTLS's at every block boundary, whole and streamed",
		    test_sha256_matches_mbedtls_at_every_boundary);
	CU_add_test(s, "atomic write then bounded read", test_write_atomic_and_read);
	CU_add_test(s, "directory walk refuses symlinks and ..", test_open_dir_refuses_symlink);
	CU_add_test(s, "open_regular refuses a FIFO without blocking",
		    test_open_regular_refuses_fifo_without_blocking);
	CU_add_test(s, "crash switch kills before the Nth step", test_crash_switch_kills_before_step);
	CU_add_test(s, "/proc maps: a path with spaces, a deleted one, an anonymous mapping",
		    test_proc_maps_line_shapes);
	CU_add_test(s, "/proc maps: 600 mappings over many reads, every line, the last one last",
		    test_proc_maps_many_reads);
	CU_add_test(s, "/proc listing: one open task directory listed again sees a new thread; gone",
		    test_proc_listing_again_sees_new_thread);
	CU_add_test(s, "/proc reader: own maps, status lines, process and thread lists; gone",
		    test_proc_reader_self_and_gone);
	return 0;
}
