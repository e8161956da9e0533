/* cs_isapi: what the devices' answers mean (hikvision-isapi.md §3), and the
 * request bodies cardsync sends. No I/O here: pusher/main.c does the transfers. */
#ifndef CS_ISAPI_H
#define CS_ISAPI_H

#include "common/vocab.h"

#include <jansson.h>
#include <stddef.h>

typedef struct {
    cs_class_t cls;
    long http;              /* HTTP status, 0 if none */
    int code;               /* statusCode, 0 if none */
    char sub [64];          /* subStatusCode */
    char msg [600];         /* the device's own words, or what went wrong */
    int unlock_s;           /* with CS_CLASS_LOCKED: seconds until the device unlocks */
    json_t *json;           /* the parsed body when it was JSON (owned), else NULL */
} cs_outcome_t;

/* Classifies a finished request. curl_error is NULL when the transfer itself
 * worked; challenged says whether the 401 carried a WWW-Authenticate header. */
void cs_isapi_classify (const char *curl_error, long http, const char *body, size_t len,
                        int challenged, cs_outcome_t *out);
void cs_outcome_clear (cs_outcome_t *out);

/* Whether a class is worth trying again later. */
int cs_isapi_retryable (cs_class_t cls);

/* The body of a Search for one page of every person (a scan). */
char *cs_isapi_search_body (const char *search_id, int position, int max_results);

/* A search for the persons with these employeeNos (the read of several
 * read-modify-writes in one request). */
char *cs_isapi_search_list_body (const char *search_id, int max_results,
                                 const char *const *employee_nos, size_t count);

/* A page of a Search answer (o->json of a classified answer): its status,
 * numOfMatches and the persons as an array (a lone object, as some firmware
 * sends, is made an array). Returns 0, or -1 if it is not a Search answer. */
typedef struct {
    int more;               /* responseStatusStrg MORE: the device has more */
    int64_t matches;        /* numOfMatches: persons in this page */
    json_t *users;          /* borrowed from the answer; NULL if none */
} cs_search_page_t;
int cs_isapi_search_page (json_t *answer, cs_search_page_t *out);

/* One person of a page, its strings borrowed from it. Returns 0, or -1 if it
 * has no employeeNo (it is then not a person cardsync can address). */
typedef struct {
    const char *no;
    const char *name;       /* NULL if absent, likewise the others */
    const char *tag;        /* PersonInfoExtends[0].value, NULL if empty */
    int has_valid;          /* Valid was there: enable, begin and end are from it */
    int enable;
    const char *begin;
    const char *end;
} cs_search_person_t;
int cs_isapi_search_person (const json_t *user, cs_search_person_t *out);

/* The Modify body: the stored record with read-only fields dropped and Valid
 * replaced (enable, begin, end, local time). NULL if the record is unusable. */
char *cs_isapi_modify_body (const json_t *record, const char *begin, const char *end);

/* The Record body for a new person. */
char *cs_isapi_record_body (const char *employee_no, const char *name, const char *tag,
                            const char *begin, const char *end, const char *door_right,
                            int plan_template);

#endif
