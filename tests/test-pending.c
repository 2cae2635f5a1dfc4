/* pending: record format, store, and crash-safe replay. */
#include <CUnit/CUnit.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pending/pending.h"
#include "tests/testlib.h"

static PendingTxn *make_txn(uint64_t number, const char *pkg, size_t nops)
{
	PendingTxn *t = calloc(1, sizeof(*t));
	t->number = number;
	t->kind = PENDING_INSTALL;
	t->package = strdup(pkg);
	t->series = strdup("demo");
	t->sequence = number;
	t->created = 1700000000;
	t->ops = calloc(nops, sizeof(*t->ops));
	t->n_ops = nops;
	for (size_t i = 0; i < nops; i++) {
		PendingOp *o = &t->ops[i];
		o->path = base_strdupf("/lib/f%zu", i);
		o->source = base_strdupf(".f%zu.svc-%llu.new", i, (unsigned long long)number);
		o->keep = base_strdupf(".f%zu.svc-%llu.orig", i, (unsigned long long)number);
		o->source_staged = 1;
		o->fix_from = strdup("base");
		o->fix_to = strdup(pkg);
	}
	return t;
}

static void test_record_round_trip(void)
{
	PendingTxn *t = make_txn(7, "FIX-1", 2), *back = NULL;
	BaseBuf b = { 0 }, b2 = { 0 };
	memset(t->ops[1].to, 0xab, 32);
	CU_ASSERT_EQUAL(pending_format(t, &b), 0);
	CU_ASSERT_EQUAL(pending_parse((char *)b.data, b.len, &back, NULL), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(back);
	CU_ASSERT_EQUAL(back->number, 7);
	CU_ASSERT_EQUAL(back->n_ops, 2);
	CU_ASSERT_STRING_EQUAL(back->ops[1].keep, ".f1.svc-7.orig");
	CU_ASSERT_EQUAL(memcmp(back->ops[1].to, t->ops[1].to, 32), 0);
	CU_ASSERT_EQUAL(pending_format(back, &b2), 0);
	CU_ASSERT_EQUAL(b.len, b2.len);
	CU_ASSERT_EQUAL(memcmp(b.data, b2.data, b.len), 0);
	base_buf_free(&b);
	base_buf_free(&b2);
	pending_txn_free(t);
	pending_txn_free(back);
}

/* Replace the first `from` in the record text by `to` and write a valid
 * checksum again: what a hostile writer (not a torn write) would produce. */
static int parse_edited(const BaseBuf *b, const char *from, const char *to, size_t to_len)
{
	const char *text = (const char *)b->data, *at = strstr(text, from);
	const char *end = strstr(text, "end ");
	BaseBuf n = { 0 };
	uint8_t d[BASE_SHA256_LEN];
	char sum[BASE_SHA256_HEX];
	PendingTxn *back = NULL;
	CU_ASSERT_PTR_NOT_NULL_FATAL(at);
	base_buf_append(&n, text, (size_t)(at - text));
	base_buf_append(&n, to, to_len);
	base_buf_append(&n, at + strlen(from), (size_t)(end - at) - strlen(from));
	base_sha256(n.data, n.len, d);
	base_hex(sum, d, BASE_SHA256_LEN);
	base_buf_printf(&n, "end %s\n", sum);
	int r = pending_parse((const char *)n.data, n.len, &back, NULL);
	pending_txn_free(back);
	base_buf_free(&n);
	return r;
}

/* One spelling per record: a resealed record that says the same thing
 * another way (a blank and a sign before a number, upper-case hex, a NUL
 * hidden after a key) is refused, as is an id longer than the shared rule. */
static void test_record_parse_accepts_canonical_only(void)
{
	PendingTxn *t = make_txn(3, "FIX-1", 1);
	BaseBuf b = { 0 };
	memset(t->ops[0].to, 0xab, 32);
	CU_ASSERT_EQUAL_FATAL(pending_format(t, &b), 0);
	base_buf_append(&b, "", 1);
	b.len--;
	CU_ASSERT_EQUAL(parse_edited(&b, "sequence 3\n", "sequence 3\n", 11), 0);
	CU_ASSERT_EQUAL(parse_edited(&b, "sequence 3\n", "sequence  -1\n", 13), -EBADMSG);
	CU_ASSERT_EQUAL(parse_edited(&b, "sequence 3\n", "sequence +3\n", 12), -EBADMSG);
	CU_ASSERT_EQUAL(parse_edited(&b, "sequence 3\n", "sequence  3\n", 12), -EBADMSG);
	CU_ASSERT_EQUAL(parse_edited(&b, "abababab", "ABABABAB", 8), -EBADMSG);
	CU_ASSERT_EQUAL(parse_edited(&b, "undoes 0\n", "undoes\0x 0\n", 11), -EBADMSG);
	base_buf_free(&b);

	/* ids: 63 bytes is the one limit of manifests, records and the patcher */
	char id[70];
	memset(id, 'a', sizeof(id));
	id[63] = 0;
	CU_ASSERT_TRUE(pending_valid_id(id));
	id[63] = 'a';
	id[64] = 0;
	CU_ASSERT_FALSE(pending_valid_id(id));
	CU_ASSERT_FALSE(pending_valid_id(".hidden"));
	CU_ASSERT_FALSE(pending_valid_path("/usr/lib/with space.so"));
	pending_txn_free(t);
}

/* Every prefix of a record, and every single-byte change, is refused. */
static void test_record_torn_or_edited_is_refused(void)
{
	PendingTxn *t = make_txn(3, "FIX-1", 1), *back = NULL;
	BaseBuf b = { 0 };
	CU_ASSERT_EQUAL(pending_format(t, &b), 0);
	for (size_t n = 0; n < b.len; n++) {
		BaseErr e = { 0 };
		back = NULL;
		CU_ASSERT_EQUAL(pending_parse((char *)b.data, n, &back, &e), -EBADMSG);
		CU_ASSERT_PTR_NULL(back);
		CU_ASSERT_NOT_EQUAL(e.msg[0], 0);
	}
	for (size_t n = 0; n < b.len; n += 7) {
		uint8_t save = b.data[n];
		b.data[n] ^= 0x01;
		CU_ASSERT_EQUAL(pending_parse((char *)b.data, b.len, &back, NULL), -EBADMSG);
		b.data[n] = save;
	}
	base_buf_free(&b);
	pending_txn_free(t);
}

static void test_record_rejects_bad_names(void)
{
	PendingTxn *t = make_txn(3, "FIX-1", 1), *back = NULL;
	BaseBuf b = { 0 };
	free(t->ops[0].path);
	t->ops[0].path = strdup("/lib/../etc/passwd");
	CU_ASSERT_EQUAL(pending_format(t, &b), 0);
	CU_ASSERT_EQUAL(pending_parse((char *)b.data, b.len, &back, NULL), -EBADMSG);
	base_buf_free(&b);
	free(t->ops[0].path);
	t->ops[0].path = strdup("/lib/f0");
	free(t->ops[0].source);
	t->ops[0].source = strdup("../x");
	CU_ASSERT_EQUAL(pending_format(t, &b), 0);
	CU_ASSERT_EQUAL(pending_parse((char *)b.data, b.len, &back, NULL), -EBADMSG);
	base_buf_free(&b);
	pending_txn_free(t);
}

/* Replay checks every op before it swaps any: a record naming a file twice
 * would have its second op checked against the file before the first swap. */
static void test_record_rejects_a_file_named_twice(void)
{
	PendingTxn *t = make_txn(4, "FIX-1", 3), *back = NULL;
	BaseBuf b = { 0 };
	BaseErr e = { 0 };
	CU_ASSERT_EQUAL(pending_format(t, &b), 0);
	CU_ASSERT_EQUAL(pending_parse((char *)b.data, b.len, &back, NULL), 0);
	pending_txn_free(back);
	back = NULL;
	base_buf_free(&b);
	free(t->ops[2].path);
	t->ops[2].path = strdup("/lib/f0");
	CU_ASSERT_EQUAL(pending_format(t, &b), 0);
	CU_ASSERT_EQUAL(pending_parse((char *)b.data, b.len, &back, &e), -EBADMSG);
	CU_ASSERT_PTR_NULL(back);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "second operation on /lib/f0"));
	base_buf_free(&b);
	pending_txn_free(t);
}

