/* Loaded modules read from the target's own memory: load bias, GNU build-id,
 * caves (their symbols: symbol.c). */
#include <elf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "hotpatch/internal.h"

/* len bytes at addr: from the first page when they lie in it, else read */
static int page_read(int memfd, const HpPage *pg, uint64_t addr, void *out, size_t len)
{
	if (addr >= pg->at && len <= HP_PAGE1 && addr - pg->at <= HP_PAGE1 - len) {
		memcpy(out, pg->b + (addr - pg->at), len);
		return 0;
	}
	return hp_mem_read(memfd, addr, out, len);
}

static int read_phdrs(int memfd, HpPage *pg, Elf64_Ehdr *eh, Elf64_Phdr *ph, size_t *ret_n)
{
	int r = pg->ok ? 0 : hp_mem_read(memfd, pg->at, pg->b, HP_PAGE1);
	if (r < 0)
		return r;
	pg->ok = true;
	memcpy(eh, pg->b, sizeof(*eh));
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 || eh->e_phnum > HP_MAX_PHDRS ||
	    eh->e_phoff > UINT64_MAX - pg->at)
		return -BASE_E_NOTELF;
	r = page_read(memfd, pg, pg->at + eh->e_phoff, ph, eh->e_phnum * sizeof(Elf64_Phdr));
	if (r < 0)
		return r;
	*ret_n = eh->e_phnum;
	return 0;
}

/* The cave of a module (see HpModule): the largest tail of an executable
 * segment's last page that no segment's bytes reach. */
static void cave_of(const Elf64_Phdr *ph, size_t n, uint64_t bias, uint64_t *cave,
		    uint64_t *cave_len)
{
	*cave = *cave_len = 0;
	for (size_t i = 0; i < n; i++) {
		if (ph[i].p_type != PT_LOAD || !(ph[i].p_flags & PF_X) || !ph[i].p_memsz)
			continue;
		uint64_t end = bias + ph[i].p_vaddr + ph[i].p_memsz;
		uint64_t at = (end + 15) & ~(uint64_t)15, page_end = (end + 4095) & ~(uint64_t)4095;
		bool free = at < page_end && page_end - at >= HP_CAVE_MIN &&
			    page_end - at > *cave_len;
		for (size_t k = 0; free && k < n; k++) {
			uint64_t lo = bias + ph[k].p_vaddr, hi = lo + ph[k].p_memsz;
			if (ph[k].p_type == PT_LOAD && k != i && lo < page_end && hi > at)
				free = false;   /* another segment shares the page */
		}
		if (free) {
			*cave = at;
			*cave_len = page_end - at;
		}
	}
}

/* Program headers and load bias of the ELF file mapped at pg->at. */
static int probe_phdrs(int memfd, HpPage *pg, Elf64_Phdr *ph, size_t *ret_n, uint64_t *ret_bias)
{
	Elf64_Ehdr eh;
	int r = read_phdrs(memfd, pg, &eh, ph, ret_n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < *ret_n; i++)
		if (ph[i].p_type == PT_LOAD && ph[i].p_offset == 0) {
			*ret_bias = pg->at - (ph[i].p_vaddr & ~(uint64_t)0xfff);
			return 0;
		}
	return -BASE_E_NOTELF;
}

int hp_module_cave(int memfd, HpPage *pg, uint64_t *ret_cave, uint64_t *ret_len)
{
	Elf64_Phdr ph[HP_MAX_PHDRS];
	size_t n = 0;
	uint64_t bias = 0;
	int r = probe_phdrs(memfd, pg, ph, &n, &bias);
	if (r < 0)
		return r;
	cave_of(ph, n, bias, ret_cave, ret_len);
	return *ret_cave ? 0 : -ENOENT;
}

static int module_probe(int memfd, const HpMap *mp, HpPage *pg, HpModule *mod)
{
	Elf64_Phdr ph[HP_MAX_PHDRS];
	size_t n = 0;
	int r = probe_phdrs(memfd, pg, ph, &n, &mod->bias);
	if (r < 0)
		return r;
	mod->start = mp->start;
	mod->start_end = mp->end;
	cave_of(ph, n, mod->bias, &mod->cave, &mod->cave_len);
	for (size_t i = 0; i < n; i++) {
		if (ph[i].p_type == PT_DYNAMIC)
			mod->dynamic = mod->bias + ph[i].p_vaddr;
		if (ph[i].p_type == PT_NOTE && ph[i].p_memsz <= 4096 && !mod->build_id_len) {
			uint8_t notes[4096];
			if (page_read(memfd, pg, mod->bias + ph[i].p_vaddr, notes, ph[i].p_memsz) == 0)
				(void)elf_notes_build_id(notes, ph[i].p_memsz, mod->build_id, &mod->build_id_len);
		}
	}
	return 0;
}

static bool module_candidate(const HpMap *mp)
{
	return mp->offset == 0 && mp->ino != 0 && mp->perms[0] == 'r';
}

/* The first pages not ok in one process_vm_readv (a page-aligned page is
 * within one mapping); what it could not read is read one page at a time
 * when needed (probe_phdrs), and a module whose page cannot be read at all
 * is left out. */
