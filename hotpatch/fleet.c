/* What the sessions of one many-process call share: facts about files, not
 * about processes.  A fleet of processes maps the same few files; what a
 * file says (its lineage note, which symbols it defines) is read once per
 * file and call, not once per process.  A file is known by the device and
 * inode its mapping shows (a mapped inode cannot be freed and reused while
 * the call runs) and the build-id the process's mapping carries; symbols
 * are asked of the file itself, opened through /proc/PID/map_files (the
 * very file mapped) and checked against both.  Nothing read from a process's
 * memory is shared: one process's bytes never decide another's patch (a
 * decode is reused only for the very same bytes, of which it is a pure
 * function). */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "hotpatch/internal.h"

typedef struct FleetSym {
	char *name;
	int said;          /* hp_file_symbol's answer: 1, 0 or -ENOTSUP */
	uint64_t value;
} FleetSym;

typedef struct FleetFile {
	unsigned maj, min;
	uint64_t ino;
	uint8_t build_id[64];
	size_t build_id_len;
	bool has_lin;
	ElfLineage lin;
	int fd;            /* the file, for symbols: > 0 open, 0 not tried, < 0 -errno */
	FleetSym *syms;
	size_t n_syms;
} FleetFile;

/* One decode of a function's bytes: addresses relative to its entry */
typedef struct FleetScan {
	uint8_t *code;
	size_t len;
	uint64_t before, after;   /* the window: from addr - before to addr + after */
	ElfX86Scan sc;     /* relative, 0 still none */
} FleetScan;

/* The first page of a file, read from the file: the file stays open for
 * the call, so that its inode cannot be freed and given to another file
 * (dev:inode then names one file for the whole call). */
typedef struct FleetPage {
	unsigned maj, min;
	uint64_t ino;
	int fd;
	uint8_t *b;        /* HP_PAGE1 bytes, where they stay for the call */
} FleetPage;

struct HpFleet {
	pthread_mutex_t lock;
	FleetFile *v;
	size_t n;
	FleetPage *pages;
	size_t n_pages;
	FleetScan *scans;
	size_t n_scans;
};

HpFleet *hp_fleet_new(void)
{
	HpFleet *f = calloc(1, sizeof(*f));
	if (f)
		pthread_mutex_init(&f->lock, NULL);
	return f;
}

void hp_fleet_free(HpFleet *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++) {
		FleetFile *x = &f->v[i];
		if (x->has_lin)
			elf_lineage_free(&x->lin);
		if (x->fd > 0)
			close(x->fd);
		for (size_t k = 0; k < x->n_syms; k++)
			free(x->syms[k].name);
		free(x->syms);
	}
	free(f->v);
	for (size_t i = 0; i < f->n_pages; i++) {
		close(f->pages[i].fd);
		free(f->pages[i].b);
	}
	free(f->pages);
	for (size_t i = 0; i < f->n_scans; i++)
		free(f->scans[i].code);
	free(f->scans);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static int lineage_copy(const ElfLineage *from, ElfLineage *to)
{
	ElfLineage l = *from;
	l.fixes = calloc(from->n_fixes ? from->n_fixes : 1, sizeof(char *));
	if (!l.fixes)
		return -ENOMEM;
	for (size_t i = 0; i < from->n_fixes; i++)
		if (!(l.fixes[i] = strdup(from->fixes[i]))) {
			l.n_fixes = i;
			elf_lineage_free(&l);
			return -ENOMEM;
		}
	*to = l;
	return 0;
}

static FleetFile *find(HpFleet *f, const HpModule *mod)
{
	for (size_t i = 0; i < f->n; i++) {
		FleetFile *x = &f->v[i];
		if (x->ino == mod->ino && x->maj == mod->dev_major && x->min == mod->dev_minor &&
		    x->build_id_len == mod->build_id_len &&
		    memcmp(x->build_id, mod->build_id, mod->build_id_len) == 0)
			return x;
	}
	return NULL;
}

/* mod's entry, made if new (the lock held) */
static FleetFile *get(HpFleet *f, const HpModule *mod)
{
	FleetFile *x = find(f, mod);
	if (x)
		return x;
	FleetFile *nv = realloc(f->v, (f->n + 1) * sizeof(*nv));
	if (!nv)
		return NULL;
	f->v = nv;
	x = &f->v[f->n++];
	memset(x, 0, sizeof(*x));
	x->maj = mod->dev_major;
	x->min = mod->dev_minor;
	x->ino = mod->ino;
	memcpy(x->build_id, mod->build_id, mod->build_id_len);
	x->build_id_len = mod->build_id_len;
	return x;
}

int hp_fleet_lineage(HpFleet *f, const HpModule *mod, ElfLineage *ret)
{
	int r = 1;
	pthread_mutex_lock(&f->lock);
	const FleetFile *x = find(f, mod);
	if (x && x->has_lin)
		r = lineage_copy(&x->lin, ret);
	pthread_mutex_unlock(&f->lock);
	return r;
}

void hp_fleet_lineage_put(HpFleet *f, const HpModule *mod, const ElfLineage *l)
{
	pthread_mutex_lock(&f->lock);
	FleetFile *x = get(f, mod);
	if (x && !x->has_lin && lineage_copy(l, &x->lin) == 0)
		x->has_lin = true;
	pthread_mutex_unlock(&f->lock);
}

/* The file mapped at mod->start, if it is the one the mapping names
 * (dev:inode) and carries mod's build-id: fd > 0, else -errno. */
