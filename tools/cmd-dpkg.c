/* svc verify, svc reconcile: svc beside dpkg and apt (docs/operations.md). */
#include <stdio.h>

#include "tools/cli.h"

/* Neither takes an argument: only options. */
static int no_words(Cli *c, int argc, char **argv)
{
	int o;
	while ((o = cli_getopt(c, argc, argv)) != -1)
		if (o == CLI_STOP)
			return c->rc;
	for (int i = optind; i < argc; i++)
		if (!cli_slash_option(c, argv[i]))
			return cli_usage(c, "unexpected argument '%s'", argv[i]);
	return EXIT_OK;
}

/* Each serviced file dpkg owns whose content is not dpkg's, explained. */
static int cmd_verify(Cli *c, int argc, char **argv)
{
	Svc *s = NULL;
	SvcStatus st = { 0 };
	BaseErr e = { 0 };
	size_t owned = 0, differ = 0;
	int r = no_words(c, argc, argv);
	c->opt.read_only = 1; /* verify only reads, like status */
	if (r == EXIT_OK)
		r = cli_open(c, &s);
	if (r != EXIT_OK)
		return r;
	int unaccounted = svc_verify(s, &st, &e);
	svc_close(s);
	if (unaccounted < 0)
		return cli_fail(c, &e, unaccounted);
	for (size_t i = 0; i < st.n_files; i++) {
		const SvcFileStatus *f = &st.files[i];
		owned += f->dpkg.package != NULL;
		if (!f->dpkg.package || f->dpkg.sum == SVC_DPKG_MATCHES)
			continue;
		differ++;
		printf("%s\n", f->path);
		cli_print_dpkg(f);
	}
	if (!c->quiet)
		printf("%zu serviced file%s, %zu owned by dpkg, %zu not as dpkg installed %s: %s\n",
		       st.n_files, st.n_files == 1 ? "" : "s", owned, differ,
		       differ == 1 ? "it" : "them",
		       unaccounted ? "some NOT accounted for by svc" : "all accounted for by svc");
	svc_status_free(&st);
	return unaccounted ? EXIT_RESTART : EXIT_OK;
}

static int cmd_reconcile(Cli *c, int argc, char **argv)
{
	Svc *s = NULL;
	SvcReport rep = { 0 };
	BaseErr e = { 0 };
	int r = no_words(c, argc, argv);
	if (r == EXIT_OK)
		r = cli_open(c, &s);
	if (r != EXIT_OK)
		return r;
	int x = svc_reconcile(s, &rep, &e);
	svc_close(s);
	if (x < 0)
		return cli_fail(c, &e, x);
	cli_print_report(c, &rep);
	svc_report_free(&rep);
	return x == SVC_RESTART ? EXIT_RESTART : EXIT_OK;
}

const CliCmd cli_cmd_verify = {
	.name = "verify",
	.synopsis = "",
	.summary = "explain dpkg's md5sum mismatches of serviced files",
	.help = "Every serviced file a package owns whose content differs from dpkg's\n"
		"md5sum, and whether svc accounts for it (the file is a fix's coldpatch).\n"
		"Exit 0: svc accounts for every one; 3: some file differs for another reason.\n",
	.run = cmd_verify,
};

const CliCmd cli_cmd_reconcile = {
	.name = "reconcile",
	.synopsis = "",
	.summary = "catch up after apt/dpkg replaced serviced files (the apt hook)",
	.help = "Mark each fix whose targets the package manager replaced superseded\n"
		"(with the package and version), cancel its pending swaps, remove its\n"
		"backups and kept payloads (and those of rolled-back fixes no process runs),\n"
		"and name every process still running a replaced file.  Idempotent; prints\n"
		"nothing when there is nothing to say.  Exit 3: a process still runs a\n"
		"replaced file, or a change svc cannot account for was left alone.\n",
	.run = cmd_reconcile,
};
