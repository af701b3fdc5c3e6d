/* Split a command line into words the way a POSIX shell would for a simple
 * command: whitespace separates, '...' is literal, "..." allows \" \\ \$ \`
 * escapes, a backslash outside quotes escapes the next character. No
 * expansion of any kind ($VAR, globs, ~) and no operators: `a|b` is one word. */
#ifndef DROVER_WORDS_H
#define DROVER_WORDS_H

#include <stddef.h>

/* On success returns 0 and sets *argv to a NULL-terminated array of words
 * (free with words_free); an empty or all-blank line gives zero words. On a
 * syntax error (unterminated quote, trailing backslash) returns -1 and
 * writes a sentence to err. */
int words_split(const char *line, char ***argv, char *err, size_t errlen);

void words_free(char **argv);

#endif
