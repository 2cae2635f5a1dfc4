/* svc — command-line front end: parse arguments, call the library, print.
 * Exit codes (docs/cli.md): 0 done, 1 failed (nothing changed), 2 usage,
 * 3 done but restart required. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "manifest/manifest.h"
#include "svc/svc.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_RESTART = 3, EXIT_QUARANTINED = 4 };

static const char usage_text[] =
	"usage: svc [--root DIR] COMMAND [ARGS]\n"
	"  install PKG [/hotpatch:enable|--hotpatch]\n"
	"                            verify and install a hotfix package; with\n"
	"                            /hotpatch:enable also patch running processes\n"
	"  rollback ID [--hotpatch]  reverse an installed (or cancel a pending) fix\n"
	"  boot                      replay pending transactions (early boot)\n"
	"  status [--json]           fixes, files, and the processes using them\n"
	"  list [--json]             same as status\n"
	"  keygen --out PREFIX       new signing key: PREFIX.key, PREFIX.pub\n"
	"  pack --key KEY --out PKG --id ID --series S --seq N [--summary TEXT]\n"
	"       --target PATH=BASEFILE:NEWFILE            (ship the fixed file whole), or\n"
	"       --target PATH=BASEFILE --objects OLD.o:NEW.o [--objects ...]\n"
	"                                                 (payload + coldpatch from objects)\n"
	"       [--base-build FILE]  (BASEFILE is a coldpatch: the original build)\n"
	"       [--include-coldpatch] [--target ...]\n"
	"  build --source DIR --patch FILE [--patch ...] --target PATH=BASEFILE [...]\n"
	"       --build COMMAND --key KEY --out PKG --id ID --series S --seq N\n"
	"       [--summary TEXT] [--debug-dir DIR] [--keep DIR]\n"
	"  build --deb NAME[=VERSION]|FILE.dsc --patch FILE ... --key ... (no --source,\n"
	"       --build, --target: built as Debian does, targets under --root)\n"
	"                            from a source tree and a patch to a signed fix\n"
	"  inspect FILE              describe a payload, a package or a coldpatch lineage\n"
	"  hotpatch apply PAYLOAD (--pid PID... | --all) [--workers N] [--json]\n"
	"  hotpatch revert FIXID (--pid PID... | --all) [--workers N] [--json]\n"
	"  hotpatch list [--pid PID...] [--json]\n"
	"                            live-patch processes directly (no package, no disk)\n"
	"options: --root DIR (default /), --wait SECONDS (for the lock), --quiet (/quiet)\n"
	"exit codes: 0 done, 1 failed, 2 usage, 3 done but restart required,\n"
	"            4 (boot) replayed, but a transaction was quarantined\n";

static int usage(const char *why)
{
	if (why)
		fprintf(stderr, "svc: %s\n", why);
	fputs(usage_text, stderr);
	return EXIT_USAGE;
}

static int fail(const BaseErr *e, int r)
{
	fprintf(stderr, "svc: %s\n", e->msg[0] ? e->msg : base_strerror(r));
	return EXIT_FAILED;
}

static int quiet;

/* On a terminal: one line rewritten in place, ended when done. */
static void show_progress(void *ctx, const char *what, size_t done, size_t total)
{
	(void)ctx;
	fprintf(stderr, "\r%s: %zu/%zu%s", what, done, total, done == total ? "\n" : "");
	fflush(stderr);
}

static void print_report(const SvcReport *rep)
{
	/* under systemd, stdout is the journal: give each line its priority */
	int journal = getenv("JOURNAL_STREAM") != NULL;
	for (size_t i = 0; i < rep->n_lines; i++) {
		if (quiet && rep->levels[i] > 3)
			continue;
		if (journal)
			printf("<%d>", rep->levels[i]);
		printf("%s\n", rep->lines[i]);
	}
}

