#include "common/email.h"

#include <idn2.h>
#include <stdlib.h>
#include <string.h>
#include <unicase.h>
#include <unistr.h>

/* An address as typed may be longer than its normal form (decomposed
 * letters, blanks); anything past this is not an address. */
#define RAW_MAX 1024

/* ASCII blanks and U+00A0 (C2 A0), which spreadsheets love to leave behind. */
static size_t
blank_len (const unsigned char *p)
{
    if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '\v' || *p == '\f')
        return 1;
    if (p [0] == 0xC2 && p [1] == 0xA0)
        return 2;
    return 0;
}

static size_t
trailing_blank_len (const unsigned char *start, const unsigned char *end)
{
    if (end > start && blank_len (end - 1) == 1)
        return 1;
    if (end - start >= 2 && end [-2] == 0xC2 && end [-1] == 0xA0)
        return 2;
    return 0;
}

/* Blanks, controls and the characters that separate addresses in a list. */
static int
forbidden (unsigned char c)
{
    return c < 0x21 || c == 0x7f || c == ',' || c == ';' || c == '<' || c == '>' || c == '('
           || c == ')' || c == '[' || c == ']' || c == '\\' || c == '"' || c == ':';
}

static int
is_ascii (const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p [i] >= 0x80)
            return 0;
    return 1;
}

static void
ascii_lower (char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p [i] >= 'A' && p [i] <= 'Z')
            p [i] = (char) (p [i] + ('a' - 'A'));
}

/* The part before '@': NFC and Unicode case folding (ASCII: lower case),
 * written to out (room for size bytes). Returns its length, or 0 if it does
 * not fit or cannot be folded. */
static size_t
fold_local (const unsigned char *p, size_t n, char *out, size_t size)
{
    if (is_ascii (p, n)) {
        if (n >= size)
            return 0;
        memcpy (out, p, n);
        ascii_lower (out, n);
        return n;
    }
    uint8_t buf [RAW_MAX * 3];
    size_t len = sizeof buf;
    uint8_t *folded = u8_casefold (p, n, NULL, UNINORM_NFC, buf, &len);
    if (!folded)
        return 0;
    size_t written = 0;
    if (len < size) {
        memcpy (out, folded, len);
        written = len;
    }
    if (folded != buf)
        free (folded);
    return written;
}

/* Letters, digits and hyphens in dot-separated labels of 1..63 bytes, at
 * least two, none starting or ending with '-': the ASCII form of a domain. */
