/* svc build: from a source tree and patches to a signed package, in one
 * command (docs/vendor-guide.md "svc build: one command").
 *
 * Why the steps are what they are:
 * - The project's own build runs once, unchanged, with the compiler wrapper
 *   first on PATH: the recorded commands are the ones that made the base,
 *   not a guess from a Makefile (libcare's and kpatch's lesson: a wrapper
 *   that rewrites flags, or a dropped linker flag, breaks the fix).
 * - Old and new objects are compiled again, not taken from the build: the
 *   diff needs -ffunction-sections -fdata-sections, which the base build
 *   rarely has; both sides get the same extra flags so only the patch
 *   differs.
 * - Same paths: the old object is compiled in the original tree, the new one
 *   in the patched copy with -ffile-prefix-map=COPY=TREE, so __FILE__ (assert
 *   messages) and debug paths read the original tree's.  A prefix map rather
 *   than swapping the two trees under one name: a swap renames the vendor's
 *   tree while we run, and a crash in between leaves it in the wrong place.
 *   Relative paths (make's usual) are equal anyway: both sides run in the
 *   same relative directory.
 * - Base verification and the debug-file lookup belong to the stock-binaries
 *   work (issue 10, elf/verify.c, elf/symbols.c): a build with the base's
 *   build-id is the base; otherwise svc pack checks the old objects against
 *   the base's bytes (verify_by_code() says so) and finds its symbols. */
#include <elf.h>
#include <fcntl.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elf/elf.h"
#include "svc/internal.h"

static const char *const step_names[_SVC_BUILD_STEP_MAX] = {
	[SVC_BUILD_STEP_FETCH] = "fetch",
	[SVC_BUILD_STEP_BUILD] = "build",
	[SVC_BUILD_STEP_VERIFY] = "verify",
	[SVC_BUILD_STEP_PATCH] = "patch",
	[SVC_BUILD_STEP_CHANGED] = "changed",
	[SVC_BUILD_STEP_COMPILE] = "compile",
	[SVC_BUILD_STEP_PACK] = "pack",
};

const char *svc_build_step_name(SvcBuildStep s)
{
	return s < _SVC_BUILD_STEP_MAX ? step_names[s] : "?";
}

/* The names a build calls its C and C++ compilers by (Debian's triplet
 * names included: dpkg-buildflags and debhelper use them). */
static const char *const cc_names[] = {
	"cc", "c89", "c99", "gcc", "clang", "c++", "g++", "clang++",
	"x86_64-linux-gnu-gcc", "x86_64-linux-gnu-g++", "gcc-12", "g++-12", "clang-14",
	"x86_64-linux-gnu-gcc-12", "x86_64-linux-gnu-g++-12",
	/* archivers: which objects went into which static archive */
	"ar", "x86_64-linux-gnu-ar", "gcc-ar", "gcc-ar-12", "x86_64-linux-gnu-gcc-ar",
	"x86_64-linux-gnu-gcc-ar-12",
};

typedef struct Tu {
	const SvcCcRecord *rec;
	char *old_obj, *new_obj;
} Tu;

typedef struct Work {
	const SvcBuildSpec *spec;
	BaseErr *e;
	char *dir;               /* work directory (absolute) */
	char *src;               /* realpath of the source tree */
	char *copy;              /* dir/new: the patched copy */
	const char *command;     /* the build command */
	const SvcBuildTarget *targets;
	size_t n_targets;
	SvcBuildTarget *deb_targets; /* --deb: the targets found in the built packages */
	SvcCcRecord *recs;
	size_t n_recs;
	const SvcCcRecord **linked;  /* per target: the link record of its file */
	char **symbols_of;           /* per target: the file whose symbols stand for the base */
	char **patched;          /* files the patches touch, relative */
	size_t n_patched;
	Tu *tus;
	size_t n_tus;
	uint64_t t0;
} Work;

static void say(Work *w, SvcBuildStep s, uint64_t ns, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void say(Work *w, SvcBuildStep s, uint64_t ns, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	if (!w->spec->step)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	w->spec->step(w->spec->step_ctx, s, ns, line);
}

static int under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return strncmp(path, dir, n) == 0 && (path[n] == '/' || !path[n]);
}

/* path with the prefix `from` replaced by `to` (a copy). */
static char *rebase(const char *path, const char *from, const char *to)
{
	const char *hit = strstr(path, from);
	size_t n = strlen(from);
	while (hit && hit[n] && hit[n] != '/')
		hit = strstr(hit + 1, from);
	if (!hit)
		return strdup(path);
	return base_strdupf("%.*s%s%s", (int)(hit - path), path, to, hit + n);
}

static int read_whole(const char *path, uint8_t **buf, size_t *len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return base_fs_read_fd(fd, (size_t)1 << 30, buf, len);
}

