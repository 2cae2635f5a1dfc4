/* The ptrace layer: stop every thread of a process, run system calls in it,
 * put every register back and let it go.  Nothing else in hotpatch/ calls
 * ptrace(2), nor waitpid(2) but wait.c (the bounded wait this file uses).
 *
 * Why PTRACE_SEIZE + PTRACE_INTERRUPT and not PTRACE_ATTACH: no SIGSTOP is
 * sent, so nothing can leak a stop or a signal into the target, and a thread
 * blocked in a system call is stopped with its restart state intact. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hotpatch/internal.h"

#ifndef PTRACE_O_SUSPEND_SECCOMP
#define PTRACE_O_SUSPEND_SECCOMP (1 << 21)
#endif
/* seize_new's answer when a filtered target cannot have its filters
 * suspended (a value no errno takes) */
#define SEIZE_NO_SUSPEND 4095

static HpThread *thread_find(HpTracee *tr, pid_t tid)
{
	for (size_t i = 0; i < tr->n; i++)
		if (tr->t[i].tid == tid)
			return &tr->t[i];
	return NULL;
}

static int thread_add(HpTracee *tr, pid_t tid)
{
	HpThread *nt = base_grow(tr->t, tr->n, &tr->cap, sizeof(*tr->t), 8);
	if (!nt)
		return -ENOMEM;
	tr->t = nt;
	memset(&tr->t[tr->n], 0, sizeof(HpThread));
	tr->t[tr->n].tid = tid;
	tr->n++;
	return 0;
}

static void thread_drop(HpTracee *tr, pid_t tid)
{
	for (size_t i = 0; i < tr->n; i++)
		if (tr->t[i].tid == tid) {
			tr->t[i] = tr->t[tr->n - 1];
			tr->n--;
			return;
		}
}

/* Record one stop of a thread we wait for.  Returns 1 if the thread is now
 * stopped, 0 if it went away, < 0 on error. */
static int note_stop(HpTracee *tr, HpThread *t, int status)
{
	if (WIFEXITED(status) || WIFSIGNALED(status)) {
		pid_t tid = t->tid;
		thread_drop(tr, tid);
		return tid == tr->pid ? -BASE_E_GONE : 0;
	}
	if (!WIFSTOPPED(status))
		return -EPROTO;
	int event = status >> 16, sig = WSTOPSIG(status);
	t->stopped = true;
	if (event == PTRACE_EVENT_CLONE) {
		/* the new thread is already attached (TRACECLONE): take it in */
		unsigned long msg = 0;
		if (ptrace(PTRACE_GETEVENTMSG, t->tid, 0, &msg) == 0 && msg &&
		    !thread_find(tr, (pid_t)msg))
			return thread_add(tr, (pid_t)msg) < 0 ? -ENOMEM : 1;
		return 1;
	}
	if (event == 0 && sig != SIGTRAP)
		t->sig = sig;   /* a signal-delivery-stop: hand it back at detach */
	return 1;
}

/* Why PTRACE_SEIZE said EPERM: 1 traced by us already (born of a seized
 * thread through TRACECLONE, its clone event not read yet), 0 gone or
 * exiting (the kernel refuses to attach to an exiting task), -EPERM really
 * not ours to trace (another tracer, or no permission). */
static int eperm_reason(pid_t pid, pid_t tid)
{
	char tracer[32], state[32];
	if (base_proc_status(pid, tid, "TracerPid", tracer, sizeof(tracer)) < 0 ||
	    base_proc_status(pid, tid, "State", state, sizeof(state)) < 0)
		return 0;   /* gone */
	int t = atoi(tracer);
	if (t == (int)gettid() || t == (int)getpid())
		return 1;
	if (state[0] == 'Z' || state[0] == 'X')
		return 0;
	return -EPERM;
}

/* Seize + interrupt thread tid: 1 taken (seized now, or ours already), 0
 * gone meanwhile, < 0 the error. */
