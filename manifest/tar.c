/* svc's own tar: the 512-byte header and the pax extended header of a
 * package, decoded and encoded, no I/O (archive.c streams them).  Only what a
 * package may hold (docs/format-package.md §1): regular files with ustar or
 * GNU headers, a pax extended header carrying a long `path`.  This decodes
 * hostile input as root, so every field is checked, not only the ones svc
 * uses: a field a reader ignores is where two readers disagree, and a
 * package must mean the same to svc, bsdtar and GNU tar.
 *
 * Why not libarchive (which svc linked before): its dependency tree
 * (libxml2, ICU, libstdc++, nettle, lzma, zstd, ...) cost ~15 ms per exec
 * of svc, more than reading a 2 MiB package; and its tolerance (a single
 * zero block ends an archive, unknown pax keys are skipped, GNU and v7
 * formats are guessed) is more than a signed package should get.  The
 * tests keep libarchive as the independent reader and writer. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "manifest/internal.h"

/* ustar header layout (POSIX.1-1988, IEEE 1003.1 §10.1.1) */
enum {
	F_NAME = 0, L_NAME = 100,
	F_MODE = 100, L_MODE = 8,
	F_UID = 108, L_UID = 8,
	F_GID = 116, L_GID = 8,
	F_SIZE = 124, L_SIZE = 12,
	F_MTIME = 136, L_MTIME = 12,
	F_CHKSUM = 148, L_CHKSUM = 8,
	F_TYPE = 156,
	F_LINK = 157, L_LINK = 100,
	F_MAGIC = 257, L_MAGIC = 8,   /* magic (6) and version (2) */
	F_UNAME = 265, L_UNAME = 32,
	F_GNAME = 297, L_GNAME = 32,
	F_DEVMAJ = 329, L_DEVMAJ = 8,
	F_DEVMIN = 337, L_DEVMIN = 8,
	F_PREFIX = 345, L_PREFIX = 155,
};

