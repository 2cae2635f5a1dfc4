/* svc boot and svc status. */
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "svc/internal.h"

#define LAST_BOOT "last-boot"
#define LAST_BOOT_HEAD "svc boot at "

/* The words of the record's first line ("svc boot at T: WORDS"). */
static const char *const boot_results[SVC_BOOT_N_RESULTS] = {
	[SVC_BOOT_NONE] = "none",
	[SVC_BOOT_OK] = "ok",
	[SVC_BOOT_QUARANTINED] = "quarantined some",
	[SVC_BOOT_FAILED] = "FAILED",
};

const char *svc_boot_result_name(SvcBootResult r)
{
	return (unsigned)r < SVC_BOOT_N_RESULTS ? boot_results[r] : "?";
}

/* The record of the last boot replay: var/lib/svc/last-boot, for status
 * (the journal gets the same lines from the unit's output). */
static void write_boot_record(Svc *s, const SvcReport *rep, int result, const char *error)
{
	_cleanup_close_ int dfd = -1;
	BaseBuf b = { 0 };
	if (base_fs_open_dir(s->rootfd, "var/lib/svc", &dfd) < 0)
		return;
	base_buf_printf(&b, LAST_BOOT_HEAD "%lld: %s\n", (long long)time(NULL),
			svc_boot_result_name(result < 0 ? SVC_BOOT_FAILED
					     : result > 0 ? SVC_BOOT_QUARANTINED : SVC_BOOT_OK));
	if (error)
		base_buf_printf(&b, "error: %s\n", error);
	for (size_t i = 0; i < rep->n_lines; i++)
		base_buf_printf(&b, "%s\n", rep->lines[i]);
	if (b.data)
		base_fs_write_atomic(dfd, LAST_BOOT, b.data, b.len, 0644);
	base_buf_free(&b);
}

int svc_boot(Svc *s, SvcReport *ret, BaseErr *e)
{
	PendingReport pr = { 0 };
	SvcReport rep = { 0 };
	int r = svc_lock(s, e);
	if (r >= 0)
		r = pending_replay(&s->store, SVC_BOOT_ATTEMPTS, &pr, e);
	if (r < 0) {
		write_boot_record(s, &rep, r, e ? e->msg : base_strerror(r));
		svc_report_free(&rep);
		return r;
	}
	for (size_t i = 0; i < pr.n; i++) {
		const PendingOutcome *o = &pr.outcomes[i];
		const char *what = o->kind == PENDING_ROLLBACK ? "rollback" : "install";
		if (o->result == 0)
			svc_report_line(&rep, "transaction %" PRIu64 " (%s %s): applied", o->number,
					what, o->package);
		else if (o->result == 1)
			svc_report_line(&rep, "transaction %" PRIu64 " (%s %s): interrupted before "
					"commit, staged files removed", o->number, what, o->package);
		else
			svc_report_linel(&rep, 3, "transaction %" PRIu64 " (%s %s): QUARANTINED: %s",
					o->number, what, o->package ? o->package : "?",
					o->reason ? o->reason : "");
	}
	if (pr.n == 0)
		svc_report_line(&rep, "nothing pending");
	pending_report_free(&pr);
	write_boot_record(s, &rep, r, NULL);
	if (ret)
		*ret = rep;
	else
		svc_report_free(&rep);
	return r;
}

static int add_fix(SvcStatus *st, const PendingList *l, const PendingEntry *en)
{
	for (size_t i = 0; i < st->n_fixes; i++)
		if (strcmp(st->fixes[i].id, en->txn->package) == 0)
			return 0;
	SvcFixStatus *f = realloc(st->fixes, (st->n_fixes + 1) * sizeof(*f));
	if (!f)
		return -ENOMEM;
	st->fixes = f;
	f = &st->fixes[st->n_fixes++];
	memset(f, 0, sizeof(*f));
	const PendingEntry *last = NULL;
	const char *state = svc_ledger_state(l, en->txn->package, &last);
	if (!state) {
		st->n_fixes--;
		return 0;
	}
	f->id = strdup(en->txn->package);
	f->state = state;
	f->series = strdup(last->txn->series);
	f->sequence = last->txn->sequence;
	f->txn = last->number;
	f->created = last->txn->created;
	if (last->state == PENDING_QUARANTINED && last->reason)
		f->reason = strdup(last->reason);
	return f->id && f->series ? 0 : -ENOMEM;
}

