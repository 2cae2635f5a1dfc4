/* Loaded modules read from the target's own memory: load bias, GNU build-id
 * and the dynamic symbol table (so symbols resolve exactly as the process
 * loaded them, libc included, whatever its mount namespace). */
#include <elf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "hotpatch/internal.h"

#define MAX_PHDRS 64
#define MAX_DYN   512

/* The first page of a mapped ELF file: its header, and in practice its
 * program headers and notes too, in one read (a page-aligned page is
 * always within one mapping). */
typedef struct Page1 {
	uint64_t at;
	bool ok;        /* b holds the page already */
	uint8_t b[4096];
} Page1;

/* len bytes at addr: from the first page when they lie in it, else read */
static int page_read(int memfd, const Page1 *pg, uint64_t addr, void *out, size_t len)
{
	if (addr >= pg->at && len <= sizeof(pg->b) && addr - pg->at <= sizeof(pg->b) - len) {
		memcpy(out, pg->b + (addr - pg->at), len);
		return 0;
	}
	return hp_mem_read(memfd, addr, out, len);
}

static int read_phdrs(int memfd, Page1 *pg, Elf64_Ehdr *eh, Elf64_Phdr *ph, size_t *ret_n)
{
	int r = pg->ok ? 0 : hp_mem_read(memfd, pg->at, pg->b, sizeof(pg->b));
	if (r < 0)
		return r;
	memcpy(eh, pg->b, sizeof(*eh));
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 || eh->e_phnum > MAX_PHDRS ||
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
static int probe_phdrs(int memfd, Page1 *pg, Elf64_Phdr *ph, size_t *ret_n, uint64_t *ret_bias)
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

int hp_module_cave(int memfd, uint64_t start, uint64_t *ret_cave, uint64_t *ret_len)
{
	Elf64_Phdr ph[MAX_PHDRS];
	size_t n = 0;
	uint64_t bias = 0;
	Page1 pg = { .at = start };
	int r = probe_phdrs(memfd, &pg, ph, &n, &bias);
	if (r < 0)
		return r;
	cave_of(ph, n, bias, ret_cave, ret_len);
	return *ret_cave ? 0 : -ENOENT;
}

static int module_probe(int memfd, const HpMap *mp, Page1 *pg, HpModule *mod)
{
	Elf64_Phdr ph[MAX_PHDRS];
	size_t n = 0;
	int r = probe_phdrs(memfd, pg, ph, &n, &mod->bias);
	if (r < 0)
		return r;
	mod->start = mp->start;
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

/* The first page of every module in one process_vm_readv (a page-aligned
 * page is within one mapping); what it could not read is read one page at
 * a time by module_probe, and a module whose page cannot be read at all is
 * left out, as before. */
static void first_pages(pid_t pid, Page1 *pg, size_t n)
{
	enum { CHUNK = 64 };
	for (size_t at = 0; at < n; at += CHUNK) {
		struct iovec lo[CHUNK], re[CHUNK];
		size_t k = n - at < CHUNK ? n - at : CHUNK;
		for (size_t i = 0; i < k; i++) {
			lo[i] = (struct iovec){ pg[at + i].b, sizeof(pg[at + i].b) };
			re[i] = (struct iovec){ (void *)(uintptr_t)pg[at + i].at, sizeof(pg[at + i].b) };
		}
		ssize_t got = process_vm_readv(pid, lo, k, re, k, 0);
		/* whole pages only: a transfer stops at an element's end */
		for (size_t i = 0; got > 0 && i < k && (size_t)got >= (i + 1) * sizeof(pg->b); i++)
			pg[at + i].ok = true;
		if (got < (ssize_t)(k * sizeof(pg->b)))
			return;
	}
}

int hp_modules_read(pid_t pid, int memfd, const HpMaps *m, HpModule **ret, size_t *ret_n)
{
	HpModule *v = NULL;
	size_t n = 0, n_pg = 0;
	for (size_t i = 0; i < m->n; i++)
		n_pg += module_candidate(&m->v[i]);
	_cleanup_free_ Page1 *pg = calloc(n_pg ? n_pg : 1, sizeof(*pg));
	if (!pg)
		return -ENOMEM;
	for (size_t i = 0, k = 0; i < m->n; i++)
		if (module_candidate(&m->v[i]))
			pg[k++].at = m->v[i].start;
	first_pages(pid, pg, n_pg);
	for (size_t i = 0, k = 0; i < m->n; i++) {
		const HpMap *mp = &m->v[i];
		if (!module_candidate(mp))
			continue;
		HpModule mod = { .path = mp->path, .dev_major = mp->dev_major,
				 .dev_minor = mp->dev_minor, .ino = mp->ino, .lo = mp->start };
		if (module_probe(memfd, mp, &pg[k++], &mod) < 0)
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
		HpModule *nv = realloc(v, (n + 1) * sizeof(*nv));
		if (!nv) {
			free(v);
			return -ENOMEM;
		}
		v = nv;
		v[n++] = mod;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* ---- dynamic symbols ------------------------------------------------------ */

typedef HpDynInfo DynInfo;

static int dyn_info(int memfd, const HpModule *mod, DynInfo *di)
{
	memset(di, 0, sizeof(*di));
	if (!mod->dynamic)
		return -ENOENT;
	Elf64_Dyn d[64];
	for (size_t base = 0; base < MAX_DYN; base += 64) {
		/* a short read is fine: .dynamic may end its mapping */
		ssize_t got = pread(memfd, d, sizeof(d),
				    (off_t)(mod->dynamic + base * sizeof(Elf64_Dyn)));
		if (got < (ssize_t)sizeof(Elf64_Dyn))
			return -EIO;
		for (size_t i = 0; i < (size_t)got / sizeof(Elf64_Dyn); i++) {
			uint64_t v = d[i].d_un.d_ptr;
			/* ld.so rewrites most d_ptr entries to absolute addresses in
			 * place; the vDSO and ld.so itself keep them relative. */
			uint64_t a = v < mod->bias ? v + mod->bias : v;
			switch (d[i].d_tag) {
			case DT_NULL:
				return di->symtab && di->strtab ? 0 : -ENOENT;
			case DT_SYMTAB: di->symtab = a; break;
			case DT_STRTAB: di->strtab = a; break;
			case DT_STRSZ: di->strsz = v; break;
			case DT_GNU_HASH: di->gnu_hash = a; break;
			case DT_HASH: di->hash = a; break;
			case DT_VERSYM: di->versym = a; break;
			case DT_DEBUG: di->debug = v; break;   /* written by ld.so */
			}
		}
	}
	return -EBADMSG;
}

static int sym_matches(int memfd, const DynInfo *di, uint32_t idx, const char *name,
		       size_t name_len, uint64_t bias, uint64_t *ret_addr)
{
	Elf64_Sym s;
	int r = hp_mem_read(memfd, di->symtab + (uint64_t)idx * sizeof(s), &s, sizeof(s));
	if (r < 0)
		return r;
	if (s.st_shndx == SHN_UNDEF || s.st_value == 0 || s.st_name >= di->strsz)
		return 0;
	unsigned bind = ELF64_ST_BIND(s.st_info), type = ELF64_ST_TYPE(s.st_info);
	if (bind != STB_GLOBAL && bind != STB_WEAK && bind != STB_GNU_UNIQUE)
		return 0;
	if (type == STT_TLS || type == STT_SECTION || type == STT_FILE)
		return 0;
	char buf[256];
	if (name_len + 1 > sizeof(buf))
		return 0;
	r = hp_mem_read(memfd, di->strtab + s.st_name, buf, name_len + 1);
	if (r < 0)
		return 0;
	if (memcmp(buf, name, name_len + 1) != 0)
		return 0;
	if (di->versym) {
		uint16_t vs = 0;
		/* a hidden (non-default) version is not what a plain reference binds to */
		if (hp_mem_read(memfd, di->versym + (uint64_t)idx * 2, &vs, 2) == 0 && (vs & 0x8000))
			return 0;
	}
	/* STT_GNU_IFUNC would need the resolver run in the target: refused */
	if (type == STT_GNU_IFUNC)
		return -ENOTSUP;
	*ret_addr = bias + s.st_value;
	return 1;
}

static int lookup_gnu(int memfd, const DynInfo *di, const char *name, uint64_t bias,
		      uint64_t *ret_addr)
{
	uint32_t hdr[4];
	int r = hp_mem_read(memfd, di->gnu_hash, hdr, sizeof(hdr));
	if (r < 0)
		return r;
	uint32_t nbuckets = hdr[0], symoffset = hdr[1], bloom_size = hdr[2], shift = hdr[3];
	if (nbuckets == 0 || bloom_size == 0)
		return 0;
	uint32_t h = 5381;
	size_t len = 0;
	for (const unsigned char *c = (const unsigned char *)name; *c; c++, len++)
		h = h * 33 + *c;
	uint64_t bloom_at = di->gnu_hash + 16;
	uint64_t word;
	r = hp_mem_read(memfd, bloom_at + ((h / 64) % bloom_size) * 8, &word, 8);
	if (r < 0)
		return r;
	uint64_t mask = (1ull << (h % 64)) | (1ull << ((h >> shift) % 64));
	if ((word & mask) != mask)
		return 0;
	uint64_t buckets_at = bloom_at + (uint64_t)bloom_size * 8;
	uint64_t chain_at = buckets_at + (uint64_t)nbuckets * 4;
	uint32_t idx;
	r = hp_mem_read(memfd, buckets_at + (h % nbuckets) * 4, &idx, 4);
	if (r < 0)
		return r;
	if (idx < symoffset)
		return 0;
	for (unsigned guard = 0; guard < 100000; guard++, idx++) {
		uint32_t ch;
		r = hp_mem_read(memfd, chain_at + (uint64_t)(idx - symoffset) * 4, &ch, 4);
		if (r < 0)
			return r;
		if ((ch | 1) == (h | 1)) {
			r = sym_matches(memfd, di, idx, name, len, bias, ret_addr);
			if (r != 0)
				return r;
		}
		if (ch & 1)
			break;
	}
	return 0;
}

static int lookup_sysv(int memfd, const DynInfo *di, const char *name, uint64_t bias,
		       uint64_t *ret_addr)
{
	uint32_t hdr[2];
	int r = hp_mem_read(memfd, di->hash, hdr, sizeof(hdr));
	if (r < 0)
		return r;
	uint32_t nbucket = hdr[0], nchain = hdr[1];
	if (nbucket == 0)
		return 0;
	uint32_t h = 0, g;
	size_t len = 0;
	for (const unsigned char *c = (const unsigned char *)name; *c; c++, len++) {
		h = (h << 4) + *c;
		g = h & 0xf0000000u;
		if (g)
			h ^= g >> 24;
		h &= ~g;
	}
	uint32_t idx;
	r = hp_mem_read(memfd, di->hash + 8 + (h % nbucket) * 4, &idx, 4);
	if (r < 0)
		return r;
	for (unsigned guard = 0; idx != 0 && idx < nchain && guard < nchain; guard++) {
		r = sym_matches(memfd, di, idx, name, len, bias, ret_addr);
		if (r != 0)
			return r;
		r = hp_mem_read(memfd, di->hash + 8 + ((uint64_t)nbucket + idx) * 4, &idx, 4);
		if (r < 0)
			return r;
	}
	return 0;
}

static int dyn_get(int memfd, HpModule *mod)
{
	if (!mod->dyn_read) {
		int q = dyn_info(memfd, mod, &mod->dyn);
		mod->dyn_read = q < 0 ? q : 1;
	}
	return mod->dyn_read;
}

/* The order ld.so binds in: its link map (r_debug.r_map, then l_next),
 * the executable first, then its libraries as loaded.  Address order is
 * not it: libraries are mapped top-down, so two libraries defining one
 * symbol (an allocator interposing libc's malloc) would bind a fix to the
 * other one.  r_debug is found through the executable's DT_DEBUG (ld.so
 * fills it in), else ld.so's own _r_debug.  Each module's place goes into
 * link_rank; without a readable map every rank stays -1 (address order). */
static void link_ranks(int memfd, HpModule *mods, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mods[i].link_rank = -1;
	uint64_t rd = 0;
	for (size_t i = 0; i < n && !rd; i++)
		if (dyn_get(memfd, &mods[i]) > 0)
			rd = mods[i].dyn.debug;
	for (size_t i = 0; i < n && !rd; i++) {
		const HpDynInfo di = mods[i].dyn;
		uint64_t a = 0;
		if (mods[i].dyn_read > 0 && di.gnu_hash &&
		    lookup_gnu(memfd, &di, "_r_debug", mods[i].bias, &a) == 1)
			rd = a;
	}
	/* struct r_debug: int r_version; struct link_map *r_map; ... */
	uint64_t node = 0;
	if (!rd || hp_mem_read(memfd, rd + 8, &node, 8) < 0)
		return;
	/* struct link_map: l_addr, l_name, l_ld, l_next, l_prev */
	for (int rank = 1; node && rank <= 4096; rank++) {
		uint64_t lm[4];
		if (hp_mem_read(memfd, node, lm, sizeof(lm)) < 0)
			return;
		for (size_t i = 0; i < n; i++)
			if (mods[i].dynamic && mods[i].dynamic == lm[2] && mods[i].link_rank < 0)
				mods[i].link_rank = rank;
		node = lm[3];
	}
}

static int lookup(int memfd, HpModule *mod, const char *name, uint64_t *ret_addr)
{
	if (dyn_get(memfd, mod) < 0)
		return 0;
	const HpDynInfo di = mod->dyn;
	if (di.gnu_hash)
		return lookup_gnu(memfd, &di, name, mod->bias, ret_addr);
	if (di.hash)
		return lookup_sysv(memfd, &di, name, mod->bias, ret_addr);
	return 0;
}

int hp_symbol_resolve(int memfd, HpModule *mods, size_t n, const char *name,
		      uint64_t *ret_addr)
{
	if (n && mods[0].link_rank == 0)
		link_ranks(memfd, mods, n);
	/* ranked modules by rank, then the rest (not in the map: an ELF
	 * file mapped by hand) in address order */
	int next = 1;
	for (size_t done = 0; done < n;) {
		size_t pick = n;
		int best = 0;
		for (size_t i = 0; i < n; i++)
			if (mods[i].link_rank >= next && (!best || mods[i].link_rank < best)) {
				best = mods[i].link_rank;
				pick = i;
			}
		if (pick == n)
			break;
		next = best + 1;
		done++;
		int r = lookup(memfd, &mods[pick], name, ret_addr);
		if (r == 1)
			return 0;
		if (r == -ENOTSUP)
			return r;
	}
	for (size_t i = 0; i < n; i++) {
		if (mods[i].link_rank > 0)
			continue;
		int r = lookup(memfd, &mods[i], name, ret_addr);
		if (r == 1)
			return 0;
		if (r == -ENOTSUP)
			return r;
	}
	return -ENOENT;
}

int hp_file_build_id(int fd, uint8_t out[64], size_t *ret_len)
{
	Elf64_Ehdr eh;
	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh))
		return -BASE_E_NOTELF;
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > MAX_PHDRS)
		return -BASE_E_NOTELF;
	Elf64_Phdr ph[MAX_PHDRS];
	size_t sz = eh.e_phnum * sizeof(Elf64_Phdr);
	if (pread(fd, ph, sz, (off_t)eh.e_phoff) != (ssize_t)sz)
		return -BASE_E_NOTELF;
	size_t len = 0;
	for (size_t i = 0; i < eh.e_phnum && !len; i++) {
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
