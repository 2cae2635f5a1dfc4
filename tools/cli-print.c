/* Printing shared by the commands: JSON strings and engine reports. */
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
