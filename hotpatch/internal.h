/* hotpatch — private declarations, included by the hotpatch/ sources only. */
#ifndef SVC_HOTPATCH_INTERNAL_H
#define SVC_HOTPATCH_INTERNAL_H

#include <elf.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "hotpatch/hotpatch.h"

/* ---- /proc/PID/maps (base/proc.c), /proc/PID/mem (proc.c) ---------------- */

/* The maps reader is base's (one for svc and the patcher); these names stay
 * for the patcher's callers. */
typedef BaseMap HpMap;
typedef BaseMaps HpMaps;

/* A live process always maps something: no mapping at all means its main
 * thread has let go of the memory (exiting: the process is going). */
static inline int hp_maps_read(pid_t pid, HpMaps *ret, BaseErr *e)
{
	int r = base_proc_maps(pid, ret, e);
	if (r == 0 && ret->n == 0) {
		base_maps_free(ret);
		return base_err(e, -BASE_E_GONE, "pid %d: exiting (no memory mappings)", (int)pid);
	}
	return r;
}
static inline void hp_maps_free(HpMaps *m)
{
	base_maps_free(m);
}
static inline const HpMap *hp_maps_find(const HpMaps *m, uint64_t addr)
{
	return base_maps_find(m, addr);
}
/* The Seccomp: mode of /proc/PID/status (0 if the line is missing). */
int hp_proc_seccomp(pid_t pid, int *ret_mode);

/* Whole-range reads/writes through /proc/PID/mem (pwrite reaches r-x pages:
 * the kernel writes with FOLL_FORCE, copy-on-write for private mappings). */
int hp_mem_open(pid_t pid, bool write, int *ret_fd);
int hp_mem_read(int fd, uint64_t addr, void *buf, size_t len);
int hp_mem_write(int fd, uint64_t addr, const void *buf, size_t len);
/* Many pieces read in one process_vm_readv; a piece it cannot read (not
 * readable to the process itself) through fd, as hp_mem_read; on error
 * *ret_bad (if not NULL) is the piece that failed. */
typedef struct HpIo {
	uint64_t addr;
	void *buf;
	size_t len;
} HpIo;
int hp_mem_readv(pid_t pid, int fd, const HpIo *io, size_t n, size_t *ret_bad);
/* The file the mapping mp of pid maps: through /proc/PID/map_files (the
 * very file, whatever the process's mount namespace), else through its path
 * in the process's root; either way checked by dev:inode.  fd, or -errno
 * (-ESTALE: the path now names another file). */
int hp_map_file_open(pid_t pid, const HpMap *mp);

/* ---- modules in memory (module.c) ---------------------------------------- */

/* What a module's .dynamic says about its symbols (symbol.c). */
typedef struct HpDynInfo {
	uint64_t symtab, strtab, strsz, gnu_hash, hash, versym;
	uint64_t debug;         /* DT_DEBUG: ld.so's r_debug (the executable's) */
} HpDynInfo;

typedef struct HpModule {
	const char *path;       /* points into the HpMaps it came from */
	unsigned dev_major, dev_minor;
	uint64_t ino;
	uint64_t start;         /* the mapping of file offset 0 (ELF header) */
	uint64_t start_end;     /* ... and its end */
	uint64_t lo, hi;        /* span of the file's mappings */
	uint64_t bias;          /* load bias */
	uint64_t dynamic;       /* PT_DYNAMIC address, 0 if none */
	uint8_t build_id[64];
	size_t build_id_len;
	/* the unused tail of the last page of an executable segment: mapped
	 * r-x, beyond every segment's bytes, so nothing runs or reads it
	 * (0 if under HP_CAVE_MIN bytes) */
	uint64_t cave, cave_len;
	HpDynInfo dyn;          /* read on the first symbol lookup */
	int dyn_read;           /* 0 not yet, 1 read, < 0 the error */
	/* place in ld.so's link map (its search order), from 1; -1 not in
	 * it; 0 not read yet (the first symbol lookup reads it) */
	int link_rank;
} HpModule;

