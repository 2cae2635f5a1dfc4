/* svc converge: re-check the processes a hotpatch left not converged. */
#include <stdio.h>

#include "tools/cli.h"

static const struct option converge_opts[] = {
	{ "pid", required_argument, NULL, 'p' },
	{ 0 },
};

static int cmd_converge(Cli *c, int argc, char **argv)
{
	static CliPids pids;
	int o;
	BaseErr e = { 0 };
	while ((o = cli_getopt(c, argc, argv)) != -1) {
		switch (o) {
		case CLI_STOP: return c->rc;
		case 'p':
			if (cli_pid(c, optarg, &pids) < 0)
				return c->rc;
			break;
		}
	}
	if (optind < argc)
		return cli_usage(c, "unexpected argument '%s'", argv[optind]);
	SvcHpRun run = { 0 };
	/* --wait SECONDS is the global option: here, how long the threads get */
	int r = svc_hp_converge(pids.n ? pids.v : NULL, pids.n, (uint32_t)c->opt.wait_lock_ms, &run, &e);
	if (r < 0)
		return cli_fail(c, &e, r);
	cli_print_run(c, &run, "converged");
	svc_hp_run_free(&run);
	return r ? EXIT_RESTART : EXIT_OK;
}

const CliCmd cli_cmd_converge = {
	.name = "converge",
	.synopsis = "[--pid PID...] [--wait SECONDS] [--json]",
	.summary = "re-check processes a hotpatch left not converged",
	.help = "A patched process is converged once no thread runs the replaced code\n"
		"(or, after a revert, the fix's code).  converge stops each process that\n"
		"is not (or the given PIDs), looks at every thread's frames again, waiting\n"
		"up to --wait SECONDS (0: one look) for them to leave, and records the\n"
		"answer in the process.  Exit 0: all converged; 3: some still not.\n",
	.flags = CLI_JSON,
	.opts = converge_opts,
	.run = cmd_converge,
};
