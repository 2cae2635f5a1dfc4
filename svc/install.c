/* svc install: verify, stage beside the originals, commit the record, then
 * swap now or leave it for boot.
 *
 * Ordering (each step durable before the next):
 *   1. record written to staging/        crash: recovery removes staged files
 *   2. each coldpatch staged + fsync'ed   crash: same
 *   3. record renamed to pending/         the commit point: from here it rolls forward
 *   4. swap (pending_apply) or defer */
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "elf/elf.h"
#include "svc/internal.h"

/* What gets staged for one target: a shipped member, or a coldpatch
 * synthesized here from the installed file and the payload. */
typedef struct Stage {
	const uint8_t *data;
	size_t len;
	uint8_t *owned;
} Stage;

static int trust_dir(Svc *s, char **ret)
{
	char *p = base_strdupf("%s/etc/svc/trusted", s->root_real);
	if (!p)
		return -ENOMEM;
	*ret = p;
	return 0;
}

/* Anti-rollback: a series only moves forward.  The floor is a high-water
 * mark: the highest sequence any other package of the series ever reached
 * (committed: installed, pending, or installed once and rolled back since).
 * It is derived from the records, which are never deleted, so it survives
 * rollbacks, reboots and crashes; a rollback takes files back, never the
 * floor.  Without the high-water mark, rolling back FIX seq 2 would let a
 * captured, vulnerable FIX seq 1 install again.  SVC_ALLOW_OLDER lowers
 * nothing permanently: it lets this one install through, loudly. */
static int check_sequence(const PendingList *l, const ManifestPackage *pkg, unsigned flags,
			  SvcReport *rep, BaseErr *e)
{
	const PendingTxn *high = NULL;
	for (size_t i = 0; i < l->n; i++) {
		const PendingEntry *en = &l->entries[i];
		if (!en->txn || en->txn->kind != PENDING_INSTALL ||
		    en->state == PENDING_STAGING || en->state == PENDING_QUARANTINED ||
		    strcmp(en->txn->series, pkg->series) != 0 ||
		    strcmp(en->txn->package, pkg->id) == 0)
			continue;
		if (!high || en->txn->sequence > high->sequence)
			high = en->txn;
	}
	if (!high || pkg->sequence > high->sequence)
		return 0;
	if (flags & SVC_ALLOW_OLDER)
		return svc_report_linel(rep, 4, "WARNING: %s: sequence %" PRIu64 " of series '%s' is "
					"below its high-water mark %" PRIu64 " (%s): installing anyway "
					"(--allow-older)", pkg->id, pkg->sequence, pkg->series,
					high->sequence, high->package);
	return base_err(e, -BASE_E_OLDER,
			"%s: sequence %" PRIu64 " of series '%s' is not newer than %s (sequence %"
			PRIu64 ", the series' high-water mark, kept after rollbacks): rollback refused",
			pkg->id, pkg->sequence, pkg->series, high->package, high->sequence);
}

static int stage_one(Svc *s, const PendingOp *op, const Stage *m, uint32_t mode,
		     BaseErr *e)
{
	_cleanup_close_ int dfd = -1, fd = -1;
	const char *name;
	struct stat st;
	int r = pending_open_parent(&s->store, op->path, &dfd, &name, e);
	if (r < 0)
		return r;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return base_err(e, -errno, "%s: %s", op->path, strerror(errno));
	r = base_fs_openat(dfd, op->source, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600, &fd);
	if (r >= 0)
		r = base_fs_write_all(fd, m->data, m->len);
	/* same owner and mode as the file it replaces will have */
	if (r >= 0)
		r = base_fs_fchown(fd, st.st_uid, st.st_gid);
	if (r >= 0)
		r = base_fs_fchmod(fd, mode & 07777);
	if (r >= 0)
		r = base_fs_fsync(fd);
	if (r >= 0)
		r = base_fs_fsync_dir(dfd);
	if (r < 0)
		return base_err(e, r, "%s/%s: cannot stage: %s", op->path, op->source,
				base_strerror(r));
	return 0;
}

