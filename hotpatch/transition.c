/* The consistency check: may the sites change while the threads are where
 * they are stopped, and does any thread still run the code being replaced?
 * (The kernel's livepatch calls this part transition.c.)
 *
 * Two questions per thread, asked while every thread is stopped:
 *
 *  1. Window safety (hard): is the thread's RIP, or a return address on its
 *     stack, strictly inside the bytes a redirect rewrites?  Then the write
 *     would tear an instruction under it: never write, retry, refuse at the
 *     deadline (BASE_E_UNSAFE).
 *  2. Old frames (consistency): does any frame of the thread lie anywhere in
 *     the old code (the whole replaced function, or on revert the new code
 *     being taken out)?  Such a thread keeps running the old body after the
 *     redirect; only its next call takes the new code.  Retry until the
 *     deadline; past it, redirect anyway where that is safe (the process is
 *     then patched but NOT converged, which the caller reports), and refuse
 *     where the function is window-hazardous: its body branches into the
 *     window, so a thread in it would jump into the middle of the new jump.
 *
 * How frames are found, cheapest first: the stack words from the red zone
 * up to stack_scan bytes above RSP are read anyway for question 1; when none
 * of them (nor RIP) points into old code and the scan reached the end of the
 * thread's own stack mapping, no frame can be there.  (Only its own: a
 * thread in a signal handler on an alternate signal stack, or on any stack
 * a runtime switched to, has the frames it will return to elsewhere.)
 * Otherwise the thread is unwound
 * with libunwind (unwind.c); a complete walk through code with unwind info
 * decides.  A walk that breaks, or that passes through code without a file
 * (our own blobs carry no .eh_frame), is not trusted, and the word scan's
 * conservative answer stands (a stale word counts as a frame).  Question 1
 * takes the walk's return addresses too: they are the frames the words
 * did not cover (beyond stack_scan, on another stack), and a thread whose
 * words were not all read is walked even once another was found stale.
 * Frames that neither reached are unknown: a site whose old body has a
 * call returning inside its window (ret_inside) is refused for them. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hotpatch/internal.h"

#define MAX_FRAMES 512

/* Can a thread be at `a` (an instruction pointer or a return address) while
 * the window changes under it?  The entry itself and the window start are
 * instruction boundaries in the old and the new bytes alike; any other byte
 * inside is not (e.g. one past a 2-byte entry made of two 1-byte NOPs). */
static bool inside(const HpSite *st, uint64_t a)
{
	return a > st->window && a < st->window + st->len && a != st->entry;
}

/* The site whose window holds `a` strictly inside (inside()), or -1. */
static int in_window(const HpSession *s, uint64_t a)
{
	for (size_t k = 0; k < s->n_sites; k++)
		if (inside(&s->sites[k], a))
			return (int)k;
	return -1;
}

/* The site whose old code holds `a`, or -1. */
static int in_old(const HpSession *s, uint64_t a)
{
	for (size_t k = 0; k < s->n_sites; k++)
		for (size_t j = 0; j < 2; j++)
			if (a >= s->sites[k].old_lo[j] && a < s->sites[k].old_hi[j])
				return (int)k;
	return -1;
}

/* The words of a stack worth a closer look lie in [*lo, *lo + *span): a
 * word strictly inside a window, or one past a byte of old code (a return
 * address).  Nearly every stack word is outside, at one compare. */
static void interesting(const HpSession *s, uint64_t *lo, uint64_t *span)
{
	uint64_t a = UINT64_MAX, b = 0;
	for (size_t k = 0; k < s->n_sites; k++) {
		const HpSite *st = &s->sites[k];
		if (st->len) {
			a = st->window + 1 < a ? st->window + 1 : a;
			b = st->window + st->len > b ? st->window + st->len : b;
		}
		for (size_t j = 0; j < 2; j++)
			if (st->old_hi[j] > st->old_lo[j]) {
				a = st->old_lo[j] + 1 < a ? st->old_lo[j] + 1 : a;
				b = st->old_hi[j] + 1 > b ? st->old_hi[j] + 1 : b;
			}
	}
	*lo = a;
	*span = b > a ? b - a : 0;
}

