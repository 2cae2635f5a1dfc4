/* svc — the servicing engine: install, rollback, boot replay and status of
 * hotfix packages on a system root, one transaction at a time.
 *
 * Results: 0 done; SVC_RESTART (> 0) done, but a target is in use and the
 * swap waits for `svc boot`; negative errno on failure (nothing changed). */
#ifndef SVC_SVC_H
#define SVC_SVC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/base.h"
#include "hotpatch/hotpatch.h"

#define SVC_RESTART 3   /* same value as the CLI exit code */
#define SVC_BOOT_ATTEMPTS 3  /* boots a pending transaction may take before quarantine */

typedef struct Svc Svc;

/* Progress of a long operation: `done` of `total` (e.g. processes patched). */
typedef void (*SvcProgressFn)(void *ctx, const char *what, size_t done, size_t total);

typedef struct SvcOptions {
	const char *root;        /* system root; "/" by default */
	int wait_lock_ms;        /* wait this long for the transaction lock; 0: fail at once */
	SvcProgressFn progress;  /* optional */
	void *progress_ctx;
	int read_only;           /* look, never touch: no state directory is created, no
				  * lock taken (dry runs, status, metrics); a change is refused */
} SvcOptions;

int svc_open(const SvcOptions *opt, Svc **ret, BaseErr *e);
void svc_close(Svc *s);

/* A process that maps a serviced file. */
typedef struct SvcUser {
	pid_t pid;
	char comm[64];           /* escaped (base_escape): a process names itself */
	int old_version;         /* 1: maps a replaced (older) file, not the one on disk */
	dev_t dev;               /* the file it maps (first mapping seen) */
	ino_t ino;
	char map[48];            /* "start-end" of that mapping, for /proc/PID/map_files */
	char level[65];          /* status: fix level it runs (file + in-memory fixes) */
	int hot;                 /* status: level comes from an in-memory hotpatch */
	char stale[112];         /* status: why it is not converged although patched
				  * ("thread 1234 still runs old serve_forever"), "" */
} SvcUser;

/* What an install or rollback does (or, dry run, would do) to one target. */
typedef enum SvcTargetAction {
	SVC_TARGET_SWAP = 0,     /* swapped now */
	SVC_TARGET_PENDING,      /* in use: the swap waits for `svc boot` */
	SVC_TARGET_NOOP,         /* already at that level */
	SVC_TARGET_CANCEL,       /* a pending install cancelled, its staged file removed */
	SVC_TARGET_REFUSED,      /* dry run: a real run would fail on it (reason) */
	SVC_TARGET_N_ACTIONS,
} SvcTargetAction;
const char *svc_target_action_name(SvcTargetAction a);

typedef struct SvcTargetPlan {
	char *path;
	SvcTargetAction action;
	char *from, *to;         /* fix levels ("base", a fix id) */
	char *reason;            /* pending: who uses it; refused: why; else NULL */
} SvcTargetPlan;

/* What happens (or, dry run, would happen) to one process using a target. */
typedef enum SvcProcOutcome {
	SVC_PROC_IN_USE = 0,     /* keeps a cold swap pending (restart required) */
	SVC_PROC_NOT_PATCHED,    /* could not be patched (or reverted): not converged */
	SVC_PROC_NOT_CONVERGED,  /* patched (or reverted), but a thread still runs the
				  * replaced code: not converged ('svc converge') */
	SVC_PROC_WOULD_PATCH,    /* dry run, /hotpatch:enable: would be patched */
	SVC_PROC_WOULD_REVERT,   /* dry run, hot rollback: the fix would be taken out */
	SVC_PROC_N_OUTCOMES,
} SvcProcOutcome;
const char *svc_proc_outcome_name(SvcProcOutcome o);

