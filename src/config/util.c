/* Small helpers of the config module: growable strings, allocation that
 * aborts on failure (config is read at start-up and on reload, where there is
 * nothing sensible to do without memory), message lists and path arithmetic. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "config_internal.h"

void *cfg_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		abort();
	return p;
}

void *cfg_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		abort();
	return q;
}

char *cfg_xstrndup(const char *s, size_t n)
{
	char *p = cfg_xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *cfg_xstrdup(const char *s)
{
	return s == NULL ? NULL : cfg_xstrndup(s, strlen(s));
}

void cfg_strv_free(char **v)
{
	if (v == NULL)
		return;
	for (char **p = v; *p != NULL; p++)
		free(*p);
	free(v);
}

static void cfg_buf_reserve(struct cfg_buf *b, size_t more)
{
	if (b->len + more + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + more + 1)
		cap *= 2;
	b->s = cfg_xrealloc(b->s, cap);
	b->cap = cap;
}

void cfg_buf_addn(struct cfg_buf *b, const char *s, size_t n)
{
	cfg_buf_reserve(b, n);
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void cfg_buf_add(struct cfg_buf *b, const char *s)
{
	cfg_buf_addn(b, s, strlen(s));
}

void cfg_buf_addc(struct cfg_buf *b, char c)
{
	cfg_buf_addn(b, &c, 1);
}

void cfg_buf_vaddf(struct cfg_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;

	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		abort();
	cfg_buf_reserve(b, (size_t)n);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void cfg_buf_addf(struct cfg_buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cfg_buf_vaddf(b, fmt, ap);
	va_end(ap);
}

void cfg_buf_add_quoted(struct cfg_buf *b, const char *s)
{
	cfg_buf_addc(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			cfg_buf_addf(b, "\\%c", *p);
		else if (*p == '\n')
			cfg_buf_add(b, "\\n");
		else if (*p == '\t')
			cfg_buf_add(b, "\\t");
		else if (*p < 0x20 || *p == 0x7f)
			cfg_buf_addf(b, "\\x%02x", *p);
		else
			cfg_buf_addc(b, (char)*p);
	}
	cfg_buf_addc(b, '"');
}

char *cfg_buf_take(struct cfg_buf *b)
{
	char *s = b->s ? b->s : cfg_xstrdup("");

	b->s = NULL;
	b->len = b->cap = 0;
	return s;
}

void cfg_vmsgs_add(struct conf_msgs *msgs, const char *fmt, va_list ap)
{
	struct cfg_buf b = {0};

	if (msgs == NULL)
		return;
	cfg_buf_vaddf(&b, fmt, ap);
	if (msgs->count == msgs->cap) {
		msgs->cap = msgs->cap ? msgs->cap * 2 : 8;
		msgs->items = cfg_xrealloc(msgs->items, msgs->cap * sizeof(*msgs->items));
	}
	msgs->items[msgs->count++] = cfg_buf_take(&b);
}

void conf_msgs_add(struct conf_msgs *msgs, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cfg_vmsgs_add(msgs, fmt, ap);
	va_end(ap);
}

void conf_msgs_free(struct conf_msgs *msgs)
{
	if (msgs == NULL)
		return;
	for (size_t i = 0; i < msgs->count; i++)
		free(msgs->items[i]);
	free(msgs->items);
	msgs->items = NULL;
	msgs->count = msgs->cap = 0;
}

/* Collapse "", "." and ".." segments of an absolute path, as normpath does. */
static char *path_normalize(const char *abs)
{
	size_t n = strlen(abs);
	char *out = cfg_xmalloc(n + 2);
	size_t len = 0;
	const char *p = abs;

	while (*p != '\0') {
		while (*p == '/')
			p++;
		const char *seg = p;
		while (*p != '\0' && *p != '/')
			p++;
		size_t sl = (size_t)(p - seg);
		if (sl == 0 || (sl == 1 && seg[0] == '.'))
			continue;
		if (sl == 2 && seg[0] == '.' && seg[1] == '.') {
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--; /* the '/' before the dropped segment */
			continue;
		}
		out[len++] = '/';
		memcpy(out + len, seg, sl);
		len += sl;
	}
	if (len == 0)
		out[len++] = '/';
	out[len] = '\0';
	return out;
}

char *cfg_path_abs(const char *base, const char *path)
{
	struct cfg_buf b = {0};
	char *cwd = NULL;

	if (path[0] == '/')
		return path_normalize(path);
	if (base == NULL || base[0] != '/') {
		cwd = getcwd(NULL, 0);
		cfg_buf_add(&b, cwd != NULL ? cwd : "/");
		free(cwd);
		cfg_buf_addc(&b, '/');
	}
	if (base != NULL) {
		cfg_buf_add(&b, base);
		cfg_buf_addc(&b, '/');
	}
	cfg_buf_add(&b, path);
	char *joined = cfg_buf_take(&b);
	char *norm = path_normalize(joined);
	free(joined);
	return norm;
}

char *cfg_path_dir_abs(const char *file)
{
	const char *slash = strrchr(file, '/');

	if (slash == NULL)
		return cfg_path_abs(NULL, ".");
	if (slash == file)
		return cfg_xstrdup("/");
	char *dir = cfg_xstrndup(file, (size_t)(slash - file));
	char *abs = cfg_path_abs(NULL, dir);
	free(dir);
	return abs;
}

void cfg_host_node_name(char *buf, size_t len)
{
	struct utsname u;

	snprintf(buf, len, "%s", uname(&u) == 0 ? u.nodename : "localhost");
}