/* a in [lo, lo + span), in one compare; BASE_WRAPS: below lo wraps high */
BASE_WRAPS static inline bool in_span(uint64_t a, uint64_t lo, uint64_t span)
{
	return a - lo < span;
}

/* Is every frame pc in file-backed executable code (where .eh_frame is)? */
static bool walk_trusted(const HpSession *s, const uint64_t *pcs, size_t n)
{
	for (size_t j = 0; j < n; j++) {
		const HpMap *mp = hp_maps_find(&s->maps, pcs[j]);
		if (!mp || mp->perms[2] != 'x' || mp->path[0] != '/')
			return false;
	}
	return true;
}

/* Is the mapping mp thread i's own stack, the one its first frame is on?
 * The main thread's is the one the kernel labels [stack]; another thread's
 * holds its thread pointer too (glibc and musl put the thread's control
 * block at the top of the stack mapping they make).  An alternate signal
 * stack, a coroutine's or a runtime's own stack, or the lower part of a
 * stack mapping split above RSP (mlock of a buffer in a frame) is neither.
 * A false "not own" costs a walk; a false "own" (an alternate stack carved
 * out of the thread's own stack, a local array) could hide the frames
 * below it: a known limit (docs/hotpatch.md). */
static bool own_stack(const HpSession *s, size_t i, const HpMap *mp)
{
	if (!mp)
		return false;
	if (s->tr.t[i].tid == s->pid)
		return strcmp(mp->path, "[stack]") == 0;
	uint64_t tp = s->tr.t[i].regs.fs_base;
	return tp >= mp->start && tp < mp->end;
}

/* Old frames of thread i: 0 none, 1 found (*ret_site), < 0 error
 * (-BASE_E_UNSAFE: a frame returns strictly inside a window, *ret_site).
 * *ret_seen: every frame of the thread was seen (by the words or a
 * complete, trusted walk). */
static int old_frames(HpSession *s, size_t i, int scan_site, bool scan_whole, int *ret_site,
		      bool *ret_seen)
{
	const struct user_regs_struct *rg = &s->tr.t[i].regs;
	*ret_seen = scan_whole;
	if (scan_site < 0 && scan_whole)
		return 0;
	if (!s->unw && hp_unwinder_open(s->pid, &s->unw) < 0)
		s->unw = NULL;
	uint64_t pcs[MAX_FRAMES];
	size_t n = 0;
	bool whole = s->unw && hp_unwind(s->unw, s->memfd, &s->maps, rg, pcs, MAX_FRAMES, &n) == 0;
	/* the frames the walk found, on whatever stack they are: the
	 * word scan saw only the stack RSP is on */
	for (size_t j = 1; j < n; j++)
		if ((*ret_site = in_window(s, pcs[j])) >= 0)
			return -BASE_E_UNSAFE;
	if (whole && walk_trusted(s, pcs, n)) {
		*ret_seen = true;
		for (size_t j = 0; j < n; j++) {
			/* a return address is one past the call: pc - 1 is in
			 * the caller even when the call ends it */
			int k = in_old(s, j ? pcs[j] - 1 : pcs[j]);
			if (k >= 0) {
				*ret_site = k;
				return 1;
			}
		}
		return 0;
	}
	s->rep->scanned++;
	/* untrusted walk: what it found still counts, then the scan's word */
	for (size_t j = 0; j < n; j++) {
		int k = in_old(s, j ? pcs[j] - 1 : pcs[j]);
		if (k >= 0) {
			*ret_site = k;
			return 1;
		}
	}
	if (scan_site >= 0 || !scan_whole) {
		/* not provable either way: assume the worst */
		*ret_site = scan_site >= 0 ? scan_site : 0;
		return 1;
	}
	return 0;
}

