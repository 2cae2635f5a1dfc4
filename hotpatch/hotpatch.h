/* hotpatch — place a hotpatch payload into running processes and take it out
 * again, through ptrace, injected system calls and /proc/PID/mem writes.
 * Nothing of ours is preloaded in the target.
 *
 * One call patches one process (hp_apply / hp_revert) or a set of them with a
 * bounded pool of worker threads (hp_apply_many / hp_revert_many).  The state
 * of the fixes lives inside each process: in the unused tail of its
 * executable's last code page when the first fix fits there (no system call
 * runs in the target then), else in a private mapping of a memfd named
 * "svc-hotpatch" (visible in /proc/PID/maps as "/memfd:svc-hotpatch
 * (deleted)"); hp_list reads it back from any process.
 *
 * The calling thread becomes the ptrace tracer of the target for the length
 * of the call: the threads of the target are stopped for the "pause" only,
 * and every path out of a call detaches (see docs/hotpatch.md).
 *
 * The library takes one signal, SIGRTMAX-2: a do-nothing handler (installed
 * on the first wait) that a timer of the waiting thread (armed for each
 * wait, deleted when the thread ends) sends to end a waitpid at its
 * deadline.  Programs linking it must leave that signal
 * alone. */
#ifndef SVC_HOTPATCH_H
#define SVC_HOTPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/base.h"
#include "elf/elf.h"

/* Which module of the process a payload targets.  All fields optional: with
 * none set, the module is the mapped file whose GNU build-id equals the
 * payload's.  With a path or dev:inode set, that module is taken and its
 * build-id must match (else BASE_E_MISMATCH). */
typedef struct HpModuleRef {
	const char *path;   /* path as the process sees it (/proc/PID/maps) */
	bool by_inode;      /* match dev:inode (works across mount namespaces) */
	dev_t dev;
	ino_t ino;
} HpModuleRef;

typedef struct HpOpts {
	HpModuleRef module;
	uint32_t deadline_ms;     /* retry budget while unsafe or old frames remain
				   * (0: 2000 ms); past it, see hp_apply */
	uint32_t stop_timeout_ms; /* bounded wait for all threads to stop (0: 1000) */
	uint32_t backoff_us;      /* first back-off after an unsafe try (0: 500 us) */
	uint32_t stack_scan;      /* bytes of stack scanned above RSP (0: 64 KiB) */
} HpOpts;

/* What one call did to one process.  Filled on success and, as far as it
 * got, on failure (result, msg, unsafe_tid), so a pool can report each PID. */
/* Where the pause of the successful attempt went (HpReport.phase_ns). */
typedef enum HpPhase {
	HP_PH_STOP,             /* first interrupt -> every thread stopped */
	HP_PH_CHECK,            /* state, lineage and site bytes re-read */
	HP_PH_SAFETY,           /* registers, stack words, unwinding */
	HP_PH_MAP,              /* code placed in the process (injected calls) */
	HP_PH_WRITE,            /* record, redirects, commit */
	HP_PH_RESUME,           /* registers restored, threads detached */
	HP_PH_COUNT
} HpPhase;

typedef struct HpReport {
	pid_t pid;
	int result;             /* 0 or a negative errno (domain codes first) */
	bool noop;              /* already applied / already reverted */
	bool blob_reused;       /* re-apply found its old code still mapped */
	unsigned threads;       /* threads stopped in the successful attempt */
	unsigned attempts;      /* stop attempts (> 1 after unsafe back-offs) */
	uint64_t stop_ns;       /* first interrupt -> every thread stopped */
	uint64_t pause_ns;      /* first interrupt -> last thread resumed */
	uint64_t total_ns;      /* whole call */
	unsigned syscalls;      /* system calls injected */
	unsigned runs;          /* times the target ran injected code (round trips) */
	uint64_t phase_ns[HP_PH_COUNT];
	uint64_t blob;          /* address of the new code in the process */
	uint64_t blob_size;
	pid_t unsafe_tid;       /* the thread that made it unsafe, if any */
	unsigned scanned;       /* threads judged by the stack-word scan (walk failed) */
	bool not_converged;     /* done, but a thread still runs the old code: */
	pid_t stale_tid;        /*   that thread */
	char stale_fn[48];      /*   in that function */
	char msg[256];          /* the error line, if result < 0 */
} HpReport;

