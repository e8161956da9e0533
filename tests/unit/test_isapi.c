#include "harness.h"
#include "pusher/isapi.h"

static cs_class_t
classify (long http, const char *body, int challenged)
{
    cs_outcome_t o;
    cs_isapi_classify (NULL, http, body, strlen (body), challenged, &o);
    cs_class_t cls = o.cls;
    cs_outcome_clear (&o);
    return cls;
}

TEST (success_needs_status_and_body)
{
    CHECK_INT (classify (200, "{\"statusCode\":1,\"statusString\":\"OK\",\"subStatusCode\":\"ok\"}", 0), CS_CLASS_OK);
    CHECK_INT (classify (200, "{\"UserInfoSearch\":{}}", 0), CS_CLASS_OK);       /* no statusCode */
    CHECK_INT (classify (200, "<DeviceInfo><model>x</model></DeviceInfo>", 0), CS_CLASS_OK);
    /* HTTP 200 with a refusal inside is not a success */
    CHECK_INT (classify (200, "{\"statusCode\":6,\"statusString\":\"Invalid Content\","
                              "\"subStatusCode\":\"employeeNoAlreadyExist\",\"errorCode\":1610637344,"
                              "\"errorMsg\":\"checkUser\"}", 0), CS_CLASS_EXISTS);
    CHECK_INT (classify (200, "{\"statusCode\":\"6\",\"subStatusCode\":\"deviceUserFull\"}", 0), CS_CLASS_FULL);
    CHECK_INT (classify (200, "<?xml version=\"1.0\"?>\n<ResponseStatus><statusCode>1</statusCode></ResponseStatus>\n", 0),
               CS_CLASS_OK);
}

/* An answer that cannot be read is not a success, whatever its HTTP status:
 * it is tried again (and never audited as applied). */
TEST (an_unreadable_2xx_is_not_a_success)
{
    static const char *const unreadable [] = {
        "{\"statusCode\": 1, \"statusStr",                   /* cut short */
        "",                                                 /* empty */
        "   ",
        "<html><body>OK</body></html>",                     /* a web page */
        "<!DOCTYPE html><html><body>OK</body></html>",
        "<ResponseStatus><statusCode>1</statusCode>",       /* XML cut short */
        "OK",
        "[1, 2",
        NULL,
    };
    for (int i = 0; unreadable [i]; i++) {
        cs_outcome_t o;
        cs_isapi_classify (NULL, 200, unreadable [i], strlen (unreadable [i]), 0, &o);
        CHECK_INT (o.cls, CS_CLASS_TRANSIENT);
        CHECK_HAS (o.msg, "HTTP 200");
        cs_outcome_clear (&o);
    }
    cs_outcome_t o;
    static const char cut [] = "{\"statusCode\": 1, \"statusStr";
    cs_isapi_classify (NULL, 200, cut, strlen (cut), 0, &o);
    CHECK_HAS (o.msg, "cannot be read: {\"statusCode\": 1, \"statusStr");
    cs_outcome_clear (&o);
    cs_isapi_classify (NULL, 204, "", 0, 0, &o);
    CHECK_STR (o.msg, "the device answered HTTP 204 with an empty body, not a status");
    cs_outcome_clear (&o);
    /* a statusCode that is not 1 is not a success either, even 0 */
    CHECK_INT (classify (200, "{\"statusCode\":0}", 0), CS_CLASS_INVALID);
}

TEST (classes)
{
    CHECK_INT (classify (400, "{\"statusCode\":6,\"subStatusCode\":\"employeeNoNotExist\"}", 0), CS_CLASS_NOT_FOUND);
    CHECK_INT (classify (400, "{\"statusCode\":6,\"subStatusCode\":\"deviceUserNotExist\"}", 0), CS_CLASS_NOT_FOUND);
    CHECK_INT (classify (400, "{\"statusCode\":6,\"subStatusCode\":\"badJsonContent\",\"errorMsg\":\"x.employeeNo\"}", 0), CS_CLASS_INVALID);
    CHECK_INT (classify (403, "{\"statusCode\":4,\"subStatusCode\":\"notSupport\"}", 0), CS_CLASS_UNSUPPORTED);
    CHECK_INT (classify (404, "<html>Not Found</html>", 0), CS_CLASS_UNSUPPORTED);
    CHECK_INT (classify (503, "<html>busy</html>", 0), CS_CLASS_TRANSIENT);
    CHECK_INT (classify (500, "", 0), CS_CLASS_TRANSIENT);
    CHECK_INT (classify (200, "{\"statusCode\":2,\"subStatusCode\":\"deviceBusy\"}", 0), CS_CLASS_TRANSIENT);
    CHECK (cs_isapi_retryable (CS_CLASS_TRANSIENT));
    CHECK (!cs_isapi_retryable (CS_CLASS_AUTH));
    CHECK (!cs_isapi_retryable (CS_CLASS_INVALID));
    cs_outcome_t o;
    cs_isapi_classify ("Connection refused", 0, NULL, 0, 0, &o);
    CHECK_INT (o.cls, CS_CLASS_TRANSIENT);
    CHECK_STR (o.msg, "Connection refused");
    cs_outcome_clear (&o);
}

