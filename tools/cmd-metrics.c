/* svc metrics [--textfile-dir DIR]: the status as Prometheus text (svc/metrics.c),
 * on stdout or atomically into DIR/svc.prom for node_exporter (docs/fleet.md). */
#include <stdio.h>

#include "tools/cli.h"

static const struct option metrics_opts[] = {
	{ "textfile-dir", required_argument, NULL, 'd' },
	{ 0 },
};

static int cmd_metrics(Cli *c, int argc, char **argv)
{
	const char *dir = NULL;
	int o;
	while ((o = cli_getopt(c, argc, argv)) != -1) {
		if (o == CLI_STOP)
			return c->rc;
		if (o == 'd')
			dir = optarg;
	}
	for (int i = optind; i < argc; i++)
		if (!cli_slash_option(c, argv[i]))
			return cli_usage(c, "unexpected argument '%s'", argv[i]);

	Svc *s = NULL;
	BaseErr e = { 0 };
	BaseBuf out = { 0 };
	c->opt.read_only = 1; /* only reads: no lock, never waits for a transaction */
	int r = cli_open(c, &s);
	if (r != EXIT_OK)
		return r;
	int x = dir ? svc_metrics_write(s, dir, &e) : svc_metrics(s, &out, &e);
	svc_close(s);
	if (x < 0)
		return cli_fail(c, &e, x);
	if (out.data)
		fwrite(out.data, 1, out.len, stdout);
	base_buf_free(&out);
	return EXIT_OK;
}

const CliCmd cli_cmd_metrics = {
	.name = "metrics",
	.synopsis = "[--textfile-dir DIR]",
	.summary = "the status as Prometheus metrics (for node_exporter)",
	.help = "Fix states, serviced files, processes per file by fix level, the\n"
		"processes not converged, the last boot replay.  With --textfile-dir,\n"
		"written atomically as DIR/svc.prom (node_exporter's textfile collector).\n",
	.opts = metrics_opts,
	.run = cmd_metrics,
};
