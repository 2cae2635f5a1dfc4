/* Serialized hotpatch payload (*.hp): byte layout in docs/format-payload.md.
 * The writer is deterministic (fields in one fixed order, no padding with
 * undefined bytes); the parser trusts nothing: every count is checked against
 * the bytes left before anything is allocated. */
#include <stdlib.h>
#include <string.h>

#include "elf/internal.h"

static const uint8_t HP_MAGIC[8] = { 'S', 'V', 'C', 'H', 'P', '\r', '\n', 0x1a };
#define HP_VERSION 1u
#define HP_MAX_STR 4096u
#define HP_MAX_CODE (256u << 20)

void elf_payload_free(ElfPayload *p)
{
	if (!p)
		return;
	free(p->fix_id);
	for (size_t i = 0; i < p->n_lineage; i++)
		free(p->lineage[i]);
	free(p->lineage);
	free(p->code);
	for (size_t i = 0; i < p->n_relocs; i++)
		free(p->relocs[i].symbol);
	free(p->relocs);
	for (size_t i = 0; i < p->n_redirects; i++)
		free(p->redirects[i].name);
	free(p->redirects);
	free(p);
}

/* ---- writer ---------------------------------------------------------------- */

static int put32(BaseBuf *b, uint32_t v)
{
	uint8_t x[4];
	elf_wr32(x, v);
	return base_buf_append(b, x, 4);
}

static int put64(BaseBuf *b, uint64_t v)
{
	uint8_t x[8];
	elf_wr64(x, v);
	return base_buf_append(b, x, 8);
}

static int putstr(BaseBuf *b, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	int r = put32(b, (uint32_t)n);
	return r < 0 ? r : base_buf_append(b, s, n);
}

static int valid_name(const char *s, int may_be_empty)
{
	if (!s)
		return may_be_empty;
	size_t n = strlen(s);
	return (n || may_be_empty) && n <= HP_MAX_STR;
}

/* The same checks as the parser, so that a written payload always parses. */
static int check_redirect(const ElfRedirect *d, size_t code_len)
{
	switch (d->kind) {
	case ELF_ENTRY_PAD16:
		if (d->pad != 14 || d->expect_len != 16)
			return 0;
		break;
	case ELF_ENTRY_PAD_REL32:
		if (d->pad < 5 || d->pad > 30 || d->expect_len != d->pad + 2)
			return 0;
		break;
	case ELF_ENTRY_PLAIN:
		if (d->pad != 0 || d->expect_len != 5)
			return 0;
		break;
	default:
		return 0;
	}
	return valid_name(d->name, 0) && d->target < code_len && d->entry >= d->pad;
}

static int check_reloc(const ElfReloc *r, size_t code_len)
{
	size_t w = r->type == R_X86_64_64 ? 8 : 4;
	if (r->type != R_X86_64_64 && r->type != R_X86_64_PC32)
		return 0;
	if (!elf_in_bounds(r->where, w, code_len))
		return 0;
	switch (r->bind) {
	case ELF_BIND_BASE:
		return r->symbol == NULL;
	case ELF_BIND_PAYLOAD:
		return r->symbol == NULL && r->value <= code_len;
	case ELF_BIND_SYMBOL:
		return valid_name(r->symbol, 0) && r->value == 0;
	default:
		return 0;
	}
}

int elf_is_payload(const uint8_t *buf, size_t len)
{
	return len >= sizeof(HP_MAGIC) && memcmp(buf, HP_MAGIC, sizeof(HP_MAGIC)) == 0;
}

int elf_payload_check(const ElfPayload *p, BaseErr *e)
{
	if (p->n_lineage > UINT32_MAX || p->n_relocs > UINT32_MAX || p->n_redirects > UINT32_MAX)
		return base_err(e, -EINVAL, "payload: too many entries");

	if (!base_valid_id(p->fix_id) || p->build_id_len > sizeof(p->build_id) ||
	    p->code_len > HP_MAX_CODE || (p->code_len && !p->code) || !p->code_align ||
	    (p->code_align & (p->code_align - 1)) || p->code_align > 4096)
		return base_err(e, -EINVAL, "payload: bad header field (fix id, build-id, code)");
	for (size_t i = 0; i < p->n_lineage; i++)
		if (!valid_name(p->lineage[i], 0))
			return base_err(e, -EINVAL, "payload: bad lineage entry %zu", i);
	for (size_t i = 0; i < p->n_relocs; i++)
		if (!check_reloc(&p->relocs[i], p->code_len))
			return base_err(e, -EINVAL, "payload: bad relocation %zu", i);
	for (size_t i = 0; i < p->n_redirects; i++)
		if (!check_redirect(&p->redirects[i], p->code_len))
			return base_err(e, -EINVAL, "payload: bad redirect %zu", i);
	return 0;
}

