/* base — private declarations shared by the files of base/ only. */
#ifndef SVC_BASE_INTERNAL_H
#define SVC_BASE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The power-loss recorder (base/fsrecord.c).  With SVC_POWER_LOG=F set,
 * every durable step that succeeded is appended to F with what a replay
 * needs (paths, inode numbers, written bytes), so a test can rebuild the
 * disk states a power cut could leave (tests/powerloss.c).  Without the
 * variable each hook is one getenv and returns. */
long base_fs_step_count(void);
int base_fs_rec_exists(int dfd, const char *name);
void base_fs_rec_open(int dfd, const char *name, int flags, mode_t mode, int existed, int fd);
void base_fs_rec_write(int fd, const void *buf, size_t len);
void base_fs_rec_fd(const char *op, int fd, unsigned long arg);
void base_fs_rec_path(const char *op, int dfd, const char *name, int flags);
void base_fs_rec_two(const char *op, int odfd, const char *oname, int ndfd, const char *nname);

/* SHA-256 blocks with the x86 SHA extensions (base/sha256ni.c): whether
 * this CPU has them, and the compression of nblocks 64-byte blocks. */
int base_sha256ni_available(void);
void base_sha256ni_blocks(uint32_t h[8], const uint8_t *p, size_t nblocks);

#endif
