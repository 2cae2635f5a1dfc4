/* bench-redirect's victim: calls step_pad() and step_plain() (libstep.so,
 * through the PLT as any caller of a shared library) in a loop, switching
 * function every window, and prints one line per window:
 *     pad|plain CALLS_PER_SECOND VALUE
 * VALUE is the function's result for x = 1000: it shows which version ran.
 * usage: stepper WINDOW_MS */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int step_pad(int x);
int step_plain(int x);

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double window = (argc > 1 ? atoi(argv[1]) : 50) / 1000.0;
	volatile int sink = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (unsigned w = 0;; w++) {
		int plain = w % 2;
		unsigned long n = 0;
		double t0 = now(), t1;
		do {
			if (plain)
				for (int i = 0; i < 4096; i++)
					sink = step_plain(i);
			else
				for (int i = 0; i < 4096; i++)
					sink = step_pad(i);
			n += 4096;
		} while ((t1 = now()) - t0 < window);
		printf("%s %.0f %d\n", plain ? "plain" : "pad", n / (t1 - t0),
		       plain ? step_plain(1000) : step_pad(1000));
	}
}