static int seize_one(HpTracee *tr, pid_t tid)
{
	/* a target under a seccomp filter: its filters are suspended while
	 * we trace it, so that no injected call is filtered (a KILL action
	 * would kill it).  Needs CAP_SYS_ADMIN and a tracer not itself under
	 * seccomp; else EPERM, and the process is refused by name before
	 * anything is injected. */
	long opts = PTRACE_O_TRACECLONE | (tr->seccomp ? PTRACE_O_SUSPEND_SECCOMP : 0);
	int err = ptrace(PTRACE_SEIZE, tid, 0, (void *)opts) < 0 ? errno : 0;
	if (tr->seccomp < 0 && (err == EPERM || err == EINVAL)) {
		/* mode unknown (not read, to save a /proc read per process)
		 * and suspension refused: read it now; an unfiltered target
		 * is seized without suspension */
		if (hp_proc_seccomp(tr->pid, &tr->seccomp) < 0)
			tr->seccomp = 2;
		if (tr->seccomp == 0)
			err = ptrace(PTRACE_SEIZE, tid, 0, (void *)(long)PTRACE_O_TRACECLONE) < 0 ?
			      errno : 0;
	}
	if (err) {
		if (err == ESRCH)
			return 0;   /* exited meanwhile */
		if (tr->seccomp && (err == EPERM || err == EINVAL))
			return -SEIZE_NO_SUSPEND;
		int r = err == EPERM ? eperm_reason(tr->pid, tid) : -err;
		if (r <= 0)
			return r;
		/* ours already: it reports a stop on its own */
		return thread_add(tr, tid) < 0 ? -ENOMEM : 1;
	}
	if (tr->t_first == 0)
		tr->t_first = base_now_ns();
	if (thread_add(tr, tid) < 0) {
		ptrace(PTRACE_DETACH, tid, 0, 0);
		return -ENOMEM;
	}
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0 && errno != ESRCH)
		return -errno;
	return 1;
}

/* Seize + interrupt every thread listed in /proc/PID/task that we do not
 * have yet.  Returns how many were new.  The directory stays open for the
 * stop's later listings (a rewind and a read, not an open). */
static int seize_new(HpTracee *tr)
{
	bool again = tr->tasks_fd != 0;
	if (!again) {
		int fd = base_proc_dir_open(tr->pid, NULL);
		if (fd < 0)
			return fd;
		tr->tasks_fd = fd + 1;
	}
	_cleanup_free_ pid_t *tids = NULL;
	size_t n_tids = 0;
	int added = 0, r = base_proc_ids_at(tr->tasks_fd - 1, again, &tids, &n_tids, NULL);
	if (r < 0)
		return r;
	for (size_t k = 0; k < n_tids; k++) {
		if (thread_find(tr, tids[k]))
			continue;
		r = seize_one(tr, tids[k]);
		if (r < 0)
			return r;
		added += r;
	}
	return added;
}

int hp_ptrace_stop(HpTracee *tr, uint64_t timeout_ns, BaseErr *e)
{
	uint64_t deadline = base_now_ns() + timeout_ns;
	tr->t_first = tr->t_stopped = tr->t_resumed = 0;
	/* the main thread first, then the listing: what it clones from now on
	 * is reported (TRACECLONE), what it cloned before is listed, and the
	 * listing runs while the interrupted thread gets to its stop.  A
	 * process of one thread is then stopped after one listing. */
	int r = tr->n ? 0 : seize_one(tr, tr->pid);
	if (r < 0)
		goto fail;
	for (;;) {
		/* seize what is listed, wait until all of it is stopped, then
		 * list again: a thread cloned by one not seized when listed is
		 * only seen by a later listing (a clone by a seized thread is
		 * reported, TRACECLONE).  Once every thread has stopped, no
		 * clone is under way: a listing with nothing new ends it. */
		r = seize_new(tr);
		if (r < 0)
			goto fail;
		bool fresh = r > 0;
		for (size_t i = 0; i < tr->n; i++) {
			HpThread *t = &tr->t[i];
			if (t->stopped)
				continue;
			int status = 0;
			r = hp_wait_tid(t->tid, &status, deadline);
			if (r == -ECHILD) {
				/* reaped elsewhere: it is gone */
				thread_drop(tr, t->tid);
				i--;
				continue;
			}
			if (r < 0)
				goto fail;
			r = note_stop(tr, t, status);
			if (r < 0)
				goto fail;
			i = (size_t)-1;   /* note_stop may reorder or grow the list */
		}
		if (tr->n == 0) {
			r = -BASE_E_GONE;
			goto fail;
		}
		if (!fresh)
			break;
	}
	tr->t_stopped = base_now_ns();
	return 0;
fail:
	hp_ptrace_resume(tr);
	if (r == -BASE_E_GONE)
		return base_err(e, r, "pid %d: process exited while being stopped", (int)tr->pid);
	if (r == -EPERM)
		return base_err(e, r, "pid %d: cannot trace (already traced, or not permitted)",
				(int)tr->pid);
	if (r == -SEIZE_NO_SUSPEND)
		return base_err(e, -EPERM, "pid %d: runs under a seccomp filter (Seccomp: %d) that "
				"cannot be suspended (PTRACE_O_SUSPEND_SECCOMP needs CAP_SYS_ADMIN "
				"and an unfiltered tracer): refused before any injected call",
				(int)tr->pid, tr->seccomp);
	if (r == -ETIMEDOUT)
		return base_err(e, r, "pid %d: threads did not stop within %llu ms", (int)tr->pid,
				(unsigned long long)(timeout_ns / 1000000));
	return base_err(e, r, "pid %d: stopping threads: %s", (int)tr->pid, strerror(-r));
}

