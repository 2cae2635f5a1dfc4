/* Fixes baked into the file a process maps: a process started from a
 * coldpatch runs the fixes of its lineage note without any state of ours.
 * Its effective fix list is that lineage, minus the fixes hp_unbake took out
 * (records flagged HP_REC_BAKED in the state mapping), followed by the fixes
 * applied in memory. */
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "hotpatch/internal.h"

#define MAX_FILE (1u << 30)

static int open_module(pid_t pid, const HpMaps *m, const HpModule *mod)
{
	const HpMap *mp = hp_maps_find(m, mod->start);
	return mp ? hp_map_file_open(pid, mp) : -ENOENT;
}

/* 0 if the file surely has no lineage section (a base build: the common
 * case, e.g. libc, read in a few KiB), 1 if it has one or cannot tell. */
static int maybe_lineage(int fd)
{
	static const char want[] = ".note.svc.lineage";
	Elf64_Ehdr eh;
	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 || eh.e_shnum > 4096 ||
	    eh.e_shstrndx >= eh.e_shnum)
		return 1;
	size_t n = eh.e_shnum;
	_cleanup_free_ Elf64_Shdr *sh = malloc(n * sizeof(*sh));
	if (!sh || pread(fd, sh, n * sizeof(*sh), (off_t)eh.e_shoff) != (ssize_t)(n * sizeof(*sh)))
		return 1;
	const Elf64_Shdr *ss = &sh[eh.e_shstrndx];
	if (ss->sh_size == 0 || ss->sh_size > (1u << 20))
		return 1;
	_cleanup_free_ char *str = malloc(ss->sh_size + 1);
	if (!str || pread(fd, str, ss->sh_size, (off_t)ss->sh_offset) != (ssize_t)ss->sh_size)
		return 1;
	str[ss->sh_size] = 0;
	for (size_t i = 0; i < n; i++)
		if (sh[i].sh_name < ss->sh_size && strcmp(str + sh[i].sh_name, want) == 0)
			return 1;
	return 0;
}