/* The bytes of the file at `path` whose content is `sha`: the file itself,
 * or the staged file of a pending transaction that will put it there. */
static int read_level(Svc *s, const PendingList *l, const char *path, const uint8_t *sha,
		      uint8_t **ret, size_t *ret_len, BaseErr *e)
{
	_cleanup_close_ int dfd = -1;
	const char *name;
	uint8_t h[BASE_SHA256_LEN];
	int r = pending_open_parent(&s->store, path, &dfd, &name, e);
	if (r < 0)
		return r;
	const char *cand = name;
	for (size_t i = 0; i <= l->n; i++) {
		uint8_t *buf = NULL;
		size_t len = 0;
		if (i > 0) {
			const PendingEntry *en = &l->entries[i - 1];
			cand = NULL;
			if (!en->txn || en->state != PENDING_PENDING)
				continue;
			for (size_t k = 0; k < en->txn->n_ops; k++)
				if (strcmp(en->txn->ops[k].path, path) == 0 &&
				    memcmp(en->txn->ops[k].to, sha, BASE_SHA256_LEN) == 0)
					cand = en->txn->ops[k].source;
			if (!cand)
				continue;
		}
		if (base_fs_read_at(dfd, cand, MANIFEST_MAX_PACKAGE, &buf, &len) < 0)
			continue;
		base_sha256(buf, len, h);
		if (memcmp(h, sha, BASE_SHA256_LEN) == 0) {
			*ret = buf;
			*ret_len = len;
			return 0;
		}
		free(buf);
	}
	return base_err(e, -ESTALE, "%s%s: the version this fix applies to is not on disk",
			s->root_real, path);
}

/* No coldpatch shipped: synthesize it from the installed file and the
 * payload, and take it only if it is, to the byte, the signed one. */
static int synthesize(Svc *s, const PendingList *l, const ManifestPackage *pkg,
		      const ManifestTarget *t, const uint8_t *from, Stage *ret, BaseErr *e)
{
	const ManifestMember *m = manifest_member(pkg, t->payload_member);
	ElfPayload *p = NULL;
	BaseBuf cold = { 0 };
	uint8_t *base = NULL, h[BASE_SHA256_LEN];
	size_t base_len = 0;
	int r = m ? 0 : -EBADMSG;

	if (r >= 0)
		r = read_level(s, l, t->path, from, &base, &base_len, e);
	if (r >= 0)
		r = elf_payload_parse(m->data, m->len, &p, e);
	if (r >= 0)
		r = elf_coldpatch(base, base_len, p, &cold, e);
	if (r >= 0) {
		base_sha256(cold.data, cold.len, h);
		if (memcmp(h, t->new_sha256, BASE_SHA256_LEN) != 0)
			r = base_err(e, -EBADMSG, "%s: the coldpatch synthesized from %s%s is not the "
				     "signed one (sha256 differs): refused", pkg->id, s->root_real, t->path);
	}
	elf_payload_free(p);
	free(base);
	if (r < 0) {
		base_buf_free(&cold);
		return r;
	}
	ret->data = ret->owned = cold.data;
	ret->len = cold.len;
	return 0;
}

/* svc services binaries, and never its own trust or state: a package
 * signed by a trusted key could otherwise replace the trust store itself
 * (a new *.pub, and every later package is "trusted") or rewrite records. */
