/* Waiting for one traced thread, asleep, with a deadline.
 *
 * A blocked waitpid() is woken by the kernel the moment the thread stops:
 * no polling period is added to any round trip, and under CPU load the
 * tracer takes no time slice from the tracee it waits for (a polling loop
 * that yields hands the CPU to a busy task for a whole slice; measured with
 * make bench, 2 busy loops: the stop of an idle process took 3.5 ms with
 * the polling loop this replaces, against 0.45 ms for a bare blocking stop).
 *
 * The deadline is a POSIX timer of this thread (SIGEV_THREAD_ID) that sends
 * HP_WAIT_SIG, whose handler does nothing and is installed without
 * SA_RESTART: the signal only interrupts the waitpid.  After the deadline
 * it repeats every 2 ms, so a signal that lands just before waitpid is
 * entered cannot leave it blocked.  The timer is deleted before returning:
 * no signal of ours reaches the rest of the program.  This is the one
 * signal the library takes (hotpatch.h says so).  Should the timer not be
 * available, short sleeps bound the wait instead. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hotpatch/internal.h"

static void on_deadline(int sig)
{
	(void)sig;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool handler_ok;

static void install(void)
{
	struct sigaction sa = { .sa_handler = on_deadline };   /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	handler_ok = sigaction(HP_WAIT_SIG, &sa, NULL) == 0;
}

static struct timespec ts_of(uint64_t ns)
{
	return (struct timespec){ (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
}

/* Without a timer: sleep in short steps until the deadline. */
static int wait_sleeping(pid_t tid, int *status, uint64_t deadline)
{
	for (;;) {
		pid_t w = waitpid(tid, status, __WALL | WNOHANG);
		if (w == tid)
			return 0;
		if (w < 0 && errno != EINTR)
			return -errno;
		if (base_now_ns() > deadline)
			return -ETIMEDOUT;
		nanosleep(&(struct timespec){ 0, 50000 }, NULL);
	}
}

int hp_wait_tid(pid_t tid, int *status, uint64_t deadline)
{
	pid_t w = waitpid(tid, status, __WALL | WNOHANG);
	if (w == tid)
		return 0;
	if (w < 0 && errno != EINTR)
		return -errno;
	pthread_once(&once, install);
	timer_t tm;
	struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = HP_WAIT_SIG };
	sev._sigev_un._tid = gettid();
	if (!handler_ok || timer_create(CLOCK_MONOTONIC, &sev, &tm) < 0)
		return wait_sleeping(tid, status, deadline);
	struct itimerspec its = { .it_value = ts_of(deadline ? deadline : 1),
				  .it_interval = { 0, 2000000 } };
	if (timer_settime(tm, TIMER_ABSTIME, &its, NULL) < 0) {
		timer_delete(tm);
		return wait_sleeping(tid, status, deadline);
	}
	int r = 0;
	for (;;) {
		w = waitpid(tid, status, __WALL);
		if (w == tid)
			break;
		if (w < 0 && errno != EINTR) {
			r = -errno;
			break;
		}
		if (base_now_ns() >= deadline) {
			/* one last look: it may have stopped with the signal */
			w = waitpid(tid, status, __WALL | WNOHANG);
			r = w == tid ? 0 : -ETIMEDOUT;
			break;
		}
	}
	timer_delete(tm);
	return r;
}
