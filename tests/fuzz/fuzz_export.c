/* The Cardskipper export's SAX parse (producer/export.c), fed as a download
 * would feed it: the first byte sets the piece size (1..256 bytes). The same
 * body in one piece must give the same verdict and the same members. */
#include "producer/export.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t members;
    uint64_t sum;               /* a digest of what the members carried */
} seen_t;

static int
on_member (void *arg, const cs_member_t *m)
{
    seen_t *s = arg;
    if (!m)
        return 0;
    s->members++;
    s->sum = s->sum * 31 + (uint64_t) m->omid + m->role_count;
    const char *fields [] = { m->email, m->first, m->last };
    for (size_t i = 0; i < 3; i++)
        for (const char *c = fields [i]; c && *c; c++)
            s->sum = s->sum * 131 + (unsigned char) *c;
    for (size_t i = 0; i < m->role_count; i++)
        s->sum = s->sum * 7 + (uint64_t) m->roles [i].role + strlen (m->roles [i].start);
    return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t piece = (size_t) data [0] + 1;
    const char *body = (const char *) data + 1;
    size_t len = size - 1;
    size_t count = len / piece;
    size_t *cuts = malloc ((count + 1) * sizeof *cuts);
    if (!cuts)
        return 0;
    for (size_t i = 0; i < count; i++)
        cuts [i] = (i + 1) * piece;
    seen_t pieces = { 0, 0 }, whole = { 0, 0 };
    cs_export_result_t a, b;
    cs_export_parse (1234, body, len, cuts, count, on_member, &pieces, &a);
    cs_export_parse (1234, body, len, NULL, 0, on_member, &whole, &b);
    if (a.status != b.status || (a.status == CS_EXPORT_OK
                                 && (pieces.members != whole.members || pieces.sum != whole.sum)))
        abort ();
    if (a.status != CS_EXPORT_OK && !a.error [0])
        abort ();                       /* a failed export says why */
    free (cuts);
    return 0;
}
