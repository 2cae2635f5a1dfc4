/* The state of the fixes, kept inside the patched process itself.
 *
 * Where: the cave of the process's executable when the first fix's state
 * and code fit there (cave.c: no injected run at all), else a MAP_PRIVATE,
 * PROT_READ mapping of a memfd named "svc-hotpatch" (a cave state that
 * fills up moves there: the memfd's header is written last, and a born
 * memfd state wins).
 * Why a memfd and not an anonymous mapping named with
 * prctl(PR_SET_VMA_ANON_NAME): the kernel here (6.18) is built without
 * CONFIG_ANON_VMA_NAME (the prctl fails with EINVAL), while a memfd name
 * shows in /proc/PID/maps on every kernel since 3.17.  Why private: a forked
 * child gets its own copy, so its state keeps describing its own code (which
 * fork copied too); a shared mapping would let a revert in the parent rewrite
 * the child's record while the child's code stays patched.  Why read-only:
 * we write it through /proc/PID/mem; the process itself cannot scribble on it.
 *
 * Layout: HpStateHdr, then records appended in order of application, each
 * an HpStateRec followed by its HpStateSite[]. The header's `used` is written
 * after a record (or with it, in one write within one page, for the first
 * one), so a record half-written by a dying tool is not seen.
 * A record may end in an HpStateStale tail (who still ran old code, and the
 * old function sizes); HP_REC_STALE says the tail's thread is meaningful.
 * A record flagged HP_REC_BAKED is not code of ours: it says hp_unbake took
 * a fix baked into the mapped file out of this process (lineage.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "hotpatch/internal.h"

/* The module mapping of the process's executable (by dev:inode of
 * /proc/PID/exe), NULL if not found. */
const HpMap *hp_exe_map(pid_t pid, const HpMaps *m)
{
	char fn[64];
	struct stat st;
	snprintf(fn, sizeof(fn), "/proc/%d/exe", (int)pid);
	if (stat(fn, &st) < 0)
		return NULL;
	for (size_t i = 0; i < m->n; i++)
		if (m->v[i].offset == 0 && m->v[i].ino == (uint64_t)st.st_ino &&
		    m->v[i].dev_major == major(st.st_dev) && m->v[i].dev_minor == minor(st.st_dev))
			return &m->v[i];
	return NULL;
}

static bool hdr_born(int memfd, uint64_t addr, uint32_t *ret_flags)
{
	HpStateHdr h;
	if (hp_mem_read(memfd, addr, &h, sizeof(h)) < 0 || memcmp(h.magic, HP_STATE_MAGIC, 8) != 0)
		return false;
	*ret_flags = h.flags;
	return true;
}

int hp_state_locate(int memfd, const HpMaps *m, const HpMap *exe, HpPages *pages,
		    uint64_t *ret_addr)
{
	static const char prefix[] = "/memfd:" HP_STATE_NAME;
	uint64_t unborn = 0, cave = 0, cave_len = 0;
	uint32_t flags = 0;
	for (size_t i = 0; i < m->n; i++)
		if (strncmp(m->v[i].path, prefix, sizeof(prefix) - 1) == 0 && m->v[i].offset == 0) {
			if (hdr_born(memfd, m->v[i].start, &flags)) {
				*ret_addr = m->v[i].start;
				return 0;
			}
			if (!unborn)
				unborn = m->v[i].start;
		}
	/* a state in the executable's cave (cave.c puts it there only); when
	 * the executable cannot be told (/proc/PID/exe can be unreadable while
	 * maps are not: an exiting main thread), every module's cave */
	for (size_t i = 0; i <= m->n; i++) {
		const HpMap *mp = i == 0 ? exe : &m->v[i - 1];
		if (!mp || (i > 0 && exe) || mp->offset != 0 || mp->ino == 0 ||
		    mp->perms[0] != 'r')
			continue;
		uint8_t buf[HP_PAGE1];
		HpPage own = { .at = mp->start, .b = buf }, *pg = hp_pages_find(pages, mp->start);
		if (hp_module_cave(memfd, pg ? pg : &own, &cave, &cave_len) == 0 &&
		    cave_len >= sizeof(HpStateHdr) && hdr_born(memfd, cave, &flags) &&
		    (flags & HP_STATE_IN_CAVE)) {
			*ret_addr = cave;
			return 0;
		}
	}
	if (unborn) {
		*ret_addr = unborn;
		return 0;
	}
	return -ENOENT;
}

