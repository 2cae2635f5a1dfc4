/* ELF64 reader: everything is validated once in elf_open_mem(), so the rest
 * of the library can index the parsed tables without further checks. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elf/internal.h"

void elf_close(ElfFile *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n_sections; i++)
		free((void *)f->sections[i].relas);
	free(f->sections);
	free(f->segments);
	free(f->symbols);
	free(f->dynsyms);
	free(f->name);
	free(f->owned);
	elf_close(f->symfile);
	free(f);
}

/* A NUL-terminated string at off inside the string table section strndx. */
static int str_at(const ElfFile *f, uint32_t strndx, uint32_t off, const char **ret, BaseErr *e,
		  const char *what)
{
	if (strndx == 0 || strndx >= f->n_sections)
		return base_err(e, -EBADMSG, "%s: %s: string table index %u out of range", f->name,
				what, strndx);
	const ElfSection *s = &f->sections[strndx];
	if (s->type != SHT_STRTAB || !s->data)
		return base_err(e, -EBADMSG, "%s: %s: section %u is not a string table", f->name,
				what, strndx);
	if (off >= s->size || !memchr(s->data + off, 0, s->size - off))
		return base_err(e, -EBADMSG, "%s: %s: name offset %u outside its string table",
				f->name, what, off);
	*ret = (const char *)s->data + off;
	return 0;
}

static int read_segments(ElfFile *f, const Elf64_Ehdr *h, BaseErr *e)
{
	if (h->e_phnum == 0)
		return 0;
	if (h->e_phnum == PN_XNUM)
		return base_err(e, -EBADMSG, "%s: extended program header numbering not supported",
				f->name);
	if (h->e_phentsize != sizeof(Elf64_Phdr))
		return base_err(e, -EBADMSG, "%s: program header entry size %u, expected %zu", f->name,
				h->e_phentsize, sizeof(Elf64_Phdr));
	if (!elf_in_bounds(h->e_phoff, (uint64_t)h->e_phnum * sizeof(Elf64_Phdr), f->len))
		return base_err(e, -EBADMSG, "%s: program header table outside the file", f->name);
	f->segments = calloc(h->e_phnum, sizeof(ElfSegment));
	if (!f->segments)
		return -ENOMEM;
	f->n_segments = h->e_phnum;
	for (size_t i = 0; i < f->n_segments; i++) {
		Elf64_Phdr p;
		memcpy(&p, f->data + h->e_phoff + i * sizeof(p), sizeof(p));
		if (p.p_filesz && !elf_in_bounds(p.p_offset, p.p_filesz, f->len))
			return base_err(e, -EBADMSG, "%s: segment %zu file range outside the file",
					f->name, i);
		if (p.p_type == PT_LOAD && p.p_memsz < p.p_filesz)
			return base_err(e, -EBADMSG, "%s: segment %zu memory size below file size",
					f->name, i);
		if (p.p_vaddr + p.p_memsz < p.p_vaddr)
			return base_err(e, -EBADMSG, "%s: segment %zu address range wraps", f->name, i);
		f->segments[i] = (ElfSegment){ p.p_type, p.p_flags, p.p_offset, p.p_vaddr,
					       p.p_paddr, p.p_filesz, p.p_memsz, p.p_align };
	}
	return 0;
}

static int read_sections(ElfFile *f, const Elf64_Ehdr *h, BaseErr *e)
{
	if (h->e_shnum == 0) {
		if (h->e_shoff != 0)
			return base_err(e, -EBADMSG, "%s: extended section numbering not supported",
					f->name);
		return 0;
	}
	if (h->e_shentsize != sizeof(Elf64_Shdr))
		return base_err(e, -EBADMSG, "%s: section header entry size %u, expected %zu", f->name,
				h->e_shentsize, sizeof(Elf64_Shdr));
	if (!elf_in_bounds(h->e_shoff, (uint64_t)h->e_shnum * sizeof(Elf64_Shdr), f->len))
		return base_err(e, -EBADMSG, "%s: section header table outside the file", f->name);
	if (h->e_shstrndx == SHN_XINDEX || h->e_shstrndx >= h->e_shnum)
		return base_err(e, -EBADMSG, "%s: section name table index %u out of range", f->name,
				h->e_shstrndx);
	f->sections = calloc(h->e_shnum, sizeof(ElfSection));
	if (!f->sections)
		return -ENOMEM;
	f->n_sections = h->e_shnum;
	for (size_t i = 0; i < f->n_sections; i++) {
		Elf64_Shdr s;
		ElfSection *x = &f->sections[i];
		memcpy(&s, f->data + h->e_shoff + i * sizeof(s), sizeof(s));
		*x = (ElfSection){ .name = "", .index = (uint32_t)i, .type = s.sh_type,
				   .flags = s.sh_flags, .addr = s.sh_addr, .offset = s.sh_offset,
				   .size = s.sh_size, .entsize = s.sh_entsize,
				   .align = s.sh_addralign, .link = s.sh_link, .info = s.sh_info };
		if (s.sh_type != SHT_NOBITS && s.sh_type != SHT_NULL && s.sh_size) {
			if (!elf_in_bounds(s.sh_offset, s.sh_size, f->len))
				return base_err(e, -EBADMSG, "%s: section %zu outside the file",
						f->name, i);
			x->data = f->data + s.sh_offset;
		}
		if (s.sh_addralign > 1 && (s.sh_addralign & (s.sh_addralign - 1)))
			return base_err(e, -EBADMSG, "%s: section %zu alignment not a power of 2",
					f->name, i);
	}
	for (size_t i = 0; i < f->n_sections; i++) {
		Elf64_Shdr s;
		memcpy(&s, f->data + h->e_shoff + i * sizeof(s), sizeof(s));
		if (h->e_shstrndx == SHN_UNDEF)
			break;
		int r = str_at(f, h->e_shstrndx, s.sh_name, &f->sections[i].name, e, "section name");
		if (r < 0)
			return r;
	}
	return 0;
}