static int
domain_ok (const char *domain)
{
    size_t dlen = strlen (domain);
    if (dlen == 0 || dlen > 253 || !strchr (domain, '.'))
        return 0;
    size_t label = 0;
    for (size_t i = 0; i <= dlen; i++) {
        unsigned char c = (unsigned char) domain [i];
        if (c == '.' || c == 0) {
            if (label == 0 || label > 63 || domain [i - 1] == '-')
                return 0;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return 0;
        if (c == '-' && label == 0)
            return 0;
        label++;
    }
    return 1;
}

/* The part after '@', written to out in its Unicode form: UTS #46 mapping
 * (case folding, NFC) through its ASCII form, so that FÖRENING.SE,
 * förening.se and xn--frening-90a.se are one domain. Returns its length, or
 * 0 if it is not a domain or does not fit. */
static size_t
map_domain (const unsigned char *p, size_t n, char *out, size_t size)
{
    char raw [RAW_MAX + 1];
    memcpy (raw, p, n);
    raw [n] = 0;
    if (is_ascii (p, n)) {
        ascii_lower (raw, n);
        if (!strstr (raw, "xn--")) {        /* plain ASCII: nothing to map */
            if (!domain_ok (raw) || n >= size)
                return 0;
            memcpy (out, raw, n + 1);
            return n;
        }
    }
    /* the Unicode form must map back to the same ASCII form: an xn-- label
     * that decodes to what UTS #46 would not produce is not a domain */
    char *ace = NULL, *unicode = NULL, *again = NULL;
    size_t written = 0;
    const int flags = IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL;
    if (idn2_lookup_u8 ((const uint8_t *) raw, (uint8_t **) &ace, flags) == IDN2_OK
        && domain_ok (ace) && idn2_to_unicode_8z8z (ace, &unicode, 0) == IDN2_OK
        && idn2_lookup_u8 ((const uint8_t *) unicode, (uint8_t **) &again, flags) == IDN2_OK
        && !strcmp (ace, again)) {
        size_t len = strlen (unicode);
        if (len > 0 && len < size) {
            memcpy (out, unicode, len + 1);
            written = len;
        }
    }
    idn2_free (ace);
    idn2_free (unicode);
    idn2_free (again);
    return written;
}

cs_email_error_t
cs_email_normalize (const char *in, char out [CS_EMAIL_MAX + 1])
{
    out [0] = 0;
    if (!in)
        return CS_EMAIL_EMPTY;
    const unsigned char *p = (const unsigned char *) in;
    const unsigned char *end = p + strlen (in);
    size_t n;
    while (p < end && (n = blank_len (p)) > 0)
        p += n;
    while (end > p && (n = trailing_blank_len (p, end)) > 0)
        end -= n;
    size_t len = (size_t) (end - p);
    if (len == 0)
        return CS_EMAIL_EMPTY;
    if (len > RAW_MAX)
        return CS_EMAIL_TOO_LONG;
    if (u8_check (p, len))
        return CS_EMAIL_BAD_CHAR;

    size_t at = len;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p [i];
        if (forbidden (c))
            return CS_EMAIL_BAD_CHAR;
        if (c == 0xC2 && i + 1 < len && p [i + 1] < 0xA0)     /* C1 controls, U+0080..009F */
            return CS_EMAIL_BAD_CHAR;
        if (c == '@') {
            if (at != len)
                return CS_EMAIL_MANY_AT;
            at = i;
        }
    }
    if (at == len)
        return CS_EMAIL_NO_AT;
    if (at == 0)
        return CS_EMAIL_BAD_LOCAL;
    if (at + 1 == len)
        return CS_EMAIL_BAD_DOMAIN;

    char buf [3 * RAW_MAX + 2];
    size_t llen = fold_local (p, at, buf, 65);
    /* folding may make what was refused above: U+037E GREEK QUESTION MARK
     * is ';' in NFC */
    for (size_t i = 0; i < llen; i++)
        if (forbidden ((unsigned char) buf [i]) || buf [i] == '@')
            return CS_EMAIL_BAD_CHAR;
    /* local part: 1..64 bytes, no leading, trailing or doubled dot */
    if (llen == 0 || buf [0] == '.' || buf [llen - 1] == '.')
        return CS_EMAIL_BAD_LOCAL;
    for (size_t i = 1; i < llen; i++)
        if (buf [i] == '.' && buf [i - 1] == '.')
            return CS_EMAIL_BAD_LOCAL;
    buf [llen] = '@';
    size_t dlen = map_domain (p + at + 1, len - at - 1, buf + llen + 1, sizeof buf - llen - 1);
    if (dlen == 0)
        return CS_EMAIL_BAD_DOMAIN;
    if (llen + 1 + dlen > CS_EMAIL_MAX)
        return CS_EMAIL_TOO_LONG;
    memcpy (out, buf, llen + 1 + dlen + 1);
    return CS_EMAIL_OK;
}

const char *
cs_email_strerror (cs_email_error_t error)
{
    switch (error) {
        case CS_EMAIL_OK: return "ok";
        case CS_EMAIL_EMPTY: return "no e-mail address";
        case CS_EMAIL_TOO_LONG: return "e-mail address longer than 254 bytes";
        case CS_EMAIL_NO_AT: return "e-mail address without '@'";
        case CS_EMAIL_MANY_AT: return "e-mail address with more than one '@'";
        case CS_EMAIL_BAD_LOCAL: return "e-mail address with a bad part before '@'";
        case CS_EMAIL_BAD_DOMAIN: return "e-mail address with a bad domain";
        case CS_EMAIL_BAD_CHAR: return "e-mail address with a space, a control or forbidden character, or bad UTF-8";
    }
    return "unknown e-mail error";
}
