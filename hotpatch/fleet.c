/* What the sessions of one many-process call share: facts about files, not
 * about processes.  A fleet of processes maps the same few files; what a
 * file says (its lineage note) is read once per file and call, not once per
 * process.  A file is known by the device and inode its mapping shows (a
 * mapped inode cannot be freed and reused while the call runs) and the
 * build-id the process's mapping carries.  Nothing read from a process's
 * memory is shared: one process's bytes never decide another's patch. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hotpatch/internal.h"

typedef struct FleetFile {
	unsigned maj, min;
	uint64_t ino;
	uint8_t build_id[64];
	size_t build_id_len;
	ElfLineage lin;
} FleetFile;

struct HpFleet {
	pthread_mutex_t lock;
	FleetFile *v;
	size_t n;
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
	for (size_t i = 0; i < f->n; i++)
		elf_lineage_free(&f->v[i].lin);
	free(f->v);
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

int hp_fleet_lineage(HpFleet *f, const HpModule *mod, ElfLineage *ret)
{
	int r = 1;
	pthread_mutex_lock(&f->lock);
	const FleetFile *x = find(f, mod);
	if (x)
		r = lineage_copy(&x->lin, ret);
	pthread_mutex_unlock(&f->lock);
	return r;
}

void hp_fleet_lineage_put(HpFleet *f, const HpModule *mod, const ElfLineage *l)
{
	pthread_mutex_lock(&f->lock);
	FleetFile *nv;
	if (!find(f, mod) && (nv = realloc(f->v, (f->n + 1) * sizeof(*nv)))) {
		f->v = nv;
		FleetFile *x = &f->v[f->n];
		memset(x, 0, sizeof(*x));
		x->maj = mod->dev_major;
		x->min = mod->dev_minor;
		x->ino = mod->ino;
		memcpy(x->build_id, mod->build_id, mod->build_id_len);
		x->build_id_len = mod->build_id_len;
		if (lineage_copy(l, &x->lin) == 0)
			f->n++;
	}
	pthread_mutex_unlock(&f->lock);
}
