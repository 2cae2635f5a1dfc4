/* The compile log of `svc build`: one small text file per compiler run,
 * written by the wrapper (svc-cc) into the directory named by SVC_CC_LOG,
 * read back by the build flow.  Format: docs/formats.md "Compile log".
 *
 * One file per record (named by the wrapper's pid and a counter, created
 * with O_EXCL) instead of one appended file: parallel builds (make -jN) run
 * many wrappers at once, and a whole file per record needs no lock and can
 * never interleave two records.  A record ends with "end": a wrapper killed
 * mid-write leaves a file the reader refuses by name. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "svc/internal.h"

static const char *const kind_names[] = {
	[SVC_CC_COMPILE] = "compile",
	[SVC_CC_LINK] = "link",
	[SVC_CC_ARCHIVE] = "archive",
};

/* Values: bytes <= 0x20, 0x7f and '%' as %XX, so every value is one word. */
static int put_value(BaseBuf *b, const char *key, const char *v)
{
	int r = base_buf_printf(b, "%s ", key);
	for (const unsigned char *p = (const unsigned char *)v; *p && r >= 0; p++)
		r = (*p <= 0x20 || *p == 0x7f || *p == '%') ? base_buf_printf(b, "%%%02X", *p)
							     : base_buf_append(b, p, 1);
	return r < 0 ? r : base_buf_append(b, "\n", 1);
}

static char *get_value(const char *s)
{
	char *out = malloc(strlen(s) + 1), *o = out;
	if (!out)
		return NULL;
	for (; *s; s++) {
		unsigned v;
		if (*s == '%' && sscanf(s + 1, "%2x", &v) == 1 && s[1] && s[2]) {
			*o++ = (char)v;
			s += 2;
		} else
			*o++ = *s;
	}
	*o = 0;
	return out;
}

