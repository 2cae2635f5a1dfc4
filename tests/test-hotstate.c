/* hotpatch state reader against hostile processes: the `svc-hotpatch`
 * mapping is read from another process's memory, so each test starts a real
 * child that publishes a malformed mapping of its own making (the layout is
 * spelled out here byte by byte, as an attacker would) and checks that the
 * reader refuses it, and that one such process does not hide the others. */
#include <CUnit/CUnit.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hotpatch/hotpatch.h"
#include "svc/svc.h"
#include "tests/testlib.h"

/* The header as a hostile process writes it (docs/hotpatch.md). */
struct hostile_hdr {
	char magic[8];
	uint32_t version, hdr_size;
	uint64_t capacity, used;
	uint32_t n_records, reserved;
	char name[32];
};

struct hostile_rec {
	uint32_t rec_size, status;
	char fix_id[64];
	uint64_t blob, blob_size, bias;
	uint32_t n_sites, flags;
};

/* Start a child holding a memfd "svc-hotpatch" mapping with hdr (and rec
 * after it, if given); the child waits to be killed. */
static pid_t publish(const struct hostile_hdr *hdr, const struct hostile_rec *rec)
{
	int ready[2];
	if (pipe(ready) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		int fd = memfd_create("svc-hotpatch", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, 1 << 20) < 0)
			_exit(1);
		if (pwrite(fd, hdr, sizeof(*hdr), 0) != (ssize_t)sizeof(*hdr))
			_exit(1);
		if (rec && pwrite(fd, rec, sizeof(*rec), sizeof(*hdr)) != (ssize_t)sizeof(*rec))
			_exit(1);
		if (mmap(NULL, 1 << 20, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED)
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	char c;
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1)
		pid = -1;
	close(ready[0]);
	return pid;
}

static void stop(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

static struct hostile_hdr good_hdr(void)
{
	struct hostile_hdr h;
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, "SVCHPST1", 8);
	h.version = 1;
	h.hdr_size = sizeof(h);
	h.capacity = 1 << 20;
	strcpy(h.name, "svc-hotpatch");
	return h;
}

static int list_one(pid_t pid)
{
	HpState *st = NULL;
	BaseErr e = { 0 };
	int r = hp_list(pid, &st, &e);
	hp_state_free(st);
	return r;
}

static void test_state_with_capacity_below_header_is_refused(void)
{
	struct hostile_hdr h = good_hdr();
	h.capacity = 16;          /* capacity - header would wrap */
	h.used = 1 << 19;
	pid_t pid = publish(&h, NULL);
	CU_ASSERT_FATAL(pid > 0);
	CU_ASSERT_EQUAL(list_one(pid), -EBADMSG);
	stop(pid);
}

static void test_state_with_count_beyond_size_is_refused(void)
{
	struct hostile_hdr h = good_hdr();
	h.used = 100;
	h.n_records = 0xffffffffu; /* would size a 4-billion-entry allocation */
	pid_t pid = publish(&h, NULL);
	CU_ASSERT_FATAL(pid > 0);
	CU_ASSERT_EQUAL(list_one(pid), -EBADMSG);
	stop(pid);
}

static void test_state_record_with_control_bytes_in_id_is_refused(void)
{
	struct hostile_hdr h = good_hdr();
	struct hostile_rec rec;
	memset(&rec, 0, sizeof(rec));
	rec.rec_size = sizeof(rec);
	rec.status = 2;
	strcpy(rec.fix_id, "FIX\x1b[2J");
	h.used = sizeof(rec);
	h.n_records = 1;
	pid_t pid = publish(&h, &rec);
	CU_ASSERT_FATAL(pid > 0);
	CU_ASSERT_EQUAL(list_one(pid), -EBADMSG);
	stop(pid);
}

/* One hostile process is reported as unknown; the others are still listed. */
static void test_one_hostile_process_does_not_fail_list_for_all(void)
{
	struct hostile_hdr h = good_hdr();
	h.capacity = 8;
	pid_t bad = publish(&h, NULL);
	struct hostile_hdr ok = good_hdr();
	pid_t good = publish(&ok, NULL);
	CU_ASSERT_FATAL(bad > 0 && good > 0);
	pid_t pids[2] = { bad, good };
	HpState **st = NULL;
	size_t n = 0;
	BaseErr e = { 0 };
	CU_ASSERT_EQUAL(svc_hp_list(pids, 2, &st, &n, &e), 0);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_PTR_NOT_NULL(st[0]->error);
	CU_ASSERT_EQUAL(st[0]->pid, bad);
	CU_ASSERT_PTR_NULL(st[1]->error);
	CU_ASSERT_EQUAL(st[1]->n_fixes, 0);
	for (size_t i = 0; i < n; i++)
		hp_state_free(st[i]);
	free(st);
	stop(bad);
	stop(good);
}

int test_register(void)
{
	CU_pSuite s = CU_add_suite("hotstate", NULL, NULL);
	if (!s)
		return -1;
	CU_add_test(s, "state with capacity below its header is refused",
		    test_state_with_capacity_below_header_is_refused);
	CU_add_test(s, "state with a record count beyond its size is refused",
		    test_state_with_count_beyond_size_is_refused);
	CU_add_test(s, "state record with control bytes in its id is refused",
		    test_state_record_with_control_bytes_in_id_is_refused);
	CU_add_test(s, "one hostile process does not fail hotpatch list for all",
		    test_one_hostile_process_does_not_fail_list_for_all);
	return 0;
}
