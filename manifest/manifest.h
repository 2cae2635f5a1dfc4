/* manifest — the hotfix package format (*.hfx): a tar.gz archive (svc's own
 * tar reader and writer over zlib) holding a text `manifest`, its detached
 * signature `manifest.sig` (ECDSA P-256 over SHA-256, mbedTLS) and the
 * payload members.  The manifest names every member with its SHA-256, so the
 * one signature covers all of them.
 * Byte-level format: docs/format-package.md. */
#ifndef SVC_MANIFEST_H
#define SVC_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

#define MANIFEST_MAX_PACKAGE  (256u << 20)  /* bytes of the whole archive, unpacked */
#define MANIFEST_MAX_MEMBERS  256
#define MANIFEST_MAX_TARGETS  64

typedef struct ManifestMember {
	char *name;                          /* relative, no "..", no leading "/" */
	uint8_t *data;
	size_t len;
	uint8_t sha256[BASE_SHA256_LEN];
} ManifestMember;

typedef struct ManifestTarget {
	char *path;                          /* absolute path on the serviced system */
	uint8_t base_sha256[BASE_SHA256_LEN];/* the file this fix applies to */
	uint8_t new_sha256[BASE_SHA256_LEN]; /* the coldpatch: the file after the fix */
	uint32_t mode;                       /* permission bits of the new file (07777) */
	char *cold_member;                   /* member holding the whole coldpatch, or NULL
					      * (then synthesized from base + payload) */
	char *payload_member;                /* member holding the hotpatch payload, or NULL
					      * (cold-only target) */
} ManifestTarget;

typedef struct ManifestPackage {
	char *id;                            /* package id, e.g. "FIX-0001" */
	char *series;                        /* anti-rollback series */
	uint64_t sequence;                   /* strictly increasing within a series */
	char *summary;                       /* one line, may be NULL */
	size_t n_targets;
	ManifestTarget *targets;
	size_t n_members;
	ManifestMember *members;
	char key_id[BASE_SHA256_HEX];        /* hex SHA-256 of the signer's public key (DER) */
} ManifestPackage;

/* Key management.  PREFIX.key (PEM, mode 0600) and PREFIX.pub (PEM). */
int manifest_keygen(const char *prefix, BaseErr *e);

/* Build, sign and write a package.  pkg->members carry the data; their
 * sha256 fields are computed here; key_id is ignored.  The output is
 * written atomically (temp + fsync + rename). */
int manifest_pack(const ManifestPackage *pkg, const char *keyfile, const char *out,
		  BaseErr *e);

/* Read and verify a package: archive sane (regular members only, no "..",
 * no absolute names, no duplicates, bounded sizes), signature valid for a
 * key in trustdir (*.pub), manifest well-formed, every member listed and
 * matching its hash, no member unlisted.  Errors: -EBADMSG corrupt/truncated,
 * -ENOKEY untrusted signer, -EKEYREJECTED bad signature. */
int manifest_open(const char *path, const char *trustdir, ManifestPackage **ret_pkg,
		  BaseErr *e);

/* The same checks except the signature, for showing a package (svc
 * inspect), never for installing one: key_id is left empty. */
int manifest_open_unverified(const char *path, ManifestPackage **ret_pkg, BaseErr *e);

/* The manifest text alone (no signature check): parse and format. */
int manifest_parse(const char *text, size_t len, ManifestPackage **ret_pkg, BaseErr *e);
int manifest_format(const ManifestPackage *pkg, BaseBuf *out);

const ManifestMember *manifest_member(const ManifestPackage *pkg, const char *name);
void manifest_free(ManifestPackage *pkg);

#endif
