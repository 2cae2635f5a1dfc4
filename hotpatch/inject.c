/* System calls run inside the target (through ptrace.c's hp_ptrace_syscall)
 * and the placement of new code within rel32 reach of a module. */
#include <inttypes.h>
#include <stdio.h>
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
	if (hp_symbol_resolve(s->memfd, s->pid, s->mods, s->n_mods, "syscall", NULL, &fn) == 0) {
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

bool hp_in_reach(uint64_t a, uint64_t size, uint64_t lo, uint64_t hi)
{
	uint64_t mn = a < lo ? a : lo, mx = a + size > hi ? a + size : hi;
	return mx - mn < (uint64_t)REL32_REACH;
}

static int cmp_u64_dist(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;
	return x[1] < y[1] ? -1 : x[1] > y[1];
}

/* Where size bytes may be mapped (within rel32 reach of the module when near
 * is set): the ends of free gaps in the maps, nearest first.  Gaps that the
 * heap or a stack grows into are skipped.  The maps were read while the
 * process ran: MAP_FIXED_NOREPLACE makes a stale guess fail, not clobber. */
static size_t candidates(const HpSession *s, uint64_t size, bool near, uint64_t (*cand)[2])
{
	uint64_t lo = s->mod->lo, hi = s->mod->hi;
	size_t nc = 0;
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
		uint64_t c[2] = { stack_below ? 0 : ge - size, heap_above ? 0 : gs };
		for (int j = 0; j < 2; j++)
			if (c[j] >= 0x10000 && (!near || hp_in_reach(c[j], size, lo, hi))) {
				cand[nc][0] = c[j];
				cand[nc++][1] = c[j] > lo ? c[j] - lo : lo - c[j];
			}
	}
	qsort(cand, nc, sizeof(*cand), cmp_u64_dist);
	return nc;
}

/* The stub of the one-run placement: maps the blob when r15 (its size) is
 * not 0, at r14 (MAP_FIXED_NOREPLACE, R+X; result in r14), then creates
 * the state mapping when r12 (its size) is not 0 from a memfd named by the
 * string after the stub: rbx = fd, rbp = ftruncate's result, r13 = the
 * mapping.  No stack, no memory but its own bytes. */
static const uint8_t stub[] = {
	0x4d, 0x85, 0xff, 0x74, 0x25,             /* test %r15,%r15; jz 1f */
	0x4c, 0x89, 0xf7, 0x4c, 0x89, 0xfe,       /* mov %r14,%rdi; mov %r15,%rsi */
	0xba, 0x05, 0x00, 0x00, 0x00,             /* mov $PROT_READ|PROT_EXEC,%edx */
	0x41, 0xba, 0x22, 0x00, 0x10, 0x00,       /* mov $PRIVATE|ANON|FIXED_NOREPLACE,%r10d */
	0x49, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff, /* mov $-1,%r8 */
	0x45, 0x31, 0xc9,                         /* xor %r9d,%r9d */
	0xb8, 0x09, 0x00, 0x00, 0x00,             /* mov $SYS_mmap,%eax */
	0x0f, 0x05, 0x49, 0x89, 0xc6,             /* syscall; mov %rax,%r14 */
	0x4d, 0x85, 0xe4, 0x74, 0x50,             /* 1: test %r12,%r12; jz 2f */
	0x48, 0x8d, 0x3d, 0x4a, 0x00, 0x00, 0x00, /* lea name(%rip),%rdi */
	0xbe, 0x01, 0x00, 0x00, 0x00,             /* mov $MFD_CLOEXEC,%esi */
	0xb8, 0x3f, 0x01, 0x00, 0x00,             /* mov $SYS_memfd_create,%eax */
	0x0f, 0x05, 0x48, 0x89, 0xc3,             /* syscall; mov %rax,%rbx */
	0x48, 0x89, 0xdf, 0x4c, 0x89, 0xe6,       /* mov %rbx,%rdi; mov %r12,%rsi */
	0xb8, 0x4d, 0x00, 0x00, 0x00,             /* mov $SYS_ftruncate,%eax */
	0x0f, 0x05, 0x48, 0x89, 0xc5,             /* syscall; mov %rax,%rbp */
	0x31, 0xff, 0x4c, 0x89, 0xe6,             /* xor %edi,%edi; mov %r12,%rsi */
	0xba, 0x01, 0x00, 0x00, 0x00,             /* mov $PROT_READ,%edx */
	0x41, 0xba, 0x02, 0x00, 0x00, 0x00,       /* mov $MAP_PRIVATE,%r10d */
	0x49, 0x89, 0xd8, 0x45, 0x31, 0xc9,       /* mov %rbx,%r8; xor %r9d,%r9d */
	0xb8, 0x09, 0x00, 0x00, 0x00,             /* mov $SYS_mmap,%eax */
	0x0f, 0x05, 0x49, 0x89, 0xc5,             /* syscall; mov %rax,%r13 */
	0x48, 0x89, 0xdf,                         /* mov %rbx,%rdi */
	0xb8, 0x03, 0x00, 0x00, 0x00,             /* mov $SYS_close,%eax */
	0x0f, 0x05, 0xcc,                         /* syscall; 2: int3 */
};
#define STUB_NAME_LEN 32