void hp_stack_range(const HpSession *s, size_t i, uint64_t *ret_from, uint64_t *ret_to,
		    bool *ret_whole)
{
	/* the red zone below RSP may hold live data of a leaf function (not
	 * return addresses, but a pushed-then-popped one can be reused); scan
	 * from there up to the end of the stack mapping */
	const struct user_regs_struct *rg = &s->tr.t[i].regs;
	uint64_t from = (rg->rsp - 128) & ~7ull, to = rg->rsp + s->o.stack_scan;
	bool whole = false;
	const HpMap *mp = hp_maps_find(&s->maps, rg->rsp);
	if (mp && mp->end <= to) {
		to = mp->end;
		/* every word of the thread's stack above RSP: only when that
		 * mapping is its own stack */
		whole = own_stack(s, i, mp);
	}
	if (mp && from < mp->start)
		from = mp->start;
	*ret_from = from;
	*ret_to = to;
	*ret_whole = whole;
}

int hp_safety_check(HpSession *s, pid_t *ret_tid, BaseErr *e)
{
	s->stale = false;
	uint64_t lo, span;
	interesting(s, &lo, &span);
	for (size_t i = 0; i < s->tr.n; i++) {
		int r = hp_ptrace_regs(&s->tr, i);
		if (r < 0)
			return base_err(e, r, "pid %d: registers of thread %d: %s", (int)s->pid,
					(int)s->tr.t[i].tid, strerror(-r));
		const struct user_regs_struct *rg = &s->tr.t[i].regs;
		pid_t tid = s->tr.t[i].tid;
		int in = in_window(s, rg->rip);
		if (in >= 0) {
			*ret_tid = tid;
			return base_err_replace(e, -BASE_E_UNSAFE,
				"pid %d: thread %d is inside %s (rip %#llx)", (int)s->pid,
				(int)tid, s->sites[in].name, (unsigned long long)rg->rip);
		}
		int scan_site = in_old(s, rg->rip);
		bool scan_whole;
		uint64_t from, to;
		hp_stack_range(s, i, &from, &to, &scan_whole);
		uint64_t own[HP_STACK_CHUNK / 8];
		for (uint64_t a = from; a < to; a += HP_STACK_CHUNK) {
			size_t want = to - a < HP_STACK_CHUNK ? to - a : HP_STACK_CHUNK;
			const uint64_t *buf = own;
			ssize_t got;
			if (i == 0 && a == from && s->stack0_at && s->stack0_at == s->rep->attempts &&
			    s->stack0_from == from) {
				buf = s->stack0;   /* read with the sites at this stop */
				got = (ssize_t)(s->stack0_got < want ? s->stack0_got : want);
			} else {
				got = pread(s->memfd, own, want, (off_t)a);
			}
			if (got <= 0) {
				scan_whole = false;
				break;
			}
			for (size_t w = 0; w < (size_t)got / 8; w++) {
				if (!in_span(buf[w], lo, span))
					continue;
				int k = in_window(s, buf[w]);
				if (k >= 0) {
					*ret_tid = tid;
					return base_err_replace(e, -BASE_E_UNSAFE,
						"pid %d: thread %d has a return address into %s "
						"on its stack (%#llx)", (int)s->pid, (int)tid,
						s->sites[k].name, (unsigned long long)buf[w]);
				}
				/* below RSP: dead words, no frame (a callee's
				 * return address into its caller stays there) */
				if (scan_site < 0 && a + 8 * w >= rg->rsp)
					scan_site = buf[w] ? in_old(s, buf[w] - 1) : -1;
			}
			if ((size_t)got < want) {
				scan_whole = false;
				break;
			}
		}
		/* one old frame is enough to know; the windows are checked on:
		 * by the words when they are the whole stack, else by a walk */
		if (s->stale && scan_whole)
			continue;
		int site = -1;
		bool seen = false;
		r = old_frames(s, i, scan_site, scan_whole, &site, &seen);
		if (r == -BASE_E_UNSAFE) {
			*ret_tid = tid;
			return base_err_replace(e, -BASE_E_UNSAFE,
				"pid %d: thread %d has a return address into %s on its stack "
				"(found by its stack walk)", (int)s->pid, (int)tid,
				s->sites[site].name);
		}
		if (r < 0)
			return r;
		/* frames neither read nor walked: one may return into a window
		 * where a call of the old body returns there */
		for (size_t k = 0; !seen && k < s->n_sites; k++)
			if (s->sites[k].ret_inside) {
				*ret_tid = tid;
				return base_err_replace(e, -BASE_E_UNSAFE,
					"pid %d: thread %d: its stack cannot be read whole, and %s "
					"calls from its entry bytes (returning to entry+%llu): a "
					"frame may return there", (int)s->pid, (int)tid,
					s->sites[k].name,
					(unsigned long long)(s->sites[k].ret_inside - s->sites[k].entry));
			}
		if (r > 0 && !s->stale) {
			s->stale = true;
			s->stale_tid = tid;
			s->stale_site = (size_t)site;
		}
	}
	if (!s->stale)
		return 0;
	const HpSite *st = &s->sites[s->stale_site];
	*ret_tid = s->stale_tid;
	if (st->hazard[0])
		return base_err_replace(e, -BASE_E_UNSAFE,
					"pid %d: thread %d runs in %s, whose body %s: it may only "
					"be redirected while no thread is in it", (int)s->pid,
					(int)s->stale_tid, st->name, st->hazard);
	(void)e;
	snprintf(s->stale_msg, sizeof(s->stale_msg), "thread %d still runs %s %s",
		 (int)s->stale_tid, s->reverting ? "the new code of" : "old", st->name);
	return 1;
}