static int check_target_kind(Svc *s, const ManifestTarget *t, int dfd, const char *name,
			     const struct stat *st, BaseErr *e)
{
	static const char *const own[] = { "/etc/svc/", "/var/lib/svc/" };
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (strncmp(t->path, own[i], strlen(own[i])) == 0)
			return base_err(e, -EPERM, "%s%s: inside svc's own trust store or state "
					"(%s): refused", s->root_real, t->path, own[i]);
	/* a second name would keep the unpatched file: the swap replaces one
	 * name only, and the other would go on running the vulnerable code */
	if (st->st_nlink > 1)
		return base_err(e, -EMLINK, "%s%s: target has %ju hard links: the other names "
				"would keep the unpatched file; refused", s->root_real, t->path,
				(uintmax_t)st->st_nlink);
	_cleanup_close_ int fd = -1;
	unsigned char magic[4];
	int r = base_fs_open_regular(dfd, name, O_NOFOLLOW, &fd);
	if (r < 0)
		return base_err(e, r, "%s%s: %s", s->root_real, t->path, base_strerror(r));
	if (pread(fd, magic, sizeof(magic), 0) != (ssize_t)sizeof(magic) ||
	    memcmp(magic, "\177ELF", 4) != 0)
		return base_err(e, -BASE_E_NOTELF, "%s%s: not an ELF file: svc services binaries "
				"only; refused", s->root_real, t->path);
	return 0;
}

/* Check one target and fill its op; returns 1 if already at the new level. */
static int plan_target(Svc *s, const PendingList *l, const ManifestPackage *pkg,
		       const ManifestTarget *t, uint64_t number, PendingOp *op, BaseErr *e)
{
	_cleanup_close_ int dfd = -1;
	const char *name;
	uint8_t cur[BASE_SHA256_LEN];
	char hex[BASE_SHA256_HEX];
	struct stat st;
	int r = pending_open_parent(&s->store, t->path, &dfd, &name, e);
	if (r < 0)
		return r;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return base_err(e, -errno, "%s%s: target: %s", s->root_real, t->path,
				strerror(errno));
	if (S_ISLNK(st.st_mode))
		return base_err(e, -ELOOP, "%s%s: target is a symbolic link: refused",
				s->root_real, t->path);
	if (!S_ISREG(st.st_mode))
		return base_err(e, -EINVAL, "%s%s: target is not a regular file", s->root_real,
				t->path);
	r = check_target_kind(s, t, dfd, name, &st, e);
	if (r < 0)
		return r;
	r = pending_hash_at(dfd, name, cur);
	if (r < 0)
		return base_err(e, r, "%s%s: %s", s->root_real, t->path, base_strerror(r));
	svc_ledger_effective(l, t->path, cur);
	if (memcmp(cur, t->new_sha256, BASE_SHA256_LEN) == 0)
		return 1;
	if (memcmp(cur, t->base_sha256, BASE_SHA256_LEN) != 0) {
		base_hex(hex, cur, BASE_SHA256_LEN);
		return base_err(e, -ESTALE, "%s%s: not the base version %s applies to (sha256 %.16s…, level %s)",
				s->root_real, t->path, pkg->id, hex, svc_ledger_level(l, t->path, cur));
	}
	op->path = strdup(t->path);
	op->source = base_strdupf(".%s.svc-%" PRIu64 ".new", name, number);
	op->keep = base_strdupf(".%s.svc-%" PRIu64 ".orig", name, number);
	op->source_staged = 1;
	memcpy(op->from, cur, BASE_SHA256_LEN);
	memcpy(op->to, t->new_sha256, BASE_SHA256_LEN);
	op->fix_from = strdup(svc_ledger_level(l, t->path, cur));
	if (strcmp(op->fix_from, "unknown") == 0) {
		free(op->fix_from);
		op->fix_from = strdup("base");
	}
	op->fix_to = strdup(pkg->id);
	if (!op->path || !op->source || !op->keep || !op->fix_from || !op->fix_to)
		return -ENOMEM;
	if (!pending_valid_name(op->source) || !pending_valid_name(op->keep))
		return base_err(e, -ENAMETOOLONG, "%s: name too long to stage beside", t->path);
	return 0;
}

