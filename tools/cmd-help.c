/* svc help [COMMAND]: the overview and each command's own usage, from the
 * command table (the man page svc(8) has the whole story). */
#include <stdio.h>

#include "tools/cli.h"

static const char global_usage[] =
	"global options (before or after the command):\n"
	"  --root DIR      operate on the system rooted at DIR (default /)\n"
	"  --wait SECONDS  wait that long for the transaction lock\n"
	"  --quiet         print only errors and warnings (also /quiet)\n"
	"  --json          machine-readable output (status, list, hotpatch)\n"
	"exit codes: 0 done, 1 failed (nothing changed), 2 usage,\n"
	"            3 done but restart required, 4 (boot) a transaction quarantined\n";

void cli_print_help(const CliCmd *cmd, FILE *out)
{
	fprintf(out, "usage: svc %s%s%s\n", cmd->name, cmd->synopsis[0] ? " " : "", cmd->synopsis);
	fprintf(out, "\n%s.\n", cmd->summary);
	if (cmd->help)
		fprintf(out, "\n%s", cmd->help);
	fprintf(out, "\nglobal options: --root DIR, --wait SECONDS, --quiet%s (see 'svc help')\n"
		     "more: man 8 svc\n",
		cmd->flags & CLI_JSON ? ", --json" : "");
}

void cli_print_overview(FILE *out)
{
	fprintf(out, "usage: svc [--root DIR] [--wait SECONDS] [--quiet] [--json] COMMAND [ARGS]\n"
		     "       svc --version\n\ncommands:\n");
	for (const CliCmd *const *c = cli_commands; *c; c++)
		if (!((*c)->flags & CLI_HIDDEN))
			fprintf(out, "  %-10s %s\n", (*c)->name, (*c)->summary);
	fprintf(out, "\n%s\n'svc help COMMAND' or 'svc COMMAND --help': the usage of one command;\n"
		     "man 8 svc: everything.\n",
		global_usage);
}

static int cmd_help(Cli *c, int argc, char **argv)
{
	int o;
	while ((o = cli_getopt(c, argc, argv)) != -1)
		if (o == CLI_STOP)
			return c->rc;
	if (optind == argc) {
		cli_print_overview(stdout);
		return EXIT_OK;
	}
	if (argc - optind > 1)
		return cli_usage(c, "unexpected argument '%s'", argv[optind + 1]);
	const CliCmd *cmd = cli_find(argv[optind]);
	if (!cmd)
		return cli_usage(c, "unknown command '%s'", argv[optind]);
	cli_print_help(cmd, stdout);
	return EXIT_OK;
}

const CliCmd cli_cmd_help = {
	.name = "help",
	.synopsis = "[COMMAND]",
	.summary = "the commands, or the usage of one",
	.run = cmd_help,
};
