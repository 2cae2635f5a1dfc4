/* The operations: apply, revert and unbake one fix in one process, and list
 * its state.  The session (stop, resume, retry) is session.c, the
 * consistency check transition.c, injected system calls inject.c and the
 * state writer writer.c.
 *
 *
 * States of one call (each attempt loops back to STOP while unsafe):
 *   PREPARE  process running: maps, module, build-id, symbols, state read;
 *            an applied fix returns here as a no-op, without any stop;
 *   STOP     every thread stopped (ptrace.c);
 *   CHECK    state re-read, lineage, bytes at every site, thread safety;
 *            a refusal resumes the process untouched;
 *   MAP      new code mapped (injected mmap), relocated, written; state
 *            mapping created on first use;
 *   RECORD   the fix recorded as PENDING with the original bytes;
 *   REDIRECT sites written, pad first and entry last;
 *   COMMIT   record marked APPLIED;
 *   RESUME   registers restored, every thread detached. */
#include <elf.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "hotpatch/internal.h"

static void hexs(char *out, size_t outsz, const uint8_t *b, size_t n)
{
	if (n * 2 + 1 > outsz)
		n = (outsz - 1) / 2;
	base_hex(out, b, n);
}

/* ---- PREPARE ---------------------------------------------------------- */

static int payload_check(const ElfPayload *p, BaseErr *e)
{
	const char *id = p->fix_id ? p->fix_id : "";
	if (!base_valid_id(id))
		return base_err(e, -BASE_E_CORRUPT, "payload: bad fix id \"%.70s\"", id);
	if (!p->code || !p->code_len || p->code_len > (64u << 20) ||
	    (p->code_align & (p->code_align - 1)) || p->code_align > HP_PAGE)
		return base_err(e, -BASE_E_CORRUPT, "%s: bad code blob", id);
	if (!p->n_redirects || p->build_id_len == 0 || p->build_id_len > 64)
		return base_err(e, -BASE_E_CORRUPT, "%s: no redirect or no build-id", id);
	for (size_t i = 0; i < p->n_relocs; i++) {
		const ElfReloc *r = &p->relocs[i];
		size_t w = r->type == R_X86_64_PC32 ? 4 : r->type == R_X86_64_64 ? 8 : 0;
		if (!w || r->where > p->code_len || p->code_len - r->where < w ||
		    r->bind < ELF_BIND_BASE || r->bind > ELF_BIND_PAYLOAD ||
		    (r->bind == ELF_BIND_SYMBOL && (!r->symbol || !*r->symbol)))
			return base_err(e, -BASE_E_CORRUPT, "%s: bad relocation %zu", id, i);
	}
	for (size_t i = 0; i < p->n_redirects; i++) {
		const ElfRedirect *d = &p->redirects[i];
		bool ok = d->target < p->code_len;
		if (d->kind == ELF_ENTRY_PAD16)
			ok = ok && d->pad == 14 && d->expect_len == 16;
		else if (d->kind == ELF_ENTRY_PAD_REL32)
			ok = ok && d->pad >= 5 && d->expect_len == d->pad + 2 &&
			     d->expect_len <= HP_MAX_SITE;
		else if (d->kind == ELF_ENTRY_PLAIN)
			ok = ok && d->pad == 0 && d->expect_len == 5;
		else
			ok = false;
		if (!ok)
			return base_err(e, -BASE_E_CORRUPT, "%s: bad redirect %zu (%s)", id, i,
					d->name ? d->name : "?");
	}
	return 0;
}

static int module_pick(HpSession *s, const ElfPayload *p, BaseErr *e)
{
	const HpModuleRef *m = &s->o.module;
	char want[129], got[129];
	hexs(want, sizeof(want), p->build_id, p->build_id_len);
	for (size_t i = 0; i < s->n_mods; i++) {
		const HpModule *md = &s->mods[i];
		if (m->path) {
			if (strcmp(md->path, m->path) != 0)
				continue;
		} else if (m->by_inode) {
			if (md->ino != (uint64_t)m->ino || md->dev_major != major(m->dev) ||
			    md->dev_minor != minor(m->dev))
				continue;
		} else if (md->build_id_len != p->build_id_len ||
			   memcmp(md->build_id, p->build_id, p->build_id_len) != 0) {
			continue;
		}
		if (md->build_id_len != p->build_id_len ||
		    memcmp(md->build_id, p->build_id, p->build_id_len) != 0) {
			hexs(got, sizeof(got), md->build_id, md->build_id_len);
			return base_err(e, -BASE_E_MISMATCH,
					"pid %d: %s has build-id %s, %s wants %s", (int)s->pid,
					md->path, md->build_id_len ? got : "(none)", p->fix_id, want);
		}
		s->mod = md;
		return 0;
	}
	/* (an exiting process, whose memory went after its maps were read,
	 * lands here too: hp_session_end tells it "gone") */
	if (m->path || m->by_inode)
		return base_err(e, -ENOENT, "pid %d: module %s not mapped", (int)s->pid,
				m->path ? m->path : "(dev:inode)");
	return base_err(e, -BASE_E_MISMATCH, "pid %d: no module with build-id %s (%s)",
			(int)s->pid, want, p->fix_id);
}

