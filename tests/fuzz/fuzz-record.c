/* The transaction record (pending/NNNN.txn); what it accepts formats to a
 * record that parses back and formats the same. */
#include "pending/pending.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	PendingTxn *t = NULL, *u = NULL;
	BaseBuf a = { 0 }, b = { 0 };
	if (pending_parse((const char *)d, n, &t, NULL) < 0)
		return 0;
	FZ_ASSERT(pending_format(t, &a) == 0);
	FZ_ASSERT(pending_parse((const char *)a.data, a.len, &u, NULL) == 0);
	FZ_ASSERT(pending_format(u, &b) == 0);
	FZ_ASSERT(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
	base_buf_free(&a);
	base_buf_free(&b);
	pending_txn_free(t);
	pending_txn_free(u);
	return 0;
}
