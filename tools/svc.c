/* svc — command-line front end: the global options and the dispatch to the
 * command table (tools/cli.h).  The commands live in tools/cmd-*.c.
 * Exit codes (docs/cli.md): 0 done, 1 failed (nothing changed), 2 usage,
 * 3 done but restart required, 4 (boot) quarantined. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "tools/cli.h"

#ifndef SVC_VERSION
#error "SVC_VERSION comes from the top-level VERSION file (see Makefile)"
#endif

#define CLI_ENTRY(v) &cli_cmd_##v,
const CliCmd *const cli_commands[] = { CLI_COMMANDS(CLI_ENTRY) NULL };
#undef CLI_ENTRY

const CliCmd *cli_find(const char *name)
{
	for (const CliCmd *const *c = cli_commands; *c; c++)
		if (strcmp((*c)->name, name) == 0)
			return *c;
	return NULL;
}

/* The global options: values above any character a command uses. */
enum { OPT_ROOT = 0x100, OPT_WAIT, OPT_QUIET, OPT_JSON, OPT_HELP, OPT_VERSION };
const struct option cli_global_options[] = {
	{ "root", required_argument, NULL, OPT_ROOT },
	{ "wait", required_argument, NULL, OPT_WAIT },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ 0 },
};
#define N_GLOBAL 6
#define MAX_CMD_OPTS 32

static const char *help_hint(const Cli *c)
{
	static char hint[64];
	if (!c->cmd)
		return "'svc help'";
	snprintf(hint, sizeof(hint), "'svc help %s'", c->cmd->name);
	return hint;
}

int cli_usage(Cli *c, const char *fmt, ...)
{
	va_list ap;
	fputs("svc: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see %s)\n", help_hint(c));
	c->rc = EXIT_USAGE;
	return EXIT_USAGE;
}

/* The next step after a failure, where there is one: appended to the one
 * error line as "; next: ...". */
static const char *next_step(const Cli *c, int r, char *buf, size_t n)
{
	const char *root = c->opt.root ? c->opt.root : "/";
	const char *sep = root[0] && root[strlen(root) - 1] == '/' ? "" : "/";
	switch (r) {
	case -BASE_E_UNTRUSTED:
		snprintf(buf, n, "copy the vendor's public key (its .pub file, from svc keygen) to "
			 "%s%setc/svc/trusted/", root, sep);
		return buf;
	case -BASE_E_LOCKED: return "wait for it to finish, or give svc --wait SECONDS";
	case -EACCES:
	case -EPERM: return geteuid() != 0 ? "run svc as root" : NULL;
	default: return NULL;
	}
}

int cli_fail(Cli *c, const BaseErr *e, int r)
{
	char buf[4200];
	const char *next = next_step(c, r, buf, sizeof(buf));
	fprintf(stderr, "svc: %s%s%s\n", e->msg[0] ? e->msg : base_strerror(r), next ? "; next: " : "",
		next ? next : "");
	return EXIT_FAILED;
}

