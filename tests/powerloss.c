/* powerloss — rebuild the disk states a power cut could leave behind.
 *
 * svc run with SVC_POWER_LOG=F records every durable step it completed
 * (base/fsrecord.c).  A crash before step N keeps the steps < N in the page
 * cache; a power cut keeps only what the file system had made durable.
 * This tool takes such a log and enumerates the disk states, under the
 * model documented in docs/security.md ("Power loss"):
 *
 *  - a directory entry change (create, mkdir, rename, link, unlink) is
 *    durable once a later fsync of its directory (either directory of a
 *    rename or link) completed; before that, for each directory, any
 *    prefix of its unsynced entry changes survives (a journal commits in
 *    order; a rename across two directories is one change in both, all or
 *    nothing, and an entry change that waits makes every later one in its
 *    directories wait);
 *  - a file's written data is durable once a later fsync of the file
 *    completed; before that each write is kept, dropped or torn (its first
 *    half kept), independently; chmod/chown are kept or dropped;
 *  - so is the truncation of an existing file (open with O_TRUNC): until
 *    the file is synced it may be lost, and then the file keeps its old
 *    bytes with whatever writes survived laid over them (torn: old and new
 *    mixed);
 *  - a change inside a directory whose own entry did not survive is lost
 *    with it.
 *
 * When the product of these choices exceeds PL_LIMIT (default 256) the
 * tool takes the two extreme states (everything unsynced kept, everything
 * dropped) and PL_LIMIT - 2 seeded pseudo-random choices.  States that
 * come out identical are counted once.
 *
 *   powerloss steps LOG                  the number of steps recorded
 *   powerloss states LOG ROOT N          one state index per distinct state
 *                                        after a crash before step N
 *   powerloss make LOG ROOT N K OUT      turn OUT (a copy of the tree the
 *                                        recorded run started from) into
 *                                        state K
 * ROOT is the directory the recorded run used as --root.
 * PL_MODEL=nofsync takes no fsync as completed: the control run of
 * tests/check-powerloss.sh, which must find violations. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"

typedef enum OpKind {
	OP_CREATE, OP_TRUNC, OP_WRITE, OP_FSYNC, OP_FSYNC_DIR, OP_RENAME, OP_LINK,
	OP_UNLINK, OP_MKDIR, OP_CHMOD, OP_CHOWN, OP_UNKNOWN,
} OpKind;

static const char *const op_names[] = {
	[OP_CREATE] = "create", [OP_TRUNC] = "trunc", [OP_WRITE] = "write",
	[OP_FSYNC] = "fsync", [OP_FSYNC_DIR] = "fsync-dir", [OP_RENAME] = "rename",
	[OP_LINK] = "link", [OP_UNLINK] = "unlink", [OP_MKDIR] = "mkdir",
	[OP_CHMOD] = "chmod", [OP_CHOWN] = "chown",
};

typedef struct Op {
	long step;
	OpKind kind;
	unsigned long long ino;
	unsigned long arg;
	size_t len;
	uint8_t *data;
	char *p1, *p2;        /* relative to the root; NULL outside it */
	char *d1, *d2;        /* the directories an entry change is in */
	int synced;
	int dim;              /* index of this op's choice, -1 if none */
} Op;

static Op *ops;
static size_t n_ops;
static long last_step;       /* the last step recorded, in the root or not */

static void die(const char *what)
{
	fprintf(stderr, "powerloss: %s\n", what);
	exit(2);
}

static int is_meta(OpKind k)
{
	return k == OP_CREATE || k == OP_RENAME || k == OP_LINK || k == OP_UNLINK || k == OP_MKDIR;
}

/* a step on a file's data or attributes: durable with the file's fsync */
static int is_data(OpKind k)
{
	return k == OP_WRITE || k == OP_TRUNC || k == OP_CHMOD || k == OP_CHOWN;
}

static char *rel(const char *root, const char *abs)
{
	size_t l = strlen(root);
	if (!*abs)
		return NULL;
	if (strncmp(abs, root, l) != 0)
		return NULL;
	if (abs[l] == 0)
		return strdup(".");
	if (abs[l] != '/')
		return NULL;
	return strdup(abs + l + 1);
}

static char *dir_of(const char *p)
{
	const char *s = p ? strrchr(p, '/') : NULL;
	if (!p)
		return NULL;
	return s ? strndup(p, (size_t)(s - p)) : strdup(".");
}

