/* svc keygen, pack, inspect: the vendor side (keys and packages) and the
 * description of a payload, package or coldpatch lineage. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "manifest/manifest.h"
#include "tools/cli.h"

static const struct option keygen_opts[] = { { "out", required_argument, NULL, 'o' }, { 0 } };

static int cmd_keygen(Cli *c, int argc, char **argv)
{
	const char *out = NULL;
	BaseErr e = { 0 };
	int o;

	while ((o = cli_getopt(c, argc, argv)) != -1) {
		if (o == CLI_STOP)
			return c->rc;
		out = optarg;
	}
	if (optind < argc)
		return cli_usage(c, "unexpected argument '%s'", argv[optind]);
	if (!out)
		return cli_usage(c, "keygen needs --out PREFIX");
	int r = manifest_keygen(out, &e);
	if (r < 0)
		return cli_fail(c, &e, r);
	if (!c->quiet)
		printf("wrote %s.key and %s.pub\n", out, out);
	return EXIT_OK;
}

#define MAX_OBJECTS 256

static const struct option pack_opts[] = {
	CLI_SIGN_OPTIONS,
	{ "target", required_argument, NULL, 't' }, { "objects", required_argument, NULL, 'j' },
	{ "include-coldpatch", no_argument, NULL, 'c' },
	{ "base-build", required_argument, NULL, 'b' },
	{ "debug-dir", required_argument, NULL, 'g' },
	{ "no-debuginfod", no_argument, NULL, 'G' }, { 0 },
};

static int cmd_pack(Cli *c, int argc, char **argv)
{
	const char *debug_dirs[MAX_OBJECTS];
	size_t n_dirs = 0;
	SvcPackSpec spec = { 0 };
	SvcPackTarget targets[MANIFEST_MAX_TARGETS];
	SvcObjectPair objects[MAX_OBJECTS];
	size_t n = 0, n_obj = 0;
	CliSign sign = { 0 };
	int o, taken;
	BaseErr e = { 0 };

	while ((o = cli_getopt(c, argc, argv)) != -1) {
		if (o != CLI_STOP && (taken = cli_sign_option(c, o, optarg, &sign)) != 0) {
			if (taken < 0)
				return c->rc;
			continue;
		}
		switch (o) {
		case CLI_STOP: return c->rc;
		case 'c': spec.include_coldpatch = 1; break;
		case 'G': spec.no_debuginfod = 1; break;
		case 'g':
			if (n_dirs == MAX_OBJECTS)
				return cli_usage(c, "more than %d --debug-dir", MAX_OBJECTS);
			debug_dirs[n_dirs++] = optarg;
			break;
		case 't': {
			/* PATH=BASEFILE:NEWFILE (whole file) or PATH=BASEFILE (then --objects) */
			char *eq = strchr(optarg, '='), *colon = eq ? strchr(eq, ':') : NULL;
			if (!eq || n == MANIFEST_MAX_TARGETS)
				return cli_usage(c, "--target takes PATH=BASEFILE:NEWFILE or PATH=BASEFILE, not '%s'",
						 optarg);
			*eq = 0;
			if (colon)
				*colon = 0;
			targets[n++] = (SvcPackTarget){ optarg, eq + 1, colon ? colon + 1 : NULL, NULL, 0, NULL };
			break;
		}
		case 'b':
			if (!n || targets[n - 1].new_file)
				return cli_usage(c, "--base-build FILE follows a --target PATH=BASEFILE");
			targets[n - 1].base_build = optarg;
			break;
		case 'j': {
			char *colon = strchr(optarg, ':');
			if (!colon || !n || targets[n - 1].new_file || n_obj == MAX_OBJECTS)
				return cli_usage(c, "--objects OLD.o:NEW.o follows a --target PATH=BASEFILE");
			*colon = 0;
			objects[n_obj] = (SvcObjectPair){ optarg, colon + 1 };
			if (!targets[n - 1].n_objects)
				targets[n - 1].objects = &objects[n_obj];
			targets[n - 1].n_objects++;
			n_obj++;
			break;
		}
		}
	}
	if (optind < argc)
		return cli_usage(c, "unexpected argument '%s'", argv[optind]);
	if (!cli_sign_complete(&sign) || !n)
		return cli_usage(c, "pack needs --key, --out, --id, --series, --seq and --target");
	for (size_t i = 0; i < n; i++)
		if (!targets[i].new_file && !targets[i].n_objects)
			return cli_usage(c, "--target PATH=BASEFILE needs --objects OLD.o:NEW.o");
	spec.sign = sign.spec;
	spec.targets = targets;
	spec.n_targets = n;
	spec.debug_dirs = debug_dirs;
	spec.n_debug_dirs = n_dirs;
	SvcPackResult res = { 0 };
	int r = svc_pack(&spec, &res, &e);
	if (r < 0)
		return cli_fail(c, &e, r);
	if (!c->quiet)
		printf("wrote %s (%s, series %s, sequence %" PRIu64 ", %zu target%s): %" PRIu64
		       " bytes, %.1f%% of the %" PRIu64 " bytes it replaces\n",
		       spec.sign.out, spec.sign.id, spec.sign.series, spec.sign.sequence, n, n == 1 ? "" : "s",
		       res.package_bytes,
		       res.replaced_bytes ? 100.0 * (double)res.package_bytes / (double)res.replaced_bytes : 0.0,
		       res.replaced_bytes);
	if (!c->quiet && n_obj)
		printf("%s\nfunctions: %zu changed, %zu new, %zu left alone (only __LINE__ moved), "
		       "%zu checked against the base\n", res.symbols, res.functions_changed,
		       res.functions_new, res.functions_line_only, res.functions_verified);
	return EXIT_OK;
}

