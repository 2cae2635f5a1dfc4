/* svc metrics: the status in the Prometheus text exposition format
 * (version 0.0.4), for node_exporter's textfile collector.
 *
 * Every number comes from svc_status(), so the metrics can never say
 * something `svc status` does not.  Metric names are fixed here (all valid
 * [a-zA-Z_:][a-zA-Z0-9_:]*); only label values come from the system (paths,
 * fix ids, process names) and are escaped.  Each family is written whole,
 * HELP and TYPE first, and a family that has a label with a closed set of
 * values (a fix state, a boot result) has a series for every value, 0
 * included, so a rule never sees a series vanish when a count falls to 0.
 *
 * The file is replaced atomically (temp, fsync, rename, fsync of the
 * directory, through base/fs.c): node_exporter reads either the old file
 * or the new one, never half of one.  The temp name does not end in .prom,
 * which the collector ignores. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "svc/internal.h"

#define PROM_FILE "svc.prom"

/* The label value of each boot result (the record's own words are for people). */
static const char *const boot_labels[SVC_BOOT_N_RESULTS] = {
	[SVC_BOOT_NONE] = "none",
	[SVC_BOOT_OK] = "ok",
	[SVC_BOOT_QUARANTINED] = "quarantined",
	[SVC_BOOT_FAILED] = "failed",
};

/* The text being built; the first failed append sticks (no half file). */
typedef struct Out {
	BaseBuf b;
	int err;
} Out;

static void put(Out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(Out *o, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0 || base_buf_append(&o->b, s, (size_t)n) < 0)
		o->err = -ENOMEM;
	free(s);
}

/* A label value: backslash, double quote and line feed escaped. */
static void label(Out *o, const char *name, const char *value)
{
	put(o, "%s=\"", name);
	for (const char *p = value ? value : ""; *p; p++) {
		if (*p == '\\' || *p == '"')
			put(o, "\\%c", *p);
		else if (*p == '\n')
			put(o, "\\n");
		else
			put(o, "%c", *p);
	}
	put(o, "\"");
}

/* The start of a sample: NAME{k1="v1",...} for n label pairs (n may be 0),
 * followed by the value the caller prints. */
static void series(Out *o, const char *name, int n, ...)
{
	va_list ap;
	put(o, "%s", name);
	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		const char *k = va_arg(ap, const char *), *v = va_arg(ap, const char *);
		put(o, "%s", i ? "," : "{");
		label(o, k, v);
	}
	va_end(ap);
	put(o, "%s ", n ? "}" : "");
}

