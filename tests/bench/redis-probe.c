/* bench-redis's client: GET requests to a redis server, one after the
 * other, on 127.0.0.1:PORT, reconnecting whenever the server goes away, and
 * the longest time the client waited for an answer.
 *
 * usage: redis-probe PORT KEYS
 *   requests GET key:N (N cycling over 0..KEYS-1, DEBUG POPULATE's names);
 *   an answer is a bulk string or nil; an error (-LOADING while the dataset
 *   loads), a refused connection or a closed one is no answer.
 * On SIGUSR1 it prints, for the time since the previous SIGUSR1:
 *   answers LONGEST_GAP_US P99_US
 * where the gap is the time between two answers (what a client sees as a
 * stall: a restart's whole downtime, a live patch's pause) and p99 is the
 * latency of the answered requests.  SIGTERM ends it. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t report, stop;

static void on_usr1(int sig) { (void)sig; report = 1; }
static void on_term(int sig) { (void)sig; stop = 1; }

static long long now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}

static int connect_to(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* reads one reply; 1 = an answer (bulk or nil), 0 = an error reply, -1 = connection lost */
static int read_reply(int fd, char *buf, size_t cap)
{
	size_t have = 0;
	char *eol = NULL;
	while (!eol) {
		ssize_t n = read(fd, buf + have, cap - have - 1);
		if (n <= 0)
			return -1;
		have += n;
		buf[have] = 0;
		eol = strstr(buf, "\r\n");
	}
	if (buf[0] == '-')
		return 0;
	if (buf[0] != '$')
		return -1;
	long len = atol(buf + 1);
	if (len < 0)
		return 1;
	size_t need = (eol - buf) + 2 + len + 2;
	if (need >= cap)
		return -1;
	while (have < need) {
		ssize_t n = read(fd, buf + have, cap - have - 1);
		if (n <= 0)
			return -1;
		have += n;
	}
	return 1;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: redis-probe PORT KEYS\n");
		return 2;
	}
	int port = atoi(argv[1]);
	long keys = atol(argv[2]);
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);

	static char buf[1 << 16];
	size_t cap = 1 << 20, n = 0;
	long long *lat = malloc(cap * sizeof(*lat));
	long long last_answer = now_us(), max_gap = 0;
	int fd = -1;
	printf("ready\n");
	for (long k = 0; !stop; k = (k + 1) % keys) {
		if (report) {
			report = 0;
			qsort(lat, n, sizeof(*lat), cmp_ll);
			printf("%zu %lld %lld\n", n, max_gap, n ? lat[(n * 99) / 100] : 0);
			n = 0;
			max_gap = 0;
		}
		if (fd < 0 && (fd = connect_to(port)) < 0) {
			usleep(500);
			continue;
		}
		char req[64];
		int len = snprintf(req, sizeof(req), "GET key:%ld\r\n", k);
		long long t0 = now_us();
		if (write(fd, req, len) != len) {
			close(fd);
			fd = -1;
			continue;
		}
		int r = read_reply(fd, buf, sizeof(buf));
		long long t1 = now_us();
		if (r < 0) {
			close(fd);
			fd = -1;
			continue;
		}
		if (r == 0) {
			usleep(500);   /* -LOADING: ask again soon */
			continue;
		}
		if (t1 - last_answer > max_gap)
			max_gap = t1 - last_answer;
		last_answer = t1;
		if (n < cap)
			lat[n++] = t1 - t0;
	}
	return 0;
}
