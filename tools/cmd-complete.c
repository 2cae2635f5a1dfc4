/* svc __complete commands | options CMD | ids: what the bash completion
 * (tools/completion/svc.bash) offers, from the command table and the ledger,
 * so the completion never drifts from svc.  Hidden from `svc help`. */
#include <stdio.h>
#include <string.h>

#include "tools/cli.h"

/* --NAME, or --NAME= when it takes a value; --json only where it applies */
static void print_options(const struct option *o, unsigned flags)
{
	for (; o && o->name; o++)
		if (strcmp(o->name, "version") != 0 && (strcmp(o->name, "json") != 0 || (flags & CLI_JSON)))
			printf("--%s%s\n", o->name, o->has_arg == required_argument ? "=" : "");
}

static int cmd_complete(Cli *c, int argc, char **argv)
{
	int o;
	while ((o = cli_getopt(c, argc, argv)) != -1)
		if (o == CLI_STOP)
			return c->rc;
	const char *what = optind < argc ? argv[optind] : "";
	if (strcmp(what, "commands") == 0 && argc - optind == 1) {
		for (const CliCmd *const *k = cli_commands; *k; k++)
			if (!((*k)->flags & CLI_HIDDEN))
				printf("%s\n", (*k)->name);
		return EXIT_OK;
	}
	if (strcmp(what, "options") == 0 && argc - optind == 2) {
		const CliCmd *cmd = cli_find(argv[optind + 1]);
		if (!cmd)
			return cli_usage(c, "unknown command '%s'", argv[optind + 1]);
		print_options(cmd->opts, cmd->flags);
		print_options(cli_global_options, cmd->flags);
		return EXIT_OK;
	}
	if (strcmp(what, "ids") == 0 && argc - optind == 1) {
		SvcStatus st = { 0 };
		int r = cli_read_status(c, &st);
		if (r != EXIT_OK)
			return r;
		for (size_t i = 0; i < st.n_fixes; i++)
			printf("%s\n", st.fixes[i].id);
		svc_status_free(&st);
		return EXIT_OK;
	}
	return cli_usage(c, "__complete takes commands, options CMD or ids");
}

const CliCmd cli_cmd___complete = {
	.name = "__complete",
	.synopsis = "commands | options COMMAND | ids",
	.summary = "what the bash completion offers (internal)",
	.flags = CLI_HIDDEN,
	.run = cmd_complete,
};
