/* svc hotpatch apply | revert | list: live patching of processes directly
 * (no package, no disk change). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

void cli_print_run(Cli *c, const SvcHpRun *run, const char *verb)
{
	if (c->json) {
		printf("{\"wall_ms\":%.3f,\"failed\":%d,\"processes\":[", (double)run->wall_ns / 1e6,
		       run->failed);
		for (size_t i = 0; i < run->n; i++) {
			const HpReport *h = &run->reports[i];
			printf("%s{\"pid\":%d,\"result\":%d,\"noop\":%s,\"threads\":%u,"
			       "\"pause_ms\":%.3f,\"attempts\":%u,\"error\":",
			       i ? "," : "", (int)run->pids[i], h->result, h->noop ? "true" : "false",
			       h->threads, (double)h->pause_ns / 1e6, h->attempts);
			cli_json_str(h->result < 0 ? h->msg : "");
			printf(",\"converged\":%s", h->result < 0 || h->not_converged ? "false" : "true");
			if (h->not_converged) {
				printf(",\"stale_tid\":%d,\"stale_function\":", (int)h->stale_tid);
				cli_json_str(h->stale_fn);
			}
			printf("}");
		}
		printf("]}\n");
		return;
	}
	for (size_t i = 0; i < run->n; i++) {
		const HpReport *h = &run->reports[i];
		if (h->result < 0)
			printf("pid %d: FAILED: %s\n", (int)run->pids[i], h->msg);
		else if (!c->quiet)
			printf("pid %d: %s, %u thread%s paused %.3f ms%s\n", (int)run->pids[i],
			       h->noop ? "nothing to do" : verb, h->threads, h->threads == 1 ? "" : "s",
			       (double)h->pause_ns / 1e6, h->attempts > 1 ? " (after retries)" : "");
		if (h->result >= 0 && h->not_converged)
			printf("pid %d: NOT converged: thread %d still runs %s\n", (int)run->pids[i],
			       (int)h->stale_tid, h->stale_fn);
	}
	if (!c->quiet)
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
			printf("%s{\"pid\":%d,", i ? "," : "", (int)st[i]->pid);
			if (st[i]->error) {
				printf("\"error\":");
				cli_json_str(st[i]->error);
				printf(",");
			}
			printf("\"fixes\":[");
			for (size_t k = 0; k < st[i]->n_fixes; k++) {
				const HpFixInfo *f = &st[i]->fixes[k];
				printf("%s{\"id\":", k ? "," : "");
				cli_json_str(f->fix_id);
				printf(",\"status\":\"%s\",\"code\":\"0x%llx\",\"sites\":[",
				       names[f->status <= 3 ? f->status : 0], (unsigned long long)f->blob);
				for (size_t j = 0; j < f->n_sites; j++) {
					printf("%s", j ? "," : "");
					cli_json_str(f->sites[j].name);
				}
				printf("]}");
			}
			printf("]}");
			continue;
		}
		if (st[i]->error) {
			printf("pid %d: unknown: %s\n", (int)st[i]->pid, st[i]->error);
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

static int hotpatch_list(Cli *c, const pid_t *pids, size_t n)
{
	BaseErr e = { 0 };
	HpState **st = NULL;
	size_t ns = 0;
	int r = svc_hp_list(n ? pids : NULL, n, &st, &ns, &e);
	if (r < 0)
		return cli_fail(c, &e, r);
	print_states(st, ns, c->json);
	int unknown = 0;
	for (size_t i = 0; i < ns; i++) {
		unknown |= st[i]->error != NULL;
		hp_state_free(st[i]);
	}
	free(st);
	return unknown ? EXIT_RESTART : EXIT_OK;
}

static const struct option hotpatch_opts[] = {
	{ "pid", required_argument, NULL, 'p' },
	{ "all", no_argument, NULL, 'a' },
	{ "workers", required_argument, NULL, 'w' },
	{ 0 },
};

static int cmd_hotpatch(Cli *c, int argc, char **argv)
{
	static CliPids pids;
	int all = 0, o;
	uint64_t workers = 0;
	BaseErr e = { 0 };

	while ((o = cli_getopt(c, argc, argv)) != -1) {
		switch (o) {
		case CLI_STOP: return c->rc;
		case 'p':
			if (cli_pid(c, optarg, &pids) < 0)
				return c->rc;
			break;
		case 'a': all = 1; break;
		case 'w':
			if (cli_number(c, "--workers", optarg, 0, 1024, &workers) < 0)
				return c->rc;
			break;
		}
	}
	if (optind >= argc)
		return cli_usage(c, "hotpatch needs apply, revert or list");
	const char *verb = argv[optind], *arg = optind + 1 < argc ? argv[optind + 1] : NULL;
	if (optind + 2 < argc)
		return cli_usage(c, "unexpected argument '%s'", argv[optind + 2]);
	if (strcmp(verb, "list") == 0) {
		if (arg)
			return cli_usage(c, "unexpected argument '%s'", arg);
		if (all)
			return cli_usage(c, "hotpatch list takes --pid, not --all");
		return hotpatch_list(c, pids.v, pids.n);
	}
	int is_apply = strcmp(verb, "apply") == 0;
	if (!is_apply && strcmp(verb, "revert") != 0)
		return cli_usage(c, "unknown hotpatch action '%s': apply, revert or list", verb);
	if (!arg)
		return cli_usage(c, "hotpatch %s needs %s", verb, is_apply ? "a PAYLOAD" : "a FIXID");
	if (all == (pids.n > 0))
		return cli_usage(c, "hotpatch %s needs either --pid PID... or --all", verb);
	SvcHpRun run = { 0 };
	int r = is_apply ? svc_hp_apply(arg, pids.v, pids.n, all, (unsigned)workers, &run, &e)
			 : svc_hp_revert(arg, pids.v, pids.n, all, (unsigned)workers, &run, &e);
	if (r < 0)
		return cli_fail(c, &e, r);
	cli_print_run(c, &run, is_apply ? "patched" : "reverted");
	int failed = run.failed;
	for (size_t i = 0; i < run.n; i++)
		failed += run.reports[i].result >= 0 && run.reports[i].not_converged;
	svc_hp_run_free(&run);
	return failed ? EXIT_RESTART : EXIT_OK;
}

const CliCmd cli_cmd_hotpatch = {
	.name = "hotpatch",
	.synopsis = "apply PAYLOAD (--pid PID... | --all) [--workers N] [--json]\n"
		    "   or   revert FIXID (--pid PID... | --all) [--workers N] [--json]\n"
		    "   or   list [--pid PID...] [--json]",
	.summary = "live-patch processes directly (no package, no disk)",
	.help = "apply: patch the processes with one payload (*.hp); --all: every process\n"
		"mapping the payload's build-id.  revert: take FIXID out again.  list: the\n"
		"fixes held in each patched process.  Exit 3 if a process failed or is\n"
		"patched but not converged (a thread still runs the old code).\n",
	.flags = CLI_JSON,
	.opts = hotpatch_opts,
	.run = cmd_hotpatch,
};