static void json_str(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void print_status_json(const SvcStatus *st)
{
	printf("{\"fixes\":[");
	for (size_t i = 0; i < st->n_fixes; i++) {
		const SvcFixStatus *f = &st->fixes[i];
		printf("%s{\"id\":", i ? "," : "");
		json_str(f->id);
		printf(",\"series\":");
		json_str(f->series);
		printf(",\"sequence\":%" PRIu64 ",\"txn\":%" PRIu64 ",\"state\":", f->sequence, f->txn);
		json_str(f->state);
		if (f->reason) {
			printf(",\"reason\":");
			json_str(f->reason);
		}
		printf("}");
	}
	printf("],\"files\":[");
	for (size_t i = 0; i < st->n_files; i++) {
		const SvcFileStatus *f = &st->files[i];
		printf("%s{\"path\":", i ? "," : "");
		json_str(f->path);
		printf(",\"sha256\":");
		json_str(f->sha256);
		printf(",\"level\":");
		json_str(f->level);
		printf(",\"converged\":%s,\"processes\":[", f->converged ? "true" : "false");
		for (size_t k = 0; k < f->n_users; k++) {
			printf("%s{\"pid\":%d,\"comm\":", k ? "," : "", (int)f->users[k].pid);
			json_str(f->users[k].comm);
			printf(",\"maps\":\"%s\",\"level\":", f->users[k].old_version ? "old" : "current");
			json_str(f->users[k].level);
			printf(",\"hotpatched\":%s}", f->users[k].hot ? "true" : "false");
		}
		printf("]}");
	}
	printf("],\"last_boot\":");
	if (st->last_boot)
		json_str(st->last_boot);
	else
		printf("null");
	printf(",\"unreadable\":[");
	for (size_t i = 0; i < st->n_unreadable; i++) {
		printf("%s", i ? "," : "");
		json_str(st->unreadable[i]);
	}
	printf("]}\n");
}

static void print_files(const SvcStatus *st, const char *only_fix)
{
	printf("%-40s %-14s %-10s %s\n", "FILE", "LEVEL", "CONVERGED", "PROCESSES");
	for (size_t i = 0; i < st->n_files; i++) {
		const SvcFileStatus *f = &st->files[i];
		if (only_fix && !svc_status_file_has_fix(st, f, only_fix))
			continue;
		printf("%-40s %-14s %-10s", f->path, f->level, f->converged ? "yes" : "NO");
		for (size_t k = 0; k < f->n_users; k++)
			printf(" %d(%s:%s%s)", (int)f->users[k].pid, f->users[k].comm,
			       f->users[k].level, f->users[k].hot ? ",in memory" : "");
		printf("\n");
	}
}

static void print_status(const SvcStatus *st)
{
	printf("%-20s %-17s %-12s %s\n", "FIX", "STATE", "SERIES", "SEQ");
	for (size_t i = 0; i < st->n_fixes; i++) {
		const SvcFixStatus *f = &st->fixes[i];
		printf("%-20s %-17s %-12s %" PRIu64 "\n", f->id, f->state, f->series, f->sequence);
		if (f->reason)
			printf("    reason: %s\n", f->reason);
	}
	if (!st->n_fixes)
		printf("(no fixes)\n");
	printf("\n");
	print_files(st, NULL);
	for (size_t i = 0; i < st->n_unreadable; i++)
		printf("unreadable record: %s\n", st->unreadable[i]);
	if (st->last_boot)
		printf("\nlast boot replay:\n%s", st->last_boot);
}

/* After an install or rollback: what happened, then the convergence table
 * of the files it touched. */
static int run_report(Svc *s, int r, SvcReport *rep, const BaseErr *e)
{
	SvcStatus st = { 0 };
	if (r < 0)
		return fail(e, r);
	print_report(rep);
	if (!quiet && rep->package && svc_status(s, &st, NULL) >= 0) {
		printf("\n");
		print_files(&st, rep->package);
		svc_status_free(&st);
	}
	svc_report_free(rep);
	return r == SVC_RESTART ? EXIT_RESTART : EXIT_OK;
}

#define MAX_OBJECTS 256

static int cmd_pack(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },     { "out", required_argument, NULL, 'o' },
		{ "id", required_argument, NULL, 'i' },      { "series", required_argument, NULL, 's' },
		{ "seq", required_argument, NULL, 'n' },     { "target", required_argument, NULL, 't' },
		{ "summary", required_argument, NULL, 'm' }, { "objects", required_argument, NULL, 'j' },
		{ "include-coldpatch", no_argument, NULL, 'c' },
		{ "base-build", required_argument, NULL, 'b' }, { 0 },
	};
	SvcPackSpec spec = { 0 };
	SvcPackTarget targets[MANIFEST_MAX_TARGETS];
	SvcObjectPair objects[MAX_OBJECTS];
	size_t n = 0, n_obj = 0;
	int c, have_seq = 0;
	BaseErr e = { 0 };

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k': spec.key = optarg; break;
		case 'o': spec.out = optarg; break;
		case 'i': spec.id = optarg; break;
		case 's': spec.series = optarg; break;
		case 'm': spec.summary = optarg; break;
		case 'c': spec.include_coldpatch = 1; break;
		case 'n': {
			char *end = NULL;
			spec.sequence = strtoull(optarg, &end, 10);
			if (!*optarg || *end || optarg[0] == '-')
				return usage("--seq takes a whole number");
			have_seq = 1;
			break;
		}
		case 't': {
			/* PATH=BASEFILE:NEWFILE (whole file) or PATH=BASEFILE (then --objects) */
			char *eq = strchr(optarg, '='), *colon = eq ? strchr(eq, ':') : NULL;
			if (!eq || n == MANIFEST_MAX_TARGETS)
				return usage("--target takes PATH=BASEFILE:NEWFILE or PATH=BASEFILE");
			*eq = 0;
			if (colon)
				*colon = 0;
			targets[n++] = (SvcPackTarget){ optarg, eq + 1, colon ? colon + 1 : NULL, NULL, 0, NULL };
			break;
		}
		case 'b':
			if (!n || targets[n - 1].new_file)
				return usage("--base-build FILE follows a --target PATH=BASEFILE");
			targets[n - 1].base_build = optarg;
			break;
		case 'j': {
			char *colon = strchr(optarg, ':');
			if (!colon || !n || targets[n - 1].new_file || n_obj == MAX_OBJECTS)
				return usage("--objects OLD.o:NEW.o follows a --target PATH=BASEFILE");
			*colon = 0;
			objects[n_obj] = (SvcObjectPair){ optarg, colon + 1 };
			if (!targets[n - 1].n_objects)
				targets[n - 1].objects = &objects[n_obj];
			targets[n - 1].n_objects++;
			n_obj++;
			break;
		}
		default: return usage(NULL);
		}
	}
	if (!spec.key || !spec.out || !spec.id || !spec.series || !have_seq || !n || optind != argc)
		return usage("pack needs --key, --out, --id, --series, --seq and --target");
	for (size_t i = 0; i < n; i++)
		if (!targets[i].new_file && !targets[i].n_objects)
			return usage("--target PATH=BASEFILE needs --objects OLD.o:NEW.o");
	spec.targets = targets;
	spec.n_targets = n;
	SvcPackResult res = { 0 };
	int r = svc_pack(&spec, &res, &e);
	if (r < 0)
		return fail(&e, r);
	if (!quiet)
		printf("wrote %s (%s, series %s, sequence %" PRIu64 ", %zu target%s): %" PRIu64
		       " bytes, %.1f%% of the %" PRIu64 " bytes it replaces\n",
		       spec.out, spec.id, spec.series, spec.sequence, n, n == 1 ? "" : "s",
		       res.package_bytes,
		       res.replaced_bytes ? 100.0 * (double)res.package_bytes / (double)res.replaced_bytes : 0.0,
		       res.replaced_bytes);
	return EXIT_OK;
}