static int file_open(pid_t pid, const HpModule *mod)
{
	HpMap mp = { .start = mod->start, .end = mod->start_end, .ino = mod->ino,
		     .dev_major = mod->dev_major, .dev_minor = mod->dev_minor,
		     .path = (char *)mod->path };
	int fd = hp_map_file_open(pid, &mp);
	if (fd < 0)   /* -ENOTSUP is an answer (an IFUNC): never an open's error */
		return fd == -ENOTSUP ? -EIO : fd;
	uint8_t id[64];
	size_t id_len = 0;
	if ((hp_file_build_id(fd, id, &id_len) < 0 && mod->build_id_len) ||
	    id_len != mod->build_id_len || memcmp(id, mod->build_id, id_len) != 0) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

int hp_fleet_symbol(HpFleet *f, pid_t pid, const HpModule *mod, const char *name,
		    uint64_t *ret_value)
{
	int r = -ENOMEM;
	pthread_mutex_lock(&f->lock);
	FleetFile *x = get(f, mod);
	for (size_t k = 0; x && k < x->n_syms; k++)
		if (strcmp(x->syms[k].name, name) == 0) {
			*ret_value = x->syms[k].value;
			r = x->syms[k].said;
			goto out;
		}
	if (!x)
		goto out;
	if (x->fd == 0)
		x->fd = file_open(pid, mod);
	r = x->fd;
	if (r < 0)
		goto out;
	uint64_t v = 0;
	r = hp_file_symbol(x->fd, name, &v);
	if (r < 0 && r != -ENOTSUP)
		goto out;   /* not kept: this process's memory answers */
	FleetSym *nv = realloc(x->syms, (x->n_syms + 1) * sizeof(*nv));
	char *dup = strdup(name);
	if (nv)
		x->syms = nv;
	if (!nv || !dup) {
		free(dup);
		r = -ENOMEM;
		goto out;
	}
	x->syms[x->n_syms++] = (FleetSym){ dup, r, v };
	*ret_value = v;
out:
	pthread_mutex_unlock(&f->lock);
	return r;
}

/* a scan's addresses relative to addr and back (0, "none", stays 0);
 * BASE_WRAPS: a target before addr is a two's-complement offset */
BASE_WRAPS static void scan_move(ElfX86Scan *sc, uint64_t addr, bool to_rel)
{
	uint64_t *v[] = { &sc->into, &sc->target, &sc->indirect, &sc->undecoded, &sc->ret_inside };
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (*v[i])
			*v[i] = to_rel ? *v[i] - addr : *v[i] + addr;
}

int hp_fleet_scan(HpFleet *f, const uint8_t *code, size_t len, uint64_t addr, uint64_t lo,
		  uint64_t hi, ElfX86Scan *ret)
{
	if (!f || lo > addr || hi < addr)
		return elf_x86_scan(code, len, addr, lo, hi, ret);
	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->n_scans; i++) {
		const FleetScan *x = &f->scans[i];
		if (x->len == len && x->before == addr - lo && x->after == hi - addr &&
		    memcmp(x->code, code, len) == 0) {
			*ret = x->sc;
			pthread_mutex_unlock(&f->lock);
			scan_move(ret, addr, false);
			return 0;
		}
	}
	pthread_mutex_unlock(&f->lock);
	int r = elf_x86_scan(code, len, addr, lo, hi, ret);
	if (r < 0)
		return r;
	FleetScan x = { .code = malloc(len ? len : 1), .len = len, .before = addr - lo,
			.after = hi - addr, .sc = *ret };
	if (!x.code)
		return 0;   /* not remembered: the answer stands */
	memcpy(x.code, code, len);
	scan_move(&x.sc, addr, true);
	pthread_mutex_lock(&f->lock);
	FleetScan *nv = realloc(f->scans, (f->n_scans + 1) * sizeof(*nv));
	if (nv) {
		f->scans = nv;
		f->scans[f->n_scans++] = x;
	} else {
		free(x.code);
	}
	pthread_mutex_unlock(&f->lock);
	return 0;
}

int hp_fleet_page(HpFleet *f, pid_t pid, const HpMap *mp, uint8_t **ret)
{
	int r = 0;
	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->n_pages; i++) {
		const FleetPage *x = &f->pages[i];
		if (x->ino == mp->ino && x->maj == mp->dev_major && x->min == mp->dev_minor) {
			*ret = x->b;
			goto out;
		}
	}
	FleetPage x = { .maj = mp->dev_major, .min = mp->dev_minor, .ino = mp->ino,
			.fd = hp_map_file_open(pid, mp) };
	if (x.fd < 0) {
		r = x.fd;   /* not kept: this process's memory answers */
		goto out;
	}
	x.b = malloc(HP_PAGE1);
	FleetPage *nv = x.b ? realloc(f->pages, (f->n_pages + 1) * sizeof(*nv)) : NULL;
	ssize_t got = nv ? pread(x.fd, x.b, HP_PAGE1, 0) : -1;
	if (nv)
		f->pages = nv;
	if (got < 0) {
		r = nv ? -errno : -ENOMEM;
		close(x.fd);
		free(x.b);
		goto out;
	}
	/* past the end of a short file a mapping reads zeros */
	memset(x.b + got, 0, HP_PAGE1 - (size_t)got);
	f->pages[f->n_pages++] = x;
	*ret = x.b;
out:
	pthread_mutex_unlock(&f->lock);
	return r;
}