/* A scratch root with /lib/f0../fN-1 holding "old<i>" and staged "new<i>". */
typedef struct Fx {
	char *dir;
	int rootfd;
	PendingStore st;
} Fx;

static void fx_write(Fx *f, const char *rel, const char *content)
{
	char *p = base_strdupf("%s/%s", f->dir, rel);
	test_write(p, content, strlen(content));
	free(p);
}

static char *fx_read(Fx *f, const char *rel)
{
	char *p = base_strdupf("%s/%s", f->dir, rel);
	char *s = test_read(p, NULL);
	free(p);
	return s;
}

static PendingTxn *fx_setup(Fx *f, size_t n)
{
	f->dir = test_scratch("pending");
	test_sh("mkdir -p %s/lib", f->dir);
	f->rootfd = open(f->dir, O_RDONLY | O_DIRECTORY);
	CU_ASSERT_EQUAL(pending_store_open(f->rootfd, &f->st, NULL), 0);
	PendingTxn *t = make_txn(1, "FIX-1", n);
	for (size_t i = 0; i < n; i++) {
		char rel[64], oldc[16], newc[16];
		snprintf(oldc, sizeof(oldc), "old%zu", i);
		snprintf(newc, sizeof(newc), "new%zu", i);
		snprintf(rel, sizeof(rel), "lib/f%zu", i);
		fx_write(f, rel, oldc);
		snprintf(rel, sizeof(rel), "lib/%s", t->ops[i].source);
		fx_write(f, rel, newc);
		base_sha256(oldc, strlen(oldc), t->ops[i].from);
		base_sha256(newc, strlen(newc), t->ops[i].to);
	}
	return t;
}

