/* Where the base's symbol table comes from.  A distribution ships its
 * binaries stripped (bytes, .dynsym and layout only) and the full .symtab in
 * a separate debug file; gdb and elfutils find that file by GNU build-id
 * under a debug directory, by .gnu_debuglink, or from debuginfod.  We look in
 * the same places in the same order, and accept a candidate only if it has
 * the target's build-id (a debug file of another build names other
 * addresses: binding to it would be silently wrong).  A debug file's .text
 * is NOBITS: its symbols give addresses and sizes, the bytes always come
 * from the target. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "elf/internal.h"

static const char *const source_str[] = {
	[ELF_SYMS_NONE] = "none (.dynsym only)",
	[ELF_SYMS_FILE] = "the file itself",
	[ELF_SYMS_BUILD_ID] = "debug file by build-id",
	[ELF_SYMS_DEBUGLINK] = "debug file by .gnu_debuglink",
	[ELF_SYMS_DEBUGINFOD] = "debuginfod",
};

const char *elf_symbol_source_str(ElfSymbolSource s)
{
	return (size_t)s < sizeof(source_str) / sizeof(source_str[0]) ? source_str[s] : "?";
}

/* The checks every candidate passes; 1 accepted, 0 skipped (reason in e),
 * < 0 on allocation failure. */
static int candidate(const ElfFile *f, const char *path, const uint32_t *crc, ElfFile **ret,
		     BaseErr *e)
{
	ElfFile *d = NULL;
	BaseErr ign = { 0 };
	int r = elf_open_path(path, &d, &ign);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		if (r != -ENOENT)
			base_err(e, -ENOENT, "%s", ign.msg);
		return 0;
	}
	if (crc && base_crc32(d->data, d->len) != *crc) {
		base_err(e, -ENOENT, "%s: CRC does not match the .gnu_debuglink of %s", path, f->name);
	} else if (d->build_id_len != f->build_id_len ||
		   memcmp(d->build_id, f->build_id, f->build_id_len) != 0) {
		base_err(e, -ENOENT, "%s: build-id differs from %s's", path, f->name);
	} else if (!d->n_symbols) {
		base_err(e, -ENOENT, "%s: no symbol table", path);
	} else {
		*ret = d;
		return 1;
	}
	elf_close(d);
	return 0;
}

/* .gnu_debuglink: file name, NUL, padding to 4, CRC-32 of the debug file. */
static int debuglink(const ElfFile *f, const char **ret_name, uint32_t *ret_crc)
{
	const ElfSection *s = elf_find_section(f, ".gnu_debuglink");
	if (!s || !s->data || s->type == SHT_NOBITS)
		return -ENOENT;
	const char *name = (const char *)s->data;
	size_t n = strnlen(name, s->size);
	size_t crc_off = elf_align_up(n + 1, 4);
	if (n == 0 || n == s->size || !elf_in_bounds(crc_off, 4, s->size) || strchr(name, '/'))
		return -EBADMSG;
	*ret_name = name;
	*ret_crc = elf_rd32(s->data + crc_off);
	return 0;
}

int elf_find_debug_file(const ElfFile *f, const char *path, const ElfBuildOptions *opts,
			ElfFile **ret, ElfSymbolSource *ret_source, char **ret_path, BaseErr *e)
{
	static const char *const default_dirs[] = { ELF_DEFAULT_DEBUG_DIR };
	const char *const *dirs = opts && opts->n_debug_dirs ? opts->debug_dirs : default_dirs;
	size_t n_dirs = opts && opts->n_debug_dirs ? opts->n_debug_dirs : 1;
	BaseErr why = { 0 };
	ElfFile *d = NULL;
	char *cand = NULL;
	int r = 0;

	if (!f->build_id_len)
		return base_err(e, -ENOENT, "%s: no build-id to find a debug file by", f->name);
	char id[129];
	base_hex(id, f->build_id, f->build_id_len);
	for (size_t i = 0; i < n_dirs && r == 0; i++) {
		free(cand);
		cand = base_strdupf("%s/.build-id/%.2s/%s.debug", dirs[i], id, id + 2);
		r = cand ? candidate(f, cand, NULL, &d, &why) : -ENOMEM;
		if (r > 0)
			*ret_source = ELF_SYMS_BUILD_ID;
	}

	const char *link = NULL;
	uint32_t crc = 0;
	if (r == 0 && debuglink(f, &link, &crc) == 0) {
		/* gdb's places: beside the target, its .debug/, and the target's
		 * directory under each debug directory */
		char *slash = strrchr(path, '/');
		char *dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
		if (!dir)
			r = -ENOMEM;
		for (size_t k = 0; k < 2 + 2 * n_dirs && r == 0; k++) {
			free(cand);
			if (k == 0)
				cand = base_strdupf("%s/%s", dir, link);
			else if (k == 1)
				cand = base_strdupf("%s/.debug/%s", dir, link);
			else if (k % 2 == 0)
				cand = base_strdupf("%s/%s/%s", dirs[(k - 2) / 2],
						    dir[0] == '/' ? dir + 1 : dir, link);
			else
				cand = base_strdupf("%s/%s", dirs[(k - 2) / 2], link);
			if (!cand) {
				r = -ENOMEM;
				break;
			}
			if (strcmp(cand, path) == 0)
				continue;
			r = candidate(f, cand, &crc, &d, &why);
			if (r > 0)
				*ret_source = ELF_SYMS_DEBUGLINK;
		}
		free(dir);
	}

	if (r == 0 && !(opts && opts->no_debuginfod)) {
		free(cand);
		cand = NULL;
		int k = elf_debuginfod_find(f->build_id, f->build_id_len, &cand, &why);
		if (k == -ENOMEM)
			r = k;
		else if (k == 0)
			r = candidate(f, cand, NULL, &d, &why);
		if (r > 0)
			*ret_source = ELF_SYMS_DEBUGINFOD;
	}
	if (r <= 0) {
		free(cand);
		if (r < 0)
			return r;
		return base_err(e, -ENOENT, "%s: no debug file with build-id %s%s%s", f->name, id,
				why.msg[0] ? " (" : "", why.msg[0] ? why.msg : "");
	}
	*ret = d;
	*ret_path = cand;
	return 0;
}

int elf_attach_symbols(ElfFile *f, ElfFile *dbg, BaseErr *e)
{
	if (dbg->build_id_len != f->build_id_len ||
	    memcmp(dbg->build_id, f->build_id, f->build_id_len) != 0) {
		int r = base_err(e, -ESTALE, "%s: build-id differs from %s's", dbg->name, f->name);
		elf_close(dbg);
		return r;
	}
	/* The debug file's section indices differ from the stripped file's;
	 * symbols are used by address, and the index only to tell defined
	 * from undefined and special ones. */
	free(f->symbols);
	f->symbols = BASE_TAKE_PTR(dbg->symbols);
	f->n_symbols = dbg->n_symbols;
	dbg->n_symbols = 0;
	elf_close(f->symfile);
	f->symfile = dbg;
	return 0;
}
