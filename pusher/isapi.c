#include "pusher/isapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int
to_int (const char *text)
{
    char *end;
    long v = strtol (text, &end, 10);
    return end == text ? 0 : (int) v;
}

int
cs_isapi_retryable (cs_class_t cls)
{
    return cls == CS_CLASS_TRANSIENT;
}

void
cs_outcome_clear (cs_outcome_t *out)
{
    json_decref (out->json);
    memset (out, 0, sizeof *out);
}

/* The text of <name>...</name> in an XML body, if any. */
static int
xml_value (const char *body, const char *name, char *out, size_t size)
{
    char open [64];
    snprintf (open, sizeof open, "<%s>", name);
    const char *p = strstr (body, open);
    if (!p)
        return 0;
    p += strlen (open);
    const char *end = strchr (p, '<');
    size_t n = end ? (size_t) (end - p) : strlen (p);
    if (n >= size)
        n = size - 1;
    memcpy (out, p, n);
    out [n] = 0;
    return 1;
}

/* An XML document, whole as far as a glance can tell: after the prolog, a root
 * element whose closing tag ends the body (or that closes itself), and not
 * an HTML page. */
static int
looks_xml (const char *text)
{
    const char *p = text;
    while (*p == ' ' || (unsigned char) *p == 0xef || (unsigned char) *p == 0xbb || (unsigned char) *p == 0xbf)
        p++;
    if (!strncmp (p, "<?", 2)) {
        const char *q = strstr (p, "?>");
        if (!q)
            return 0;
        for (p = q + 2; *p == ' '; p++)
            ;
    }
    if (p [0] != '<' || !strncasecmp (p, "<html", 5) || !strncasecmp (p, "<!doctype", 9))
        return 0;
    size_t name = strcspn (p + 1, " />");
    if (name == 0 || name > 64)
        return 0;
    size_t n = strlen (p);
    while (n && p [n - 1] == ' ')
        n--;
    if (n >= name + 3 && !strncmp (p + n - name - 3, "</", 2) && !strncmp (p + n - name - 1, p + 1, name)
        && p [n - 1] == '>')
        return 1;
    /* <Root .../> alone */
    const char *close = strchr (p, '>');
    return close && close == p + n - 1 && close [-1] == '/';
}

/* One line of a body for a message. */
static void
excerpt (const char *body, size_t len, char *out, size_t size)
{
    size_t n = len < size - 1 ? len : size - 1;
    for (size_t i = 0; i < n; i++)
        out [i] = body [i] == '\n' || body [i] == '\r' || body [i] == '\t' ? ' ' : body [i];
    out [n] = 0;
}