static int add_file_fix(SvcFileStatus *f, const char *fix)
{
	for (size_t i = 0; i < f->n_fixes; i++)
		if (strcmp(f->fixes[i], fix) == 0)
			return 0;
	char **n = realloc(f->fixes, (f->n_fixes + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	f->fixes = n;
	return (f->fixes[f->n_fixes++] = strdup(fix)) ? 0 : -ENOMEM;
}

static int add_file(SvcStatus *st, const char *path, const char *fix)
{
	for (size_t i = 0; i < st->n_files; i++)
		if (strcmp(st->files[i].path, path) == 0)
			return add_file_fix(&st->files[i], fix);
	SvcFileStatus *f = realloc(st->files, (st->n_files + 1) * sizeof(*f));
	if (!f)
		return -ENOMEM;
	st->files = f;
	f = &st->files[st->n_files++];
	memset(f, 0, sizeof(*f));
	f->path = strdup(path);
	return f->path ? add_file_fix(f, fix) : -ENOMEM;
}

/* "svc boot at <epoch>: <result>\n<lines>": the parts, for display; a
 * record of another shape is left whole in last_boot (time 0). */
static void split_boot_record(SvcStatus *st)
{
	const char *p = st->last_boot, *nl;
	char *end = NULL;
	if (strncmp(p, LAST_BOOT_HEAD, strlen(LAST_BOOT_HEAD)) != 0)
		return;
	p += strlen(LAST_BOOT_HEAD);
	uint64_t at = strtoull(p, &end, 10);
	if (end == p || strncmp(end, ": ", 2) != 0 || !(nl = strchr(end, '\n')))
		return;
	size_t len = (size_t)(nl - end - 2);
	for (int i = SVC_BOOT_OK; i < SVC_BOOT_N_RESULTS; i++)
		if (strlen(boot_results[i]) == len && strncmp(end + 2, boot_results[i], len) == 0)
			st->last_boot_result = (SvcBootResult)i;
	if (st->last_boot_result == SVC_BOOT_NONE)
		return; /* a result word of no known kind: shown whole */
	st->last_boot_at = at;
	st->last_boot_lines = nl + 1;
}

int svc_user_converged(const SvcFileStatus *f, const SvcUser *u)
{
	return strcmp(u->level, f->level) == 0 && !u->stale[0];
}

int svc_status_file_has_fix(const SvcStatus *st, const SvcFileStatus *f, const char *fix_id)
{
	(void)st;
	for (size_t i = 0; i < f->n_fixes; i++)
		if (strcmp(f->fixes[i], fix_id) == 0)
			return 1;
	return 0;
}

int svc_status(Svc *s, SvcStatus *ret, BaseErr *e)
{
	PendingList l = { 0 };
	SvcStatus st = { 0 };
	SvcScanTarget *scan = NULL;
	int r = pending_list(&s->store, &l, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < l.n && r >= 0; i++) {
		const PendingEntry *en = &l.entries[i];
		if (!en->txn) {
			char **u = realloc(st.unreadable, (st.n_unreadable + 1) * sizeof(*u));
			if (!u) {
				r = -ENOMEM;
				break;
			}
			st.unreadable = u;
			u[st.n_unreadable++] = strdup(en->reason ? en->reason : "unreadable record");
			continue;
		}
		if (en->state == PENDING_STAGING)
			continue;
		r = add_fix(&st, &l, en);
		for (size_t k = 0; k < en->txn->n_ops && r >= 0; k++)
			r = add_file(&st, en->txn->ops[k].path, en->txn->package);
	}
	if (r >= 0 && st.n_files && !(scan = calloc(st.n_files, sizeof(*scan))))
		r = -ENOMEM;
	for (size_t i = 0; i < st.n_files && r >= 0; i++) {
		_cleanup_close_ int dfd = -1;
		const char *name;
		uint8_t h[BASE_SHA256_LEN];
		struct stat sb;
		SvcFileStatus *f = &st.files[i];
		scan[i].path = f->path;
		if (pending_open_parent(&s->store, f->path, &dfd, &name, NULL) < 0 ||
		    pending_hash_at(dfd, name, h) < 0) {
			f->level = strdup("missing");
			continue;
		}
		base_hex(f->sha256, h, BASE_SHA256_LEN);
		f->level = strdup(svc_ledger_level(&l, f->path, h));
		if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
			scan[i].dev = sb.st_dev;
			scan[i].ino = sb.st_ino;
		}
	}
	if (r >= 0 && st.n_files) {
		r = svc_scan_users(s, scan, st.n_files, NULL, e);
		if (r > 0) {
			st.n_unknown_procs = (size_t)r;
			r = 0;
		}
	}
	if (r >= 0) {
		_cleanup_close_ int dfd = -1;
		uint8_t *buf = NULL;
		size_t len = 0;
		if (base_fs_open_dir(s->rootfd, "var/lib/svc", &dfd) >= 0 &&
		    base_fs_read_at(dfd, LAST_BOOT, 1 << 20, &buf, &len) >= 0)
			st.last_boot = (char *)buf;
		if (st.last_boot)
			split_boot_record(&st);
	}
	for (size_t i = 0; scan && i < st.n_files && r >= 0; i++) { /* scan: set when n_files */
		SvcFileStatus *f = &st.files[i];
		f->users = BASE_TAKE_PTR(scan[i].users);
		f->n_users = scan[i].n_users;
		svc_hot_levels(s, &l, f);
		f->converged = st.n_unknown_procs ? -1 : 1;
		for (size_t k = 0; k < f->n_users; k++)
			if (!svc_user_converged(f, &f->users[k]))
				f->converged = 0;
	}
	svc_scan_free(scan, st.n_files);
	if (r >= 0)
		r = svc_superseded_status(s, &l, &st, e);
	if (r >= 0)
		r = svc_dpkg_status(s, &st, e);
	pending_list_free(&l);
	if (r < 0) {
		svc_status_free(&st);
		return r;
	}
	*ret = st;
	return 0;
}

void svc_status_free(SvcStatus *st)
{
	for (size_t i = 0; i < st->n_fixes; i++) {
		free(st->fixes[i].id);
		free(st->fixes[i].series);
		free(st->fixes[i].reason);
		free(st->fixes[i].superseded_by);
		free(st->fixes[i].superseded_version);
	}
	free(st->fixes);
	for (size_t i = 0; i < st->n_files; i++) {
		free(st->files[i].path);
		free(st->files[i].level);
		free(st->files[i].users);
		for (size_t k = 0; k < st->files[i].n_fixes; k++)
			free(st->files[i].fixes[k]);
		free(st->files[i].fixes);
		svc_dpkg_file_free(&st->files[i].dpkg);
	}
	free(st->files);
	for (size_t i = 0; i < st->n_unreadable; i++)
		free(st->unreadable[i]);
	free(st->unreadable);
	free(st->last_boot);
	memset(st, 0, sizeof(*st));
}