uint64_t hp_hazard_span(const HpSite *st, uint64_t fn_size)
{
	if (fn_size > (1u << 20))
		fn_size = 1u << 20;
	if (fn_size < st->len - st->pad)
		fn_size = st->len - st->pad;
	return fn_size;
}

int hp_site_hazard(HpSession *s, HpSite *st, uint8_t *code, uint64_t size, BaseErr *e)
{
	int r;
	st->hazard[0] = 0;
	/* the window as the base has it: a fix already there wrote a jump */
	if (st->rd)
		memcpy(code, st->rd->expect + st->pad, st->len - st->pad);
	ElfX86Scan sc;
	r = hp_fleet_scan(s->fleet, code, size, st->entry, st->window, st->window + st->len, &sc);
	if (r < 0)
		return base_err(e, r, "pid %d: decoding %s: %s", (int)s->pid, st->name, strerror(-r));
	uint64_t end = st->window + st->len;
	if (sc.undecoded && sc.undecoded < end)
		return base_err(e, -BASE_E_MISMATCH,
				"pid %d: %s: the bytes at its entry+%" PRIu64 " are no x86-64 "
				"instruction: its entry cannot be redirected", (int)s->pid, st->name,
				sc.undecoded - st->entry);
	st->ret_inside = sc.ret_inside;
	if (sc.into)
		snprintf(st->hazard, sizeof(st->hazard),
			 "branches into its entry window (+%" PRIu64 " jumps to entry+%" PRId64 ")",
			 sc.into - st->entry, (int64_t)(sc.target - st->entry));
	else if (sc.indirect)
		snprintf(st->hazard, sizeof(st->hazard),
			 "has an indirect jump (+%" PRIu64 ") whose targets are unknown",
			 sc.indirect - st->entry);
	else if (sc.undecoded)
		snprintf(st->hazard, sizeof(st->hazard),
			 "cannot be decoded past +%" PRIu64, sc.undecoded - st->entry);
	return 0;
}
