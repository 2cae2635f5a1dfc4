/* svc build: from a source tree (or a Debian source package) and patches to
 * a signed package; the flow lives in svc/build.c, this prints its steps. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "manifest/manifest.h"
#include "tools/cli.h"

#define MAX_PATCHES 64

static void show_step(void *ctx, SvcBuildStep step, uint64_t ns, const char *what)
{
	const Cli *c = ctx;
	if (c->quiet)
		return;
	if (ns)
		printf("%-8s %7.2fs  %s\n", svc_build_step_name(step), (double)ns / 1e9, what);
	else
		printf("%-8s           %s\n", svc_build_step_name(step), what);
	fflush(stdout);
}

/* The compiler wrapper: $SVC_CC, or svc-cc next to this program. */
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

static const struct option build_opts[] = {
	{ "source", required_argument, NULL, 'S' }, { "patch", required_argument, NULL, 'p' },
	{ "target", required_argument, NULL, 't' }, { "build", required_argument, NULL, 'B' },
	CLI_SIGN_OPTIONS,
	{ "debug-dir", required_argument, NULL, 'd' }, { "keep", required_argument, NULL, 'K' },
	{ "deb", required_argument, NULL, 'D' },    { 0 },
};

static int cmd_build(Cli *c, int argc, char **argv)
{
	SvcBuildSpec spec = { .step = show_step, .step_ctx = c };
	SvcBuildTarget targets[MANIFEST_MAX_TARGETS];
	const char *patches[MAX_PATCHES];
	size_t n = 0, n_patches = 0;
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
		case 'S': spec.source = optarg; break;
		case 'B': spec.command = optarg; break;
		case 'd': spec.debug_dir = optarg; break;
		case 'K': spec.keep = optarg; break;
		case 'D': spec.deb = optarg; break;
		case 'p':
			if (n_patches == MAX_PATCHES)
				return cli_usage(c, "at most %d --patch", MAX_PATCHES);
			patches[n_patches++] = optarg;
			break;
		case 't': {
			char *eq = strchr(optarg, '=');
			if (!eq || n == MANIFEST_MAX_TARGETS)
				return cli_usage(c, "--target takes PATH=BASEFILE, not '%s'", optarg);
			*eq = 0;
			targets[n++] = (SvcBuildTarget){ optarg, eq + 1 };
			break;
		}
		}
	}
	if (optind < argc)
		return cli_usage(c, "unexpected argument '%s'", argv[optind]);
	if (!n_patches || !cli_sign_complete(&sign))
		return cli_usage(c, "build needs --patch, --key, --out, --id, --series and --seq");
	if (spec.deb ? spec.source || spec.command || n : !spec.source || !spec.command || !n)
		return cli_usage(c, "build needs either --deb, or --source, --build and --target");
	spec.sign = sign.spec;
	spec.patches = patches;
	spec.n_patches = n_patches;
	spec.targets = targets;
	spec.n_targets = n;
	spec.root = c->opt.root;
	_cleanup_free_ char *wrapper = wrapper_path();
	if (!wrapper)
		return cli_fail(c, &e, -ENOMEM);
	spec.wrapper = wrapper;
	SvcPackResult res = { 0 };
	int r = svc_build(&spec, &res, &e);
	if (r < 0)
		return cli_fail(c, &e, r);
	if (!c->quiet)
		printf("wrote %s (%s, series %s, sequence %" PRIu64 "): %" PRIu64 " bytes\n",
		       spec.sign.out, spec.sign.id, spec.sign.series, spec.sign.sequence,
		       res.package_bytes);
	return EXIT_OK;
}

const CliCmd cli_cmd_build = {
	.name = "build",
	.synopsis = "--source DIR --build COMMAND --target PATH=BASEFILE [--target ...]\n"
		    "       --patch FILE.patch [--patch ...] --key KEY --out PKG --id ID --series S --seq N\n"
		    "       [--summary TEXT] [--keep DIR] [--debug-dir DIR]\n"
		    "   or: svc [--root DIR] build --deb NAME[=VERSION]|FILE.dsc --patch FILE.patch ... --key ...",
	.summary = "from a source tree and a patch to a signed fix, in one command",
	.help = "Runs COMMAND in DIR (a clean tree) with the compiler wrapper svc-cc on PATH,\n"
		"checks the build reproduces each BASEFILE (build-id), applies the patches to a\n"
		"copy, recompiles only the changed units (old and new, recorded commands plus\n"
		"-ffunction-sections -fdata-sections) and packs them with svc pack's rules.\n"
		"--deb: apt-get source (or a .dsc), apt-get build-dep, dpkg-buildpackage -b;\n"
		"the targets are the ELF files its packages ship that are installed under --root.\n"
		"--keep DIR: keep the compile log, objects and the patched copy there.\n",
	.opts = build_opts,
	.run = cmd_build,
};