static int cmd_inspect(Cli *c, int argc, char **argv)
{
	BaseErr e = { 0 };
	BaseBuf out = { 0 };
	int o;

	while ((o = cli_getopt(c, argc, argv)) != -1)
		if (o == CLI_STOP)
			return c->rc;
	if (argc - optind != 1)
		return argc - optind ? cli_usage(c, "unexpected argument '%s'", argv[optind + 1])
				     : cli_usage(c, "inspect needs a FILE");
	int r = svc_inspect(argv[optind], &out, &e);
	if (r < 0) {
		base_buf_free(&out);
		return cli_fail(c, &e, r);
	}
	if (out.data)
		fwrite(out.data, 1, out.len, stdout);
	base_buf_free(&out);
	return EXIT_OK;
}

const CliCmd cli_cmd_keygen = {
	.name = "keygen",
	.synopsis = "--out PREFIX",
	.summary = "new signing key: PREFIX.key and PREFIX.pub",
	.help = "An ECDSA P-256 key: PREFIX.key (PEM, mode 0600) and PREFIX.pub, to be\n"
		"copied to ROOT/etc/svc/trusted/ on the serviced systems.  Never overwrites.\n",
	.opts = keygen_opts,
	.run = cmd_keygen,
};

const CliCmd cli_cmd_pack = {
	.name = "pack",
	.synopsis = "--key KEY --out PKG --id ID --series S --seq N [--summary TEXT]\n"
		    "         --target PATH=BASEFILE:NEWFILE [--target ...]\n"
		    "   or    --target PATH=BASEFILE [--base-build FILE] --objects OLD.o:NEW.o\n"
		    "         [--objects ...] [--include-coldpatch] [--target ...]\n"
		    "         [--debug-dir DIR]... [--no-debuginfod]",
	.summary = "build and sign a fix package",
	.help = "NEWFILE: the fixed file shipped whole.  With --objects: the hotpatch\n"
		"payload is built from the base and fixed objects and the coldpatch is\n"
		"synthesized at install (shipped too with --include-coldpatch).\n"
		"--base-build: BASEFILE is an earlier fix's coldpatch; FILE the original build.\n"
		"A stripped BASEFILE's symbols come from DIR/.build-id/xx/yyyy.debug under each\n"
		"--debug-dir (default /usr/lib/debug), its .gnu_debuglink, then the debuginfod\n"
		"servers of DEBUGINFOD_URLS (not with --no-debuginfod); see docs/vendor-guide.md.\n",
	.opts = pack_opts,
	.run = cmd_pack,
};

const CliCmd cli_cmd_inspect = {
	.name = "inspect",
	.synopsis = "FILE",
	.summary = "describe a payload, a package or a coldpatch lineage",
	.run = cmd_inspect,
};
