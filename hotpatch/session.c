/* A patch session on one process: open (maps, state), stop every thread
 * with the consistency check passed (retrying with back-off until the
 * deadline), resume, and the report of what was done.  The kernel's
 * livepatch calls this part core.c. */
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hotpatch/internal.h"

/* A worker of a many-process call keeps the lock file open for all its
 * sessions (hp_worker_begin/end): taking a lock is one fcntl call, not an
 * open.  The locks are the worker's open file description's, and it drops
 * them in batches: one F_UNLCK over the whole file releases every process
 * this worker finished (never another worker's: they are its own
 * description's), at the latest after HELD_MAX sessions or HELD_NS since
 * the first it holds, and when the worker ends.  Holding a finished
 * process's byte a little longer only delays another patcher of it (which
 * waits, or stops it without the lock, see lock_take): a fleet saves one
 * system call per process. */
static _Thread_local int worker_lockfd = -1;
static _Thread_local unsigned worker_held;
static _Thread_local uint64_t worker_held_since;
#define HELD_MAX 16u
#define HELD_NS 5000000ull

static void worker_release(void)
{
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	if (fcntl(worker_lockfd, F_OFD_SETLK, &fl) < 0) {
		/* cannot happen; should it, closing releases every lock of
		 * the file (the worker's next session opens it again) */
		close(worker_lockfd);
		worker_lockfd = -1;
	}
	worker_held = 0;
}

void hp_session_done(HpSession *s)
{
	if (s->tr.n)
		hp_ptrace_resume(&s->tr);
	hp_tracee_free(&s->tr);
	hp_unwinder_close(s->unw);
	hp_state_free(s->state);
	free(s->mods);
	hp_pages_free(&s->pages);
	free(s->sites);
	hp_spans_free(&s->spans);
	elf_lineage_free(&s->lin);
	hp_maps_free(&s->maps);
	if (s->memfd >= 0)
		close(s->memfd);
	if (s->lockfd >= 0 && s->lockfd == worker_lockfd) {
		uint64_t now = base_now_ns();
		if (!worker_held++)
			worker_held_since = now;
		if (worker_held >= HELD_MAX || now - worker_held_since > HELD_NS)
			worker_release();
	} else if (s->lockfd >= 0) {
		close(s->lockfd);   /* releases the lock */
	}
}