int svc_cc_record_write(const char *dir, const SvcCcRecord *rec, BaseErr *e)
{
	static unsigned counter;
	BaseBuf b = { 0 };
	_cleanup_close_ int dfd = -1;
	int fd = -1, r;

	r = base_buf_printf(&b, "svc-cc 1\nkind %s\n", kind_names[rec->kind]);
	if (r >= 0)
		r = put_value(&b, "compiler", rec->compiler);
	if (r >= 0)
		r = put_value(&b, "cwd", rec->cwd);
	if (r >= 0)
		r = put_value(&b, "output", rec->output);
	if (r >= 0 && rec->source)
		r = put_value(&b, "source", rec->source);
	for (size_t i = 0; i < rec->argc && r >= 0; i++)
		r = put_value(&b, "arg", rec->argv[i]);
	for (size_t i = 0; i < rec->n_inputs && r >= 0; i++)
		r = put_value(&b, "input", rec->inputs[i]);
	if (r >= 0)
		r = base_buf_printf(&b, "end\n");
	if (r >= 0 && (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		r = -errno;
	for (int tries = 0; r >= 0 && fd < 0; tries++) {
		char name[64];
		/* named by the monotonic clock first: the log reads back in the
		 * order the records were written ("the last record of an object
		 * wins" means the latest), whatever the process ids */
		snprintf(name, sizeof(name), "%020llu.%ld.%u.rec",
			 (unsigned long long)base_now_ns(), (long)getpid(), counter++);
		r = base_fs_openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL, 0644, &fd);
		if (r == -EEXIST && tries < 1000)
			r = 0;
	}
	if (r >= 0)
		r = base_fs_write_all(fd, b.data, b.len);
	if (fd >= 0 && close(fd) < 0 && r >= 0)
		r = -errno;
	base_buf_free(&b);
	return r < 0 ? base_err(e, r, "%s: cannot write a compile record: %s", dir, base_strerror(r)) : 0;
}

static int push(char ***v, size_t *n, char *s)
{
	char **nv = realloc(*v, (*n + 2) * sizeof(**v));
	if (!nv || !s) {
		free(s);
		if (nv)
			*v = nv;
		return -ENOMEM;
	}
	nv[(*n)++] = s;
	nv[*n] = NULL;
	*v = nv;
	return 0;
}

static void record_clear(SvcCcRecord *r)
{
	free(r->compiler);
	free(r->cwd);
	free(r->output);
	free(r->source);
	for (size_t i = 0; i < r->argc; i++)
		free(r->argv[i]);
	free(r->argv);
	for (size_t i = 0; i < r->n_inputs; i++)
		free(r->inputs[i]);
	free(r->inputs);
	memset(r, 0, sizeof(*r));
}

void svc_cc_records_free(SvcCcRecord *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		record_clear(&r[i]);
	free(r);
}

static int parse_record(char *text, const char *name, SvcCcRecord *rec, BaseErr *e)
{
	int ended = 0, r = 0;
	char *save = NULL;
	if (strncmp(text, "svc-cc 1\n", 9) != 0)
		return base_err(e, -EBADMSG, "%s: not a compile record (version 1)", name);
	for (char *line = strtok_r(text + 9, "\n", &save); line && r >= 0;
	     line = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(line, ' ');
		if (ended)
			return base_err(e, -EBADMSG, "%s: text after 'end'", name);
		if (strcmp(line, "end") == 0) {
			ended = 1;
			continue;
		}
		if (!sp)
			return base_err(e, -EBADMSG, "%s: line without a value: %s", name, line);
		*sp = 0;
		const char *v = sp + 1;
		if (strcmp(line, "kind") == 0) {
			for (size_t k = 1; k < sizeof(kind_names) / sizeof(*kind_names); k++)
				if (strcmp(v, kind_names[k]) == 0)
					rec->kind = (SvcCcKind)k;
		} else if (strcmp(line, "compiler") == 0 && !rec->compiler)
			r = (rec->compiler = get_value(v)) ? 0 : -ENOMEM;
		else if (strcmp(line, "cwd") == 0 && !rec->cwd)
			r = (rec->cwd = get_value(v)) ? 0 : -ENOMEM;
		else if (strcmp(line, "output") == 0 && !rec->output)
			r = (rec->output = get_value(v)) ? 0 : -ENOMEM;
		else if (strcmp(line, "source") == 0 && !rec->source)
			r = (rec->source = get_value(v)) ? 0 : -ENOMEM;
		else if (strcmp(line, "arg") == 0)
			r = push(&rec->argv, &rec->argc, get_value(v));
		else if (strcmp(line, "input") == 0)
			r = push(&rec->inputs, &rec->n_inputs, get_value(v));
		else
			return base_err(e, -EBADMSG, "%s: unknown field '%s'", name, line);
	}
	if (r < 0)
		return r;
	if (!ended)
		return base_err(e, -EBADMSG, "%s: torn record (no 'end')", name);
	if (!rec->kind || !rec->compiler || !rec->cwd || !rec->output || !rec->argc ||
	    (rec->kind == SVC_CC_COMPILE && !rec->source))
		return base_err(e, -EBADMSG, "%s: record lacks a field", name);
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_record(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return n > 4 && strcmp(d->d_name + n - 4, ".rec") == 0;
}

int svc_cc_log_read(const char *dir, SvcCcRecord **ret, size_t *ret_n, BaseErr *e)
{
	struct dirent **ents = NULL;
	_cleanup_close_ int dfd = -1;
	SvcCcRecord *recs = NULL;
	int n = scandir(dir, &ents, is_record, by_name), r = 0;
	size_t got = 0;

	if (n < 0)
		return base_err(e, -errno, "%s: %s", dir, strerror(errno));
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		r = -errno;
	if (r >= 0 && n && !(recs = calloc((size_t)n, sizeof(*recs))))
		r = -ENOMEM;
	for (int i = 0; i < n && r >= 0; i++) {
		uint8_t *buf = NULL;
		size_t len = 0;
		r = base_fs_read_at(dfd, ents[i]->d_name, 1 << 24, &buf, &len);
		if (r < 0) {
			r = base_err(e, r, "%s/%s: %s", dir, ents[i]->d_name, base_strerror(r));
			break;
		}
		char *text = realloc(buf, len + 1);
		if (!text) {
			free(buf);
			r = -ENOMEM;
			break;
		}
		text[len] = 0;
		_cleanup_free_ char *name = base_strdupf("%s/%s", dir, ents[i]->d_name);
		r = parse_record(text, name ? name : dir, &recs[got], e);
		free(text);
		got++;
	}
	for (int i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	if (r < 0) {
		svc_cc_records_free(recs, got);
		return r;
	}
	*ret = recs;
	*ret_n = got;
	return 0;
}