static int read_symtab(ElfFile *f, const ElfSection *s, ElfSymbol **ret, size_t *ret_n, BaseErr *e)
{
	if (s->entsize != sizeof(Elf64_Sym) || s->size % sizeof(Elf64_Sym) || !s->data)
		return base_err(e, -EBADMSG, "%s: symbol table %s has a bad entry size", f->name,
				s->name);
	size_t n = s->size / sizeof(Elf64_Sym);
	ElfSymbol *syms = calloc(n ? n : 1, sizeof(ElfSymbol));
	if (!syms)
		return -ENOMEM;
	uint32_t file = 0;
	for (size_t i = 0; i < n; i++) {
		Elf64_Sym y;
		memcpy(&y, s->data + i * sizeof(y), sizeof(y));
		ElfSymbol *x = &syms[i];
		*x = (ElfSymbol){ .name = "", .index = (uint32_t)i, .type = ELF64_ST_TYPE(y.st_info),
				  .bind = ELF64_ST_BIND(y.st_info),
				  .visibility = ELF64_ST_VISIBILITY(y.st_other),
				  .shndx = y.st_shndx, .value = y.st_value, .size = y.st_size };
		if (y.st_name) {
			int r = str_at(f, s->link, y.st_name, &x->name, e, "symbol name");
			if (r < 0) {
				free(syms);
				return r;
			}
		}
		if (y.st_shndx == SHN_XINDEX ||
		    (y.st_shndx >= f->n_sections && y.st_shndx < SHN_LORESERVE)) {
			free(syms);
			return base_err(e, -EBADMSG, "%s: symbol %zu of %s: section index %u out of range",
					f->name, i, s->name, y.st_shndx);
		}
		if (x->type == STT_FILE)
			file = (uint32_t)i;
		if (x->bind == STB_LOCAL)
			x->file = file;
	}
	*ret = syms;
	*ret_n = n;
	return 0;
}

static int read_relas(ElfFile *f, ElfSection *s, BaseErr *e)
{
	size_t nsyms = 0;
	if (s->entsize != sizeof(Elf64_Rela) || s->size % sizeof(Elf64_Rela) || (s->size && !s->data))
		return base_err(e, -EBADMSG, "%s: relocation section %s has a bad entry size",
				f->name, s->name);
	if (s->link != 0 && !elf_symtab_of(f, s->link, &nsyms))
		return base_err(e, -EBADMSG, "%s: relocation section %s links to no symbol table",
				f->name, s->name);
	if (f->type == ET_REL && (s->info == 0 || s->info >= f->n_sections))
		return base_err(e, -EBADMSG, "%s: relocation section %s applies to no section",
				f->name, s->name);
	size_t n = s->size / sizeof(Elf64_Rela);
	ElfRela *r = calloc(n ? n : 1, sizeof(ElfRela));
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		Elf64_Rela y;
		memcpy(&y, s->data + i * sizeof(y), sizeof(y));
		r[i] = (ElfRela){ y.r_offset, ELF64_R_TYPE(y.r_info), ELF64_R_SYM(y.r_info),
				  y.r_addend };
		if (r[i].sym && r[i].sym >= nsyms) {
			uint32_t bad = r[i].sym;
			free(r);
			return base_err(e, -EBADMSG, "%s: relocation %zu of %s: symbol %u out of range",
					f->name, i, s->name, bad);
		}
		if (f->type == ET_REL) {
			const ElfSection *t = &f->sections[s->info];
			if (t->type != SHT_NOBITS && !elf_in_bounds(r[i].offset, 8, t->size) &&
			    !elf_in_bounds(r[i].offset, 4, t->size)) {
				free(r);
				return base_err(e, -EBADMSG,
						"%s: relocation %zu of %s: offset outside %s",
						f->name, i, s->name, t->name);
			}
		}
	}
	s->relas = r;
	s->n_relas = n;
	return 0;
}

