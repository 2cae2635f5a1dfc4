/* The svc command line: the command table and what the commands share.
 *
 * tools/svc.c holds main, the global options and the dispatch; each command
 * is one thin function in a tools/cmd-*.c file (parse its own options, call
 * the library, print).  Adding a command: write its CliCmd in a cmd-*.c file
 * and add one X(...) line to CLI_COMMANDS below. */
#ifndef TOOLS_CLI_H
#define TOOLS_CLI_H

#include <getopt.h>
#include <stdio.h>
#include <stdint.h>

#include "svc/svc.h"

/* Exit codes (docs/cli.md). */
enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_RESTART = 3, EXIT_QUARANTINED = 4 };

/* The dispatch table, in the order `svc help` lists it.  X(variable): the
 * command's `const CliCmd cli_cmd_<variable>`. */
#define CLI_COMMANDS(X)                                                                          \
	X(install)                                                                               \
	X(rollback)                                                                              \
	X(boot)                                                                                  \
	X(status)                                                                                \
	X(list)                                                                                  \
	X(metrics)                                                                               \
	X(verify)                                                                                \
	X(reconcile)                                                                             \
	X(keygen)                                                                                \
	X(pack)                                                                                  \
	X(build)                                                                                 \
	X(inspect)                                                                               \
	X(hotpatch)                                                                              \
	X(converge)                                                                              \
	X(help)                                                                                  \
	X(__complete)

enum {
	CLI_JSON = 1u << 0,   /* the command has --json output */
	CLI_HIDDEN = 1u << 1, /* not listed by `svc help` (internal helpers) */
};

typedef struct Cli Cli;

typedef struct CliCmd {
	const char *name;
	const char *synopsis;  /* after "svc NAME"; lines after the first start with spaces */
	const char *summary;   /* one line for `svc help` */
	const char *help;      /* `svc help NAME`: a few lines more, or NULL */
	unsigned flags;        /* CLI_* */
	const struct option *opts;  /* its own options (getopt_long form), or NULL */
	int (*run)(Cli *c, int argc, char **argv);  /* argv[0] is the command name */
} CliCmd;

#define CLI_DECLARE(v) extern const CliCmd cli_cmd_##v;
CLI_COMMANDS(CLI_DECLARE)
#undef CLI_DECLARE

struct Cli {
	SvcOptions opt;        /* --root, --wait, progress */
	int quiet;             /* --quiet, /quiet */
	int json;              /* --json */
	int rc;                /* exit code when cli_getopt returns CLI_STOP */
	const CliCmd *cmd;     /* the command running (NULL while reading global options) */
};

/* The command table and its lookup, the global options (tools/svc.c). */
extern const CliCmd *const cli_commands[];
extern const struct option cli_global_options[];
const CliCmd *cli_find(const char *name);

#define CLI_STOP (-2)
/* getopt_long over the running command's options (c->cmd->opts) plus the
 * global ones (handled here, before or after the command's words).  Returns a command option's
 * value, -1 at the end (the words are argv[optind..argc-1]), or CLI_STOP:
 * return c->rc (a usage error was printed, or --help answered). */
int cli_getopt(Cli *c, int argc, char **argv);
/* A word that is a Windows-style global option (/quiet): consumed, 1. */
int cli_slash_option(Cli *c, const char *word);
/* A command without words (only global options and /quiet): EXIT_OK, or
 * the exit code of a usage error already printed. */
int cli_no_words(Cli *c, int argc, char **argv);
/* Parse a whole number in [min, max] for option opt; usage error otherwise. */
int cli_number(Cli *c, const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* The processes named by --pid PID... (hotpatch, converge). */
#define CLI_MAX_PIDS 4096
typedef struct CliPids {
	pid_t v[CLI_MAX_PIDS];
	size_t n;
} CliPids;
/* One --pid value added to p; a usage error (and -EINVAL) when it is not a
 * PID or there are too many. */
int cli_pid(Cli *c, const char *s, CliPids *p);

/* The signing options of pack and build (tools/cli-sign.c): put
 * CLI_SIGN_OPTIONS in the command's option table (it owns the letters
 * k o i s n m) and hand every option to cli_sign_option first. */
#define CLI_SIGN_OPTIONS                                                                         \
	{ "key", required_argument, NULL, 'k' }, { "out", required_argument, NULL, 'o' },       \
	{ "id", required_argument, NULL, 'i' }, { "series", required_argument, NULL, 's' },     \
	{ "seq", required_argument, NULL, 'n' }, { "summary", required_argument, NULL, 'm' }
typedef struct CliSign {
	SvcSignSpec spec;
	int have_seq;
} CliSign;
/* 1: o was a signing option, taken; 0: not one; -EINVAL: a usage error
 * was printed (return c->rc). */
int cli_sign_option(Cli *c, int o, const char *arg, CliSign *s);
/* Every signing option but --summary given? */
int cli_sign_complete(const CliSign *s);

/* A hotpatch pool's reports, per process (tools/cmd-hotpatch.c). */
void cli_print_run(Cli *c, const SvcHpRun *run, const char *verb);

/* Errors: "svc: <why> (see 'svc help CMD')" on stderr, EXIT_USAGE. */
int cli_usage(Cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A library failure: its message on stderr, EXIT_FAILED. */
int cli_fail(Cli *c, const BaseErr *e, int r);
/* The usage and help of one command (`svc help CMD`, `svc CMD --help`). */
void cli_print_help(const CliCmd *cmd, FILE *out);
void cli_print_overview(FILE *out);

/* Open the engine with the global options (progress on a terminal). */
int cli_open(Cli *c, Svc **ret);
/* The status of --root, read-only (creates nothing); EXIT_OK or the error
 * printed and its exit code. */
int cli_read_status(Cli *c, SvcStatus *ret);

/* Printing helpers (tools/cli-print.c). */
void cli_json_str(const char *s);
void cli_print_report(Cli *c, const SvcReport *rep);
/* install/rollback --json: the report as one object; r is the engine's result. */
void cli_print_report_json(const SvcReport *rep, int r);
void cli_print_files(const SvcStatus *st, const char *only_fix);
/* Epoch seconds as ISO 8601 local time with its UTC offset,
 * e.g. 2026-12-02T11:05:09+01:00 ("-" for 0). */
const char *cli_time(uint64_t epoch, char buf[32]);
/* "    dpkg: PKG VERSION, md5sum ...": a serviced file's owner, and
 * "    diversion: ..." when dpkg-divert names it (tools/cmd-status.c). */
void cli_print_dpkg(const SvcFileStatus *f);

#endif
