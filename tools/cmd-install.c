/* svc install, rollback, boot: the commands that run a transaction and
 * print what it did, then the convergence table of the files it touched. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "tools/cli.h"

enum { TXN_INSTALL, TXN_ROLLBACK, TXN_BOOT };

/* What install and rollback share, said once: their options and the help
 * of those options. */
#define TXN_OPTIONS { "hotpatch", no_argument, NULL, 'H' }, { "dry-run", no_argument, NULL, 'n' }
#define TXN_HELP                                                                                 \
	"--dry-run: verify fully and say what would be done, changing nothing\n"                 \
	"(exit code as the run would have).  --json: the report as one object\n"                 \
	"(\"changed\": false when nothing was, or would be, changed).\n"

static const struct option install_opts[] = {
	TXN_OPTIONS,
	{ "allow-older", no_argument, NULL, 'O' },
	{ 0 },
};

static const struct option rollback_opts[] = { TXN_OPTIONS, { 0 } };

static int run_report(Cli *c, Svc *s, int r, SvcReport *rep, const BaseErr *e)
{
	SvcStatus st = { 0 };
	if (r < 0)
		return cli_fail(c, e, r);
	if (c->json)
		cli_print_report_json(rep, r);
	else
		cli_print_report(c, rep);
	if (!c->json && !c->quiet && rep->dry_run)
		printf("(dry run: nothing was changed)\n");
	if (rep->refused) {
		/* a dry run found what a real run would refuse: that is its error */
		svc_report_free(rep);
		return cli_fail(c, e, e->code);
	}
	if (!c->json && !c->quiet && !rep->dry_run && rep->package &&
	    svc_status(s, &st, NULL) >= 0) {
		printf("\n");
		cli_print_files(&st, rep->package);
		svc_status_free(&st);
	}
	svc_report_free(rep);
	return r == SVC_RESTART ? EXIT_RESTART : EXIT_OK;
}

static int looks_like_package(const char *arg)
{
	size_t n = strlen(arg);
	return n > 4 && strcmp(arg + n - 4, ".hfx") == 0;
}

static int run_txn(Cli *c, int argc, char **argv, int kind)
{
	const char *arg = NULL;
	unsigned flags = 0;
	int o;

	while ((o = cli_getopt(c, argc, argv)) != -1) {
		if (o == CLI_STOP)
			return c->rc;
		if (o == 'H')
			flags |= SVC_HOTPATCH;
		if (o == 'n')
			flags |= SVC_DRY_RUN;
		if (o == 'O')
			flags |= SVC_ALLOW_OLDER;
	}
	for (int i = optind; i < argc; i++) {
		if (cli_slash_option(c, argv[i]))
			continue;
		if (kind != TXN_BOOT && strcasecmp(argv[i], "/hotpatch:enable") == 0)
			flags |= SVC_HOTPATCH;
		else if (kind != TXN_BOOT && strcasecmp(argv[i], "/hotpatch:disable") == 0)
			flags &= ~SVC_HOTPATCH;
		else if (argv[i][0] == '/' && strchr(argv[i], ':') && kind == TXN_BOOT)
			return cli_usage(c, "'%s' goes with install or rollback", argv[i]);
		else if (!arg && kind != TXN_BOOT)
			arg = argv[i];
		else
			return cli_usage(c, "unexpected argument '%s'", argv[i]);
	}
	if (kind != TXN_BOOT && !arg)
		return cli_usage(c, "%s needs %s", c->cmd->name,
				 kind == TXN_INSTALL ? "a package file" : "a fix id");
	if (kind == TXN_ROLLBACK && (strchr(arg, '/') || looks_like_package(arg)))
		return cli_usage(c, "rollback takes a fix id, e.g. FIX-1, not the file '%s' "
				 "('svc status' lists the ids)", arg);

	Svc *s = NULL;
	SvcReport rep = { 0 };
	BaseErr e = { 0 };
	/* a dry run only reads: no lock, no state directory created */
	c->opt.read_only = (flags & SVC_DRY_RUN) != 0;
	int r = cli_open(c, &s);
	if (r != EXIT_OK)
		return r;
	if (kind == TXN_INSTALL)
		r = run_report(c, s, svc_install(s, arg, flags, &rep, &e), &rep, &e);
	else if (kind == TXN_ROLLBACK)
		r = run_report(c, s, svc_rollback(s, arg, flags, &rep, &e), &rep, &e);
	else {
		int q = svc_boot(s, &rep, &e);
		r = run_report(c, s, q < 0 ? q : 0, &rep, &e);
		if (q > 0)
			r = EXIT_QUARANTINED; /* the rest was applied; say so in the exit code */
	}
	svc_close(s);
	return r;
}

static int cmd_install(Cli *c, int argc, char **argv)
{
	return run_txn(c, argc, argv, TXN_INSTALL);
}

static int cmd_rollback(Cli *c, int argc, char **argv)
{
	return run_txn(c, argc, argv, TXN_ROLLBACK);
}

static int cmd_boot(Cli *c, int argc, char **argv)
{
	return run_txn(c, argc, argv, TXN_BOOT);
}

const CliCmd cli_cmd_install = {
	.name = "install",
	.synopsis = "PKG [/hotpatch:enable | --hotpatch] [--allow-older] [--dry-run] [--json]",
	.summary = "verify and install a fix package (with /hotpatch:enable: live too)",
	.help = "Verify PKG (signature, member hashes, sequence) and swap its files;\n"
		"a file in use is swapped at the next 'svc boot' (exit 3).  With\n"
		"/hotpatch:enable (or --hotpatch) every process using a target is patched\n"
		"in memory and the files are swapped at once (/hotpatch:disable undoes it).\n"
		"A sequence at or below the series' high-water mark (the highest any\n"
		"other fix of the series reached, rolled back or not) is refused;\n"
		"--allow-older installs it anyway, with a WARNING line.\n" TXN_HELP,
	.opts = install_opts,
	.flags = CLI_JSON,
	.run = cmd_install,
};

const CliCmd cli_cmd_rollback = {
	.name = "rollback",
	.synopsis = "FIXID [/hotpatch:enable | --hotpatch] [--dry-run] [--json]",
	.summary = "reverse an installed fix, or cancel a pending one",
	.help = "Swap the backups of FIXID back in (at once, or at boot while in use);\n"
		"processes running the fix from memory are reverted first.\n" TXN_HELP,
	.opts = rollback_opts,
	.flags = CLI_JSON,
	.run = cmd_rollback,
};

const CliCmd cli_cmd_boot = {
	.name = "boot",
	.synopsis = "",
	.summary = "replay pending transactions (early boot)",
	.help = "Roll committed transactions forward, clean up interrupted ones,\n"
		"quarantine torn ones (exit 4).\n",
	.run = cmd_boot,
};
