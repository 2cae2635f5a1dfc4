/* What a compiler command line means, for the wrapper and for `svc build`:
 * which arguments are files, which is the source, where the object goes,
 * and the same command rewritten (another output, no dependency files,
 * extra flags).  gcc and clang spellings; C, C++ and assembler sources. */
#include <stdlib.h>
#include <string.h>

#include "svc/internal.h"

/* Options whose value is the next argument when given alone. */
static const char *const takes_value[] = {
	"-o", "-x", "-MF", "-MT", "-MQ", "-I", "-D", "-U", "-L", "-l", "-include", "-imacros",
	"-idirafter", "-iprefix", "-iwithprefix", "-iwithprefixbefore", "-isystem", "-isysroot",
	"-iquote", "-imultilib", "-Xlinker", "-Xassembler", "-Xpreprocessor", "-Xclang", "-T",
	"-u", "-e", "-z", "-A", "-aux-info", "--param", "-wrapper", "-target", "-arch", "-MJ",
	"--sysroot", "-specs", "-dumpdir", "-dumpbase", "-dumpbase-ext",
};

/* Dependency-file options: dropped when the command is run again (they would
 * overwrite the build's own .d files); with a value (-MF FILE) or without. */
static const char *const dep_with_value[] = { "-MF", "-MT", "-MQ" };
static const char *const dep_alone[] = { "-MD", "-MMD", "-MP", "-MG" };

static int in(const char *a, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(a, list[i]) == 0)
			return 1;
	return 0;
}
#define IN(a, list) in(a, list, sizeof(list) / sizeof(*(list)))

static int source_suffix(const char *a)
{
	static const char *const sfx[] = { ".c", ".cc", ".cpp", ".cxx", ".c++", ".C", ".i", ".ii",
					   ".s", ".S", ".sx", ".m" };
	const char *dot = strrchr(a, '.');
	return dot && !strchr(dot, '/') && IN(dot, sfx);
}

static int push_index(size_t **v, size_t *n, size_t i)
{
	size_t *nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (!nv)
		return -ENOMEM;
	nv[(*n)++] = i;
	*v = nv;
	return 0;
}

int svc_cc_args(size_t argc, char *const *argv, SvcCcArgs *ret)
{
	SvcCcArgs a = { 0 };
	int lang = 0, r = 0; /* lang: after -x LANG (not none), every file is a source */
	for (size_t i = 1; i < argc && r >= 0; i++) {
		const char *s = argv[i];
		if (s[0] != '-' || strcmp(s, "-") == 0) {
			if (strcmp(s, "-") == 0)
				a.no_object = 1; /* source on stdin: nothing to rebuild from */
			r = push_index(&a.files, &a.n_files, i);
			if (r >= 0 && (lang || source_suffix(s)))
				r = push_index(&a.sources, &a.n_sources, i);
			continue;
		}
		if (strcmp(s, "-c") == 0)
			a.compile_only = 1;
		else if (strcmp(s, "-E") == 0 || strcmp(s, "-S") == 0 || strcmp(s, "-M") == 0 ||
			 strcmp(s, "-MM") == 0 || strcmp(s, "-fsyntax-only") == 0 ||
			 strncmp(s, "-print-", 7) == 0 || strncmp(s, "-dump", 5) == 0 ||
			 strcmp(s, "--version") == 0 || strcmp(s, "--help") == 0)
			a.no_object = 1;
		if (strncmp(s, "-x", 2) == 0) {
			const char *l = s[2] ? s + 2 : (i + 1 < argc ? argv[i + 1] : "none");
			lang = strcmp(l, "none") != 0;
		}
		if (strncmp(s, "-o", 2) == 0)
			a.output = s[2] ? s + 2 : (i + 1 < argc ? argv[i + 1] : NULL);
		if (IN(s, takes_value))
			i++;
	}
	if (r < 0) {
		svc_cc_args_free(&a);
		return r;
	}
	*ret = a;
	return 0;
}

void svc_cc_args_free(SvcCcArgs *a)
{
	free(a->files);
	free(a->sources);
	memset(a, 0, sizeof(*a));
}

int svc_cc_command(const char *compiler, size_t argc, char *const *argv, const char *source,
		   const char *const *extra, char ***ret)
{
	SvcCcArgs a = { 0 };
	size_t n_extra = 0, n = 0, k = 0;
	int r = svc_cc_args(argc, argv, &a);
	if (r < 0)
		return r;
	while (extra && extra[n_extra])
		n_extra++;
	char **out = calloc(argc + n_extra + 1, sizeof(*out));
	if (!out) {
		svc_cc_args_free(&a);
		return -ENOMEM;
	}
	out[n++] = (char *)compiler;
	for (size_t i = 1; i < argc; i++) {
		const char *s = argv[i];
		if (k < a.n_sources && a.sources[k] == i) {
			k++;
			if (strcmp(s, source) != 0)
				continue; /* another source of a multi-source compile */
		} else if (strcmp(s, "-o") == 0 || IN(s, dep_with_value)) {
			i++;
			continue;
		} else if ((strncmp(s, "-o", 2) == 0 && s[0] == '-') || strcmp(s, "-c") == 0 ||
			   IN(s, dep_alone) || strncmp(s, "-MF", 3) == 0 || strncmp(s, "-MT", 3) == 0 ||
			   strncmp(s, "-MQ", 3) == 0 || strncmp(s, "-Wp,-MD", 7) == 0 ||
			   strncmp(s, "-Wp,-MMD", 8) == 0)
			continue;
		else if (IN(s, takes_value) && i + 1 < argc) {
			out[n++] = (char *)s;
			s = argv[++i];
		}
		out[n++] = (char *)s;
	}
	for (size_t i = 0; i < n_extra; i++)
		out[n++] = (char *)extra[i];
	out[n] = NULL;
	svc_cc_args_free(&a);
	*ret = out;
	return 0;
}

int svc_ar_args(size_t argc, char *const *argv, size_t *ret_archive)
{
	/* ar [-]OPS[MODS] [RELPOS] [COUNT] ARCHIVE MEMBER...; --plugin P and
	 * --target T may come first (gcc-ar passes --plugin) */
	size_t i = 1;
	while (i + 1 < argc && (strcmp(argv[i], "--plugin") == 0 || strcmp(argv[i], "--target") == 0))
		i += 2;
	if (i >= argc)
		return 0;
	const char *ops = argv[i][0] == '-' ? argv[i] + 1 : argv[i];
	if (!strpbrk(ops, "rq") || strpbrk(ops, "dmptx"))
		return 0;
	i++;
	if (strpbrk(ops, "abi"))
		i++; /* the position member */
	if (strchr(ops, 'N'))
		i++; /* the count */
	if (i >= argc)
		return 0;
	*ret_archive = i;
	return 1;
}