/* 1 if the two files differ (a missing one differs from a present one). */
static int differ(const char *a, const char *b)
{
	_cleanup_free_ uint8_t *x = NULL, *y = NULL;
	size_t nx = 0, ny = 0;
	int ra = read_whole(a, &x, &nx), rb = read_whole(b, &y, &ny);
	if (ra < 0 || rb < 0)
		return (ra < 0) != (rb < 0);
	return nx != ny || (nx && memcmp(x, y, nx) != 0); /* empty: no buffer to compare */
}

static int log_fd(Work *w, const char *name, int *ret_fd)
{
	_cleanup_free_ char *p = base_strdupf("%s/%s", w->dir, name);
	if (!p)
		return -ENOMEM;
	int fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return base_err(w->e, -errno, "%s: %s", p, strerror(errno));
	*ret_fd = fd;
	return 0;
}

/* ---- 1: the project's own build ----------------------------------------- */

static int step_build(Work *w)
{
	_cleanup_free_ char *bin = base_strdupf("%s/bin", w->dir);
	_cleanup_free_ char *log = base_strdupf("%s/log", w->dir);
	_cleanup_free_ char *path_env = NULL, *log_env = NULL, *logfile = NULL;
	_cleanup_close_ int fd = -1;
	int status = 0, r;
	size_t n_compile = 0, n_link = 0;

	if (!bin || !log)
		return -ENOMEM;
	if (mkdir(bin, 0755) < 0 || mkdir(log, 0755) < 0)
		return base_err(w->e, -errno, "%s: %s", w->dir, strerror(errno));
	for (size_t i = 0; i < sizeof(cc_names) / sizeof(*cc_names); i++) {
		_cleanup_free_ char *l = base_strdupf("%s/%s", bin, cc_names[i]);
		if (!l)
			return -ENOMEM;
		if (symlink(w->spec->wrapper, l) < 0)
			return base_err(w->e, -errno, "%s: %s", l, strerror(errno));
	}
	const char *path = getenv("PATH");
	path_env = base_strdupf("PATH=%s:%s", bin, path ? path : "/usr/bin:/bin");
	log_env = base_strdupf("SVC_CC_LOG=%s", log);
	logfile = base_strdupf("%s/build.log", w->dir);
	if (!path_env || !log_env || !logfile)
		return -ENOMEM;
	r = log_fd(w, "build.log", &fd);
	if (r < 0)
		return r;
	char *env[] = { path_env, log_env, NULL };
	char *argv[] = { "/bin/sh", "-c", (char *)w->command, NULL };
	r = svc_run(argv, &(SvcRunOpts){ .cwd = w->src, .out_fd = fd, .stdin_null = 1, .env = env,
					 .path_exact = 1 }, &status, w->e);
	if (r < 0)
		return r;
	if (status != 0) {
		char last[512];
		svc_log_last_line(logfile, last, sizeof(last));
		return base_err(w->e, -EIO, "%s: build command failed (exit %d): %s", w->src, status,
				last);
	}
	r = svc_cc_log_read(log, &w->recs, &w->n_recs, w->e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < w->n_recs; i++) {
		n_compile += w->recs[i].kind == SVC_CC_COMPILE;
		n_link += w->recs[i].kind == SVC_CC_LINK;
	}
	if (!n_compile)
		return base_err(w->e, -ENOENT, "%s: the build compiled nothing (is the tree clean? "
				"the wrapper sees only the compiles that run)", w->src);
	say(w, SVC_BUILD_STEP_BUILD, base_now_ns() - w->t0, "'%s' in %s: %zu compiles, %zu links "
	    "recorded", w->command, w->src, n_compile, n_link);
	return 0;
}

/* ---- 2: the build reproduces each base ---------------------------------- */

/* The .comment strings of f (compiler identifications), NUL-separated. */
static const ElfSection *comment_of(const ElfFile *f)
{
	const ElfSection *s = elf_find_section(f, ".comment");
	return s && s->data && s->size ? s : NULL;
}

static int has_string(const ElfSection *s, const char *str)
{
	for (size_t o = 0; o < s->size;) {
		const char *p = (const char *)s->data + o;
		size_t n = strnlen(p, s->size - o);
		if (n == strlen(str) && memcmp(p, str, n) == 0)
			return 1;
		o += n + 1;
	}
	return 0;
}

/* A compiler identification in base's .comment that the build's lacks, or NULL. */
static const char *compiler_differs(const ElfFile *base, const ElfFile *built, const char **ret_ours)
{
	const ElfSection *b = comment_of(base), *o = comment_of(built);
	if (!b || !o)
		return NULL;
	*ret_ours = (const char *)o->data;
	for (size_t off = 0; off < b->size;) {
		const char *p = (const char *)b->data + off;
		size_t n = strnlen(p, b->size - off);
		if (n && n < b->size - off && !has_string(o, p))
			return p;
		off += n + 1;
	}
	return NULL;
}