#define HP_CAVE_MIN 160

/* The first page of a mapped ELF file: its header, and in practice its
 * program headers and notes too (a page-aligned page is always within one
 * mapping). */
#define HP_PAGE1 4096
typedef struct HpPage {
	uint64_t at;
	bool ok;        /* b holds the page */
	uint8_t *b;     /* HP_PAGE1 bytes: the set's own, or a call's (fleet.c) */
} HpPage;

/* The first pages of modules (mappings of offset 0 of a file, readable):
 * every one, or `only` that one, less those `skip` has; from the files
 * once per call with a fleet, the rest in one process_vm_readv; a page that
 * could not be read then is read when needed. */
typedef struct HpPages {
	HpPage *v;
	size_t n;
	uint8_t *own;   /* the pages read from the process */
} HpPages;
typedef struct HpFleet HpFleet;
int hp_pages_read(pid_t pid, const HpMaps *m, HpFleet *fleet, const HpMap *only,
		  const HpPages *skip, HpPages *ret);
HpPage *hp_pages_find(HpPages *p, uint64_t at);
void hp_pages_free(HpPages *p);

/* The cave of the ELF file whose header is mapped at pg->at (-ENOENT:
 * none); the page is read into pg unless pg->ok. */
int hp_module_cave(int memfd, HpPage *pg, uint64_t *ret_cave, uint64_t *ret_len);
/* Every ELF file mapped at offset 0 by the process, in address order;
 * pages: first pages read already (or NULL), the others are read. */
int hp_modules_read(pid_t pid, int memfd, const HpMaps *m, HpPages *pages, HpModule **ret,
		    size_t *ret_n);
/* Address of a defined dynamic symbol (default version), searched as ld.so
 * searches: in link-map order (address order when the map cannot be read);
 * -ENOENT, -ENOTSUP for an IFUNC.  With a fleet, which modules define it is
 * asked of their files, once per call (symbol.c). */
int hp_symbol_resolve(int memfd, pid_t pid, HpModule *mods, size_t n, const char *name,
		      HpFleet *fleet, uint64_t *ret_addr);
/* Whether the ELF file open at fd defines `name` (default version): 1 with
 * its st_value, 0 not, -ENOTSUP an IFUNC, < 0 unreadable. */
int hp_file_symbol(int fd, const char *name, uint64_t *ret_value);
/* The program headers of the ELF file open at fd (64-bit, at most
 * HP_MAX_PHDRS): 0, or -BASE_E_NOTELF. */
#define HP_MAX_PHDRS 64
int hp_file_phdrs(int fd, Elf64_Phdr ph[HP_MAX_PHDRS], size_t *ret_n);
/* GNU build-id of an ELF file open at fd. */
int hp_file_build_id(int fd, uint8_t out[64], size_t *ret_len);

/* ---- ptrace layer (ptrace.c, wait.c) -------------------------------------- */

/* The signal that ends a wait at its deadline (wait.c, hotpatch.h). */
#define HP_WAIT_SIG (SIGRTMAX - 2)
/* Wait (asleep) for traced thread tid until deadline (base_now_ns time):
 * 0, -ETIMEDOUT, -ECHILD or another -errno. */
int hp_wait_tid(pid_t tid, int *status, uint64_t deadline);

typedef struct HpThread {
	pid_t tid;
	bool stopped;           /* we have seen its stop */
	bool regs_saved;        /* regs holds what to restore before detaching */
	bool regs_dirty;        /* the kernel's copy differs from regs */
	int sig;                /* signal to hand back at detach */
	struct user_regs_struct regs;
} HpThread;

typedef struct HpTracee {
	pid_t pid;
	HpThread *t;
	size_t n, cap;
	uint64_t t_first;       /* first interrupt */
	uint64_t t_stopped;     /* all stopped */
	uint64_t t_resumed;     /* last detach */
	unsigned syscalls;
	unsigned runs;          /* round trips: the target ran injected code */
	int seccomp;            /* Seccomp: of /proc/PID/status (0 none, 1 strict,
				 * 2 filter): non-zero seizes with
				 * PTRACE_O_SUSPEND_SECCOMP */
	int tasks_fd;           /* /proc/PID/task + 1, kept open (0: not yet) */
} HpTracee;