int elf_note_next_buf(const uint8_t *d, uint64_t size, uint64_t *pos, ElfNote *ret)
{
	uint64_t p = *pos;
	if (p >= size)
		return 0;
	if (size - p < 12)
		return -EBADMSG;
	uint32_t namesz = elf_rd32(d + p), descsz = elf_rd32(d + p + 4), type = elf_rd32(d + p + 8);
	uint64_t name_off = p + 12;
	uint64_t desc_off = name_off + elf_align_up(namesz, 4);
	uint64_t end = desc_off + elf_align_up(descsz, 4);
	if (desc_off > size || end > size || (uint64_t)descsz > size - desc_off)
		return -EBADMSG;
	if (namesz && d[name_off + namesz - 1] != 0)
		return -EBADMSG;
	*ret = (ElfNote){ namesz ? (const char *)d + name_off : "", type, d + desc_off, descsz };
	*pos = end;
	return 1;
}

int elf_note_next(const ElfFile *f, uint64_t off, uint64_t size, uint64_t *pos, ElfNote *ret)
{
	if (!elf_in_bounds(off, size, f->len))
		return -EBADMSG;
	return elf_note_next_buf(f->data + off, size, pos, ret);
}

int elf_notes_build_id(const uint8_t *d, uint64_t size, uint8_t out[64], size_t *ret_len)
{
	uint64_t pos = 0;
	ElfNote n;
	int r;
	while ((r = elf_note_next_buf(d, size, &pos, &n)) > 0) {
		if (n.type != NT_GNU_BUILD_ID || strcmp(n.owner, "GNU") != 0)
			continue;
		if (n.desc_len == 0 || n.desc_len > 64)
			return -EBADMSG;
		memcpy(out, n.desc, n.desc_len);
		*ret_len = n.desc_len;
		return 0;
	}
	return r < 0 ? r : -ENOENT;
}

static int scan_notes(ElfFile *f, uint64_t off, uint64_t size, BaseErr *e)
{
	if (!elf_in_bounds(off, size, f->len))
		return base_err(e, -EBADMSG, "%s: note outside the file", f->name);
	if (f->build_id_len)
		return 0;
	int r = elf_notes_build_id(f->data + off, size, f->build_id, &f->build_id_len);
	if (r == -EBADMSG)
		return base_err(e, -EBADMSG, "%s: torn note or bad build-id at offset %llu", f->name,
				(unsigned long long)off);
	return 0;
}

const ElfSymbol *elf_symtab_of(const ElfFile *f, uint32_t shndx, size_t *ret_n)
{
	if (shndx && shndx == f->symtab_index) {
		*ret_n = f->n_symbols;
		return f->symbols;
	}
	if (shndx && shndx == f->dynsym_index) {
		*ret_n = f->n_dynsyms;
		return f->dynsyms;
	}
	*ret_n = 0;
	return NULL;
}

