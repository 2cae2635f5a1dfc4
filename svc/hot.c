/* The hot path: patch every process that maps a target, swap the files,
 * sweep once more; and its reverse for rollback; and the per-process fix
 * levels that `svc status` compares with the disk (convergence).
 *
 * Ordering of a hot install (the transaction is already committed, so a
 * crash anywhere here is finished by `svc boot` on the disk side; processes
 * patched in memory do not outlive a reboot):
 *   1. patch every process mapping the target (any version of it)
 *   2. swap the files (pending_apply): processes started from now on load
 *      the coldpatch, which carries the same fix
 *   3. sweep: a process that mapped the old file between 1 and 2 is
 *      patched now
 * Every install keeps each target's payload under var/lib/svc/payloads/
 * (see svc_payload_name) before its commit point: a rollback takes the fix out
 * of the processes that run it from the coldpatch file (hp_unbake) with it. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hotpatch/hotpatch.h"
#include "svc/internal.h"

#define SWEEP_ROUNDS 3

static size_t count_left(const SvcUser *u, size_t from, size_t n)
{
	size_t left = 0;
	for (size_t i = from; i < n; i++)
		left += u[i].pid != 0;
	return left;
}
#define PAYLOAD_MAX (64u << 20)

/* A set of pids, kept ascending (a binary search per add: a fleet of
 * 10,000 processes adds each once), so that a scan can skip its members in
 * one walk beside the ascending pid list. */
typedef struct PidSet {
	size_t n, cap;
	pid_t *pids;
} PidSet;

/* The index of the first pid >= p. */
static size_t pidset_at(const PidSet *s, pid_t p)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->pids[mid] < p)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int pidset_add(PidSet *s, pid_t p)
{
	size_t i = pidset_at(s, p);
	if (i < s->n && s->pids[i] == p)
		return 0;
	pid_t *v = base_grow(s->pids, s->n, &s->cap, sizeof(*s->pids), 16);
	if (!v)
		return -ENOMEM;
	s->pids = v;
	memmove(s->pids + i + 1, s->pids + i, (s->n - i) * sizeof(*s->pids));
	s->pids[i] = p;
	s->n++;
	return 0;
}

/* Scan the users of one path (every version of it), not reading the
 * processes in a or b (may be NULL); the processes that could not be read
 * go to `unread` (may be NULL). */