static void show_step(void *ctx, SvcBuildStep step, uint64_t ns, const char *what)
{
	(void)ctx;
	if (quiet)
		return;
	if (ns)
		printf("%-8s %7.2fs  %s\n", svc_build_step_name(step), (double)ns / 1e9, what);
	else
		printf("%-8s           %s\n", svc_build_step_name(step), what);
	fflush(stdout);
}

/* The compiler wrapper: next to this program, or $SVC_CC. */
static char *wrapper_path(void)
{
	const char *env = getenv("SVC_CC");
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (env && *env)
		return strdup(env);
	if (n <= 0)
		return NULL;
	self[n] = 0;
	char *slash = strrchr(self, '/');
	return slash ? base_strdupf("%.*s/svc-cc", (int)(slash - self), self) : NULL;
}

static int cmd_build(int argc, char **argv, const char *root)
{
	static const struct option opts[] = {
		{ "source", required_argument, NULL, 'S' }, { "patch", required_argument, NULL, 'p' },
		{ "target", required_argument, NULL, 't' }, { "build", required_argument, NULL, 'B' },
		{ "key", required_argument, NULL, 'k' },    { "out", required_argument, NULL, 'o' },
		{ "id", required_argument, NULL, 'i' },     { "series", required_argument, NULL, 's' },
		{ "seq", required_argument, NULL, 'n' },    { "summary", required_argument, NULL, 'm' },
		{ "debug-dir", required_argument, NULL, 'd' }, { "keep", required_argument, NULL, 'K' },
		{ "deb", required_argument, NULL, 'D' }, { 0 },
	};
	SvcBuildSpec spec = { .step = show_step, .root = root };
	SvcBuildTarget targets[MANIFEST_MAX_TARGETS];
	const char *patches[MAX_OBJECTS];
	size_t n = 0, n_patches = 0;
	int c, have_seq = 0;
	BaseErr e = { 0 };

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'S': spec.source = optarg; break;
		case 'B': spec.command = optarg; break;
		case 'k': spec.key = optarg; break;
		case 'o': spec.out = optarg; break;
		case 'i': spec.id = optarg; break;
		case 's': spec.series = optarg; break;
		case 'm': spec.summary = optarg; break;
		case 'd': spec.debug_dir = optarg; break;
		case 'K': spec.keep = optarg; break;
		case 'D': spec.deb = optarg; break;
		case 'p':
			if (n_patches == MAX_OBJECTS)
				return usage("too many --patch");
			patches[n_patches++] = optarg;
			break;
		case 'n': {
			char *end = NULL;
			spec.sequence = strtoull(optarg, &end, 10);
			if (!*optarg || *end || optarg[0] == '-')
				return usage("--seq takes a whole number");
			have_seq = 1;
			break;
		}
		case 't': {
			char *eq = strchr(optarg, '=');
			if (!eq || n == MANIFEST_MAX_TARGETS)
				return usage("--target takes PATH=BASEFILE");
			*eq = 0;
			targets[n++] = (SvcBuildTarget){ optarg, eq + 1 };
			break;
		}
		default: return usage(NULL);
		}
	}
	if (!n_patches || !spec.key || !spec.out || !spec.id || !spec.series || !have_seq ||
	    optind != argc || (spec.deb ? spec.source || spec.command || n
					: !spec.source || !spec.command || !n))
		return usage("build needs --patch, --key, --out, --id, --series, --seq, and either "
			     "--deb or --source, --build and --target");
	spec.patches = patches;
	spec.n_patches = n_patches;
	spec.targets = targets;
	spec.n_targets = n;
	_cleanup_free_ char *wrapper = wrapper_path();
	if (!wrapper)
		return fail(&e, -ENOMEM);
	spec.wrapper = wrapper;
	SvcPackResult res = { 0 };
	int r = svc_build(&spec, &res, &e);
	if (r < 0)
		return fail(&e, r);
	if (!quiet)
		printf("wrote %s (%s, series %s, sequence %" PRIu64 "): %" PRIu64 " bytes\n", spec.out,
		       spec.id, spec.series, spec.sequence, res.package_bytes);
	return EXIT_OK;
}