static void first_pages(pid_t pid, HpPage *pg, size_t n)
{
	enum { CHUNK = 64 };
	size_t k = 0, idx[CHUNK];
	struct iovec lo[CHUNK], re[CHUNK];
	for (size_t i = 0; i <= n; i++) {
		if (i < n && !pg[i].ok) {
			idx[k] = i;
			lo[k] = (struct iovec){ pg[i].b, HP_PAGE1 };
			re[k++] = (struct iovec){ (void *)(uintptr_t)pg[i].at, HP_PAGE1 };
		}
		if (k == 0 || (k < CHUNK && i < n))
			continue;
		ssize_t got = process_vm_readv(pid, lo, k, re, k, 0);
		/* whole pages only: a transfer stops at an element's end */
		for (size_t j = 0; got > 0 && j < k && (size_t)got >= (j + 1) * HP_PAGE1; j++)
			pg[idx[j]].ok = true;
		if (got < (ssize_t)(k * HP_PAGE1))
			return;
		k = 0;
	}
}

static bool page_wanted(const HpMap *mp, const HpMap *only, const HpPages *skip)
{
	return module_candidate(mp) && (!only || only->start == mp->start) &&
	       !hp_pages_find((HpPages *)skip, mp->start);
}

int hp_pages_read(pid_t pid, const HpMaps *m, HpFleet *fleet, const HpMap *only,
		  const HpPages *skip, HpPages *ret)
{
	size_t n = 0;
	for (size_t i = 0; i < m->n; i++)
		n += page_wanted(&m->v[i], only, skip);
	HpPages p = { .v = malloc((n ? n : 1) * sizeof(HpPage)) };
	/* not calloc: zeroing the pages cost more than reading them; those
	 * the files give are never touched */
	p.own = malloc((n ? n : 1) * HP_PAGE1);
	if (!p.v || !p.own) {
		hp_pages_free(&p);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->n; i++) {
		const HpMap *mp = &m->v[i];
		if (!page_wanted(mp, only, skip))
			continue;
		HpPage *pg = &p.v[p.n];
		*pg = (HpPage){ .at = mp->start, .b = p.own + p.n * HP_PAGE1 };
		/* from the file, once per call */
		if (fleet && hp_fleet_page(fleet, pid, mp, &pg->b) == 0)
			pg->ok = true;
		p.n++;
	}
	first_pages(pid, p.v, p.n);
	*ret = p;
	return 0;
}

HpPage *hp_pages_find(HpPages *p, uint64_t at)
{
	for (size_t i = 0; p && i < p->n; i++)
		if (p->v[i].at == at)
			return &p->v[i];
	return NULL;
}

void hp_pages_free(HpPages *p)
{
	free(p->v);
	free(p->own);
	*p = (HpPages){ 0 };
}

int hp_modules_read(pid_t pid, int memfd, const HpMaps *m, HpPages *pages, HpModule **ret,
		    size_t *ret_n)
{
	size_t n = 0;
	HpPages own = { 0 };   /* the pages `pages` does not have */
	int r = hp_pages_read(pid, m, NULL, NULL, pages, &own);
	if (r < 0)
		return r;
	HpModule *v = malloc((own.n + (pages ? pages->n : 0) + 1) * sizeof(*v));   /* one a page */
	if (!v) {
		hp_pages_free(&own);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->n; i++) {
		const HpMap *mp = &m->v[i];
		if (!module_candidate(mp))
			continue;
		HpModule mod = { .path = mp->path, .dev_major = mp->dev_major,
				 .dev_minor = mp->dev_minor, .ino = mp->ino, .lo = mp->start };
		HpPage *pg = hp_pages_find(pages, mp->start);
		if (!pg)
			pg = hp_pages_find(&own, mp->start);
		if (!pg || module_probe(memfd, mp, pg, &mod) < 0)
			continue;
		/* the span: following mappings of the same file */
		mod.hi = mp->end;
		for (size_t j = i + 1; j < m->n; j++) {
			const HpMap *q = &m->v[j];
			if (q->ino == mp->ino && q->dev_major == mp->dev_major &&
			    q->dev_minor == mp->dev_minor && q->offset != 0)
				mod.hi = q->end;
			else if (q->ino != 0 || q->start != mod.hi)
				break;
		}
		v[n++] = mod;
	}
	hp_pages_free(&own);
	*ret = v;
	*ret_n = n;
	return 0;
}

int hp_file_phdrs(int fd, Elf64_Phdr ph[HP_MAX_PHDRS], size_t *ret_n)
{
	Elf64_Ehdr eh;
	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh))
		return -BASE_E_NOTELF;
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > HP_MAX_PHDRS)
		return -BASE_E_NOTELF;
	size_t sz = eh.e_phnum * sizeof(Elf64_Phdr);
	if (pread(fd, ph, sz, (off_t)eh.e_phoff) != (ssize_t)sz)
		return -BASE_E_NOTELF;
	*ret_n = eh.e_phnum;
	return 0;
}

int hp_file_build_id(int fd, uint8_t out[64], size_t *ret_len)
{
	Elf64_Phdr ph[HP_MAX_PHDRS];
	size_t n = 0, len = 0;
	int r = hp_file_phdrs(fd, ph, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && !len; i++) {
		if (ph[i].p_type != PT_NOTE || ph[i].p_filesz > 4096)
			continue;
		uint8_t notes[4096];
		if (pread(fd, notes, ph[i].p_filesz, (off_t)ph[i].p_offset) != (ssize_t)ph[i].p_filesz)
			continue;
		if (elf_notes_build_id(notes, ph[i].p_filesz, out, &len) < 0)
			len = 0;
	}
	if (!len)
		return -ENOENT;
	*ret_len = len;
	return 0;
}
