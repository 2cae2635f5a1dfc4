/* The engine context: the root, the record store, the transaction lock. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "svc/internal.h"

int svc_open(const SvcOptions *opt, Svc **ret, BaseErr *e)
{
	const char *root = opt && opt->root ? opt->root : "/";
	Svc *s = calloc(1, sizeof(*s));
	char real[4096];
	int r;

	if (!s)
		return -ENOMEM;
	s->lockfd = -1;
	s->wait_lock_ms = opt ? opt->wait_lock_ms : 0;
	s->progress = opt ? opt->progress : NULL;
	s->progress_ctx = opt ? opt->progress_ctx : NULL;
	s->read_only = opt ? opt->read_only : 0;
	s->rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->rootfd < 0) {
		r = base_err(e, -errno, "%s: cannot open root: %s", root, strerror(errno));
		free(s);
		return r;
	}
	if (!realpath(root, real)) {
		r = base_err(e, -errno, "%s: %s", root, strerror(errno));
		close(s->rootfd);
		free(s);
		return r;
	}
	s->root = strdup(root);
	s->root_real = strdup(strcmp(real, "/") == 0 ? "" : real);
	for (int i = 0; i < PENDING_N_STATES; i++)
		s->store.dirfd[i] = -1;
	r = s->read_only ? pending_store_open_existing(s->rootfd, &s->store, e)
			 : pending_store_open(s->rootfd, &s->store, e);
	if (r < 0 || !s->root || !s->root_real) {
		svc_close(s);
		return r < 0 ? r : -ENOMEM;
	}
	*ret = s;
	return 0;
}

void svc_close(Svc *s)
{
	if (!s)
		return;
	pending_store_close(&s->store);
	if (s->lockfd >= 0)
		close(s->lockfd); /* releases the flock */
	close(s->rootfd);
	free(s->root);
	free(s->root_real);
	free(s);
}

int svc_lock(Svc *s, BaseErr *e)
{
	_cleanup_close_ int dfd = -1;
	int fd = -1, r;

	if (s->lockfd >= 0)
		return 0;
	if (s->read_only)
		return base_err(e, -EROFS, "%s: opened read-only (a dry run changes nothing)",
				s->root);
	r = base_fs_open_dir(s->rootfd, "var/lib/svc", &dfd);
	if (r >= 0)
		fd = openat(dfd, "lock", O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (r >= 0 && fd < 0 && errno == ENOENT)
		r = base_fs_openat(dfd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW, 0644, &fd);
	else if (r >= 0 && fd < 0)
		r = -errno;
	if (r < 0)
		return base_err(e, r, "%s/var/lib/svc/lock: %s", s->root_real, base_strerror(r));
	for (int waited = 0;; waited += 50) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			break;
		if (errno != EWOULDBLOCK || waited >= s->wait_lock_ms) {
			close(fd);
			return base_err(e, -EBUSY, "%s/var/lib/svc/lock: %s", s->root_real,
					base_strerror(-EBUSY));
		}
		nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000000 }, NULL);
	}
	s->lockfd = fd;
	/* an install or cancel interrupted before its commit point leaves a
	 * staging record: clear it before anything else reads the ledger */
	return pending_recover(&s->store, e);
}

int svc_txn_begin(Svc *s, unsigned flags, SvcReport *rep, BaseErr *e)
{
	int r = 0;
	/* a dry run takes no lock: it reads, and says what a run would do now */
	s->dry_run = (flags & SVC_DRY_RUN) != 0;
	rep->dry_run = s->dry_run;
	if (!s->dry_run)
		r = svc_lock(s, e);
	if (r >= 0)
		r = svc_proc_check(e);
	return r;
}