static void load(const char *log, const char *root, long max_step)
{
	uint8_t *buf;
	size_t len, pos = 0;
	char rroot[PATH_MAX];

	if (!realpath(root, rroot))
		snprintf(rroot, sizeof(rroot), "%s", root);
	if (base_fs_read_at(AT_FDCWD, log, (size_t)1 << 30, &buf, &len) < 0)
		die("cannot read the log");
	while (pos < len) {
		uint8_t *nl = memchr(buf + pos, '\n', len - pos);
		if (!nl)
			die("log: torn header");
		*nl = 0;
		char *f[7] = { 0 }, *save = NULL, *line = (char *)buf + pos;
		int nf = 0;
		/* strsep keeps empty fields (a missing second path) */
		for (char *t; nf < 7 && (t = strsep(&line, "\t")); nf++)
			f[nf] = t;
		(void)save;
		if (nf != 7)
			die("log: bad header");
		Op o = { 0 };
		o.step = strtol(f[0], NULL, 10);
		o.kind = OP_UNKNOWN;
		for (int k = 0; k < OP_UNKNOWN; k++)
			if (strcmp(f[1], op_names[k]) == 0)
				o.kind = (OpKind)k;
		o.ino = strtoull(f[2], NULL, 10);
		o.arg = strtoul(f[3], NULL, 10);
		o.len = strtoul(f[4], NULL, 10);
		o.p1 = rel(rroot, f[5]);
		o.p2 = rel(rroot, f[6]);
		o.dim = -1;
		pos = (size_t)(nl - buf) + 1;
		if (o.len > len - pos)
			die("log: torn data");
		o.data = buf + pos;
		pos += o.len;
		if (o.step >= max_step)
			break;
		if (o.step > last_step)
			last_step = o.step;
		if (o.kind == OP_UNKNOWN)
			die("log: unknown op");
		/* steps outside the root (a scratch file of a tool) are no part of
		 * the tree under test */
		if ((is_meta(o.kind) || o.kind == OP_FSYNC_DIR || o.kind == OP_TRUNC) && !o.p1)
			continue;
		if ((o.kind == OP_RENAME || o.kind == OP_LINK) && !o.p2)
			continue;
		if (is_meta(o.kind)) {
			o.d1 = dir_of(o.p1);
			o.d2 = (o.kind == OP_RENAME || o.kind == OP_LINK) ? dir_of(o.p2) : NULL;
		}
		ops = realloc(ops, (n_ops + 1) * sizeof(*ops));
		ops[n_ops++] = o;
	}
}

static int shares_dir(const Op *a, const Op *b)
{
	const char *da[2] = { a->d1, a->d2 }, *db[2] = { b->d1, b->d2 };
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 2; j++)
			if (da[i] && db[j] && strcmp(da[i], db[j]) == 0)
				return 1;
	return 0;
}

static int in_dir(const Op *a, const char *d)
{
	return (a->d1 && strcmp(a->d1, d) == 0) || (a->d2 && strcmp(a->d2, d) == 0);
}

/* ---- which steps are durable, and the choices for the rest ------------ */

static char **dirs;          /* directories with unsynced entry changes */
static size_t n_dirs;
static size_t *dir_len;      /* unsynced entry changes per directory */
static size_t n_data;        /* unsynced data steps (a choice each) */
static unsigned *radix;      /* per dimension: dirs first, then data steps */
static size_t n_dims;

static int no_fsync;         /* PL_MODEL=nofsync: the control run */