/* Run the stub at `at` (executable memory nothing else runs).  *ret_blob:
 * the blob mmap's result (an address or -errno). */
static int run_stub(HpSession *s, uint64_t at, uint64_t want, uint64_t blob_size, bool state,
		    int64_t *ret_blob, BaseErr *e)
{
	uint8_t code[sizeof(stub) + STUB_NAME_LEN] = { 0 };
	memcpy(code, stub, sizeof(stub));
	snprintf((char *)code + sizeof(stub), STUB_NAME_LEN, "%s", HP_STATE_NAME);
	int r = hp_mem_write(s->memfd, at, code, sizeof(code));
	if (r < 0)
		return base_err(e, r, "pid %d: writing: %s", (int)s->pid, strerror(-r));
	size_t ti = hp_injector(&s->tr);
	r = hp_ptrace_regs(&s->tr, ti);
	if (r < 0)
		return base_err(e, r, "pid %d: registers: %s", (int)s->pid, strerror(-r));
	struct user_regs_struct in = s->tr.t[ti].regs, out;
	in.rip = at;
	in.r12 = state ? HP_STATE_SIZE : 0;
	in.r14 = want;
	in.r15 = blob_size;
	r = hp_ptrace_run(&s->tr, ti, &in, at + sizeof(stub), &out, e);
	if (r < 0)
		return r;
	*ret_blob = (int64_t)out.r14;
	if (blob_size)
		hp_crash_point(s, "mapped");
	if (state) {
		r = hp_state_adopt(s, (int64_t)out.rbx, (int64_t)out.rbp, (int64_t)out.r13, e);
		if (r < 0)
			return r;
		hp_crash_point(s, "state");
	}
	return 0;
}

/* A cave of any module with room for the stub, the target's module first,
 * clear of the state and of recorded code (cave.c). */
static uint64_t cave_find(const HpSession *s)
{
	const uint64_t need = sizeof(stub) + STUB_NAME_LEN;
	for (size_t k = 0; k <= s->n_mods; k++) {
		const HpModule *md = k == 0 ? s->mod : &s->mods[k - 1];
		if (!md || !md->cave || md->cave_len < need)
			continue;
		const HpMap *mp = hp_maps_find(&s->maps, md->cave);
		if (mp && mp->perms[2] == 'x' && mp->ino == md->ino && mp->end >= md->cave + need &&
		    hp_cave_free(s, md->cave, md->cave + need))
			return md->cave;
	}
	return 0;
}

static int insn_get(HpSession *s, BaseErr *e)
{
	return s->insn ? 0 : hp_syscall_insn(s, &s->insn, e);
}

void hp_unmap(HpSession *s, uint64_t addr, uint64_t size)
{
	int64_t ign;
	BaseErr tmp = { 0 };
	if (insn_get(s, &tmp) == 0)
		hp_rsys(s, s->insn, SYS_munmap, addr, size, 0, 0, 0, 0, &ign, &tmp);
}