static int sites_from_payload(HpSession *s, const ElfPayload *p, BaseErr *e)
{
	s->sites = calloc(p->n_redirects, sizeof(HpSite));
	if (!s->sites)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_redirects; i++) {
		const ElfRedirect *d = &p->redirects[i];
		HpSite *st = &s->sites[i];
		st->rd = d;
		st->entry = s->mod->bias + d->entry;
		st->pad = d->pad;
		st->window = st->entry - d->pad;
		st->len = d->expect_len;
		st->kind = d->kind;
		snprintf(st->name, sizeof(st->name), "%s", d->name ? d->name : "");
		const HpMap *mp = hp_maps_find(&s->maps, st->window);
		const HpMap *mq = hp_maps_find(&s->maps, st->window + st->len - 1);
		if (!mp || mp != mq || mp->perms[2] != 'x' || mp->ino != s->mod->ino)
			return base_err(e, -BASE_E_MISMATCH,
					"pid %d: %s: site %#" PRIx64 " is not in the text of %s",
					(int)s->pid, st->name, st->window, s->mod->path);
		st->old_lo[0] = st->entry;
		st->old_hi[0] = st->entry + (d->size ? d->size : st->len - st->pad);
		/* stacked on an active fix of the same function: its code is
		 * old code now too */
		for (size_t f = s->state->n_fixes; f > 0 && !st->old_hi[1]; f--) {
			const HpFixInfo *fx = &s->state->fixes[f - 1];
			if (fx->status == HP_FIX_REVERTED || fx->baked)
				continue;
			for (size_t k = 0; k < fx->n_sites; k++)
				if (fx->sites[k].window == st->window) {
					st->old_lo[1] = fx->blob;
					st->old_hi[1] = fx->blob + fx->blob_size;
				}
		}
	}
	s->n_sites = p->n_redirects;
	/* every old function's bytes in one read, then the hazard rule */
	_cleanup_free_ HpIo *io = calloc(s->n_sites, sizeof(HpIo));
	size_t total = 0;
	for (size_t i = 0; io && i < s->n_sites; i++)
		total += hp_hazard_span(&s->sites[i], s->sites[i].old_hi[0] - s->sites[i].entry);
	_cleanup_free_ uint8_t *code = io ? malloc(total ? total : 1) : NULL;
	if (!code)
		return -ENOMEM;
	for (size_t i = 0, at = 0; i < s->n_sites; i++) {
		HpSite *st = &s->sites[i];
		io[i] = (HpIo){ st->entry, code + at, hp_hazard_span(st, st->old_hi[0] - st->entry) };
		at += io[i].len;
	}
	size_t bad = 0;
	int r = hp_mem_readv(s->pid, s->memfd, io, s->n_sites, &bad);
	if (r < 0)
		return base_err(e, r, "pid %d: reading %s: %s", (int)s->pid, s->sites[bad].name,
				strerror(-r));
	for (size_t i = 0; i < s->n_sites; i++) {
		r = hp_site_hazard(s, &s->sites[i], io[i].buf, io[i].len, e);
		if (r < 0)
			return r;
	}
	return 0;
}





