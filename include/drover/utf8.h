/* Worker output is bytes; JSON and terminals want UTF-8. */
#ifndef DROVER_UTF8_H
#define DROVER_UTF8_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence at s (at most avail bytes), or 0 if
 * the byte at s starts none (stray continuation, overlong, surrogate). */
size_t utf8_seq_len(const unsigned char *s, size_t avail);

/* Copy len bytes of in to out (room for 3 * len + 1) with every invalid byte
 * replaced by U+FFFD; returns the new length. NUL-terminates. */
size_t utf8_sanitize(const char *in, size_t len, char *out);

#endif