static int read_hdr(int memfd, pid_t pid, uint64_t addr, HpStateHdr *h, BaseErr *e)
{
	int r = hp_mem_read(memfd, addr, h, sizeof(*h));
	if (r < 0)
		return base_err(e, r, "pid %d: reading state at %#llx: %s", (int)pid,
				(unsigned long long)addr, strerror(-r));
	if (hp_state_hdr_unborn(h))
		return 1;
	/* the mapping belongs to another process, which may have written any
	 * bytes there: every field is bounded before it is used in arithmetic
	 * (a capacity below the header size would wrap the subtraction, a
	 * record count beyond what `used` can hold would size an allocation) */
	if (memcmp(h->magic, HP_STATE_MAGIC, 8) != 0 || h->version != HP_STATE_VERSION ||
	    h->hdr_size != sizeof(*h) || h->capacity > HP_STATE_SIZE ||
	    h->capacity < sizeof(*h) || h->used > h->capacity - sizeof(*h) ||
	    h->n_records > h->used / sizeof(HpStateRec) || (h->flags & ~HP_STATE_IN_CAVE) ||
	    ((h->flags & HP_STATE_IN_CAVE) && h->capacity > HP_PAGE))
		return base_err(e, -BASE_E_CORRUPT, "pid %d: state mapping at %#llx is corrupt",
				(int)pid, (unsigned long long)addr);
	return 0;
}

int hp_state_rec_offset(int memfd, uint64_t addr, size_t i, uint64_t *ret_off)
{
	uint64_t off = sizeof(HpStateHdr);
	for (size_t k = 0; k < i; k++) {
		uint32_t sz;
		int r = hp_mem_read(memfd, addr + off, &sz, 4);
		if (r < 0)
			return r;
		if (sz < sizeof(HpStateRec) || sz > HP_STATE_SIZE - off)
			return -BASE_E_CORRUPT;
		off += sz;
	}
	*ret_off = off;
	return 0;
}

/* A mapping the creating stub made, whose header its patcher did not live
 * to write (all zero): an empty state, which the next writer completes. */
bool hp_state_hdr_unborn(const HpStateHdr *h)
{
	static const HpStateHdr zero;
	return memcmp(h, &zero, sizeof(zero)) == 0;
}

void hp_state_hdr_init(HpStateHdr *h)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->magic, HP_STATE_MAGIC, 8);
	h->version = HP_STATE_VERSION;
	h->hdr_size = sizeof(*h);
	h->capacity = HP_STATE_SIZE;
	snprintf(h->name, sizeof(h->name), "%s", HP_STATE_NAME);
}

void hp_state_free(HpState *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_fixes; i++)
		free(s->fixes[i].sites);
	free(s->fixes);
	free(s->error);
	free(s);
}

