#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#define LINE_MAX_BYTES 8192
#define MAX_SECRETS 64

struct _cs_log_t {
    char *stage;                     /* stage= on every line */
    FILE *stream;                    /* where lines go (not owned) */
    cs_log_level_t level;            /* lines below this level are dropped */
    char *secrets [MAX_SECRETS];     /* strings scrubbed from every value */
    size_t secret_count;             /* entries used in secrets */
    int journal;                     /* the stream is journald's: lines carry a priority */
};

/* systemd sets JOURNAL_STREAM to the device and inode of the stream it
 * connected to the journal; a line starting "<3>" is then stored at that
 * priority (sd-daemon(3)). */
static int
is_journal (FILE *stream)
{
    const char *js = getenv ("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    return js && sscanf (js, "%llu:%llu", &dev, &ino) == 2 && fstat (fileno (stream), &st) == 0
           && (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

static const char *s_level_names [] = { "debug", "info", "warn", "error" };

cs_log_t *
cs_log_new (const char *stage, FILE *stream)
{
    cs_log_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->stage = strdup (stage ? stage : "cardsync");
    if (!self->stage) {
        free (self);
        return NULL;
    }
    self->stream = stream ? stream : stdout;
    self->level = CS_LOG_INFO;
    self->journal = is_journal (self->stream);
    setvbuf (self->stream, NULL, _IOLBF, 0);
    return self;
}

void
cs_log_destroy (cs_log_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cs_log_t *self = *self_p;
    for (size_t i = 0; i < self->secret_count; i++)
        free (self->secrets [i]);
    free (self->stage);
    free (self);
    *self_p = NULL;
}

void
cs_log_set_level (cs_log_t *self, cs_log_level_t level)
{
    self->level = level;
}

int
cs_log_level_parse (const char *text)
{
    for (int i = 0; i < 4; i++)
        if (text && strcmp (text, s_level_names [i]) == 0)
            return i;
    return -1;
}

int
cs_log_add_secret (cs_log_t *self, const char *secret)
{
    if (!secret || !*secret)
        return 0;
    for (size_t i = 0; i < self->secret_count; i++)
        if (strcmp (self->secrets [i], secret) == 0)
            return 0;
    if (self->secret_count == MAX_SECRETS)
        return -1;
    char *copy = strdup (secret);
    if (!copy)
        return -1;
    self->secrets [self->secret_count++] = copy;
    return 0;
}

void
cs_log_timestamp (char out [32])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime (CLOCK_REALTIME, &ts);
    gmtime_r (&ts.tv_sec, &tm);
    size_t n = strftime (out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (out + n, 32 - n, ".%03dZ", (int) (ts.tv_nsec / 1000000) % 1000);
}

static void
append_raw (char *buf, size_t size, size_t *len, const char *text, size_t n)
{
    if (*len + n >= size)
        n = *len < size - 1 ? size - 1 - *len : 0;
    memcpy (buf + *len, text, n);
    *len += n;
    buf [*len] = 0;
}

static int
needs_quotes (const char *value)
{
    if (!*value)
        return 1;
    for (const unsigned char *p = (const unsigned char *) value; *p; p++)
        if (*p <= ' ' || *p == '=' || *p == '"' || *p == '\\' || *p == 0x7f)
            return 1;
    return 0;
}

void
cs_log_append_pair (char *buf, size_t size, size_t *len, const char *key, const char *value)
{
    if (!value)
        value = "";
    if (*len)
        append_raw (buf, size, len, " ", 1);
    /* Keys are ours, but keep them logfmt-safe anyway. */
    for (const char *k = key; *k; k++) {
        char c = *k;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '_' || c == '.' || c == '-'))
            c = '_';
        append_raw (buf, size, len, &c, 1);
    }
    append_raw (buf, size, len, "=", 1);
    if (!needs_quotes (value)) {
        append_raw (buf, size, len, value, strlen (value));
        return;
    }
    append_raw (buf, size, len, "\"", 1);
    for (const unsigned char *p = (const unsigned char *) value; *p; p++) {
        char esc [8];
        if (*p == '"' || *p == '\\') {
            esc [0] = '\\'; esc [1] = (char) *p;
            append_raw (buf, size, len, esc, 2);
        }
        else if (*p == '\n')
            append_raw (buf, size, len, "\\n", 2);
        else if (*p == '\r')
            append_raw (buf, size, len, "\\r", 2);
        else if (*p == '\t')
            append_raw (buf, size, len, "\\t", 2);
        else if (*p < 0x20 || *p == 0x7f) {
            snprintf (esc, sizeof esc, "\\u%04x", *p);
            append_raw (buf, size, len, esc, 6);
        }
        else
            append_raw (buf, size, len, (const char *) p, 1);
    }
    append_raw (buf, size, len, "\"", 1);
}

/* Copies value into out with every registered secret replaced. */
static const char *
scrub (cs_log_t *self, const char *value, char *out, size_t size)
{
    if (!value || self->secret_count == 0)
        return value;
    int found = 0;
    for (size_t i = 0; i < self->secret_count && !found; i++)
        found = strstr (value, self->secrets [i]) != NULL;
    if (!found)
        return value;
    size_t len = 0;
    out [0] = 0;
    const char *p = value;
    while (*p) {
        size_t best_len = 0;
        for (size_t i = 0; i < self->secret_count; i++) {
            size_t n = strlen (self->secrets [i]);
            if (n > best_len && strncmp (p, self->secrets [i], n) == 0)
                best_len = n;
        }
        if (best_len) {
            append_raw (out, size, &len, "[redacted]", 10);
            p += best_len;
        }
        else
            append_raw (out, size, &len, p++, 1);
    }
    return out;
}

static void
emit (cs_log_t *self, cs_log_level_t level, const char *event, va_list *pairs,
      const char *msg)
{
    char line [LINE_MAX_BYTES];
    char clean [LINE_MAX_BYTES];
    char ts [32];
    size_t len = 0;
    line [0] = 0;
    cs_log_timestamp (ts);
    cs_log_append_pair (line, sizeof line, &len, "ts", ts);
    cs_log_append_pair (line, sizeof line, &len, "level", s_level_names [level]);
    cs_log_append_pair (line, sizeof line, &len, "stage", self->stage);
    cs_log_append_pair (line, sizeof line, &len, "event", event);
    if (msg)
        cs_log_append_pair (line, sizeof line, &len, "msg",
                            scrub (self, msg, clean, sizeof clean));
    else {
        const char *key;
        while ((key = va_arg (*pairs, const char *)) != NULL) {
            const char *value = va_arg (*pairs, const char *);
            cs_log_append_pair (line, sizeof line, &len, key,
                                scrub (self, value, clean, sizeof clean));
        }
    }
    append_raw (line, sizeof line, &len, "\n", 1);
    if (line [len - 1] != '\n')
        line [len - 1] = '\n';           /* truncated: still one whole line */
    if (self->journal) {
        static const char *const prio [] = { SD_DEBUG, SD_INFO, SD_WARNING, SD_ERR };
        fputs (prio [level], self->stream);
    }
    fputs (line, self->stream);
}

void
cs_log (cs_log_t *self, cs_log_level_t level, const char *event, ...)
{
    if (!self || level < self->level)
        return;
    va_list ap;
    va_start (ap, event);
    emit (self, level, event, &ap, NULL);
    va_end (ap);
}

void
cs_logf (cs_log_t *self, cs_log_level_t level, const char *event, const char *fmt, ...)
{
    if (!self || level < self->level)
        return;
    char msg [LINE_MAX_BYTES];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (msg, sizeof msg, fmt, ap);
    va_end (ap);
    emit (self, level, event, NULL, msg);
}