static void fx_done(Fx *f, PendingTxn *t)
{
	pending_txn_free(t);
	pending_store_close(&f->st);
	close(f->rootfd);
	test_rmrf(f->dir);
	free(f->dir);
}

static size_t count_state(Fx *f, PendingState s)
{
	PendingList l = { 0 };
	size_t n = 0;
	pending_list(&f->st, &l, NULL);
	for (size_t i = 0; i < l.n; i++)
		n += l.entries[i].state == s;
	pending_list_free(&l);
	return n;
}

static void test_apply_swaps_all_and_keeps_backups(void)
{
	Fx f;
	PendingTxn *t = fx_setup(&f, 3);
	CU_ASSERT_EQUAL(pending_write(&f.st, PENDING_PENDING, t, NULL), 0);
	CU_ASSERT_EQUAL(pending_apply(&f.st, t, NULL), 0);
	for (size_t i = 0; i < 3; i++) {
		char rel[64], want[16];
		snprintf(rel, sizeof(rel), "lib/f%zu", i);
		snprintf(want, sizeof(want), "new%zu", i);
		char *s = fx_read(&f, rel);
		CU_ASSERT_STRING_EQUAL(s, want);
		free(s);
		snprintf(rel, sizeof(rel), "lib/%s", t->ops[i].keep);
		snprintf(want, sizeof(want), "old%zu", i);
		s = fx_read(&f, rel);
		CU_ASSERT_PTR_NOT_NULL(s);
		if (s)
			CU_ASSERT_STRING_EQUAL(s, want);
		free(s);
	}
	CU_ASSERT_EQUAL(count_state(&f, PENDING_APPLIED), 1);
	CU_ASSERT_EQUAL(count_state(&f, PENDING_PENDING), 0);
	/* applying again changes nothing and fails cleanly: the record moved */
	CU_ASSERT_NOT_EQUAL(pending_apply(&f.st, t, NULL), 0);
	fx_done(&f, t);
}

/* A file changed behind the record's back: refused whole, quarantined, and
 * ops done by an earlier interrupted replay are undone. */
static void test_conflict_quarantines_and_undoes(void)
{
	Fx f;
	PendingTxn *t = fx_setup(&f, 2);
	BaseErr e = { 0 };
	CU_ASSERT_EQUAL(pending_write(&f.st, PENDING_PENDING, t, NULL), 0);
	/* op 0 done by hand, as an interrupted replay would have left it */
	test_sh("cd %s/lib && ln f0 %s && mv %s f0", f.dir, t->ops[0].keep, t->ops[0].source);
	fx_write(&f, "lib/f1", "tampered");
	CU_ASSERT_EQUAL(pending_apply(&f.st, t, &e), -ESTALE);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "/lib/f1"));
	char *s0 = fx_read(&f, "lib/f0"), *s1 = fx_read(&f, "lib/f1");
	CU_ASSERT_STRING_EQUAL(s0, "old0");
	CU_ASSERT_STRING_EQUAL(s1, "tampered");
	free(s0);
	free(s1);
	CU_ASSERT_EQUAL(count_state(&f, PENDING_QUARANTINED), 1);
	PendingList l = { 0 };
	pending_list(&f.st, &l, NULL);
	CU_ASSERT_PTR_NOT_NULL(l.n ? l.entries[0].reason : NULL);
	pending_list_free(&l);
	fx_done(&f, t);
}

