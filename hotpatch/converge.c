/* The re-check of a process left not converged: do the threads that still
 * ran old code when a fix was applied (or new code when it was reverted)
 * still run it?  Nothing is written to the code; only the records' stale
 * marks are cleared (or their thread updated). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotpatch/internal.h"

static int converge_check(HpSession *s, void *ctx, BaseErr *e)
{
	(void)s;
	(void)ctx;
	(void)e;
	return 0;
}

int hp_converge(pid_t pid, const HpOpts *opts, HpReport *ret_report, BaseErr *e)
{
	uint64_t t0 = base_now_ns();
	HpReport rep = { .pid = pid };
	HpSession s;
	_cleanup_free_ size_t *fix_of = NULL;
	int r = hp_session_open(&s, pid, opts, NULL, &rep, e);
	if (r < 0)
		goto done;
	size_t n = 0;
	for (size_t i = 0; i < s.state->n_fixes; i++)
		if (s.state->fixes[i].stale && !s.state->fixes[i].baked)
			n += s.state->fixes[i].n_sites;
	if (!n) {
		rep.noop = true;   /* nothing left to converge */
		goto done;
	}
	s.sites = calloc(n, sizeof(HpSite));
	fix_of = calloc(n, sizeof(size_t));
	if (!s.sites || !fix_of) {
		r = -ENOMEM;
		goto done;
	}
	for (size_t i = 0; i < s.state->n_fixes; i++) {
		const HpFixInfo *f = &s.state->fixes[i];
		if (!f->stale || f->baked)
			continue;
		for (size_t k = 0; k < f->n_sites; k++) {
			HpSite *st = &s.sites[s.n_sites];
			const HpSiteInfo *si = &f->sites[k];
			/* no window: nothing is written, so only frames count */
			st->entry = st->window = si->entry;
			st->kind = si->kind;
			memcpy(st->name, si->name, sizeof(st->name));
			if (f->status == HP_FIX_REVERTED) {
				st->old_lo[0] = f->blob;
				st->old_hi[0] = f->blob + f->blob_size;
				s.reverting = true;
			} else {
				st->old_lo[0] = si->entry;
				st->old_hi[0] = si->entry + (si->size ? si->size : si->len);
			}
			fix_of[s.n_sites++] = i;
		}
	}
	r = hp_stop_safely(&s, converge_check, NULL, e);
	if (r < 0)
		goto done;
	rep.threads = (unsigned)s.tr.n;
	for (size_t i = 0; i < s.state->n_fixes && r == 0; i++) {
		const HpFixInfo *f = &s.state->fixes[i];
		if (!f->stale || f->baked)
			continue;
		bool still = rep.not_converged && fix_of[s.stale_site] == i;
		size_t site = 0;
		for (size_t k = 0; still && k < s.n_sites; k++)
			if (k == s.stale_site)
				break;
			else if (fix_of[k] == i)
				site++;
		uint64_t off = 0;
		r = hp_state_rec_offset(s.memfd, s.state_addr, i, &off);
		if (r == 0)
			r = hp_rec_stale(&s, s.state_addr + off, f->n_sites, still, s.stale_tid, site);
		if (r < 0)
			base_err(e, r, "pid %d: updating state: %s", (int)pid, strerror(-r));
	}
	r = hp_resume_result(&s, r, e);
done:
	return hp_session_end(&s, r, e, t0, ret_report);
}