static int place_mapped(HpSession *s, uint64_t blob_size, bool near, bool state,
			uint64_t *ret_blob, BaseErr *e)
{
	uint64_t blob = 0;
	size_t nc = 0, first = 0;
	uint64_t (*cand)[2] = NULL;
	if (blob_size) {
		cand = calloc(2 * (s->maps.n + 1), sizeof(*cand));
		if (!cand)
			return -ENOMEM;
		nc = candidates(s, blob_size, near, cand);
	}
	int r = 0;
	/* the common case: one run of the stub from a cave maps both */
	uint64_t cave = cave_find(s);
	if (cave && (nc || !blob_size)) {
		int64_t v = 0;
		r = run_stub(s, cave, nc ? cand[0][0] : 0, blob_size, state, &v, e);
		if (r < 0)
			goto out;
		state = false;
		if (blob_size && (uint64_t)v == cand[0][0])
			blob = (uint64_t)v;
		else if (blob_size && !(v < 0 && v > -4096))
			hp_unmap(s, (uint64_t)v, blob_size);   /* not where asked */
		first = 1;
	}
	/* else a system call at a time, through a `syscall` found in the
	 * vDSO or libc */
	if (blob_size && !blob) {
		r = insn_get(s, e);
		for (size_t i = first; r == 0 && i < nc && i < 16 && !blob; i++) {
			int64_t v;
			BaseErr tmp = { 0 };
			int q = hp_rsys(s, s->insn, SYS_mmap, cand[i][0], blob_size,
					PROT_READ | PROT_EXEC,
					MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
					(uint64_t)-1, 0, &v, &tmp);
			if (q == 0 && (uint64_t)v == cand[i][0])
				blob = (uint64_t)v;
			else if (q == 0)   /* an old kernel ignoring the flag */
				hp_unmap(s, (uint64_t)v, blob_size);
			else if (q != -EEXIST && q != -ENOMEM && q != -EPERM)
				r = base_err(e, q, "%s", tmp.msg);
		}
		if (r == 0 && !blob)
			r = base_err(e, -ENOMEM, "pid %d: no free address%s for %" PRIu64
				     " bytes of code", (int)s->pid,
				     near ? " within 2 GiB of the module" : "", blob_size);
		if (r < 0)
			goto out;
		hp_crash_point(s, "mapped");
	}
	if (state) {
		/* no cave: the stub runs from the fresh blob (or a scratch page) */
		uint64_t at = blob;
		if (!at) {
			int64_t v = 0;
			r = insn_get(s, e);
			if (r == 0)
				r = hp_rsys(s, s->insn, SYS_mmap, 0, HP_PAGE, PROT_READ | PROT_EXEC,
					    MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0, &v, e);
			if (r < 0)
				goto out;
			at = (uint64_t)v;
		}
		int64_t ign;
		r = run_stub(s, at, 0, 0, true, &ign, e);
		if (r < 0)
			goto out;
	}
	*ret_blob = blob;
out:
	if (r < 0 && blob)
		hp_unmap(s, blob, blob_size);
	free(cand);
	return r;
}

int hp_place(HpSession *s, uint64_t code_len, uint64_t align, bool near, uint64_t state_need,
	     bool cave_only, uint64_t *ret_blob, uint64_t *ret_blob_size, bool *ret_in_cave,
	     BaseErr *e)
{
	uint64_t blob = 0;
	*ret_blob = *ret_blob_size = 0;
	*ret_in_cave = false;
	if (!code_len && s->state_addr)
		return 0;
	int r = hp_cave_place(s, code_len, align, near, state_need, &blob);
	if (r > 0 && (blob || !code_len)) {
		*ret_blob = blob;
		*ret_blob_size = (code_len + 15) & ~(uint64_t)15;
		*ret_in_cave = true;
		return 0;
	}
	if (cave_only)
		return 0;
	uint64_t blob_size = (code_len + HP_PAGE - 1) & ~(HP_PAGE - 1);
	r = place_mapped(s, blob_size, near, !s->state_addr, &blob, e);
	if (r < 0)
		return r;
	*ret_blob = blob;
	*ret_blob_size = blob_size;
	*ret_in_cave = false;
	return 0;
}

int hp_state_memfd(HpSession *s, BaseErr *e)
{
	uint64_t none;
	s->migrating = true;
	int r = place_mapped(s, 0, false, true, &none, e);
	s->migrating = false;
	return r;
}
