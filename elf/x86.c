/* x86-64 decoding behind one small interface (Capstone), for the builder
 * and the live patcher alike: instruction boundaries and branch targets of a
 * function, to tell whether its body jumps back into the bytes a redirect
 * overwrites.
 *
 * Why Capstone and not Zydis: both decode x86-64 correctly; Capstone is in
 * Debian 12 as a stable shared library (libcapstone4) with a decade-old C API
 * whose "detail" mode gives the branch groups and immediate targets directly,
 * while Debian's Zydis (libzydis-dev) is a 3.x API that 4.x reworked, and we
 * only need a decoder, not its formatter or encoder. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "elf/internal.h"

/* Loaded with dlopen, once per process, on first use: libcapstone carries
 * ~77,000 relative relocations (its instruction tables are pointers), and
 * relocating them at every exec was the largest single cost of short
 * commands such as `svc inspect` and `svc boot`, which never decode
 * (docs/performance.md).  A caller about to stop processes loads it first
 * (elf_x86_load), so no pause ever waits for the loader.  This is the one
 * file that loads capstone; elf/lineonly.c decodes through elf_capstone(). */
#define CAPSTONE_SONAME "libcapstone.so.4"

static ElfCapstone cs;
static char cs_why[160];
static int cs_r;
static pthread_once_t cs_once = PTHREAD_ONCE_INIT;

static void cs_load(void)
{
	/* never dlclose'd: the process keeps the decoder once it needed it */
	void *h = dlopen(CAPSTONE_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(cs_why, sizeof(cs_why), "cannot load %s: %s", CAPSTONE_SONAME, dlerror());
		cs_r = -ENOENT;
		return;
	}
	*(void **)&cs.open = dlsym(h, "cs_open");
	*(void **)&cs.option = dlsym(h, "cs_option");
	*(void **)&cs.malloc = dlsym(h, "cs_malloc");
	*(void **)&cs.disasm_iter = dlsym(h, "cs_disasm_iter");
	*(void **)&cs.insn_group = dlsym(h, "cs_insn_group");
	*(void **)&cs.free = dlsym(h, "cs_free");
	*(void **)&cs.close = dlsym(h, "cs_close");
	if (!cs.open || !cs.option || !cs.malloc || !cs.disasm_iter || !cs.insn_group ||
	    !cs.free || !cs.close) {
		snprintf(cs_why, sizeof(cs_why), "%s lacks the decoder functions", CAPSTONE_SONAME);
		cs_r = -ENOENT;
	}
}

int elf_x86_load(BaseErr *e)
{
	pthread_once(&cs_once, cs_load);
	if (cs_r < 0)
		return base_err(e, cs_r, "x86 decoder: %s", cs_why);
	return 0;
}

const ElfCapstone *elf_capstone(BaseErr *e)
{
	return elf_x86_load(e) < 0 ? NULL : &cs;
}

/* Decoders are kept and reused: opening one costs more than decoding a
 * function (Capstone fills a table of every x86 instruction id on a
 * handle's first decode), and the live patcher decodes at each site of
 * each process.  A few idle ones wait here; more open when more threads
 * decode at once, and a surplus one is closed when given back. */
enum { DECODERS_KEPT = 8 };
static ElfDecoder idle[DECODERS_KEPT];
static size_t n_idle;
static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;

int elf_decoder_take(ElfDecoder *ret, BaseErr *e)
{
	if (elf_x86_load(e) < 0)
		return -ENOENT;
	pthread_mutex_lock(&idle_lock);
	if (n_idle) {
		*ret = idle[--n_idle];
		pthread_mutex_unlock(&idle_lock);
		return 0;
	}
	pthread_mutex_unlock(&idle_lock);
	ElfDecoder d = { 0 };
	if (cs.open(CS_ARCH_X86, CS_MODE_64, &d.h) != CS_ERR_OK)
		return base_err(e, -ENOMEM, "capstone: cannot open an x86-64 decoder");
	cs.option(d.h, CS_OPT_DETAIL, CS_OPT_ON);
	d.insn = cs.malloc(d.h);
	if (!d.insn) {
		cs.close(&d.h);
		return base_err(e, -ENOMEM, "capstone: no memory for an instruction");
	}
	*ret = d;
	return 0;
}

void elf_decoder_give(ElfDecoder *d)
{
	if (!d->insn)
		return;
	pthread_mutex_lock(&idle_lock);
	if (n_idle < DECODERS_KEPT) {
		idle[n_idle++] = *d;
		d->insn = NULL;
	}
	pthread_mutex_unlock(&idle_lock);
	if (d->insn) {
		cs.free(d->insn, 1);
		cs.close(&d->h);
		d->insn = NULL;
	}
}

int elf_x86_scan(const uint8_t *code, size_t len, uint64_t addr, uint64_t lo, uint64_t hi,
		 ElfX86Scan *ret)
{
	ElfX86Scan out = { .first_len = 0 };
	ElfDecoder d;
	int r = elf_decoder_take(&d, NULL);
	if (r < 0)
		return r;
	csh h = d.h;
	cs_insn *insn = d.insn;
	const uint8_t *p = code;
	size_t left = len;
	uint64_t at = addr;
	while (left) {
		uint64_t here = at;
		if (!cs.disasm_iter(h, &p, &left, &at, insn)) {
			/* data or padding we cannot read as code: what follows is
			 * unknown, so the caller must assume the worst */
			out.undecoded = here;
			break;
		}
		if (!out.first_len)
			out.first_len = insn->size;
		bool jump = cs.insn_group(h, insn, CS_GRP_JUMP);
		if (!jump && !cs.insn_group(h, insn, CS_GRP_CALL))
			continue;
		uint64_t end = here + insn->size;
		if (!jump && end > lo && end < hi && end != addr && !out.ret_inside)
			out.ret_inside = end;
		const cs_x86 *x = &insn->detail->x86;
		if (x->op_count == 1 && x->operands[0].type == X86_OP_IMM) {
			uint64_t t = (uint64_t)x->operands[0].imm;
			if (t >= lo && t < hi && t != addr && !out.into) {
				out.into = here;
				out.target = t;
			}
		} else if (jump && !out.indirect) {
			out.indirect = here;
		}
	}
	elf_decoder_give(&d);
	*ret = out;
	return 0;
}
