/* svc status, svc list: the fixes, the serviced files and the processes
 * using them, as a table or as JSON (docs/cli.md). */
#include <inttypes.h>
#include <stdio.h>

#include "tools/cli.h"

static void print_json_dpkg(const SvcDpkgFile *d)
{
	printf(",\"dpkg\":");
	if (d->package) {
		printf("{\"package\":");
		cli_json_str(d->package);
		printf(",\"version\":");
		d->version ? cli_json_str(d->version) : (void)printf("null");
		printf(",\"md5sum\":\"%s\",\"accounted\":%s}", svc_dpkg_sum_name(d->sum),
		       d->accounted ? "true" : "false");
	} else
		printf("null");
	printf(",\"diversion\":");
	if (d->divert == SVC_DPKG_NOT_DIVERTED) {
		printf("null");
		return;
	}
	printf("{\"role\":\"%s\",\"from\":", svc_dpkg_divert_name(d->divert));
	cli_json_str(d->divert_from);
	printf(",\"to\":");
	cli_json_str(d->divert_to);
	printf(",\"by\":");
	d->divert_by ? cli_json_str(d->divert_by) : (void)printf("null");
	printf("}");
}

static void print_status_json(const SvcStatus *st)
{
	char t[32];
	printf("{\"fixes\":[");
	for (size_t i = 0; i < st->n_fixes; i++) {
		const SvcFixStatus *f = &st->fixes[i];
		printf("%s{\"id\":", i ? "," : "");
		cli_json_str(f->id);
		printf(",\"series\":");
		cli_json_str(f->series);
		printf(",\"sequence\":%" PRIu64 ",\"txn\":%" PRIu64 ",\"created\":%" PRIu64
		       ",\"created_local\":\"%s\",\"state\":",
		       f->sequence, f->txn, f->created, cli_time(f->created, t));
		cli_json_str(f->state);
		if (f->reason) {
			printf(",\"reason\":");
			cli_json_str(f->reason);
		}
		if (f->superseded_by) {
			printf(",\"superseded_by\":{\"package\":");
			cli_json_str(f->superseded_by);
			printf(",\"version\":");
			cli_json_str(f->superseded_version);
			printf("}");
		}
		printf("}");
	}
	printf("],\"files\":[");
	for (size_t i = 0; i < st->n_files; i++) {
		const SvcFileStatus *f = &st->files[i];
		printf("%s{\"path\":", i ? "," : "");
		cli_json_str(f->path);
		printf(",\"sha256\":");
		cli_json_str(f->sha256);
		printf(",\"level\":");
		cli_json_str(f->level);
		printf(",\"converged\":%s", f->converged < 0 ? "null" : f->converged ? "true" : "false");
		print_json_dpkg(&f->dpkg);
		printf(",\"processes\":[");
		for (size_t k = 0; k < f->n_users; k++) {
			printf("%s{\"pid\":%d,\"comm\":", k ? "," : "", (int)f->users[k].pid);
			cli_json_str(f->users[k].comm);
			printf(",\"maps\":\"%s\",\"level\":", f->users[k].old_version ? "old" : "current");
			cli_json_str(f->users[k].level);
			printf(",\"hotpatched\":%s", f->users[k].hot ? "true" : "false");
			if (f->users[k].stale[0]) {
				printf(",\"not_converged\":");
				cli_json_str(f->users[k].stale);
			}
			printf("}");
		}
		printf("]}");
	}
	printf("],\"last_boot\":");
	if (st->last_boot)
		cli_json_str(st->last_boot);
	else
		printf("null");
	if (st->last_boot_at)
		printf(",\"last_boot_at\":%" PRIu64 ",\"last_boot_at_local\":\"%s\"", st->last_boot_at,
		       cli_time(st->last_boot_at, t));
	else
		printf(",\"last_boot_at\":null,\"last_boot_at_local\":null");
	printf(",\"unreadable\":[");
	for (size_t i = 0; i < st->n_unreadable; i++) {
		printf("%s", i ? "," : "");
		cli_json_str(st->unreadable[i]);
	}
	printf("]}\n");
}

