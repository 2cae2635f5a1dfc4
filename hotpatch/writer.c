/* The state writer: takes the state mapping a stub created in the target
 * (inject.c) and appends or rewrites records through /proc/PID/mem.  The layout
 * and the reader are state.c. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include "hotpatch/internal.h"

int hp_state_adopt(HpSession *s, int64_t fd, int64_t tr, int64_t addr, BaseErr *e)
{
	bool mapped = !(addr < 0 && addr > -4096);
	if (fd < 0 || tr != 0 || !mapped) {
		if (mapped)
			hp_unmap(s, (uint64_t)addr, HP_STATE_SIZE);
		int err = fd < 0 ? (int)fd : tr != 0 ? (int)tr : (int)addr;
		return base_err(e, err, "pid %d: creating the state mapping: %s", (int)s->pid,
				strerror(-err));
	}
	if (s->migrating) {   /* the header comes last, with the records (migrate) */
		s->migrate_to = (uint64_t)addr;
		return 0;
	}
	HpStateHdr h;
	hp_state_hdr_init(&h);
	int r = hp_mem_write(s->memfd, (uint64_t)addr, &h, sizeof(h));
	if (r < 0)
		return base_err(e, r, "pid %d: writing state: %s", (int)s->pid, strerror(-r));
	s->state_addr = (uint64_t)addr;
	s->hdr = h;
	return 0;
}

size_t hp_state_rec_size(size_t n_sites)
{
	return sizeof(HpStateRec) + n_sites * sizeof(HpStateSite) + sizeof(HpStateStale) +
	       8 * n_sites;
}

/* A cave state with no room for the next record moves to a memfd mapping:
 * the records are copied, then the new header is written (from then on the
 * memfd state is the one every reader takes: hp_state_locate), then the
 * cave copy's magic is cleared. */
static int migrate(HpSession *s, HpStateHdr *h, BaseErr *e)
{
	uint64_t from = s->state_addr;
	int r = hp_state_memfd(s, e);
	if (r < 0)
		return r;
	uint64_t to = s->migrate_to;
	_cleanup_free_ uint8_t *buf = malloc(h->used ? h->used : 1);
	if (!buf)
		return -ENOMEM;
	HpStateHdr nh = *h;
	nh.capacity = HP_STATE_SIZE;
	nh.flags = 0;
	r = hp_mem_read(s->memfd, from + sizeof(*h), buf, h->used);
	if (r == 0)
		r = hp_mem_write(s->memfd, to + sizeof(nh), buf, h->used);
	if (r == 0)
		r = hp_mem_write(s->memfd, to, &nh, sizeof(nh));
	if (r < 0)
		return base_err(e, r, "pid %d: moving the state to a mapping: %s", (int)s->pid,
				strerror(-r));
	hp_crash_point(s, "state-moved");
	static const char zero[8];
	(void)hp_mem_write(s->memfd, from, zero, sizeof(zero));
	s->state_addr = to;
	s->hdr = nh;
	*h = nh;
	return 0;
}

/* Append a record (or rewrite it in place when it is the last one and the
 * same fix: a re-apply after a revert), then commit the header. */