void
cs_isapi_classify (const char *curl_error, long http, const char *body, size_t len,
                   int challenged, cs_outcome_t *out)
{
    memset (out, 0, sizeof *out);
    out->http = http;
    if (curl_error) {
        out->cls = CS_CLASS_TRANSIENT;
        snprintf (out->msg, sizeof out->msg, "%s", curl_error);
        return;
    }
    char text [4096];
    excerpt (body ? body : "", len, text, sizeof text);
    if (body && len && (body [0] == '{' || (len > 3 && body [3] == '{'))) {
        json_error_t err;
        out->json = json_loadb (body, len, 0, &err);
    }
    json_t *j = out->json;
    int has_code = 0;
    /* a success must be read: a JSON object or an XML document, whole */
    int readable = json_is_object (j) || (!j && body && looks_xml (text));
    if (j && json_is_object (j) && json_object_get (j, "statusCode")) {
        has_code = 1;
        json_t *code = json_object_get (j, "statusCode");
        out->code = json_is_integer (code) ? (int) json_integer_value (code)
                  : json_is_string (code) ? to_int (json_string_value (code)) : 0;
        const char *sub = json_string_value (json_object_get (j, "subStatusCode"));
        snprintf (out->sub, sizeof out->sub, "%s", sub ? sub : "");
        const char *msg = json_string_value (json_object_get (j, "errorMsg"));
        const char *str = json_string_value (json_object_get (j, "statusString"));
        snprintf (out->msg, sizeof out->msg, "%s%s%s", str ? str : "", msg ? ": " : "",
                  msg ? msg : "");
    }
    else if (body && strstr (text, "<statusCode>")) {
        char v [32];
        if (xml_value (text, "statusCode", v, sizeof v)) {
            out->code = to_int (v);
            has_code = 1;
        }
        xml_value (text, "subStatusCode", out->sub, sizeof out->sub);
        xml_value (text, "statusString", out->msg, sizeof out->msg);
    }

    if (http == 401) {
        char lock [16], unlock [16], retry [16];
        if (xml_value (text, "lockStatus", lock, sizeof lock) && !strncmp (lock, "lock", 4)) {
            out->cls = CS_CLASS_LOCKED;
            out->unlock_s = xml_value (text, "unlockTime", unlock, sizeof unlock) ? to_int (unlock) : 1800;
            snprintf (out->msg, sizeof out->msg, "the device has locked the account for %d s "
                      "after failed logins", out->unlock_s);
        }
        else if (!challenged) {
            out->cls = CS_CLASS_TRANSIENT;      /* busy or rebooting firmware does this */
            snprintf (out->msg, sizeof out->msg, "401 without a challenge (device busy?)");
        }
        else {
            out->cls = CS_CLASS_AUTH;
            int left = xml_value (text, "retryLoginTime", retry, sizeof retry) ? to_int (retry) : -1;
            if (left >= 0)
                snprintf (out->msg, sizeof out->msg, "login refused: wrong username or password "
                          "(the device allows %d more attempt%s before it locks)", left,
                          left == 1 ? "" : "s");
            else
                snprintf (out->msg, sizeof out->msg, "login refused: wrong username or password");
        }
        return;
    }
    if (http >= 500 || out->code == 2 || !strcmp (out->sub, "deviceBusy")) {
        out->cls = CS_CLASS_TRANSIENT;
        if (!out->msg [0])
            snprintf (out->msg, sizeof out->msg, "HTTP %ld: %.200s", http, text);
        return;
    }
    if (http >= 200 && http < 300 && !readable) {
        /* cut short, empty, or a web page: whatever the device did, it did not say OK */
        out->cls = CS_CLASS_TRANSIENT;
        if (len == 0)
            snprintf (out->msg, sizeof out->msg, "the device answered HTTP %ld with an empty body, "
                      "not a status", http);
        else
            snprintf (out->msg, sizeof out->msg, "the device answered HTTP %ld with a body that "
                      "cannot be read: %.200s", http, text);
        return;
    }
    if (http >= 200 && http < 300 && (!has_code || out->code == 1)) {
        out->cls = CS_CLASS_OK;
        return;
    }
    const char *sub = out->sub;
    if (!strcmp (sub, "employeeNoNotExist") || !strcmp (sub, "deviceUserNotExist"))
        out->cls = CS_CLASS_NOT_FOUND;
    else if (!strcmp (sub, "employeeNoAlreadyExist") || !strcmp (sub, "deviceUserAlreadyExist"))
        out->cls = CS_CLASS_EXISTS;
    else if (!strcmp (sub, "deviceUserFull"))
        out->cls = CS_CLASS_FULL;
    else if (!strcmp (sub, "notSupport") || !strcmp (sub, "methodNotAllowed") || http == 404
             || http == 405)
        out->cls = CS_CLASS_UNSUPPORTED;
    else
        out->cls = CS_CLASS_INVALID;
    if (!out->msg [0] || (!out->code && !out->sub [0]))
        snprintf (out->msg, sizeof out->msg, "HTTP %ld: %.300s", http, text);
}

int
cs_isapi_search_page (json_t *answer, cs_search_page_t *out)
{
    memset (out, 0, sizeof *out);
    json_t *s = json_object_get (answer, "UserInfoSearch");
    const char *status = json_string_value (json_object_get (s, "responseStatusStrg"));
    if (!json_is_object (s) || !status)
        return -1;
    out->more = !strcmp (status, "MORE");
    out->matches = json_integer_value (json_object_get (s, "numOfMatches"));
    json_t *users = json_object_get (s, "UserInfo");
    if (json_is_object (users)) {           /* some firmware: one object, no array */
        json_t *one = json_array ();
        if (!one || json_array_append (one, users) != 0 || json_object_set_new (s, "UserInfo", one) != 0)
            return -1;
        users = one;
    }
    out->users = json_is_array (users) ? users : NULL;
    return 0;
}