static int cmd_inspect(int argc, char **argv)
{
	BaseErr e = { 0 };
	BaseBuf out = { 0 };
	if (argc != 1)
		return usage("inspect takes one FILE");
	int r = svc_inspect(argv[0], &out, &e);
	if (r < 0) {
		base_buf_free(&out);
		return fail(&e, r);
	}
	if (out.data)
		fwrite(out.data, 1, out.len, stdout);
	base_buf_free(&out);
	return EXIT_OK;
}

static void print_run(const SvcHpRun *run, const char *verb, int json)
{
	if (json) {
		printf("{\"wall_ms\":%.3f,\"failed\":%d,\"processes\":[", (double)run->wall_ns / 1e6,
		       run->failed);
		for (size_t i = 0; i < run->n; i++) {
			const HpReport *h = &run->reports[i];
			printf("%s{\"pid\":%d,\"result\":%d,\"noop\":%s,\"threads\":%u,"
			       "\"pause_ms\":%.3f,\"attempts\":%u,\"error\":",
			       i ? "," : "", (int)run->pids[i], h->result, h->noop ? "true" : "false",
			       h->threads, (double)h->pause_ns / 1e6, h->attempts);
			json_str(h->result < 0 ? h->msg : "");
			printf("}");
		}
		printf("]}\n");
		return;
	}
	for (size_t i = 0; i < run->n; i++) {
		const HpReport *h = &run->reports[i];
		if (h->result < 0)
			printf("pid %d: FAILED: %s\n", (int)run->pids[i], h->msg);
		else if (!quiet)
			printf("pid %d: %s, %u thread%s paused %.3f ms%s\n", (int)run->pids[i],
			       h->noop ? "nothing to do" : verb, h->threads, h->threads == 1 ? "" : "s",
			       (double)h->pause_ns / 1e6, h->attempts > 1 ? " (after retries)" : "");
	}
	if (!quiet)
		printf("%zu process%s, %d failed, %.3f ms\n", run->n, run->n == 1 ? "" : "es",
		       run->failed, (double)run->wall_ns / 1e6);
}

