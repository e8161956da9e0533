#include "common/email.h"

#include <string.h>

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
    if (len > CS_EMAIL_MAX)
        return CS_EMAIL_TOO_LONG;

    char buf [CS_EMAIL_MAX + 1];
    size_t at = len;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p [i];
        if (c < 0x21 || c == 0x7f || c == ',' || c == ';' || c == '<' || c == '>'
            || c == '(' || c == ')' || c == '[' || c == ']' || c == '\\' || c == '"'
            || c == ':')
            return CS_EMAIL_BAD_CHAR;
        if (c == '@') {
            if (at != len)
                return CS_EMAIL_MANY_AT;
            at = i;
        }
        buf [i] = (char) (c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    }
    buf [len] = 0;
    if (at == len)
        return CS_EMAIL_NO_AT;
    /* local part: 1..64 bytes, no leading, trailing or doubled dot */
    if (at == 0 || at > 64 || buf [0] == '.' || buf [at - 1] == '.')
        return CS_EMAIL_BAD_LOCAL;
    for (size_t i = 1; i < at; i++)
        if (buf [i] == '.' && buf [i - 1] == '.')
            return CS_EMAIL_BAD_LOCAL;
    /* domain: dot-separated labels of letters, digits, hyphens or UTF-8,
     * at least two labels, none empty, none starting or ending with '-' */
    const char *domain = buf + at + 1;
    size_t dlen = len - at - 1;
    if (dlen == 0 || !strchr (domain, '.'))
        return CS_EMAIL_BAD_DOMAIN;
    size_t label = 0;
    for (size_t i = 0; i <= dlen; i++) {
        unsigned char c = (unsigned char) domain [i];
        if (c == '.' || c == 0) {
            if (label == 0 || label > 63 || domain [i - 1] == '-')
                return CS_EMAIL_BAD_DOMAIN;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c >= 0x80))
            return CS_EMAIL_BAD_DOMAIN;
        if (c == '-' && label == 0)
            return CS_EMAIL_BAD_DOMAIN;
        label++;
    }
    memcpy (out, buf, len + 1);
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
        case CS_EMAIL_BAD_CHAR: return "e-mail address with a space or forbidden character";
    }
    return "unknown e-mail error";
}