static int relocate(HpSession *s, const ElfPayload *p, const uint64_t *syms, uint64_t blob,
		    uint8_t *out, BaseErr *e)
{
	memcpy(out, p->code, p->code_len);
	for (size_t i = 0; i < p->n_relocs; i++) {
		const ElfReloc *rl = &p->relocs[i];
		uint64_t S = rl->bind == ELF_BIND_BASE ? s->mod->bias + rl->value :
			     rl->bind == ELF_BIND_PAYLOAD ? blob + rl->value : syms[i];
		uint64_t v = S + (uint64_t)rl->addend;
		if (rl->type == R_X86_64_64) {
			memcpy(out + rl->where, &v, 8);
			continue;
		}
		int64_t d = (int64_t)(v - (blob + rl->where));
		if (d < INT32_MIN || d > INT32_MAX)
			return base_err(e, -ERANGE,
					"pid %d: %s: relocation %zu (%s) out of rel32 reach",
					(int)s->pid, p->fix_id, i, rl->symbol ? rl->symbol : "base");
		int32_t d32 = (int32_t)d;
		memcpy(out + rl->where, &d32, 4);
	}
	return 0;
}

static int redirect_bytes(HpSite *st, uint64_t target, BaseErr *e, pid_t pid)
{
	memcpy(st->redirect, st->cur, st->len);
	if (elf_jump_encode(st->kind, st->pad, st->window, target, true, st->redirect) < 0)
		return base_err(e, -ERANGE, "pid %d: %s: new code out of rel32 reach", (int)pid,
				st->name);
	return 0;
}

/* ---- apply ------------------------------------------------------------ */

typedef struct ApplyCtx {
	const ElfPayload *p;
	bool noop;
} ApplyCtx;

static int lineage_check(HpSession *s, const ElfPayload *p, BaseErr *e)
{
	const char **ids = NULL;
	size_t n = 0;
	int r = hp_effective_ids(s->state, &s->lin, s->mod, &ids, &n);
	if (r < 0)
		return r;
	bool ok = p->n_lineage <= n;
	for (size_t i = 0; ok && i < p->n_lineage; i++)
		ok = p->lineage[i] && strcmp(ids[i], p->lineage[i]) == 0;
	if (!ok) {
		char have[256] = "", need[256] = "";
		for (size_t i = 0; i < n; i++)
			snprintf(have + strlen(have), sizeof(have) - strlen(have), "%s%s",
				 i ? "," : "", ids[i]);
		for (size_t i = 0; i < p->n_lineage; i++)
			snprintf(need + strlen(need), sizeof(need) - strlen(need), "%s%s",
				 i ? "," : "", p->lineage[i] ? p->lineage[i] : "?");
		r = base_err_replace(e, -BASE_E_MISMATCH,
				     "pid %d: %s needs fixes [%s] first, process has [%s]",
				     (int)s->pid, p->fix_id, need, have);
	}
	free(ids);
	return r;
}

/* The bytes at a site must be the base's, or the redirect of an active fix
 * of the same function (stacking: that redirect becomes our "original"). */
static bool site_known(const HpState *st, const HpSite *site)
{
	for (size_t i = st->n_fixes; i > 0; i--) {
		const HpFixInfo *f = &st->fixes[i - 1];
		if (f->status == HP_FIX_REVERTED)
			continue;
		for (size_t k = 0; k < f->n_sites; k++)
			if (f->sites[k].window == site->window && f->sites[k].len == site->len &&
			    memcmp(f->sites[k].redirect, site->cur, site->len) == 0)
				return true;
	}
	return false;
}

/* 1 if fix_id is in the effective fix list of the module (applied in memory
 * or baked into the file and not unbaked), 0 if not. */
static int effective_has(HpSession *s, const char *fix_id)
{
	const char **ids = NULL;
	size_t n = 0;
	int r = hp_effective_ids(s->state, &s->lin, s->mod, &ids, &n);
	if (r < 0)
		return r;
	int found = 0;
	for (size_t i = 0; i < n && !found; i++)
		found = strcmp(ids[i], fix_id) == 0;
	free(ids);
	return found;
}