int cli_number(Cli *c, const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	char *end = NULL;
	errno = 0;
	unsigned long long v = s[0] >= '0' && s[0] <= '9' ? strtoull(s, &end, 10) : 0;
	if (!end || *end || errno || v < min || v > max) {
		cli_usage(c, "%s takes a whole number from %llu to %llu, not '%s'", opt,
			  (unsigned long long)min, (unsigned long long)max, s);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

int cli_pid(Cli *c, const char *s, CliPids *p)
{
	uint64_t v;
	if (p->n == CLI_MAX_PIDS) {
		cli_usage(c, "at most %d --pid", CLI_MAX_PIDS);
		return -EINVAL;
	}
	if (cli_number(c, "--pid", s, 1, INT32_MAX, &v) < 0)
		return -EINVAL;
	p->v[p->n++] = (pid_t)v;
	return 0;
}

int cli_slash_option(Cli *c, const char *word)
{
	if (strcasecmp(word, "/quiet") == 0) {
		c->quiet = 1;
		return 1;
	}
	return 0;
}

int cli_no_words(Cli *c, int argc, char **argv)
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

/* The word getopt stopped at: the option as the user wrote it. */
static const char *offending(char **argv)
{
	if (optopt && optopt < 0x100) {
		static char s[3] = "-?";
		s[1] = (char)optopt;
		return s;
	}
	return argv[optind - 1];
}

int cli_getopt(Cli *c, int argc, char **argv)
{
	const struct option *opts = c->cmd ? c->cmd->opts : NULL;
	struct option all[MAX_CMD_OPTS + N_GLOBAL + 1];
	size_t n = 0;
	for (; opts && opts[n].name && n < MAX_CMD_OPTS; n++)
		all[n] = opts[n];
	memcpy(&all[n], cli_global_options, (N_GLOBAL + 1) * sizeof(all[0]));

	for (;;) {
		/* before the command: stop at its name ('+'); after it, options and
		 * words mix in any order.  ':' reports a missing value apart. */
		int o = getopt_long(argc, argv, c->cmd ? ":h" : "+:h", all, NULL);
		uint64_t v;
		switch (o) {
		case OPT_ROOT:
			if (!optarg[0])
				return cli_usage(c, "--root needs a directory"), CLI_STOP;
			c->opt.root = optarg;
			break;
		case OPT_WAIT:
			if (cli_number(c, "--wait", optarg, 0, INT32_MAX / 1000, &v) < 0)
				return CLI_STOP;
			c->opt.wait_lock_ms = (int)v * 1000;
			break;
		case OPT_QUIET: c->quiet = 1; break;
		case OPT_JSON:
			if (c->cmd && !(c->cmd->flags & CLI_JSON))
				return cli_usage(c, "%s has no --json output", c->cmd->name), CLI_STOP;
			c->json = 1;
			break;
		case 'h':
		case OPT_HELP:
			if (c->cmd)
				cli_print_help(c->cmd, stdout);
			else
				cli_print_overview(stdout);
			c->rc = EXIT_OK;
			return CLI_STOP;
		case OPT_VERSION:
			printf("svc %s\n", SVC_VERSION);
			c->rc = EXIT_OK;
			return CLI_STOP;
		case ':':
			return cli_usage(c, "option '%s' needs a value", offending(argv)), CLI_STOP;
		case '?':
			return cli_usage(c, "unknown option '%s'", offending(argv)), CLI_STOP;
		default: return o;
		}
	}
}

static void show_progress(void *ctx, const char *what, size_t done, size_t total)
{
	(void)ctx;
	/* on a terminal: one line rewritten in place, ended when done */
	fprintf(stderr, "\r%s: %zu/%zu%s", what, done, total, done == total ? "\n" : "");
	fflush(stderr);
}

int cli_open(Cli *c, Svc **ret)
{
	BaseErr e = { 0 };
	if (!c->quiet && isatty(2))
		c->opt.progress = show_progress;
	int r = svc_open(&c->opt, ret, &e);
	if (r == -ENOENT || r == -ENOTDIR) {
		fprintf(stderr, "svc: %s; next: --root takes the directory a system is rooted at\n",
			e.msg);
		return EXIT_FAILED;
	}
	return r < 0 ? cli_fail(c, &e, r) : EXIT_OK;
}

int main(int argc, char **argv)
{
	Cli c = { .opt = { .root = "/" } };

	/* global options before the command */
	optind = 0;
	opterr = 0;
	int o = cli_getopt(&c, argc, argv);
	if (o == CLI_STOP)
		return c.rc;
	if (optind >= argc)
		return cli_usage(&c, "no command");
	for (; optind < argc && cli_slash_option(&c, argv[optind]); optind++)
		;
	if (optind >= argc)
		return cli_usage(&c, "no command");
	const char *name = argv[optind];
	c.cmd = cli_find(name);
	if (!c.cmd)
		return cli_usage(&c, "unknown command '%s'", name);
	if (c.json && !(c.cmd->flags & CLI_JSON))
		return cli_usage(&c, "%s has no --json output", c.cmd->name);
	/* the command parses its own options (and global ones) from its name on */
	int first = optind;
	optind = 0;
	return c.cmd->run(&c, argc - first, argv + first);
}
