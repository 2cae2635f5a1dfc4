/* base — what every svc library shares: the error context, the durable
 * file-system layer (with its crash switch), SHA-256 and small helpers.
 *
 * Conventions (see docs/architecture.md):
 *  - functions return int: >= 0 success, negative errno on failure;
 *  - the detail of a failure goes into a BaseErr the caller owns;
 *  - outputs are ret_* parameters, last, written only on success.
 */
#ifndef SVC_BASE_H
#define SVC_BASE_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- errors ------------------------------------------------------------ */

/* The domain failures every library maps onto (the one listed set).  The
 * message for each lives in one table, base_strerror(). */
#define BASE_E_CORRUPT   EBADMSG      /* corrupt, torn or malformed input */
#define BASE_E_SIGNATURE EKEYREJECTED /* signature does not verify */
#define BASE_E_UNTRUSTED ENOKEY       /* signed by no trusted key */
#define BASE_E_LOCKED    EBUSY        /* another transaction holds the lock */
#define BASE_E_GONE      ESRCH        /* process went away */
#define BASE_E_MISMATCH  ESTALE       /* file is not the version expected */
#define BASE_E_OLDER     ERANGE       /* sequence not newer: rollback attack */
#define BASE_E_UNSAFE    EAGAIN       /* not safe now (thread inside patch) */
#define BASE_E_NOTELF    ENOEXEC      /* not an ELF file we can handle */
#define BASE_E_SYMLINK   ELOOP        /* a path component is a symlink */

typedef struct BaseErr {
	int code;        /* negative errno of the first failure recorded */
	char msg[1024];  /* one line: "<file>: <reason>" */
} BaseErr;

/* Record a one-line message (if none is recorded yet) and return r.
 * Use: return base_err(e, -EBADMSG, "%s: bad magic", path); */