static int apply_check(HpSession *s, void *vctx, BaseErr *e)
{
	ApplyCtx *c = vctx;
	int r;
	if (!s->state_addr && s->lockfd < 0) {
		/* no state when we looked, with the process running, and no
		 * lock: another patcher may have created one since (ptrace only
		 * serialises the stops).  Look again, now that nothing can
		 * change. */
		HpMaps m;
		r = hp_maps_read(s->pid, &m, e);
		if (r < 0)
			return r;
		if (hp_state_locate(s->memfd, &m, hp_exe_map(s->pid, &m), NULL, &s->state_addr) < 0)
			s->state_addr = 0;
		hp_maps_free(&m);
	}
	if (s->lockfd < 0) {
		r = hp_state_reload(s, e);
		if (r < 0)
			return r;
	}
	r = effective_has(s, c->p->fix_id);
	if (r != 0) {
		c->noop = r > 0;
		return r < 0 ? r : 0;
	}
	r = lineage_check(s, c->p, e);
	if (r < 0)
		return r;
	r = hp_sites_read(s, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < s->n_sites; i++) {
		HpSite *st = &s->sites[i];
		/* a process started from a coldpatch: the jump the file carries
		 * becomes our "original", so a revert falls back to it */
		if (memcmp(st->cur, st->rd->expect, st->len) != 0 && !site_known(s->state, st) &&
		    !(s->lin.n_fixes && hp_coldpatch_form(&s->maps, s->mod, st->kind, st->pad,
							 st->window, st->rd->expect, st->cur))) {
			char got[2 * HP_MAX_SITE + 1], want[2 * HP_MAX_SITE + 1];
			base_hex(got, st->cur, st->len);
			base_hex(want, st->rd->expect, st->len);
			return base_err(e, -BASE_E_MISMATCH,
					"pid %d: %s at %#" PRIx64 " holds %s, expected %s",
					(int)s->pid, st->name, st->window, got, want);
		}
		memcpy(st->orig, st->cur, st->len);
	}
	return 0;
}


/* The module of the process the payload targets, and its file's lineage. */
static int session_module(HpSession *s, const ElfPayload *p, BaseErr *e)
{
	int r = hp_modules_read(s->pid, s->memfd, &s->maps, &s->pages, &s->mods, &s->n_mods);
	if (r < 0)
		return base_err(e, r, "pid %d: reading modules: %s", (int)s->pid, strerror(-r));
	r = module_pick(s, p, e);
	if (r < 0)
		return r;
	return hp_module_lineage(s->pid, &s->maps, s->mod, s->fleet, &s->lin, e);
}

/* Where a fix's code lives and how it got there. */
typedef struct Placed {
	uint64_t blob, size;
	bool mapped;   /* mapped by this call (unmapped again on failure) */
} Placed;

/* MAP: place the fix's code, relocate it for its place and write it.  A
 * reverted earlier instance of this fix keeps its code in place: reused
 * when the relocated bytes are the same.  Not stopped: a cave only (no
 * injected run), pl->blob stays 0 when none fits. */
static int code_place(HpSession *s, const ElfPayload *p, const uint64_t *syms, bool near,
		      uint8_t *code, bool stopped, Placed *pl, BaseErr *e)
{
	/* with the lock held the reuse was looked for before the stop, and
	 * nothing has changed since */
	bool reuse_seen = stopped && s->lockfd >= 0;
	for (size_t i = s->state->n_fixes; !reuse_seen && i > 0; i--) {
		const HpFixInfo *f = &s->state->fixes[i - 1];
		if (f->status != HP_FIX_REVERTED || strcmp(f->fix_id, p->fix_id) != 0 ||
		    f->blob_size < p->code_len || f->bias != s->mod->bias)
			continue;
		_cleanup_free_ uint8_t *old = malloc(p->code_len);
		BaseErr tmp = { 0 };
		if (old && relocate(s, p, syms, f->blob, code, &tmp) == 0 &&
		    hp_mem_read(s->memfd, f->blob, old, p->code_len) == 0 &&
		    memcmp(old, code, p->code_len) == 0) {
			pl->blob = f->blob;
			pl->size = f->blob_size;
			s->rep->blob_reused = true;
			return 0;
		}
	}
	bool in_cave = false;
	int r = hp_place(s, p->code_len, p->code_align, near, hp_state_rec_size(s->n_sites),
			 !stopped, &pl->blob, &pl->size, &in_cave, e);
	if (r < 0 || !pl->blob)
		return r;
	pl->mapped = !in_cave;   /* a cave is never unmapped: nothing points there yet */
	r = relocate(s, p, syms, pl->blob, code, e);
	if (r == 0) {
		r = hp_mem_write(s->memfd, pl->blob, code, p->code_len);
		if (r < 0)
			base_err(e, r, "pid %d: writing code: %s", (int)s->pid, strerror(-r));
	}
	if (r < 0 && pl->mapped)
		hp_unmap(s, pl->blob, pl->size);
	if (r < 0)
		*pl = (Placed){ 0 };
	return r;
}

