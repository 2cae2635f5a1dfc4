/* Printing shared by the commands: JSON strings and engine reports. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/cli.h"

void cli_json_str(const char *s)
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

void cli_print_report(Cli *c, const SvcReport *rep)
{
	/* under systemd, stdout is the journal: give each line its priority */
	int journal = getenv("JOURNAL_STREAM") != NULL;
	for (size_t i = 0; i < rep->n_lines; i++) {
		if (c->quiet && rep->levels[i] > 3)
			continue;
		if (journal)
			printf("<%d>", rep->levels[i]);
		printf("%s\n", rep->lines[i]);
	}
}

const char *cli_time(uint64_t epoch, char buf[32])
{
	struct tm tm;
	time_t t = (time_t)epoch;
	if (!epoch || !localtime_r(&t, &tm) || !strftime(buf, 32, "%Y-%m-%dT%H:%M:%S%z", &tm))
		return "-";
	/* strftime's %z is +hhmm; ISO 8601's extended form is +hh:mm */
	size_t n = strlen(buf);
	memmove(buf + n - 1, buf + n - 2, 3);
	buf[n - 2] = ':';
	return buf;
}

static void json_str_or_null(const char *s)
{
	if (s)
		cli_json_str(s);
	else
		printf("null");
}

void cli_print_report_json(const SvcReport *rep, int r)
{
	printf("{\"package\":");
	json_str_or_null(rep->package);
	printf(",\"dry_run\":%s,\"changed\":%s,\"noop\":%s,\"restart_required\":%s,"
	       "\"txn\":%" PRIu64 ",\"targets\":[", rep->dry_run ? "true" : "false",
	       rep->changed ? "true" : "false", rep->noop ? "true" : "false",
	       r == SVC_RESTART ? "true" : "false", rep->txn);
	for (size_t i = 0; i < rep->n_targets; i++) {
		const SvcTargetPlan *t = &rep->targets[i];
		printf("%s{\"path\":", i ? "," : "");
		cli_json_str(t->path);
		printf(",\"action\":\"%s\",\"from\":", svc_target_action_name(t->action));
		json_str_or_null(t->from);
		printf(",\"to\":");
		json_str_or_null(t->to);
		printf(",\"reason\":");
		json_str_or_null(t->reason);
		printf("}");
	}
	printf("],\"processes\":[");
	for (size_t i = 0; i < rep->n_users; i++) {
		printf("%s{\"pid\":%d,\"comm\":", i ? "," : "", (int)rep->users[i].pid);
		cli_json_str(rep->users[i].comm);
		printf(",\"path\":");
		cli_json_str(rep->user_paths[i]);
		printf(",\"outcome\":\"%s\",\"reason\":",
		       svc_proc_outcome_name(rep->user_outcomes[i]));
		json_str_or_null(rep->user_reasons[i]);
		printf("}");
	}
	printf("],\"messages\":[");
	for (size_t i = 0; i < rep->n_lines; i++) {
		printf("%s", i ? "," : "");
		cli_json_str(rep->lines[i]);
	}
	printf("]}\n");
}
