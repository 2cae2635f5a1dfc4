/* Caves: the unused tail of a module's last executable page (module.c finds
 * them).  The page is mapped r-x and nothing runs or reads past the
 * segment's bytes, so a write there through /proc/PID/mem needs no
 * injected run: the kernel makes the page a private copy, r-x as before
 * (4 KiB of memory per process, shared by nothing).
 *
 * A process's first fix, when its code and the state fit, is placed here
 * with no injected system call at all: the pause is the stop, the checks,
 * the writes and the resume.  The state goes into the executable's cave
 * only (a library may be unloaded; the executable never is), at the cave's
 * start, with the code after it; later fixes' code goes into any other
 * free cave within reach.  What does not fit takes the mapping path
 * (inject.c), and a cave state that fills up moves to a memfd mapping
 * (hp_state_put). */
#include <string.h>

#include "hotpatch/internal.h"

#define ALIGN16(x) (((x) + 15) & ~(uint64_t)15)

static bool overlaps(uint64_t lo, uint64_t hi, uint64_t a, uint64_t b)
{
	return lo < b && a < hi;
}

bool hp_cave_free(const HpSession *s, uint64_t lo, uint64_t hi)
{
	if (s->state_addr && (s->hdr.flags & HP_STATE_IN_CAVE) &&
	    overlaps(lo, hi, s->state_addr, s->state_addr + s->hdr.capacity))
		return false;
	for (size_t i = 0; s->state && i < s->state->n_fixes; i++) {
		const HpFixInfo *f = &s->state->fixes[i];
		if (f->blob && overlaps(lo, hi, f->blob, f->blob + f->blob_size))
			return false;
	}
	return true;
}

/* The cave of md if it is mapped r-x from md's file and wholly free. */
static bool cave_usable(const HpSession *s, const HpModule *md)
{
	if (!md->cave || md->cave_len < HP_CAVE_MIN)
		return false;
	const HpMap *mp = hp_maps_find(&s->maps, md->cave);
	return mp && mp->perms[2] == 'x' && mp->ino == md->ino &&
	       mp->end >= md->cave + md->cave_len &&
	       hp_cave_free(s, md->cave, md->cave + md->cave_len);
}

static const HpModule *exe_module(const HpSession *s)
{
	for (size_t i = 0; s->exe && i < s->n_mods; i++)
		if (s->mods[i].start == s->exe->start)
			return &s->mods[i];
	return NULL;
}

/* An empty state of `capacity` bytes at `at` (crash point "state").  Its
 * header is written by the first record's commit (hp_state_put), after the
 * record: until then the cave holds no state, only bytes no one reads. */
static void state_create(HpSession *s, uint64_t at, uint64_t capacity)
{
	hp_state_hdr_init(&s->hdr);
	s->hdr.capacity = capacity;
	s->hdr.flags = HP_STATE_IN_CAVE;
	s->state_addr = at;
	hp_crash_point(s, "state");
}

int hp_cave_place(HpSession *s, uint64_t blob_len, uint64_t align, bool near,
		  uint64_t state_need, uint64_t *ret_blob)
{
	uint64_t code = ALIGN16(blob_len), at = 0, room = 0;
	const HpModule *x = NULL;
	if (align < 16)
		align = 16;
	if (align > HP_PAGE || (code && !s->mod))
		return 0;   /* code is placed for a target module only */
	if (!s->state_addr) {
		/* the state at the start of the executable's cave, the code at
		 * its end when it fits and is in reach */
		x = exe_module(s);
		if (!x || !cave_usable(s, x))
			return 0;
		uint64_t end = x->cave + x->cave_len;
		if (code && x->cave_len > code) {
			uint64_t a = (end - code) & ~(align - 1);
			if (a >= x->cave + sizeof(HpStateHdr) + state_need &&
			    (!near || hp_in_reach(a, code, s->mod->lo, s->mod->hi)))
				at = a;
		}
		room = ((at ? at : end) - x->cave) & ~(uint64_t)15;
		if (room < sizeof(HpStateHdr) + state_need)
			return 0;
	}
	/* else the code in another cave: the target module's first */
	for (size_t k = 0; code && !at && k <= s->n_mods; k++) {
		const HpModule *md = k == 0 ? s->mod : &s->mods[k - 1];
		if (!md || (k > 0 && md == s->mod) || md == x || !cave_usable(s, md))
			continue;
		uint64_t a = (md->cave + align - 1) & ~(align - 1);
		if (a + code <= md->cave + md->cave_len &&
		    (!near || hp_in_reach(a, code, s->mod->lo, s->mod->hi)))
			at = a;
	}
	if (code && !at)
		return 0;
	if (code)
		hp_crash_point(s, "mapped");
	if (x)
		state_create(s, x->cave, room);
	*ret_blob = at;
	return 1;
}