static int do_apply(HpSession *s, const ElfPayload *p, BaseErr *e)
{
	int r = payload_check(p, e);
	if (r < 0)
		return r;
	r = session_module(s, p, e);
	if (r < 0)
		return r;
	/* The in-process state knows a fix by its id: one id active in two
	 * files of one process (a package fixing a library and the program
	 * that maps it) would make the second apply look done, and a revert
	 * find only one of them.  Refuse the second file by name instead of
	 * a "patched" that changed nothing: the process needs a restart. */
	const HpFixInfo *have = hp_state_find(s->state, p->fix_id, true);
	if (have && hp_fix_in_module(have, s->mod)) {
		s->rep->noop = true;
		return 0;
	}
	if (have)
		return base_err(e, -EEXIST, "pid %d: %s is already applied in memory to another "
				"file of this process; one fix in two files of one process cannot be "
				"applied live (restart it)", (int)s->pid, p->fix_id);
	r = effective_has(s, p->fix_id);
	if (r != 0) {
		s->rep->noop = r > 0;
		return r < 0 ? r : 0;
	}
	r = sites_from_payload(s, p, e);
	if (r < 0)
		return r;
	/* symbols resolve while the process runs: loaded modules do not move */
	_cleanup_free_ uint64_t *syms = calloc(p->n_relocs + 1, sizeof(uint64_t));
	_cleanup_free_ uint8_t *code = malloc(p->code_len);
	if (!syms || !code)
		return -ENOMEM;
	bool near = false;
	for (size_t i = 0; i < p->n_relocs; i++) {
		const ElfReloc *rl = &p->relocs[i];
		if (rl->type == R_X86_64_PC32 && rl->bind != ELF_BIND_PAYLOAD)
			near = true;
		if (rl->bind != ELF_BIND_SYMBOL)
			continue;
		r = hp_symbol_resolve(s->memfd, s->pid, s->mods, s->n_mods, rl->symbol, s->fleet,
				      &syms[i]);
		if (r < 0)
			return base_err(e, r == -ENOTSUP ? -ENOTSUP : -BASE_E_MISMATCH,
					"pid %d: %s: symbol %s %s", (int)s->pid, p->fix_id,
					rl->symbol, r == -ENOTSUP ? "is an IFUNC" : "not found");
	}
	for (size_t i = 0; i < p->n_redirects; i++)
		if (p->redirects[i].kind != ELF_ENTRY_PAD16)
			near = true;
	/* With the lock held, what the session read while the process ran
	 * holds at the stop: code that fits a cave is relocated and written
	 * now, while the process runs (nothing points at it yet; the kernel
	 * copies the page, bytes the process runs included, before the
	 * write), so the stop holds only the checks, the record and the
	 * redirects.  Stopped or not, nothing records the code until the
	 * record: a failed stop leaves bytes no one reads. */
	Placed pl = { 0 };
	if (s->lockfd >= 0) {
		r = code_place(s, p, syms, near, code, false, &pl, e);
		if (r < 0)
			return r;
	}

	ApplyCtx ctx = { .p = p };
	r = hp_stop_safely(s, apply_check, &ctx, e);
	if (r < 0)
		return r;
	s->rep->threads = (unsigned)s->tr.n;
	if (ctx.noop) {
		s->rep->noop = true;
		return hp_ptrace_resume(&s->tr);
	}
	hp_crash_point(s, "stopped");

	/* MAP, unless done before the stop */
	if (!pl.blob) {
		r = code_place(s, p, syms, near, code, true, &pl, e);
		if (r < 0)
			goto out;
	}
	for (size_t i = 0; i < s->n_sites; i++) {
		r = redirect_bytes(&s->sites[i], pl.blob + s->sites[i].rd->target, e, s->pid);
		if (r < 0)
			goto out;
	}
	hp_phase(s, HP_PH_MAP);

	/* a thread left in the SIGTRAP stop of injected code is safe should
	 * we die now: the kernel's detach at our exit cancels that signal
	 * (tested: "tool killed after every step") */
	hp_crash_point(s, "settled");

	/* RECORD, REDIRECT, COMMIT */
	uint64_t rec = 0;
	r = hp_state_put(s, p->fix_id, HP_FIX_PENDING, s->rep->not_converged ? HP_REC_STALE : 0,
			 pl.blob, pl.size, &rec, e);
	if (r < 0)
		goto out;
	hp_crash_point(s, "recorded");
	pl.mapped = false;   /* recorded: the code stays, whatever happens next */
	r = hp_sites_write(s, true, false, "redirect");
	if (r < 0) {
		/* undo what was written, newest first, entry first */
		int r2 = hp_sites_write(s, false, true, NULL) < 0 ? -EIO : 0;
		if (r2 == 0)
			hp_rec_status(s, rec, HP_FIX_REVERTED);
		base_err(e, r, "pid %d: writing redirects: %s%s", (int)s->pid, strerror(-r),
			 r2 ? " (undo failed: record left PENDING)" : " (undone)");
		goto out;
	}
	r = hp_rec_status(s, rec, HP_FIX_APPLIED);
	if (r < 0)
		base_err(e, r, "pid %d: committing state: %s", (int)s->pid, strerror(-r));
	hp_crash_point(s, "committed");
	hp_phase(s, HP_PH_WRITE);
	s->rep->blob = pl.blob;
	s->rep->blob_size = pl.size;
out:
	if (r < 0 && pl.mapped)
		hp_unmap(s, pl.blob, pl.size);
	return hp_resume_result(s, r, e);
}