/* The in-process state, decoded. */
typedef enum HpFixStatus {
	HP_FIX_PENDING = 1,     /* redirects being written (tool died mid-way?) */
	HP_FIX_APPLIED = 2,
	HP_FIX_REVERTED = 3,    /* code still mapped, redirects removed */
} HpFixStatus;

typedef struct HpSiteInfo {
	char name[48];          /* function name (truncated) */
	uint64_t window;        /* first byte written */
	uint64_t entry;         /* function entry */
	uint32_t len;           /* bytes written */
	uint32_t kind;          /* ElfEntryKind */
	uint8_t orig[32];       /* bytes before this fix (base, or the fix below) */
	uint8_t redirect[32];   /* bytes this fix wrote */
	uint64_t size;          /* old function size (0: not recorded) */
} HpSiteInfo;

typedef struct HpFixInfo {
	char fix_id[64];
	HpFixStatus status;
	uint64_t blob, blob_size;
	uint64_t bias;          /* load bias of the module when applied */
	size_t n_sites;
	HpSiteInfo *sites;
	bool baked;             /* a fix baked into the mapped file (coldpatch),
				 * taken out in memory by hp_unbake: status
				 * REVERTED once done (PENDING while writing);
				 * sites: orig = the base bytes written back,
				 * redirect = the coldpatch's jump found there */
	bool stale;             /* not converged: when last checked, a thread still
				 * ran the old code (applied: the old functions;
				 * reverted: the fix's code) */
	pid_t stale_tid;        /* that thread */
	char stale_fn[48];      /* and the function */
} HpFixInfo;

typedef struct HpState {
	pid_t pid;
	uint64_t addr;          /* where the state mapping is (0: none yet) */
	size_t n_fixes;         /* in order of application, reverted included */
	HpFixInfo *fixes;
	char *error;            /* set (with no fixes) when the state could not be
				 * read: one hostile or unreadable process is
				 * reported as unknown, never fails the others */
} HpState;

/* Load the libraries a stop needs (the x86 decoder, the stack unwinder),
 * which svc loads on first use: a caller calls it before it stops any
 * process, so that no pause waits for the dynamic loader. */
int hp_load(BaseErr *e);

/* Patch one process.  Refuses (process untouched) on a build-id or lineage
 * mismatch or unexpected bytes at a site (BASE_E_MISMATCH); gives up with
 * BASE_E_UNSAFE naming the thread when some thread stays inside the bytes to
 * replace past the deadline, or stays anywhere in a window-hazardous
 * function (one whose body branches into those bytes); BASE_E_GONE when the
 * process goes away.  A thread still running a replaced function past the
 * deadline does not stop a safe redirect: the call succeeds with
 * report->not_converged naming it, and the fix's record says so (stale).
 * Applying a fix already applied is a no-op (report->noop). */
int hp_apply(pid_t pid, const ElfPayload *p, const HpOpts *opts,
	     HpReport *ret_report, BaseErr *e);

/* Take fix_id out of one process: original bytes back (entry first), in
 * reverse order of application: fix_id must be the newest applied fix
 * (else BASE_E_LOCKED naming the fix on top).  Not applied: no-op if it was
 * reverted, -ENOENT if it was never applied. */
int hp_revert(pid_t pid, const char *fix_id, const HpOpts *opts,
	      HpReport *ret_report, BaseErr *e);

/* Take a fix baked into the module's file (a process started from a
 * coldpatch) out of one process: p's expect[] bytes written back over each
 * of its redirect windows (entry first), with the safety rules of hp_revert,
 * and an "unbaked" record kept in the process's state.  p->fix_id must be
 * the newest effective fix of the module (BASE_E_LOCKED naming the one on
 * top) and the only one still baked in effect (-ENOTSUP: an earlier baked
 * fix may share a window, and its jump cannot be rebuilt from p); -ENOENT
 * if the file does not carry it; a no-op if already unbaked.  Applying p
 * again afterwards places its code in memory, as a normal fix. */