void cli_print_dpkg(const SvcFileStatus *f)
{
	const SvcDpkgFile *d = &f->dpkg;
	if (d->package) {
		printf("    dpkg: %s %s, md5sum %s", d->package, d->version ? d->version : "?",
		       svc_dpkg_sum_name(d->sum));
		if (d->sum == SVC_DPKG_DIFFERS)
			printf(d->accounted ? ": svc's coldpatch of %s\n"
					    : ": NOT accounted for by svc (level %s)\n", f->level);
		else
			printf("\n");
	}
	if (d->divert == SVC_DPKG_NOT_DIVERTED)
		return;
	printf("    diversion: %s -> %s %s%s: ", d->divert_from, d->divert_to,
	       d->divert_by ? "by " : "(local)", d->divert_by ? d->divert_by : "");
	if (d->divert == SVC_DPKG_DIVERTED)
		printf("the file here is %s%s, the packaged one is %s\n",
		       d->package ? d->package : "no package's", d->package ? "'s" : "", d->divert_to);
	else if (d->package)
		printf("the file here is %s's %s\n", d->package, d->divert_from);
	else
		printf("no other package ships %s\n", d->divert_from);
}


void cli_print_files(const SvcStatus *st, const char *only_fix)
{
	printf("%-40s %-14s %-10s %s\n", "FILE", "LEVEL", "CONVERGED", "PROCESSES");
	for (size_t i = 0; i < st->n_files; i++) {
		const SvcFileStatus *f = &st->files[i];
		if (only_fix && !svc_status_file_has_fix(st, f, only_fix))
			continue;
		printf("%-40s %-14s %-10s", f->path, f->level,
		       f->converged < 0 ? "unknown" : f->converged ? "yes" : "NO");
		for (size_t k = 0; k < f->n_users; k++)
			printf(" %d(%s:%s%s)", (int)f->users[k].pid, f->users[k].comm,
			       f->users[k].level, f->users[k].hot ? ",in memory" : "");
		printf("\n");
		for (size_t k = 0; k < f->n_users; k++)
			if (f->users[k].stale[0])
				printf("    pid %d not converged: %s\n", (int)f->users[k].pid,
				       f->users[k].stale);
		cli_print_dpkg(f);
	}
}

static void print_status(const SvcStatus *st)
{
	char t[32];
	printf("%-20s %-17s %-12s %-5s %s\n", "FIX", "STATE", "SERIES", "SEQ", "SINCE");
	for (size_t i = 0; i < st->n_fixes; i++) {
		const SvcFixStatus *f = &st->fixes[i];
		printf("%-20s %-17s %-12s %-5" PRIu64 " %s\n", f->id, f->state, f->series, f->sequence,
		       cli_time(f->created, t));
		if (f->reason)
			printf("    reason: %s\n", f->reason);
		if (f->superseded_by)
			printf("    superseded by %s %s\n", f->superseded_by, f->superseded_version);
	}
	if (!st->n_fixes)
		printf("(no fixes)\n");
	printf("\n");
	cli_print_files(st, NULL);
	for (size_t i = 0; i < st->n_unreadable; i++)
		printf("unreadable record: %s\n", st->unreadable[i]);
	if (st->last_boot_at)
		printf("\nlast boot replay, %s: %s\n%s", cli_time(st->last_boot_at, t),
		       svc_boot_result_name(st->last_boot_result), st->last_boot_lines);
	else if (st->last_boot)
		printf("\nlast boot replay:\n%s", st->last_boot);
}

int cli_read_status(Cli *c, SvcStatus *ret)
{
	Svc *s = NULL;
	BaseErr e = { 0 };
	c->opt.read_only = 1; /* status creates nothing, takes no lock */
	int r = cli_open(c, &s);
	if (r != EXIT_OK)
		return r;
	int x = svc_status(s, ret, &e);
	svc_close(s);
	return x < 0 ? cli_fail(c, &e, x) : EXIT_OK;
}

static int cmd_status(Cli *c, int argc, char **argv)
{
	SvcStatus st = { 0 };
	int r = cli_no_words(c, argc, argv);
	if (r == EXIT_OK)
		r = cli_read_status(c, &st);
	if (r != EXIT_OK)
		return r;
	c->json ? print_status_json(&st) : print_status(&st);
	if (st.n_unknown_procs) {
		fprintf(stderr, "svc: %zu process%s could not be read: convergence unknown\n",
			st.n_unknown_procs, st.n_unknown_procs == 1 ? "" : "es");
		r = EXIT_RESTART;
	}
	svc_status_free(&st);
	return r;
}

const CliCmd cli_cmd_status = {
	.name = "status",
	.synopsis = "[--json]",
	.summary = "fixes, serviced files, and the processes using them",
	.help = "Every fix with its state, every serviced file with its SHA-256 and fix\n"
		"level, each process mapping it with the level it runs, the package\n"
		"owning it (dpkg) and whether its md5sum matches, and the record of the\n"
		"last 'svc boot'.\n",
	.flags = CLI_JSON,
	.run = cmd_status,
};

const CliCmd cli_cmd_list = {
	.name = "list",
	.synopsis = "[--json]",
	.summary = "same as status",
	.flags = CLI_JSON,
	.run = cmd_status,
};
