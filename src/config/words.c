/* Shell-like word splitting for command lines (see words.h). Newlines count
 * as blanks because a multi-line INI value reaches us joined with '\n', and
 * '#' is an ordinary character: the INI reader has already removed comments,
 * as supervisord's shlex.split() call does not treat '#' either. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "drover/words.h"

static bool words_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

void words_free(char **argv)
{
	cfg_strv_free(argv);
}

int words_split(const char *line, char ***argv, char *err, size_t errlen)
{
	char **v = cfg_xmalloc(sizeof(*v));
	size_t n = 0;
	struct cfg_buf w = {0};
	bool in_word = false; /* true once a word has begun, even as '' */
	const char *p = line;

	v[0] = NULL;
	for (;;) {
		char c = *p;
		if (c == '\0' || words_blank(c)) {
			if (in_word) {
				v = cfg_xrealloc(v, (n + 2) * sizeof(*v));
				v[n++] = cfg_buf_take(&w);
				v[n] = NULL;
				in_word = false;
			}
			if (c == '\0')
				break;
			p++;
			continue;
		}
		if (c == '\\' && p[1] == '\n') { /* backslash-newline joins lines */
			p += 2;
			continue;
		}
		/* A word begins here even if it stays empty, as '' does. */
		in_word = true;
		if (c == '\\') {
			if (p[1] == '\0') {
				snprintf(err, errlen, "trailing backslash");
				goto fail;
			}
			cfg_buf_addc(&w, p[1]);
			p += 2;
		} else if (c == '\'') {
			const char *close = strchr(p + 1, '\'');
			if (close == NULL) {
				snprintf(err, errlen, "unterminated single quote");
				goto fail;
			}
			cfg_buf_addn(&w, p + 1, (size_t)(close - p - 1));
			p = close + 1;
		} else if (c == '"') {
			p++;
			for (;;) {
				if (*p == '\0') {
					snprintf(err, errlen, "unterminated double quote");
					goto fail;
				}
				if (*p == '"')
					break;
				if (*p == '\\' && p[1] != '\0' &&
				    strchr("\"\\$`\n", p[1]) != NULL) {
					if (p[1] != '\n')
						cfg_buf_addc(&w, p[1]);
					p += 2;
					continue;
				}
				cfg_buf_addc(&w, *p++);
			}
			p++;
		} else {
			cfg_buf_addc(&w, c);
			p++;
		}
	}
	*argv = v;
	return 0;
fail:
	free(w.s);
	words_free(v);
	*argv = NULL;
	return -1;
}
