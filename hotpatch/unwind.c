/* Frames of a stopped thread, through libunwind: unwind tables found in
 * the process's own memory (find_info; its ptrace flavour's lookup in the
 * file, _UPT_find_proc_info, for a module without one), with our own
 * memory and register accessors: memory through /proc/PID/mem (one pread per 4 KiB block, not
 * one PTRACE_PEEKDATA per word) and registers from the copy ptrace.c already
 * fetched, so this file never calls ptrace itself and ptrace.c stays the
 * only one that does.  libunwind's accessors get one opaque argument (the
 * _UPT_info its lookup needs), so the memory and registers of the walk in
 * progress are found through a thread-local pointer: hp_apply_many runs
 * walks on several threads at once.
 *
 * libunwind is loaded with dlopen on first use, as elf/x86.c loads the
 * decoder: linked, its three libraries and liblzma were loaded and relocated
 * at every exec of svc, by `svc inspect`, `svc boot` and `svc status` too,
 * which never walk a stack (docs/performance.md).  hp_load loads it before
 * any process is stopped.  This is the one file that names libunwind. */
#include <dlfcn.h>
#include <elf.h>
#include <libunwind-ptrace.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hotpatch/internal.h"

/* libunwind-ptrace.so.0 names the generic library's functions without
 * depending on it: that one is loaded first, into the global scope */
#define UNW_GENERIC_SONAME "libunwind-x86_64.so.8"
#define UNW_PTRACE_SONAME "libunwind-ptrace.so.0"
/* the exported names behind libunwind's macros (unw_step is _Ux86_64_step) */
#define UNW_NAME_(x) #x
#define UNW_NAME(x) UNW_NAME_(x)

static struct {
	__typeof__(&unw_create_addr_space) create_addr_space;
	__typeof__(&unw_destroy_addr_space) destroy_addr_space;
	__typeof__(&unw_set_caching_policy) set_caching_policy;
	__typeof__(&unw_init_remote) init_remote;
	__typeof__(&unw_get_reg) get_reg;
	__typeof__(&unw_step) step;
	__typeof__(&unw_get_proc_info) get_proc_info;
	int (*search_table)(unw_addr_space_t, unw_word_t, unw_dyn_info_t *, unw_proc_info_t *,
			    int, void *);
	__typeof__(&_UPT_create) upt_create;
	__typeof__(&_UPT_destroy) upt_destroy;
	__typeof__(&_UPT_find_proc_info) find_proc_info;
	__typeof__(&_UPT_put_unwind_info) put_unwind_info;
	__typeof__(&_UPT_get_dyn_info_list_addr) get_dyn_info_list_addr;
	__typeof__(&_UPT_get_proc_name) get_proc_name;
} unw;
static char unw_why[200];
static int unw_r;
static pthread_once_t unw_once = PTHREAD_ONCE_INIT;

static void *sym(void *h, const char *name)
{
	void *f = dlsym(h, name);
	if (!f && !unw_why[0]) {
		snprintf(unw_why, sizeof(unw_why), "libunwind lacks %s", name);
		unw_r = -ENOENT;
	}
	return f;
}

static void unw_load(void)
{
	/* never dlclose'd: the process keeps the unwinder once it needed it */
	void *g = dlopen(UNW_GENERIC_SONAME, RTLD_NOW | RTLD_GLOBAL);
	void *p = g ? dlopen(UNW_PTRACE_SONAME, RTLD_NOW | RTLD_LOCAL) : NULL;
	if (!p) {
		snprintf(unw_why, sizeof(unw_why), "cannot load %s: %s",
			 g ? UNW_PTRACE_SONAME : UNW_GENERIC_SONAME, dlerror());
		unw_r = -ENOENT;
		return;
	}
	*(void **)&unw.create_addr_space = sym(g, UNW_NAME(unw_create_addr_space));
	*(void **)&unw.destroy_addr_space = sym(g, UNW_NAME(unw_destroy_addr_space));
	*(void **)&unw.set_caching_policy = sym(g, UNW_NAME(unw_set_caching_policy));
	*(void **)&unw.init_remote = sym(g, UNW_NAME(unw_init_remote));
	*(void **)&unw.get_reg = sym(g, UNW_NAME(unw_get_reg));
	*(void **)&unw.step = sym(g, UNW_NAME(unw_step));
	*(void **)&unw.get_proc_info = sym(g, UNW_NAME(unw_get_proc_info));
	/* not in libunwind's headers, exported by its x86-64 library */
	*(void **)&unw.search_table = sym(g, "_Ux86_64_dwarf_search_unwind_table");
	*(void **)&unw.upt_create = sym(p, "_UPT_create");
	*(void **)&unw.upt_destroy = sym(p, "_UPT_destroy");
	*(void **)&unw.find_proc_info = sym(p, "_UPT_find_proc_info");
	*(void **)&unw.put_unwind_info = sym(p, "_UPT_put_unwind_info");
	*(void **)&unw.get_dyn_info_list_addr = sym(p, "_UPT_get_dyn_info_list_addr");
	*(void **)&unw.get_proc_name = sym(p, "_UPT_get_proc_name");
}

