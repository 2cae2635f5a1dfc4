/* Signatures and keys: the only file of svc that sees mbedTLS (2.28 API).
 * ECDSA on P-256 over SHA-256.  mbedTLS is built with
 * MBEDTLS_ECDSA_DETERMINISTIC, so mbedtls_pk_sign() computes RFC 6979
 * signatures: the same manifest and key give the same signature bytes, which
 * is what makes two packs of the same inputs byte-identical.  The RNG passed
 * to it only blinds the computation. */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/asn1.h>
#include <mbedtls/asn1write.h>
#include <mbedtls/bignum.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

#include "manifest/internal.h"

/* A PEM private key holds fewer than 300 bytes for P-256. */
#define PEM_BUF 4096

typedef struct Rng {
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
} Rng;

static int rng_init(Rng *rng)
{
	static const char pers[] = "svc-manifest";
	mbedtls_entropy_init(&rng->entropy);
	mbedtls_ctr_drbg_init(&rng->drbg);
	return mbedtls_ctr_drbg_seed(&rng->drbg, mbedtls_entropy_func, &rng->entropy,
				     (const unsigned char *)pers, sizeof(pers) - 1) ? -EIO : 0;
}

static void rng_free(Rng *rng)
{
	mbedtls_ctr_drbg_free(&rng->drbg);
	mbedtls_entropy_free(&rng->entropy);
}

static int is_p256(mbedtls_pk_context *pk)
{
	return mbedtls_pk_get_type(pk) == MBEDTLS_PK_ECKEY &&
	       mbedtls_pk_ec(*pk)->grp.id == MBEDTLS_ECP_DP_SECP256R1;
}

static int pk_key_id(mbedtls_pk_context *pk, char out[BASE_SHA256_HEX])
{
	unsigned char der[512];
	uint8_t sha[BASE_SHA256_LEN];
	/* mbedTLS writes DER at the end of the buffer */
	int n = mbedtls_pk_write_pubkey_der(pk, der, sizeof(der));
	if (n <= 0)
		return -EINVAL;
	if (mbedtls_sha256_ret(der + sizeof(der) - n, (size_t)n, sha, 0) != 0)
		return -EIO;
	base_hex(out, sha, sizeof(sha));
	return 0;
}

/* ---- one spelling per signature ------------------------------------------ */
/*
 * ECDSA signatures are malleable: if (r, s) verifies, so does (r, n - s).  A
 * second valid spelling of one signature lets a package be re-signed without
 * the key (a different file, the same trust), which breaks every "this exact
 * package" argument (caches, logs, the byte-identical packs).  svc accepts
 * only the low-S spelling (s <= n/2, as Bitcoin's BIP 62/146 do) in strict
 * minimal DER, and its signer always emits it.
 */

/* Parse exactly SEQUENCE { INTEGER r, INTEGER s } spanning der[0..len). */
static int sig_der_parse(const uint8_t *der, size_t len, mbedtls_mpi *r, mbedtls_mpi *s)
{
	unsigned char *p = (unsigned char *)der, *end = p + len;
	size_t seq = 0;
	if (mbedtls_asn1_get_tag(&p, end, &seq, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) ||
	    p + seq != end || mbedtls_asn1_get_mpi(&p, end, r) || mbedtls_asn1_get_mpi(&p, end, s) ||
	    p != end)
		return -EKEYREJECTED;
	return 0;
}

/* Minimal DER of (r, s) into out (at most MANIFEST_MAX_SIG_DER bytes). */
static int sig_der_write(const mbedtls_mpi *r, const mbedtls_mpi *s, uint8_t *out,
			 size_t *ret_len)
{
	unsigned char buf[MANIFEST_MAX_SIG_DER], *p = buf + sizeof(buf);
	int n, len = 0;
	if ((n = mbedtls_asn1_write_mpi(&p, buf, s)) < 0)
		return -EINVAL;
	len += n;
	if ((n = mbedtls_asn1_write_mpi(&p, buf, r)) < 0)
		return -EINVAL;
	len += n;
	if ((n = mbedtls_asn1_write_len(&p, buf, (size_t)len)) < 0)
		return -EINVAL;
	len += n;
	if ((n = mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) < 0)
		return -EINVAL;
	len += n;
	memcpy(out, p, (size_t)len);
	*ret_len = (size_t)len;
	return 0;
}