/* The one of ours closest to p (longest common prefix): what to name beside it. */
static const char *closest(char **ours, size_t n, const char *p)
{
	const char *best = ours[0];
	size_t best_len = 0;
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;
		while (p[k] && p[k] == ours[i][k])
			k++;
		if (k > best_len) {
			best_len = k;
			best = ours[i];
		}
	}
	return best;
}

/* The compilers and flags of the base's units (DW_AT_producer, from the base
 * or its debug file found as packing finds it) against this build's.  Every
 * producer of the base must be one of the build's: another -O, another
 * compiler version or another code-generation flag is refused naming both
 * before any function is compared.  No debug info on either side: said, and
 * left to base verification at packing. */
static int producers_match(Work *w, const SvcBuildTarget *t, const ElfFile *base,
			   const ElfFile *built, const char *built_path)
{
	ElfBuildOptions o = { .debug_dirs = &w->spec->debug_dir,
			      .n_debug_dirs = w->spec->debug_dir ? 1 : 0 };
	ElfFile *dbg = NULL;
	ElfSymbolSource src = ELF_SYMS_NONE;
	_cleanup_free_ char *dbg_path = NULL;
	char **theirs = NULL, **ours = NULL;
	size_t n_theirs = 0, n_ours = 0;
	int r = elf_dwarf_producers(base, &theirs, &n_theirs, w->e);
	const char *from = t->base_file;
	if (r >= 0 && !n_theirs && elf_find_debug_file(base, t->base_file, &o, &dbg, &src, &dbg_path,
						       NULL) >= 0) {
		r = elf_dwarf_producers(dbg, &theirs, &n_theirs, w->e);
		from = dbg_path;
	}
	if (r >= 0)
		r = elf_dwarf_producers(built, &ours, &n_ours, w->e);
	if (r >= 0 && (!n_theirs || !n_ours))
		say(w, SVC_BUILD_STEP_VERIFY, 0, "%s: producers not compared (no debug info in %s)",
		    t->path, !n_theirs ? "the base nor a debug file of it" : built_path);
	for (size_t i = 0; r >= 0 && n_ours && i < n_theirs; i++) {
		size_t k = 0;
		while (k < n_ours && strcmp(ours[k], theirs[i]) != 0)
			k++;
		if (k == n_ours)
			r = base_err(w->e, -ESTALE, "%s: built by another compiler or flags: the base "
				     "(DW_AT_producer of %s) by '%s', this build by '%s'", t->base_file,
				     from, theirs[i], closest(ours, n_ours, theirs[i]));
	}
	if (r >= 0 && n_theirs && n_ours)
		say(w, SVC_BUILD_STEP_VERIFY, 0, "%s: DW_AT_producer: the base's (%zu, from %s) are "
		    "among this build's: '%s'", t->path, n_theirs, from, theirs[0]);
	elf_producers_free(theirs, n_theirs);
	elf_producers_free(ours, n_ours);
	elf_close(dbg);
	return r;
}

static void hex(const ElfFile *f, char *out, size_t n)
{
	if (!f->build_id_len) {
		snprintf(out, n, "(none)");
		return;
	}
	size_t k = f->build_id_len * 2 + 1 <= n ? f->build_id_len : (n - 1) / 2;
	base_hex(out, f->build_id, k);
}

/* Another build-id but the same compiler (paths, timestamps or link order
 * may differ): base verification (issue 10, elf/verify.c) decides.  Packing
 * checks each old object's functions against the base's bytes and refuses
 * naming the first that differs; the symbols then come from the base or its
 * debug file (--debug-dir, .gnu_debuglink, debuginfod). */
static int verify_by_code(Work *w, const SvcBuildTarget *t, const ElfFile *base,
			  const ElfFile *built, const char *built_path)
{
	char bb[129], ob[129];
	hex(base, bb, sizeof(bb));
	hex(built, ob, sizeof(ob));
	say(w, SVC_BUILD_STEP_VERIFY, 0, "%s: %s has build-id %s, the base %s: its functions are "
	    "checked against the base's bytes when packing", t->path, built_path, ob, bb);
	return 0;
}

