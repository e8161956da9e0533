#include "harness.h"
#include "common/email.h"

static void
expect (const char *in, cs_email_error_t error, const char *out)
{
    char norm [CS_EMAIL_MAX + 1];
    cs_email_error_t got = cs_email_normalize (in, norm);
    if (got != error)
        cs_test_fail (__FILE__, __LINE__, "'%s': got '%s', expected '%s'", in ? in : "(null)",
                      cs_email_strerror (got), cs_email_strerror (error));
    if (out && strcmp (norm, out) != 0)
        cs_test_fail (__FILE__, __LINE__, "'%s' normalised to '%s', expected '%s'", in, norm, out);
    if (error != CS_EMAIL_OK && norm [0])
        cs_test_fail (__FILE__, __LINE__, "'%s': output not empty on error", in);
}

TEST (normalises)
{
    expect ("Asa.Oberg@Example.SE", CS_EMAIL_OK, "asa.oberg@example.se");
    expect ("  mixed@Case.se \t", CS_EMAIL_OK, "mixed@case.se");
    expect ("\xC2\xA0nbsp@club.se\xC2\xA0", CS_EMAIL_OK, "nbsp@club.se");
    expect ("first+tag@sub.club.example", CS_EMAIL_OK, "first+tag@sub.club.example");
    expect ("åsa@föreningen.se", CS_EMAIL_OK, "åsa@föreningen.se");
    expect ("o'brien@club.ie", CS_EMAIL_OK, "o'brien@club.ie");
}

TEST (rejects)
{
    expect (NULL, CS_EMAIL_EMPTY, "");
    expect ("", CS_EMAIL_EMPTY, "");
    expect ("   ", CS_EMAIL_EMPTY, "");
    expect ("no-at-sign.se", CS_EMAIL_NO_AT, NULL);
    expect ("a@b@c.se", CS_EMAIL_MANY_AT, NULL);
    expect ("@club.se", CS_EMAIL_BAD_LOCAL, NULL);
    expect (".a@club.se", CS_EMAIL_BAD_LOCAL, NULL);
    expect ("a.@club.se", CS_EMAIL_BAD_LOCAL, NULL);
    expect ("a..b@club.se", CS_EMAIL_BAD_LOCAL, NULL);
    expect ("a@", CS_EMAIL_BAD_DOMAIN, NULL);
    expect ("a@localhost", CS_EMAIL_BAD_DOMAIN, NULL);
    expect ("a@club..se", CS_EMAIL_BAD_DOMAIN, NULL);
    expect ("a@.club.se", CS_EMAIL_BAD_DOMAIN, NULL);
    expect ("a@club.se.", CS_EMAIL_BAD_DOMAIN, NULL);
    expect ("a@-club.se", CS_EMAIL_BAD_DOMAIN, NULL);
    expect ("a@club-.se", CS_EMAIL_BAD_DOMAIN, NULL);
    expect ("a@cl_ub.se", CS_EMAIL_BAD_DOMAIN, NULL);
    expect ("a b@club.se", CS_EMAIL_BAD_CHAR, NULL);
    expect ("a@club.se, b@club.se", CS_EMAIL_BAD_CHAR, NULL);
    expect ("Name <a@club.se>", CS_EMAIL_BAD_CHAR, NULL);
    expect ("a\x01@club.se", CS_EMAIL_BAD_CHAR, NULL);
}

TEST (lengths)
{
    char local [80], addr [400];
    memset (local, 'a', 64);
    local [64] = 0;
    snprintf (addr, sizeof addr, "%s@club.se", local);
    expect (addr, CS_EMAIL_OK, NULL);
    memset (local, 'a', 65);
    local [65] = 0;
    snprintf (addr, sizeof addr, "%s@club.se", local);
    expect (addr, CS_EMAIL_BAD_LOCAL, NULL);
    /* 254 bytes is the limit for the whole address */
    char domain [300];
    memset (domain, 0, sizeof domain);
    for (int i = 0; i < 4; i++)
        strcat (domain, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.");
    strcat (domain, "se");     /* 4 x 61 + 2 = 246 bytes */
    snprintf (addr, sizeof addr, "abcdefg@%s", domain);      /* 254 */
    expect (addr, CS_EMAIL_OK, NULL);
    snprintf (addr, sizeof addr, "abcdefgh@%s", domain);     /* 255 */
    expect (addr, CS_EMAIL_TOO_LONG, NULL);
    /* a domain label longer than 63 bytes */
    memset (domain, 'b', 64);
    strcpy (domain + 64, ".se");
    snprintf (addr, sizeof addr, "a@%s", domain);
    expect (addr, CS_EMAIL_BAD_DOMAIN, NULL);
}

TEST (same_person_same_key)
{
    char a [CS_EMAIL_MAX + 1], b [CS_EMAIL_MAX + 1];
    CHECK_INT (cs_email_normalize (" Erik.Lind@Example.se", a), CS_EMAIL_OK);
    CHECK_INT (cs_email_normalize ("erik.lind@example.SE  ", b), CS_EMAIL_OK);
    CHECK_STR (a, b);
}