int hp_state_put(HpSession *s, const char *fix_id, uint32_t status, uint32_t flags,
		     uint64_t blob, uint64_t blob_size, uint64_t *ret_rec_addr, BaseErr *e)
{
	/* the session knows the header: it read it (lock held, or in the
	 * stop) or wrote it; all zero when unborn (its creator died before
	 * the header) */
	HpStateHdr h = s->hdr;
	int r = 0;
	if (hp_state_hdr_unborn(&h))
		hp_state_hdr_init(&h);
	size_t plain = sizeof(HpStateRec) + s->n_sites * sizeof(HpStateSite);
	size_t sz = hp_state_rec_size(s->n_sites);
	_cleanup_free_ uint8_t *buf = calloc(1, sz);
	if (!buf)
		return -ENOMEM;
	HpStateRec rec = { .rec_size = (uint32_t)sz, .status = status, .blob = blob,
			   .blob_size = blob_size, .bias = s->mod->bias,
			   .n_sites = (uint32_t)s->n_sites, .flags = flags };
	snprintf(rec.fix_id, sizeof(rec.fix_id), "%s", fix_id);
	memcpy(buf, &rec, sizeof(rec));
	for (size_t i = 0; i < s->n_sites; i++) {
		const HpSite *st = &s->sites[i];
		HpStateSite ss = { .window = st->window, .entry = st->entry, .len = st->len,
				   .kind = st->kind };
		memcpy(ss.orig, st->orig, st->len);
		memcpy(ss.redirect, st->redirect, st->len);
		memcpy(ss.name, st->name, sizeof(ss.name));
		memcpy(buf + sizeof(rec) + i * sizeof(ss), &ss, sizeof(ss));
		uint64_t size = st->old_hi[0] - st->old_lo[0];
		memcpy(buf + plain + sizeof(HpStateStale) + 8 * i, &size, 8);
	}
	if (flags & HP_REC_STALE) {
		HpStateStale tail = { .tid = (uint32_t)s->stale_tid, .site = (uint32_t)s->stale_site };
		memcpy(buf + plain, &tail, sizeof(tail));
	}
	const HpState *cur = s->state;
	uint64_t off = sizeof(h) + h.used;
	bool in_place = !(flags & HP_REC_BAKED) && cur && cur->n_fixes == h.n_records && h.n_records > 0 &&
			!cur->fixes[h.n_records - 1].baked &&
			strcmp(cur->fixes[h.n_records - 1].fix_id, fix_id) == 0 &&
			cur->fixes[h.n_records - 1].status == HP_FIX_REVERTED &&
			cur->fixes[h.n_records - 1].n_sites == s->n_sites;
	if (in_place) {
		uint32_t old_sz = 0;
		r = hp_state_rec_offset(s->memfd, s->state_addr, h.n_records - 1, &off);
		if (r == 0)
			r = hp_mem_read(s->memfd, s->state_addr + off, &old_sz, 4);
		if (r < 0)
			return base_err(e, r, "pid %d: reading state: %s", (int)s->pid,
					strerror(-r));
		if (old_sz != sz) {   /* a record without the stale tail */
			in_place = false;
			off = sizeof(h) + h.used;
		}
	}
	if (in_place) {
		/* the status goes last: until then the record still says REVERTED */
		r = hp_mem_write(s->memfd, s->state_addr + off + 8, buf + 8, sz - 8);
		if (r == 0)
			r = hp_mem_write(s->memfd, s->state_addr + off + 4, &status, 4);
	} else {
		if (off + sz > h.capacity && (h.flags & HP_STATE_IN_CAVE)) {
			r = migrate(s, &h, e);
			if (r < 0)
				return r;
			off = sizeof(h) + h.used;
		}
		if (off + sz > h.capacity)
			return base_err(e, -ENOSPC, "pid %d: state mapping full (%u records)",
					(int)s->pid, h.n_records);
		h.used += sz;
		h.n_records++;
		if (off == sizeof(h) && (s->state_addr + off + sz - 1) / HP_PAGE == s->state_addr / HP_PAGE) {
			/* the first record, right after the header in one page: one
			 * write of both (a single copy, every thread stopped: nothing
			 * sees the header before the record) */
			_cleanup_free_ uint8_t *both = malloc(sizeof(h) + sz);
			if (!both)
				return -ENOMEM;
			memcpy(both, &h, sizeof(h));
			memcpy(both + sizeof(h), buf, sz);
			r = hp_mem_write(s->memfd, s->state_addr, both, sizeof(h) + sz);
		} else {
			r = hp_mem_write(s->memfd, s->state_addr + off, buf, sz);
			if (r == 0)
				r = hp_mem_write(s->memfd, s->state_addr, &h, sizeof(h));
		}
		if (r == 0)
			s->hdr = h;
	}
	if (r < 0)
		return base_err(e, r, "pid %d: writing state: %s", (int)s->pid, strerror(-r));
	*ret_rec_addr = s->state_addr + off;
	return 0;
}

/* Set or clear HP_REC_STALE of the record at rec_addr (with its tail: a
 * record without one cannot say it, and is left alone). */
int hp_rec_stale(HpSession *s, uint64_t rec_addr, size_t n_sites, bool stale, pid_t tid,
		 size_t site)
{
	HpStateRec rec;
	int r = hp_mem_read(s->memfd, rec_addr, &rec, sizeof(rec));
	if (r < 0)
		return r;
	size_t plain = sizeof(HpStateRec) + n_sites * sizeof(HpStateSite);
	if (rec.rec_size != plain + sizeof(HpStateStale) + 8 * n_sites)
		return 0;
	if (stale) {
		HpStateStale tail = { .tid = (uint32_t)tid, .site = (uint32_t)site };
		r = hp_mem_write(s->memfd, rec_addr + plain, &tail, sizeof(tail));
		if (r < 0)
			return r;
	}
	uint32_t flags = stale ? rec.flags | HP_REC_STALE : rec.flags & ~HP_REC_STALE;
	return hp_mem_write(s->memfd, rec_addr + offsetof(HpStateRec, flags), &flags, 4);
}

int hp_rec_status(HpSession *s, uint64_t rec_addr, uint32_t status)
{
	return hp_mem_write(s->memfd, rec_addr + 4, &status, 4);
}