/* What one install/rollback/boot did, for the CLI to print. */
typedef struct SvcReport {
	char *package;
	uint64_t txn;            /* transaction number, 0 if none was written (dry run:
				  * the number it would take) */
	int noop;                /* nothing to do (already at that level) */
	int pending;             /* left pending: restart required */
	int changed;             /* something on disk or in a process changed (dry run:
				  * would change); 0 is the reliable no-op answer */
	int dry_run;             /* nothing was changed: the report says what would be */
	int refused;             /* dry run: targets a real run would refuse (the
				  * first reason is in the BaseErr) */
	size_t n_targets;
	SvcTargetPlan *targets;
	size_t n_users;          /* processes named by the run */
	SvcUser *users;
	char **user_paths;       /* the file each user maps (n_users entries) */
	SvcProcOutcome *user_outcomes;
	char **user_reasons;     /* why (n_users entries, may be NULL) */
	size_t n_lines;          /* human-readable lines of what happened */
	char **lines;
	int *levels;             /* syslog priority of each line (3 error, 4 warning, 6 info) */
} SvcReport;

void svc_report_free(SvcReport *r);

#define SVC_HOTPATCH 1u  /* also patch running processes (/hotpatch:enable) */
#define SVC_ALLOW_OLDER 2u  /* install: the operator overrides the series'
			     * high-water mark (anti-rollback), loudly */
#define SVC_DRY_RUN  4u  /* verify fully and report what would be done; change nothing
			  * (open the Svc read_only: then no lock or directory either) */

/* Install a package.  With SVC_HOTPATCH, every process mapping a target is
 * patched in memory and the files are swapped at once, even in use; a
 * process that cannot be patched is named in the report (SVC_RESTART).  A
 * package with a target that carries no payload is installed cold. */
int svc_install(Svc *s, const char *package_path, unsigned flags, SvcReport *ret, BaseErr *e);
/* Roll a fix back.  If some process runs it from memory (or with
 * SVC_HOTPATCH) it is reverted in every such process and the files are
 * swapped back at once; otherwise cold (deferred while in use). */
int svc_rollback(Svc *s, const char *package_id, unsigned flags, SvcReport *ret, BaseErr *e);
/* Boot-time replay: returns the number of quarantined transactions (>= 0). */
int svc_boot(Svc *s, SvcReport *ret, BaseErr *e);

/* ---- package building (vendor side) ------------------------------------------ */

typedef struct SvcObjectPair {
	const char *old_obj, *new_obj;  /* one translation unit, base and fixed build */
} SvcObjectPair;

typedef struct SvcPackTarget {
	const char *path;        /* absolute path on the serviced system */
	const char *base_file;   /* the installed version the fix applies to */
	const char *new_file;    /* the coldpatch as a whole file, or NULL: then built
				  * from the object pairs (payload + synthesized coldpatch) */
	const char *base_build;  /* with objects, when base_file is a coldpatch (a fix
				  * on a fix): the original build the payload binds to */
	size_t n_objects;
	const SvcObjectPair *objects;
} SvcPackTarget;

/* What a package is signed as and with, and where it goes (pack, build). */
typedef struct SvcSignSpec {
	const char *key;         /* PEM private key */
	const char *out;         /* package to write */
	const char *id, *series, *summary;
	uint64_t sequence;
} SvcSignSpec;

typedef struct SvcPackSpec {
	SvcSignSpec sign;
	int include_coldpatch;   /* with objects: ship the coldpatch whole too */
	size_t n_targets;
	const SvcPackTarget *targets;
	/* With objects, where a stripped base's symbols are looked for (see
	 * docs/vendor-guide.md): debug directories holding .build-id/xx/yyyy.debug
	 * and .gnu_debuglink files (none: /usr/lib/debug), then the debuginfod
	 * servers of DEBUGINFOD_URLS unless no_debuginfod. */
	const char *const *debug_dirs;
	size_t n_debug_dirs;
	int no_debuginfod;
} SvcPackSpec;

typedef struct SvcPackResult {
	uint64_t package_bytes;  /* size of the written package */
	uint64_t replaced_bytes; /* total size of the files it replaces */
	/* with objects, summed over the targets: */
	size_t functions_changed, functions_new;
	size_t functions_line_only;  /* left alone: only __LINE__ constants moved */
	size_t functions_verified;   /* base-object functions checked against the base */
	char symbols[1024];      /* where each target's symbols came from, one line each */
} SvcPackResult;

