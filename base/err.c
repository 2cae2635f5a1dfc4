/* The error context and the one table of domain messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"

static int err_vset(BaseErr *e, int r, int replace, const char *fmt, va_list ap)
{
	if (!e)
		return r;
	if (!replace && e->code != 0)
		return r;
	char raw[sizeof(e->msg)];
	e->code = r;
	vsnprintf(raw, sizeof(raw), fmt, ap);
	/* one line, always, and nothing a terminal would act on: messages
	 * quote records, paths and names that others wrote */
	base_escape(e->msg, sizeof(e->msg), raw);
	return r;
}

int base_err(BaseErr *e, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	err_vset(e, r, 0, fmt, ap);
	va_end(ap);
	return r;
}

int base_err_replace(BaseErr *e, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	err_vset(e, r, 1, fmt, ap);
	va_end(ap);
	return r;
}

void base_err_clear(BaseErr *e)
{
	e->code = 0;
	e->msg[0] = 0;
}

static const struct {
	int code;
	const char *msg;
} domain_msgs[] = {
	{ BASE_E_CORRUPT, "corrupt or malformed" },
	{ BASE_E_SIGNATURE, "signature does not verify" },
	{ BASE_E_UNTRUSTED, "not signed by a trusted key" },
	{ BASE_E_LOCKED, "another svc transaction is running" },
	{ BASE_E_GONE, "process is gone" },
	{ BASE_E_MISMATCH, "not the expected version" },
	{ BASE_E_OLDER, "sequence is not newer than the installed one" },
	{ BASE_E_UNSAFE, "not safe to patch now" },
	{ BASE_E_NOTELF, "not a supported ELF file" },
	{ BASE_E_SYMLINK, "path goes through a symbolic link" },
};

const char *base_strerror(int r)
{
	for (size_t i = 0; i < sizeof(domain_msgs) / sizeof(domain_msgs[0]); i++)
		if (domain_msgs[i].code == -r)
			return domain_msgs[i].msg;
	return strerror(-r);
}

void base_freep(void *p)
{
	free(*(void **)p);
}

void base_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
