#include "common/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
cs_text_put (cs_text_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    int n = vsnprintf (NULL, 0, fmt, ap);
    va_end (ap);
    if (n < 0 || self->failed)
        return;
    if (self->len + (size_t) n + 1 > self->cap) {
        size_t cap = (self->len + (size_t) n + 1) * 2;
        char *grown = realloc (self->data, cap);
        if (!grown) {
            self->failed = 1;
            return;
        }
        self->data = grown;
        self->cap = cap;
    }
    va_start (ap, fmt);
    vsnprintf (self->data + self->len, self->cap - self->len, fmt, ap);
    va_end (ap);
    self->len += (size_t) n;
}

char *
cs_text_take (cs_text_t *self)
{
    char *out = self->failed ? NULL : self->data ? self->data : strdup ("");
    if (self->failed)
        free (self->data);
    memset (self, 0, sizeof *self);
    return out;
}

void
cs_text_free (cs_text_t *self)
{
    free (self->data);
    memset (self, 0, sizeof *self);
}