int hp_apply_in(pid_t pid, const ElfPayload *p, const HpOpts *opts, HpFleet *fleet,
		HpReport *ret_report, BaseErr *e)
{
	return hp_run_with_payload(pid, p, opts, fleet, do_apply, ret_report, e);
}

int hp_apply(pid_t pid, const ElfPayload *p, const HpOpts *opts, HpReport *ret_report,
	     BaseErr *e)
{
	return hp_apply_in(pid, p, opts, NULL, ret_report, e);
}

/* ---- revert ----------------------------------------------------------- */

typedef struct RevertCtx {
	const char *fix_id;
	size_t rec;
	bool noop;
} RevertCtx;

static int revert_sites(HpSession *s, const HpFixInfo *f)
{
	free(s->sites);
	s->n_sites = 0;
	s->sites = calloc(f->n_sites ? f->n_sites : 1, sizeof(HpSite));
	if (!s->sites)
		return -ENOMEM;
	for (size_t k = 0; k < f->n_sites; k++) {
		const HpSiteInfo *si = &f->sites[k];
		HpSite *st = &s->sites[k];
		st->entry = si->entry;
		st->window = si->window;
		st->len = si->len;
		st->kind = si->kind;
		st->pad = (uint32_t)(si->entry - si->window);
		memcpy(st->orig, si->orig, si->len);
		memcpy(st->redirect, si->redirect, si->len);
		memcpy(st->name, si->name, sizeof(st->name));
		/* taking the fix out: its code is the old code now; the
		 * original body comes back intact, so no hazard */
		st->old_lo[0] = f->blob;
		st->old_hi[0] = f->blob + f->blob_size;
	}
	s->reverting = true;
	s->n_sites = f->n_sites;
	return 0;
}

static int revert_check(HpSession *s, void *vctx, BaseErr *e)
{
	RevertCtx *c = vctx;
	int r = hp_state_reload(s, e);
	if (r < 0)
		return r;
	const HpFixInfo *f = hp_state_find(s->state, c->fix_id, false);
	if (!f)
		return base_err(e, -ENOENT, "pid %d: %s was never applied", (int)s->pid, c->fix_id);
	if (f->status == HP_FIX_REVERTED) {
		c->noop = true;
		return 0;
	}
	for (size_t i = s->state->n_fixes; i > 0; i--) {
		const HpFixInfo *g = &s->state->fixes[i - 1];
		if (g == f)
			break;
		if (g->status != HP_FIX_REVERTED && !g->baked)
			return base_err(e, -BASE_E_LOCKED, "pid %d: %s is applied on top of %s: "
					"revert it first", (int)s->pid, g->fix_id, c->fix_id);
	}
	c->rec = (size_t)(f - s->state->fixes);
	r = revert_sites(s, f);
	if (r < 0)
		return r;
	r = hp_sites_read(s, e);
	if (r < 0)
		return r;
	for (size_t k = 0; k < s->n_sites; k++) {
		HpSite *st = &s->sites[k];
		/* a site may still (PENDING: apply died) or again (a revert died)
		 * hold its original bytes: nothing to write there */
		if (memcmp(st->cur, st->redirect, st->len) != 0 &&
		    memcmp(st->cur, st->orig, st->len) != 0) {
			char got[2 * HP_MAX_SITE + 1];
			base_hex(got, st->cur, st->len);
			return base_err(e, -BASE_E_MISMATCH,
					"pid %d: %s at %#" PRIx64 " holds %s, not the redirect of %s",
					(int)s->pid, st->name, st->window, got, c->fix_id);
		}
	}
	return 0;
}

