/* The behaviour GHSA-5qpq-xqfv-j9pg fixes in liblzma (Debian's
 * xz-utils 5.4.1-1+deb12u2): a .lzma decoder whose dictionary allocation
 * failed keeps the old dictionary size with no buffer, so decoding again
 * with that size skips the allocation and writes through a NULL dictionary.
 *
 * Every PERIOD ms a child process, forked so that a crash is only counted:
 * decodes a .lzma stream (64 KiB dictionary), re-initialises the same
 * lzma_stream for a header asking 1 MiB while the allocator refuses that
 * size (LZMA_MEM_ERROR, as asked), then decodes the first stream again.
 * The parent prints "reinit ok" when the child decoded it, "reinit BAD" when
 * the child was killed or decoded wrong. */
#include <lzma.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DICT_A (64u << 10)
#define DICT_B (1u << 20)

static void *alloc(void *opaque, size_t nmemb, size_t size)
{
	(void)opaque;
	return nmemb * size == DICT_B ? NULL : malloc(nmemb * size);
}

static void release(void *opaque, void *p)
{
	(void)opaque;
	free(p);
}

static const lzma_allocator refusing = { alloc, release, NULL };

static uint8_t plain[4096], packed[8192];
static size_t packed_len;

/* Decode in through strm (initialised for .lzma); 0 when it gives plain. */
static int decode(lzma_stream *strm, const uint8_t *in, size_t len)
{
	static uint8_t out[sizeof(plain)];
	if (lzma_alone_decoder(strm, UINT64_MAX) != LZMA_OK)
		return -1;
	strm->next_in = in;
	strm->avail_in = len;
	strm->next_out = out;
	strm->avail_out = sizeof(out);
	lzma_ret r = lzma_code(strm, LZMA_FINISH);
	if (r != LZMA_STREAM_END)
		return (int)r;
	return strm->total_out == sizeof(plain) && memcmp(out, plain, sizeof(plain)) == 0 ? 0 : -2;
}

static int child(void)
{
	lzma_stream strm = LZMA_STREAM_INIT;
	uint8_t big[sizeof(packed)];
	strm.allocator = &refusing;
	if (decode(&strm, packed, packed_len) != 0)
		return 3;
	memcpy(big, packed, packed_len);
	big[1] = DICT_B & 0xff; big[2] = (DICT_B >> 8) & 0xff;
	big[3] = (DICT_B >> 16) & 0xff; big[4] = (DICT_B >> 24) & 0xff;
	if (decode(&strm, big, packed_len) != LZMA_MEM_ERROR)
		return 4;
	return decode(&strm, packed, packed_len) == 0 ? 0 : 5;
}

int main(int argc, char **argv)
{
	int period = argc > 1 ? atoi(argv[1]) : 50;
	lzma_options_lzma opt;
	lzma_stream enc = LZMA_STREAM_INIT;
	for (size_t i = 0; i < sizeof(plain); i++)
		plain[i] = (uint8_t)("svc lzma reinit "[i % 16] ^ (i / 64));
	if (lzma_lzma_preset(&opt, 1))
		return 1;
	opt.dict_size = DICT_A;
	if (lzma_alone_encoder(&enc, &opt) != LZMA_OK)
		return 1;
	enc.next_in = plain;
	enc.avail_in = sizeof(plain);
	enc.next_out = packed;
	enc.avail_out = sizeof(packed);
	if (lzma_code(&enc, LZMA_FINISH) != LZMA_STREAM_END)
		return 1;
	packed_len = enc.total_out;
	lzma_end(&enc);
	for (unsigned long round = 1;; round++) {
		int status = 0;
		pid_t pid = fork();
		if (pid == 0)
			_exit(child());
		if (pid < 0 || waitpid(pid, &status, 0) != pid)
			return 2;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			printf("round %lu reinit ok\n", round);
		else if (WIFSIGNALED(status))
			printf("round %lu reinit BAD (killed by signal %d)\n", round, WTERMSIG(status));
		else
			printf("round %lu reinit BAD (exit %d)\n", round, WEXITSTATUS(status));
		fflush(stdout);
		usleep((useconds_t)period * 1000);
	}
}