int base_err_set(BaseErr *e, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A macro over base_err_set so that the value it returns is visibly r to
 * static analysis (clang-analyzer, cppcheck), which cannot see into another
 * file: without it every `return base_err(e, -EBADMSG, ...)` reads as "may
 * return anything", and each caller's out-parameter as maybe unset. */
#define base_err(e, r, ...) ({ int base_err_r_ = (r); base_err_set((e), base_err_r_, __VA_ARGS__); base_err_r_; })
/* As base_err, but replaces any message already recorded. */
int base_err_replace(BaseErr *e, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void base_err_clear(BaseErr *e);
/* Short text for a negative errno, domain codes first. */
const char *base_strerror(int r);

/* ---- cleanup helpers --------------------------------------------------- */

void base_freep(void *p);          /* free(*(void **)p) */
void base_closep(int *fd);         /* close(*fd) if >= 0 */
#define _cleanup_free_  __attribute__((cleanup(base_freep)))
#define _cleanup_close_ __attribute__((cleanup(base_closep)))

/* A function whose unsigned arithmetic wraps on purpose (a hash, a CRC,
 * two's-complement offsets): `make san`'s integer checks (clang
 * -fsanitize=unsigned-integer-overflow) do not report its wraps.  Every use
 * says why next to it; gcc has no such check and ignores nothing. */
#ifdef __clang__
#define BASE_WRAPS __attribute__((no_sanitize("unsigned-integer-overflow")))
#else
#define BASE_WRAPS
#endif

/* Hand ownership on: returns the value and clears the variable. */
#define BASE_TAKE_PTR(p) ({ __typeof__(p) _t = (p); (p) = NULL; _t; })
#define BASE_TAKE_FD(fd) ({ int _t = (fd); (fd) = -1; _t; })

/* ---- durable file-system layer ----------------------------------------- */
/*
 * Every call that changes the disk goes through here.  Each one is a
 * "durable step"; the crash switch counts them:
 *   SVC_CRASH_AT=N   the process dies (SIGKILL) just before step N (1-based);
 *   SVC_CRASH_LOG=F  each step is appended to F as "N op path";
 *   SVC_STALL_AT=N   the process stops forever just before step N, after
 *                    printing "svc: stalled before step N (...)" on stderr
 *                    (a VM test cuts the power at that moment).
 * Tests walk N over every step and then check recovery.
 */
int base_fs_step(const char *op, const char *path);
/* Restart the step count (a forked test child starts its own count). */
void base_fs_crash_reset(void);

int base_fs_openat(int dfd, const char *name, int flags, mode_t mode, int *ret_fd);
int base_fs_write_all(int fd, const void *buf, size_t len);
int base_fs_fsync(int fd);
int base_fs_fsync_dir(int dfd);
int base_fs_renameat(int odfd, const char *oname, int ndfd, const char *nname);
int base_fs_linkat(int odfd, const char *oname, int ndfd, const char *nname);
int base_fs_unlinkat(int dfd, const char *name, int flags);
int base_fs_mkdirat(int dfd, const char *name, mode_t mode);
int base_fs_fchown(int fd, uid_t uid, gid_t gid);
int base_fs_fchmod(int fd, mode_t mode);

/* Atomic durable replace of dfd/name: temp -> fsync -> rename -> fsync dir. */
int base_fs_write_atomic(int dfd, const char *name, const void *buf, size_t len,
			 mode_t mode);
/* mkdir -p of relpath under the directory dfd, never following symlinks;
 * returns an O_DIRECTORY fd of the last component. */
int base_fs_mkdir_p(int dfd, const char *relpath, mode_t mode, int *ret_fd);
/* Open the directory relpath under dfd, refusing any symlink component
 * (-ELOOP).  relpath may be "" or "." for dfd itself. */
int base_fs_open_dir(int dfd, const char *relpath, int *ret_fd);
/* Open dfd/name read-only (flags: e.g. O_NOFOLLOW); -EINVAL unless it is a
 * regular file. */
int base_fs_open_regular(int dfd, const char *name, int flags, int *ret_fd);
/* Read a whole regular file (at most max bytes, else -EFBIG). */
int base_fs_read_at(int dfd, const char *name, size_t max, uint8_t **ret_buf,
		    size_t *ret_len);
int base_fs_read_fd(int fd, size_t max, uint8_t **ret_buf, size_t *ret_len);

/* ---- hashing ------------------------------------------------------------ */

#define BASE_SHA256_LEN 32
#define BASE_SHA256_HEX (2 * BASE_SHA256_LEN + 1)

#define BASE_MD5_LEN 16
#define BASE_MD5_HEX (2 * BASE_MD5_LEN + 1)

void base_sha256(const void *buf, size_t len, uint8_t out[BASE_SHA256_LEN]);
int base_sha256_fd(int fd, uint8_t out[BASE_SHA256_LEN]);
/* MD5, for comparing with dpkg's md5sums only (never for trust). */
int base_md5_fd(int fd, uint8_t out[BASE_MD5_LEN]);
/* hex of n bytes into out (2n+1 bytes) */
void base_hex(char *out, const uint8_t *in, size_t n);
/* parse exactly 2n lower-case hex digits; -EINVAL otherwise (upper case too) */
int base_unhex(uint8_t *out, size_t n, const char *hex);
uint32_t base_crc32(const void *buf, size_t len);

/* ---- the naming rules (valid.c): one validator per rule, used by the
 * manifest, the records, the patcher and the CLI alike ---------------------- */

/* Fix ids and series: [A-Za-z0-9][A-Za-z0-9._+-]*, 1 to BASE_ID_MAX bytes
 * (it must fit, with its NUL, in the in-process state's 64-byte slot). */
#define BASE_ID_MAX 63
int base_valid_id(const char *s);
/* Target paths: absolute, one spelling per file (no ., .., //, trailing /),
 * at most BASE_PATH_MAX bytes, no control byte, no space (records are
 * "key value" lines and paths reach command lines).  0, or -EBADMSG with
 * *why set to the rule broken. */
#define BASE_PATH_MAX 4095
int base_check_path(const char *s, const char **why);

/* ---- /proc/PID (proc.c): the one reader of each -------------------------- */

/* One line of /proc/PID/maps. */
typedef struct BaseMap {
	uint64_t start, end, offset;
	uint64_t ino;
	unsigned dev_major, dev_minor;
	char perms[5];
	char *path;             /* "" for anonymous; as the kernel prints it
				 * (" (deleted)" kept); points into BaseMaps.text */
} BaseMap;

typedef struct BaseMaps {
	BaseMap *v;             /* in address order, as the kernel lists them */
	size_t n;
	char *text;             /* the file as read: the paths live in it */
} BaseMaps;

/* The mappings of pid (0: this process).  -BASE_E_GONE if it exited (or
 * maps nothing: a kernel thread, an exiting process); -EACCES and such as
 * the kernel says; -EBADMSG for a line that does not parse. */
int base_proc_maps(pid_t pid, BaseMaps *ret, BaseErr *e);
void base_maps_free(BaseMaps *m);
/* The mapping holding addr, or NULL. */
const BaseMap *base_maps_find(const BaseMaps *m, uint64_t addr);
/* The value of the "key:" line of /proc/PID/status (pid 0: this process;
 * tid > 0: /proc/PID/task/TID/status), blanks after the colon skipped.
 * -ENOENT: no such line; -BASE_E_GONE: no such process. */
int base_proc_status(pid_t pid, pid_t tid, const char *key, char *buf, size_t n);
/* The command name of pid (/proc/PID/comm without its newline; "" if it
 * cannot be read): one open, one read, one close. */
void base_proc_comm(pid_t pid, char *out, size_t n);
/* The processes (pid 0: the entries of /proc) or the threads of pid
 * (/proc/PID/task), sorted; *ret malloc'ed (NULL when none). */
int base_proc_ids(pid_t pid, pid_t **ret, size_t *ret_n, BaseErr *e);
/* The same in two steps, for who lists one directory more than once: the
 * directory (/proc, or /proc/PID/task) opened once (an fd, or < 0), then
 * each listing from its start (rewind: not the first listing of the fd). */
int base_proc_dir_open(pid_t pid, BaseErr *e);
int base_proc_ids_at(int dirfd, bool rewind, pid_t **ret, size_t *ret_n, BaseErr *e);

/* ---- small helpers ----------------------------------------------------- */

/* Text from the world (records, process names, fix ids, file names) goes
 * to terminals: control bytes (C0, DEL, UTF-8 C1) become "\\xNN".  Writes at
 * most cap bytes with the NUL, never a partial escape; returns the length. */
size_t base_escape(char *out, size_t cap, const char *in);
/* The same into a new string (NULL on ENOMEM). */
char *base_escape_dup(const char *in);
/* asprintf that returns NULL on failure */
char *base_strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Growable byte buffer. */
typedef struct BaseBuf {
	uint8_t *data;
	size_t len, cap;
} BaseBuf;
int base_buf_append(BaseBuf *b, const void *p, size_t n);
/* Room for element n of the array v (*cap elements of `size` bytes
 * allocated): when full, the capacity doubles (`first` the first time).
 * Returns the array (moved or not), or NULL with v unchanged and still
 * the caller's. */
void *base_grow(void *v, size_t n, size_t *cap, size_t size, size_t first);
int base_buf_printf(BaseBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void base_buf_free(BaseBuf *b);

/* Monotonic clock in nanoseconds. */
uint64_t base_now_ns(void);

#endif
