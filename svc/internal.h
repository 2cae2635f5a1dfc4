/* svc/ private declarations. */
#ifndef SVC_SVC_INTERNAL_H
#define SVC_SVC_INTERNAL_H

#include <sys/stat.h>

#include "manifest/manifest.h"
#include "pending/pending.h"
#include "svc/svc.h"

struct Svc {
	char *root;              /* as given, for messages and /proc path matching */
	char *root_real;         /* realpath of root, "" for "/" */
	int rootfd;
	int lockfd;
	int wait_lock_ms;
	SvcProgressFn progress;
	void *progress_ctx;
	int read_only;           /* SvcOptions.read_only (status, dry runs): never
				  * locks, never writes, creates nothing */
	int dry_run;             /* during an SVC_DRY_RUN install/rollback: every step
				  * that would change a file or a process only reports */
	PendingStore store;
};

/* Take the one-transaction lock (ROOT/var/lib/svc/lock) and finish any
 * interrupted staging.  Held until svc_close(). */
int svc_lock(Svc *s, BaseErr *e);
/* The start of an install or rollback: SVC_DRY_RUN in flags sets dry_run
 * (here and in rep) and takes no lock; else the lock.  Then /proc must be
 * procfs (svc_proc_check): who uses a target is part of every answer. */
int svc_txn_begin(Svc *s, unsigned flags, SvcReport *rep, BaseErr *e);

/* ---- in-use scan (inuse.c) ------------------------------------------------ */
typedef struct SvcScanTarget {
	const char *path;        /* absolute inside the root */
	dev_t dev;               /* current file on disk; dev 0 if missing */
	ino_t ino;
	SvcUser *users;          /* out (empty on entry) */
	size_t n_users;
	size_t cap_users;        /* allocated (the scan's) */
} SvcScanTarget;

/* The processes a scan could not read, each with the reason: whether they
 * map a target is unknown. */
typedef struct SvcUnreadProc {
	pid_t pid;
	int err;                 /* errno of opening /proc/PID/maps */
	char comm[64];           /* escaped */
} SvcUnreadProc;
typedef struct SvcUnread {
	size_t n;
	SvcUnreadProc *procs;    /* each pid once */
} SvcUnread;
void svc_unread_free(SvcUnread *u);

/* One pass over /proc: every process mapping each target (current or older
 * version, matched by dev:inode or by path).  Returns the number of
 * processes that could not be read (their use is unknown: never count them
 * as not using a target), or -ENODEV when /proc is not procfs.  With
 * `unread`, those processes are added to it (once each, across scans). */
int svc_scan_users(Svc *s, SvcScanTarget *t, size_t n, SvcUnread *unread, BaseErr *e);
/* The same, reading nothing of the processes in skip (ascending): those the
 * caller has already dealt with (a hot install's patched and failed ones,
 * in its rounds after the first). */
int svc_scan_users_except(Svc *s, SvcScanTarget *t, size_t n, const pid_t *skip, size_t n_skip,
			  SvcUnread *unread, BaseErr *e);
/* 0 if /proc is procfs, else -ENODEV: checked before a transaction changes
 * anything, so a missing /proc refuses rather than half-acts. */
int svc_proc_check(BaseErr *e);

/* ---- ledger (ledger.c): what the records say ----------------------------------- */
/* Every state a fix can be in, as svc_ledger_state() (and, superseded,
 * superseded.c) names it. */
enum { SVC_FIX_INSTALLED, SVC_FIX_PENDING, SVC_FIX_ROLLBACK_PENDING, SVC_FIX_ROLLED_BACK,
       SVC_FIX_QUARANTINED, SVC_FIX_SUPERSEDED, SVC_N_FIX_STATES };
extern const char *const svc_fix_states[SVC_N_FIX_STATES];
/* Latest record of a package (any kind), and its latest install record. */
const PendingEntry *svc_ledger_latest(const PendingList *l, const char *id);
const PendingEntry *svc_ledger_install(const PendingList *l, const char *id);
const char *svc_ledger_state(const PendingList *l, const char *id, const PendingEntry **ret_last);
/* Fix level name of content `sha` at `path` ("base" if no record names it). */
const char *svc_ledger_level(const PendingList *l, const char *path, const uint8_t *sha);
/* 1 if a file level names a fix (not "base", "unknown" or "missing"). */
int svc_level_is_fix(const char *level);
/* Content of `path` once every pending install/rollback has been replayed. */
void svc_ledger_effective(const PendingList *l, const char *path, uint8_t sha[BASE_SHA256_LEN]);

/* ---- dpkg database (dpkg.c) ------------------------------------------------------ */
/* Owner, version and md5sum check of each path (ret: n entries). */
int svc_dpkg_lookup(Svc *s, const char *const *paths, size_t n, SvcDpkgFile *ret, BaseErr *e);
void svc_dpkg_file_free(SvcDpkgFile *f);
/* Fill files[].dpkg of a status. */
int svc_dpkg_status(Svc *s, SvcStatus *st, BaseErr *e);