/* Seize and interrupt every thread listed in /proc/PID/task, wait, bounded,
 * until all are stopped, and list again until a listing finds no new
 * thread (clones by seized threads are caught by PTRACE_O_TRACECLONE).  On failure everything is
 * detached again. */
int hp_ptrace_stop(HpTracee *tr, uint64_t timeout_ns, BaseErr *e);
/* Fetch (once) the saved registers of thread i. */
int hp_ptrace_regs(HpTracee *tr, size_t i);
/* Restore registers and detach every thread; never fails half-way (each
 * thread is tried).  Returns the first error. */
int hp_ptrace_resume(HpTracee *tr);
void hp_tracee_free(HpTracee *tr);
/* Run one system call in thread i through the `syscall` instruction at insn. */
int hp_ptrace_syscall(HpTracee *tr, size_t i, uint64_t insn, long nr,
		      const uint64_t args[6], int64_t *ret, BaseErr *e);

/* Run code placed in the target by thread i, from in->rip until the int3
 * that ends it (RIP == end after the trap); out gets the registers then. */
int hp_ptrace_run(HpTracee *tr, size_t i, const struct user_regs_struct *in, uint64_t end,
		  struct user_regs_struct *out, BaseErr *e);

/* ---- frames of a stopped thread (unwind.c) -------------------------------- */

typedef struct HpUnwinder HpUnwinder;
/* libunwind, loaded on first use (hp_load loads it before any stop) */
int hp_unwind_load(BaseErr *e);
int hp_unwinder_open(pid_t pid, HpUnwinder **ret);
void hp_unwinder_close(HpUnwinder *u);
/* The program counters of the thread's frames, innermost first (pcs[0] =
 * RIP; the others are return addresses).  -ENOEXEC when the walk did not
 * reach the outermost frame (no unwind info, a corrupt stack, deeper than
 * max): *ret_n then says how far it got, and the caller must not trust
 * that the list is whole.  maps: the process's, where a module's unwind
 * table is found in memory when its path leads to no file (unwind.c). */
int hp_unwind(HpUnwinder *u, int memfd, const HpMaps *maps, const struct user_regs_struct *regs,
	      uint64_t *pcs, size_t max, size_t *ret_n);

/* ---- in-process state (state.c) ------------------------------------------ */

#define HP_STATE_NAME     "svc-hotpatch"
#define HP_STATE_MAGIC    "SVCHPST1"
#define HP_STATE_VERSION  1u
#define HP_STATE_SIZE     (1u << 20)   /* memfd size: sparse, pages on use */
#define HP_MAX_SITE       32

typedef struct HpStateHdr {
	char magic[8];
	uint32_t version;
	uint32_t hdr_size;
	uint64_t capacity;       /* bytes of the mapping */
	uint64_t used;           /* bytes of records after the header */
	uint32_t n_records;
	uint32_t flags;          /* HP_STATE_IN_CAVE */
	char name[32];           /* NUL-terminated HP_STATE_NAME, for memfd_create */
} HpStateHdr;

/* The state lives in a module's cave (cave.c), not in a memfd mapping:
 * capacity is the cave room before the code placed after it. */
#define HP_STATE_IN_CAVE  1u

typedef struct HpStateSite {
	uint64_t window, entry;
	uint32_t len, kind;
	uint8_t orig[HP_MAX_SITE];
	uint8_t redirect[HP_MAX_SITE];
	char name[48];
} HpStateSite;

typedef struct HpStateRec {
	uint32_t rec_size;       /* this record with its sites */
	uint32_t status;         /* HpFixStatus */
	char fix_id[64];
	uint64_t blob, blob_size, bias;
	uint32_t n_sites;
	uint32_t flags;          /* HP_REC_* */
	/* HpStateSite sites[n_sites] follow */
} HpStateRec;