static void family(Out *o, const char *name, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

static size_t unconverged(const SvcFileStatus *f)
{
	size_t n = 0;
	for (size_t k = 0; k < f->n_users; k++)
		n += !svc_user_converged(f, &f->users[k]);
	return n;
}

static void format(const SvcStatus *st, Out *o)
{
	family(o, "svc_fixes", "Fixes known to svc, by state.");
	for (int i = 0; i < SVC_N_FIX_STATES; i++) {
		size_t n = 0;
		for (size_t k = 0; k < st->n_fixes; k++)
			n += strcmp(st->fixes[k].state, svc_fix_states[i]) == 0;
		series(o, "svc_fixes", 1, "state", svc_fix_states[i]);
		put(o, "%zu\n", n);
	}

	family(o, "svc_fix_info", "One series per fix, value 1: its series, sequence and state.");
	for (size_t k = 0; k < st->n_fixes; k++) {
		const SvcFixStatus *f = &st->fixes[k];
		char seq[24];
		snprintf(seq, sizeof(seq), "%" PRIu64, f->sequence);
		series(o, "svc_fix_info", 4, "fix", f->id, "series", f->series, "sequence", seq,
		       "state", f->state);
		put(o, "1\n");
	}

	family(o, "svc_files_serviced", "Files that a fix services (in any state).");
	series(o, "svc_files_serviced", 0);
	put(o, "%zu\n", st->n_files);

	family(o, "svc_file_converged",
	       "1 when every process mapping the file runs the fix level on disk (label level), "
	       "0 when one does not, -1 when unknown (a process could not be read).");
	for (size_t i = 0; i < st->n_files; i++) {
		series(o, "svc_file_converged", 2, "path", st->files[i].path, "level",
		       st->files[i].level);
		put(o, "%d\n", st->files[i].converged);
	}

	family(o, "svc_file_processes",
	       "Processes mapping a serviced file, by the fix level they run.");
	for (size_t i = 0; i < st->n_files; i++) {
		const SvcFileStatus *f = &st->files[i];
		for (size_t k = 0; k < f->n_users; k++) {
			size_t n = 0, seen = 0;
			for (size_t j = 0; j < f->n_users; j++) {
				int same = strcmp(f->users[j].level, f->users[k].level) == 0;
				n += same;
				seen |= same && j < k;
			}
			if (seen)
				continue; /* that level was written already */
			series(o, "svc_file_processes", 2, "path", f->path, "level", f->users[k].level);
			put(o, "%zu\n", n);
		}
	}

	size_t total = 0;
	for (size_t i = 0; i < st->n_files; i++)
		total += unconverged(&st->files[i]);
	family(o, "svc_unconverged_processes",
	       "Processes not running the fix level on disk of a file they map.");
	put(o, "svc_unconverged_processes %zu\n", total);

	family(o, "svc_process_unconverged",
	       "One series per process not converged on a file, value 1: the level it runs, "
	       "the level on disk, and the thread still in replaced code (reason) if any.");
	for (size_t i = 0; i < st->n_files; i++) {
		const SvcFileStatus *f = &st->files[i];
		for (size_t k = 0; k < f->n_users; k++) {
			const SvcUser *u = &f->users[k];
			char pid[16];
			if (svc_user_converged(f, u))
				continue;
			snprintf(pid, sizeof(pid), "%d", (int)u->pid);
			series(o, "svc_process_unconverged", 6, "path", f->path, "pid", pid, "comm",
			       u->comm, "level", u->level, "disk_level", f->level, "reason",
			       u->stale);
			put(o, "1\n");
		}
	}

	family(o, "svc_unknown_processes",
	       "Processes whose memory maps could not be read: convergence unknown.");
	series(o, "svc_unknown_processes", 0);
	put(o, "%zu\n", st->n_unknown_procs);

	family(o, "svc_unreadable_records", "Transaction records svc cannot read (see svc status).");
	put(o, "svc_unreadable_records %zu\n", st->n_unreadable);

	family(o, "svc_last_boot_result",
	       "1 for the result of the last svc boot replay (none: never ran), 0 for the others.");
	for (int i = 0; i < SVC_BOOT_N_RESULTS; i++) {
		series(o, "svc_last_boot_result", 1, "result", boot_labels[i]);
		put(o, "%d\n", st->last_boot_result == (SvcBootResult)i);
	}
	family(o, "svc_last_boot_timestamp_seconds",
	       "When the last svc boot replay ran (seconds since the epoch; 0: never).");
	put(o, "svc_last_boot_timestamp_seconds %" PRIu64 "\n", st->last_boot_at);

	family(o, "svc_metrics_timestamp_seconds", "When svc metrics wrote these numbers.");
	put(o, "svc_metrics_timestamp_seconds %lld\n", (long long)time(NULL));
}

int svc_metrics(Svc *s, BaseBuf *out, BaseErr *e)
{
	SvcStatus st = { 0 };
	Out o = { 0 };
	int r = svc_status(s, &st, e);
	if (r < 0)
		return r;
	format(&st, &o);
	svc_status_free(&st);
	if (o.err) {
		base_buf_free(&o.b);
		return base_err(e, o.err, "metrics: %s", base_strerror(o.err));
	}
	*out = o.b;
	return 0;
}

int svc_metrics_write(Svc *s, const char *dir, BaseErr *e)
{
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	BaseBuf b = { 0 };
	if (dfd < 0)
		return base_err(e, -errno, "%s: %s", dir, strerror(errno));
	int r = svc_metrics(s, &b, e);
	if (r < 0)
		return r;
	r = base_fs_write_atomic(dfd, PROM_FILE, b.data, b.len, 0644);
	base_buf_free(&b);
	if (r < 0)
		return base_err(e, r, "%s/%s: %s", dir, PROM_FILE, base_strerror(r));
	return 0;
}
