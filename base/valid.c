/* The naming rules svc shares across its libraries.  Each rule lives here
 * once: a manifest may only name what a record can hold and the patcher can
 * take, or a package installs and its record then reads back "unreadable". */
#include <string.h>

#include "base/base.h"

static int is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int base_valid_id(const char *s)
{
	size_t n = s ? strnlen(s, BASE_ID_MAX + 1) : 0;
	if (n == 0 || n > BASE_ID_MAX || !is_alnum(s[0]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && !strchr("._+-", s[i]))
			return 0;
	return 1;
}

int base_check_path(const char *path, const char **why)
{
	size_t n = strnlen(path, BASE_PATH_MAX + 1);
	if (n == 0 || path[0] != '/') {
		*why = "path is not absolute";
		return -EBADMSG;
	}
	if (n > BASE_PATH_MAX) {
		*why = "path is too long";
		return -EBADMSG;
	}
	if (n == 1) {
		*why = "path is the root directory";
		return -EBADMSG;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)path[i];
		if (c < 0x20 || c == 0x7f) {
			*why = "path holds a control character";
			return -EBADMSG;
		}
		if (c == ' ') {
			*why = "path holds a space";
			return -EBADMSG;
		}
	}
	if (strstr(path, "//")) {
		*why = "path holds //";
		return -EBADMSG;
	}
	if (path[n - 1] == '/') {
		*why = "path ends in /";
		return -EBADMSG;
	}
	for (const char *c = path + 1; *c;) {
		size_t len = strcspn(c, "/");
		if (len == 1 && c[0] == '.') {
			*why = "path has a . component";
			return -EBADMSG;
		}
		if (len == 2 && c[0] == '.' && c[1] == '.') {
			*why = "path has a .. component";
			return -EBADMSG;
		}
		c += len;
		if (*c == '/')
			c++;
	}
	return 0;
}