/* 1 if s > n/2 (the high spelling), 0 if not, negative on failure. */
static int s_is_high(mbedtls_pk_context *pk, const mbedtls_mpi *s)
{
	mbedtls_mpi half;
	int r;
	mbedtls_mpi_init(&half);
	r = mbedtls_mpi_copy(&half, &mbedtls_pk_ec(*pk)->grp.N) ||
	    mbedtls_mpi_shift_r(&half, 1) ? -ENOMEM : mbedtls_mpi_cmp_mpi(s, &half) > 0;
	mbedtls_mpi_free(&half);
	return r;
}

/* Rewrite a signature in its one accepted spelling: low S, minimal DER. */
static int sig_canonical(mbedtls_pk_context *pk, uint8_t *der, size_t *len)
{
	mbedtls_mpi r, s;
	int x;
	mbedtls_mpi_init(&r);
	mbedtls_mpi_init(&s);
	x = sig_der_parse(der, *len, &r, &s);
	if (x >= 0)
		x = s_is_high(pk, &s);
	if (x > 0)
		x = mbedtls_mpi_sub_mpi(&s, &mbedtls_pk_ec(*pk)->grp.N, &s) ? -ENOMEM : 0;
	if (x >= 0)
		x = sig_der_write(&r, &s, der, len);
	mbedtls_mpi_free(&r);
	mbedtls_mpi_free(&s);
	return x;
}

/* 0 if der is the one accepted spelling (low S, minimal DER), else
 * -EKEYREJECTED. */
static int sig_check_canonical(mbedtls_pk_context *pk, const uint8_t *der, size_t len)
{
	mbedtls_mpi r, s;
	uint8_t again[MANIFEST_MAX_SIG_DER];
	size_t again_len = 0;
	int x;
	mbedtls_mpi_init(&r);
	mbedtls_mpi_init(&s);
	x = sig_der_parse(der, len, &r, &s);
	if (x >= 0)
		x = s_is_high(pk, &s) != 0 ? -EKEYREJECTED : 0;
	if (x >= 0 && (sig_der_write(&r, &s, again, &again_len) < 0 || again_len != len ||
		       memcmp(again, der, len) != 0))
		x = -EKEYREJECTED;
	mbedtls_mpi_free(&r);
	mbedtls_mpi_free(&s);
	return x;
}

/* mbedTLS parses PEM only when the terminating NUL is counted in the length. */
static int read_pem(int dfd, const char *name, int nofollow, uint8_t **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	uint8_t *buf = NULL;
	size_t len = 0;
	int r = base_fs_open_regular(dfd, name, nofollow ? O_NOFOLLOW : 0, &fd);

	if (r < 0)
		return r;
	r = base_fs_read_fd(fd, MANIFEST_MAX_KEYFILE, &buf, &len);
	if (r < 0)
		return r;
	*ret = buf;   /* base_fs_read_fd leaves a NUL after the data */
	*ret_len = len + 1;
	return 0;
}

static void wipe_free(uint8_t *buf, size_t len)
{
	if (!buf)
		return;
	mbedtls_platform_zeroize(buf, len);
	free(buf);
}

/* ---- sign ----------------------------------------------------------------- */