static void test_abort_removes_staged_only(void)
{
	Fx f;
	PendingTxn *t = fx_setup(&f, 2);
	t->ops[1].source_staged = 0; /* a backup: must survive */
	CU_ASSERT_EQUAL(pending_write(&f.st, PENDING_STAGING, t, NULL), 0);
	CU_ASSERT_EQUAL(pending_recover(&f.st, NULL), 0);
	char *p0 = base_strdupf("%s/lib/%s", f.dir, t->ops[0].source);
	char *p1 = base_strdupf("%s/lib/%s", f.dir, t->ops[1].source);
	CU_ASSERT_NOT_EQUAL(access(p0, F_OK), 0);
	CU_ASSERT_EQUAL(access(p1, F_OK), 0);
	free(p0);
	free(p1);
	CU_ASSERT_EQUAL(count_state(&f, PENDING_STAGING), 0);
	fx_done(&f, t);
}

static void test_replay_quarantines_torn_record(void)
{
	Fx f;
	PendingTxn *t = fx_setup(&f, 1);
	PendingReport rep = { 0 };
	CU_ASSERT_EQUAL(pending_write(&f.st, PENDING_PENDING, t, NULL), 0);
	test_sh("truncate -s 100 %s/var/lib/svc/pending/0000000001.txn", f.dir);
	CU_ASSERT_EQUAL(pending_replay(&f.st, 0, &rep, NULL), 1);
	CU_ASSERT_EQUAL(rep.n, 1);
	CU_ASSERT_TRUE(rep.n == 1 && rep.outcomes[0].result < 0);
	char *s = fx_read(&f, "lib/f0");
	CU_ASSERT_STRING_EQUAL(s, "old0");
	free(s);
	CU_ASSERT_EQUAL(count_state(&f, PENDING_QUARANTINED), 1);
	pending_report_free(&rep);
	fx_done(&f, t);
}

/* An edited (unreadable) record is quarantined, and the file it staged
 * (named by its number) is removed; the target and everything else stay. */
static void test_quarantined_unreadable_record_drops_its_staged_file(void)
{
	Fx f;
	PendingTxn *t = fx_setup(&f, 1);
	PendingReport rep = { 0 };
	CU_ASSERT_EQUAL(pending_write(&f.st, PENDING_PENDING, t, NULL), 0);
	fx_write(&f, "lib/.f0.svc-2.new", "another transaction's");
	/* one byte of the checksum changed: the record no longer parses */
	test_sh("cd %s/var/lib/svc/pending && sed -i 's/^end ./end x/' 0000000001.txn", f.dir);
	CU_ASSERT_EQUAL(pending_replay(&f.st, 0, &rep, NULL), 1);
	CU_ASSERT_EQUAL(count_state(&f, PENDING_QUARANTINED), 1);
	char *p = base_strdupf("%s/lib/%s", f.dir, t->ops[0].source);
	CU_ASSERT_NOT_EQUAL(access(p, F_OK), 0);
	free(p);
	char *s = fx_read(&f, "lib/f0");
	CU_ASSERT_STRING_EQUAL(s, "old0");
	free(s);
	s = fx_read(&f, "lib/.f0.svc-2.new");
	CU_ASSERT_PTR_NOT_NULL(s);
	free(s);
	pending_report_free(&rep);
	fx_done(&f, t);
}

/* Kill the replay before each of its durable steps in turn; after each
 * crash a second replay must finish with every file new. */
static void test_replay_crash_at_every_step(void)
{
	int n, points = 0;
	for (n = 1; n < 100; n++) {
		Fx f;
		PendingTxn *t = fx_setup(&f, 3);
		CU_ASSERT_EQUAL(pending_write(&f.st, PENDING_PENDING, t, NULL), 0);
		pid_t pid = fork();
		if (pid == 0) {
			char v[16];
			snprintf(v, sizeof(v), "%d", n);
			setenv("SVC_CRASH_AT", v, 1);
			base_fs_crash_reset();
			_exit(pending_replay(&f.st, 0, NULL, NULL) == 0 ? 0 : 1);
		}
		int st = 0;
		waitpid(pid, &st, 0);
		int crashed = WIFSIGNALED(st);
		CU_ASSERT_TRUE(crashed || (WIFEXITED(st) && WEXITSTATUS(st) == 0));
		CU_ASSERT_EQUAL(pending_replay(&f.st, 0, NULL, NULL), 0);
		for (size_t i = 0; i < 3; i++) {
			char rel[32], want[16];
			snprintf(rel, sizeof(rel), "lib/f%zu", i);
			snprintf(want, sizeof(want), "new%zu", i);
			char *s = fx_read(&f, rel);
			CU_ASSERT_PTR_NOT_NULL(s);
			if (s)
				CU_ASSERT_STRING_EQUAL(s, want);
			free(s);
		}
		CU_ASSERT_EQUAL(count_state(&f, PENDING_APPLIED), 1);
		fx_done(&f, t);
		if (!crashed)
			break;
		points++;
	}
	CU_ASSERT_TRUE(points >= 12); /* 3 ops x 4 steps + the record move */
	printf("(%d crash points) ", points);
}