TEST (the_devices_own_words)
{
    cs_outcome_t o;
    const char *body = "{\"statusCode\":6,\"statusString\":\"Invalid Content\",\"subStatusCode\":"
                       "\"badJsonContent\",\"errorCode\":1610612759,\"errorMsg\":\"1. The message "
                       "has only URL ... is wrong.employeeNo\"}";
    cs_isapi_classify (NULL, 400, body, strlen (body), 0, &o);
    CHECK_INT (o.code, 6);
    CHECK_STR (o.sub, "badJsonContent");
    CHECK_HAS (o.msg, "Invalid Content: 1. The message has only URL ... is wrong.employeeNo");
    cs_outcome_clear (&o);
    /* an XML ResponseStatus */
    body = "<ResponseStatus><statusCode>4</statusCode><statusString>Invalid Operation</statusString>"
           "<subStatusCode>notSupport</subStatusCode></ResponseStatus>";
    cs_isapi_classify (NULL, 403, body, strlen (body), 0, &o);
    CHECK_INT (o.cls, CS_CLASS_UNSUPPORTED);
    CHECK_INT (o.code, 4);
    cs_outcome_clear (&o);
}

TEST (authentication)
{
    const char *check = "<userCheck><statusValue>401</statusValue><lockStatus>unlock</lockStatus>"
                        "<unlockTime>0</unlockTime><retryLoginTime>3</retryLoginTime></userCheck>";
    cs_outcome_t o;
    cs_isapi_classify (NULL, 401, check, strlen (check), 1, &o);
    CHECK_INT (o.cls, CS_CLASS_AUTH);
    CHECK_HAS (o.msg, "allows 3 more attempts");
    cs_outcome_clear (&o);
    /* the same 401 without a challenge: busy firmware, try again later */
    CHECK_INT (classify (401, "<html>Unauthorized</html>", 0), CS_CLASS_TRANSIENT);
    const char *locked = "<userCheck><lockStatus>lock</lockStatus><unlockTime>1795</unlockTime>"
                         "<retryLoginTime>0</retryLoginTime></userCheck>";
    cs_isapi_classify (NULL, 401, locked, strlen (locked), 1, &o);
    CHECK_INT (o.cls, CS_CLASS_LOCKED);
    CHECK_INT (o.unlock_s, 1795);
    cs_outcome_clear (&o);
}

TEST (bodies)
{
    char *s = cs_isapi_search_body ("cs1", 30, 30);
    CHECK_STR (s, "{\"UserInfoSearchCond\":{\"searchID\":\"cs1\",\"searchResultPosition\":30,\"maxResults\":30}}");
    free (s);
    const char *nos [] = { "1042", "Å-7" };
    s = cs_isapi_search_list_body ("cs1", 2, nos, 2);
    CHECK_STR (s, "{\"UserInfoSearchCond\":{\"searchID\":\"cs1\",\"searchResultPosition\":0,"
                  "\"maxResults\":2,\"EmployeeNoList\":[{\"employeeNo\":\"1042\"},{\"employeeNo\":\"Å-7\"}]}}");
    free (s);
    json_t *rec = json_loads ("{\"employeeNo\":\"7\",\"name\":\"Å\",\"userType\":\"normal\",\"numOfCard\":2,"
                              "\"faceURL\":\"http://x\",\"Valid\":{\"enable\":false,\"beginTime\":\"2020-01-01T00:00:00\","
                              "\"endTime\":\"2037-12-31T23:59:59\"},\"PersonInfoExtends\":[{\"value\":\"a@b.se\"}]}", 0, NULL);
    s = cs_isapi_modify_body (rec, "2025-01-01T00:00:00", "2025-11-01T23:59:59");
    CHECK_HAS (s, "\"Valid\":{\"enable\":true,\"beginTime\":\"2025-01-01T00:00:00\",\"endTime\":\"2025-11-01T23:59:59\",\"timeType\":\"local\"}");
    CHECK_HAS (s, "\"PersonInfoExtends\":[{\"value\":\"a@b.se\"}]");
    CHECK_LACKS (s, "numOfCard");
    CHECK_LACKS (s, "faceURL");
    free (s);
    json_decref (rec);
    CHECK (cs_isapi_modify_body (NULL, "a", "b") == NULL);
    s = cs_isapi_record_body ("1001", "Ny", "ny@club.se", "2025-01-01T00:00:00", "2025-12-31T23:59:59", "1,3", 2);
    CHECK_HAS (s, "\"RightPlan\":[{\"doorNo\":1,\"planTemplateNo\":\"2\"},{\"doorNo\":3,\"planTemplateNo\":\"2\"}]");
    CHECK_HAS (s, "\"doorRight\":\"1,3\"");
    CHECK_HAS (s, "\"PersonInfoExtends\":[{\"value\":\"ny@club.se\"}]");
    free (s);
}