int hp_ptrace_regs(HpTracee *tr, size_t i)
{
	HpThread *t = &tr->t[i];
	if (t->regs_saved)
		return 0;
	if (ptrace(PTRACE_GETREGS, t->tid, 0, &t->regs) < 0)
		return -errno;
	t->regs_saved = true;
	return 0;
}

int hp_ptrace_resume(HpTracee *tr)
{
	int first = 0;
	for (size_t i = 0; i < tr->n; i++) {
		HpThread *t = &tr->t[i];
		if (!t->stopped) {
			/* the interrupt may still land: give it a moment, then detach
			 * (a clone event it reports adds the new thread to the list) */
			int status;
			if (hp_wait_tid(t->tid, &status, base_now_ns() + 20000000ull) == 0) {
				int r = note_stop(tr, t, status);
				if (r == 0 || r == -BASE_E_GONE) {
					i--;   /* dropped: this slot holds another thread now */
					continue;
				}
				t = &tr->t[i];
			}
		}
		if (t->regs_dirty && ptrace(PTRACE_SETREGS, t->tid, 0, &t->regs) < 0 && !first)
			first = -errno;
		if (ptrace(PTRACE_DETACH, t->tid, 0, (void *)(long)t->sig) == 0)
			continue;
		if (errno != ESRCH) {
			if (!first)
				first = -errno;
			continue;
		}
		/* exiting or exited: a traced thread that dies waits for its
		 * tracer to reap it, and until then its process cannot be
		 * waited for by its parent.  Reap it (bounded); should it stop
		 * instead, detach again. */
		uint64_t deadline = base_now_ns() + 50000000ull;
		for (;;) {
			int status;
			if (hp_wait_tid(t->tid, &status, deadline) < 0)
				break;
			if (!WIFSTOPPED(status))
				break;
			if (ptrace(PTRACE_DETACH, t->tid, 0, (void *)(long)t->sig) == 0)
				break;
		}
	}
	tr->n = 0;
	tr->t_resumed = base_now_ns();
	return first;
}

void hp_tracee_free(HpTracee *tr)
{
	if (tr->tasks_fd)
		close(tr->tasks_fd - 1);
	tr->tasks_fd = 0;
	free(tr->t);
	tr->t = NULL;
	tr->n = tr->cap = 0;
}

/* Put the thread's own registers back at once rather than at detach: should
 * this tool die now, the kernel detaches the thread and it must resume where
 * it was stopped, not in the middle of borrowed code. */
static void restore_now(HpThread *t)
{
	if (ptrace(PTRACE_SETREGS, t->tid, 0, &t->regs) == 0)
		t->regs_dirty = false;
}

/* Load regs into thread i for code we inject: never a system call being
 * restarted (without orig_rax = -1 the kernel's restart logic would rewind
 * RIP over our `syscall` when the stop returns), no trap flag. */
static int inject_regs(HpTracee *tr, size_t i, struct user_regs_struct regs, BaseErr *e)
{
	int r = hp_ptrace_regs(tr, i);
	if (r < 0)
		return base_err(e, r, "pid %d: reading registers: %s", (int)tr->pid, strerror(-r));
	regs.orig_rax = (uint64_t)-1;
	regs.eflags &= ~0x100ull;
	tr->t[i].regs_dirty = true;
	if (ptrace(PTRACE_SETREGS, tr->t[i].tid, 0, &regs) < 0)
		return base_err(e, -errno, "pid %d: setting registers: %s", (int)tr->pid,
				strerror(errno));
	return 0;
}

/* Resume thread i once (PTRACE_SINGLESTEP or PTRACE_CONT), wait for its next
 * stop and read its registers.  what names the injected code in errors. */
