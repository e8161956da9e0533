/* cs_pages: the window's HTML, rendered on the server from the differ's
 * answers (the same JSON as /api/), so that every page works without
 * JavaScript. One small stylesheet (/style.css) and, for the live view only,
 * one small script (/live.js) that appends events as they come; no external
 * asset. Each function returns a new string (NULL when out of memory); a
 * NULL answer shows `error` instead. Every text from the data is escaped. */
#ifndef CS_PAGES_H
#define CS_PAGES_H

#include <jansson.h>

extern const char cs_pages_css [];
extern const char cs_pages_live_js [];

/* What a page needs besides its data: the form token, a line saying what
 * the last action did (or NULL). */
typedef struct {
    const char *csrf;
    const char *flash;
} cs_page_ctx_t;

char *cs_page_overview (const json_t *status, const char *error);
char *cs_page_devices (const json_t *status, const json_t *failed, const char *error);
char *cs_page_failed (const json_t *failed, const cs_page_ctx_t *ctx, const char *error);
char *cs_page_guard (const json_t *held, const cs_page_ctx_t *ctx, const char *error);
/* email NULL: the search form alone. */
char *cs_page_member (const char *email, const json_t *member, const json_t *history, const char *error);
char *cs_page_review (const json_t *unmatched, const json_t *orphans, const char *error);
/* events: the latest events (oldest first), as /api/history's rows. */
char *cs_page_live (const json_t *events, const char *error);
char *cs_page_message (const char *title, const char *text);

#endif