static int file_lineage(pid_t pid, const HpMaps *m, const HpModule *mod, ElfLineage *ret,
			BaseErr *e)
{
	_cleanup_close_ int fd = open_module(pid, m, mod);
	if (fd < 0)
		return base_err(e, fd == -ENOENT || fd == -ESRCH ? -BASE_E_GONE : fd,
				"pid %d: cannot open the file of %s: %s", (int)pid, mod->path,
				strerror(-fd));
	struct stat st;
	if (fstat(fd, &st) < 0)
		return base_err(e, -errno, "pid %d: %s: %s", (int)pid, mod->path, strerror(errno));
	if (st.st_size <= 0 || (uint64_t)st.st_size > MAX_FILE)
		return base_err(e, -EFBIG, "pid %d: %s: unexpected size", (int)pid, mod->path);
	if (!maybe_lineage(fd)) {
		ElfLineage l = { .build_id_len = mod->build_id_len };
		memcpy(l.build_id, mod->build_id, mod->build_id_len);
		l.fixes = calloc(1, sizeof(char *));
		if (!l.fixes)
			return -ENOMEM;
		*ret = l;
		return 0;
	}
	size_t len = (size_t)st.st_size;
	_cleanup_free_ uint8_t *buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	for (size_t got = 0; got < len;) {
		ssize_t k = pread(fd, buf + got, len - got, (off_t)got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return base_err(e, k < 0 ? -errno : -EIO, "pid %d: reading %s", (int)pid,
					mod->path);
		got += (size_t)k;
	}
	ElfFile *f = NULL;
	int r = elf_open_mem(buf, len, mod->path, &f, e);
	if (r < 0)
		return r;
	r = elf_lineage(f, ret, e);
	elf_close(f);
	return r;
}

int hp_module_lineage(pid_t pid, const HpMaps *m, const HpModule *mod, HpFleet *fleet,
		      ElfLineage *ret, BaseErr *e)
{
	if (fleet && hp_fleet_lineage(fleet, mod, ret) == 0)
		return 0;   /* read from this file for another process of the fleet */
	int r = file_lineage(pid, m, mod, ret, e);
	if (r == 0 && fleet)
		hp_fleet_lineage_put(fleet, mod, ret);
	return r;
}

uint32_t hp_unbaked_status(const HpState *st, const char *fix_id)
{
	for (size_t i = st->n_fixes; i > 0; i--) /* newest first */
		if (st->fixes[i - 1].baked && strcmp(st->fixes[i - 1].fix_id, fix_id) == 0)
			return st->fixes[i - 1].status;
	return 0;
}

bool hp_fix_in_module(const HpFixInfo *f, const HpModule *mod)
{
	if (!mod || !f->n_sites)
		return true;
	return f->sites[0].window >= mod->lo && f->sites[0].window < mod->hi;
}

int hp_effective_ids(const HpState *st, const ElfLineage *file, const HpModule *mod,
		     const char ***ret_ids, size_t *ret_n)
{
	size_t nf = file ? file->n_fixes : 0;
	const char **ids = calloc(nf + st->n_fixes + 1, sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	size_t n = 0;
	/* an unbake still PENDING (the tool died writing it) keeps the fix
	 * effective: hp_unbake may run again and finish it */
	for (size_t i = 0; i < nf; i++)
		if (hp_unbaked_status(st, file->fixes[i]) != HP_FIX_REVERTED)
			ids[n++] = file->fixes[i];
	for (size_t i = 0; i < st->n_fixes; i++)
		if (!st->fixes[i].baked && st->fixes[i].status != HP_FIX_REVERTED &&
		    hp_fix_in_module(&st->fixes[i], mod))
			ids[n++] = st->fixes[i].fix_id;
	*ret_ids = ids;
	*ret_n = n;
	return 0;
}

bool hp_coldpatch_form(const HpMaps *m, const HpModule *mod, uint32_t kind, uint32_t pad,
		       uint64_t window, const uint8_t *expect, const uint8_t *cur)
{
	uint64_t target;
	if (!elf_jump_decode(kind, pad, window, expect, cur, &target))
		return false;
	if (target < mod->lo || target >= mod->hi)
		return false;
	const HpMap *mp = hp_maps_find(m, target);
	return mp && mp->perms[2] == 'x' && mp->ino == mod->ino &&
	       mp->dev_major == mod->dev_major && mp->dev_minor == mod->dev_minor;
}

int hp_effective(pid_t pid, const HpModuleRef *ref, char ***ret_ids, size_t *ret_n,
		 BaseErr *e)
{
	return hp_effective_state(pid, ref, ret_ids, ret_n, NULL, e);
}

int hp_effective_state(pid_t pid, const HpModuleRef *ref, char ***ret_ids, size_t *ret_n,
		       HpState **ret_state, BaseErr *e)
{
	return hp_effective_state_in(pid, ref, NULL, ret_ids, ret_n, ret_state, e);
}

int hp_effective_state_in(pid_t pid, const HpModuleRef *ref, HpFleet *fleet, char ***ret_ids,
			  size_t *ret_n, HpState **ret_state, BaseErr *e)
{
	if (!ref || (!ref->path && !ref->by_inode))
		return base_err(e, -EINVAL, "pid %d: effective fixes: no module given", (int)pid);
	_cleanup_close_ int fd = -1;
	int r = hp_mem_open(pid, false, &fd);
	if (r < 0)
		return base_err(e, r, "pid %d: /proc/%d/mem: %s", (int)pid, (int)pid,
				base_strerror(r));
	HpMaps m = { 0 };
	HpPages pages = { 0 };
	HpModule *mods = NULL;
	size_t n_mods = 0;
	HpState *st = NULL;
	ElfLineage lin = { 0 };
	const char **ids = NULL;
	size_t n = 0;
	uint64_t addr = 0;
	r = hp_maps_read(pid, &m, e);
	if (r < 0)
		goto out;
	/* the modules' first pages: from the files, with a fleet */
	r = hp_pages_read(pid, &m, fleet, NULL, NULL, &pages);
	if (r == 0)
		r = hp_modules_read(pid, fd, &m, &pages, &mods, &n_mods);
	if (r < 0) {
		r = base_err(e, r, "pid %d: reading modules: %s", (int)pid, strerror(-r));
		goto out;
	}
	const HpModule *mod = NULL;
	for (size_t i = 0; i < n_mods && !mod; i++)
		if (ref->path ? strcmp(mods[i].path, ref->path) == 0 :
				mods[i].ino == (uint64_t)ref->ino &&
				mods[i].dev_major == major(ref->dev) &&
				mods[i].dev_minor == minor(ref->dev))
			mod = &mods[i];
	if (!mod) {
		r = base_err(e, -ENOENT, "pid %d: module %s not mapped", (int)pid,
			     ref->path ? ref->path : "(dev:inode)");
		goto out;
	}
	if (hp_state_locate(fd, &m, hp_exe_map(pid, &m), &pages, &addr) < 0)
		addr = 0;
	r = hp_state_load(fd, pid, addr, &st, NULL, e);
	if (r >= 0)
		r = hp_module_lineage(pid, &m, mod, fleet, &lin, e);
	if (r >= 0)
		r = hp_effective_ids(st, &lin, mod, &ids, &n);
	if (r < 0)
		goto out;
	size_t sz = (n + 1) * sizeof(char *);
	for (size_t i = 0; i < n; i++)
		sz += strlen(ids[i]) + 1;
	char **v = malloc(sz);
	if (!v) {
		r = -ENOMEM;
		goto out;
	}
	char *p = (char *)(v + n + 1);
	for (size_t i = 0; i < n; i++) {
		v[i] = p;
		p = stpcpy(p, ids[i]) + 1;
	}
	v[n] = NULL;
	*ret_ids = v;
	*ret_n = n;
	if (ret_state)
		*ret_state = BASE_TAKE_PTR(st);
out:
	free(ids);
	elf_lineage_free(&lin);
	hp_state_free(st);
	free(mods);
	hp_pages_free(&pages);
	hp_maps_free(&m);
	return r;
}