int svc_pack(const SvcPackSpec *spec, SvcPackResult *ret, BaseErr *e);

/* Describe a payload (*.hp), a package (*.hfx) or an ELF file's lineage. */
int svc_inspect(const char *path, BaseBuf *out, BaseErr *e);

/* ---- building from source (svc build) ------------------------------------------ */

/* The compile log: what the compiler wrapper (svc-cc, on PATH as cc, gcc,
 * clang ...) recorded of one compiler run; format in docs/formats.md. */
typedef enum SvcCcKind { SVC_CC_COMPILE = 1, SVC_CC_LINK, SVC_CC_ARCHIVE } SvcCcKind;

typedef struct SvcCcRecord {
	SvcCcKind kind;
	char *compiler;          /* the real compiler that ran (path as found on PATH) */
	char *cwd;               /* its working directory (physical) */
	char *output;            /* the object or linked file (absolute) */
	char *source;            /* compile: the source this record is about, as in argv */
	size_t argc;
	char **argv;             /* as run, argv[0] the name it was called by; NULL-ended */
	size_t n_inputs;
	char **inputs;           /* absolute, resolved: compile: the source and every header
				  * it read; link: the files named on the command line;
				  * archive (ar r/q): the members added */
} SvcCcRecord;

/* The wrapper: run the real compiler named like argv[0] (the first on PATH
 * that is not a link to this program) unchanged; when it succeeded and
 * SVC_CC_LOG names a directory, record each object / linked file there.
 * Called by an archiver's name (ar, gcc-ar, TRIPLET-ar), it runs that and
 * records the members an `ar r`/`ar q` put into the archive.
 * *ret_status: the compiler's exit status. */
int svc_cc_wrap(int argc, char **argv, int *ret_status, BaseErr *e);
/* Every record of a log directory, in name order. */
int svc_cc_log_read(const char *dir, SvcCcRecord **ret, size_t *ret_n, BaseErr *e);
void svc_cc_records_free(SvcCcRecord *r, size_t n);

typedef struct SvcBuildTarget {
	const char *path;        /* absolute path on the serviced system */
	const char *base_file;   /* the installed version the fix applies to */
} SvcBuildTarget;

/* The steps of svc build, in order. */
typedef enum SvcBuildStep {
	SVC_BUILD_STEP_FETCH,    /* --deb: the source package, its build dependencies */
	SVC_BUILD_STEP_BUILD,    /* the project's own build, wrapper on PATH */
	SVC_BUILD_STEP_VERIFY,   /* the build reproduces each base */
	SVC_BUILD_STEP_PATCH,    /* a copy of the tree, the patches applied */
	SVC_BUILD_STEP_CHANGED,  /* translation units the patches change */
	SVC_BUILD_STEP_COMPILE,  /* those, old and new, for the diff */
	SVC_BUILD_STEP_PACK,     /* objects to targets, payloads, signed package */
	_SVC_BUILD_STEP_MAX,
} SvcBuildStep;
const char *svc_build_step_name(SvcBuildStep s);

/* Called once per step when it is done: wall time and a one-line summary;
 * and for detail lines (ns == 0) on the way. */
typedef void (*SvcBuildStepFn)(void *ctx, SvcBuildStep step, uint64_t ns, const char *what);

typedef struct SvcBuildSpec {
	const char *source;      /* the source tree, built in place (clean) */
	const char *command;     /* the build command, run by /bin/sh in source */
	const char *deb;         /* instead of source, command and targets: a Debian source
				  * package (NAME[=VERSION] via apt-get source, or a .dsc),
				  * built with dpkg-buildpackage; the targets are the ELF files
				  * its binary packages ship that are installed under root */
	const char *root;        /* with deb: the system the bases are read from ("/") */
	size_t n_patches;
	const char *const *patches;  /* applied in order with patch -p1 */
	size_t n_targets;
	const SvcBuildTarget *targets;
	SvcSignSpec sign;
	const char *debug_dir;   /* where the bases' debug files are (base verification) */
	const char *keep;        /* keep the work (objects, logs) in this new directory */
	const char *wrapper;     /* the svc-cc program */
	SvcBuildStepFn step;     /* optional */
	void *step_ctx;
} SvcBuildSpec;

