/* Dynamic symbols of a loaded module, found as ld.so finds them: the
 * module's .dynsym through DT_GNU_HASH or DT_HASH, default version only,
 * searched module by module in ld.so's link-map order.  The tables are
 * read from the process's memory (addresses as mapped) or, for facts a
 * many-process call shares (fleet.c), from the module's file (addresses as
 * the file's p_vaddr, read at their file offsets): one lookup for both. */
#include <elf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hotpatch/internal.h"

#define MAX_DYN   512

/* Where the tables are read: memory (ph NULL: an address is an offset of
 * /proc/PID/mem) or a file (an address is a p_vaddr within a PT_LOAD's
 * file bytes). */
typedef struct Src {
	int fd;
	const Elf64_Phdr *ph;
	size_t n_ph;
} Src;

/* Up to len bytes at addr: how many were read (short where the mapping or
 * the segment's file bytes end), or -errno. */
static ssize_t src_pread(const Src *src, uint64_t addr, void *out, size_t len)
{
	uint64_t off = addr;
	if (src->ph) {
		size_t i = 0;
		for (; i < src->n_ph; i++) {
			const Elf64_Phdr *p = &src->ph[i];
			if (p->p_type == PT_LOAD && addr >= p->p_vaddr && addr - p->p_vaddr < p->p_filesz)
				break;
		}
		if (i == src->n_ph)
			return -EFAULT;
		const Elf64_Phdr *p = &src->ph[i];
		if (len > p->p_filesz - (addr - p->p_vaddr))
			len = p->p_filesz - (addr - p->p_vaddr);
		off = p->p_offset + (addr - p->p_vaddr);
	}
	ssize_t got = pread(src->fd, out, len, (off_t)off);
	return got < 0 ? -errno : got;
}

/* Exactly len bytes at addr: 0, or < 0. */
static int src_read(const Src *src, uint64_t addr, void *out, size_t len)
{
	if (!src->ph)
		return hp_mem_read(src->fd, addr, out, len);
	ssize_t got = src_pread(src, addr, out, len);
	return got == (ssize_t)len ? 0 : got < 0 ? (int)got : -EIO;
}

/* The tables named by a .dynamic read at `at` (from memory: most d_ptr
 * entries are absolute there, ld.so rewrote them; the vDSO and ld.so
 * itself keep them relative to `bias`). */
