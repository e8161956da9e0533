#include "differ/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK (64 * 1024)

struct _cs_arena_chunk_t {
    cs_arena_chunk_t *next;
    size_t used;
    size_t size;
    max_align_t data [];
};

static void *
take (cs_arena_t *self, size_t size, size_t align)
{
    cs_arena_chunk_t *c = self->head;
    if (c)
        c->used = (c->used + align - 1) / align * align;
    if (!c || c->used > c->size || c->size - c->used < size) {
        size_t want = size > CHUNK ? size : CHUNK;
        c = malloc (sizeof *c + want);
        if (!c) {
            self->nomem = 1;
            return NULL;
        }
        c->size = want;
        c->used = 0;
        c->next = self->head;
        self->head = c;
    }
    void *p = (char *) c->data + c->used;
    c->used += size;
    return p;
}

void *
cs_arena_alloc (cs_arena_t *self, size_t size)
{
    return take (self, size, sizeof (max_align_t));
}

char *
cs_arena_strdup (cs_arena_t *self, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen (s) + 1;
    char *p = take (self, n, 1);
    if (p)
        memcpy (p, s, n);
    return p;
}

void
cs_arena_free (cs_arena_t *self)
{
    while (self->head) {
        cs_arena_chunk_t *next = self->head->next;
        free (self->head);
        self->head = next;
    }
}
