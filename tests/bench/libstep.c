/* bench-redirect's library: two small functions the victim calls in a loop,
 * one with a hotpatch-ready entry (16,14 pad: 2-byte short jump into an
 * absolute indirect jump), one plain (5-byte jmp rel32).  STEP_VERSION 2 is
 * the "fix": the same work with another constant, so a call costs the same
 * before and after and only the redirect differs. */
#ifndef STEP_VERSION
#define STEP_VERSION 1
#endif

__attribute__((patchable_function_entry(16, 14), noinline))
int step_pad(int x)
{
	return (x * 3 + STEP_VERSION) ^ (x >> 3);
}

__attribute__((noinline))
int step_plain(int x)
{
	return (x * 5 + STEP_VERSION) ^ (x >> 2);
}
