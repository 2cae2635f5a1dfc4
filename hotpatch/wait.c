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
 * entered cannot leave it blocked.  The timer is disarmed before returning
 * (and deleted when its thread ends): no signal of ours is sent to the
 * rest of the program.  This is the one
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

/* One timer per waiting thread, made at its first blocking wait and kept
 * (armed for a wait, disarmed after it): two system calls per wait instead
 * of four.  Deleted when the thread ends; a child of fork() has no timers
 * (the atfork handler forgets the forking thread's). */
typedef struct Waiter {
	timer_t tm;
	bool made;
} Waiter;

static __thread Waiter waiter;
static pthread_key_t waiter_key;
static bool key_ok;

static void waiter_end(void *arg)
{
	Waiter *w = arg;
	if (w->made)
		timer_delete(w->tm);
	w->made = false;
}

static void forget_in_child(void)
{
	waiter.made = false;
}

static void install(void)
{
	struct sigaction sa = { .sa_handler = on_deadline };   /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	handler_ok = sigaction(HP_WAIT_SIG, &sa, NULL) == 0;
	key_ok = pthread_key_create(&waiter_key, waiter_end) == 0 &&
		 pthread_atfork(NULL, NULL, forget_in_child) == 0;
}

static bool waiter_arm(uint64_t deadline)
{
	pthread_once(&once, install);
	if (!handler_ok || !key_ok)
		return false;
	if (!waiter.made) {
		struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID,
					.sigev_signo = HP_WAIT_SIG };
		sev._sigev_un._tid = gettid();
		if (timer_create(CLOCK_MONOTONIC, &sev, &waiter.tm) < 0)
			return false;
		waiter.made = true;
		(void)pthread_setspecific(waiter_key, &waiter);
	}
	struct itimerspec its = { .it_value = ts_of(deadline ? deadline : 1),
				  .it_interval = { 0, 2000000 } };
	return timer_settime(waiter.tm, TIMER_ABSTIME, &its, NULL) == 0;
}

static void waiter_disarm(void)
{
	struct itimerspec off = { 0 };
	(void)timer_settime(waiter.tm, 0, &off, NULL);
}

int hp_wait_tid(pid_t tid, int *status, uint64_t deadline)
{
	pid_t w = waitpid(tid, status, __WALL | WNOHANG);
	if (w == tid)
		return 0;
	if (w < 0 && errno != EINTR)
		return -errno;
	if (!waiter_arm(deadline))
		return wait_sleeping(tid, status, deadline);
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
	waiter_disarm();
	return r;
}
