/* System calls run inside the target (through ptrace.c's hp_ptrace_syscall)
 * and the placement of new code within rel32 reach of a module. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "hotpatch/internal.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define REL32_REACH 0x7fff0000ll   /* a little under 2 GiB: margin for offsets */

size_t hp_injector(const HpTracee *tr)
{
	for (size_t i = 0; i < tr->n; i++)
		if (tr->t[i].tid == tr->pid && tr->t[i].stopped && !tr->t[i].sig)
			return i;
	for (size_t i = 0; i < tr->n; i++)
		if (!tr->t[i].sig)
			return i;
	return 0;
}

/* Any `0f 05` in the target's executable memory will do: we set RIP to it.
 * The vDSO is small and always there; libc's syscall() is the fallback. */
int hp_syscall_insn(HpSession *s, uint64_t *ret, BaseErr *e)
{
	for (size_t i = 0; i < s->maps.n; i++) {
		const HpMap *mp = &s->maps.v[i];
		if (strcmp(mp->path, "[vdso]") != 0 || mp->perms[2] != 'x')
			continue;
		size_t len = mp->end - mp->start;
		if (len > 64 * 1024)
			len = 64 * 1024;
		_cleanup_free_ uint8_t *buf = malloc(len);
		if (!buf || hp_mem_read(s->memfd, mp->start, buf, len) < 0)
			break;
		for (size_t k = 0; k + 1 < len; k++)
			if (buf[k] == 0x0f && buf[k + 1] == 0x05) {
				*ret = mp->start + k;
				return 0;
			}
	}
	uint64_t fn;
	if (hp_symbol_resolve(s->memfd, s->mods, s->n_mods, "syscall", &fn) == 0) {
		uint8_t buf[128];
		if (hp_mem_read(s->memfd, fn, buf, sizeof(buf)) == 0)
			for (size_t k = 0; k + 1 < sizeof(buf); k++)
				if (buf[k] == 0x0f && buf[k + 1] == 0x05) {
					*ret = fn + k;
					return 0;
				}
	}
	return base_err(e, -ENOEXEC, "pid %d: no syscall instruction found (vDSO, libc)",
			(int)s->pid);
}

int hp_rsys(HpSession *s, uint64_t insn, long nr, uint64_t a0, uint64_t a1, uint64_t a2,
		uint64_t a3, uint64_t a4, uint64_t a5, int64_t *ret, BaseErr *e)
{
	const uint64_t args[6] = { a0, a1, a2, a3, a4, a5 };
	int64_t v = 0;
	int r = hp_ptrace_syscall(&s->tr, hp_injector(&s->tr), insn, nr, args, &v, e);
	if (r < 0)
		return r;
	if (v < 0 && v > -4096)
		return base_err(e, (int)v, "pid %d: injected syscall %ld failed: %s", (int)s->pid,
				nr, strerror((int)-v));
	*ret = v;
	return 0;
}

static bool in_reach(uint64_t a, uint64_t size, uint64_t lo, uint64_t hi)
{
	uint64_t mn = a < lo ? a : lo, mx = a + size > hi ? a + size : hi;
	return mx - mn < (uint64_t)REL32_REACH;
}

static int cmp_u64_dist(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;
	return x[1] < y[1] ? -1 : x[1] > y[1];
}

/* Map size bytes R+X in the target, within rel32 reach of the module when
 * near is set: candidates are the ends of free gaps in the maps, nearest
 * first; MAP_FIXED_NOREPLACE makes a stale guess fail instead of clobbering.
 * Gaps that the heap or a stack grows into are skipped. */
int hp_map_code(HpSession *s, uint64_t insn, uint64_t size, bool near, uint64_t *ret,
		    BaseErr *e)
{
	int64_t v;
	const int prot = PROT_READ | PROT_EXEC, flags = MAP_PRIVATE | MAP_ANONYMOUS;
	if (!near) {
		int r = hp_rsys(s, insn, SYS_mmap, 0, size, prot, flags, (uint64_t)-1, 0, &v, e);
		if (r < 0)
			return r;
		*ret = (uint64_t)v;
		return 0;
	}
	uint64_t lo = s->mod->lo, hi = s->mod->hi;
	size_t nc = 0;
	uint64_t (*cand)[2] = calloc(2 * (s->maps.n + 1), sizeof(*cand));
	if (!cand)
		return -ENOMEM;
	/* gap k lies below mapping k; gap 0 is the one below the lowest
	 * mapping, often the only room near a PIE executable (the heap
	 * follows it, and the libraries are terabytes away) */
	static const HpMap floor_map = { .end = 0x10000 - HP_PAGE, .path = (char *)"" };
	for (size_t k = 0; k < s->maps.n; k++) {
		const HpMap *a = k ? &s->maps.v[k - 1] : &floor_map, *b = &s->maps.v[k];
		uint64_t gs = a->end + HP_PAGE, ge = b->start - HP_PAGE; /* keep guard pages */
		if (ge <= gs || ge - gs < size)
			continue;
		bool heap_above = strcmp(a->path, "[heap]") == 0;
		bool stack_below = strcmp(b->path, "[stack]") == 0;
		if (!stack_below) {
			uint64_t c = ge - size;
			if (c >= 0x10000 && in_reach(c, size, lo, hi)) {
				cand[nc][0] = c;
				cand[nc++][1] = c > lo ? c - lo : lo - c;
			}
		}
		if (!heap_above) {
			uint64_t c = gs;
			if (in_reach(c, size, lo, hi)) {
				cand[nc][0] = c;
				cand[nc++][1] = c > lo ? c - lo : lo - c;
			}
		}
	}
	qsort(cand, nc, sizeof(*cand), cmp_u64_dist);
	int r = -ENOMEM;
	for (size_t i = 0; i < nc && i < 16; i++) {
		BaseErr tmp = { 0 };
		r = hp_rsys(s, insn, SYS_mmap, cand[i][0], size, prot, flags | MAP_FIXED_NOREPLACE,
			 (uint64_t)-1, 0, &v, &tmp);
		if (r == 0 && (uint64_t)v != cand[i][0]) {
			/* an old kernel ignoring the flag: not where we asked */
			hp_rsys(s, insn, SYS_munmap, (uint64_t)v, size, 0, 0, 0, 0, &v, &tmp);
			continue;
		}
		if (r == 0) {
			*ret = cand[i][0];
			free(cand);
			return 0;
		}
		if (r != -EEXIST && r != -ENOMEM && r != -EPERM) {
			free(cand);
			return base_err(e, r, "%s", tmp.msg);
		}
	}
	free(cand);
	return base_err(e, -ENOMEM, "pid %d: no free address within 2 GiB of %s", (int)s->pid,
			s->mod->path);
}