/* A transaction whose replay dies on every boot is given up on after three
 * attempts: undone (every file old again) and quarantined with the reason. */
static void test_replay_gives_up_after_three_attempts(void)
{
	Fx f;
	PendingTxn *t = fx_setup(&f, 3);
	PendingReport rep = { 0 };
	CU_ASSERT_EQUAL(pending_write(&f.st, PENDING_PENDING, t, NULL), 0);
	for (int boot = 0; boot < 3; boot++) {
		pid_t pid = fork();
		if (pid == 0) {
			/* 5 steps count the attempt, then each op: link, fsync, rename, fsync */
			setenv("SVC_CRASH_AT", "9", 1);
			base_fs_crash_reset();
			pending_replay(&f.st, 3, NULL, NULL);
			_exit(0);
		}
		int st = 0;
		waitpid(pid, &st, 0);
		CU_ASSERT_TRUE(WIFSIGNALED(st));
	}
	char *s0 = fx_read(&f, "lib/f0");
	CU_ASSERT_STRING_EQUAL(s0, "new0"); /* the interrupted boots made progress */
	free(s0);
	CU_ASSERT_EQUAL(pending_replay(&f.st, 3, &rep, NULL), 1);
	CU_ASSERT_TRUE(rep.n == 1 && rep.outcomes[0].result == -ESTALE);
	CU_ASSERT_TRUE(rep.n == 1 && strstr(rep.outcomes[0].reason, "3 interrupted") != NULL);
	for (size_t i = 0; i < 3; i++) {
		char rel[32], want[16];
		snprintf(rel, sizeof(rel), "lib/f%zu", i);
		snprintf(want, sizeof(want), "old%zu", i);
		char *s = fx_read(&f, rel);
		CU_ASSERT_STRING_EQUAL(s, want);
		free(s);
	}
	CU_ASSERT_EQUAL(count_state(&f, PENDING_QUARANTINED), 1);
	char *att = base_strdupf("%s/var/lib/svc/pending/0000000001.attempts", f.dir);
	CU_ASSERT_NOT_EQUAL(access(att, F_OK), 0);
	free(att);
	pending_report_free(&rep);
	fx_done(&f, t);
}

static void write_2(void *arg)
{
	Fx *f = arg;
	PendingTxn *t = make_txn(2, "FIX-2", 1);
	pending_write(&f->st, PENDING_STAGING, t, NULL);
	pending_txn_free(t);
}

/* A cancelled record frees its number; it is never handed out again: the
 * high-water mark is made durable before the record is written (a crash
 * at any step leaves a mark and records that agree, never a torn mark),
 * kept across store reopens, and a torn or hostile mark is refused by name
 * rather than read as some other number. */