static int users_of(Svc *s, const char *path, const PidSet *a, const PidSet *b,
		    SvcUnread *unread, SvcUser **ret, size_t *ret_n, BaseErr *e)
{
	SvcScanTarget t = { .path = path };
	struct stat st;
	size_t na = a ? a->n : 0, nb = b ? b->n : 0, ia = 0, ib = 0, ns = 0;
	_cleanup_free_ pid_t *skip = malloc((na + nb ? na + nb : 1) * sizeof(pid_t));
	if (!skip)
		return -ENOMEM;
	/* both sets ascending: one merge */
	while (ia < na || ib < nb)
		skip[ns++] = ib == nb || (ia < na && a->pids[ia] < b->pids[ib]) ? a->pids[ia++]
									     : b->pids[ib++];
	if (fstatat(s->rootfd, path + 1, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		t.dev = st.st_dev;
		t.ino = st.st_ino;
	}
	int r = svc_scan_users_except(s, &t, 1, skip, ns, unread, e);
	if (r < 0) {
		free(t.users);
		return r;
	}
	*ret = t.users;
	*ret_n = t.n_users;
	return 0;
}

static void report_failure(SvcReport *rep, const char *path, const SvcUser *u, const char *why)
{
	svc_report_user(rep, path, u, SVC_PROC_NOT_PATCHED, why);
	svc_report_linel(rep, 4, "NOT PATCHED: pid %d (%s) maps %s: %s", (int)u->pid, u->comm,
			 path, why);
}

/* A process svc could not read may map a target and run the code the
 * transaction replaced: never "patched" or "converged" from missing data
 * (the rule of what counts as unreadable is svc_scan_users').  Returns
 * SVC_RESTART when there is any. */
static int report_unread(SvcReport *rep, const SvcUnread *u)
{
	if (!u->n)
		return 0;
	rep->pending = 1;
	return svc_report_unread(rep, u, "not converged");
}

/* Patched (or reverted), but a thread still runs the code it replaced. */
static void report_stale(SvcReport *rep, const char *path, const SvcUser *u, pid_t tid,
			 const char *which, const char *fn)
{
	char why[160];
	snprintf(why, sizeof(why), "thread %d still runs %s %s", (int)tid, which, fn);
	svc_report_user(rep, path, u, SVC_PROC_NOT_CONVERGED, why);
	svc_report_line(rep, "pid %d (%s) NOT converged: %s", (int)u->pid, u->comm, why);
}

/* var/lib/svc/payloads/<FIX-ID>.<16 hex of SHA-256(target path)>.hp: the
 * payload as shipped in the package, one per target. */
void svc_payload_name(char *out, size_t outsz, const char *fix_id, const char *path)
{
	uint8_t h[BASE_SHA256_LEN];
	char hx[17];
	base_sha256(path, strlen(path), h);
	base_hex(hx, h, 8);
	snprintf(out, outsz, "%s.%s.hp", fix_id, hx);
}

/* Keep the payloads of t (durable, each written only if not there yet: a
 * re-run changes nothing on disk). */
int svc_keep_payloads(Svc *s, const ManifestPackage *pkg, const PendingTxn *t, BaseErr *e)
{
	_cleanup_close_ int dfd = -1;
	int r = 0;
	for (size_t i = 0; r >= 0 && i < t->n_ops; i++) {
		const ManifestMember *m = NULL;
		for (size_t k = 0; k < pkg->n_targets; k++)
			if (strcmp(pkg->targets[k].path, t->ops[i].path) == 0 &&
			    pkg->targets[k].payload_member)
				m = manifest_member(pkg, pkg->targets[k].payload_member);
		if (!m)
			continue;
		char name[256];
		svc_payload_name(name, sizeof(name), pkg->id, t->ops[i].path);
		if (dfd < 0) {
			r = base_fs_mkdir_p(s->rootfd, SVC_PAYLOAD_DIR, 0755, &dfd);
			if (r < 0)
				return base_err(e, r, "%s/%s: %s", s->root_real, SVC_PAYLOAD_DIR,
						base_strerror(r));
		}
		uint8_t *old = NULL;
		size_t len = 0;
		if (base_fs_read_at(dfd, name, PAYLOAD_MAX, &old, &len) >= 0 && len == m->len &&
		    memcmp(old, m->data, len) == 0) {
			free(old);
			continue;
		}
		free(old);
		r = base_fs_write_atomic(dfd, name, m->data, m->len, 0644);
		if (r < 0)
			return base_err(e, r, "%s/%s/%s: %s", s->root_real, SVC_PAYLOAD_DIR, name,
					base_strerror(r));
	}
	return r;
}

/* The kept payload of fix_id for path, or NULL if there is none. */
static ElfPayload *kept_payload(Svc *s, const char *fix_id, const char *path)
{
	_cleanup_close_ int dfd = -1;
	char name[256];
	uint8_t *buf = NULL;
	size_t len = 0;
	ElfPayload *p = NULL;
	svc_payload_name(name, sizeof(name), fix_id, path);
	if (base_fs_open_dir(s->rootfd, SVC_PAYLOAD_DIR, &dfd) < 0 ||
	    base_fs_read_at(dfd, name, PAYLOAD_MAX, &buf, &len) < 0)
		return NULL;
	if (elf_payload_parse(buf, len, &p, NULL) < 0 || strcmp(p->fix_id, fix_id) != 0) {
		elf_payload_free(p);
		p = NULL;
	}
	free(buf);
	return p;
}

static int has_id(char *const *ids, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(ids[i], id) == 0)
			return 1;
	return 0;
}

/* Does pid run fix_id from memory in the file u maps?  (Per file: one
 * process may map two targets of a package.)  Its state and what it runs
 * in that file come from one read of the process. */
