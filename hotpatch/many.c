/* Many processes: a bounded pool of worker threads, and the scan that finds
 * the processes mapping a module.  Each worker is the ptrace tracer of the
 * process it handles for the length of that call only. */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "hotpatch/internal.h"

typedef struct Pool {
	const pid_t *pids;
	size_t n;
	atomic_size_t next;
	atomic_size_t failed;
	const ElfPayload *p;     /* apply (or unbake) if set, else revert fix_id */
	bool unbake;
	const char *fix_id;
	const HpOpts *opts;
	HpReport *reports;
	HpFleet *fleet;
} Pool;

static void *worker(void *arg)
{
	Pool *pl = arg;
	hp_worker_begin();
	for (;;) {
		size_t i = atomic_fetch_add(&pl->next, 1);
		if (i >= pl->n) {
			hp_worker_end();
			return NULL;
		}
		BaseErr e = { 0 };
		HpReport *rep = &pl->reports[i];
		int r = pl->unbake ? hp_unbake_in(pl->pids[i], pl->p, pl->opts, pl->fleet, rep, &e) :
			pl->p ? hp_apply_in(pl->pids[i], pl->p, pl->opts, pl->fleet, rep, &e) :
				hp_revert(pl->pids[i], pl->fix_id, pl->opts, rep, &e);
		if (r < 0)
			atomic_fetch_add(&pl->failed, 1);
	}
}