static int dyn_read(const Src *src, uint64_t at, uint64_t bias, HpDynInfo *di)
{
	memset(di, 0, sizeof(*di));
	Elf64_Dyn d[64];
	for (size_t base = 0; base < MAX_DYN; base += 64) {
		/* a short read is fine: .dynamic may end its mapping or segment */
		ssize_t got = src_pread(src, at + base * sizeof(Elf64_Dyn), d, sizeof(d));
		if (got < (ssize_t)sizeof(Elf64_Dyn))
			return -EIO;
		for (size_t i = 0; i < (size_t)got / sizeof(Elf64_Dyn); i++) {
			uint64_t v = d[i].d_un.d_ptr;
			uint64_t a = v < bias ? v + bias : v;
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

/* 1 when symbol idx is a defined `name` of the default version (value
 * into *ret_value), 0 when not, -ENOTSUP for an IFUNC (its resolver would
 * have to run in the target: refused). */
static int sym_matches(const Src *src, const HpDynInfo *di, uint32_t idx, const char *name,
		       size_t name_len, uint64_t *ret_value)
{
	Elf64_Sym s;
	int r = src_read(src, di->symtab + (uint64_t)idx * sizeof(s), &s, sizeof(s));
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
	r = src_read(src, di->strtab + s.st_name, buf, name_len + 1);
	if (r < 0)
		return 0;
	if (memcmp(buf, name, name_len + 1) != 0)
		return 0;
	if (di->versym) {
		uint16_t vs = 0;
		/* a hidden (non-default) version is not what a plain reference binds to */
		if (src_read(src, di->versym + (uint64_t)idx * 2, &vs, 2) == 0 && (vs & 0x8000))
			return 0;
	}
	if (type == STT_GNU_IFUNC)
		return -ENOTSUP;
	*ret_value = s.st_value;
	return 1;
}

/* The ELF hash functions: arithmetic modulo 2^32 is what they are. */
BASE_WRAPS static uint32_t hash_gnu(const char *name, size_t *ret_len)
{
	uint32_t h = 5381;
	size_t len = 0;
	for (const unsigned char *c = (const unsigned char *)name; *c; c++, len++)
		h = h * 33 + *c;
	*ret_len = len;
	return h;
}

BASE_WRAPS static uint32_t hash_sysv(const char *name, size_t *ret_len)
{
	uint32_t h = 0, g;
	size_t len = 0;
	for (const unsigned char *c = (const unsigned char *)name; *c; c++, len++) {
		h = (h << 4) + *c;
		g = h & 0xf0000000u;
		if (g)
			h ^= g >> 24;
		h &= ~g;
	}
	*ret_len = len;
	return h;
}

static int lookup_gnu(const Src *src, const HpDynInfo *di, const char *name, uint64_t *ret_value)
{
	uint32_t hdr[4];
	int r = src_read(src, di->gnu_hash, hdr, sizeof(hdr));
	if (r < 0)
		return r;
	uint32_t nbuckets = hdr[0], symoffset = hdr[1], bloom_size = hdr[2], shift = hdr[3];
	if (nbuckets == 0 || bloom_size == 0)
		return 0;
	size_t len = 0;
	uint32_t h = hash_gnu(name, &len);
	uint64_t bloom_at = di->gnu_hash + 16;
	uint64_t word;
	r = src_read(src, bloom_at + ((h / 64) % bloom_size) * 8, &word, 8);
	if (r < 0)
		return r;
	uint64_t mask = (1ull << (h % 64)) | (1ull << ((h >> shift) % 64));
	if ((word & mask) != mask)
		return 0;
	uint64_t buckets_at = bloom_at + (uint64_t)bloom_size * 8;
	uint64_t chain_at = buckets_at + (uint64_t)nbuckets * 4;
	uint32_t idx;
	r = src_read(src, buckets_at + (h % nbuckets) * 4, &idx, 4);
	if (r < 0)
		return r;
	if (idx < symoffset)
		return 0;
	for (unsigned guard = 0; guard < 100000; guard++, idx++) {
		uint32_t ch;
		r = src_read(src, chain_at + (uint64_t)(idx - symoffset) * 4, &ch, 4);
		if (r < 0)
			return r;
		if ((ch | 1) == (h | 1)) {
			r = sym_matches(src, di, idx, name, len, ret_value);
			if (r != 0)
				return r;
		}
		if (ch & 1)
			break;
	}
	return 0;
}

static int lookup_sysv(const Src *src, const HpDynInfo *di, const char *name, uint64_t *ret_value)
{
	uint32_t hdr[2];
	int r = src_read(src, di->hash, hdr, sizeof(hdr));
	if (r < 0)
		return r;
	uint32_t nbucket = hdr[0], nchain = hdr[1];
	if (nbucket == 0)
		return 0;
	size_t len = 0;
	uint32_t h = hash_sysv(name, &len);
	uint32_t idx;
	r = src_read(src, di->hash + 8 + (h % nbucket) * 4, &idx, 4);
	if (r < 0)
		return r;
	for (unsigned guard = 0; idx != 0 && idx < nchain && guard < nchain; guard++) {
		r = sym_matches(src, di, idx, name, len, ret_value);
		if (r != 0)
			return r;
		r = src_read(src, di->hash + 8 + ((uint64_t)nbucket + idx) * 4, &idx, 4);
		if (r < 0)
			return r;
	}
	return 0;
}

static int lookup(const Src *src, const HpDynInfo *di, const char *name, uint64_t *ret_value)
{
	if (di->gnu_hash)
		return lookup_gnu(src, di, name, ret_value);
	if (di->hash)
		return lookup_sysv(src, di, name, ret_value);
	return 0;
}

int hp_file_symbol(int fd, const char *name, uint64_t *ret_value)
{
	Elf64_Phdr ph[HP_MAX_PHDRS];
	size_t n = 0;
	int r = hp_file_phdrs(fd, ph, &n);
	if (r < 0)
		return r;
	const Src src = { .fd = fd, .ph = ph, .n_ph = n };
	for (size_t i = 0; i < n; i++) {
		if (ph[i].p_type != PT_DYNAMIC)
			continue;
		HpDynInfo di;
		r = dyn_read(&src, ph[i].p_vaddr, 0, &di);
		return r < 0 ? r : lookup(&src, &di, name, ret_value);
	}
	return 0;   /* no .dynamic: defines nothing dynamic */
}

static int dyn_get(int memfd, HpModule *mod)
{
	if (!mod->dyn_read) {
		const Src src = { .fd = memfd };
		int q = mod->dynamic ? dyn_read(&src, mod->dynamic, mod->bias, &mod->dyn) : -ENOENT;
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
	const Src src = { .fd = memfd };
	for (size_t i = 0; i < n; i++)
		mods[i].link_rank = -1;
	uint64_t rd = 0;
	for (size_t i = 0; i < n && !rd; i++)
		if (dyn_get(memfd, &mods[i]) > 0)
			rd = mods[i].dyn.debug;
	for (size_t i = 0; i < n && !rd; i++) {
		uint64_t v = 0;
		if (mods[i].dyn_read > 0 && mods[i].dyn.gnu_hash &&
		    lookup_gnu(&src, &mods[i].dyn, "_r_debug", &v) == 1)
			rd = mods[i].bias + v;
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

/* The modules in search order: ranked ones by rank, then the rest (not in
 * the map: an ELF file mapped by hand) in address order. */
static size_t search_order(int memfd, HpModule *mods, size_t n, size_t *order)
{
	if (n && mods[0].link_rank == 0)
		link_ranks(memfd, mods, n);
	size_t k = 0;
	for (int next = 1;;) {
		size_t pick = n;
		int best = 0;
		for (size_t i = 0; i < n; i++)
			if (mods[i].link_rank >= next && (!best || mods[i].link_rank < best)) {
				best = mods[i].link_rank;
				pick = i;
			}
		if (pick == n)
			break;
		order[k++] = pick;
		next = best + 1;
	}
	for (size_t i = 0; i < n; i++)
		if (mods[i].link_rank <= 0)
			order[k++] = i;
	return k;
}

int hp_symbol_resolve(int memfd, pid_t pid, HpModule *mods, size_t n, const char *name,
		      HpFleet *fleet, uint64_t *ret_addr)
{
	_cleanup_free_ size_t *order = calloc(n ? n : 1, sizeof(size_t));
	_cleanup_free_ int *said = calloc(n ? n : 1, sizeof(int));
	_cleanup_free_ uint64_t *val = calloc(n ? n : 1, sizeof(uint64_t));
	if (!order || !said || !val)
		return -ENOMEM;
	/* a many-process call asks each module's file once (fleet.c): when
	 * one module alone defines the name, the order does not matter and
	 * nothing is read from this process at all */
	size_t definers = 0, first = n;
	for (size_t i = 0; fleet && i < n; i++) {
		said[i] = hp_fleet_symbol(fleet, pid, &mods[i], name, &val[i]);
		if (said[i] < 0 && said[i] != -ENOTSUP) {
			fleet = NULL;   /* a file not readable: this process's memory */
			break;
		}
		if (said[i] != 0) {
			definers++;
			first = i;
		}
	}
	if (fleet && definers == 0)
		return -ENOENT;
	if (fleet && definers > 1) {
		size_t k = search_order(memfd, mods, n, order);
		first = n;
		for (size_t j = 0; j < k && first == n; j++)
			if (said[order[j]] != 0)
				first = order[j];
	}
	if (fleet) {
		if (said[first] < 0)
			return said[first];
		*ret_addr = mods[first].bias + val[first];
		return 0;
	}
	size_t k = search_order(memfd, mods, n, order);
	for (size_t j = 0; j < k; j++) {
		HpModule *m = &mods[order[j]];
		if (dyn_get(memfd, m) < 0)
			continue;
		const Src src = { .fd = memfd };
		uint64_t v = 0;
		int r = lookup(&src, &m->dyn, name, &v);
		if (r == 1) {
			*ret_addr = m->bias + v;
			return 0;
		}
		if (r == -ENOTSUP)
			return r;
	}
	return -ENOENT;
}