/* From a source tree and patches to a signed package (docs/vendor-guide.md).
 * Refusals (-EINVAL / -ESTALE / -ENOENT) name the file and the cause;
 * nothing is written to spec->out then. */
int svc_build(const SvcBuildSpec *spec, SvcPackResult *ret, BaseErr *e);

/* ---- low-level live patching (svc hotpatch ...) --------------------------------- */

typedef struct SvcHpRun {
	size_t n;
	pid_t *pids;
	HpReport *reports;      /* one per pid */
	int failed;             /* how many failed */
	uint64_t wall_ns;       /* the whole run */
} SvcHpRun;

/* Apply the payload file to the given PIDs, or (all) to every process that
 * maps the module of its build-id.  workers: pool size (0: 2). */
int svc_hp_apply(const char *payload_path, const pid_t *pids, size_t n, int all,
		 unsigned workers, SvcHpRun *ret, BaseErr *e);
/* Revert fix_id in the given PIDs, or (all) in every process that has it. */
int svc_hp_revert(const char *fix_id, const pid_t *pids, size_t n, int all, unsigned workers,
		  SvcHpRun *ret, BaseErr *e);
void svc_hp_run_free(SvcHpRun *r);
/* Re-check the processes a hotpatch left not converged (threads still in
 * old code): the given PIDs, or every patched process; each waits up to
 * wait_ms for its threads to leave.  reports[] as for svc_hp_apply, one per
 * process looked at; returns the number still not converged (>= 0). */
int svc_hp_converge(const pid_t *pids, size_t n, uint32_t wait_ms, SvcHpRun *ret, BaseErr *e);
/* The in-process state of the given PIDs, or of every patched process. */
int svc_hp_list(const pid_t *pids, size_t n, HpState ***ret, size_t *ret_n, BaseErr *e);

/* ---- status ----------------------------------------------------------------- */

/* What dpkg says about a serviced file (ROOT/var/lib/dpkg, read directly). */
typedef enum SvcDpkgSum {
	SVC_DPKG_NOT_OWNED = 0,  /* no installed package lists the file */
	SVC_DPKG_MATCHES,        /* the content is the one in the package's md5sums */
	SVC_DPKG_DIFFERS,        /* it is not (dpkg --verify reports it) */
	SVC_DPKG_NO_SUM,         /* the package lists the file but ships no md5sum of it */
	SVC_DPKG_MISSING,        /* listed, but not on disk */
	SVC_DPKG_SUM_MAX,
} SvcDpkgSum;

/* "not-owned", "matches", "differs", "no-md5sum", "missing" */
const char *svc_dpkg_sum_name(SvcDpkgSum s);

/* A dpkg diversion naming the file (var/lib/dpkg/diversions). */
typedef enum SvcDpkgDivert {
	SVC_DPKG_NOT_DIVERTED = 0,
	SVC_DPKG_DIVERTED,       /* the path is diverted: packages' file of it lives at
				  * divert_to; the file here is the diverting package's
				  * (or no package's: a local diversion) */
	SVC_DPKG_DIVERTED_HERE,  /* the path is a divert-to: the file here is the one
				  * a package ships as divert_from */
	SVC_DPKG_DIVERT_MAX,
} SvcDpkgDivert;

/* "none", "diverted", "divert-to" */
const char *svc_dpkg_divert_name(SvcDpkgDivert d);

typedef struct SvcDpkgFile {
	char *package;           /* owning package ("libgreet1", "libc6:amd64"), NULL if none */
	char *version;           /* its installed version (var/lib/dpkg/status), NULL if unknown */
	SvcDpkgSum sum;          /* against the owner's md5sum of the name it ships the file as */
	int accounted;           /* SVC_DPKG_DIFFERS explained: the content is a fix level
				  * svc put there (the coldpatch of the file's level) */
	SvcDpkgDivert divert;
	char *divert_by;         /* the diverting package; NULL: a local diversion */
	char *divert_from;       /* the diversion's two paths (NULL when not diverted) */
	char *divert_to;
} SvcDpkgFile;

