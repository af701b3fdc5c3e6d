/* Numbers and text cut to a column's width: the units operators read in
 * htop and top, so that a glance is enough. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

#include "drover/metrics.h"
#include "drover/ui_table.h"

void ui_fmt_bytes(long long bytes, char *buf, size_t len)
{
	if (bytes < 0)
		snprintf(buf, len, "-");
	else
		metrics_format_bytes((unsigned long long)bytes, buf, len);
}

void ui_fmt_duration(double secs, char *buf, size_t len)
{
	if (isnan(secs) || secs < 0) {
		snprintf(buf, len, "-");
		return;
	}
	long long s = (long long)secs;
	if (s < 3600)
		snprintf(buf, len, "%lld:%02lld", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%lld:%02lld:%02lld", s / 3600, s % 3600 / 60, s % 60);
	else if (s < 100 * 86400LL)
		snprintf(buf, len, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
	else
		snprintf(buf, len, "%lldd", s / 86400);
}

void ui_fmt_pct(double pct, char *buf, size_t len)
{
	if (isnan(pct) || pct < 0)
		snprintf(buf, len, "-");
	else if (pct < 99.95)
		snprintf(buf, len, "%.1f", pct);
	else
		snprintf(buf, len, "%.0f", pct);
}

void ui_fmt_count(long long n, char *buf, size_t len)
{
	if (n < 0)
		snprintf(buf, len, "-");
	else if (n < 100000)
		snprintf(buf, len, "%lld", n);
	else if (n < 1000000)
		snprintf(buf, len, "%lldK", n / 1000);
	else if (n < 10000000)
		snprintf(buf, len, "%.1fM", (double)n / 1e6);
	else if (n < 1000000000)
		snprintf(buf, len, "%lldM", n / 1000000);
	else
		snprintf(buf, len, "%.1fG", (double)n / 1e9);
}

/* One character of src: its bytes, display width and replacement. */
struct glyph {
	size_t bytes;
	int width;
	bool replace; /* draw '?' instead */
};

static struct glyph next_glyph(const char *s, bool utf8)
{
	unsigned char c = (unsigned char)*s;
	if (c < 0x20 || c == 0x7f)
		return (struct glyph){1, 1, true};
	if (c < 0x80)
		return (struct glyph){1, 1, false};
	if (!utf8)
		return (struct glyph){1, 1, true};
	mbstate_t st;
	memset(&st, 0, sizeof(st));
	wchar_t wc;
	size_t n = mbrtowc(&wc, s, strnlen(s, MB_LEN_MAX), &st);
	if (n == (size_t)-1 || n == (size_t)-2 || n == 0)
		return (struct glyph){1, 1, true};
	int w = wcwidth(wc);
	if (w < 0)
		return (struct glyph){n, 1, true};
	return (struct glyph){n, w, false};
}

int ui_fit(const char *src, int cols, bool utf8, char *dst, size_t dstlen)
{
	static const char ellipsis[] = "\u2026";
	size_t out = 0;
	int used = 0;
	if (!dstlen)
		return 0;
	dst[0] = '\0';
	if (cols <= 0)
		return 0;
	/* first pass: does it all fit? */
	int total = 0;
	for (const char *p = src; *p;) {
		struct glyph g = next_glyph(p, utf8);
		total += g.width;
		p += g.bytes;
	}
	int room = total <= cols ? cols : cols - 1; /* keep one for the ellipsis */
	for (const char *p = src; *p;) {
		struct glyph g = next_glyph(p, utf8);
		if (used + g.width > room)
			break;
		size_t need = g.replace ? 1 : g.bytes;
		if (out + need + 1 > dstlen)
			break;
		if (g.replace) {
			dst[out++] = '?';
		} else {
			memcpy(dst + out, p, g.bytes);
			out += g.bytes;
		}
		used += g.replace ? 1 : g.width;
		p += g.bytes;
	}
	if (total > cols) {
		const char *mark = utf8 ? ellipsis : "~";
		size_t n = strlen(mark);
		if (out + n + 1 <= dstlen) {
			memcpy(dst + out, mark, n);
			out += n;
			used++;
		}
	}
	dst[out] = '\0';
	return used;
}
