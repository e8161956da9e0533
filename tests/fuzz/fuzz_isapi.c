/* A device's answers (pusher/isapi.c): the classifier, the Search page and
 * person readers and the Modify body built from a record the device gave.
 * The first byte picks the HTTP status; the rest is the body. */
#include "pusher/isapi.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const long STATUS [] = { 200, 200, 200, 200, 400, 401, 403, 404, 500, 503, 204, 302 };

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    long http = STATUS [data [0] % (sizeof STATUS / sizeof *STATUS)];
    cs_outcome_t o;
    memset (&o, 0, sizeof o);
    cs_isapi_classify (NULL, http, (const char *) data + 1, size - 1, data [0] & 0x80, &o);
    if (o.cls == CS_CLASS_OK && http == 200 && !o.json && size > 1) {
        /* a 200 is OK only when it was read: with JSON in hand */
        const char *b = (const char *) data + 1;
        size_t i = 0;
        while (i < size - 1 && (b [i] == ' ' || b [i] == '\n' || b [i] == '\r' || b [i] == '\t'))
            i++;
        if (i < size - 1 && b [i] == '{')
            abort ();
    }
    cs_search_page_t page;
    if (o.json && cs_isapi_search_page (o.json, &page) == 0) {
        size_t i;
        json_t *u;
        json_array_foreach (page.users, i, u) {
            cs_search_person_t p;
            if (cs_isapi_search_person (u, &p) != 0)
                continue;
            volatile size_t n = strlen (p.no) + (p.name ? strlen (p.name) : 0)
                                + (p.tag ? strlen (p.tag) : 0);
            (void) n;
            free (cs_isapi_modify_body (u, "2026-01-01T00:00:00", "2026-12-31T23:59:59"));
        }
    }
    cs_outcome_clear (&o);
    return 0;
}
