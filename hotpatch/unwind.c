/* Frames of a stopped thread, through libunwind (its ptrace flavour's
 * .eh_frame lookup, _UPT_find_proc_info), with our own memory and register
 * accessors: memory through /proc/PID/mem (one pread per 4 KiB block, not
 * one PTRACE_PEEKDATA per word) and registers from the copy ptrace.c already
 * fetched, so this file never calls ptrace itself and ptrace.c stays the
 * only one that does.  libunwind's accessors get one opaque argument (the
 * _UPT_info its lookup needs), so the memory and registers of the walk in
 * progress are found through a thread-local pointer: hp_apply_many runs
 * walks on several threads at once. */
#include <libunwind-ptrace.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hotpatch/internal.h"

struct HpUnwinder {
	unw_addr_space_t as;
	void *upt;
};

typedef struct Walk {
	int memfd;
	const struct user_regs_struct *regs;
	uint64_t block;          /* address of the cached block, ~0: none */
	uint8_t buf[4096];
} Walk;

static _Thread_local Walk *walk;

static int acc_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val, int write, void *arg)
{
	(void)as;
	(void)arg;
	if (write || !walk)
		return -UNW_EINVAL;
	uint64_t blk = addr & ~4095ull;
	if ((addr & 4095) > 4096 - 8) {
		if (hp_mem_read(walk->memfd, addr, val, 8) < 0)
			return -UNW_EINVAL;
		return 0;
	}
	if (walk->block != blk) {
		if (hp_mem_read(walk->memfd, blk, walk->buf, sizeof(walk->buf)) < 0) {
			walk->block = ~0ull;
			return -UNW_EINVAL;
		}
		walk->block = blk;
	}
	memcpy(val, walk->buf + (addr - blk), 8);
	return 0;
}

static int acc_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *val, int write, void *arg)
{
	(void)as;
	(void)arg;
	if (write || !walk)
		return -UNW_EINVAL;
	const struct user_regs_struct *r = walk->regs;
	const unsigned long long v[] = {
		[UNW_X86_64_RAX] = r->rax, [UNW_X86_64_RDX] = r->rdx, [UNW_X86_64_RCX] = r->rcx,
		[UNW_X86_64_RBX] = r->rbx, [UNW_X86_64_RSI] = r->rsi, [UNW_X86_64_RDI] = r->rdi,
		[UNW_X86_64_RBP] = r->rbp, [UNW_X86_64_RSP] = r->rsp, [UNW_X86_64_R8] = r->r8,
		[UNW_X86_64_R9] = r->r9, [UNW_X86_64_R10] = r->r10, [UNW_X86_64_R11] = r->r11,
		[UNW_X86_64_R12] = r->r12, [UNW_X86_64_R13] = r->r13, [UNW_X86_64_R14] = r->r14,
		[UNW_X86_64_R15] = r->r15, [UNW_X86_64_RIP] = r->rip,
	};
	if (reg < 0 || (size_t)reg >= sizeof(v) / sizeof(v[0]))
		return -UNW_EBADREG;
	*val = v[reg];
	return 0;
}

static int acc_fpreg(unw_addr_space_t as, unw_regnum_t reg, unw_fpreg_t *val, int write,
		     void *arg)
{
	(void)as, (void)reg, (void)val, (void)write, (void)arg;
	return -UNW_EBADREG;
}

int hp_unwinder_open(pid_t pid, HpUnwinder **ret)
{
	HpUnwinder *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	unw_accessors_t acc = {
		.find_proc_info = _UPT_find_proc_info,
		.put_unwind_info = _UPT_put_unwind_info,
		.get_dyn_info_list_addr = _UPT_get_dyn_info_list_addr,
		.access_mem = acc_mem,
		.access_reg = acc_reg,
		.access_fpreg = acc_fpreg,
		.resume = NULL,
		.get_proc_name = _UPT_get_proc_name,
	};
	u->as = unw_create_addr_space(&acc, 0);
	u->upt = u->as ? _UPT_create(pid) : NULL;
	if (!u->upt) {
		hp_unwinder_close(u);
		return -ENOMEM;
	}
	unw_set_caching_policy(u->as, UNW_CACHE_GLOBAL);
	*ret = u;
	return 0;
}

void hp_unwinder_close(HpUnwinder *u)
{
	if (!u)
		return;
	if (u->upt)
		_UPT_destroy(u->upt);
	if (u->as)
		unw_destroy_addr_space(u->as);
	free(u);
}

int hp_unwind(HpUnwinder *u, int memfd, const struct user_regs_struct *regs, uint64_t *pcs,
	      size_t max, size_t *ret_n)
{
	_cleanup_free_ Walk *w = malloc(sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->memfd = memfd;
	w->regs = regs;
	w->block = ~0ull;
	walk = w;
	unw_cursor_t c;
	size_t n = 0;
	int r = unw_init_remote(&c, u->as, u->upt);
	while (r >= 0) {
		unw_word_t ip = 0;
		if (unw_get_reg(&c, UNW_REG_IP, &ip) < 0) {
			r = -1;
			break;
		}
		if (n == max) {
			r = -1;   /* deeper than we look: not a complete walk */
			break;
		}
		pcs[n++] = ip;
		r = unw_step(&c);
		if (r == 0)
			break;
	}
	walk = NULL;
	*ret_n = n;
	return r < 0 ? -ENOEXEC : 0;
}