static int fix_in_memory(const SvcUser *u, const char *fix_id, HpFleet *fleet)
{
	HpState *st = NULL;
	const char **ids = NULL;
	char **eff = NULL;
	size_t n = 0, ne = 0;
	int found = 0;
	HpModuleRef mod = { .by_inode = true, .dev = u->dev, .ino = u->ino };
	if (hp_effective_state_in(u->pid, &mod, fleet, &eff, &ne, &st, NULL) < 0)
		return 0;
	if (has_id(eff, ne, fix_id) && hp_state_active(st, &ids, &n) >= 0)
		for (size_t i = 0; i < n; i++)
			found |= strcmp(ids[i], fix_id) == 0;
	free(eff);
	free(ids);
	hp_state_free(st);
	return found;
}

/* ns processes patched (or reverted) while a thread still runs the code
 * replaced: done, but not converged (exit 3); 0 when there are none. */
static int report_not_converged(SvcReport *rep, size_t ns, const char *done, int otherwise)
{
	if (!ns)
		return otherwise;
	rep->pending = 1;
	svc_report_line(rep, "%zu process%s %s but NOT converged: 'svc converge' re-checks", ns,
			ns == 1 ? "" : "es", done);
	return SVC_RESTART;
}

#define BATCH 32  /* processes per pool run: the progress is reported between runs */

/* Apply p to every user of path not in `done`, with the worker pool, in
 * batches of processes that map the same file (one module reference per
 * pool run); failures go to the report and into `failed` (one try per
 * process per round). */
static int patch_users(Svc *s, const char *path, const ElfPayload *p, int skip_current,
		       PidSet *done, PidSet *failed, PidSet *stale, SvcUnread *unread,
		       SvcReport *rep, size_t *ret_patched, BaseErr *e)
{
	SvcUser *u = NULL;
	size_t n = 0, patched = 0, todo = 0, handled = 0;
	/* the processes done or failed already are not read again (each round
	 * after the first would otherwise read every process's maps anew) */
	int r = users_of(s, path, done, failed, unread, &u, &n, e);
	SvcUser *elig = calloc(n ? n : 1, sizeof(*elig));
	pid_t pids[BATCH];
	HpReport reps[BATCH];

	if (r >= 0 && !elig)
		r = -ENOMEM;
	for (size_t i = 0; r >= 0 && i < n; i++) {
		/* after the swap the file on disk is the coldpatch: its users have the fix */
		if (skip_current && !u[i].old_version)
			continue;
		/* already patched (an earlier run): hp_apply finds that in the
		 * state it reads before any stop and returns a no-op without
		 * stopping the process; reading the state here too cost every
		 * process a second maps and state read.  A dry run calls no
		 * hp_apply: it asks here, so that it does not name the process */
		if (s->dry_run && fix_in_memory(&u[i], p->fix_id, NULL)) {
			r = pidset_add(done, u[i].pid);
			continue;
		}
		elig[todo++] = u[i];
	}
	/* a dry run names them and stops there: nothing is stopped or written */
	for (size_t i = 0; r >= 0 && s->dry_run && i < todo; i++) {
		r = pidset_add(done, elig[i].pid);
		if (r >= 0)
			r = svc_report_user(rep, path, &elig[i], SVC_PROC_WOULD_PATCH, NULL);
		svc_report_line(rep, "would patch pid %d (%s): %s", (int)elig[i].pid, elig[i].comm,
				p->fix_id);
		patched++;
	}
	if (s->dry_run)
		handled = todo;
	while (r >= 0 && handled < todo) {
		/* the next batch: unhandled users of the same file as the first one */
		size_t k = 0, first = handled;
		HpOpts o = { .module = { .by_inode = true, .dev = elig[first].dev, .ino = elig[first].ino } };
		SvcUser *batch[BATCH];
		for (size_t i = first; i < todo && k < BATCH; i++)
			if (elig[i].pid && elig[i].dev == o.module.dev && elig[i].ino == o.module.ino) {
				batch[k] = &elig[i];
				pids[k++] = elig[i].pid;
			}
		int x = hp_apply_many(pids, k, 0, p, &o, reps, e);
		if (x < 0) {
			r = x;
			break;
		}
		for (size_t i = 0; i < k && r >= 0; i++) {
			SvcUser *bu = batch[i];
			HpReport *hr = &reps[i];
			if (hr->result == -BASE_E_GONE) {
				/* exited meanwhile: nothing left to patch */
			} else if (hr->result < 0) {
				r = pidset_add(failed, bu->pid);
				report_failure(rep, path, bu, hr->msg[0] ? hr->msg : base_strerror(hr->result));
			} else {
				r = pidset_add(done, bu->pid);
				if (!hr->noop) {
					patched++;
					svc_report_line(rep, "patched pid %d (%s): %s, %u thread%s paused %.3f ms",
							(int)bu->pid, bu->comm, p->fix_id, hr->threads,
							hr->threads == 1 ? "" : "s", (double)hr->pause_ns / 1e6);
				}
				if (r >= 0 && hr->not_converged) {
					r = pidset_add(stale, bu->pid);
					report_stale(rep, path, bu, hr->stale_tid, "old", hr->stale_fn);
				}
			}
			bu->pid = 0; /* handled */
		}
		while (handled < todo && elig[handled].pid == 0)
			handled++;
		if (s->progress)
			s->progress(s->progress_ctx, "patching processes", todo - count_left(elig, handled, todo), todo);
	}
	free(elig);
	free(u);
	if (patched)
		rep->changed = 1;
	*ret_patched = patched;
	return r;
}