int
cs_isapi_search_person (const json_t *user, cs_search_person_t *out)
{
    memset (out, 0, sizeof *out);
    out->no = json_string_value (json_object_get (user, "employeeNo"));
    if (!out->no)
        return -1;
    out->name = json_string_value (json_object_get (user, "name"));
    json_t *ext = json_array_get (json_object_get (user, "PersonInfoExtends"), 0);
    out->tag = json_string_value (json_object_get (ext, "value"));
    if (out->tag && !*out->tag)
        out->tag = NULL;
    json_t *valid = json_object_get (user, "Valid");
    if (valid) {
        out->has_valid = 1;
        out->enable = json_is_true (json_object_get (valid, "enable"));
        out->begin = json_string_value (json_object_get (valid, "beginTime"));
        out->end = json_string_value (json_object_get (valid, "endTime"));
    }
    return 0;
}

char *
cs_isapi_search_body (const char *search_id, int position, int max_results)
{
    json_t *cond = json_pack ("{s:s, s:i, s:i}", "searchID", search_id, "searchResultPosition",
                              position, "maxResults", max_results);
    json_t *j = json_pack ("{s:o}", "UserInfoSearchCond", cond);
    char *text = json_dumps (j, JSON_COMPACT);
    json_decref (j);
    return text;
}

char *
cs_isapi_search_list_body (const char *search_id, int max_results, const char *const *employee_nos,
                           size_t count)
{
    json_t *list = json_array ();
    for (size_t i = 0; i < count; i++)
        json_array_append_new (list, json_pack ("{s:s}", "employeeNo", employee_nos [i]));
    json_t *j = json_pack ("{s:{s:s, s:i, s:i, s:o}}", "UserInfoSearchCond", "searchID", search_id,
                           "searchResultPosition", 0, "maxResults", max_results, "EmployeeNoList", list);
    char *text = json_dumps (j, JSON_COMPACT);
    json_decref (j);
    return text;
}

char *
cs_isapi_modify_body (const json_t *record, const char *begin, const char *end)
{
    if (!json_is_object (record) || !json_is_string (json_object_get (record, "employeeNo")))
        return NULL;
    json_t *copy = json_deep_copy (record);
    /* counters and links the device computes itself */
    static const char *read_only [] = { "numOfCard", "numOfFP", "numOfFace", "numOfRemoteControl",
                                        "numOfIris", "faceURL", "openDoorTime", NULL };
    for (int i = 0; read_only [i]; i++)
        json_object_del (copy, read_only [i]);
    if (!json_is_string (json_object_get (copy, "userType")))
        json_object_set_new (copy, "userType", json_string ("normal"));
    json_object_set_new (copy, "Valid", json_pack ("{s:b, s:s, s:s, s:s}", "enable", 1,
                                                   "beginTime", begin, "endTime", end,
                                                   "timeType", "local"));
    json_t *j = json_pack ("{s:o}", "UserInfo", copy);
    char *text = json_dumps (j, JSON_COMPACT);
    json_decref (j);
    return text;
}

char *
cs_isapi_record_body (const char *employee_no, const char *name, const char *tag,
                      const char *begin, const char *end, const char *door_right,
                      int plan_template)
{
    json_t *plans = json_array ();
    char template [16];
    snprintf (template, sizeof template, "%d", plan_template);
    for (const char *d = door_right; d && *d; ) {
        json_array_append_new (plans, json_pack ("{s:i, s:s}", "doorNo", to_int (d),
                                                 "planTemplateNo", template));
        d = strchr (d, ',');
        if (d)
            d++;
    }
    json_t *user = json_pack ("{s:s, s:s, s:s, s:{s:b, s:s, s:s, s:s}, s:s, s:o}",
                              "employeeNo", employee_no, "name", name ? name : "",
                              "userType", "normal",
                              "Valid", "enable", 1, "beginTime", begin, "endTime", end,
                              "timeType", "local",
                              "doorRight", door_right, "RightPlan", plans);
    if (tag)
        json_object_set_new (user, "PersonInfoExtends", json_pack ("[{s:s}]", "value", tag));
    json_t *j = json_pack ("{s:o}", "UserInfo", user);
    char *text = json_dumps (j, JSON_COMPACT);
    json_decref (j);
    return text;
}