static void print_states(HpState **st, size_t n, int json)
{
	static const char *names[] = { "?", "pending", "applied", "reverted" };
	if (json)
		printf("[");
	for (size_t i = 0; i < n; i++) {
		if (json) {
			printf("%s{\"pid\":%d,\"fixes\":[", i ? "," : "", (int)st[i]->pid);
			for (size_t k = 0; k < st[i]->n_fixes; k++) {
				const HpFixInfo *f = &st[i]->fixes[k];
				printf("%s{\"id\":", k ? "," : "");
				json_str(f->fix_id);
				printf(",\"status\":\"%s\",\"code\":\"0x%llx\",\"sites\":[",
				       names[f->status <= 3 ? f->status : 0], (unsigned long long)f->blob);
				for (size_t j = 0; j < f->n_sites; j++) {
					printf("%s", j ? "," : "");
					json_str(f->sites[j].name);
				}
				printf("]}");
			}
			printf("]}");
			continue;
		}
		printf("pid %d:%s\n", (int)st[i]->pid, st[i]->n_fixes ? "" : " no fixes");
		for (size_t k = 0; k < st[i]->n_fixes; k++) {
			const HpFixInfo *f = &st[i]->fixes[k];
			printf("  %-20s %-9s code at 0x%llx, %zu site%s:", f->fix_id,
			       names[f->status <= 3 ? f->status : 0], (unsigned long long)f->blob,
			       f->n_sites, f->n_sites == 1 ? "" : "s");
			for (size_t j = 0; j < f->n_sites; j++)
				printf(" %s", f->sites[j].name);
			printf("\n");
		}
	}
	if (json)
		printf("]\n");
}

/* svc hotpatch apply PAYLOAD (--pid PID... | --all) | revert FIXID (...) | list [--pid PID...] */
static int cmd_hotpatch(int argc, char **argv)
{
	pid_t pids[4096];
	size_t n = 0;
	int all = 0, json = 0, workers = 0;
	const char *arg = NULL;
	BaseErr e = { 0 };

	if (argc < 1)
		return usage("hotpatch takes apply, revert or list");
	const char *verb = argv[0];
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--pid") == 0 && i + 1 < argc) {
			char *end = NULL;
			long v = strtol(argv[++i], &end, 10);
			if (*end || v <= 0 || n == sizeof(pids) / sizeof(pids[0]))
				return usage("--pid takes a process id");
			pids[n++] = (pid_t)v;
		} else if (strcmp(argv[i], "--all") == 0)
			all = 1;
		else if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc)
			workers = atoi(argv[++i]);
		else if (argv[i][0] == '-')
			return usage("unknown option");
		else if (!arg)
			arg = argv[i];
		else
			return usage("too many arguments");
	}
	if (strcmp(verb, "list") == 0) {
		if (arg || all)
			return usage("hotpatch list takes only --pid and --json");
		HpState **st = NULL;
		size_t ns = 0;
		int r = svc_hp_list(n ? pids : NULL, n, &st, &ns, &e);
		if (r < 0)
			return fail(&e, r);
		print_states(st, ns, json);
		for (size_t i = 0; i < ns; i++)
			hp_state_free(st[i]);
		free(st);
		return EXIT_OK;
	}
	int is_apply = strcmp(verb, "apply") == 0;
	if (!is_apply && strcmp(verb, "revert") != 0)
		return usage("hotpatch takes apply, revert or list");
	if (!arg || (all == (n > 0)))
		return usage(is_apply ? "hotpatch apply PAYLOAD (--pid PID... | --all)"
				      : "hotpatch revert FIXID (--pid PID... | --all)");
	SvcHpRun run = { 0 };
	int r = is_apply ? svc_hp_apply(arg, pids, n, all, (unsigned)workers, &run, &e)
			 : svc_hp_revert(arg, pids, n, all, (unsigned)workers, &run, &e);
	if (r < 0)
		return fail(&e, r);
	print_run(&run, is_apply ? "patched" : "reverted", json);
	int failed = run.failed;
	svc_hp_run_free(&run);
	return failed ? EXIT_RESTART : EXIT_OK;
}