int hp_revert(pid_t pid, const char *fix_id, const HpOpts *opts, HpReport *ret_report,
	      BaseErr *e)
{
	uint64_t t0 = base_now_ns();
	HpReport rep = { .pid = pid };
	HpSession s;
	int r = hp_session_open(&s, pid, opts, NULL, &rep, e);
	if (r < 0)
		goto done;
	const HpFixInfo *f0 = hp_state_find(s.state, fix_id, false);
	if (!f0) {
		r = base_err(e, -ENOENT, "pid %d: %s was never applied", (int)pid, fix_id);
		goto done;
	}
	if (f0->status == HP_FIX_REVERTED) {
		rep.noop = true;
		goto done;
	}
	/* the sites for the safety check before the first stop */
	r = revert_sites(&s, f0);
	if (r < 0)
		goto done;
	RevertCtx ctx = { .fix_id = fix_id };
	r = hp_stop_safely(&s, revert_check, &ctx, e);
	if (r < 0)
		goto done;
	rep.threads = (unsigned)s.tr.n;
	if (ctx.noop) {
		rep.noop = true;
	} else {
		r = hp_sites_write(&s, false, true, "revert-site");
		uint64_t off = 0;
		if (r == 0)
			r = hp_state_rec_offset(s.memfd, s.state_addr, ctx.rec, &off);
		if (r == 0)
			r = hp_rec_stale(&s, s.state_addr + off, s.n_sites, rep.not_converged,
					 s.stale_tid, s.stale_site);
		if (r == 0)
			r = hp_rec_status(&s, s.state_addr + off, HP_FIX_REVERTED);
		if (r < 0)
			base_err(e, r, "pid %d: reverting %s: %s", (int)pid, fix_id, strerror(-r));
	}
	r = hp_resume_result(&s, r, e);
done:
	return hp_session_end(&s, r, e, t0, ret_report);
}

/* ---- unbake ----------------------------------------------------------- */

typedef struct UnbakeCtx {
	const ElfPayload *p;
	bool noop;
} UnbakeCtx;

/* May p->fix_id, baked into the file, be taken out?  1: already out. */
static int unbake_allowed(HpSession *s, const ElfPayload *p, BaseErr *e)
{
	size_t at = s->lin.n_fixes;
	for (size_t i = 0; i < s->lin.n_fixes; i++)
		if (strcmp(s->lin.fixes[i], p->fix_id) == 0)
			at = i;
	if (at == s->lin.n_fixes)
		return base_err(e, -ENOENT, "pid %d: %s does not carry %s", (int)s->pid,
				s->mod->path, p->fix_id);
	if (hp_unbaked_status(s->state, p->fix_id) == HP_FIX_REVERTED)
		return 1;
	const char **ids = NULL;
	size_t n = 0;
	int r = hp_effective_ids(s->state, &s->lin, s->mod, &ids, &n);
	if (r < 0)
		return r;
	if (n && strcmp(ids[n - 1], p->fix_id) != 0)
		r = base_err_replace(e, -BASE_E_LOCKED, "pid %d: %s is applied on top of %s: "
				     "revert it first", (int)s->pid, ids[n - 1], p->fix_id);
	else if (n > 1)
		/* p's expect[] are the base bytes: where an earlier baked fix
		 * also redirected a function, its jump would be lost */
		r = base_err_replace(e, -ENOTSUP, "pid %d: %s is baked into %s on top of %s: "
				     "only the single fix of a file can be taken out in memory",
				     (int)s->pid, p->fix_id, s->mod->path, ids[n - 2]);
	free(ids);
	return r;
}