void hp_worker_begin(void)
{
	if (worker_lockfd < 0)
		worker_lockfd = open(HP_LOCK_PATH, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	worker_held = 0;
}

void hp_worker_end(void)
{
	if (worker_lockfd >= 0)
		close(worker_lockfd);   /* releases every lock it holds */
	worker_lockfd = -1;
	worker_held = 0;
}

/* Patchers of one process take turns: an OFD lock on byte PID of one file,
 * taken before the session reads anything and held until it is done.  Only
 * a patcher writes the in-process state, and only one holding the lock
 * patches, so what the session read while the process ran (the state, or
 * its absence) still holds once the process is stopped, and the stop need
 * not read it again.  Without the lock (no /run, not root, or another
 * patcher holding it past the wait) the stop re-reads maps and state: the
 * ptrace stop alone serialises patchers, only at a higher price. */
static int lock_take(pid_t pid, uint32_t wait_ms)
{
	if (worker_held && worker_lockfd >= 0 && base_now_ns() - worker_held_since > HELD_NS)
		worker_release();   /* not held through a session that may be long */
	int fd = worker_lockfd >= 0 ? worker_lockfd :
		 open(HP_LOCK_PATH, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = pid, .l_len = 1 };
	uint64_t deadline = base_now_ns() + (uint64_t)wait_ms * 1000000ull;
	for (;;) {
		if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
			return fd;
		int err = errno;
		if ((err != EAGAIN && err != EACCES && err != EINTR) || base_now_ns() > deadline) {
			if (fd != worker_lockfd)
				close(fd);
			return -err;
		}
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
}

static void opts_fill(HpOpts *o, const HpOpts *in)
{
	if (in)
		*o = *in;
	else
		memset(o, 0, sizeof(*o));
	if (!o->deadline_ms)
		o->deadline_ms = 2000;
	if (!o->stop_timeout_ms)
		o->stop_timeout_ms = 1000;
	if (!o->backoff_us)
		o->backoff_us = 500;
	if (!o->stack_scan)
		o->stack_scan = 64 * 1024;
}

/* Fault injection for the crash tests: HP_CRASH_AT=<step> kills the tool
 * right after that step, as a crash or an operator's kill -9 would.  The
 * kernel then detaches every thread; the target must run on, consistent. */
void hp_crash_point(const HpSession *s, const char *step)
{
	if (s->crash_at && strcmp(s->crash_at, step) == 0)
		kill(getpid(), SIGKILL);
}

const HpFixInfo *hp_state_find(const HpState *st, const char *fix_id, bool active_only)
{
	for (size_t i = st->n_fixes; i > 0; i--)
		if (!st->fixes[i - 1].baked && strcmp(st->fixes[i - 1].fix_id, fix_id) == 0 &&
		    (!active_only || st->fixes[i - 1].status != HP_FIX_REVERTED))
			return &st->fixes[i - 1];
	return NULL;
}

int hp_state_reload(HpSession *s, BaseErr *e)
{
	hp_state_free(s->state);
	s->state = NULL;
	return hp_state_load(s->memfd, s->pid, s->state_addr, &s->state, &s->hdr, e);
}

int hp_session_open(HpSession *s, pid_t pid, const HpOpts *opts, HpFleet *fleet, HpReport *rep,
		    BaseErr *e)
{
	/* all but the stack chunk buffer, which stack0_at says is unread */
	memset(s, 0, offsetof(HpSession, stack0));
	s->fleet = fleet;
	s->memfd = -1;
	s->lockfd = -1;
	s->pid = pid;
	s->rep = rep;
	s->crash_at = getenv("HP_CRASH_AT");
	opts_fill(&s->o, opts);
	int l = lock_take(pid, s->o.deadline_ms);
	s->lockfd = l >= 0 ? l : -1;
	int r = hp_mem_open(pid, true, &s->memfd);
	if (r < 0)
		return base_err(e, r, "pid %d: /proc/%d/mem: %s", (int)pid, (int)pid,
				base_strerror(r));
	s->tr.pid = pid;
	/* root seizes with seccomp suspended whatever the mode (a no-op for
	 * an unfiltered process) and reads the mode only if that is refused */
	s->tr.seccomp = -1;
	static _Atomic int euid = -1;   /* read once: two first sessions write one value */
	if (euid < 0)
		euid = (int)geteuid();
	r = euid == 0 ? 0 : hp_proc_seccomp(pid, &s->tr.seccomp);
	if (r < 0)
		return base_err(e, r, "pid %d: /proc/%d/status: %s", (int)pid, (int)pid,
				base_strerror(r));
	r = hp_maps_read(pid, &s->maps, e);
	if (r < 0)
		return r;
	s->exe = hp_exe_map(pid, &s->maps);
	/* the executable's first page for the state; with a call's shared
	 * file pages (no process read) every module's, for the apply */
	r = hp_pages_read(pid, &s->maps, s->fleet, s->fleet ? NULL : s->exe, NULL, &s->pages);
	if (r < 0)
		return base_err(e, r, "pid %d: reading modules: %s", (int)pid, strerror(-r));
	if (hp_state_locate(s->memfd, &s->maps, s->exe, &s->pages, &s->state_addr) < 0)
		s->state_addr = 0;
	return hp_state_reload(s, e);
}

static void backoff(uint32_t us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000 };
	nanosleep(&ts, NULL);
}

int hp_stop_safely(HpSession *s, HpCheckFn check, void *ctx, BaseErr *e)
{
	uint64_t deadline = base_now_ns() + (uint64_t)s->o.deadline_ms * 1000000ull;
	uint32_t wait_us = s->o.backoff_us;
	for (;;) {
		bool stale_only = false;
		s->rep->attempts++;
		int r = hp_ptrace_stop(&s->tr, (uint64_t)s->o.stop_timeout_ms * 1000000ull, e);
		if (r < 0)
			return r;
		memset(s->rep->phase_ns, 0, sizeof(s->rep->phase_ns));
		s->t_mark = s->tr.t_first;
		hp_phase(s, HP_PH_STOP);
		hp_stop_read(s);
		r = check(s, ctx, e);
		hp_phase(s, HP_PH_CHECK);
		if (r == 0) {
			pid_t tid = 0;
			r = hp_safety_check(s, &tid, e);
			hp_phase(s, HP_PH_SAFETY);
			if (r == 0)
				return 0;
			if (r > 0 && base_now_ns() > deadline) {
				/* safe to redirect, but old frames stay: patched,
				 * not converged, and said so */
				s->rep->not_converged = true;
				s->rep->stale_tid = s->stale_tid;
				snprintf(s->rep->stale_fn, sizeof(s->rep->stale_fn), "%s",
					 s->sites[s->stale_site].name);
				return 0;
			}
			stale_only = r > 0;
			if (r > 0)
				r = base_err_replace(e, -BASE_E_UNSAFE, "pid %d: %s", (int)s->pid,
						     s->stale_msg);
			s->rep->unsafe_tid = tid;
		}
		hp_ptrace_resume(&s->tr);
		/* old frames alone never fail the call: the attempt after the
		 * deadline redirects (or finds a hard reason to refuse) */
		if (r != -BASE_E_UNSAFE || (base_now_ns() > deadline && !stale_only))
			return r;
		backoff(wait_us);
		if (wait_us < 20000)
			wait_us *= 2;
	}
}

void hp_phase(HpSession *s, HpPhase ph)
{
	uint64_t now = base_now_ns();
	if (s->t_mark && now > s->t_mark)
		s->rep->phase_ns[ph] += now - s->t_mark;
	s->t_mark = now;
}

void hp_report_fill(HpSession *s, int r, const BaseErr *e)
{
	HpReport *rep = s->rep;
	rep->pid = s->pid;
	rep->result = r;
	if (r < 0) {
		const char *m = e && e->msg[0] ? e->msg : base_strerror(r);
		size_t n = strnlen(m, sizeof(rep->msg) - 1);
		memcpy(rep->msg, m, n);
		rep->msg[n] = 0;
	}
	if (s->tr.t_first && s->tr.t_resumed > s->tr.t_first) {
		rep->pause_ns = s->tr.t_resumed - s->tr.t_first;
		rep->stop_ns = s->tr.t_stopped > s->tr.t_first ? s->tr.t_stopped - s->tr.t_first : 0;
	}
	rep->syscalls = s->tr.syscalls;
	rep->runs = s->tr.runs;
	if (s->t_mark && s->tr.t_resumed > s->t_mark)
		rep->phase_ns[HP_PH_RESUME] = s->tr.t_resumed - s->t_mark;
}


/* One call on one process with a payload: open the session, run the
 * operation, fill the report (also on failure), close. */
int hp_run_with_payload(pid_t pid, const ElfPayload *p, const HpOpts *opts, HpFleet *fleet,
			int (*op)(HpSession *, const ElfPayload *, BaseErr *),
			HpReport *ret_report, BaseErr *e)
{
	uint64_t t0 = base_now_ns();
	HpReport rep = { .pid = pid };
	HpSession s;
	int r = hp_session_open(&s, pid, opts, fleet, &rep, e);
	if (r == 0)
		r = op(&s, p, e);
	return hp_session_end(&s, r, e, t0, ret_report);
}

int hp_resume_result(HpSession *s, int r, BaseErr *e)
{
	int r2 = hp_ptrace_resume(&s->tr);
	if (r == 0 && r2 < 0)
		r = base_err(e, r2, "pid %d: resuming: %s", (int)s->pid, strerror(-r2));
	return r;
}

int hp_session_end(HpSession *s, int r, BaseErr *e, uint64_t t0, HpReport *ret_report)
{
	HpReport *rep = s->rep;
	/* a process that exits under a session fails it in whatever step
	 * met its memory going (no module, a short read of the state...):
	 * that is "gone", not the step's error.  Its maps tell: empty while
	 * it exits, absent once reaped (a new process under the number maps
	 * something, and the step's error stands). */
	if (r < 0 && r != -BASE_E_GONE) {
		HpMaps now = { 0 };
		BaseErr ig = { 0 };
		if (hp_maps_read(s->pid, &now, &ig) == -BASE_E_GONE)
			r = base_err_replace(e, -BASE_E_GONE, "pid %d: process exited", (int)s->pid);
		hp_maps_free(&now);
	}
	hp_report_fill(s, r, e);
	hp_session_done(s);
	rep->total_ns = base_now_ns() - t0;
	if (ret_report)
		*ret_report = *rep;
	return r;
}
