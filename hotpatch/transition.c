/* The consistency check: may the sites change while the threads are where
 * they are stopped?  (The kernel's livepatch: transition.c.) */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hotpatch/internal.h"

/* Can a thread be at `a` (an instruction pointer or a return address) while
 * the window changes under it?  The entry itself and the window start are
 * instruction boundaries in the old and the new bytes alike; any other byte
 * inside is not (e.g. one past a 2-byte entry made of two 1-byte NOPs). */
static bool inside(const HpSite *st, uint64_t a)
{
	return a > st->window && a < st->window + st->len && a != st->entry;
}

int hp_safety_check(HpSession *s, pid_t *ret_tid, BaseErr *e)
{
	for (size_t i = 0; i < s->tr.n; i++) {
		int r = hp_ptrace_regs(&s->tr, i);
		if (r < 0)
			return base_err(e, r, "pid %d: registers of thread %d: %s", (int)s->pid,
					(int)s->tr.t[i].tid, strerror(-r));
		const struct user_regs_struct *rg = &s->tr.t[i].regs;
		pid_t tid = s->tr.t[i].tid;
		for (size_t k = 0; k < s->n_sites; k++)
			if (inside(&s->sites[k], rg->rip)) {
				*ret_tid = tid;
				return base_err_replace(e, -BASE_E_UNSAFE,
					"pid %d: thread %d is inside %s (rip %#llx)", (int)s->pid,
					(int)tid, s->sites[k].name, (unsigned long long)rg->rip);
			}
		/* the red zone below RSP may hold live data of a leaf function
		 * (not return addresses, but a pushed-then-popped one can be
		 * reused); scan from there up to the end of the stack mapping */
		uint64_t from = (rg->rsp - 128) & ~7ull, to = rg->rsp + s->o.stack_scan;
		const HpMap *mp = hp_maps_find(&s->maps, rg->rsp);
		if (mp && mp->end < to)
			to = mp->end;
		if (mp && from < mp->start)
			from = mp->start;
		if (to <= from)
			continue;
		uint64_t buf[2048];
		for (uint64_t a = from; a < to; a += sizeof(buf)) {
			size_t want = to - a < sizeof(buf) ? to - a : sizeof(buf);
			ssize_t got = pread(s->memfd, buf, want, (off_t)a);
			if (got <= 0)
				break;
			for (size_t w = 0; w < (size_t)got / 8; w++)
				for (size_t k = 0; k < s->n_sites; k++)
					if (inside(&s->sites[k], buf[w])) {
						*ret_tid = tid;
						return base_err_replace(e, -BASE_E_UNSAFE,
							"pid %d: thread %d has a return address into %s "
							"on its stack (%#llx)", (int)s->pid, (int)tid,
							s->sites[k].name, (unsigned long long)buf[w]);
					}
			if ((size_t)got < want)
				break;
		}
	}
	return 0;
}