static void test_numbers_monotonic_after_cancel(void)
{
	Fx f;
	PendingTxn *t = fx_setup(&f, 1);
	BaseErr e = { 0 };
	uint64_t n = 0;

	CU_ASSERT_EQUAL(pending_next_number(&f.st, &n, NULL), 0);
	CU_ASSERT_EQUAL(n, 1);
	t->number = n;
	CU_ASSERT_EQUAL(pending_write(&f.st, PENDING_STAGING, t, NULL), 0);
	/* cancel: the record and its staged files go */
	CU_ASSERT_EQUAL(pending_abort(&f.st, t, NULL), 0);
	CU_ASSERT_EQUAL(count_state(&f, PENDING_STAGING), 0);
	CU_ASSERT_EQUAL(pending_next_number(&f.st, &n, NULL), 0);
	CU_ASSERT_EQUAL(n, 2);

	/* a crash at every step of writing record 2: afterwards 2 is free
	 * (nothing written) or spent (mark or record), never handed out twice */
	int crashes = 0, c;
	for (long step = 1;; step++) {
		uint64_t after = 0;
		/* each time from the same start: mark 1, no record 2 */
		fx_write(&f, "var/lib/svc/txn-high", "1\n");
		test_sh("cd %s/var/lib/svc && rm -f staging/0000000002.txn staging/.0000000002.txn.tmp "
			".txn-high.tmp", f.dir);
		if ((c = test_crash_at(step, write_2, &f)) != 1)
			break;
		crashes++;
		CU_ASSERT_EQUAL(pending_next_number(&f.st, &after, NULL), 0);
		CU_ASSERT(after == 2 || after == 3);
		if (count_state(&f, PENDING_STAGING))
			CU_ASSERT_EQUAL(after, 3);
	}
	CU_ASSERT_EQUAL(c, 0);
	CU_ASSERT(crashes >= 8);   /* mark and record: temp write, fsync, rename, dir fsync */
	CU_ASSERT_EQUAL(count_state(&f, PENDING_STAGING), 1);

	/* reopened (a new svc run): still past every number handed out */
	pending_store_close(&f.st);
	CU_ASSERT_EQUAL(pending_store_open(f.rootfd, &f.st, NULL), 0);
	CU_ASSERT_EQUAL(pending_next_number(&f.st, &n, NULL), 0);
	CU_ASSERT_EQUAL(n, 3);
	/* a record above the mark (written by an older svc) still counts */
	t->number = 7;
	CU_ASSERT_EQUAL(base_fs_write_atomic(f.st.dirfd[PENDING_APPLIED], "0000000007.txn", "x", 1,
					     0644), 0);
	CU_ASSERT_EQUAL(pending_next_number(&f.st, &n, NULL), 0);
	CU_ASSERT_EQUAL(n, 8);

	/* one spelling: anything but "N\n" is refused by name, and so is a
	 * write then (nothing written) */
	const char *bad[] = { "", "x\n", " 5\n", "-1\n", "05\n", "5", "99999999999999999999\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fx_write(&f, "var/lib/svc/txn-high", bad[i]);
		base_err_clear(&e);
		CU_ASSERT_EQUAL(pending_next_number(&f.st, &n, &e), -EBADMSG);
		CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "var/lib/svc/txn-high"));
	}
	t->number = 9;
	CU_ASSERT_EQUAL(pending_write(&f.st, PENDING_STAGING, t, NULL), -EBADMSG);
	CU_ASSERT_EQUAL(count_state(&f, PENDING_STAGING), 1);
	fx_write(&f, "var/lib/svc/txn-high", "41\n");
	CU_ASSERT_EQUAL(pending_next_number(&f.st, &n, NULL), 0);
	CU_ASSERT_EQUAL(n, 42);
	fx_done(&f, t);
}

int test_register(void)
{
	CU_pSuite s = CU_add_suite("pending", NULL, NULL);
	if (!s)
		return -1;
	CU_add_test(s, "record formats and parses back identically", test_record_round_trip);
	CU_add_test(s, "torn or edited record is refused", test_record_torn_or_edited_is_refused);
	CU_add_test(s, "record parse accepts the canonical spelling only",
		    test_record_parse_accepts_canonical_only);
	CU_add_test(s, "record with .. or / in names is refused", test_record_rejects_bad_names);
	CU_add_test(s, "record naming a file twice is refused", test_record_rejects_a_file_named_twice);
	CU_add_test(s, "apply swaps every file and keeps backups", test_apply_swaps_all_and_keeps_backups);
	CU_add_test(s, "conflict quarantines and undoes earlier swaps", test_conflict_quarantines_and_undoes);
	CU_add_test(s, "abort removes staged files, never backups", test_abort_removes_staged_only);
	CU_add_test(s, "replay quarantines a torn record", test_replay_quarantines_torn_record);
	CU_add_test(s, "a quarantined unreadable record's staged file is removed",
		    test_quarantined_unreadable_record_drops_its_staged_file);
	CU_add_test(s, "replay survives a crash at every step", test_replay_crash_at_every_step);
	CU_add_test(s, "transaction numbers never reuse a cancelled record's, crash-safe",
		    test_numbers_monotonic_after_cancel);
	CU_add_test(s, "replay gives up after three boot attempts, all old", test_replay_gives_up_after_three_attempts);
	return 0;
}