int svc_hot_install(Svc *s, const ManifestPackage *pkg, const PendingTxn *t, int applied,
		    SvcReport *rep, BaseErr *e)
{
	ElfPayload **pl = calloc(t->n_ops ? t->n_ops : 1, sizeof(*pl));
	/* done per target: a process mapping two targets is patched in each */
	PidSet *done = calloc(t->n_ops ? t->n_ops : 1, sizeof(*done));
	PidSet failed = { 0 }, stale = { 0 };
	SvcUnread unread = { 0 };
	size_t n = 0;
	int r = pl && done ? 0 : -ENOMEM;
	/* the decoder and unwinder are loaded on first use: load them before
	 * any process is stopped, so that no pause waits for the dynamic loader */
	if (r >= 0)
		r = hp_load(e);

	for (size_t i = 0; r >= 0 && i < t->n_ops; i++) {
		const ManifestTarget *mt = NULL;
		for (size_t k = 0; k < pkg->n_targets; k++)
			if (strcmp(pkg->targets[k].path, t->ops[i].path) == 0)
				mt = &pkg->targets[k];
		const ManifestMember *m = mt && mt->payload_member
			? manifest_member(pkg, mt->payload_member) : NULL;
		if (m)
			r = elf_payload_parse(m->data, m->len, &pl[i], e);
		else /* the caller installs such a package cold */
			r = base_err(e, -EINVAL, "%s: %s carries no hotpatch payload", pkg->id,
				     t->ops[i].path);
	}
	/* 1. every process that maps a target now */
	for (size_t i = 0; r >= 0 && !applied && i < t->n_ops; i++)
		r = patch_users(s, t->ops[i].path, pl[i], 0, &done[i], &failed, &stale, &unread, rep,
				&n, e);
	/* 2. the disk: new processes get the coldpatch */
	if (r >= 0 && !applied) {
		rep->changed = 1;
		if (!s->dry_run)
			r = pending_apply(&s->store, t, e);
		for (size_t i = 0; r >= 0 && i < t->n_ops; i++)
			svc_report_line(rep, "%s %s: %s -> %s", s->dry_run ? "would swap" : "swapped",
					t->ops[i].path, t->ops[i].fix_from, t->ops[i].fix_to);
		if (r >= 0)
			r = svc_report_targets(rep, t, SVC_TARGET_SWAP, NULL);
	}
	/* 3. whoever mapped the old file meanwhile (or, for a transaction
	 * applied earlier, every process still on the old file) */
	for (int round = 0; r >= 0 && round < SWEEP_ROUNDS; round++) {
		size_t more = 0;
		for (size_t i = 0; r >= 0 && i < t->n_ops; i++) {
			size_t k = 0;
			r = patch_users(s, t->ops[i].path, pl[i], 1, &done[i], &failed, &stale,
					&unread, rep, &k, e);
			more += k;
		}
		if (!more)
			break;
	}
	for (size_t i = 0; pl && i < t->n_ops; i++)
		elf_payload_free(pl[i]);
	free(pl);
	for (size_t i = 0; done && i < t->n_ops; i++)
		free(done[i].pids);
	free(done);
	free(failed.pids);
	size_t ns = stale.n;
	free(stale.pids);
	if (r >= 0 && !s->dry_run)
		r = report_unread(rep, &unread);
	svc_unread_free(&unread);
	if (r < 0)
		return r;
	int unknown = r;
	if (failed.n) {
		rep->pending = 1;
		svc_report_line(rep, "%zu process%s could not be patched: restart required",
				failed.n,
				failed.n == 1 ? "" : "es");
		return SVC_RESTART;
	}
	return report_not_converged(rep, ns, "patched", unknown);
}