int hp_state_load(int memfd, pid_t pid, uint64_t addr, HpState **ret, HpStateHdr *ret_hdr,
		  BaseErr *e)
{
	if (ret_hdr)
		memset(ret_hdr, 0, sizeof(*ret_hdr));
	_cleanup_free_ uint8_t *buf = NULL;   /* before any goto: cleanup runs at fail */
	HpState *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->pid = pid;
	s->addr = addr;
	if (!addr) {
		*ret = s;
		return 0;
	}
	HpStateHdr h;
	int r = read_hdr(memfd, pid, addr, &h, e);
	if (r < 0)
		goto fail;
	if (r > 0) {   /* no header yet: no record either */
		*ret = s;
		return 0;
	}
	if (ret_hdr)
		*ret_hdr = h;
	buf = malloc(h.used ? h.used : 1);
	s->fixes = calloc(h.n_records ? h.n_records : 1, sizeof(HpFixInfo));
	if (!buf || !s->fixes) {
		r = -ENOMEM;
		goto fail;
	}
	r = hp_mem_read(memfd, addr + sizeof(h), buf, h.used);
	if (r < 0) {
		r = base_err(e, r, "pid %d: reading state: %s", (int)pid, strerror(-r));
		goto fail;
	}
	size_t off = 0;
	for (uint32_t i = 0; i < h.n_records; i++) {
		HpStateRec rec;
		if (off + sizeof(rec) > h.used)
			goto corrupt;
		memcpy(&rec, buf + off, sizeof(rec));
		uint64_t plain = sizeof(rec) + (uint64_t)rec.n_sites * sizeof(HpStateSite);
		uint64_t tail = sizeof(HpStateStale) + (uint64_t)rec.n_sites * 8;
		if ((rec.rec_size != plain && rec.rec_size != plain + tail) ||
		    rec.rec_size > h.used - off || rec.status < HP_FIX_PENDING ||
		    rec.status > HP_FIX_REVERTED)
			goto corrupt;
		HpFixInfo *f = &s->fixes[s->n_fixes];
		memcpy(f->fix_id, rec.fix_id, sizeof(f->fix_id));
		f->fix_id[sizeof(f->fix_id) - 1] = 0;
		/* the patcher only ever writes ids of the one rule */
		if (!base_valid_id(f->fix_id))
			goto corrupt;
		f->status = (HpFixStatus)rec.status;
		f->blob = rec.blob;
		f->blob_size = rec.blob_size;
		f->bias = rec.bias;
		f->baked = (rec.flags & HP_REC_BAKED) != 0;
		f->sites = calloc(rec.n_sites ? rec.n_sites : 1, sizeof(HpSiteInfo));
		if (!f->sites) {
			r = -ENOMEM;
			goto fail;
		}
		s->n_fixes++;
		for (uint32_t k = 0; k < rec.n_sites; k++) {
			HpStateSite st;
			memcpy(&st, buf + off + sizeof(rec) + k * sizeof(st), sizeof(st));
			if (st.len == 0 || st.len > HP_MAX_SITE)
				goto corrupt;
			HpSiteInfo *si = &f->sites[k];
			memcpy(si->name, st.name, sizeof(si->name));
			si->name[sizeof(si->name) - 1] = 0;
			/* names are printed: the patcher writes symbol names,
			 * never control bytes */
			for (const char *c = si->name; *c; c++)
				if ((unsigned char)*c < 0x20 || *c == 0x7f)
					goto corrupt;
			si->window = st.window;
			si->entry = st.entry;
			si->len = st.len;
			si->kind = st.kind;
			memcpy(si->orig, st.orig, sizeof(si->orig));
			memcpy(si->redirect, st.redirect, sizeof(si->redirect));
		}
		f->n_sites = rec.n_sites;
		if (rec.rec_size == plain + tail) {
			HpStateStale ss;
			memcpy(&ss, buf + off + plain, sizeof(ss));
			for (uint32_t k = 0; k < rec.n_sites; k++)
				memcpy(&f->sites[k].size, buf + off + plain + sizeof(ss) + 8 * k, 8);
			if ((rec.flags & HP_REC_STALE) && ss.site < rec.n_sites) {
				f->stale = true;
				f->stale_tid = (pid_t)ss.tid;
				memcpy(f->stale_fn, f->sites[ss.site].name, sizeof(f->stale_fn));
			}
		}
		off += rec.rec_size;
	}
	*ret = s;
	return 0;
corrupt:
	r = base_err(e, -BASE_E_CORRUPT, "pid %d: state mapping at %#llx: bad record", (int)pid,
		     (unsigned long long)addr);
fail:
	hp_state_free(s);
	return r;
}

int hp_state_active(const HpState *s, const char ***ret_ids, size_t *ret_n)
{
	const char **ids = calloc(s->n_fixes ? s->n_fixes : 1, sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < s->n_fixes; i++)
		if (s->fixes[i].status != HP_FIX_REVERTED && !s->fixes[i].baked)
			ids[n++] = s->fixes[i].fix_id;
	*ret_ids = ids;
	*ret_n = n;
	return 0;
}