static int run_pool(Pool *pl, unsigned workers, BaseErr *e)
{
	if (!workers)
		workers = 2;
	if (workers > pl->n)
		workers = pl->n ? (unsigned)pl->n : 1;
	memset(pl->reports, 0, pl->n * sizeof(HpReport));
	pthread_t *th = calloc(workers, sizeof(*th));
	pl->fleet = hp_fleet_new();   /* without it, each session reads for itself */
	if (!th) {
		hp_fleet_free(pl->fleet);
		return -ENOMEM;
	}
	unsigned started = 0;
	for (; started < workers; started++)
		if (pthread_create(&th[started], NULL, worker, pl) != 0)
			break;
	if (started == 0) {
		free(th);
		hp_fleet_free(pl->fleet);
		return base_err(e, -EAGAIN, "cannot start worker threads");
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	free(th);
	hp_fleet_free(pl->fleet);
	return (int)atomic_load(&pl->failed);
}

int hp_apply_many(const pid_t *pids, size_t n, unsigned workers, const ElfPayload *p,
		  const HpOpts *opts, HpReport *reports, BaseErr *e)
{
	Pool pl = { .pids = pids, .n = n, .p = p, .opts = opts, .reports = reports };
	return run_pool(&pl, workers, e);
}

int hp_revert_many(const pid_t *pids, size_t n, unsigned workers, const char *fix_id,
		   const HpOpts *opts, HpReport *reports, BaseErr *e)
{
	Pool pl = { .pids = pids, .n = n, .fix_id = fix_id, .opts = opts, .reports = reports };
	return run_pool(&pl, workers, e);
}

int hp_unbake_many(const pid_t *pids, size_t n, unsigned workers, const ElfPayload *p,
		   const HpOpts *opts, HpReport *reports, BaseErr *e)
{
	Pool pl = { .pids = pids, .n = n, .p = p, .unbake = true, .opts = opts,
		    .reports = reports };
	return run_pool(&pl, workers, e);
}

/* ---- scan ------------------------------------------------------------- */

typedef struct SeenFile {
	unsigned maj, min;
	uint64_t ino;
	bool match;
} SeenFile;

typedef struct Scan {
	const HpModuleRef *mod;
	const uint8_t *build_id;
	size_t build_id_len;
	SeenFile *seen;
	size_t n_seen;
} Scan;

static bool file_matches(Scan *sc, pid_t pid, const HpMap *mp)
{
	const HpModuleRef *m = sc->mod;
	if (m && m->path)
		return strcmp(mp->path, m->path) == 0;
	if (m && m->by_inode)
		return mp->ino == (uint64_t)m->ino && mp->dev_major == major(m->dev) &&
		       mp->dev_minor == minor(m->dev);
	for (size_t i = 0; i < sc->n_seen; i++)
		if (sc->seen[i].ino == mp->ino && sc->seen[i].maj == mp->dev_major &&
		    sc->seen[i].min == mp->dev_minor)
			return sc->seen[i].match;
	/* first sight of this file: read its build-id once, through map_files
	 * (the process's own view, whatever its mount namespace) */
	bool match = false;
	int fd = hp_map_file_open(pid, mp);
	if (fd >= 0) {
		uint8_t id[64];
		size_t len = 0;
		match = hp_file_build_id(fd, id, &len) == 0 && len == sc->build_id_len &&
			memcmp(id, sc->build_id, len) == 0;
		close(fd);
	} else {
		return false;   /* not cached: another process may let us read it */
	}
	SeenFile *ns = realloc(sc->seen, (sc->n_seen + 1) * sizeof(*ns));
	if (ns) {
		sc->seen = ns;
		sc->seen[sc->n_seen++] = (SeenFile){ mp->dev_major, mp->dev_minor, mp->ino, match };
	}
	return match;
}

static bool maps_patched(Scan *sc, pid_t pid, const HpMap *mp)
{
	(void)sc;
	(void)pid;
	return strncmp(mp->path, "/memfd:" HP_STATE_NAME, sizeof("/memfd:" HP_STATE_NAME) - 1) == 0;
}

/* A process whose state is in its executable's cave (cave.c) shows no
 * mapping of ours: look there. */
static bool cave_patched(pid_t pid, const HpMaps *m)
{
	int fd = -1;
	uint64_t addr = 0;
	if (hp_mem_open(pid, false, &fd) < 0)
		return false;
	bool hit = hp_state_locate(fd, m, hp_exe_map(pid, m), NULL, &addr) == 0;
	close(fd);
	return hit;
}

typedef bool (*MatchFn)(Scan *sc, pid_t pid, const HpMap *mp);

static int scan_procs(Scan *sc, MatchFn match, pid_t **ret_pids, size_t *ret_n, BaseErr *e);

int hp_scan(const HpModuleRef *mod, const uint8_t *build_id, size_t build_id_len,
	    pid_t **ret_pids, size_t *ret_n, BaseErr *e)
{
	if (!mod && (!build_id || !build_id_len))
		return base_err(e, -EINVAL, "scan: no module and no build-id");
	Scan sc = { .mod = mod, .build_id = build_id, .build_id_len = build_id_len };
	return scan_procs(&sc, file_matches, ret_pids, ret_n, e);
}

int hp_scan_patched(pid_t **ret_pids, size_t *ret_n, BaseErr *e)
{
	Scan sc = { 0 };
	return scan_procs(&sc, maps_patched, ret_pids, ret_n, e);
}

static int scan_procs(Scan *scp, MatchFn match, pid_t **ret_pids, size_t *ret_n, BaseErr *e)
{
	Scan sc = *scp;
	pid_t *v = NULL;
	size_t n = 0, k = 0;
	int r = base_proc_ids(0, &v, &n, e);
	if (r < 0)
		return r;
	pid_t self = getpid();
	for (size_t i = 0; i < n; i++) {
		pid_t pid = v[i];
		if (pid == self)
			continue;
		HpMaps m = { 0 };
		BaseErr ig = { 0 };
		if (hp_maps_read(pid, &m, &ig) < 0)
			continue;   /* exited, kernel thread, or not ours to read */
		bool hit = false;
		for (size_t j = 0; j < m.n && !hit; j++)
			if (m.v[j].offset == 0 && (m.v[j].ino || match == maps_patched))
				hit = match(&sc, pid, &m.v[j]);
		if (!hit && match == maps_patched)
			hit = cave_patched(pid, &m);
		hp_maps_free(&m);
		if (hit)
			v[k++] = pid;   /* k <= i: the kept ones, in place */
	}
	n = k;
	free(sc.seen);
	if (r < 0) {
		free(v);
		return r;
	}
	*ret_pids = v;   /* in PID order, as base_proc_ids lists them */
	*ret_n = n;
	return 0;
}