/* Can the rollback of inst be done in the processes: one runs it from
 * memory, or from the file on disk with the payload kept (hp_unbake)? */
int svc_hot_in_memory(Svc *s, const PendingTxn *inst, BaseErr *e)
{
	for (size_t i = 0; i < inst->n_ops; i++) {
		SvcUser *u = NULL;
		size_t n = 0;
		int r = users_of(s, inst->ops[i].path, NULL, NULL, NULL, &u, &n, e);
		if (r < 0)
			return r;
		HpFleet *fleet = n > 1 ? hp_fleet_new() : NULL;
		for (size_t k = 0; k < n && !r; k++)
			r = fix_in_memory(&u[k], inst->package, fleet);
		hp_fleet_free(fleet);
		int from_file = 0;
		for (size_t k = 0; k < n && !r && !from_file; k++)
			from_file = !u[k].old_version;
		if (!r && from_file) {
			ElfPayload *p = kept_payload(s, inst->package, inst->ops[i].path);
			r = p != NULL;
			elf_payload_free(p);
		}
		free(u);
		if (r)
			return 1;
	}
	return 0;
}

/* Does the file pid maps (u) carry fix_id, still in effect (not unbaked)? */
static int fix_in_file(const SvcUser *u, const char *fix_id, HpFleet *fleet)
{
	HpModuleRef mod = { .by_inode = true, .dev = u->dev, .ino = u->ino };
	char **ids = NULL;
	size_t n = 0;
	int found = 0;
	if (hp_effective_state_in(u->pid, &mod, fleet, &ids, &n, NULL, NULL) < 0)
		return 0;
	found = has_id(ids, n, fix_id);
	free(ids);
	return found;
}