int elf_payload_write(const ElfPayload *p, BaseBuf *out, BaseErr *e)
{
	BaseBuf b = { 0 };
	int r = elf_payload_check(p, e);
	if (r < 0)
		return r;

	r = base_buf_append(&b, HP_MAGIC, sizeof(HP_MAGIC));
	if (r >= 0) r = put32(&b, HP_VERSION);
	if (r >= 0) r = put32(&b, p->code_align);
	if (r >= 0) r = putstr(&b, p->fix_id);
	if (r >= 0) r = put32(&b, (uint32_t)p->build_id_len);
	if (r >= 0) r = base_buf_append(&b, p->build_id, p->build_id_len);
	if (r >= 0) r = put32(&b, (uint32_t)p->n_lineage);
	for (size_t i = 0; r >= 0 && i < p->n_lineage; i++)
		r = putstr(&b, p->lineage[i]);
	if (r >= 0) r = put64(&b, p->code_len);
	if (r >= 0) r = base_buf_append(&b, p->code, p->code_len);
	if (r >= 0) r = put32(&b, (uint32_t)p->n_relocs);
	for (size_t i = 0; r >= 0 && i < p->n_relocs; i++) {
		const ElfReloc *x = &p->relocs[i];
		r = put64(&b, x->where);
		if (r >= 0) r = put32(&b, x->type);
		if (r >= 0) r = put32(&b, (uint32_t)x->bind);
		if (r >= 0) r = put64(&b, x->value);
		if (r >= 0) r = put64(&b, (uint64_t)x->addend);
		if (r >= 0) r = putstr(&b, x->symbol);
	}
	if (r >= 0) r = put32(&b, (uint32_t)p->n_redirects);
	for (size_t i = 0; r >= 0 && i < p->n_redirects; i++) {
		const ElfRedirect *x = &p->redirects[i];
		r = putstr(&b, x->name);
		if (r >= 0) r = put64(&b, x->entry);
		if (r >= 0) r = put64(&b, x->size);
		if (r >= 0) r = put32(&b, (uint32_t)x->kind);
		if (r >= 0) r = put32(&b, x->pad);
		if (r >= 0) r = put32(&b, x->expect_len);
		if (r >= 0) r = base_buf_append(&b, x->expect, x->expect_len);
		if (r >= 0) r = put64(&b, x->target);
	}
	if (r >= 0) r = put32(&b, base_crc32(b.data, b.len));
	if (r < 0) {
		base_buf_free(&b);
		return base_err(e, r, "payload: out of memory");
	}
	r = base_buf_append(out, b.data, b.len);
	base_buf_free(&b);
	return r;
}

/* ---- parser ---------------------------------------------------------------- */

typedef struct Rd {
	const uint8_t *p;
	size_t left;
	int bad;
} Rd;

static const uint8_t *take(Rd *d, size_t n)
{
	if (d->bad || n > d->left) {
		d->bad = 1;
		return NULL;
	}
	const uint8_t *p = d->p;
	d->p += n;
	d->left -= n;
	return p;
}

static uint32_t get32(Rd *d)
{
	const uint8_t *p = take(d, 4);
	return p ? elf_rd32(p) : 0;
}

static uint64_t get64(Rd *d)
{
	const uint8_t *p = take(d, 8);
	return p ? elf_rd64(p) : 0;
}

/* A string: NULL with d->bad set if torn, over-long or holding a NUL. */
static char *getstr(Rd *d, int may_be_empty, int *enomem)
{
	uint32_t n = get32(d);
	if (d->bad || n > HP_MAX_STR || (!n && !may_be_empty)) {
		d->bad = 1;
		return NULL;
	}
	const uint8_t *p = take(d, n);
	if (!p || memchr(p, 0, n)) {
		d->bad = 1;
		return NULL;
	}
	if (!n)
		return NULL;
	char *s = strndup((const char *)p, n);
	if (!s)
		*enomem = 1;
	return s;
}

#define BAD(...) do { r = base_err(e, -EBADMSG, __VA_ARGS__); goto fail; } while (0)