static void classify(void)
{
	for (size_t i = 0; i < n_ops && !no_fsync; i++) {
		Op *o = &ops[i];
		for (size_t j = i + 1; j < n_ops && !o->synced; j++) {
			if (is_meta(o->kind) && ops[j].kind == OP_FSYNC_DIR && in_dir(o, ops[j].p1))
				o->synced = 1;
			if (is_data(o->kind) && ops[j].kind == OP_FSYNC &&
			    ops[j].ino == o->ino)
				o->synced = 1;
		}
	}
	/* a durable entry change makes the earlier ones of its directories
	 * durable (the journal commits in order) */
	for (int changed = 1; changed;) {
		changed = 0;
		for (size_t i = 0; i < n_ops; i++) {
			if (!is_meta(ops[i].kind) || !ops[i].synced)
				continue;
			for (size_t j = 0; j < i; j++)
				if (is_meta(ops[j].kind) && !ops[j].synced && shares_dir(&ops[i], &ops[j])) {
					ops[j].synced = 1;
					changed = 1;
				}
		}
	}
	for (size_t i = 0; i < n_ops; i++) {
		Op *o = &ops[i];
		if (!is_meta(o->kind) || o->synced)
			continue;
		const char *ds[2] = { o->d1, o->d2 };
		for (int k = 0; k < 2; k++) {
			size_t d;
			if (!ds[k] || (k == 1 && strcmp(ds[0], ds[1]) == 0))
				continue;
			for (d = 0; d < n_dirs && strcmp(dirs[d], ds[k]) != 0; d++)
				;
			if (d == n_dirs) {
				dirs = realloc(dirs, (n_dirs + 1) * sizeof(*dirs));
				dir_len = realloc(dir_len, (n_dirs + 1) * sizeof(*dir_len));
				dirs[n_dirs] = strdup(ds[k]);
				dir_len[n_dirs++] = 0;
			}
			dir_len[d]++;
		}
	}
	n_dims = n_dirs;
	radix = calloc(n_dirs + n_ops + 1, sizeof(*radix));
	for (size_t d = 0; d < n_dirs; d++)
		radix[d] = (unsigned)dir_len[d] + 1;
	for (size_t i = 0; i < n_ops; i++) {
		Op *o = &ops[i];
		if (!is_data(o->kind) || o->synced)
			continue;
		o->dim = (int)n_dims;
		radix[n_dims++] = o->kind == OP_WRITE ? 3 : 2;
		n_data++;
	}
}

/* choice[d] for a directory: how many of its unsynced entry changes
 * survive; for a data step: 0 kept, 1 dropped, 2 torn. */
static unsigned *choice;
static unsigned long limit = 256;

static double total_states(void)
{
	double t = 1;
	for (size_t d = 0; d < n_dims; d++)
		t *= radix[d];
	return t;
}

static uint64_t rng;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void pick(unsigned long k, long n)
{
	if (total_states() <= (double)limit) {
		for (size_t d = 0; d < n_dims; d++) {
			choice[d] = (unsigned)(k % radix[d]);
			k /= radix[d];
		}
		return;
	}
	rng = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)k << 20) ^ (uint64_t)n;
	for (size_t d = 0; d < n_dims; d++) {
		if (k == 0)
			choice[d] = d < n_dirs ? radix[d] - 1 : 0;  /* all kept */
		else if (k == 1)
			choice[d] = d < n_dirs ? 0 : 1;             /* all dropped */
		else
			choice[d] = (unsigned)(next_rand() % radix[d]);
	}
}

static unsigned long n_candidates(void)
{
	double t = total_states();
	return t <= (double)limit ? (unsigned long)t : limit;
}

/* ---- applying one state ----------------------------------------------- */

typedef struct Name {
	char *path;
	unsigned long long ino;
} Name;

static Name *names;
static size_t n_names;

static Name *name_find(const char *p)
{
	for (size_t i = 0; i < n_names; i++)
		if (strcmp(names[i].path, p) == 0)
			return &names[i];
	return NULL;
}

static void name_set(const char *p, unsigned long long ino)
{
	Name *n = name_find(p);
	if (!n) {
		names = realloc(names, (n_names + 1) * sizeof(*names));
		n = &names[n_names++];
		n->path = strdup(p);
	}
	n->ino = ino;
}

static void name_drop(const char *p)
{
	Name *n = name_find(p);
	if (n)
		n->ino = 0;
}

static char **missing;       /* directories whose entry did not survive */
static size_t n_missing;

static int under_missing(const char *p)
{
	for (size_t i = 0; i < n_missing; i++) {
		size_t l = strlen(missing[i]);
		if (strncmp(p, missing[i], l) == 0 && p[l] == '/')
			return 1;
	}
	return 0;
}

static int tracked(unsigned long long ino)
{
	for (size_t i = 0; i < n_ops; i++)
		if (ops[i].ino == ino && (ops[i].kind == OP_CREATE || ops[i].kind == OP_TRUNC))
			return 1;
	return 0;
}

/* The bytes a file of the starting tree holds (a truncation that did not
 * reach the disk leaves them). */
