/* svc build --deb: a Debian source package fetched and unpacked, its build
 * dependencies installed, and after `dpkg-buildpackage -b` the targets read
 * from what its binary packages ship.
 *
 * The targets come from the staging trees dpkg-buildpackage leaves
 * (debian/PKG/, the exact file list of each .deb) rather than from dpkg -L
 * of the installed packages: the staging tree is this build's, so a file the
 * installed version lacks (or the reverse) shows up as "not installed"
 * instead of as a wrong pairing. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "svc/internal.h"

/* Run argv in cwd, output to logfile; a failure names what and the line of
 * this run's output that says why (apt's first error, else the last line). */
static int run_logged(char *const *argv, const char *cwd, const char *logfile, const char *what,
		      BaseErr *e)
{
	static char noninteractive[] = "DEBIAN_FRONTEND=noninteractive";
	char *env[] = { noninteractive, NULL };
	_cleanup_close_ int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	int status = 0, r;
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return base_err(e, -errno, "%s: %s", logfile, strerror(errno));
	r = svc_run(argv, &(SvcRunOpts){ .cwd = cwd, .out_fd = fd, .stdin_null = 1, .env = env },
		    &status, e);
	if (r >= 0 && status) {
		char last[512];
		svc_log_reason(logfile, (size_t)st.st_size, "E: ", last, sizeof(last));
		return base_err(e, -EIO, "%s: %s failed (exit %d): %s", what, argv[0], status, last);
	}
	return r;
}

/* The one directory dir holds (what apt-get source unpacked). */
static int only_subdir(const char *dir, char **ret, BaseErr *e)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char *found = NULL;
	int n = 0;
	if (!d)
		return base_err(e, -errno, "%s: %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || de->d_type != DT_DIR)
			continue;
		n++;
		free(found);
		found = base_strdupf("%s/%s", dir, de->d_name);
	}
	closedir(d);
	if (n != 1) {
		free(found);
		return base_err(e, -ENOENT, "%s: %d source trees unpacked, expected one", dir, n);
	}
	*ret = found;
	return found ? 0 : -ENOMEM;
}

/* After apt-get source NAME=VERSION failed: which of the two apt's sources
 * lack (apt says "Can not find version" for both).  The versions apt-cache
 * showsrc lists for NAME, past offset from of the log, joined by ", ". */
static int explain_missing(const char *what, const char *dir, const char *log, BaseErr *e)
{
	const char *eq = strchr(what, '=');
	_cleanup_free_ char *name = eq ? strndup(what, (size_t)(eq - what)) : NULL;
	_cleanup_free_ uint8_t *buf = NULL;
	char versions[256] = "";
	size_t len = 0, used = 0;
	struct stat st;
	int status = 0;
	if (!name)
		return 0;
	_cleanup_close_ int fd = open(log, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return 0;
	char *show[] = { "apt-cache", "showsrc", "-q", "--only-source", name, NULL };
	if (svc_run(show, &(SvcRunOpts){ .cwd = dir, .out_fd = fd, .stdin_null = 1 }, &status, NULL) < 0 ||
	    status)
		return 0;
	_cleanup_close_ int rfd = open(log, O_RDONLY | O_CLOEXEC);
	if (rfd < 0 || base_fs_read_fd(rfd, (size_t)1 << 30, &buf, &len) < 0)
		return 0;
	for (size_t at = (size_t)st.st_size; at < len;) {
		const uint8_t *nl = memchr(buf + at, '\n', len - at);
		size_t end = nl ? (size_t)(nl - buf) : len;
		if (end - at > 9 && memcmp(buf + at, "Version: ", 9) == 0 && used + 4 < sizeof(versions))
			used += (size_t)snprintf(versions + used, sizeof(versions) - used, "%s%.*s",
						 used ? ", " : "", (int)(end - at - 9), (char *)buf + at + 9);
		at = end + 1;
	}
	if (!used)
		return base_err_replace(e, -ENOENT, "%s: no source package '%s' in apt's sources (deb-src)",
				what, name);
	return base_err_replace(e, -ENOENT, "%s: apt's sources carry %s %s, not version '%s'", what, name,
			versions, eq + 1);
}

int svc_deb_fetch(const char *what, const char *workdir, char **ret_src, BaseErr *e)
{
	_cleanup_free_ char *dir = base_strdupf("%s/deb", workdir);
	_cleanup_free_ char *log = base_strdupf("%s/deb.log", workdir);
	_cleanup_free_ char *src = NULL;
	size_t n = strlen(what);
	int r;
	if (!dir || !log)
		return -ENOMEM;
	if (mkdir(dir, 0755) < 0)
		return base_err(e, -errno, "%s: %s", dir, strerror(errno));
	if (n > 4 && strcmp(what + n - 4, ".dsc") == 0) {
		char dsc[PATH_MAX];
		if (!realpath(what, dsc))
			return base_err(e, -errno, "%s: %s", what, strerror(errno));
		if (!(src = base_strdupf("%s/src", dir)))
			return -ENOMEM;
		char *x[] = { "dpkg-source", "--no-check", "-x", dsc, src, NULL };
		r = run_logged(x, dir, log, what, e);
	} else {
		char *get[] = { "apt-get", "source", "-q", (char *)what, NULL };
		r = run_logged(get, dir, log, what, e);
		if (r == -EIO && strchr(what, '=')) {
			int x = explain_missing(what, dir, log, e);
			r = x < 0 ? x : r;
		}
		if (r >= 0)
			r = only_subdir(dir, &src, e);
	}
	if (r < 0)
		return r;
	/* another apt may hold the lock (other builds on this machine): wait */
	char *dep[] = { "apt-get", "build-dep", "-y", "-q", "-o", "DPkg::Lock::Timeout=600", src, NULL };
	r = run_logged(dep, dir, log, what, e);
	if (r < 0)
		return r;
	*ret_src = BASE_TAKE_PTR(src);
	return 0;
}

void svc_deb_targets_free(SvcBuildTarget *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *)t[i].path);
		free((char *)t[i].base_file);
	}
	free(t);
}