#define HP_REC_BAKED      1u  /* an unbake of a fix baked into the file */
#define HP_REC_STALE      2u  /* done, but a thread still ran the old code then
			       * (applied: the old functions; reverted: the new
			       * code): the process is not converged */

/* Optional tail of a record (rec_size tells whether it is there): who ran
 * old code when HP_REC_STALE was set, and each site's old function size, so
 * a later re-check (hp_converge) knows what to look for. */
typedef struct HpStateStale {
	uint32_t tid;
	uint32_t site;
	/* uint64_t size[n_sites] follow */
} HpStateStale;

bool hp_state_hdr_unborn(const HpStateHdr *h);
void hp_state_hdr_init(HpStateHdr *h);
/* The state of a process: a memfd mapping whose header is written, else a
 * module cave holding one (read through memfd), else an unborn memfd
 * mapping (its creator died before the header: an empty state). */
int hp_state_locate(int memfd, const HpMaps *m, const HpMap *exe, HpPages *pages,
		    uint64_t *ret_addr);
/* The offset-0 mapping of the process's executable (NULL: not found; then
 * hp_state_locate looks in every module's cave).  pages (or NULL): the
 * modules' first pages read already. */
const HpMap *hp_exe_map(pid_t pid, const HpMaps *m);
/* Bytes of a record with n_sites sites and its stale tail (writer.c). */
size_t hp_state_rec_size(size_t n_sites);
/* Decode the state at addr (0: empty state); ret_hdr (if not NULL) gets
 * its header, all zero when there is none or it is unborn. */
int hp_state_load(int memfd, pid_t pid, uint64_t addr, HpState **ret, HpStateHdr *ret_hdr,
		  BaseErr *e);
/* Offset (from the mapping start) of record i. */
int hp_state_rec_offset(int memfd, uint64_t addr, size_t i, uint64_t *ret_off);

/* ---- fixes baked into the mapped file (lineage.c) ------------------------ */

/* The lineage of the file mod maps in pid (through /proc/PID/map_files, else
 * /proc/PID/root/<path> checked by dev:inode); with a fleet, read once per
 * file for all its processes. */
int hp_module_lineage(pid_t pid, const HpMaps *m, const HpModule *mod, HpFleet *fleet,
		      ElfLineage *ret, BaseErr *e);
/* Effective fixes of mod (see hp_effective); pointers into st and file. */
/* Do f's sites lie in mod (a record without sites: yes)? */
bool hp_fix_in_module(const HpFixInfo *f, const HpModule *mod);
int hp_effective_ids(const HpState *st, const ElfLineage *file, const HpModule *mod,
		     const char ***ret_ids, size_t *ret_n);
/* Is the newest record of fix_id an unbake, and what is its status (0: none)? */
uint32_t hp_unbaked_status(const HpState *st, const char *fix_id);
/* Do cur[] hold the jump elf_coldpatch writes for a window of this kind
 * (expect: the base bytes), landing in an executable mapping of mod? */
bool hp_coldpatch_form(const HpMaps *m, const HpModule *mod, uint32_t kind, uint32_t pad,
		       uint64_t window, const uint8_t *expect, const uint8_t *cur);

/* ---- one patch session on one process (session.c) ------------------------ */

#define HP_PAGE 4096ull

typedef struct HpSite {
	const ElfRedirect *rd;  /* NULL for a revert */
	uint64_t entry, window;
	uint32_t len, pad, kind;
	uint8_t cur[HP_MAX_SITE];
	uint8_t orig[HP_MAX_SITE];
	uint8_t redirect[HP_MAX_SITE];
	char name[48];
	/* the code a thread must have left for the process to count as
	 * converged: the old function (and the blob of the fix it stacks on),
	 * or on revert the new code */
	uint64_t old_lo[2], old_hi[2];
	/* why a thread in the old body makes the redirect unsafe (the body
	 * branches into the window, or cannot be decoded); "" if it does not */
	char hazard[96];
	/* a call in the old body returns strictly inside the window (0: none):
	 * a thread whose frames cannot all be seen may have such a frame */
	uint64_t ret_inside;
} HpSite;

