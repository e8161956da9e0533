/* cs_isapi: what the devices' answers mean (hikvision-isapi.md §3), and the
 * request bodies cardsync sends. No I/O here: pusher/main.c does the transfers. */
#ifndef CS_ISAPI_H
#define CS_ISAPI_H

#include <jansson.h>
#include <stddef.h>

typedef enum {
    CS_OUT_OK = 0,
    CS_OUT_TRANSIENT,       /* network, timeout, 5xx, deviceBusy, 401 without a challenge */
    CS_OUT_AUTH,            /* 401 after a challenge: the credentials are wrong */
    CS_OUT_LOCKED,          /* the device locked the account */
    CS_OUT_NOT_FOUND,       /* employeeNoNotExist / deviceUserNotExist */
    CS_OUT_EXISTS,          /* employeeNoAlreadyExist / deviceUserAlreadyExist */
    CS_OUT_FULL,            /* deviceUserFull */
    CS_OUT_UNSUPPORTED,     /* notSupport, methodNotAllowed, 404 */
    CS_OUT_INVALID          /* any other refusal: bad field, bad format ... */
} cs_outcome_class_t;

typedef struct {
    cs_outcome_class_t cls;
    long http;              /* HTTP status, 0 if none */
    int code;               /* statusCode, 0 if none */
    char sub [64];          /* subStatusCode */
    char msg [600];         /* the device's own words, or what went wrong */
    int unlock_s;           /* with CS_OUT_LOCKED: seconds until the device unlocks */
    json_t *json;           /* the parsed body when it was JSON (owned), else NULL */
} cs_outcome_t;

/* Classifies a finished request. curl_error is NULL when the transfer itself
 * worked; challenged says whether the 401 carried a WWW-Authenticate header. */
void cs_isapi_classify (const char *curl_error, long http, const char *body, size_t len,
                        int challenged, cs_outcome_t *out);
void cs_outcome_clear (cs_outcome_t *out);

/* "ok", "transient", "auth", "locked", "not_found", "exists", "full",
 * "unsupported", "invalid": the class names results and events carry. */
const char *cs_isapi_class_name (cs_outcome_class_t cls);

/* Whether a class is worth trying again later. */
int cs_isapi_retryable (cs_outcome_class_t cls);

/* The body of a Search for one page of every person (a scan). */
char *cs_isapi_search_body (const char *search_id, int position, int max_results);

/* A search for the persons with these employeeNos (the read of several
 * read-modify-writes in one request). */
char *cs_isapi_search_list_body (const char *search_id, int max_results,
                                 const char *const *employee_nos, size_t count);

/* The Modify body: the stored record with read-only fields dropped and Valid
 * replaced (enable, begin, end, local time). NULL if the record is unusable. */
char *cs_isapi_modify_body (const json_t *record, const char *begin, const char *end);

/* The Record body for a new person. */
char *cs_isapi_record_body (const char *employee_no, const char *name, const char *tag,
                            const char *begin, const char *end, const char *door_right,
                            int plan_template);

#endif