int svc_hot_rollback(Svc *s, const PendingTxn *rb, int applied, SvcReport *rep, BaseErr *e)
{
	PidSet failed = { 0 };
	SvcUnread unread = { 0 };
	size_t ns = 0;   /* reverted, but threads still in the fix's code */
	int r = hp_load(e);   /* before any stop, as in svc_hot_install */

	/* 1. out of every process that runs it from memory; out of a process
	 * that runs it from the file (started from the coldpatch) through the
	 * payload kept at install (hp_unbake); without it, a restart */
	for (size_t i = 0; r >= 0 && i < rb->n_ops; i++) {
		SvcUser *u = NULL;
		size_t n = 0;
		struct stat st;
		r = users_of(s, rb->ops[i].path, NULL, NULL, &unread, &u, &n, e);
		int have = fstatat(s->rootfd, rb->ops[i].path + 1, &st, AT_SYMLINK_NOFOLLOW) == 0;
		ElfPayload *kept = r >= 0 ? kept_payload(s, rb->package, rb->ops[i].path) : NULL;
		/* the users of one file share its facts for their reads; those
		 * that run the fix from memory are reverted through the worker
		 * pool afterwards, BATCH at a time */
		HpFleet *fleet = n > 1 ? hp_fleet_new() : NULL;
		size_t *rev = calloc(n ? n : 1, sizeof(*rev)), nrev = 0;
		if (r >= 0 && !rev)
			r = -ENOMEM;
		for (size_t k = 0; r >= 0 && k < n; k++) {
			if (s->dry_run && (fix_in_memory(&u[k], rb->package, fleet) ||
					   (kept && fix_in_file(&u[k], rb->package, fleet)))) {
				rep->changed = 1;
				r = svc_report_user(rep, rb->ops[i].path, &u[k], SVC_PROC_WOULD_REVERT,
						    NULL);
				svc_report_line(rep, "would take %s out of pid %d (%s)", rb->package,
						(int)u[k].pid, u[k].comm);
			} else if (fix_in_memory(&u[k], rb->package, fleet)) {
				rev[nrev++] = k;
			} else if (kept && fix_in_file(&u[k], rb->package, fleet)) {
				HpOpts o = { .module = { .by_inode = true, .dev = u[k].dev,
							 .ino = u[k].ino } };
				HpReport hr = { 0 };
				BaseErr pe = { 0 };
				int x = hp_unbake(u[k].pid, kept, &o, &hr, &pe);
				if (x < 0 && x != -BASE_E_GONE) {
					r = pidset_add(&failed, u[k].pid);
					report_failure(rep, rb->ops[i].path, &u[k],
						       pe.msg[0] ? pe.msg : base_strerror(x));
				} else if (x >= 0 && !hr.noop) {
					rep->changed = 1;
					svc_report_line(rep, "unbaked pid %d (%s): %s out of the file's "
							"code, %.3f ms paused", (int)u[k].pid,
							u[k].comm, rb->package,
							(double)hr.pause_ns / 1e6);
				}
			} else if (!kept && ((!applied && have && u[k].dev == st.st_dev &&
					      u[k].ino == st.st_ino) ||
					     fix_in_file(&u[k], rb->package, fleet))) {
				r = pidset_add(&failed, u[k].pid);
				report_failure(rep, rb->ops[i].path, &u[k],
					       "runs the fix from the file (started after the install)");
			}
		}
		hp_fleet_free(fleet);
		for (size_t b = 0; r >= 0 && b < nrev; b += BATCH) {
			size_t m = nrev - b < BATCH ? nrev - b : BATCH;
			pid_t pids[BATCH];
			HpReport hrs[BATCH];
			for (size_t j = 0; j < m; j++)
				pids[j] = u[rev[b + j]].pid;
			int x = hp_revert_many(pids, m, 0, rb->package, NULL, hrs, e);
			if (x < 0) {
				r = x;
				break;
			}
			for (size_t j = 0; r >= 0 && j < m; j++) {
				SvcUser *uk = &u[rev[b + j]];
				const HpReport *hr = &hrs[j];
				if (hr->result < 0 && hr->result != -BASE_E_GONE) {
					r = pidset_add(&failed, uk->pid);
					report_failure(rep, rb->ops[i].path, uk,
						       hr->msg[0] ? hr->msg : base_strerror(hr->result));
				} else if (hr->result >= 0) {
					rep->changed = 1;
					svc_report_line(rep, "reverted pid %d (%s): %s out, %.3f ms paused",
							(int)uk->pid, uk->comm, rb->package,
							(double)hr->pause_ns / 1e6);
					ns += hr->not_converged;
					if (hr->not_converged)
						report_stale(rep, rb->ops[i].path, uk, hr->stale_tid,
							     "the new code of", hr->stale_fn);
				}
			}
		}
		free(rev);
		elf_payload_free(kept);
		free(u);
	}
	/* 2. the disk, at once: new processes get the old version back (done
	 * already when this only brings processes along) */
	if (r >= 0 && !applied) {
		rep->changed = 1;
		if (!s->dry_run)
			r = pending_apply(&s->store, rb, e);
		for (size_t i = 0; r >= 0 && i < rb->n_ops; i++)
			svc_report_line(rep, "%s %s: %s -> %s", s->dry_run ? "would swap" : "swapped",
					rb->ops[i].path, rb->ops[i].fix_from, rb->ops[i].fix_to);
		if (r >= 0)
			r = svc_report_targets(rep, rb, SVC_TARGET_SWAP, NULL);
	}
	size_t nf = failed.n;
	free(failed.pids);
	if (r >= 0 && !s->dry_run)
		r = report_unread(rep, &unread);
	svc_unread_free(&unread);
	if (r < 0)
		return r;
	int unknown = r;
	if (nf) {
		rep->pending = 1;
		svc_report_line(rep, "%zu process%s still run%s %s: restart required", nf,
				nf == 1 ? "" : "es", nf == 1 ? "s" : "", rb->package);
		return SVC_RESTART;
	}
	return report_not_converged(rep, ns, "reverted", unknown);
}

