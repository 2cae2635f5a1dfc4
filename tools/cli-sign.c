/* The signing options pack and build share: --key --out --id --series
 * --seq --summary (CLI_SIGN_OPTIONS in their option tables), parsed here. */
#include <errno.h>

#include "tools/cli.h"

int cli_sign_option(Cli *c, int o, const char *arg, CliSign *s)
{
	switch (o) {
	case 'k': s->spec.key = arg; return 1;
	case 'o': s->spec.out = arg; return 1;
	case 'i': s->spec.id = arg; return 1;
	case 's': s->spec.series = arg; return 1;
	case 'm': s->spec.summary = arg; return 1;
	case 'n':
		if (cli_number(c, "--seq", arg, 0, UINT64_MAX, &s->spec.sequence) < 0)
			return -EINVAL;
		s->have_seq = 1;
		return 1;
	}
	return 0;
}

int cli_sign_complete(const CliSign *s)
{
	return s->spec.key && s->spec.out && s->spec.id && s->spec.series && s->have_seq;
}
