/* The bytes at a fix's sites while every thread is stopped: read together
 * with the first thread's stack in one vectored read, and written a page at
 * a time.
 *
 * The sites that lie in one page make one span.  A span is read whole, the
 * bytes between its sites included, and written whole: the bytes read, with
 * the new bytes of each of its sites laid over them.  One write is one copy
 * into one page with every thread stopped: nothing runs between two sites
 * of it, and a tool killed during the write leaves all of them written or
 * none (the kernel completes a copy it began; a fatal signal acts at the
 * return).  The bytes between the sites go back as they were read in the
 * same stop, with the lock held; nothing else this library writes lies
 * between two sites (a fix's code and the state go to caves, past the
 * segment's last byte, or to mappings of their own).  A site across a page boundary is a span
 * of its own, written in two pieces in the order that keeps it safe
 * (split_write).  A fix of two functions next to each other thus costs one
 * write where it cost two. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hotpatch/internal.h"

static bool one_page(uint64_t a, uint64_t len)
{
	return a / HP_PAGE == (a + len - 1) / HP_PAGE;
}

static int by_window(const void *a, const void *b)
{
	const HpSite *x = *(const HpSite *const *)a, *y = *(const HpSite *const *)b;
	return x->window < y->window ? -1 : x->window > y->window;
}

/* The spans of the sites as they are now, in address order, into *ret
 * (bytes not read). */
static int spans_plan(const HpSession *s, HpSpans *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (!s->n_sites)
		return 0;
	_cleanup_free_ const HpSite **ord = calloc(s->n_sites, sizeof(*ord));
	ret->v = calloc(s->n_sites, sizeof(HpSpan));
	if (!ord || !ret->v) {
		free(ret->v);
		ret->v = NULL;
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->n_sites; i++)
		ord[i] = &s->sites[i];
	qsort(ord, s->n_sites, sizeof(*ord), by_window);
	size_t total = 0;
	for (size_t i = 0; i < s->n_sites; i++) {
		const HpSite *st = ord[i];
		bool split = st->kind != ELF_ENTRY_PLAIN && !one_page(st->window, st->len);
		HpSpan *last = ret->n ? &ret->v[ret->n - 1] : NULL;
		if (!split && last && !last->split && one_page(last->lo, st->window + st->len - last->lo)) {
			uint64_t hi = st->window + st->len;
			if (hi > last->lo + last->len)
				last->len = (uint32_t)(hi - last->lo);
			continue;
		}
		ret->v[ret->n++] = (HpSpan){ .lo = st->window, .len = st->len, .split = split };
	}
	for (size_t i = 0; i < ret->n; i++)
		total += ret->v[i].len;
	ret->bytes = malloc(total ? total : 1);
	if (!ret->bytes) {
		free(ret->v);
		ret->v = NULL;
		ret->n = 0;
		return -ENOMEM;
	}
	for (size_t i = 0, at = 0; i < ret->n; i++) {
		ret->v[i].bytes = ret->bytes + at;
		at += ret->v[i].len;
	}
	return 0;
}

void hp_spans_free(HpSpans *sp)
{
	free(sp->v);
	free(sp->bytes);
	memset(sp, 0, sizeof(*sp));
}

static bool spans_same(const HpSpans *a, const HpSpans *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (a->v[i].lo != b->v[i].lo || a->v[i].len != b->v[i].len)
			return false;
	return true;
}

static bool in_span(const HpSpan *sp, const HpSite *st)
{
	return st->window >= sp->lo && st->window + st->len <= sp->lo + sp->len;
}

/* One read piece per span, into io (sp->n entries). */
static size_t spans_io(const HpSpans *sp, HpIo *io)
{
	for (size_t i = 0; i < sp->n; i++)
		io[i] = (HpIo){ sp->v[i].lo, sp->v[i].bytes, sp->v[i].len };
	return sp->n;
}

