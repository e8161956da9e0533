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

/* The issue's cases: one Swedish address however it is typed. */
TEST (unicode_addresses)
{
    const char *same [] = {
        "åsa@förening.se",
        "ÅSA@FÖRENING.SE",                      /* upper case, both parts */
        "Åsa@Förening.Se",
        "åsa@xn--frening-90a.se",               /* the domain's ASCII form */
        "ÅSA@XN--FRENING-90A.SE",
        "a\xCC\x8Asa@fo\xCC\x88rening.se",      /* NFD: a + ring, o + diaeresis */
        "A\xCC\x8ASA@FO\xCC\x88RENING.SE",      /* NFD upper case */
        "\xC2\xA0ÅSA@förening.se ",             /* blanks around */
        "åsa@ｆöｒｅｎｉｎｇ.se",                 /* full-width letters in the domain */
    };
    for (size_t i = 0; i < sizeof same / sizeof *same; i++)
        expect (same [i], CS_EMAIL_OK, "åsa@förening.se");
    expect ("STRAßE@club.de", CS_EMAIL_OK, "strasse@club.de");     /* full case folding */
    expect ("ÉLODIE@CLUB.FR", CS_EMAIL_OK, "élodie@club.fr");
    expect ("user@例え.jp", CS_EMAIL_OK, "user@例え.jp");
    expect ("user@XN--R8JZ45G.JP", CS_EMAIL_OK, "user@例え.jp");
    expect ("åsa@xn--zz.se", CS_EMAIL_BAD_DOMAIN, NULL);             /* not punycode */
    expect ("\xC3@club.se", CS_EMAIL_BAD_CHAR, NULL);                /* cut UTF-8 */
    expect ("a\xC2\x85" "b@club.se", CS_EMAIL_BAD_CHAR, NULL);          /* C1 control */
    expect ("a@fö_rening.se", CS_EMAIL_BAD_DOMAIN, NULL);
    /* found by fuzz_email: an xn-- label decoding to what UTS #46 never
     * gives (U+00A8 U+00A0) normalised once but not twice */
    expect ("a@xn--6ap.e", CS_EMAIL_BAD_DOMAIN, NULL);
    expect ("a@xn--abc-.se", CS_EMAIL_BAD_DOMAIN, NULL);            /* punycode of plain ASCII */
    /* found by fuzz_email: U+037E GREEK QUESTION MARK is ';' in NFC, so the
     * normal form held a character every address refuses */
    expect ("a\xCD\xBE" "b@club.se", CS_EMAIL_BAD_CHAR, NULL);
}

/* A normal form normalises to itself: stored addresses stay findable. */
TEST (normal_form_is_stable)
{
    const char *in [] = { "ÅSA@FÖRENING.SE", "STRAßE@club.de", "user@XN--R8JZ45G.JP",
                          "Erik.Lind@Example.SE", "ǅemal@club.hr", "ΣΊΣΥΦΟΣ@club.gr" };
    for (size_t i = 0; i < sizeof in / sizeof *in; i++) {
        char a [CS_EMAIL_MAX + 1], b [CS_EMAIL_MAX + 1];
        CHECK_INT (cs_email_normalize (in [i], a), CS_EMAIL_OK);
        CHECK_INT (cs_email_normalize (a, b), CS_EMAIL_OK);
        CHECK_STR (a, b);
    }
}

TEST (same_person_same_key)
{
    char a [CS_EMAIL_MAX + 1], b [CS_EMAIL_MAX + 1];
    CHECK_INT (cs_email_normalize (" Erik.Lind@Example.se", a), CS_EMAIL_OK);
    CHECK_INT (cs_email_normalize ("erik.lind@example.SE  ", b), CS_EMAIL_OK);
    CHECK_STR (a, b);
}