typedef struct SvcFixStatus {
	char *id;
	char *series;
	uint64_t sequence;
	uint64_t txn;            /* last transaction touching it */
	uint64_t created;        /* when that transaction was made (epoch seconds) */
	const char *state;       /* "installed", "pending", "rollback-pending",
				  * "rolled-back", "quarantined", "superseded" */
	char *reason;            /* quarantined: why */
	char *superseded_by;     /* superseded: the package that replaced a target, */
	char *superseded_version;/* and its version (see svc_reconcile) */
} SvcFixStatus;

typedef struct SvcFileStatus {
	char *path;
	char **fixes;            /* ids of the fixes that touch it */
	size_t n_fixes;
	char sha256[BASE_SHA256_HEX];  /* on disk now ("" if missing) */
	char *level;             /* fix level on disk: "base", a package id, or "unknown" */
	size_t n_users;
	SvcUser *users;
	int converged;           /* 1: every process runs the level on disk; 0: one
				  * does not; -1: unknown (a process could not be
				  * read), never "yes" from missing data */
	SvcDpkgFile dpkg;        /* the package owning it, and its md5sum check */
} SvcFileStatus;

/* Outcome of the last `svc boot` replay. */
typedef enum SvcBootResult {
	SVC_BOOT_NONE = 0,       /* no record: never ran on this root */
	SVC_BOOT_OK,
	SVC_BOOT_QUARANTINED,    /* replayed, but quarantined some transaction */
	SVC_BOOT_FAILED,
	SVC_BOOT_N_RESULTS,
} SvcBootResult;
const char *svc_boot_result_name(SvcBootResult r);

typedef struct SvcStatus {
	size_t n_fixes;
	SvcFixStatus *fixes;
	size_t n_files;
	SvcFileStatus *files;
	size_t n_unreadable;     /* records that could not be read */
	char **unreadable;
	char *last_boot;         /* what the last `svc boot` did (text), or NULL */
	uint64_t last_boot_at;   /* when (epoch seconds; 0: not recorded) */
	SvcBootResult last_boot_result; /* NONE when not recorded */
	const char *last_boot_lines;   /* the lines after that first one (in last_boot) */
	size_t n_unknown_procs;  /* processes whose maps could not be read */
} SvcStatus;

int svc_status(Svc *s, SvcStatus *ret, BaseErr *e);
/* 1 if process u runs the level on disk of file f, with no thread left in
 * replaced code (the one rule status, metrics and facts count by). */
int svc_user_converged(const SvcFileStatus *f, const SvcUser *u);
/* Whether file f is one that fix_id services (for a per-fix table). */
int svc_status_file_has_fix(const SvcStatus *st, const SvcFileStatus *f, const char *fix_id);
void svc_status_free(SvcStatus *st);

/* svc verify: the status, and the number of serviced files whose content
 * differs from dpkg's md5sum without svc accounting for it (>= 0). */
int svc_verify(Svc *s, SvcStatus *ret, BaseErr *e);

/* ---- living with the package manager ------------------------------------------ */

/* After dpkg replaced serviced files (run by the apt hook, safe at any time,
 * idempotent): every fix whose targets the package manager replaced is
 * marked superseded (with the package and version), its pending
 * transactions are cancelled, its backups and kept payloads removed; kept
 * payloads of rolled-back fixes no process runs any more go too; every
 * process still running a replaced file is named.  Returns 0, or
 * SVC_RESTART if a process still runs a replaced file or a target changed
 * in a way svc cannot account for (the report says which). */
int svc_reconcile(Svc *s, SvcReport *ret, BaseErr *e);

/* ---- metrics (metrics.c) ------------------------------------------------------ */

/* The status as Prometheus text exposition format (version 0.0.4). */
int svc_metrics(Svc *s, BaseBuf *out, BaseErr *e);
/* The same, written atomically (temp, fsync, rename, fsync dir) as
 * DIR/svc.prom, for node_exporter's textfile collector. */
int svc_metrics_write(Svc *s, const char *dir, BaseErr *e);

#endif