/* ---- dpkg diversions (divert.c) ------------------------------------------------- */
typedef struct SvcDivert {
	const char *from, *to;   /* the diverted path, where packages' file of it goes */
	const char *by;          /* the diverting package; NULL: local */
} SvcDivert;
typedef struct SvcDiverts {
	uint8_t *buf;            /* the file's text; the entries point into it */
	SvcDivert *d;
	size_t n;
} SvcDiverts;
/* ROOT/var/lib/dpkg/diversions (dpkgfd: var/lib/dpkg); none: empty.
 * -EBADMSG when it is not dpkg's three-line format. */
int svc_diverts_read(int dpkgfd, SvcDiverts *ret);
void svc_diverts_free(SvcDiverts *d);
/* The diversion whose from (role DIVERTED) or to (DIVERTED_HERE) is name. */
const SvcDivert *svc_diverts_find(const SvcDiverts *d, const char *name, SvcDpkgDivert *ret_role);
/* 1 if the package owner ("name" or "name:arch") made the diversion. */
int svc_divert_is_by(const SvcDivert *dv, const char *owner);

/* ---- superseded fixes (superseded.c) ------------------------------------------ */
#define SVC_SUPERSEDED_DIR "var/lib/svc/superseded"

typedef struct SvcSupersededTarget {
	char *path;              /* a target of the fix the package manager replaced */
	char *package, *version; /* the package (and version) that owns it now */
	uint8_t sha256[BASE_SHA256_LEN];  /* the content found there */
} SvcSupersededTarget;

typedef struct SvcSuperseded {
	char *fix, *series;
	uint64_t sequence;
	uint64_t txn;            /* the fix's last transaction when superseded */
	uint64_t at;             /* seconds since the epoch */
	size_t n;
	SvcSupersededTarget *targets;
} SvcSuperseded;

typedef struct SvcSupersededList {
	size_t n;
	SvcSuperseded *items;
	size_t n_bad;            /* unreadable markers, as messages */
	char **bad;
} SvcSupersededList;

int svc_superseded_load(Svc *s, SvcSupersededList *ret, BaseErr *e);
void svc_superseded_free(SvcSupersededList *l);
void svc_superseded_clear(SvcSuperseded *m);
int svc_superseded_add_target(SvcSuperseded *m, const char *path, const char *package,
			      const char *version, const uint8_t sha[BASE_SHA256_LEN]);
/* The marker of fix, if it covers the fix's latest record. */
const SvcSuperseded *svc_superseded_find(const SvcSupersededList *sl, const PendingList *l,
					 const char *fix);
int svc_superseded_write(Svc *s, const SvcSuperseded *m, BaseErr *e);
int svc_superseded_status(Svc *s, const PendingList *l, SvcStatus *st, BaseErr *e);
/* The next transaction number: past every record, every marker and the
 * store's high-water mark (raised when the record is written). */
int svc_next_number(Svc *s, uint64_t *ret, BaseErr *e);

/* ---- garbage collection (gc.c) ---------------------------------------------- */
/* Remove backups and kept payloads no fix needs: those of superseded fixes,
 * and the payloads of rolled-back fixes no process runs any more.  A
 * process svc cannot read may still run a rolled-back fix: its payload is
 * kept, the report says why, and the result is SVC_RESTART (else 0). */
int svc_gc(Svc *s, const PendingList *l, const SvcSupersededList *sl, SvcReport *rep,
	   BaseErr *e);
/* var/lib/svc/payloads/ name of fix_id's payload for path. */
#define SVC_PAYLOAD_DIR "var/lib/svc/payloads"
void svc_payload_name(char *out, size_t outsz, const char *fix_id, const char *path);

/* ---- hot path (hot.c) ---------------------------------------------------------- */
/* Patch every process mapping a target, swap, sweep.  The transaction is
 * committed (in pending/), or with `applied` already replayed: then only the
 * processes still on an old file are patched.  0, or SVC_RESTART if a
 * process was left unpatched. */
int svc_hot_install(Svc *s, const ManifestPackage *pkg, const PendingTxn *t, int applied,
		    SvcReport *rep, BaseErr *e);
/* Keep the payloads of t's targets under var/lib/svc/payloads/ (durable,
 * idempotent), for a later hot rollback. */
int svc_keep_payloads(Svc *s, const ManifestPackage *pkg, const PendingTxn *t, BaseErr *e);
/* 1 if some process runs the install's fix from memory. */
int svc_hot_in_memory(Svc *s, const PendingTxn *inst, BaseErr *e);
/* Revert the fix in every process running it from memory, unbake it from
 * every process running it from a coldpatch file, then swap; with `applied`
 * (the rollback is on disk already) only bring the processes along. */