int manifest_sign(const char *keyfile, const uint8_t *msg, size_t len, BaseBuf *ret_sigtext,
		  BaseErr *e)
{
	mbedtls_pk_context pk;
	Rng rng;
	uint8_t *pem = NULL, hash[BASE_SHA256_LEN];
	unsigned char sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
	size_t pem_len = 0, sig_len = 0;
	char key_id[BASE_SHA256_HEX];
	int r;

	r = read_pem(AT_FDCWD, keyfile, 0, &pem, &pem_len);
	if (r < 0)
		return base_err(e, r, "%s: cannot read private key: %s", keyfile, base_strerror(r));
	mbedtls_pk_init(&pk);
	r = mbedtls_pk_parse_key(&pk, pem, pem_len, NULL, 0);
	wipe_free(pem, pem_len);
	if (r != 0) {
		r = base_err(e, -EINVAL, "%s: not a PEM private key (mbedTLS -0x%04x)", keyfile,
			     (unsigned)-r);
		goto out_pk;
	}
	if (!is_p256(&pk)) {
		r = base_err(e, -EINVAL, "%s: not an ECDSA P-256 key", keyfile);
		goto out_pk;
	}
	r = pk_key_id(&pk, key_id);
	if (r < 0) {
		r = base_err(e, r, "%s: cannot encode the public key", keyfile);
		goto out_pk;
	}
	if (mbedtls_sha256_ret(msg, len, hash, 0) != 0) {
		r = base_err(e, -EIO, "%s: sha256 failed", keyfile);
		goto out_pk;
	}
	r = rng_init(&rng);
	if (r >= 0 && mbedtls_pk_sign(&pk, MBEDTLS_MD_SHA256, hash, sizeof(hash), sig, &sig_len,
				      mbedtls_ctr_drbg_random, &rng.drbg) != 0)
		r = -EIO;
	rng_free(&rng);
	if (r >= 0)
		r = sig_canonical(&pk, sig, &sig_len);
	if (r < 0) {
		r = base_err(e, r, "%s: signing failed", keyfile);
		goto out_pk;
	}
	r = manifest_sigfile_format(key_id, sig, sig_len, ret_sigtext);
	if (r < 0)
		r = base_err(e, r, "%s: out of memory", keyfile);
out_pk:
	mbedtls_pk_free(&pk);
	return r;
}

/* ---- verify --------------------------------------------------------------- */

/* Find the trusted key whose id is key_id.  Files that are not P-256 PEM
 * public keys, or are symlinks, are skipped: they cannot vouch for anything,
 * and one stray file must not lock every package out. */
static int find_trusted(const char *trustdir, const char *key_id, mbedtls_pk_context *ret_pk,
			const char *what, BaseErr *e)
{
	DIR *d = opendir(trustdir);
	struct dirent *de;
	int found = 0;

	if (!d) {
		int r = -errno;
		if (r == -ENOENT || r == -ENOTDIR)
			return base_err(e, -ENOKEY, "%s: not signed by a trusted key (no trust dir %s)",
					what, trustdir);
		return base_err(e, r, "%s: cannot open trust dir: %s", trustdir, base_strerror(r));
	}
	while (!found && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		uint8_t *pem = NULL;
		size_t pem_len = 0;
		char id[BASE_SHA256_HEX];

		if (n < 5 || strcmp(de->d_name + n - 4, ".pub") != 0 || de->d_name[0] == '.')
			continue;
		if (read_pem(dirfd(d), de->d_name, 1, &pem, &pem_len) < 0)
			continue;
		mbedtls_pk_init(ret_pk);
		if (mbedtls_pk_parse_public_key(ret_pk, pem, pem_len) == 0 && is_p256(ret_pk) &&
		    pk_key_id(ret_pk, id) == 0 && strcmp(id, key_id) == 0)
			found = 1;
		else
			mbedtls_pk_free(ret_pk);
		free(pem);
	}
	closedir(d);
	if (!found)
		return base_err(e, -ENOKEY, "%s: not signed by a trusted key (key id %s not in %s)",
				what, key_id, trustdir);
	return 0;
}

int manifest_verify(const char *trustdir, const uint8_t *msg, size_t len,
		    const uint8_t *sigtext, size_t siglen, const char *what,
		    char ret_key_id[BASE_SHA256_HEX], BaseErr *e)
{
	mbedtls_pk_context pk;
	char key_id[BASE_SHA256_HEX];
	uint8_t der[MANIFEST_MAX_SIG_DER], hash[BASE_SHA256_LEN];
	size_t der_len = 0;
	int r;

	r = manifest_sigfile_parse((const char *)sigtext, siglen, what, key_id, der, &der_len, e);
	if (r < 0)
		return r;
	r = find_trusted(trustdir, key_id, &pk, what, e);
	if (r < 0)
		return r;
	if (sig_check_canonical(&pk, der, der_len) < 0)
		r = base_err(e, -EKEYREJECTED, "%s: signature is not in its one accepted spelling "
			     "(high S or non-minimal DER: a malleated signature)", what);
	else if (mbedtls_sha256_ret(msg, len, hash, 0) != 0)
		r = base_err(e, -EIO, "%s: sha256 failed", what);
	else if (mbedtls_pk_verify(&pk, MBEDTLS_MD_SHA256, hash, sizeof(hash), der, der_len) != 0)
		r = base_err(e, -EKEYREJECTED,
			     "%s: signature does not verify with trusted key %s", what, key_id);
	mbedtls_pk_free(&pk);
	if (r < 0)
		return r;
	memcpy(ret_key_id, key_id, BASE_SHA256_HEX);
	return 0;
}

