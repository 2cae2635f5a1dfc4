/* Printing shared by the commands: JSON strings and engine reports. */
#include <stdio.h>
#include <stdlib.h>

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