/* The sites of one page as read in the stop (site.c): lo, len, the bytes
 * there now; split: one site across two pages, on its own. */
typedef struct HpSpan {
	uint64_t lo;
	uint32_t len;
	bool split;
	bool torn;              /* a write failed: it may hold part of it */
	uint8_t *bytes;
} HpSpan;

typedef struct HpSpans {
	HpSpan *v;
	size_t n;
	uint8_t *bytes;
} HpSpans;

/* The stack words read per system call by the safety check. */
#define HP_STACK_CHUNK 16384

typedef struct HpSession {
	pid_t pid;
	int memfd;
	HpOpts o;
	HpReport *rep;
	HpMaps maps;
	const HpMap *exe;       /* the executable's offset-0 mapping in maps, or NULL */
	HpFleet *fleet;         /* shared with the other sessions of the call, or NULL */
	const char *crash_at;   /* HP_CRASH_AT */
	HpPages pages;          /* the modules' first pages, read at the open */
	HpModule *mods;
	size_t n_mods;
	const HpModule *mod;
	uint64_t state_addr;
	HpState *state;
	HpStateHdr hdr;         /* the state's header as it is in the target (all
				 * zero: none or unborn; capacity, flags
				 * HP_STATE_IN_CAVE): what the writer commits next */
	bool migrating;         /* a full cave state moves to a memfd mapping: */
	uint64_t migrate_to;    /* the new mapping, header not yet written */
	HpTracee tr;
	HpSite *sites;
	size_t n_sites;
	ElfLineage lin;         /* of the file s->mod maps (empty until read) */
	HpUnwinder *unw;        /* opened on the first walk */
	bool reverting;         /* old code = the new code of the fix taken out */
	bool stale;             /* the last check found old frames */
	pid_t stale_tid;
	size_t stale_site;
	char stale_msg[128];
	uint64_t t_mark;        /* end of the last timed phase */
	uint64_t insn;          /* a `syscall` instruction found (0: not yet) */
	int lockfd;             /* holds this pid's byte of HP_LOCK_PATH, or -1 */
	/* read at a stop (site.c), valid while rep->attempts equals *_at */
	HpSpans spans;
	unsigned spans_at;
	unsigned stack0_at;     /* thread 0's first stack chunk */
	uint64_t stack0_from;
	size_t stack0_got;
	uint64_t stack0[HP_STACK_CHUNK / 8];   /* last: hp_session_open leaves it uncleared */
} HpSession;

/* Patchers of one process take turns (see session.c). */
#define HP_LOCK_PATH "/run/svc-hotpatch.lock"

int hp_session_open(HpSession *s, pid_t pid, const HpOpts *opts, HpFleet *fleet, HpReport *rep,
		    BaseErr *e);
void hp_session_done(HpSession *s);
/* Around the sessions one worker thread runs (many.c): its lock file kept
 * open for all of them. */
void hp_worker_begin(void);
void hp_worker_end(void);
int hp_state_reload(HpSession *s, BaseErr *e);
const HpFixInfo *hp_state_find(const HpState *st, const char *fix_id, bool active_only);
/* Fault injection for the crash tests (HP_CRASH_AT=<step>, read at the
 * session's open). */
void hp_crash_point(const HpSession *s, const char *step);
/* Stop the process with every site safe, retrying until the deadline.  The
 * check callback runs while stopped and may refuse for good (< 0 other than
 * BASE_E_UNSAFE). */
typedef int (*HpCheckFn)(HpSession *s, void *ctx, BaseErr *e);
int hp_stop_safely(HpSession *s, HpCheckFn check, void *ctx, BaseErr *e);
/* Just stopped: thread 0's registers, then the sites' spans and its first
 * stack chunk in one read (site.c); whoever needs them later at this stop
 * takes them from there, or reads for itself when this failed. */