int elf_payload_parse(const uint8_t *buf, size_t len, ElfPayload **ret, BaseErr *e)
{
	int r, nomem = 0;
	ElfPayload *p = NULL;

	if (len < sizeof(HP_MAGIC) + 8 + 4 || memcmp(buf, HP_MAGIC, sizeof(HP_MAGIC)) != 0)
		return base_err(e, -EBADMSG, "payload: bad magic");
	if (elf_rd32(buf + len - 4) != base_crc32(buf, len - 4))
		return base_err(e, -EBADMSG, "payload: checksum mismatch (torn or altered)");
	Rd d = { buf + sizeof(HP_MAGIC), len - sizeof(HP_MAGIC) - 4, 0 };
	uint32_t version = get32(&d);
	if (version != HP_VERSION)
		return base_err(e, -EBADMSG, "payload: version %u not supported", version);
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->code_align = get32(&d);
	if (!p->code_align || (p->code_align & (p->code_align - 1)) || p->code_align > 4096)
		BAD("payload: code alignment %u", p->code_align);
	p->fix_id = getstr(&d, 0, &nomem);
	if (d.bad || (!nomem && !base_valid_id(p->fix_id)))
		BAD("payload: bad fix id");
	p->build_id_len = get32(&d);
	if (p->build_id_len > sizeof(p->build_id))
		BAD("payload: build-id of %zu bytes", p->build_id_len);
	const uint8_t *bid = take(&d, p->build_id_len);
	if (!bid)
		BAD("payload: truncated build-id");
	memcpy(p->build_id, bid, p->build_id_len);
	uint32_t nl = get32(&d);
	if (d.bad || nl > d.left / 5)
		BAD("payload: lineage count %u too large", nl);
	p->lineage = calloc(nl ? nl : 1, sizeof(char *));
	if (!p->lineage)
		goto nomem;
	for (; p->n_lineage < nl; p->n_lineage++) {
		p->lineage[p->n_lineage] = getstr(&d, 0, &nomem);
		if (d.bad)
			BAD("payload: bad lineage entry %zu", p->n_lineage);
	}
	uint64_t cl = get64(&d);
	if (d.bad || cl > d.left || cl > HP_MAX_CODE)
		BAD("payload: code length %llu exceeds the file", (unsigned long long)cl);
	p->code_len = cl;
	p->code = malloc(cl ? cl : 1);
	if (!p->code)
		goto nomem;
	memcpy(p->code, take(&d, cl), cl);

	/* Minimum encoded sizes bound the counts before any allocation. */
	uint32_t nr = get32(&d);
	if (d.bad || nr > d.left / 36)
		BAD("payload: relocation count %u too large", nr);
	p->relocs = calloc(nr ? nr : 1, sizeof(ElfReloc));
	if (!p->relocs)
		goto nomem;
	for (; p->n_relocs < nr; p->n_relocs++) {
		ElfReloc *x = &p->relocs[p->n_relocs];
		x->where = get64(&d);
		x->type = get32(&d);
		x->bind = (ElfRelocBind)get32(&d);
		x->value = get64(&d);
		x->addend = (int64_t)get64(&d);
		x->symbol = getstr(&d, 1, &nomem);
		if (nomem)
			goto nomem;
		if (d.bad || !check_reloc(x, p->code_len)) {
			free(x->symbol);
			x->symbol = NULL;
			BAD("payload: bad relocation %zu", p->n_relocs);
		}
	}
	uint32_t nd = get32(&d);
	if (d.bad || nd > d.left / 41)
		BAD("payload: redirect count %u too large", nd);
	p->redirects = calloc(nd ? nd : 1, sizeof(ElfRedirect));
	if (!p->redirects)
		goto nomem;
	for (; p->n_redirects < nd; p->n_redirects++) {
		ElfRedirect *x = &p->redirects[p->n_redirects];
		x->name = getstr(&d, 0, &nomem);
		x->entry = get64(&d);
		x->size = get64(&d);
		x->kind = (ElfEntryKind)get32(&d);
		x->pad = get32(&d);
		x->expect_len = get32(&d);
		if (d.bad || x->expect_len > sizeof(x->expect) || nomem) {
			free(x->name);
			x->name = NULL;
			if (nomem)
				goto nomem;
			BAD("payload: bad redirect %zu", p->n_redirects);
		}
		const uint8_t *ex = take(&d, x->expect_len);
		if (ex)
			memcpy(x->expect, ex, x->expect_len);
		x->target = get64(&d);
		if (d.bad || !check_redirect(x, p->code_len)) {
			free(x->name);
			x->name = NULL;
			BAD("payload: bad redirect %zu", p->n_redirects);
		}
	}
	if (nomem)
		goto nomem;
	if (d.left != 0)
		BAD("payload: %zu trailing bytes", d.left);
	*ret = p;
	return 0;
nomem:
	r = base_err(e, -ENOMEM, "payload: out of memory");
fail:
	elf_payload_free(p);
	return r;
}