/* The reason for a refusal into why; -EBADMSG. */
__attribute__((format(printf, 2, 3)))
static int refuse(char why[MANIFEST_TAR_WHY], const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, MANIFEST_TAR_WHY, fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

static const char MAGIC_POSIX[L_MAGIC] = { 'u', 's', 't', 'a', 'r', 0, '0', '0' };
static const char MAGIC_GNU[L_MAGIC] = { 'u', 's', 't', 'a', 'r', ' ', ' ', 0 };

/* A numeric field: optional leading spaces, 1..n octal digits, then only
 * NUL or space to the end of the field.  base-256 (GNU's high-bit form),
 * signs and empty fields are refused: no package value needs them.  At most
 * 12 digits, 36 bits: no wrap. */
static int octal(const uint8_t *f, size_t n, uint64_t *ret)
{
	size_t i = 0, digits = 0;
	uint64_t v = 0;
	while (i < n && f[i] == ' ')
		i++;
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++, digits++)
		v = v * 8 + (uint64_t)(f[i] - '0');
	if (digits == 0)
		return -EBADMSG;
	for (; i < n; i++)
		if (f[i] != 0 && f[i] != ' ')
			return -EBADMSG;
	*ret = v;
	return 0;
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* A string field: bytes up to the first NUL (or the whole field), the rest
 * NUL.  Returns the length, or -1 if bytes follow the terminator. */
static ssize_t strfield(const uint8_t *f, size_t n)
{
	size_t len = strnlen((const char *)f, n);
	return all_zero(f + len, n - len) ? (ssize_t)len : -1;
}

int manifest_tar_header_parse(const uint8_t b[MANIFEST_TAR_BLOCK], ManifestTarHeader *h,
			      char why[MANIFEST_TAR_WHY])
{
	uint64_t sum = 0, chk, mode, uid, gid, mtime, dev;
	memset(h, 0, sizeof(*h));
	if (all_zero(b, MANIFEST_TAR_BLOCK)) {
		h->kind = MANIFEST_TAR_ZERO;
		return 0;
	}
	int posix = memcmp(b + F_MAGIC, MAGIC_POSIX, L_MAGIC) == 0;
	if (!posix && memcmp(b + F_MAGIC, MAGIC_GNU, L_MAGIC) != 0)
		return refuse(why, "not a ustar header (no ustar magic)");
	/* the checksum first: nothing of a damaged header is trusted, its
	 * name included.  POSIX: the unsigned sum, the field counted as spaces. */
	for (size_t i = 0; i < MANIFEST_TAR_BLOCK; i++)
		sum += (i >= F_CHKSUM && i < F_CHKSUM + L_CHKSUM) ? ' ' : b[i];
	if (octal(b + F_CHKSUM, L_CHKSUM, &chk) < 0 || chk != sum)
		return refuse(why, "header checksum does not match");

	ssize_t nl = strfield(b + F_NAME, L_NAME);
	ssize_t pl = posix ? strfield(b + F_PREFIX, L_PREFIX) : 0;
	if (nl <= 0 || pl < 0)
		return refuse(why, "header name field is empty or malformed");
	/* GNU headers keep other things (times, sparse maps) where ustar has
	 * the prefix: never read as part of a name */
	if (pl > 0)
		snprintf(h->name, sizeof(h->name), "%.*s/%.*s", (int)pl,
			 (const char *)b + F_PREFIX, (int)nl, (const char *)b + F_NAME);
	else
		snprintf(h->name, sizeof(h->name), "%.*s", (int)nl, (const char *)b + F_NAME);

	const char *bad = NULL;
	if (octal(b + F_MODE, L_MODE, &mode) < 0 || mode > 07777)
		bad = "mode";
	else if (octal(b + F_UID, L_UID, &uid) < 0)
		bad = "uid";
	else if (octal(b + F_GID, L_GID, &gid) < 0)
		bad = "gid";
	else if (octal(b + F_SIZE, L_SIZE, &h->size) < 0)
		bad = "size";
	else if (octal(b + F_MTIME, L_MTIME, &mtime) < 0)
		bad = "mtime";
	/* device numbers: octal, or empty (GNU leaves them empty for files) */
	else if (!all_zero(b + F_DEVMAJ, L_DEVMAJ) && octal(b + F_DEVMAJ, L_DEVMAJ, &dev) < 0)
		bad = "devmajor";
	else if (!all_zero(b + F_DEVMIN, L_DEVMIN) && octal(b + F_DEVMIN, L_DEVMIN, &dev) < 0)
		bad = "devminor";
	else if (strfield(b + F_UNAME, L_UNAME) < 0)
		bad = "uname";
	else if (strfield(b + F_GNAME, L_GNAME) < 0)
		bad = "gname";
	if (bad)
		return refuse(why, "header field %s is not a valid octal number or string",
			      bad);

	switch (b[F_TYPE]) {
	case '0':
	case 0:
		h->kind = MANIFEST_TAR_FILE;
		break;
	case 'x':
		h->kind = MANIFEST_TAR_PAX;
		break;
	case '1': case '2': case '3': case '4': case '5': case '6': case '7':
		return refuse(why, "not a regular file");
	case 'g':
		return refuse(why, "pax global header not supported");
	case 'L':
	case 'K':
		return refuse(why, "GNU long-name header not supported (write pax or ustar)");
	case 'S':
		return refuse(why, "sparse file");
	default:
		return refuse(why, "entry type 0x%02x not supported", b[F_TYPE]);
	}
	if (strfield(b + F_LINK, L_LINK) != 0)
		return refuse(why, "a regular file with a link name");
	if (h->kind == MANIFEST_TAR_FILE && h->size > MANIFEST_MAX_PACKAGE)
		return refuse(why, "%ju bytes, more than %u", (uintmax_t)h->size,
			      MANIFEST_MAX_PACKAGE);
	if (h->kind == MANIFEST_TAR_PAX && (h->size == 0 || h->size > MANIFEST_TAR_PAX_MAX))
		return refuse(why, "pax header of %ju bytes (1 to %u allowed)",
			      (uintmax_t)h->size, MANIFEST_TAR_PAX_MAX);
	return 0;
}

/* A pax time (mtime, atime, ctime): [-]digits[.digits].  Checked, unused:
 * a package's times mean nothing. */
static int pax_time(const char *v, size_t n)
{
	size_t i = (n && v[0] == '-') ? 1 : 0, d = 0, f = 0;
	for (; i < n && v[i] >= '0' && v[i] <= '9'; i++)
		d++;
	if (i < n && v[i] == '.')
		for (i++; i < n && v[i] >= '0' && v[i] <= '9'; i++)
			f++;
	return d > 0 && d <= 20 && f <= 20 && i == n ? 0 : -EBADMSG;
}

/* Records "LEN KEY=VALUE\n", LEN counting the whole record in decimal.
 * Accepted keys: path (the member name, at most MANIFEST_MAX_NAME bytes, no
 * NUL), and the times GNU tar and bsdtar write; any other key is refused by
 * name (an unknown key is one whose meaning svc would be guessing). */
int manifest_tar_pax_parse(const uint8_t *p, size_t n, char path[MANIFEST_MAX_NAME + 1],
			   char why[MANIFEST_TAR_WHY])
{
	size_t off = 0;
	path[0] = 0;
	while (off < n) {
		const char *rec = (const char *)p + off;
		size_t left = n - off, len = 0, i = 0;
		for (; i < left && i < 8 && rec[i] >= '0' && rec[i] <= '9'; i++)
			len = len * 10 + (size_t)(rec[i] - '0');
		/* "N k=\n" is the shortest record: digits, space, key, '=', LF */
		if (i == 0 || rec[0] == '0' || i >= left || rec[i] != ' ' || len > left ||
		    len < i + 4 || rec[len - 1] != '\n')
			return refuse(why, "pax header record at byte %zu is malformed", off);
		const char *key = rec + i + 1, *end = rec + len - 1;
		const char *eq = memchr(key, '=', (size_t)(end - key));
		if (!eq || eq == key)
			return refuse(why, "pax header record at byte %zu has no key", off);
		size_t klen = (size_t)(eq - key), vlen = (size_t)(end - eq - 1);
		const char *val = eq + 1;
		if (klen == 4 && memcmp(key, "path", 4) == 0) {
			if (path[0] || vlen == 0 || vlen > MANIFEST_MAX_NAME || memchr(val, 0, vlen))
				return refuse(why, "pax path is repeated, empty, longer than %d "
					      "bytes or holds a NUL", MANIFEST_MAX_NAME);
			memcpy(path, val, vlen);
			path[vlen] = 0;
		} else if ((klen == 5 && (memcmp(key, "mtime", 5) == 0 ||
					  memcmp(key, "atime", 5) == 0 ||
					  memcmp(key, "ctime", 5) == 0))) {
			if (pax_time(val, vlen) < 0)
				return refuse(why, "pax %.5s is not a time", key);
		} else {
			char k[41];
			size_t kn = klen < sizeof(k) - 1 ? klen : sizeof(k) - 1;
			for (size_t j = 0; j < kn; j++)
				k[j] = (key[j] > 0x20 && key[j] < 0x7f) ? key[j] : '?';
			k[kn] = 0;
			return refuse(why, "pax key '%s%s' not supported", k,
				      kn < klen ? "..." : "");
		}
		off += len;
	}
	return 0;
}

/* ---- write ---------------------------------------------------------------- */

/* The numeric fields as libarchive's ustar writer spells them (digits, then
 * space, then NUL where the field has room): so a package whose names fit
 * ustar is byte-for-byte what svc wrote before it had its own writer. */
static void put_octal(uint8_t *f, size_t width, size_t digits, uint64_t v)
{
	for (size_t i = digits; i > 0; i--, v >>= 3)
		f[i - 1] = (uint8_t)('0' + (v & 7));
	if (digits < width)
		f[digits] = ' ';
}

static void put_header(uint8_t b[MANIFEST_TAR_BLOCK], const char *name, size_t nlen,
		       const char *prefix, size_t plen, char type, uint64_t size)
{
	memset(b, 0, MANIFEST_TAR_BLOCK);
	memcpy(b + F_NAME, name, nlen);
	put_octal(b + F_MODE, L_MODE, 6, 0644);
	put_octal(b + F_UID, L_UID, 6, 0);
	put_octal(b + F_GID, L_GID, 6, 0);
	put_octal(b + F_SIZE, L_SIZE, 11, size);
	put_octal(b + F_MTIME, L_MTIME, 11, 0);
	b[F_TYPE] = (uint8_t)type;
	memcpy(b + F_MAGIC, MAGIC_POSIX, L_MAGIC);
	put_octal(b + F_DEVMAJ, L_DEVMAJ, 6, 0);
	put_octal(b + F_DEVMIN, L_DEVMIN, 6, 0);
	memcpy(b + F_PREFIX, prefix, plen);
	unsigned sum = 0;
	memset(b + F_CHKSUM, ' ', L_CHKSUM);
	for (size_t i = 0; i < MANIFEST_TAR_BLOCK; i++)
		sum += b[i];
	put_octal(b + F_CHKSUM, L_CHKSUM, 6, sum);
	b[F_CHKSUM + 6] = 0;    /* "dddddd\0 ", the traditional spelling */
	b[F_CHKSUM + 7] = ' ';
}

static int put_data(BaseBuf *out, const void *p, size_t n)
{
	static const uint8_t zero[MANIFEST_TAR_BLOCK];
	int r = base_buf_append(out, p, n);
	if (r >= 0 && n % MANIFEST_TAR_BLOCK)
		r = base_buf_append(out, zero, MANIFEST_TAR_BLOCK - n % MANIFEST_TAR_BLOCK);
	return r;
}

/* ustar's split of a long name: prefix "/" name, name at most 100 bytes,
 * prefix at most 155; at the first '/' that leaves a short enough name (as
 * libarchive and GNU tar split).  0 if the name cannot be split. */
static size_t split_at(const char *name, size_t n)
{
	const char *s = n > L_NAME + 1 ? name + n - L_NAME - 1 : name;
	const char *slash = strchr(s, '/');
	if (!slash || slash == name || (size_t)(slash - name) > L_PREFIX || slash[1] == 0)
		return 0;
	return (size_t)(slash - name);
}

int manifest_tar_write(const ManifestMember *m, size_t n, BaseBuf *out)
{
	uint8_t b[MANIFEST_TAR_BLOCK];
	int r = 0;
	for (size_t i = 0; r >= 0 && i < n; i++) {
		const char *name = m[i].name;
		size_t len = strlen(name), cut = 0;
		if (len > MANIFEST_MAX_NAME)
			return -EINVAL;
		if (len > L_NAME)
			cut = split_at(name, len);
		if (len <= L_NAME) {
			put_header(b, name, len, "", 0, '0', m[i].len);
		} else if (cut) {
			put_header(b, name + cut + 1, len - cut - 1, name, cut, '0', m[i].len);
		} else {
			/* pax where ustar cannot hold the name: one `path` record;
			 * the ustar name keeps the name's last 100 bytes for a
			 * reader without pax (svc's own layout, not libarchive's) */
			char rec[MANIFEST_MAX_NAME + 32];
			size_t body = len + sizeof(" path=\n") - 1, rl = body + 1;
			while (rl != body + (size_t)snprintf(NULL, 0, "%zu", rl))
				rl = body + (size_t)snprintf(NULL, 0, "%zu", rl);
			int k = snprintf(rec, sizeof(rec), "%zu path=%s\n", rl, name);
			if (k < 0 || (size_t)k != rl)
				return -EINVAL;
			put_header(b, "PaxHeader", 9, "", 0, 'x', rl);
			r = base_buf_append(out, b, sizeof(b));
			if (r >= 0)
				r = put_data(out, rec, rl);
			put_header(b, name + len - L_NAME, L_NAME, "", 0, '0', m[i].len);
		}
		if (r >= 0)
			r = base_buf_append(out, b, sizeof(b));
		if (r >= 0)
			r = put_data(out, m[i].data, m[i].len);
	}
	/* the end-of-archive marker: two zero blocks */
	memset(b, 0, sizeof(b));
	if (r >= 0)
		r = base_buf_append(out, b, sizeof(b));
	if (r >= 0)
		r = base_buf_append(out, b, sizeof(b));
	return r;
}