static int resume_once(HpTracee *tr, size_t i, enum __ptrace_request req, uint64_t deadline,
		       const char *what, int *ret_status, struct user_regs_struct *now, BaseErr *e)
{
	pid_t tid = tr->t[i].tid;
	int status = 0;
	if (ptrace(req, tid, 0, 0) < 0)
		return base_err(e, errno == ESRCH ? -BASE_E_GONE : -errno, "pid %d: %s: %s",
				(int)tr->pid, req == PTRACE_SINGLESTEP ? "single-step" : "continue",
				strerror(errno));
	int r = hp_wait_tid(tid, &status, deadline);
	if (r < 0)
		return base_err(e, r == -ECHILD ? -BASE_E_GONE : r, "pid %d: %s: %s", (int)tr->pid,
				what, strerror(-r));
	if (WIFEXITED(status) || WIFSIGNALED(status)) {
		thread_drop(tr, tid);
		return base_err(e, -BASE_E_GONE, "pid %d: exited during %s", (int)tr->pid, what);
	}
	if (ptrace(PTRACE_GETREGS, tid, 0, now) < 0)
		return base_err(e, -errno, "pid %d: reading registers: %s", (int)tr->pid,
				strerror(errno));
	*ret_status = status;
	return 0;
}

int hp_ptrace_syscall(HpTracee *tr, size_t i, uint64_t insn, long nr,
		      const uint64_t args[6], int64_t *ret, BaseErr *e)
{
	int r = hp_ptrace_regs(tr, i);
	if (r < 0)
		return base_err(e, r, "pid %d: reading registers: %s", (int)tr->pid, strerror(-r));
	HpThread *t = &tr->t[i];
	struct user_regs_struct regs = t->regs;
	char what[48];
	regs.rax = (uint64_t)nr;
	regs.rdi = args[0];
	regs.rsi = args[1];
	regs.rdx = args[2];
	regs.r10 = args[3];
	regs.r8 = args[4];
	regs.r9 = args[5];
	regs.rip = insn;
	r = inject_regs(tr, i, regs, e);
	if (r < 0)
		return r;
	snprintf(what, sizeof(what), "injected syscall %ld", nr);
	uint64_t deadline = base_now_ns() + 1000000000ull;
	for (;;) {
		struct user_regs_struct now;
		int status = 0;
		r = resume_once(tr, i, PTRACE_SINGLESTEP, deadline, what, &status, &now, e);
		if (r < 0)
			return r;
		int event = status >> 16, sig = WSTOPSIG(status);
		if (now.rip == insn + 2) {
			*ret = (int64_t)now.rax;
			tr->syscalls++;
			tr->runs++;
			restore_now(t);
			return 0;
		}
		if (now.rip != insn)
			return base_err(e, -EPROTO, "pid %d: injected syscall strayed to %#llx",
					(int)tr->pid, (unsigned long long)now.rip);
		/* stopped before running it: a pending interrupt, or a signal that
		 * arrived; keep the signal for the detach and step again */
		if (event == 0 && sig != SIGTRAP)
			t->sig = sig;
	}
}

int hp_ptrace_run(HpTracee *tr, size_t i, const struct user_regs_struct *in, uint64_t end,
		  struct user_regs_struct *out, BaseErr *e)
{
	int r = inject_regs(tr, i, *in, e);
	if (r < 0)
		return r;
	HpThread *t = &tr->t[i];
	uint64_t deadline = base_now_ns() + 1000000000ull;
	for (;;) {
		int status = 0;
		r = resume_once(tr, i, PTRACE_CONT, deadline, "injected code", &status, out, e);
		if (r < 0)
			return r;
		int event = status >> 16, sig = WSTOPSIG(status);
		if (event == 0 && sig == SIGTRAP && out->rip == end) {
			tr->syscalls++;
			tr->runs++;
			restore_now(t);
			return 0;
		}
		bool ours = out->rip >= in->rip && out->rip < end;
		if (event == 0 && ours && (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL ||
					   sig == SIGFPE)) {
			/* the injected code faulted: never hand that signal to the
			 * process (it would die of our fault) */
			restore_now(t);
			return base_err(e, -EFAULT, "pid %d: injected code faulted (signal %d at "
					"%#llx)", (int)tr->pid, sig, (unsigned long long)out->rip);
		}
		if (event == 0 && sig != SIGTRAP)
			t->sig = sig;   /* not ours: hand it back at detach */
		else if (event == 0)
			return base_err(e, -EPROTO, "pid %d: injected code trapped at %#llx",
					(int)tr->pid, (unsigned long long)out->rip);
	}
}