/* ---- keygen --------------------------------------------------------------- */

/* Write dfd/name durably and never over an existing file: the data goes to
 * a temp file first, and link() (which refuses an existing name) publishes it,
 * so a crash leaves either no key or a whole one. */
static int write_new_file(int dfd, const char *name, const void *buf, size_t len, mode_t mode)
{
	_cleanup_free_ char *tmp = base_strdupf(".%s.tmp", name);
	_cleanup_close_ int fd = -1;
	int r;

	if (!tmp)
		return -ENOMEM;
	/* a temp left by a crashed keygen is ours to discard */
	r = base_fs_unlinkat(dfd, tmp, 0);
	if (r < 0 && r != -ENOENT)
		return r;
	r = base_fs_openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode, &fd);
	if (r < 0)
		return r;
	r = base_fs_fchmod(fd, mode);   /* umask must not widen or narrow it */
	if (r >= 0)
		r = base_fs_write_all(fd, buf, len);
	if (r >= 0)
		r = base_fs_fsync(fd);
	if (r >= 0)
		r = base_fs_linkat(dfd, tmp, dfd, name);
	unlinkat(dfd, tmp, 0);
	if (r < 0)
		return r;
	return base_fs_fsync_dir(dfd);
}

int manifest_keygen(const char *prefix, BaseErr *e)
{
	_cleanup_free_ char *dir = NULL, *keyname = NULL, *pubname = NULL;
	_cleanup_close_ int dfd = -1;
	unsigned char keypem[PEM_BUF], pubpem[PEM_BUF];
	mbedtls_pk_context pk;
	struct stat st;
	Rng rng;
	int r;

	const char *slash = strrchr(prefix, '/');
	const char *base = slash ? slash + 1 : prefix;
	if (!*base)
		return base_err(e, -EINVAL, "%s: key prefix names a directory", prefix);
	dir = slash ? (slash == prefix ? strdup("/") : strndup(prefix, (size_t)(slash - prefix)))
		    : strdup(".");
	keyname = base_strdupf("%s.key", base);
	pubname = base_strdupf("%s.pub", base);
	if (!dir || !keyname || !pubname)
		return -ENOMEM;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return base_err(e, -errno, "%s: cannot open directory: %s", dir, strerror(errno));
	if (fstatat(dfd, keyname, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return base_err(e, -EEXIST, "%s.key: exists, refusing to overwrite", prefix);
	if (fstatat(dfd, pubname, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return base_err(e, -EEXIST, "%s.pub: exists, refusing to overwrite", prefix);

	mbedtls_pk_init(&pk);
	r = rng_init(&rng);
	if (r >= 0 && mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0)
		r = -ENOMEM;
	if (r >= 0 && mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk),
					  mbedtls_ctr_drbg_random, &rng.drbg) != 0)
		r = -EIO;
	if (r >= 0 && (mbedtls_pk_write_key_pem(&pk, keypem, sizeof(keypem)) != 0 ||
		       mbedtls_pk_write_pubkey_pem(&pk, pubpem, sizeof(pubpem)) != 0))
		r = -EIO;
	rng_free(&rng);
	mbedtls_pk_free(&pk);
	if (r < 0) {
		mbedtls_platform_zeroize(keypem, sizeof(keypem));
		return base_err(e, r, "%s: key generation failed", prefix);
	}

	r = write_new_file(dfd, keyname, keypem, strlen((char *)keypem), 0600);
	mbedtls_platform_zeroize(keypem, sizeof(keypem));
	if (r < 0)
		return base_err(e, r, "%s.key: %s", prefix,
				r == -EEXIST ? "exists, refusing to overwrite" : base_strerror(r));
	r = write_new_file(dfd, pubname, pubpem, strlen((char *)pubpem), 0644);
	if (r < 0) {
		/* undo: a private key without its public half is of no use */
		base_fs_unlinkat(dfd, keyname, 0);
		base_fs_fsync_dir(dfd);
		return base_err(e, r, "%s.pub: %s", prefix,
				r == -EEXIST ? "exists, refusing to overwrite" : base_strerror(r));
	}
	return 0;
}
