/* cs_arena: many small strings and arrays freed at once (the planner's
 * inputs: up to 100,000 members and as many persons, read for one plan). */
#ifndef CS_ARENA_H
#define CS_ARENA_H

#include <stddef.h>

typedef struct _cs_arena_chunk_t cs_arena_chunk_t;

typedef struct {
    cs_arena_chunk_t *head;     /* newest chunk first */
    int nomem;                  /* an allocation failed */
} cs_arena_t;

/* size bytes, aligned for any type; NULL (and nomem set) if out of memory. */
void *cs_arena_alloc (cs_arena_t *self, size_t size);
/* A copy of s; NULL for NULL. */
char *cs_arena_strdup (cs_arena_t *self, const char *s);
void cs_arena_free (cs_arena_t *self);

#endif