void hp_stop_read(HpSession *s)
{
	s->spans_at = 0;
	s->stack0_at = 0;
	if (!s->tr.n || hp_ptrace_regs(&s->tr, 0) < 0)
		return;
	hp_spans_free(&s->spans);
	if (spans_plan(s, &s->spans) < 0)
		return;
	HpIo io[64];
	if (s->spans.n + 1 > sizeof(io) / sizeof(io[0]))
		return;
	size_t n = spans_io(&s->spans, io);
	uint64_t from, to;
	bool whole;
	hp_stack_range(s, 0, &from, &to, &whole);
	size_t stack_len = to > from ? (size_t)(to - from) : 0;
	if (stack_len > sizeof(s->stack0))
		stack_len = sizeof(s->stack0);
	if (stack_len)
		io[n++] = (HpIo){ from, s->stack0, stack_len };
	/* one process_vm_readv when all of it is readable (the stack range
	 * ends at its mapping's end); else each reader reads for itself */
	if (!n || hp_mem_readv(s->pid, s->memfd, io, n, NULL) < 0)
		return;
	s->spans_at = s->rep->attempts;
	if (stack_len) {
		s->stack0_from = from;
		s->stack0_got = stack_len;
		s->stack0_at = s->rep->attempts;
	}
}

int hp_sites_read(HpSession *s, BaseErr *e)
{
	HpSpans plan;
	int r = spans_plan(s, &plan);
	if (r < 0)
		return r;
	if (s->spans_at && s->spans_at == s->rep->attempts && s->tr.n && spans_same(&plan, &s->spans)) {
		hp_spans_free(&plan);   /* read with the stack at this stop */
	} else {
		HpIo io[64];
		HpIo *v = plan.n <= 64 ? io : calloc(plan.n, sizeof(HpIo));
		if (!v) {
			hp_spans_free(&plan);
			return -ENOMEM;
		}
		spans_io(&plan, v);
		size_t bad = 0;
		r = hp_mem_readv(s->pid, s->memfd, v, plan.n, &bad);
		if (v != io)
			free(v);
		if (r < 0) {
			const char *name = "";
			for (size_t k = 0; k < s->n_sites; k++)
				if (in_span(&plan.v[bad], &s->sites[k])) {
					name = s->sites[k].name;
					break;
				}
			hp_spans_free(&plan);
			return base_err(e, r, "pid %d: reading %s: %s", (int)s->pid, name,
					strerror(-r));
		}
		hp_spans_free(&s->spans);
		s->spans = plan;
		s->spans_at = s->tr.n ? s->rep->attempts : 0;
	}
	for (size_t k = 0; k < s->n_sites; k++) {
		HpSite *st = &s->sites[k];
		for (size_t i = 0; i < s->spans.n; i++)
			if (in_span(&s->spans.v[i], st)) {
				memcpy(st->cur, s->spans.v[i].bytes + (st->window - s->spans.v[i].lo),
				       st->len);
				break;
			}
	}
	return 0;
}

/* One site across two pages: applying, the pad first and the entry last,
 * so the entry only ever jumps into a complete pad; reverting, the entry
 * first, so nothing jumps into the pad while it is restored. */
static int split_write(HpSession *s, const HpSite *st, const uint8_t *bytes, bool entry_last)
{
	int r;
	if (entry_last) {
		r = hp_mem_write(s->memfd, st->window, bytes, st->pad);
		if (r == 0)
			r = hp_mem_write(s->memfd, st->entry, bytes + st->pad, 2);
	} else {
		r = hp_mem_write(s->memfd, st->entry, bytes + st->pad, 2);
		if (r == 0)
			r = hp_mem_write(s->memfd, st->window, bytes, st->pad);
	}
	return r;
}

int hp_sites_write(HpSession *s, bool redirect, bool reverse, const char *step)
{
	uint8_t buf[HP_PAGE];
	for (size_t j = 0; j < s->spans.n; j++) {
		HpSpan *sp = &s->spans.v[reverse ? s->spans.n - 1 - j : j];
		memcpy(buf, sp->bytes, sp->len);
		const HpSite *one = NULL;
		for (size_t k = 0; k < s->n_sites; k++) {
			const HpSite *st = &s->sites[k];
			if (!in_span(sp, st))
				continue;
			memcpy(buf + (st->window - sp->lo), redirect ? st->redirect : st->orig, st->len);
			one = st;
		}
		if (!one || (!sp->torn && memcmp(buf, sp->bytes, sp->len) == 0))
			continue;   /* holds these bytes already */
		int r = sp->split ? split_write(s, one, buf, redirect) :
				    hp_mem_write(s->memfd, sp->lo, buf, sp->len);
		if (r < 0) {
			sp->torn = true;   /* a piece may be written: an undo writes it */
			return r;
		}
		memcpy(sp->bytes, buf, sp->len);   /* what the span holds now */
		if (step)
			hp_crash_point(s, step);
	}
	return 0;
}