typedef struct Found {
	SvcBuildTarget *t;
	size_t n;
} Found;

static int is_linked_elf(const char *path)
{
	unsigned char h[18];
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || read(fd, h, sizeof(h)) != (ssize_t)sizeof(h))
		return 0;
	return memcmp(h, "\x7f" "ELF", 4) == 0 && (h[16] == 2 || h[16] == 3) && h[17] == 0;
}

/* Walk a staging tree; rel is the path below it ("" at the top). */
static int walk(const char *top, const char *rel, const char *root, Found *f)
{
	_cleanup_free_ char *here = base_strdupf("%s%s", top, rel);
	DIR *d = here ? opendir(here) : NULL;
	struct dirent *de;
	int r = 0;
	if (!d)
		return here ? -errno : -ENOMEM;
	while (r >= 0 && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		_cleanup_free_ char *sub = base_strdupf("%s/%s", rel, de->d_name);
		_cleanup_free_ char *full = base_strdupf("%s%s", top, sub ? sub : "");
		struct stat st, bst;
		if (!sub || !full) {
			r = -ENOMEM;
			break;
		}
		if (strcmp(sub, "/DEBIAN") == 0 || strcmp(sub, "/usr/lib/debug") == 0 ||
		    lstat(full, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			r = walk(top, sub, root, f);
			continue;
		}
		if (!S_ISREG(st.st_mode) || !is_linked_elf(full))
			continue;
		_cleanup_free_ char *base = base_strdupf("%s%s", strcmp(root, "/") ? root : "", sub);
		if (!base) {
			r = -ENOMEM;
			break;
		}
		if (lstat(base, &bst) < 0 || !S_ISREG(bst.st_mode))
			continue; /* shipped, but not installed here: not a target */
		SvcBuildTarget *nt = realloc(f->t, (f->n + 1) * sizeof(*nt));
		if (!nt) {
			r = -ENOMEM;
			break;
		}
		f->t = nt;
		nt[f->n].path = BASE_TAKE_PTR(sub);
		nt[f->n].base_file = BASE_TAKE_PTR(base);
		f->n++;
	}
	closedir(d);
	return r;
}

int svc_deb_targets(const char *src, const char *root, SvcBuildTarget **ret, size_t *ret_n,
		    BaseErr *e)
{
	_cleanup_free_ char *debian = base_strdupf("%s/debian", src);
	Found f = { 0 };
	DIR *d = debian ? opendir(debian) : NULL;
	struct dirent *de;
	int r = 0;
	if (!d)
		return debian ? base_err(e, -errno, "%s: %s", debian, strerror(errno)) : -ENOMEM;
	while (r >= 0 && (de = readdir(d))) {
		_cleanup_free_ char *top = base_strdupf("%s/%s", debian, de->d_name);
		_cleanup_free_ char *control = base_strdupf("%s/%s/DEBIAN/control", debian, de->d_name);
		if (!top || !control) {
			r = -ENOMEM;
			break;
		}
		if (de->d_name[0] == '.' || access(control, F_OK) < 0)
			continue;
		r = walk(top, "", root, &f);
		if (r < 0)
			r = base_err(e, r, "%s: %s", top, base_strerror(r));
	}
	closedir(d);
	if (r < 0) {
		svc_deb_targets_free(f.t, f.n);
		return r;
	}
	*ret = f.t;
	*ret_n = f.n;
	return 0;
}