int hp_unwind_load(BaseErr *e)
{
	pthread_once(&unw_once, unw_load);
	if (unw_r < 0)
		return base_err(e, unw_r, "stack unwinder: %s", unw_why);
	return 0;
}

int hp_load(BaseErr *e)
{
	int r = elf_x86_load(e);
	return r < 0 ? r : hp_unwind_load(e);
}

struct HpUnwinder {
	unw_addr_space_t as;
	void *upt;
};

/* A module's .eh_frame_hdr in the process: the module's span [lo, hi),
 * the header's address and the search table's entries (0: none found). */
typedef struct Table {
	uint64_t lo, hi, hdr;
	uint32_t n;
} Table;

typedef struct Walk {
	int memfd;
	const struct user_regs_struct *regs;
	const HpMaps *maps;      /* for tables found in memory (find_info) */
	Table tabs[4];           /* the tables this walk found, newest in tabs[next] */
	unsigned next;
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

/* The .eh_frame_hdr of the module mp belongs to, as the process has it
 * mapped, into *t.  0, or -1 when the module's headers do not lead to a
 * table of the usual encoding. */
static int eh_frame_hdr(const Walk *w, const HpMap *mp, Table *t)
{
	/* the file's first mapping (offset 0: its ELF and program headers) and
	 * the span of all its mappings */
	const HpMap *first = NULL;
	uint64_t hi = 0;
	for (size_t i = 0; i < w->maps->n; i++) {
		const HpMap *q = &w->maps->v[i];
		if (q->ino != mp->ino || q->dev_major != mp->dev_major || q->dev_minor != mp->dev_minor)
			continue;
		if (!first && q->offset == 0 && q->start <= mp->start)
			first = q;
		hi = q->end > hi ? q->end : hi;
	}
	Elf64_Ehdr eh;
	if (!first || hp_mem_read(w->memfd, first->start, &eh, sizeof(eh)) < 0 ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 64)
		return -1;
	Elf64_Phdr ph[64];
	if (hp_mem_read(w->memfd, first->start + eh.e_phoff, ph, eh.e_phnum * sizeof(ph[0])) < 0)
		return -1;
	uint64_t lo_vaddr = UINT64_MAX, hdr_vaddr = 0;
	for (size_t i = 0; i < eh.e_phnum; i++) {
		if (ph[i].p_type == PT_LOAD && ph[i].p_offset == 0)
			lo_vaddr = ph[i].p_vaddr & ~4095ull;
		if (ph[i].p_type == PT_GNU_EH_FRAME)
			hdr_vaddr = ph[i].p_vaddr;
	}
	if (lo_vaddr == UINT64_MAX || !hdr_vaddr)
		return -1;
	uint64_t hdr = first->start - lo_vaddr + hdr_vaddr;
	uint8_t h[12];
	/* version 1; eh_frame_ptr pcrel|sdata4, fde_count udata4, table
	 * datarel|sdata4: what the linkers write */
	if (hp_mem_read(w->memfd, hdr, h, sizeof(h)) < 0 || h[0] != 1 || h[1] != 0x1b ||
	    h[2] != 0x03 || h[3] != 0x3b)
		return -1;
	*t = (Table){ .lo = first->start, .hi = hi, .hdr = hdr };
	memcpy(&t->n, h + 8, 4);
	return 0;
}

/* A frame's unwind info, from the table the process itself has mapped:
 * the .eh_frame_hdr that PT_GNU_EH_FRAME names, in the module's segments,
 * read through the walk's memory accessor.  That is the code the process
 * runs, whatever its path names now: libunwind-ptrace's own lookup opens
 * the file by the mapping's path, which leads nowhere for a file replaced
 * on disk (maps: "(deleted)", svc's own case after the swap), and to
 * another file for a path of another mount namespace or a file changed
 * in place.  A module without such a table is asked of the file as
 * before (.debug_frame). */
static int find_info(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t *pi, int need, void *arg)
{
	/* a walk steps through a few modules, each more than once: their
	 * headers are read once a walk */
	const Table *t = NULL;
	for (size_t i = 0; walk && i < sizeof(walk->tabs) / sizeof(walk->tabs[0]) && !t; i++)
		if (walk->tabs[i].hdr && ip >= walk->tabs[i].lo && ip < walk->tabs[i].hi)
			t = &walk->tabs[i];
	const HpMap *mp = !t && walk && walk->maps ? hp_maps_find(walk->maps, ip) : NULL;
	if (!t && mp && mp->ino != 0) {
		Table *slot = &walk->tabs[walk->next];
		if (eh_frame_hdr(walk, mp, slot) == 0) {
			walk->next = (walk->next + 1) % (sizeof(walk->tabs) / sizeof(walk->tabs[0]));
			t = slot;
		}
	}
	if (!t) {
		if (mp && (mp->path[0] != '/' || strstr(mp->path, " (deleted)")))
			return -UNW_ENOINFO;   /* no file by that path to ask */
		return unw.find_proc_info(as, ip, pi, need, arg);
	}
	unw_dyn_info_t di = { .start_ip = t->lo, .end_ip = t->hi,
			      .format = UNW_INFO_FORMAT_REMOTE_TABLE };
	di.u.rti.segbase = t->hdr;
	di.u.rti.table_len = (unw_word_t)t->n * 8 / sizeof(unw_word_t);
	di.u.rti.table_data = t->hdr + 12;
	return unw.search_table(as, ip, &di, pi, need, arg);
}

int hp_unwinder_open(pid_t pid, HpUnwinder **ret)
{
	int r = hp_unwind_load(NULL);
	if (r < 0)
		return r;
	HpUnwinder *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	unw_accessors_t acc = {
		.find_proc_info = find_info,
		.put_unwind_info = unw.put_unwind_info,
		.get_dyn_info_list_addr = unw.get_dyn_info_list_addr,
		.access_mem = acc_mem,
		.access_reg = acc_reg,
		.access_fpreg = acc_fpreg,
		.resume = NULL,
		.get_proc_name = unw.get_proc_name,
	};
	u->as = unw.create_addr_space(&acc, 0);
	u->upt = u->as ? unw.upt_create(pid) : NULL;
	if (!u->upt) {
		hp_unwinder_close(u);
		return -ENOMEM;
	}
	unw.set_caching_policy(u->as, UNW_CACHE_GLOBAL);
	*ret = u;
	return 0;
}

void hp_unwinder_close(HpUnwinder *u)
{
	if (!u)
		return;
	if (u->upt)
		unw.upt_destroy(u->upt);
	if (u->as)
		unw.destroy_addr_space(u->as);
	free(u);
}

int hp_unwind(HpUnwinder *u, int memfd, const HpMaps *maps, const struct user_regs_struct *regs,
	      uint64_t *pcs, size_t max, size_t *ret_n)
{
	_cleanup_free_ Walk *w = malloc(sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->memfd = memfd;
	w->maps = maps;
	memset(w->tabs, 0, sizeof(w->tabs));
	w->next = 0;
	w->regs = regs;
	w->block = ~0ull;
	walk = w;
	unw_cursor_t c;
	size_t n = 0;
	int r = unw.init_remote(&c, u->as, u->upt);
	while (r >= 0) {
		unw_word_t ip = 0;
		if (unw.get_reg(&c, UNW_REG_IP, &ip) < 0) {
			r = -1;
			break;
		}
		if (n == max) {
			r = -1;   /* deeper than we look: not a complete walk */
			break;
		}
		pcs[n++] = ip;
		/* a frame no unwind info describes is left by a guess (the
		 * frame-pointer chain, which such code need not keep): the
		 * guess once ended walks early, above frames of old code.  A
		 * walk through one is not complete.  (libunwind's x86-64
		 * unw_get_proc_info does not fail there: it makes up a range
		 * of one byte at the pc, which no real function's info is.) */
		unw_proc_info_t pi;
		if (unw.get_proc_info(&c, &pi) < 0 || (pi.start_ip == ip && pi.end_ip == ip + 1)) {
			r = -1;
			break;
		}
		r = unw.step(&c);
		if (r == 0)
			break;
	}
	walk = NULL;
	*ret_n = n;
	return r < 0 ? -ENOEXEC : 0;
}