void hp_stop_read(HpSession *s);
/* Every site's bytes into st->cur, at a stop (the spans kept for the
 * writes). */
int hp_sites_read(HpSession *s, BaseErr *e);
/* Write each site's redirect (or orig) bytes, a span per write, spans in
 * address order (or reversed), HP_CRASH_AT point `step` after each write;
 * a span that holds its bytes already is not written. */
int hp_sites_write(HpSession *s, bool redirect, bool reverse, const char *step);
void hp_spans_free(HpSpans *sp);
/* The stack words the safety check reads for thread i: the red zone up to
 * stack_scan bytes above RSP, or to the end of its mapping; *whole when
 * that is the end of the thread's own stack (transition.c). */
void hp_stack_range(const HpSession *s, size_t i, uint64_t *from, uint64_t *to, bool *whole);
void hp_report_fill(HpSession *s, int r, const BaseErr *e);
/* The time since the last mark goes to phase ph of the report. */
void hp_phase(HpSession *s, HpPhase ph);
/* Resume every stopped thread; a failure to is the result when r is 0. */
int hp_resume_result(HpSession *s, int r, BaseErr *e);
/* The end of every session: report r (-BASE_E_GONE for any failure of a
 * process that has exited meanwhile), close, time since t0, copy the
 * report out (when ret_report).  Returns r. */
int hp_session_end(HpSession *s, int r, BaseErr *e, uint64_t t0, HpReport *ret_report);
/* One call on one process with a payload: open, op, report, close (fleet:
 * what the sessions of one many-process call share, or NULL). */
int hp_run_with_payload(pid_t pid, const ElfPayload *p, const HpOpts *opts, HpFleet *fleet,
			int (*op)(HpSession *, const ElfPayload *, BaseErr *),
			HpReport *ret_report, BaseErr *e);
/* hp_apply and hp_unbake as one session of a many-process call (many.c). */
int hp_apply_in(pid_t pid, const ElfPayload *p, const HpOpts *opts, HpFleet *fleet,
		HpReport *ret_report, BaseErr *e);
int hp_unbake_in(pid_t pid, const ElfPayload *p, const HpOpts *opts, HpFleet *fleet,
		 HpReport *ret_report, BaseErr *e);

/* ---- what one many-process call shares (fleet.c) ------------------------- */

/* (hp_fleet_new and hp_fleet_free: hotpatch.h) */
/* 0: *ret is a copy of the file's lineage; 1: not known yet; < 0 error. */
int hp_fleet_lineage(HpFleet *f, const HpModule *mod, ElfLineage *ret);
void hp_fleet_lineage_put(HpFleet *f, const HpModule *mod, const ElfLineage *l);
/* Whether mod's file defines `name`, asked of the file itself (opened
 * through /proc/PID/map_files, checked by dev:inode and build-id) once per
 * call: as hp_file_symbol; < 0 (not -ENOTSUP) when the file cannot be read. */
int hp_fleet_symbol(HpFleet *f, pid_t pid, const HpModule *mod, const char *name,
		    uint64_t *ret_value);
/* elf_x86_scan, remembered for the call by the exact bytes and the window's
 * place relative to addr (the scan is a pure function of them); f NULL, or
 * a window not around addr: elf_x86_scan itself. */
int hp_fleet_scan(HpFleet *f, const uint8_t *code, size_t len, uint64_t addr, uint64_t lo,
		  uint64_t hi, ElfX86Scan *ret);
/* The first page of the file mapped at offset 0 by mp, from the file
 * (hp_map_file_open) once per call: what the mapping shows of the
 * headers, without reading the process; *ret stays valid for the call.
 * < 0: read the process instead. */
int hp_fleet_page(HpFleet *f, pid_t pid, const HpMap *mp, uint8_t **ret);

/* ---- consistency check (transition.c) ------------------------------------ */

