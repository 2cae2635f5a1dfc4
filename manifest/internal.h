/* manifest — private declarations shared by the files of this directory.
 * text.c: manifest and signature-file text; sign.c: mbedTLS; tar.c: tar
 * headers; archive.c: the package archive stream (tar over gzip); gzip.c:
 * zlib; package.c: pack/open orchestration.  Format: docs/format-package.md. */
#ifndef SVC_MANIFEST_INTERNAL_H
#define SVC_MANIFEST_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/base.h"
#include "manifest/manifest.h"

#define MANIFEST_NAME      "manifest"
#define MANIFEST_SIG_NAME  "manifest.sig"

#define MANIFEST_MAX_TEXT      (1u << 20)  /* bytes of the manifest member */
#define MANIFEST_MAX_SIGTEXT   4096        /* bytes of manifest.sig */
#define MANIFEST_MAX_SIG_DER   160         /* DER ECDSA P-256 is at most 72 */
#define MANIFEST_MAX_NAME      255         /* member name, bytes */
/* target paths and id/series: BASE_PATH_MAX and BASE_ID_MAX (base/valid.c) */
#define MANIFEST_MAX_SUMMARY   1024
#define MANIFEST_MAX_KEYFILE   (64u << 10)

/* ---- text.c ---- */

/* Name/path rules, shared with the archive reader (0 or -EBADMSG, *why set). */
int manifest_check_member_name(const char *name, const char **why);
int manifest_check_target_path(const char *path, const char **why);

/* Whole-package consistency, by a format+parse round (so exactly the rules
 * parse enforces): used by pack before signing.  Messages prefixed by `what`. */
int manifest_check(const ManifestPackage *pkg, const char *what, BaseErr *e);

/* manifest_parse with the message prefix `what` (e.g. "PKG: manifest"). */
int manifest_parse_named(const char *text, size_t len, const char *what,
			 ManifestPackage **ret_pkg, BaseErr *e);

/* The signature file: key id (hex) and DER signature. */
int manifest_sigfile_format(const char key_id[BASE_SHA256_HEX], const uint8_t *der,
			    size_t der_len, BaseBuf *out);
int manifest_sigfile_parse(const char *text, size_t len, const char *what,
			   char ret_key_id[BASE_SHA256_HEX], uint8_t *ret_der,
			   size_t *ret_der_len, BaseErr *e);

/* Sorted index of members by name (malloc'ed array of n indices). */
int manifest_member_order(const ManifestMember *m, size_t n, size_t **ret_order);

/* ---- sign.c (mbedTLS) ---- */

/* Sign msg with the PEM private key in keyfile; returns the signature file text. */
int manifest_sign(const char *keyfile, const uint8_t *msg, size_t len, BaseBuf *ret_sigtext,
		  BaseErr *e);
/* Verify sigtext over msg against trustdir/ *.pub.  -ENOKEY: no trusted key
 * has that id; -EKEYREJECTED: it has, and the signature does not verify. */
int manifest_verify(const char *trustdir, const uint8_t *msg, size_t len,
		    const uint8_t *sigtext, size_t siglen, const char *what,
		    char ret_key_id[BASE_SHA256_HEX], BaseErr *e);

/* ---- tar.c (tar headers, no I/O) ---- */

#define MANIFEST_TAR_BLOCK    512
#define MANIFEST_TAR_PAX_MAX  4096   /* bytes of a pax extended header */
#define MANIFEST_TAR_WHY      160    /* room for a refusal's reason */

typedef enum ManifestTarKind {
	MANIFEST_TAR_ZERO,      /* a zero block: the end-of-archive marker */
	MANIFEST_TAR_FILE,      /* a regular file (typeflag '0' or NUL) */
	MANIFEST_TAR_PAX,       /* a pax extended header for the next entry */
} ManifestTarKind;

typedef struct ManifestTarHeader {
	ManifestTarKind kind;
	char name[MANIFEST_TAR_BLOCK];   /* prefix/name as the header spells it */
	uint64_t size;                   /* of the data that follows, unpadded */
} ManifestTarHeader;

/* Decode one header block (every field checked; docs/format-package.md §1):
 * 0, or -EBADMSG with the reason in why (h->name set once the checksum
 * passed, so the caller can name the entry). */
int manifest_tar_header_parse(const uint8_t b[MANIFEST_TAR_BLOCK], ManifestTarHeader *h,
			      char why[MANIFEST_TAR_WHY]);
/* Decode a pax extended header's records: path (empty if none), or -EBADMSG. */
int manifest_tar_pax_parse(const uint8_t *p, size_t n, char path[MANIFEST_MAX_NAME + 1],
			   char why[MANIFEST_TAR_WHY]);
/* Append members, in the given order, as a tar archive with its
 * end-of-archive marker (deterministic: fixed mode/owner/mtime). */
int manifest_tar_write(const ManifestMember *m, size_t n, BaseBuf *out);

/* ---- archive.c (the package archive: tar.c over gzip.c) ---- */

/* A package archive read as a stream, one entry at a time, so the caller
 * decides what an entry may cost before its data is read (docs/
 * format-package.md §5).  Every entry is checked as it comes (regular file,
 * valid name, no duplicate within the first MANIFEST_MAX_MEMBERS + 2). */
typedef struct ManifestArchive ManifestArchive;
int manifest_archive_open(const char *path, ManifestArchive **ret, BaseErr *e);
/* The next entry: 1 with its name and size; 0 at the end of the archive
 * (after checking the end-of-archive marker, zero padding and the gzip
 * trailer); negative on error. */
int manifest_archive_next(ManifestArchive *a, const char **ret_name, uint64_t *ret_size,
			  BaseErr *e);
/* The current entry's data (exactly its size, malloc'ed). */
int manifest_archive_data(ManifestArchive *a, uint8_t **ret, BaseErr *e);
void manifest_archive_close(ManifestArchive *a);

/* Write members, in the given order, as tar.gz into out (deterministic
 * bytes: fixed mtime/owner/mode, no gzip timestamp). */
int manifest_archive_write(const ManifestMember *members, size_t n, BaseBuf *out,
			   const char *what, BaseErr *e);

/* ---- gzip.c (zlib) ---- */

/* One gzip member read from fd as a stream of inflated chunks; it must end
 * where the file ends; at most max bytes of output.  (Opaque: only gzip.c
 * sees zlib.) */
typedef struct ManifestGunzip ManifestGunzip;
int manifest_gunzip_open(int fd, uint64_t max, const char *what, ManifestGunzip **ret,
			 BaseErr *e);
/* The next chunk (valid until the next call): its length, 0 at the end of
 * the stream (trailer checked, nothing after it), negative on error. */
ssize_t manifest_gunzip_read(ManifestGunzip *g, const uint8_t **ret, BaseErr *e);
/* The same into the caller's buffer (at most cap bytes). */
ssize_t manifest_gunzip_read_into(ManifestGunzip *g, uint8_t *dst, size_t cap, BaseErr *e);
void manifest_gunzip_free(ManifestGunzip *g);
/* Compress data as one gzip member into out: zlib's default level, no
 * name, MTIME 0, OS 3 (the bytes libarchive's gzip filter wrote). */
int manifest_gzip(const uint8_t *data, size_t len, BaseBuf *out);

void manifest_members_free(ManifestMember *m, size_t n);

#endif
