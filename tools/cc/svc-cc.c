/* svc-cc — the compiler wrapper of `svc build`.  Linked as cc, gcc, clang
 * (and the triplet names) into a scratch directory put first on PATH; runs
 * the real compiler of the same name unchanged and, with SVC_CC_LOG set,
 * records each object it built (docs/formats.md "Compile log").
 * Exit: the compiler's status; 1 if the record could not be written (the
 * build must not go on with a log that misses an object); 127 if no real
 * compiler of that name is on PATH. */
#include <stdio.h>

#include "svc/svc.h"

int main(int argc, char **argv)
{
	BaseErr e = { 0 };
	int status = 0;
	int r = svc_cc_wrap(argc, argv, &status, &e);
	if (r < 0) {
		fprintf(stderr, "svc-cc: %s\n", e.msg[0] ? e.msg : base_strerror(r));
		return r == -ENOENT ? 127 : 1;
	}
	return status;
}
