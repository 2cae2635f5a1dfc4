/* The compiler wrapper's work (tools/cc/svc-cc.c is its thin front end):
 * find the real compiler behind the wrapper's name, and after it built an
 * object, record how.
 *
 * The object is never touched: the inputs (source and every header read)
 * come from a second, separate preprocessor run with the same flags and
 * -M -MF into a private file, not from adding -MD to the real command, so
 * the build's own dependency files (-MD/-MF it may pass itself) and its
 * outputs stay exactly what the build asked for. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "svc/internal.h"

int svc_cc_find_real(const char *name, const char *path_env, char **ret, BaseErr *e)
{
	char self[PATH_MAX];
	if (!realpath("/proc/self/exe", self))
		return base_err(e, -errno, "/proc/self/exe: %s", strerror(errno));
	_cleanup_free_ char *path = strdup(path_env ? path_env : "/usr/bin:/bin");
	char *save = NULL;
	if (!path)
		return -ENOMEM;
	for (char *d = strtok_r(path, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char cand[PATH_MAX], real[PATH_MAX];
		if (snprintf(cand, sizeof(cand), "%s/%s", *d ? d : ".", name) >= (int)sizeof(cand))
			continue;
		/* skip every name that leads back to the wrapper itself */
		if (access(cand, X_OK) < 0 || !realpath(cand, real) || strcmp(real, self) == 0)
			continue;
		if (!(*ret = strdup(cand)))
			return -ENOMEM;
		return 0;
	}
	return base_err(e, -ENOENT, "%s: no real compiler of that name on PATH", name);
}

static char *absolute(const char *cwd, const char *p)
{
	char real[PATH_MAX];
	_cleanup_free_ char *joined = p[0] == '/' ? strdup(p) : base_strdupf("%s/%s", cwd, p);
	if (!joined)
		return NULL;
	if (realpath(joined, real))
		return strdup(real);
	return BASE_TAKE_PTR(joined);
}

static int add_input(SvcCcRecord *rec, const char *cwd, const char *path)
{
	char *a = absolute(cwd, path);
	char **nv = a ? realloc(rec->inputs, (rec->n_inputs + 1) * sizeof(char *)) : NULL;
	if (!nv) {
		free(a);
		return -ENOMEM;
	}
	rec->inputs = nv;
	rec->inputs[rec->n_inputs++] = a;
	return 0;
}

static void inputs_free(SvcCcRecord *rec)
{
	for (size_t i = 0; i < rec->n_inputs; i++)
		free(rec->inputs[i]);
	free(rec->inputs);
	rec->inputs = NULL;
	rec->n_inputs = 0;
}

/* Write a link or archive record (output set by the caller), then free
 * what the record owns. */
static int finish_record(const char *logdir, SvcCcRecord *rec, int r, BaseErr *e)
{
	if (r >= 0)
		r = rec->output ? svc_cc_record_write(logdir, rec, e) : -ENOMEM;
	free(rec->output);
	rec->output = NULL;
	inputs_free(rec);
	return r;
}

/* The prerequisites of the first rule of a make dependency file. */
static int parse_deps(char *text, const char *cwd, SvcCcRecord *rec)
{
	char *p = strchr(text, ':');
	while (p && p[1] && p[1] != ' ' && p[1] != '\t' && p[1] != '\n' && p[1] != '\\')
		p = strchr(p + 1, ':');
	if (!p)
		return -EBADMSG;
	p++;
	char word[PATH_MAX];
	size_t w = 0;
	for (;; p++) {
		int end = !*p || *p == '\n';
		if (*p == '\\' && p[1] == '\n') {
			p++;
			end = 0;
		} else if (*p == '\\' && (p[1] == ' ' || p[1] == '#')) {
			if (w < sizeof(word) - 1)
				word[w++] = *++p;
			continue;
		} else if (*p == '$' && p[1] == '$') {
			if (w < sizeof(word) - 1)
				word[w++] = *++p;
			continue;
		} else if (!end && *p != ' ' && *p != '\t') {
			if (w < sizeof(word) - 1)
				word[w++] = *p;
			continue;
		}
		if (w) {
			word[w] = 0;
			w = 0;
			if (add_input(rec, cwd, word) < 0)
				return -ENOMEM;
		}
		if (end)
			return 0;
	}
}