static void read_old(int outfd, const char *path, BaseBuf *content)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	if (base_fs_read_at(outfd, path, (size_t)1 << 30, &buf, &len) < 0)
		return; /* not in the starting tree: nothing to keep */
	base_buf_append(content, buf, len);
	free(buf);
}

/* Apply the state chosen in choice[] to outfd (or only compute it when
 * outfd < 0); appends a description of the state to sig. */
static void apply(int outfd, BaseBuf *sig)
{
	size_t *seen = calloc(n_dirs + 1, sizeof(*seen));
	int *blocked = calloc(n_dirs + 1, sizeof(*blocked));

	n_names = 0;
	n_missing = 0;
	/* a file of the starting tree that svc reopened with O_TRUNC (no create
	 * of its inode before) is followed from the start, so that a rename of
	 * it later carries its inode to the new name */
	for (size_t i = 0; i < n_ops; i++) {
		int created = 0;
		for (size_t j = 0; j < i && ops[i].kind == OP_TRUNC; j++)
			created |= ops[j].kind == OP_CREATE && ops[j].ino == ops[i].ino;
		if (ops[i].kind == OP_TRUNC && !created && !name_find(ops[i].p1))
			name_set(ops[i].p1, ops[i].ino);
	}
	for (size_t i = 0; i < n_ops; i++) {
		Op *o = &ops[i];
		if (!is_meta(o->kind))
			continue;
		int keep = 1;
		if (!o->synced) {
			for (size_t d = 0; d < n_dirs; d++) {
				if (!in_dir(o, dirs[d]))
					continue;
				if (blocked[d] || seen[d] >= choice[d])
					keep = 0;
				seen[d]++;
			}
			if (!keep)
				for (size_t d = 0; d < n_dirs; d++)
					if (in_dir(o, dirs[d]))
						blocked[d] = 1;
		}
		if (keep && (under_missing(o->p1) || (o->p2 && under_missing(o->p2))))
			keep = 0;
		if (keep && outfd >= 0) {
			int r = 0;
			switch (o->kind) {
			case OP_CREATE: {
				int fd = openat(outfd, o->p1, O_WRONLY | O_CREAT | O_CLOEXEC, (mode_t)o->arg);
				r = fd < 0 ? -1 : close(fd);
				break;
			}
			case OP_MKDIR: r = mkdirat(outfd, o->p1, (mode_t)o->arg); break;
			case OP_RENAME: r = renameat(outfd, o->p1, outfd, o->p2); break;
			case OP_LINK: r = linkat(outfd, o->p1, outfd, o->p2, 0); break;
			case OP_UNLINK: r = unlinkat(outfd, o->p1, (int)o->arg); break;
			default: break;
			}
			if (r < 0) {
				fprintf(stderr, "powerloss: step %ld %s %s: %s\n", o->step,
					op_names[o->kind], o->p1, strerror(errno));
				exit(2);
			}
		}
		if (!keep && o->kind == OP_MKDIR) {
			missing = realloc(missing, (n_missing + 1) * sizeof(*missing));
			missing[n_missing++] = o->p1;
		}
		base_buf_append(sig, keep ? "1" : "0", 1);
		if (!keep)
			continue;
		switch (o->kind) {
		case OP_CREATE: name_set(o->p1, o->ino); break;
		case OP_RENAME: {
			Name *n = name_find(o->p1);
			name_set(o->p2, n ? n->ino : 0);
			name_drop(o->p1);
			break;
		}
		case OP_LINK: {
			Name *n = name_find(o->p1);
			name_set(o->p2, n ? n->ino : 0);
			break;
		}
		case OP_UNLINK: name_drop(o->p1); break;
		default: break;
		}
	}
	/* a truncated old file is followed from its open on */
	for (size_t i = 0; i < n_ops; i++)
		if (ops[i].kind == OP_TRUNC && !under_missing(ops[i].p1) && !name_find(ops[i].p1))
			name_set(ops[i].p1, ops[i].ino);
	/* the data of every file svc wrote that is reachable in this state */
	for (size_t i = 0; i < n_names; i++) {
		unsigned long long ino = names[i].ino;
		const char *first = NULL;
		if (!ino || !tracked(ino))
			continue;
		for (size_t j = 0; j < i; j++)
			if (names[j].ino == ino)
				first = names[j].path;
		base_buf_printf(sig, " %s=", names[i].path);
		if (first) {
			base_buf_printf(sig, "link:%s", first);
			if (outfd >= 0 && (unlinkat(outfd, names[i].path, 0) < 0 ||
					   linkat(outfd, first, outfd, names[i].path, 0) < 0))
				die("cannot link a copy");
			continue;
		}
		BaseBuf content = { 0 };
		long mode = -1;
		for (size_t j = 0; j < n_ops; j++) {
			Op *o = &ops[j];
			if (o->ino != ino || !is_data(o->kind))
				continue;
			unsigned c = o->synced ? 0 : choice[o->dim];
			base_buf_printf(sig, "%u", c);
			if (o->kind == OP_TRUNC) {
				/* kept: the file starts empty here; lost: its old
				 * bytes stay under the writes that follow */
				content.len = 0;
				if (c == 1 && outfd >= 0)
					read_old(outfd, names[i].path, &content);
				continue;
			}
			if (c == 1)
				continue;
			if (o->kind == OP_CHMOD)
				mode = (long)o->arg;
			if (o->kind == OP_CHOWN && outfd >= 0 &&
			    fchownat(outfd, names[i].path, (uid_t)(o->arg >> 32),
				     (gid_t)(o->arg & 0xffffffffUL), AT_SYMLINK_NOFOLLOW) < 0 &&
			    errno != EPERM)
				die("cannot chown");
			if (o->kind != OP_WRITE)
				continue;
			size_t n = c == 2 ? o->len / 2 : o->len, end = o->arg + n;
			if (end > content.len) {
				size_t old = content.len;
				for (size_t z = old; z < end; z++)
					base_buf_append(&content, "", 1);
			}
			memcpy(content.data + o->arg, o->data, n);
		}
		if (outfd >= 0) {
			int fd = openat(outfd, names[i].path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
			if (fd < 0 || (content.len && write(fd, content.data, content.len) != (ssize_t)content.len))
				die("cannot write a file of the state");
			if (mode >= 0 && fchmod(fd, (mode_t)mode) < 0)
				die("cannot chmod");
			close(fd);
		}
		base_buf_free(&content);
	}
	free(seen);
	free(blocked);
}

static void setup(const char *log, const char *root, long n)
{
	const char *l = getenv("PL_LIMIT");
	if (l)
		limit = strtoul(l, NULL, 10);
	if (limit < 2)
		limit = 2;
	/* a file system that ignores fsync: the checks must find violations
	 * there, or they could not find any */
	no_fsync = getenv("PL_MODEL") && strcmp(getenv("PL_MODEL"), "nofsync") == 0;
	load(log, root, n);
	classify();
	choice = calloc(n_dims + 1, sizeof(*choice));
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "steps") == 0) {
		load(argv[2], "/", LONG_MAX);
		printf("%ld\n", last_step);
		return 0;
	}
	if (argc == 5 && strcmp(argv[1], "states") == 0) {
		long n = strtol(argv[4], NULL, 10);
		setup(argv[2], argv[3], n);
		unsigned long cands = n_candidates();
		char **sigs = calloc(cands, sizeof(*sigs));
		size_t n_sigs = 0;
		for (unsigned long k = 0; k < cands; k++) {
			BaseBuf sig = { 0 };
			pick(k, n);
			apply(-1, &sig);
			base_buf_append(&sig, "", 1);
			size_t s;
			for (s = 0; s < n_sigs && strcmp(sigs[s], (char *)sig.data) != 0; s++)
				;
			if (s < n_sigs) {
				base_buf_free(&sig);
				continue;
			}
			sigs[n_sigs++] = (char *)sig.data;
			printf("%lu\n", k);
		}
		return 0;
	}
	if (argc == 7 && strcmp(argv[1], "make") == 0) {
		long n = strtol(argv[4], NULL, 10);
		BaseBuf sig = { 0 };
		setup(argv[2], argv[3], n);
		int outfd = open(argv[6], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (outfd < 0)
			die("cannot open OUT");
		pick(strtoul(argv[5], NULL, 10), n);
		apply(outfd, &sig);
		if (getenv("PL_VERBOSE"))
			fprintf(stderr, "state %s: %.*s\n", argv[5], (int)sig.len, (char *)sig.data);
		return 0;
	}
	fprintf(stderr, "usage: powerloss steps LOG | states LOG ROOT N | make LOG ROOT N K OUT\n");
	return 2;
}