int elf_open_mem(const uint8_t *buf, size_t len, const char *name, ElfFile **ret, BaseErr *e)
{
	int r;
	if (!name)
		name = "(memory)";
	if (len < sizeof(Elf64_Ehdr) || memcmp(buf, ELFMAG, SELFMAG) != 0)
		return base_err(e, -ENOEXEC, "%s: not an ELF file", name);
	if (len > ELF_MAX_FILE)
		return base_err(e, -EFBIG, "%s: file too large", name);
	Elf64_Ehdr h;
	memcpy(&h, buf, sizeof(h));
	if (h.e_ident[EI_CLASS] != ELFCLASS64 || h.e_ident[EI_DATA] != ELFDATA2LSB ||
	    h.e_machine != EM_X86_64)
		return base_err(e, -ENOEXEC, "%s: not a little-endian ELF64 x86-64 file", name);
	if (h.e_ident[EI_VERSION] != EV_CURRENT || h.e_version != EV_CURRENT ||
	    h.e_ehsize < sizeof(Elf64_Ehdr))
		return base_err(e, -EBADMSG, "%s: bad ELF header version or size", name);
	if (h.e_type != ET_REL && h.e_type != ET_EXEC && h.e_type != ET_DYN)
		return base_err(e, -ENOEXEC, "%s: ELF type %u not handled", name, h.e_type);

	ElfFile *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->data = buf;
	f->len = len;
	f->type = h.e_type;
	f->entry = h.e_entry;
	f->phoff = h.e_phoff;
	f->shoff = h.e_shoff;
	f->name = strdup(name);
	if (!f->name) {
		r = -ENOMEM;
		goto fail;
	}
	r = read_segments(f, &h, e);
	if (r < 0)
		goto fail;
	r = read_sections(f, &h, e);
	if (r < 0)
		goto fail;
	for (size_t i = 0; i < f->n_sections; i++) {
		ElfSection *s = &f->sections[i];
		if (s->type == SHT_SYMTAB && !f->symtab_index) {
			f->symtab_index = (uint32_t)i;
			r = read_symtab(f, s, &f->symbols, &f->n_symbols, e);
		} else if (s->type == SHT_DYNSYM && !f->dynsym_index) {
			f->dynsym_index = (uint32_t)i;
			r = read_symtab(f, s, &f->dynsyms, &f->n_dynsyms, e);
		}
		if (r < 0)
			goto fail;
	}
	for (size_t i = 0; i < f->n_sections; i++) {
		ElfSection *s = &f->sections[i];
		if (s->type == SHT_RELA)
			r = read_relas(f, s, e);
		else if (s->type == SHT_REL)
			r = base_err(e, -EBADMSG, "%s: SHT_REL section %s on x86-64", f->name, s->name);
		else if (s->type == SHT_NOTE && s->data)
			r = scan_notes(f, s->offset, s->size, e);
		if (r < 0)
			goto fail;
	}
	for (size_t i = 0; i < f->n_segments; i++) {
		if (f->segments[i].type == PT_NOTE && f->segments[i].filesz) {
			r = scan_notes(f, f->segments[i].offset, f->segments[i].filesz, e);
			if (r < 0)
				goto fail;
		}
	}
	*ret = f;
	return 0;
fail:
	elf_close(f);
	return r;
}

int elf_open_path(const char *path, ElfFile **ret, BaseErr *e)
{
	_cleanup_close_ int fd = -1;
	int r = base_fs_open_regular(AT_FDCWD, path, 0, &fd);
	if (r < 0)
		return base_err(e, r, "%s: %s", path,
				r == -EINVAL ? "not a regular file" : strerror(-r));
	uint8_t *buf = NULL;
	size_t len = 0;
	r = base_fs_read_fd(fd, ELF_MAX_FILE, &buf, &len);
	if (r < 0)
		return base_err(e, r, "%s: cannot read: %s", path, strerror(-r));
	ElfFile *f = NULL;
	r = elf_open_mem(buf, len, path, &f, e);
	if (r < 0) {
		free(buf);
		return r;
	}
	f->owned = buf;
	*ret = f;
	return 0;
}

int elf_build_id(const ElfFile *f, const uint8_t **ret_id, size_t *ret_len)
{
	if (!f->build_id_len)
		return -ENOENT;
	*ret_id = f->build_id;
	*ret_len = f->build_id_len;
	return 0;
}

const ElfSection *elf_find_section(const ElfFile *f, const char *name)
{
	for (size_t i = 0; i < f->n_sections; i++)
		if (strcmp(f->sections[i].name, name) == 0)
			return &f->sections[i];
	return NULL;
}

static const ElfSymbol *find_in(const ElfSymbol *syms, size_t n, const char *name)
{
	for (size_t i = 1; i < n; i++)
		if (syms[i].shndx != SHN_UNDEF && syms[i].type != STT_SECTION &&
		    syms[i].type != STT_FILE && strcmp(syms[i].name, name) == 0)
			return &syms[i];
	return NULL;
}

const ElfSymbol *elf_find_symbol(const ElfFile *f, const char *name)
{
	const ElfSymbol *s = find_in(f->symbols, f->n_symbols, name);
	return s ? s : find_in(f->dynsyms, f->n_dynsyms, name);
}

const ElfSymbol *elf_symbol_at(const ElfFile *f, uint32_t shndx, uint64_t off)
{
	const ElfSymbol *best = NULL;
	for (size_t i = 1; i < f->n_symbols; i++) {
		const ElfSymbol *s = &f->symbols[i];
		if (s->shndx != shndx || s->type == STT_SECTION || s->type == STT_FILE || !s->name[0])
			continue;
		if (s->value <= off && (off < s->value + s->size || (s->size == 0 && s->value == off)))
			if (!best || (best->bind == STB_LOCAL && s->bind != STB_LOCAL))
				best = s;
	}
	return best;
}

int elf_vaddr_to_offset(const ElfFile *f, uint64_t vaddr, uint64_t len, uint64_t *ret_off)
{
	for (size_t i = 0; i < f->n_segments; i++) {
		const ElfSegment *s = &f->segments[i];
		if (s->type != PT_LOAD || vaddr < s->vaddr)
			continue;
		uint64_t d = vaddr - s->vaddr;
		if (d <= s->filesz && len <= s->filesz - d) {
			*ret_off = s->offset + d;
			return 0;
		}
	}
	return -ERANGE;
}