static int verify_target(Work *w, size_t ti)
{
	const SvcBuildTarget *t = &w->targets[ti];
	ElfFile *base = NULL, *cand = NULL;
	const SvcCcRecord *by_name = NULL;
	int r = elf_open_path(t->base_file, &base, w->e);
	if (r < 0)
		return r;
	const char *bname = strrchr(t->base_file, '/') ? strrchr(t->base_file, '/') + 1 : t->base_file;
	const char *pname = strrchr(t->path, '/') + 1;
	for (size_t j = w->n_recs; j > 0 && r >= 0 && !w->linked[ti]; j--) { /* newest first */
		const SvcCcRecord *l = &w->recs[j - 1];
		ElfFile *f = NULL;
		const char *lname = strrchr(l->output, '/') + 1;
		if (l->kind != SVC_CC_LINK || elf_open_path(l->output, &f, NULL) < 0)
			continue;
		if (base->build_id_len && f->build_id_len == base->build_id_len &&
		    memcmp(f->build_id, base->build_id, base->build_id_len) == 0) {
			w->linked[ti] = l;
			w->symbols_of[ti] = strdup(l->output);
			if (!w->symbols_of[ti])
				r = -ENOMEM;
		} else if (!by_name && (strcmp(lname, bname) == 0 || strcmp(lname, pname) == 0 ||
					strncmp(pname, lname, strlen(lname)) == 0)) {
			by_name = l;
			elf_close(cand);
			cand = BASE_TAKE_PTR(f);
		}
		elf_close(f);
	}
	if (r >= 0 && w->linked[ti])
		say(w, SVC_BUILD_STEP_VERIFY, 0, "%s: %s has the base's build-id", t->path,
		    w->linked[ti]->output);
	else if (r >= 0 && !by_name)
		r = base_err(w->e, -ENOENT, "%s: the build linked no file with its build-id, nor one "
			     "named %s", t->base_file, pname);
	else if (r >= 0) {
		const char *ours = NULL, *theirs = compiler_differs(base, cand, &ours);
		if (theirs)
			r = base_err(w->e, -ESTALE, "%s: built by another compiler: the base by '%s', "
				     "this build by '%s'", t->base_file, theirs, ours);
		else
			r = producers_match(w, t, base, cand, by_name->output);
		if (r >= 0 && !theirs)
			r = verify_by_code(w, t, base, cand, by_name->output);
		if (r >= 0)
			w->linked[ti] = by_name;
	}
	elf_close(cand);
	elf_close(base);
	return r;
}

static int step_verify(Work *w)
{
	uint64_t t = base_now_ns();
	int r = 0;
	w->linked = calloc(w->n_targets + 1, sizeof(*w->linked));
	w->symbols_of = calloc(w->n_targets + 1, sizeof(*w->symbols_of));
	if (!w->linked || !w->symbols_of)
		return -ENOMEM;
	for (size_t i = 0; i < w->n_targets && r >= 0; i++)
		r = verify_target(w, i);
	size_t same = 0;
	for (size_t i = 0; i < w->n_targets; i++)
		same += w->symbols_of[i] != NULL;
	if (r >= 0)
		say(w, SVC_BUILD_STEP_VERIFY, base_now_ns() - t, "%zu of %zu target%s reproduced "
		    "(build-id), the others checked when packing", same, w->n_targets,
		    w->n_targets == 1 ? "" : "s");
	return r;
}

/* ---- 3: patch a copy, find the changed units, compile them ---------------- */

static int note_patched(Work *w, const char *logfile)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len = 0;
	int r = read_whole(logfile, &buf, &len);
	if (r < 0)
		return base_err(w->e, r, "%s: %s", logfile, base_strerror(r));
	char *save = NULL;
	uint8_t *grown = realloc(buf, len + 1); /* buf stays ours (and freed) on failure */
	if (!grown)
		return -ENOMEM;
	buf = grown;
	char *text = (char *)buf;
	text[len] = 0;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (strncmp(l, "patching file ", 14) != 0)
			continue;
		const char *f = l + 14;
		size_t n = strlen(f);
		if (n >= 2 && (f[0] == '\'' || f[0] == '"')) /* newer patch quotes names */
			f++, n -= 2;
		char **nv = realloc(w->patched, (w->n_patched + 1) * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		w->patched = nv;
		if (!(nv[w->n_patched] = strndup(f, n)))
			return -ENOMEM;
		w->n_patched++;
	}
	return 0;
}