static int unbake_check(HpSession *s, void *vctx, BaseErr *e)
{
	UnbakeCtx *c = vctx;
	int r = hp_state_reload(s, e);
	if (r < 0)
		return r;
	r = unbake_allowed(s, c->p, e);
	if (r != 0) {
		c->noop = r > 0;
		return r < 0 ? r : 0;
	}
	r = hp_sites_read(s, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < s->n_sites; i++) {
		HpSite *st = &s->sites[i];
		/* base bytes already: an unbake that died half-way */
		bool is_base = memcmp(st->cur, st->rd->expect, st->len) == 0;
		if (!is_base && !hp_coldpatch_form(&s->maps, s->mod, st->kind, st->pad, st->window,
						   st->rd->expect, st->cur)) {
			char got[2 * HP_MAX_SITE + 1];
			base_hex(got, st->cur, st->len);
			return base_err(e, -BASE_E_MISMATCH,
					"pid %d: %s at %#" PRIx64 " holds %s, not the coldpatch "
					"jump of %s", (int)s->pid, st->name, st->window, got,
					c->p->fix_id);
		}
		/* the record reads as a fix: orig = what it had before (the
		 * base), redirect = what it wrote (the file's jump) */
		memcpy(st->orig, st->rd->expect, st->len);
		memcpy(st->redirect, st->cur, st->len);
	}
	return 0;
}

static int do_unbake(HpSession *s, const ElfPayload *p, BaseErr *e)
{
	int r = payload_check(p, e);
	if (r < 0)
		return r;
	r = session_module(s, p, e);
	if (r < 0)
		return r;
	r = unbake_allowed(s, p, e);
	if (r != 0) {
		s->rep->noop = r > 0;
		return r < 0 ? r : 0;
	}
	r = sites_from_payload(s, p, e);
	if (r < 0)
		return r;
	UnbakeCtx ctx = { .p = p };
	r = hp_stop_safely(s, unbake_check, &ctx, e);
	if (r < 0)
		return r;
	s->rep->threads = (unsigned)s->tr.n;
	if (ctx.noop) {
		s->rep->noop = true;
		return hp_ptrace_resume(&s->tr);
	}
	if (!s->state_addr) {
		/* the state mapping: one stub run (hp_place), left mapped.  When
		 * the stub ran from a scratch page, unmapping that page took one
		 * more injected syscall right after the stub, and with the tool
		 * killed after that the process died of SIGTRAP at its next stop
		 * (test "unbake killed ..."): the scratch page stays. */
		uint64_t none, none_size;
		bool none_cave;
		r = hp_place(s, 0, 16, false, hp_state_rec_size(s->n_sites), false, &none,
			     &none_size, &none_cave, e);
		if (r < 0)
			goto out;
	}
	uint64_t rec = 0;
	r = hp_state_put(s, p->fix_id, HP_FIX_PENDING, HP_REC_BAKED, 0, 0, &rec, e);
	if (r < 0)
		goto out;
	hp_crash_point(s, "unbake-recorded");
	r = hp_sites_write(s, false, true, "unbake-site");
	if (r == 0)
		r = hp_rec_status(s, rec, HP_FIX_REVERTED);
	if (r < 0)
		base_err(e, r, "pid %d: unbaking %s: %s (record left PENDING: run again)",
			 (int)s->pid, p->fix_id, strerror(-r));
out:
	return hp_resume_result(s, r, e);
}

int hp_unbake_in(pid_t pid, const ElfPayload *p, const HpOpts *opts, HpFleet *fleet,
		 HpReport *ret_report, BaseErr *e)
{
	return hp_run_with_payload(pid, p, opts, fleet, do_unbake, ret_report, e);
}

int hp_unbake(pid_t pid, const ElfPayload *p, const HpOpts *opts, HpReport *ret_report,
	      BaseErr *e)
{
	return hp_unbake_in(pid, p, opts, NULL, ret_report, e);
}

/* ---- list ------------------------------------------------------------- */

int hp_list(pid_t pid, HpState **ret, BaseErr *e)
{
	int fd = -1;
	int r = hp_mem_open(pid, false, &fd);
	if (r < 0)
		return base_err(e, r, "pid %d: /proc/%d/mem: %s", (int)pid, (int)pid,
				base_strerror(r));
	HpMaps m = { 0 };
	uint64_t addr = 0;
	r = hp_maps_read(pid, &m, e);
	if (r == 0) {
		if (hp_state_locate(fd, &m, hp_exe_map(pid, &m), NULL, &addr) < 0)
			addr = 0;
		r = hp_state_load(fd, pid, addr, ret, NULL, e);
	}
	hp_maps_free(&m);
	close(fd);
	return r;
}