/* The op of fix id's install record that services path, or NULL. */
static const PendingOp *install_op(const PendingList *l, const char *id, const char *path)
{
	const PendingEntry *en = svc_ledger_install(l, id);
	for (size_t o = 0; en && o < en->txn->n_ops; o++)
		if (strcmp(en->txn->ops[o].path, path) == 0)
			return &en->txn->ops[o];
	return NULL;
}

/* Level a process runs for one file: its newest in-memory fix of that file,
 * else the level of the file it maps (read through /proc/PID/map_files).
 * A process that took a fix of its file out (hp_unbake) runs its effective
 * list instead: the newest fix left there, else the level below the oldest
 * fix taken out. */
void svc_hot_levels(Svc *s, const PendingList *l, SvcFileStatus *f)
{
	/* the users map the same few files: their first pages and lineage
	 * notes are read once for all (a process's own bytes never are) */
	HpFleet *fleet = f->n_users > 1 ? hp_fleet_new() : NULL;
	for (size_t k = 0; k < f->n_users; k++) {
		SvcUser *u = &f->users[k];
		HpState *st = NULL;
		const char **ids = NULL;
		size_t n = 0;
		snprintf(u->level, sizeof(u->level), "%s", u->old_version ? "unknown" : f->level);
		if (u->old_version) {
			char p[96];
			uint8_t h[BASE_SHA256_LEN];
			snprintf(p, sizeof(p), "/proc/%d/map_files/%s", (int)u->pid, u->map);
			int fd = open(p, O_RDONLY | O_CLOEXEC);
			if (fd >= 0 && base_sha256_fd(fd, h) >= 0)
				snprintf(u->level, sizeof(u->level), "%s",
					 svc_ledger_level(l, f->path, h));
			if (fd >= 0)
				close(fd);
		}
		u->stale[0] = 0;
		/* one read of the process: its state and what it runs in this
		 * file (the state alone if the file's module cannot be found) */
		char **eff = NULL;
		size_t ne = 0;
		HpModuleRef mod = { .by_inode = true, .dev = u->dev, .ino = u->ino };
		if (hp_effective_state_in(u->pid, &mod, fleet, &eff, &ne, &st, NULL) < 0 &&
		    hp_list(u->pid, &st, NULL) < 0)
			st = NULL;
		for (size_t i = 0; st && i < st->n_fixes && !u->stale[0]; i++)
			if (st->fixes[i].stale && install_op(l, st->fixes[i].fix_id, f->path))
				snprintf(u->stale, sizeof(u->stale), "thread %d still runs %s%s",
					 (int)st->fixes[i].stale_tid,
					 st->fixes[i].status == HP_FIX_REVERTED ?
					 "the new code of " : "old ", st->fixes[i].stale_fn);
		if (st && hp_state_active(st, &ids, &n) >= 0)
			for (size_t i = 0; i < n; i++) {
				/* only fixes whose package services this file, and
				 * that are in effect in this very file (a fix id
				 * active in another file of the process is not) */
				if (install_op(l, ids[i], f->path) && has_id(eff, ne, ids[i])) {
					snprintf(u->level, sizeof(u->level), "%s", ids[i]);
					u->hot = 1;
				}
			}
		const char *below = NULL;   /* level under the oldest fix unbaked */
		for (size_t i = 0; st && i < st->n_fixes && !below; i++) {
			const PendingOp *op = st->fixes[i].baked
				? install_op(l, st->fixes[i].fix_id, f->path) : NULL;
			if (op && st->fixes[i].status == HP_FIX_REVERTED)
				below = op->fix_from;
		}
		if (below && eff) {
			const char *lv = below;
			int hot = 0;
			for (size_t i = ne; i > 0; i--) /* newest first */
				if (install_op(l, eff[i - 1], f->path)) {
					lv = eff[i - 1];
					for (size_t a = 0; a < n; a++)
						hot |= strcmp(ids[a], eff[i - 1]) == 0;
					break;
				}
			snprintf(u->level, sizeof(u->level), "%s", lv);
			u->hot = hot;
		}
		free(eff);
		free(ids);
		hp_state_free(st);
		(void)s;
	}
	hp_fleet_free(fleet);
}