int svc_install(Svc *s, const char *package_path, unsigned flags, SvcReport *ret, BaseErr *e)
{
	_cleanup_free_ char *trust = NULL;
	ManifestPackage *pkg = NULL;
	PendingList l = { 0 };
	PendingTxn *txn = NULL;
	SvcReport rep = { 0 };
	Stage *stages = NULL;
	int r = svc_txn_begin(s, flags, &rep, e);

	if (r >= 0)
		r = trust_dir(s, &trust);
	if (r >= 0)
		r = manifest_open(package_path, trust, &pkg, e);
	if (r >= 0)
		r = pending_list(&s->store, &l, e);
	if (r < 0)
		goto out;
	rep.package = strdup(pkg->id);
	const PendingEntry *last = NULL;
	const char *state = svc_ledger_state(&l, pkg->id, &last);
	int hot = (flags & SVC_HOTPATCH) != 0;
	for (size_t i = 0; hot && i < pkg->n_targets; i++)
		if (!pkg->targets[i].payload_member) {
			svc_report_linel(&rep, 4, "%s: %s carries no hotpatch payload: installing cold",
					 pkg->id, pkg->targets[i].path);
			hot = 0;
		}
	if (state && strcmp(state, "pending") == 0 && hot) {
		/* an earlier install (interrupted, or cold) is committed: finish it hot */
		svc_report_line(&rep, "%s is pending: finishing it hot", pkg->id);
		rep.txn = last->number;
		r = svc_hot_install(s, pkg, last->txn, 0, &rep, e);
		goto out;
	}
	if (state && strcmp(state, "installed") == 0 && hot) {
		/* on disk already: bring every process still on the old file along */
		svc_report_line(&rep, "%s is already installed: patching processes still on an "
				"older version", pkg->id);
		rep.noop = 1;
		for (size_t i = 0; r >= 0 && i < pkg->n_targets; i++)
			r = svc_report_target(&rep, pkg->targets[i].path, SVC_TARGET_NOOP, pkg->id,
					      pkg->id, state);
		if (r >= 0)
			r = svc_hot_install(s, pkg, last->txn, 1, &rep, e);
		goto out;
	}
	if (state && (strcmp(state, "installed") == 0 || strcmp(state, "pending") == 0)) {
		rep.noop = 1;
		svc_report_line(&rep, "%s is already %s: nothing to do", pkg->id, state);
		for (size_t i = 0; r >= 0 && i < pkg->n_targets; i++)
			r = svc_report_target(&rep, pkg->targets[i].path, SVC_TARGET_NOOP, pkg->id,
					      pkg->id, state);
		goto out;
	}
	r = check_sequence(&l, pkg, flags, &rep, e);
	if (r < 0)
		goto out;

	txn = calloc(1, sizeof(*txn));
	stages = calloc(pkg->n_targets ? pkg->n_targets : 1, sizeof(*stages));
	if (!txn || !stages || !(txn->package = strdup(pkg->id)) ||
	    !(txn->series = strdup(pkg->series))) {
		r = -ENOMEM;
		goto out;
	}
	txn->kind = PENDING_INSTALL;
	txn->sequence = pkg->sequence;
	txn->created = (uint64_t)time(NULL);
	r = svc_next_number(s, &txn->number, e);
	if (r < 0)
		goto out;
	txn->ops = calloc(pkg->n_targets ? pkg->n_targets : 1, sizeof(*txn->ops));
	if (!txn->ops) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < pkg->n_targets; i++) {
		const ManifestTarget *t = &pkg->targets[i];
		PendingOp *op = &txn->ops[txn->n_ops];
		BaseErr why = { 0 };
		r = plan_target(s, &l, pkg, t, txn->number, op, &why);
		if (r == 1) {
			svc_report_line(&rep, "%s: already at %s", t->path, pkg->id);
			r = svc_report_target(&rep, t->path, SVC_TARGET_NOOP, pkg->id, pkg->id, NULL);
			if (r < 0)
				goto out;
			continue;
		}
		Stage *st = &stages[txn->n_ops++]; /* on failure too: frees what was filled */
		if (r >= 0 && t->cold_member) {
			const ManifestMember *m = manifest_member(pkg, t->cold_member);
			st->data = m->data;
			st->len = m->len;
		} else if (r >= 0) {
			r = synthesize(s, &l, pkg, t, op->from, st, &why);
			if (r >= 0)
				svc_report_line(&rep, "%s the coldpatch of %s from its payload",
						s->dry_run ? "verified" : "synthesized", t->path);
		}
		if (r < 0 && s->dry_run && why.msg[0]) {
			/* a dry run goes on, to name every refusal; the first is the error */
			base_err(e, r, "%s", why.msg);
			rep.refused++;
			r = svc_report_target(&rep, t->path, SVC_TARGET_REFUSED, NULL, pkg->id, why.msg);
			svc_report_linel(&rep, 3, "refused: %s", why.msg);
			if (r < 0)
				goto out;
			continue;
		}
		if (r < 0) {
			base_err(e, r, "%s", why.msg);
			goto out;
		}
	}
	if (s->dry_run && rep.refused) {
		r = 0;
		goto out;
	}
	if (txn->n_ops == 0) {
		rep.noop = 1;
		svc_report_line(&rep, "every target is already at %s: nothing to do", pkg->id);
		r = 0;
		goto out;
	}
	if (s->dry_run) {
		/* verified; what the commit would do, without staging anything */
		rep.txn = txn->number;
		r = hot ? svc_hot_install(s, pkg, txn, 0, &rep, e)
			: svc_commit_or_defer(s, txn, &rep, e);
		goto out;
	}

	/* 1. the intent, so a crash while staging can be cleaned up */
	r = pending_write(&s->store, PENDING_STAGING, txn, e);
	if (r < 0)
		goto out;
	/* 2. the files */
	for (size_t i = 0; i < txn->n_ops; i++) {
		const ManifestTarget *t = NULL;
		for (size_t k = 0; k < pkg->n_targets; k++)
			if (strcmp(pkg->targets[k].path, txn->ops[i].path) == 0)
				t = &pkg->targets[k];
		/* every op was planned from a target: t is found (checked anyway) */
		r = t ? stage_one(s, &txn->ops[i], &stages[i], t->mode, e)
		      : base_err(e, -EINVAL, "%s: no target for op", txn->ops[i].path);
		if (r < 0) {
			BaseErr ignore = { 0 };
			pending_abort(&s->store, txn, &ignore);
			goto out;
		}
		svc_report_line(&rep, "staged %s beside %s", txn->ops[i].source, txn->ops[i].path);
	}
	/* the payloads, for a hot rollback of processes started from the
	 * coldpatch; kept before the commit so a committed fix always has them
	 * (a crash before it leaves only a harmless, rewritten-later copy) */
	r = svc_keep_payloads(s, pkg, txn, e);
	if (r < 0) {
		BaseErr ignore = { 0 };
		pending_abort(&s->store, txn, &ignore);
		goto out;
	}
	/* 3. the commit point */
	r = pending_move(&s->store, txn->number, PENDING_STAGING, PENDING_PENDING, e);
	if (r < 0) {
		BaseErr ignore = { 0 };
		pending_abort(&s->store, txn, &ignore);
		goto out;
	}
	rep.txn = txn->number;
	rep.changed = 1;
	/* 4. hot: patch the processes and swap now; cold: swap now, or at boot */
	if (hot)
		r = svc_hot_install(s, pkg, txn, 0, &rep, e);
	else
		r = svc_commit_or_defer(s, txn, &rep, e);
out:
	s->dry_run = 0;
	for (size_t i = 0; stages && i < pkg->n_targets; i++)
		free(stages[i].owned);
	free(stages);
	pending_txn_free(txn);
	pending_list_free(&l);
	manifest_free(pkg);
	if (r >= 0 && ret)
		*ret = rep;
	else
		svc_report_free(&rep);
	return r;
}