/* 0: safe and no old frame; 1: safe to write but a thread still runs old
 * code (s->stale_*); -BASE_E_UNSAFE naming the thread: not safe now. */
int hp_safety_check(HpSession *s, pid_t *ret_tid, BaseErr *e);
/* The window-hazard rule for st: `code` holds the process's size bytes at
 * st->entry, size = hp_hazard_span(st, the old function's size) (its bytes
 * are changed: the window as the base has it); fills st->hazard;
 * -BASE_E_MISMATCH naming the function when its entry cannot be
 * overwritten at all. */
uint64_t hp_hazard_span(const HpSite *st, uint64_t fn_size);
int hp_site_hazard(HpSession *s, HpSite *st, uint8_t *code, uint64_t size, BaseErr *e);

/* ---- injected system calls (inject.c) ------------------------------------ */

/* The thread that runs injected calls: the main thread if it is stopped
 * without a pending signal, else any without one. */
size_t hp_injector(const HpTracee *tr);
/* A `syscall` instruction in the target's executable memory. */
int hp_syscall_insn(HpSession *s, uint64_t *ret, BaseErr *e);
int hp_rsys(HpSession *s, uint64_t insn, long nr, uint64_t a0, uint64_t a1, uint64_t a2,
	    uint64_t a3, uint64_t a4, uint64_t a5, int64_t *ret, BaseErr *e);
/* Place code_len bytes of R+X memory for code (within rel32 reach of s->mod
 * when near; none when code_len is 0) and the state if the process has none
 * (s->state_addr set then; state_need: bytes its first record takes), in
 * as few injected runs as possible: none when both fit in caves (cave.c),
 * else usually one.  *ret_blob_size: the bytes taken (16-byte rounded in a
 * cave, page-rounded in a fresh mapping); *ret_in_cave: in a cave (never
 * unmapped).  cave_only (the process is not stopped): caves or nothing,
 * *ret_blob 0 when they do not fit.  Crash points "mapped" and "state"
 * follow each. */
int hp_place(HpSession *s, uint64_t code_len, uint64_t align, bool near, uint64_t state_need,
	     bool cave_only, uint64_t *ret_blob, uint64_t *ret_blob_size, bool *ret_in_cave,
	     BaseErr *e);
/* A mapping of the state as a memfd for a cave state that is full: created
 * unborn (hp_state_adopt leaves the header while s->migrating). */
int hp_state_memfd(HpSession *s, BaseErr *e);
bool hp_in_reach(uint64_t a, uint64_t size, uint64_t lo, uint64_t hi);

/* ---- caves (cave.c) ------------------------------------------------------- */

/* Is [lo, hi) clear of the state and of every recorded fix's code? */
bool hp_cave_free(const HpSession *s, uint64_t lo, uint64_t hi);
/* Code aligned to `align` (and, when the process has no state, the state
 * first) in caves with no injected run: 1 placed (*ret_blob), 0 no room.
 * Nothing is written: the caller writes the code, the state writer the
 * state's header after its first record. */
int hp_cave_place(HpSession *s, uint64_t blob_len, uint64_t align, bool near,
		  uint64_t state_need, uint64_t *ret_blob);
/* munmap in the target (best effort, for undoing a placement). */
void hp_unmap(HpSession *s, uint64_t addr, uint64_t size);

/* ---- state writer (writer.c) --------------------------------------------- */

/* Take the state mapping a stub created (fd, ftruncate's result and the
 * address as the stub left them in its registers): write the header. */
int hp_state_adopt(HpSession *s, int64_t fd, int64_t tr, int64_t addr, BaseErr *e);
int hp_state_put(HpSession *s, const char *fix_id, uint32_t status, uint32_t flags,
		 uint64_t blob, uint64_t blob_size, uint64_t *ret_rec_addr, BaseErr *e);
int hp_rec_status(HpSession *s, uint64_t rec_addr, uint32_t status);
int hp_rec_stale(HpSession *s, uint64_t rec_addr, size_t n_sites, bool stale, pid_t tid,
		 size_t site);

#endif