int main(int argc, char **argv)
{
	SvcOptions opt = { .root = "/" };
	int json = 0, i = 1;
	BaseErr e = { 0 };

	/* global options before the command */
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--root") == 0 && i + 1 < argc)
			opt.root = argv[++i];
		else if (strncmp(argv[i], "--root=", 7) == 0)
			opt.root = argv[i] + 7;
		else if (strcmp(argv[i], "--wait") == 0 && i + 1 < argc)
			opt.wait_lock_ms = atoi(argv[++i]) * 1000;
		else if (strcmp(argv[i], "--quiet") == 0)
			quiet = 1;
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage_text, stdout);
			return EXIT_OK;
		} else
			return usage("unknown option");
	}
	if (i >= argc)
		return usage("no command");
	const char *cmd = argv[i++];
	if (strcmp(cmd, "pack") == 0)
		return cmd_pack(argc - i + 1, argv + i - 1);
	if (strcmp(cmd, "build") == 0)
		return cmd_build(argc - i + 1, argv + i - 1, opt.root);
	if (strcmp(cmd, "inspect") == 0)
		return cmd_inspect(argc - i, argv + i);
	if (strcmp(cmd, "hotpatch") == 0)
		return cmd_hotpatch(argc - i, argv + i);
	if (strcmp(cmd, "keygen") == 0) {
		if (argc - i != 2 || strcmp(argv[i], "--out") != 0)
			return usage("keygen takes --out PREFIX");
		int r = manifest_keygen(argv[i + 1], &e);
		if (r < 0)
			return fail(&e, r);
		if (!quiet)
			printf("wrote %s.key and %s.pub\n", argv[i + 1], argv[i + 1]);
		return EXIT_OK;
	}

	/* the rest take arguments and command options in any order */
	const char *arg = NULL;
	unsigned flags = 0;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (strcmp(argv[i], "--hotpatch") == 0 || strcasecmp(argv[i], "/hotpatch:enable") == 0)
			flags |= SVC_HOTPATCH;
		else if (strcasecmp(argv[i], "/hotpatch:disable") == 0)
			flags &= ~SVC_HOTPATCH;
		else if (strcmp(argv[i], "--quiet") == 0 || strcasecmp(argv[i], "/quiet") == 0)
			quiet = 1;
		else if (strcmp(argv[i], "--root") == 0 && i + 1 < argc)
			opt.root = argv[++i];
		else if (strcmp(argv[i], "--wait") == 0 && i + 1 < argc)
			opt.wait_lock_ms = atoi(argv[++i]) * 1000;
		else if (argv[i][0] == '-' && argv[i][1])
			return usage("unknown option");
		else if (!arg)
			arg = argv[i];
		else
			return usage("too many arguments");
	}

	int needs_arg = strcmp(cmd, "install") == 0 || strcmp(cmd, "rollback") == 0;
	int is_status = strcmp(cmd, "status") == 0 || strcmp(cmd, "list") == 0;
	if (!needs_arg && !is_status && strcmp(cmd, "boot") != 0)
		return usage("unknown command");
	if (needs_arg != (arg != NULL))
		return usage(needs_arg ? "missing argument" : "unexpected argument");
	if (json && !is_status)
		return usage("--json goes with status");
	if (flags && !needs_arg)
		return usage("/hotpatch:enable goes with install or rollback");

	Svc *s = NULL;
	SvcReport rep = { 0 };
	if (!quiet && isatty(2))
		opt.progress = show_progress;
	int r = svc_open(&opt, &s, &e);
	if (r < 0)
		return fail(&e, r);
	if (strcmp(cmd, "install") == 0)
		r = run_report(s, svc_install(s, arg, flags, &rep, &e), &rep, &e);
	else if (strcmp(cmd, "rollback") == 0)
		r = run_report(s, svc_rollback(s, arg, flags, &rep, &e), &rep, &e);
	else if (strcmp(cmd, "boot") == 0) {
		int q = svc_boot(s, &rep, &e);
		r = run_report(s, q < 0 ? q : 0, &rep, &e);
		if (q > 0)
			r = EXIT_QUARANTINED; /* the rest was applied; say so in the exit code */
	} else {
		SvcStatus st = { 0 };
		int x = svc_status(s, &st, &e);
		if (x < 0)
			r = fail(&e, x);
		else {
			json ? print_status_json(&st) : print_status(&st);
			svc_status_free(&st);
			r = EXIT_OK;
		}
	}
	svc_close(s);
	return r;
}