static int step_patch(Work *w)
{
	uint64_t t = base_now_ns();
	_cleanup_free_ char *from = base_strdupf("%s/.", w->src);
	int status = 0, r;
	if (!from)
		return -ENOMEM;
	char *cp[] = { "cp", "-a", from, w->copy, NULL };
	r = svc_run(cp, &(SvcRunOpts){ .stdin_null = 1, .out_fd = -1 }, &status, w->e);
	if (r >= 0 && status)
		r = base_err(w->e, -EIO, "%s: cannot copy the tree to %s (cp exit %d)", w->src, w->copy,
			     status);
	for (size_t i = 0; i < w->spec->n_patches && r >= 0; i++) {
		const char *p = w->spec->patches[i];
		char abs[PATH_MAX];
		_cleanup_free_ char *logfile = base_strdupf("%s/patch.%zu.log", w->dir, i);
		_cleanup_close_ int lfd = -1;
		if (!logfile)
			return -ENOMEM;
		if (!realpath(p, abs))
			return base_err(w->e, -errno, "%s: %s", p, strerror(errno));
		if ((lfd = open(logfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
			return base_err(w->e, -errno, "%s: %s", logfile, strerror(errno));
		/* a dry run first: a failing hunk leaves the copy as it was */
		char *dry[] = { "patch", "-p1", "--batch", "--forward", "--dry-run", "-i", abs, NULL };
		char *wet[] = { "patch", "-p1", "--batch", "--forward", "-i", abs, NULL };
		SvcRunOpts o = { .cwd = w->copy, .out_fd = lfd, .stdin_null = 1 };
		r = svc_run(dry, &o, &status, w->e);
		if (r >= 0 && status) {
			char last[512];
			svc_log_last_line(logfile, last, sizeof(last));
			return base_err(w->e, -EINVAL, "%s: does not apply to %s: %s", p, w->src, last);
		}
		if (r >= 0 && (ftruncate(lfd, 0) < 0 || lseek(lfd, 0, SEEK_SET) < 0))
			r = -errno;
		if (r >= 0)
			r = svc_run(wet, &o, &status, w->e);
		if (r >= 0 && status)
			r = base_err(w->e, -EIO, "%s: patch failed after a clean dry run (exit %d)", p,
				     status);
		if (r >= 0)
			r = note_patched(w, logfile);
	}
	if (r >= 0)
		say(w, SVC_BUILD_STEP_PATCH, base_now_ns() - t, "%zu patch%s applied to a copy (%s): "
		    "%zu file%s changed", w->spec->n_patches, w->spec->n_patches == 1 ? "" : "es",
		    w->copy, w->n_patched, w->n_patched == 1 ? "" : "s");
	return r;
}

static int is_input(const SvcCcRecord *rec, const char *abs)
{
	for (size_t i = 0; i < rec->n_inputs; i++)
		if (strcmp(rec->inputs[i], abs) == 0)
			return 1;
	return 0;
}

/* 1 if the link l used object obj, directly or through a static archive
 * (the archiver's records say what went in; archives of archives too). */
static int links_object(const Work *w, const SvcCcRecord *l, const char *obj, int depth)
{
	if (is_input(l, obj))
		return 1;
	for (size_t k = 0; k < l->n_inputs && depth < 8; k++)
		for (size_t i = 0; i < w->n_recs; i++)
			if (w->recs[i].kind == SVC_CC_ARCHIVE &&
			    strcmp(w->recs[i].output, l->inputs[k]) == 0 &&
			    links_object(w, &w->recs[i], obj, depth + 1))
				return 1;
	return 0;
}

static int tu_order(const void *a, const void *b)
{
	return strcmp(((const Tu *)a)->rec->output, ((const Tu *)b)->rec->output);
}

static int step_changed(Work *w)
{
	uint64_t t = base_now_ns();
	int r = 0;
	w->tus = calloc(w->n_recs ? w->n_recs : 1, sizeof(*w->tus));
	if (!w->tus)
		return -ENOMEM;
	/* every file the patches touch must be something the build read */
	for (size_t p = 0; p < w->n_patched && r >= 0; p++) {
		_cleanup_free_ char *abs = base_strdupf("%s/%s", w->src, w->patched[p]);
		SvcCcArgs a = { 0 };
		char *one[] = { "cc", w->patched[p], NULL };
		int read_by_build = 0, is_source;
		if (!abs)
			return -ENOMEM;
		for (size_t i = 0; i < w->n_recs && !read_by_build; i++)
			read_by_build = is_input(&w->recs[i], abs);
		r = svc_cc_args(2, one, &a);
		is_source = a.n_sources > 0;
		svc_cc_args_free(&a);
		if (r < 0)
			return r;
		if (!read_by_build && is_source)
			return base_err(w->e, -ENOENT, "%s: changed by the patch, but the build never "
					"compiled it", abs);
		if (!read_by_build)
			say(w, SVC_BUILD_STEP_CHANGED, 0, "%s: changed, but no compile read it: ignored",
			    w->patched[p]);
	}
	/* a unit changed if its source or any header it read did; the last
	 * record of an object wins (a build may compile one twice) */
	for (size_t i = 0; i < w->n_recs; i++) {
		const SvcCcRecord *rec = &w->recs[i];
		int changed = 0, later = 0;
		if (rec->kind != SVC_CC_COMPILE)
			continue;
		for (size_t k = i + 1; k < w->n_recs && !later; k++)
			later = w->recs[k].kind == SVC_CC_COMPILE &&
				strcmp(w->recs[k].output, rec->output) == 0;
		for (size_t k = 0; k < rec->n_inputs && !changed && !later; k++) {
			if (!under(rec->inputs[k], w->src))
				continue;
			_cleanup_free_ char *copy = rebase(rec->inputs[k], w->src, w->copy);
			if (!copy)
				return -ENOMEM;
			changed = differ(rec->inputs[k], copy);
		}
		if (!changed)
			continue;
		if (!under(rec->cwd, w->src))
			return base_err(w->e, -EINVAL, "%s: compiled outside the source tree (in %s): "
					"not supported", rec->source, rec->cwd);
		w->tus[w->n_tus++].rec = rec;
		say(w, SVC_BUILD_STEP_CHANGED, 0, "%s (%s)", rec->output + strlen(w->src) + 1,
		    rec->source);
	}
	if (!w->n_tus)
		return base_err(w->e, -EINVAL, "%s: the patches change no compiled file", w->src);
	/* the units in one canonical order (by output path), not in the order a
	 * parallel build happened to finish them: the package depends only on
	 * the source and the patches, and equals one packed by hand with the
	 * --objects pairs in that order */
	qsort(w->tus, w->n_tus, sizeof(*w->tus), tu_order);
	say(w, SVC_BUILD_STEP_CHANGED, base_now_ns() - t, "%zu translation unit%s changed", w->n_tus,
	    w->n_tus == 1 ? "" : "s");
	return 0;
}

static int compile_one(Work *w, const SvcCcRecord *rec, int fd, int new, const char *out)
{
	const char *extra[] = { "-c", "-ffunction-sections", "-fdata-sections", "-o", out, NULL, NULL };
	_cleanup_free_ char *map = NULL, *cwd = NULL, *source = NULL;
	_cleanup_free_ char **cmd = NULL;
	char **argv = rec->argv;
	int status = 0, r;

	if (new) {
		/* every argument naming the tree names the copy instead */
		map = base_strdupf("-ffile-prefix-map=%s=%s", w->copy, w->src);
		cwd = rebase(rec->cwd, w->src, w->copy);
		source = rebase(rec->source, w->src, w->copy);
		argv = calloc(rec->argc + 1, sizeof(*argv));
		if (!map || !cwd || !source || !argv) {
			free(argv);
			return -ENOMEM;
		}
		for (size_t i = 0; i < rec->argc; i++)
			argv[i] = rebase(rec->argv[i], w->src, w->copy);
		extra[5] = extra[4];
		extra[4] = extra[3];
		extra[3] = map;
	}
	r = svc_cc_command(rec->compiler, rec->argc, argv, new ? source : rec->source, extra, &cmd);
	if (r >= 0)
		r = svc_run(cmd, &(SvcRunOpts){ .cwd = new ? cwd : rec->cwd, .out_fd = fd,
						.stdin_null = 1, .path_exact = 1 }, &status, w->e);
	if (r >= 0 && status)
		r = base_err(w->e, -EIO, "%s: the %s compile failed (exit %d), see %s/compile.log",
			     rec->source, new ? "patched" : "original", status, w->dir);
	if (new) {
		for (size_t i = 0; i < rec->argc; i++)
			free(argv[i]);
		free(argv);
	}
	return r;
}

static int step_compile(Work *w)
{
	uint64_t t = base_now_ns();
	_cleanup_free_ char *obj = base_strdupf("%s/obj", w->dir);
	_cleanup_close_ int fd = -1;
	int r;
	if (!obj)
		return -ENOMEM;
	if (mkdir(obj, 0755) < 0)
		return base_err(w->e, -errno, "%s: %s", obj, strerror(errno));
	r = log_fd(w, "compile.log", &fd);
	for (size_t i = 0; i < w->n_tus && r >= 0; i++) {
		Tu *u = &w->tus[i];
		const char *b = strrchr(u->rec->output, '/') + 1;
		u->old_obj = base_strdupf("%s/%zu-%s.old.o", obj, i, b);
		u->new_obj = base_strdupf("%s/%zu-%s.new.o", obj, i, b);
		if (!u->old_obj || !u->new_obj)
			return -ENOMEM;
		r = compile_one(w, u->rec, fd, 0, u->old_obj);
		if (r >= 0)
			r = compile_one(w, u->rec, fd, 1, u->new_obj);
	}
	if (r >= 0)
		say(w, SVC_BUILD_STEP_COMPILE, base_now_ns() - t, "%zu unit%s compiled old and new "
		    "(-ffunction-sections -fdata-sections) into %s", w->n_tus,
		    w->n_tus == 1 ? "" : "s", obj);
	return r;
}

/* ---- 4: objects to targets, refusals, pack ------------------------------- */

/* The functions one object pair changes (data changes refused by name).
 * Whether each can be redirected (a symbol in the base, or only changed
 * callers reach it) is the payload builder's rule, applied when packing. */
static int diff_pair(Work *w, const SvcObjectPair *pair, size_t *ret_n)
{
	ElfFile *o = NULL, *nw = NULL;
	ElfFuncChange *ch = NULL;
	size_t nch = 0;
	int r = elf_open_path(pair->old_obj, &o, w->e);
	if (r >= 0)
		r = elf_open_path(pair->new_obj, &nw, w->e);
	if (r >= 0)
		r = elf_diff_objects(o, nw, &ch, &nch, w->e);
	if (r >= 0)
		*ret_n = nch;
	elf_func_changes_free(ch, nch);
	elf_close(o);
	elf_close(nw);
	return r;
}

static int step_pack(Work *w, SvcPackResult *ret)
{
	uint64_t t = base_now_ns();
	const SvcBuildSpec *sp = w->spec;
	SvcPackTarget *pt = calloc(w->n_targets, sizeof(*pt));
	SvcObjectPair *pairs = calloc(w->n_targets * w->n_tus + 1, sizeof(*pairs));
	size_t n_pt = 0, n_pairs = 0;
	int *placed = calloc(w->n_tus + 1, sizeof(int));
	int r = 0;

	if (!pt || !pairs || !placed)
		r = -ENOMEM;
	for (size_t ti = 0; ti < w->n_targets && r >= 0; ti++) {
		const SvcCcRecord *l = w->linked[ti];
		SvcPackTarget *x = &pt[n_pt];
		*x = (SvcPackTarget){ .path = w->targets[ti].path, .base_file = w->targets[ti].base_file,
				      .objects = &pairs[n_pairs] };
		/* the payload binds to the symbols of the file with the base's
		 * build-id: this build's, which is not stripped (without one, the
		 * base's own, from its debug file) */
		if (w->symbols_of[ti] && strcmp(w->symbols_of[ti], x->base_file) != 0)
			x->base_build = w->symbols_of[ti];
		for (size_t u = 0; u < w->n_tus && r >= 0; u++) {
			SvcObjectPair pair = { w->tus[u].old_obj, w->tus[u].new_obj };
			size_t nch = 0;
			if (!links_object(w, l, w->tus[u].rec->output, 0))
				continue;
			placed[u] = 1;
			r = diff_pair(w, &pair, &nch);
			if (r < 0)
				break;
			say(w, SVC_BUILD_STEP_PACK, 0, "%s: %s: %zu function%s changed", x->path,
			    w->tus[u].rec->source, nch, nch == 1 ? "" : "s");
			if (!nch)
				continue;
			pairs[n_pairs++] = pair;
			x->n_objects++;
		}
		if (r < 0)
			break;
		if (!x->n_objects) {
			say(w, SVC_BUILD_STEP_PACK, 0, "%s: no function linked into it changed: left out",
			    x->path);
			continue;
		}
		n_pt++;
	}
	for (size_t u = 0; u < w->n_tus && r >= 0; u++) {
		/* used elsewhere: linked into another output, or archived (a
		 * static library the package ships, or one linked into a
		 * program that is not a target) */
		int used_elsewhere = 0;
		for (size_t i = 0; i < w->n_recs && !used_elsewhere; i++)
			used_elsewhere = (w->recs[i].kind == SVC_CC_LINK ||
					  w->recs[i].kind == SVC_CC_ARCHIVE) &&
					 links_object(w, &w->recs[i], w->tus[u].rec->output, 0);
		if (!placed[u] && !used_elsewhere)
			r = base_err(w->e, -ENOENT, "%s: changed, but no recorded link or archive uses %s",
				     w->tus[u].rec->source, w->tus[u].rec->output);
		else if (!placed[u])
			say(w, SVC_BUILD_STEP_PACK, 0, "%s: changed, but %s goes into no target: left out",
			    w->tus[u].rec->source, w->tus[u].rec->output);
	}
	if (r >= 0 && !n_pt)
		r = base_err(w->e, -EINVAL, "%s: the patches change no function of a target", sp->sign.out);
	if (r >= 0) {
		SvcPackSpec ps = { .sign = sp->sign, .n_targets = n_pt,
				   .targets = pt, .debug_dirs = &sp->debug_dir,
				   .n_debug_dirs = sp->debug_dir ? 1 : 0 };
		r = svc_pack(&ps, ret, w->e);
	}
	if (r >= 0)
		say(w, SVC_BUILD_STEP_PACK, base_now_ns() - t, "%s: %zu target%s, %zu object pair%s, "
		    "%zu function%s changed, %zu base function%s verified against the base, signed",
		    sp->sign.out, n_pt, n_pt == 1 ? "" : "s", n_pairs, n_pairs == 1 ? "" : "s",
		    ret->functions_changed + ret->functions_new,
		    ret->functions_changed + ret->functions_new == 1 ? "" : "s",
		    ret->functions_verified, ret->functions_verified == 1 ? "" : "s");
	free(pt);
	free(pairs);
	free(placed);
	return r;
}

/* ---- the whole flow --------------------------------------------------------- */

static int work_dir(Work *w)
{
	char buf[PATH_MAX];
	if (w->spec->keep) {
		if (mkdir(w->spec->keep, 0755) < 0)
			return base_err(w->e, -errno, "%s: %s (--keep wants a new directory)",
					w->spec->keep, strerror(errno));
		if (!realpath(w->spec->keep, buf))
			return base_err(w->e, -errno, "%s: %s", w->spec->keep, strerror(errno));
	} else {
		const char *tmp = getenv("TMPDIR");
		snprintf(buf, sizeof(buf), "%s/svc-build-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(buf))
			return base_err(w->e, -errno, "%s: %s", buf, strerror(errno));
	}
	w->dir = strdup(buf);
	w->copy = base_strdupf("%s/new", buf);
	return w->dir && w->copy ? 0 : -ENOMEM;
}

static void work_free(Work *w)
{
	svc_cc_records_free(w->recs, w->n_recs);
	for (size_t i = 0; i < w->n_patched; i++)
		free(w->patched[i]);
	free(w->patched);
	for (size_t i = 0; i < w->n_tus; i++) {
		free(w->tus[i].old_obj);
		free(w->tus[i].new_obj);
	}
	free(w->tus);
	for (size_t i = 0; w->symbols_of && i < w->n_targets; i++)
		free(w->symbols_of[i]);
	free(w->symbols_of);
	free(w->linked);
	if (w->deb_targets)
		svc_deb_targets_free(w->deb_targets, w->n_targets);
	free(w->dir);
	free(w->copy);
}

int svc_build(const SvcBuildSpec *spec, SvcPackResult *ret, BaseErr *e)
{
	Work w = { .spec = spec, .e = e, .t0 = base_now_ns(), .command = spec->command,
		   .targets = spec->targets, .n_targets = spec->n_targets };
	char src[PATH_MAX];
	_cleanup_free_ char *deb_src = NULL;
	SvcPackResult res = { 0 };
	int r = 0, status;

	if (!spec->n_patches || !spec->wrapper || !spec->deb == !spec->source ||
	    (spec->source && (!spec->n_targets || !spec->command)))
		return base_err(e, -EINVAL, "svc build needs a patch, the wrapper, and either --deb or "
				"a source tree with a build command and targets");
	if (spec->source && !realpath(spec->source, src))
		return base_err(e, -errno, "%s: %s", spec->source, strerror(errno));
	for (size_t i = 0; i < spec->n_targets; i++)
		if (!pending_valid_path(spec->targets[i].path))
			return base_err(e, -EINVAL, "%s: target path must be absolute and plain",
					spec->targets[i].path);
	if (access(spec->wrapper, X_OK) < 0)
		return base_err(e, -errno, "%s: the compiler wrapper: %s", spec->wrapper, strerror(errno));
	w.src = src;
	r = work_dir(&w);
	if (r >= 0 && spec->deb) {
		uint64_t t = base_now_ns();
		r = svc_deb_fetch(spec->deb, w.dir, &deb_src, e);
		if (r >= 0) {
			w.src = deb_src;
			w.command = "dpkg-buildpackage -b -uc -us";
			say(&w, SVC_BUILD_STEP_FETCH, base_now_ns() - t, "%s: source in %s, build "
			    "dependencies installed", spec->deb, deb_src);
		}
	}
	if (r >= 0)
		r = step_build(&w);
	if (r >= 0 && spec->deb) {
		r = svc_deb_targets(w.src, spec->root ? spec->root : "/", &w.deb_targets, &w.n_targets, e);
		w.targets = w.deb_targets;
		for (size_t i = 0; i < w.n_targets && r >= 0; i++)
			say(&w, SVC_BUILD_STEP_BUILD, 0, "target %s (base %s)", w.targets[i].path,
			    w.targets[i].base_file);
		if (r >= 0 && !w.n_targets)
			r = base_err(e, -ENOENT, "%s: none of the ELF files the packages ship is "
				     "installed under %s", spec->deb, spec->root ? spec->root : "/");
	}
	if (r >= 0)
		r = step_verify(&w);
	if (r >= 0)
		r = step_patch(&w);
	if (r >= 0)
		r = step_changed(&w);
	if (r >= 0)
		r = step_compile(&w);
	if (r >= 0)
		r = step_pack(&w, &res);
	if (w.dir && !spec->keep) {
		char *rm[] = { "rm", "-rf", w.dir, NULL };
		svc_run(rm, &(SvcRunOpts){ .stdin_null = 1, .out_fd = -1 }, &status, NULL);
	}
	work_free(&w);
	if (r >= 0 && ret)
		*ret = res;
	return r;
}