int svc_hot_rollback(Svc *s, const PendingTxn *rb, int applied, SvcReport *rep, BaseErr *e);
/* Fill level/hot of every user of a file. */
void svc_hot_levels(Svc *s, const PendingList *l, SvcFileStatus *f);

/* ---- helpers (report.c) ------------------------------------------------------ */
int svc_report_line(SvcReport *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int svc_report_linel(SvcReport *r, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int svc_report_users(SvcReport *r, const SvcScanTarget *t, size_t n);
/* "VERDICT, because pid N (comm) could not be read: REASON" for each process
 * of u (the first few by name): SVC_RESTART if there is any, else 0. */
int svc_report_unread(SvcReport *r, const SvcUnread *u, const char *verdict);
/* Name one process in the report (with what happens to it, and why). */
int svc_report_user(SvcReport *r, const char *path, const SvcUser *u, SvcProcOutcome o,
		    const char *reason);
/* Say what happens to each target of t (action, levels from its ops). */
int svc_report_targets(SvcReport *r, const PendingTxn *t, SvcTargetAction a,
		       const char *reason);
int svc_report_target(SvcReport *r, const char *path, SvcTargetAction a, const char *from,
		      const char *to, const char *reason);
/* Fill t[i].dev/ino from the files of the ops, then scan. */
int svc_scan_ops(Svc *s, const PendingTxn *txn, SvcScanTarget **ret, BaseErr *e);
void svc_scan_free(SvcScanTarget *t, size_t n);
/* Apply a committed transaction now if nothing uses its files, else leave
 * it pending.  Returns 0 or SVC_RESTART. */
int svc_commit_or_defer(Svc *s, const PendingTxn *t, SvcReport *rep, BaseErr *e);

/* ---- child processes (run.c) --------------------------------------------------- */
typedef struct SvcRunOpts {
	const char *cwd;         /* run there (NULL: here) */
	int out_fd;              /* stdout and stderr to this descriptor (< 1: inherited) */
	int stdin_null;          /* stdin from /dev/null */
	int path_exact;          /* argv[0] is a path: no PATH search */
	char *const *env;        /* NAME=VALUE added to the environment, NULL-ended */
} SvcRunOpts;
/* Run argv and wait; *ret_status: the exit status, 128 + signal if killed,
 * 127 if it could not be started. */
int svc_run(char *const *argv, const SvcRunOpts *o, int *ret_status, BaseErr *e);
/* The last non-empty line of a log file ("" if none), for a one-line error. */
void svc_log_last_line(const char *path, char *out, size_t n);
/* From offset from: the first line starting with prefer, else the last one. */
void svc_log_reason(const char *path, size_t from, const char *prefer, char *out, size_t n);

/* ---- compiler command lines (ccargs.c) and the wrapper (ccwrap.c) ------------- */
typedef struct SvcCcArgs {
	int compile_only;        /* -c */
	int no_object;           /* -E, -S, -M, a version query, stdin source: nothing to record */
	const char *output;      /* -o's value, or NULL */
	size_t n_files;          /* argv indexes of every file argument */
	size_t *files;
	size_t n_sources;        /* the files that are sources */
	size_t *sources;
} SvcCcArgs;
int svc_cc_args(size_t argc, char *const *argv, SvcCcArgs *ret);
void svc_cc_args_free(SvcCcArgs *a);
/* argv run again for one source: argv[0] = compiler, no -o, -c, dependency
 * file options (-MD, -MF F ...) or other sources, then extra (NULL-ended).
 * The array is new (free it), its strings are argv's and extra's. */
int svc_cc_command(const char *compiler, size_t argc, char *const *argv, const char *source,
		   const char *const *extra, char ***ret);
/* `ar r`/`ar q` that adds members: 1 and the archive's argv index. */
int svc_ar_args(size_t argc, char *const *argv, size_t *ret_archive);
int svc_cc_find_real(const char *name, const char *path_env, char **ret, BaseErr *e);
int svc_cc_record_write(const char *dir, const SvcCcRecord *rec, BaseErr *e);
int svc_cc_record_run(const char *logdir, const char *compiler, size_t argc, char **argv,
		      BaseErr *e);

/* ---- Debian source packages for svc build --deb (deb.c) -------------------------- */
/* NAME[=VERSION] (apt-get source) or FILE.dsc (dpkg-source -x), unpacked
 * under workdir/deb/, its build dependencies installed (apt-get build-dep);
 * *ret_src: the unpacked tree. */
int svc_deb_fetch(const char *what, const char *workdir, char **ret_src, BaseErr *e);
/* After dpkg-buildpackage -b: every ELF file in the binary packages' staging
 * trees (debian/PKG/) whose installed counterpart exists under root. */
int svc_deb_targets(const char *src, const char *root, SvcBuildTarget **ret, size_t *ret_n,
		    BaseErr *e);
void svc_deb_targets_free(SvcBuildTarget *t, size_t n);

#endif
