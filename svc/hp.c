/* svc hotpatch apply / revert / list: the operator's direct handle on the
 * live patcher, for one payload and a set of processes (no packages, no
 * disk changes). */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elf/elf.h"
#include "svc/internal.h"

static int run_pool(const pid_t *pids, size_t n, unsigned workers, const ElfPayload *p,
		    const char *fix_id, SvcHpRun *ret, BaseErr *e)
{
	SvcHpRun run = { .n = n };
	run.pids = calloc(n ? n : 1, sizeof(*run.pids));
	run.reports = calloc(n ? n : 1, sizeof(*run.reports));
	if (!run.pids || !run.reports) {
		svc_hp_run_free(&run);
		return -ENOMEM;
	}
	memcpy(run.pids, pids, n * sizeof(*pids));
	/* the decoder and unwinder are loaded on first use: before any stop */
	int r = n ? hp_load(e) : 0;
	if (r < 0) {
		svc_hp_run_free(&run);
		return r;
	}
	uint64_t t0 = base_now_ns();
	r = n == 0 ? 0
		: p ? hp_apply_many(run.pids, n, workers, p, NULL, run.reports, e)
		    : hp_revert_many(run.pids, n, workers, fix_id, NULL, run.reports, e);
	run.wall_ns = base_now_ns() - t0;
	if (r < 0) {
		svc_hp_run_free(&run);
		return r;
	}
	run.failed = r;
	*ret = run;
	return 0;
}

int svc_hp_apply(const char *payload_path, const pid_t *pids, size_t n, int all,
		 unsigned workers, SvcHpRun *ret, BaseErr *e)
{
	_cleanup_close_ int fd = -1;
	uint8_t *buf = NULL;
	size_t len = 0;
	ElfPayload *p = NULL;
	pid_t *found = NULL;
	int r;

	r = base_fs_open_regular(AT_FDCWD, payload_path, 0, &fd);
	if (r < 0)
		return base_err(e, r, "%s: %s", payload_path,
				r == -EINVAL ? "not a regular file" : strerror(-r));
	r = base_fs_read_fd(fd, 256u << 20, &buf, &len);
	if (r < 0)
		return base_err(e, r, "%s: %s", payload_path, base_strerror(r));
	r = elf_payload_parse(buf, len, &p, e);
	free(buf);
	if (r < 0)
		return r;
	/* --all: every process mapping a file of the payload's build-id */
	if (all)
		r = hp_scan(NULL, p->build_id, p->build_id_len, &found, &n, e);
	if (r >= 0)
		r = run_pool(all ? found : pids, n, workers, p, NULL, ret, e);
	free(found);
	elf_payload_free(p);
	return r;
}

static int has_fix(pid_t pid, const char *fix_id)
{
	HpState *st = NULL;
	const char **ids = NULL;
	size_t n = 0;
	int found = 0;
	if (hp_list(pid, &st, NULL) >= 0 && hp_state_active(st, &ids, &n) >= 0)
		for (size_t i = 0; i < n; i++)
			found |= strcmp(ids[i], fix_id) == 0;
	free(ids);
	hp_state_free(st);
	return found;
}

int svc_hp_revert(const char *fix_id, const pid_t *pids, size_t n, int all, unsigned workers,
		  SvcHpRun *ret, BaseErr *e)
{
	pid_t *found = NULL;
	size_t nf = 0, k = 0;
	int r = 0;
	if (all) {
		r = hp_scan_patched(&found, &nf, e);
		for (size_t i = 0; r >= 0 && i < nf; i++)
			if (has_fix(found[i], fix_id))
				found[k++] = found[i];
	}
	if (r >= 0)
		r = run_pool(all ? found : pids, all ? k : n, workers, NULL, fix_id, ret, e);
	free(found);
	return r;
}

void svc_hp_run_free(SvcHpRun *r)
{
	free(r->pids);
	free(r->reports);
	memset(r, 0, sizeof(*r));
}

int svc_hp_list(const pid_t *pids, size_t n, HpState ***ret, size_t *ret_n, BaseErr *e)
{
	pid_t *found = NULL;
	int r = 0;
	if (!pids) {
		r = hp_scan_patched(&found, &n, e);
		if (r < 0)
			return r;
		pids = found;
	}
	HpState **states = calloc(n ? n : 1, sizeof(*states));
	size_t k = 0;
	if (!states)
		r = -ENOMEM;
	for (size_t i = 0; r >= 0 && i < n; i++) {
		BaseErr why = { 0 };
		r = hp_list(pids[i], &states[k], &why);
		if (r == -BASE_E_GONE && found) {
			r = 0; /* exited since the scan */
			continue;
		}
		if (r < 0 && r != -ENOMEM) {
			/* its state is unreadable or hostile: say so for this
			 * process, and go on with the others */
			states[k] = calloc(1, sizeof(*states[k]));
			if (!states[k] || !(states[k]->error = strdup(why.msg[0] ? why.msg :
								      base_strerror(r)))) {
				free(states[k]);
				r = -ENOMEM;
				break;
			}
			states[k]->pid = pids[i];
			r = 0;
		}
		if (r >= 0)
			k++;
	}
	free(found);
	if (r < 0) {
		for (size_t i = 0; i < k; i++)
			hp_state_free(states[i]);
		free(states);
		return r;
	}
	*ret = states;
	*ret_n = k;
	return 0;
}

int svc_hp_converge(const pid_t *pids, size_t n, uint32_t wait_ms, SvcHpRun *ret, BaseErr *e)
{
	pid_t *found = NULL;
	uint64_t t0 = base_now_ns();
	if (!pids) {
		int r = hp_scan_patched(&found, &n, e);
		if (r < 0)
			return r;
		pids = found;
	}
	SvcHpRun run = { .n = 0 };
	run.pids = calloc(n ? n : 1, sizeof(pid_t));
	run.reports = calloc(n ? n : 1, sizeof(HpReport));
	if (!run.pids || !run.reports) {
		free(found);
		svc_hp_run_free(&run);
		return -ENOMEM;
	}
	/* the decoder and unwinder are loaded on first use: before any stop */
	int stale = 0, lr = n ? hp_load(e) : 0;
	if (lr < 0) {
		free(found);
		svc_hp_run_free(&run);
		return lr;
	}
	HpOpts o = { .deadline_ms = wait_ms ? wait_ms : 1 };
	for (size_t i = 0; i < n; i++) {
		HpReport *rep = &run.reports[run.n];
		BaseErr pe = { 0 };
		int r = hp_converge(pids[i], &o, rep, &pe);
		if (r == -BASE_E_GONE && found)
			continue;   /* exited since the scan */
		run.pids[run.n++] = pids[i];
		if (r < 0)
			run.failed++;
		else if (rep->not_converged)
			stale++;
	}
	free(found);
	run.wall_ns = base_now_ns() - t0;
	*ret = run;
	return stale + run.failed;
}
