/* cs_text: a growable text, written with printf formats. A failed
 * allocation is remembered; cs_text_take then gives NULL. */
#ifndef CS_TEXT_H
#define CS_TEXT_H

#include <stddef.h>

typedef struct {
    char *data;                 /* NUL-terminated, or NULL while empty */
    size_t len, cap;
    int failed;                 /* out of memory at some point */
} cs_text_t;

void cs_text_put (cs_text_t *self, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
/* The text (the caller frees it; "" if nothing was written), or NULL if
 * memory ran out; self is empty again. */
char *cs_text_take (cs_text_t *self);
void cs_text_free (cs_text_t *self);

#endif