/* One compile record per source: its inputs from a preprocessor run. */
static int record_compile(const char *logdir, SvcCcRecord *rec, size_t argc, char **argv,
			  const char *source, const char *output, BaseErr *e)
{
	_cleanup_free_ char *depfile = base_strdupf("%s/.dep-XXXXXX", logdir);
	_cleanup_free_ char **cmd = NULL;
	_cleanup_close_ int fd = -1;
	int status = 0, r;
	if (!depfile)
		return -ENOMEM;
	const char *extra[] = { "-M", "-MF", depfile, NULL };
	if ((fd = mkostemp(depfile, O_CLOEXEC)) < 0)
		return base_err(e, -errno, "%s: %s", depfile, strerror(errno));
	r = svc_cc_command(rec->compiler, argc, argv, source, extra, &cmd);
	if (r >= 0)
		r = svc_run(cmd, &(SvcRunOpts){ .path_exact = 1, .out_fd = -1 }, &status, e);
	if (r >= 0 && status != 0)
		r = base_err(e, -EIO, "%s: the dependency run of %s failed (exit %d)", source,
			     rec->compiler, status);
	uint8_t *buf = NULL;
	size_t len = 0;
	if (r >= 0)
		r = base_fs_read_fd(fd, 1 << 24, &buf, &len);
	unlink(depfile);
	if (r >= 0) {
		char *text = realloc(buf, len + 1);
		if (!text)
			r = -ENOMEM;
		else {
			buf = NULL;
			text[len] = 0;
			r = parse_deps(text, rec->cwd, rec);
			free(text);
			if (r == -EBADMSG)
				r = base_err(e, r, "%s: unreadable dependency output", source);
		}
	}
	free(buf);
	_cleanup_free_ char *out = NULL;
	if (r >= 0 && !output) {
		/* no -o: the object lands in the current directory as BASENAME.o */
		const char *b = strrchr(source, '/') ? strrchr(source, '/') + 1 : source;
		const char *dot = strrchr(b, '.');
		out = base_strdupf("%.*s.o", (int)(dot ? dot - b : (int)strlen(b)), b);
		output = out;
		if (!out)
			r = -ENOMEM;
	}
	if (r >= 0) {
		rec->source = (char *)source;
		rec->output = absolute(rec->cwd, output);
		r = rec->output ? svc_cc_record_write(logdir, rec, e) : -ENOMEM;
		free(rec->output);
		rec->output = NULL;
		rec->source = NULL;
	}
	inputs_free(rec);
	return r;
}

int svc_cc_record_run(const char *logdir, const char *compiler, size_t argc, char **argv,
		      BaseErr *e)
{
	SvcCcArgs a = { 0 };
	char cwd[PATH_MAX];
	int r = svc_cc_args(argc, argv, &a);
	if (r < 0)
		return r;
	if (!getcwd(cwd, sizeof(cwd))) {
		svc_cc_args_free(&a);
		return base_err(e, -errno, "getcwd: %s", strerror(errno));
	}
	SvcCcRecord rec = { .compiler = (char *)compiler, .cwd = cwd, .argc = argc, .argv = argv };
	if (a.no_object || !a.n_files) {
		/* preprocessing, assembly listing, a version query: no object */
	} else if (a.compile_only) {
		rec.kind = SVC_CC_COMPILE;
		/* -o with several sources is an error for the compiler itself */
		for (size_t i = 0; i < a.n_sources && r >= 0; i++)
			r = record_compile(logdir, &rec, argc, argv, argv[a.sources[i]],
					   a.n_sources == 1 ? a.output : NULL, e);
	} else {
		/* a link (perhaps compiling sources on the way: those have no
		 * object to rebuild, and `svc build` refuses them by name) */
		rec.kind = SVC_CC_LINK;
		rec.output = absolute(cwd, a.output ? a.output : "a.out");
		for (size_t i = 0; i < a.n_files && r >= 0 && rec.output; i++)
			r = add_input(&rec, cwd, argv[a.files[i]]);
		r = finish_record(logdir, &rec, r, e);
	}
	svc_cc_args_free(&a);
	return r;
}

/* The members an archiver put into an archive. */
static int record_archive(const char *logdir, const char *real, size_t argc, char **argv,
			  BaseErr *e)
{
	char cwd[PATH_MAX];
	size_t ai = 0;
	int r = 0;
	if (!svc_ar_args(argc, argv, &ai))
		return 0;
	if (!getcwd(cwd, sizeof(cwd)))
		return base_err(e, -errno, "getcwd: %s", strerror(errno));
	SvcCcRecord rec = { .kind = SVC_CC_ARCHIVE, .compiler = (char *)real, .cwd = cwd,
			    .argc = argc, .argv = argv, .output = absolute(cwd, argv[ai]) };
	for (size_t i = ai + 1; i < argc && r >= 0 && rec.output; i++)
		r = add_input(&rec, cwd, argv[i]);
	return finish_record(logdir, &rec, r, e);
}

static int is_archiver(const char *name)
{
	size_t n = strlen(name);
	const char *v = strrchr(name, '-');
	/* ar, gcc-ar, x86_64-linux-gnu-ar, gcc-ar-12 */
	return strcmp(name, "ar") == 0 || (n > 3 && strcmp(name + n - 3, "-ar") == 0) ||
	       (v && v > name + 2 && strncmp(v - 3, "-ar-", 4) == 0);
}

int svc_cc_wrap(int argc, char **argv, int *ret_status, BaseErr *e)
{
	const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	const char *logdir = getenv("SVC_CC_LOG");
	_cleanup_free_ char *real = NULL;
	int status = 0;
	int r = svc_cc_find_real(name, getenv("PATH"), &real, e);
	if (r < 0)
		return r;
	/* argv[0] the real path: gcc finds its own programs relative to it, and
	 * by name it would find the wrapper first on PATH */
	char *saved = argv[0];
	argv[0] = real;
	r = svc_run(argv, &(SvcRunOpts){ .path_exact = 1, .out_fd = -1 }, &status, e);
	argv[0] = saved;
	if (r >= 0 && status == 0 && logdir && *logdir)
		r = is_archiver(name) ? record_archive(logdir, real, (size_t)argc, argv, e)
				      : svc_cc_record_run(logdir, real, (size_t)argc, argv, e);
	if (r >= 0)
		*ret_status = status;
	return r;
}