int hp_unbake(pid_t pid, const ElfPayload *p, const HpOpts *opts, HpReport *ret_report,
	      BaseErr *e);
int hp_unbake_many(const pid_t *pids, size_t n, unsigned workers, const ElfPayload *p,
		   const HpOpts *opts, HpReport *reports, BaseErr *e);

/* Re-check a process some fix left not converged (HpFixInfo.stale): stop
 * it, retrying until opts' deadline, and look for the threads' frames in
 * the old code again.  Found none: the stale marks are cleared.  Else
 * report->not_converged names a thread and function still there.  Nothing
 * stale: a no-op (report->noop). */
int hp_converge(pid_t pid, const HpOpts *opts, HpReport *ret_report, BaseErr *e);

/* The fixes a process runs in one module, oldest first: the fixes baked
 * into the file it maps (its lineage note), minus those unbaked, then the
 * fixes applied in memory (applied or pending) whose sites are in that
 * module.  This is the list a payload's lineage must start with.  Module:
 * as in HpOpts (path or dev:inode; required).  The array and its strings are
 * one malloc'ed block: free(*ret_ids). */
int hp_effective(pid_t pid, const HpModuleRef *mod, char ***ret_ids, size_t *ret_n,
		 BaseErr *e);

/* hp_effective and the process's state (as hp_list's: hp_state_free),
 * from one read of the process. */
int hp_effective_state(pid_t pid, const HpModuleRef *mod, char ***ret_ids, size_t *ret_n,
		       HpState **ret_state, BaseErr *e);

/* Facts about files (not processes) that the reads of many processes share:
 * the first pages of the files they map and the files' lineage notes, read
 * once per file (known by dev:inode and build-id, the file kept open so
 * that its inode stays its own) for as long as the fleet lives.  Nothing a
 * process's memory holds is shared.  hp_apply_many and the like make their
 * own; a caller reading many processes one after another makes one. */
typedef struct HpFleet HpFleet;
HpFleet *hp_fleet_new(void);
void hp_fleet_free(HpFleet *f);   /* NULL: nothing */
/* hp_effective_state with the file facts of fleet (NULL: none shared). */
int hp_effective_state_in(pid_t pid, const HpModuleRef *mod, HpFleet *fleet, char ***ret_ids,
			  size_t *ret_n, HpState **ret_state, BaseErr *e);

/* Read the state of any process (no stop, no attach: /proc/PID/mem). */
int hp_list(pid_t pid, HpState **ret, BaseErr *e);
void hp_state_free(HpState *s);
/* Fix ids with status applied or pending, in order, placed in memory by us
 * (unbake records left out); the caller frees the array (not the strings,
 * which live in s).  See hp_effective for what the process runs. */
int hp_state_active(const HpState *s, const char ***ret_ids, size_t *ret_n);

/* Patch / revert many processes with at most `workers` threads (0: 2).
 * reports[] (n entries, caller-owned) gets one report per PID; the call
 * returns the number of processes that failed (>= 0), or a negative errno if
 * the pool could not run at all. */
int hp_apply_many(const pid_t *pids, size_t n, unsigned workers, const ElfPayload *p,
		  const HpOpts *opts, HpReport *reports, BaseErr *e);
int hp_revert_many(const pid_t *pids, size_t n, unsigned workers, const char *fix_id,
		   const HpOpts *opts, HpReport *reports, BaseErr *e);

/* Every process (but the caller) that maps a module: by dev:inode or path
 * (mod), or, with mod NULL, the file whose GNU build-id is build_id (each
 * distinct file read once, through /proc/PID/map_files, so other mount
 * namespaces work).  ret_pids is malloc'ed and sorted. */
int hp_scan(const HpModuleRef *mod, const uint8_t *build_id, size_t build_id_len,
	    pid_t **ret_pids, size_t *ret_n, BaseErr *e);

/* Every process holding a state mapping (patched at least once), sorted:
 * what `svc hotpatch list` without --pid walks. */
int hp_scan_patched(pid_t **ret_pids, size_t *ret_n, BaseErr *e);

#endif
