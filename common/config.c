#include "common/config.h"
#include "common/date.h"
#include "common/email.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_MAX_CHARS 1024
#define MAX_KEYS 16
#define MAX_DEVICES 256
#define IPC_PATH_MAX 107        /* sun_path, less the NUL */

typedef enum {
    SEC_CARDSKIPPER = 0,
    SEC_DEVICE,
    SEC_SYNC,
    SEC_PIPELINE,
    SEC_AUDITOR,
    SEC_NOTIFY,
    SEC_WEB,
    SEC_SITE,
    SEC_KINDS,
    SEC_UNKNOWN
} sec_kind_t;

static const char *s_section_names [SEC_KINDS] = {
    "cardskipper", "device", "sync", "pipeline", "auditor", "notify", "web", "site"
};

/* The schema: every key each kind of section accepts. */
static const char *s_keys [SEC_KINDS][MAX_KEYS] = {
    [SEC_CARDSKIPPER] = { "url", "username", "password_file", "organisation_ids", "roles",
                          "only_active", "poll_interval", "full_interval", "timeout", "auth_retry_min",
                          "ca_file", NULL },
    [SEC_DEVICE]      = { "url", "username", "password_file", "timezone", "max_inflight",
                          "verify", "ca_file", "pinned_pubkey", "door_right",
                          "plan_template", "timeout", "site", NULL },
    [SEC_SYNC]        = { "match", "tag_field", "identity_map", "create_missing", "revoke",
                          "guard_max_revocations", "guard_max_percent", "scan_interval",
                          "lease", "max_retry_age", NULL },
    [SEC_PIPELINE]    = { "run_dir", "state_dir", "differ_in", "pusher_in", "auditor_in",
                          "auditor_pub", "differ_ctl", "curve_cert", "curve_server_key",
                          "curve_clients_dir", "log_level", "heartbeat_interval", "site", NULL },
    [SEC_AUDITOR]     = { "retention_days", NULL },
    [SEC_NOTIFY]      = { "smtp_url", "username", "password_file", "from", "to",
                          "batch_interval", "export_alert_after", "starttls", "ca_file",
                          "webhook_url_file", "healthcheck_url_file", NULL },
    [SEC_WEB]         = { "listen", "allowed_hosts", "username", "password_file", "cert_file",
                          "key_file", "allow_plain_http", NULL },
    [SEC_SITE]        = { "endpoint", "server_key", NULL },
};

typedef struct {
    char *value;                /* as written, trimmed by inih */
    int line;
} raw_t;

typedef struct {
    sec_kind_t kind;
    char *label;                /* "cardskipper", "device door1" */
    char *name;                 /* the device name, or NULL */
    int line;                   /* the header's line; 0 if absent */
    raw_t raw [MAX_KEYS];
} section_t;

typedef struct {
    const char *path;           /* the config file */
    char *dir;                  /* its directory, for relative paths */
    FILE *file;
    int lineno;                 /* the line the reader returned last */
    int prev_was_key;           /* the line before was key = value */
    section_t *sections;
    size_t count;
    size_t cap;
    section_t *current;         /* the section being read, or NULL */
    int seen_header;            /* a [section] line has been read */
    char *errors;               /* one error per line */
    size_t errors_len;
    int error_count;
    int out_of_memory;
} parser_t;

static void
add_error (parser_t *p, int line, const char *section, const char *key, const char *fmt, ...)
    __attribute__ ((format (printf, 5, 6)));

static void
add_error (parser_t *p, int line, const char *section, const char *key, const char *fmt, ...)
{
    char where [512], msg [1024], full [1600];
    if (line > 0)
        snprintf (where, sizeof where, "%s:%d:", p->path, line);
    else
        snprintf (where, sizeof where, "%s:", p->path);
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (msg, sizeof msg, fmt, ap);
    va_end (ap);
    if (section && key)
        snprintf (full, sizeof full, "%s [%s] %s: %s\n", where, section, key, msg);
    else if (section)
        snprintf (full, sizeof full, "%s [%s]: %s\n", where, section, msg);
    else
        snprintf (full, sizeof full, "%s %s\n", where, msg);
    size_t n = strlen (full);
    char *grown = realloc (p->errors, p->errors_len + n + 1);
    if (!grown) {
        p->out_of_memory = 1;
        return;
    }
    p->errors = grown;
    memcpy (p->errors + p->errors_len, full, n + 1);
    p->errors_len += n;
    p->error_count++;
}

static int
key_index (sec_kind_t kind, const char *key)
{
    for (int i = 0; i < MAX_KEYS && s_keys [kind][i]; i++)
        if (strcmp (s_keys [kind][i], key) == 0)
            return i;
    return -1;
}

static void free_secret (char *secret);

static char *
trim (char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen (s);
    while (n && (s [n - 1] == ' ' || s [n - 1] == '\t' || s [n - 1] == '\r' || s [n - 1] == '\n'))
        s [--n] = 0;
    return s;
}

static int
valid_device_name (const char *name)
{
    size_t n = strlen (name);
    if (n == 0 || n > CS_DEVICE_NAME_MAX)
        return 0;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
            return 0;
    return 1;
}

static section_t *
find_section (parser_t *p, sec_kind_t kind, const char *name)
{
    for (size_t i = 0; i < p->count; i++)
        if (p->sections [i].kind == kind
            && (!name || (p->sections [i].name && strcmp (p->sections [i].name, name) == 0)))
            return &p->sections [i];
    return NULL;
}

static section_t *
add_section (parser_t *p, sec_kind_t kind, const char *label, const char *name, int line)
{
    if (p->count == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        section_t *grown = realloc (p->sections, cap * sizeof *grown);
        if (!grown) {
            p->out_of_memory = 1;
            return NULL;
        }
        p->sections = grown;
        p->cap = cap;
    }
    section_t *s = &p->sections [p->count];
    memset (s, 0, sizeof *s);
    s->kind = kind;
    s->line = line;
    s->label = strdup (label);
    s->name = name ? strdup (name) : NULL;
    if (!s->label || (name && !s->name)) {
        free (s->label);
        free (s->name);
        p->out_of_memory = 1;
        return NULL;
    }
    p->count++;
    return s;
}

/* A [header] line: name is the text between the brackets. */
static void
begin_section (parser_t *p, char *name)
{
    name = trim (name);
    p->current = NULL;
    /* [device NAME] and [site NAME] */
    static const sec_kind_t named [] = { SEC_DEVICE, SEC_SITE };
    for (size_t i = 0; i < sizeof named / sizeof named [0]; i++) {
        sec_kind_t k = named [i];
        const char *kind = s_section_names [k];
        size_t n = strlen (kind);
        if (strncmp (name, kind, n) != 0 || (name [n] != ' ' && name [n] != '\t'))
            continue;
        char *own = trim (name + n + 1);
        if (!valid_device_name (own)) {
            add_error (p, p->lineno, name, NULL,
                       "%s names are 1 to %d characters of a-z, 0-9, '_' and '-'", kind,
                       CS_DEVICE_NAME_MAX);
            return;
        }
        section_t *twin = find_section (p, k, own);
        if (twin) {
            add_error (p, p->lineno, twin->label, NULL, "defined twice (first at line %d)",
                       twin->line);
            return;
        }
        if (p->count >= MAX_DEVICES) {
            add_error (p, p->lineno, name, NULL, "more than %d sections", MAX_DEVICES);
            return;
        }
        char label [64];
        snprintf (label, sizeof label, "%s %s", kind, own);
        p->current = add_section (p, k, label, own, p->lineno);
        return;
    }
    for (int k = 0; k < SEC_KINDS; k++) {
        if (k == SEC_DEVICE || k == SEC_SITE || strcmp (name, s_section_names [k]) != 0)
            continue;
        section_t *twin = find_section (p, (sec_kind_t) k, NULL);
        if (twin) {
            add_error (p, p->lineno, name, NULL, "defined twice (first at line %d)", twin->line);
            return;
        }
        p->current = add_section (p, (sec_kind_t) k, name, NULL, p->lineno);
        return;
    }
    if (strcmp (name, "device") == 0)
        add_error (p, p->lineno, name, NULL, "a device section needs a name: [device door1]");
    else if (strcmp (name, "site") == 0)
        add_error (p, p->lineno, name, NULL, "a site section needs a name: [site north]");
    else
        add_error (p, p->lineno, name, NULL, "unknown section (known: cardskipper, "
                   "device NAME, sync, pipeline, auditor, notify, web, site NAME)");
}

static void
blank_line (char *str)
{
    str [0] = '\n';
    str [1] = 0;
}

/* inih reads lines through this, so every error knows its line, and the
 * things inih would accept silently (overlong lines, continuation lines,
 * empty sections) are caught. */
static char *
reader (char *str, int num, void *stream)
{
    parser_t *p = stream;
    if (!fgets (str, num, p->file))
        return NULL;
    p->lineno++;
    size_t len = strlen (str);
    if (len && str [len - 1] != '\n' && !feof (p->file)) {
        int c;
        while ((c = fgetc (p->file)) != EOF && c != '\n')
            ;
        add_error (p, p->lineno, NULL, NULL, "line longer than %d characters", num - 2);
        p->prev_was_key = 0;
        blank_line (str);
        return str;
    }
    char *line = str;
    if (p->lineno == 1 && strncmp (line, "\xEF\xBB\xBF", 3) == 0)
        line += 3;
    int indented = *line == ' ' || *line == '\t';
    char *start = line;
    while (*start == ' ' || *start == '\t')
        start++;
    if (*start == 0 || *start == '\n' || *start == '\r' || *start == ';' || *start == '#')
        return str;
    if (indented && p->prev_was_key) {
        add_error (p, p->lineno, NULL, NULL,
                   "indented line would continue the value above; write each value on one line");
        blank_line (str);
        return str;
    }
    if (*start == '[') {
        char *end = strchr (start, ']');
        if (!end) {
            add_error (p, p->lineno, NULL, NULL, "section header without ']'");
            p->current = NULL;
            blank_line (str);
            return str;
        }
        char name [LINE_MAX_CHARS];
        size_t n = (size_t) (end - start - 1);
        memcpy (name, start + 1, n);
        name [n] = 0;
        begin_section (p, name);
        p->seen_header = 1;
        p->prev_was_key = 0;
        return str;
    }
    if (!strpbrk (start, "=:")) {
        add_error (p, p->lineno, NULL, NULL, "expected 'key = value' or '[section]'");
        p->prev_was_key = 0;
        blank_line (str);
        return str;
    }
    p->prev_was_key = 1;
    return str;
}

static int
handler (void *user, const char *section, const char *name, const char *value)
{
    (void) section;            /* the reader tracks sections itself */
    parser_t *p = user;
    if (!p->current) {
        if (!p->seen_header)
            add_error (p, p->lineno, NULL, NULL, "'%s' comes before any [section]", name);
        return 1;              /* inside a bad section: reported at its header */
    }
    section_t *s = p->current;
    int i = key_index (s->kind, name);
    if (i < 0) {
        if (strcmp (name, "password") == 0) {
            char env [96];
            if (s->kind == SEC_DEVICE)
                cs_config_device_env (s->name, env, sizeof env);
            else
                snprintf (env, sizeof env, "%s", s->kind == SEC_NOTIFY
                          ? "CARDSYNC_SMTP_PASSWORD" : "CARDSYNC_CARDSKIPPER_PASSWORD");
            add_error (p, p->lineno, s->label, name, "secrets do not belong in the config "
                       "file; set %s in the environment or use password_file", env);
            return 1;
        }
        char known [512] = "";
        size_t len = 0;
        for (int k = 0; k < MAX_KEYS && s_keys [s->kind][k]; k++)
            len += (size_t) snprintf (known + len, sizeof known - len, "%s%s", k ? ", " : "",
                                      s_keys [s->kind][k]);
        add_error (p, p->lineno, s->label, name, "unknown key (known: %s)", known);
        return 1;
    }
    if (s->raw [i].value) {
        add_error (p, p->lineno, s->label, name, "given twice (first at line %d)",
                   s->raw [i].line);
        return 1;
    }
    s->raw [i].value = strdup (value);
    s->raw [i].line = p->lineno;
    if (!s->raw [i].value)
        p->out_of_memory = 1;
    return 1;
}

/* --- typed values ------------------------------------------------------ */

typedef struct {
    parser_t *p;
    section_t *s;
    const char *key;
    const char *value;          /* NULL or "" when not given */
    int line;                   /* the key's line, else the section's */
} field_t;

static field_t
field (parser_t *p, section_t *s, const char *key)
{
    field_t f = { p, s, key, NULL, s->line };
    int i = key_index (s->kind, key);
    if (i >= 0 && s->raw [i].value) {
        f.value = s->raw [i].value;
        f.line = s->raw [i].line;
    }
    return f;
}

static int
given (const field_t *f)
{
    return f->value && *f->value;
}

#define FIELD_ERROR(f, ...) add_error ((f)->p, (f)->line, (f)->s->label, (f)->key, __VA_ARGS__)

static char *
dup_or_oom (parser_t *p, const char *text)
{
    char *copy = strdup (text ? text : "");
    if (!copy)
        p->out_of_memory = 1;
    return copy;
}

/* The items of a comma list, trimmed, empty ones left out: a new array of
 * new strings (*count of them; free each and the array). NULL when out of
 * memory (p says so). */
static char **
split_list (parser_t *p, const char *text, size_t *count)
{
    *count = 0;
    char *list = dup_or_oom (p, text);
    size_t cap = 1;
    for (const char *ch = text; *ch; ch++)
        cap += *ch == ',';
    char **items = list ? calloc (cap, sizeof *items) : NULL;
    if (!items) {
        p->out_of_memory = 1;
        free (list);
        return NULL;
    }
    for (char *item = list; item; ) {
        char *comma = strchr (item, ',');
        if (comma)
            *comma = 0;
        char *t = trim (item);
        if (*t && !(items [(*count)++] = dup_or_oom (p, t)))
            break;
        item = comma ? comma + 1 : NULL;
    }
    free (list);
    return items;
}

static void
free_list (char **items, size_t count)
{
    for (size_t i = 0; items && i < count; i++)
        free (items [i]);
    free (items);
}

static void
get_str (parser_t *p, section_t *s, const char *key, const char *fallback, int required,
         char **out)
{
    field_t f = field (p, s, key);
    if (!given (&f) && required) {
        FIELD_ERROR (&f, "required%s", s->line ? "" : " (the section is missing)");
        return;
    }
    *out = given (&f) ? dup_or_oom (p, f.value) : fallback ? dup_or_oom (p, fallback) : NULL;
}

static int
parse_long (const char *text, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll (text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static void
get_int (parser_t *p, section_t *s, const char *key, int fallback, int min, int max, int *out)
{
    field_t f = field (p, s, key);
    long long v = fallback;
    if (given (&f) && parse_long (f.value, min, max, &v) != 0)
        FIELD_ERROR (&f, "must be a whole number from %d to %d, not '%s'", min, max, f.value);
    *out = (int) v;
}

static void
get_bool (parser_t *p, section_t *s, const char *key, int fallback, int *out)
{
    field_t f = field (p, s, key);
    *out = fallback;
    if (!given (&f))
        return;
    static const char *yes [] = { "true", "yes", "on", "1" };
    static const char *no [] = { "false", "no", "off", "0" };
    for (int i = 0; i < 4; i++) {
        if (strcasecmp (f.value, yes [i]) == 0) { *out = 1; return; }
        if (strcasecmp (f.value, no [i]) == 0) { *out = 0; return; }
    }
    FIELD_ERROR (&f, "must be true or false, not '%s'", f.value);
}

int
cs_config_parse_duration (const char *text, int *seconds)
{
    if (!text || !*text)
        return -1;
    long long total = 0;
    const char *p = text;
    char *end;
    errno = 0;
    long long bare = strtoll (p, &end, 10);
    if (!errno && *end == 0 && end != p && *p != '-' && *p != '+') {
        if (bare > INT_MAX)
            return -1;
        *seconds = (int) bare;
        return 0;
    }
    while (*p) {
        if (*p < '0' || *p > '9')
            return -1;
        long long n = strtoll (p, &end, 10);
        if (errno || end == p)
            return -1;
        long long unit;
        switch (*end) {
            case 's': unit = 1; break;
            case 'm': unit = 60; break;
            case 'h': unit = 3600; break;
            case 'd': unit = 86400; break;
            default: return -1;
        }
        if (n > INT_MAX / unit)
            return -1;
        total += n * unit;
        if (total > INT_MAX)
            return -1;
        p = end + 1;
    }
    *seconds = (int) total;
    return 0;
}

static void
format_duration (int seconds, char *out, size_t size)
{
    if (seconds && seconds % 86400 == 0)
        snprintf (out, size, "%dd", seconds / 86400);
    else if (seconds && seconds % 3600 == 0)
        snprintf (out, size, "%dh", seconds / 3600);
    else if (seconds && seconds % 60 == 0)
        snprintf (out, size, "%dm", seconds / 60);
    else
        snprintf (out, size, "%ds", seconds);
}

static void
get_duration (parser_t *p, section_t *s, const char *key, const char *fallback, int min, int max,
              int *out)
{
    field_t f = field (p, s, key);
    const char *text = given (&f) ? f.value : fallback;
    int v = 0;
    if (cs_config_parse_duration (text, &v) != 0) {
        FIELD_ERROR (&f, "must be a duration like 90s, 5m, 1h or 1h30m, not '%s'", text);
        return;
    }
    if (v < min || v > max) {
        char lo [32], hi [32];
        format_duration (min, lo, sizeof lo);
        format_duration (max, hi, sizeof hi);
        FIELD_ERROR (&f, "must be from %s to %s, not '%s'", lo, hi, text);
        return;
    }
    *out = v;
}

/* A URL parsed by libcurl (the same parser that will fetch it), or NULL
 * with why set. A URL with a username or password in it is refused before
 * anything else, without repeating it: those would be printed and logged. */
static CURLU *
parse_url (const char *v, const char *secret_env, char *why, size_t size)
{
    CURLU *u = curl_url ();
    if (!u) {
        snprintf (why, size, "out of memory");
        return NULL;
    }
    CURLUcode rc = curl_url_set (u, CURLUPART_URL, v, CURLU_NON_SUPPORT_SCHEME);
    char *user = NULL, *pass = NULL;
    if (rc == CURLUE_OK) {
        curl_url_get (u, CURLUPART_USER, &user, 0);
        curl_url_get (u, CURLUPART_PASSWORD, &pass, 0);
    }
    int userinfo = user || pass || (rc != CURLUE_OK && strchr (v, '@'));
    curl_free (user);
    curl_free (pass);
    if (userinfo) {
        snprintf (why, size, "must not carry a username or password (the part before '@'): it would be "
                  "shown and logged; set username = and the password in %s or password_file =", secret_env);
        curl_url_cleanup (u);
        return NULL;
    }
    if (rc != CURLUE_OK) {
        snprintf (why, size, "'%s' is not a usable URL (%s)", v, curl_url_strerror (rc));
        curl_url_cleanup (u);
        return NULL;
    }
    return u;
}

/* Is the URL's host this machine (127.0.0.0/8, ::1, localhost)? */
static int
url_host_is_loopback (CURLU *u)
{
    char *host = NULL;
    if (curl_url_get (u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host)
        return 0;
    struct in_addr a4;
    int yes = !strcmp (host, "localhost") || !strcmp (host, "[::1]")
              || (inet_pton (AF_INET, host, &a4) == 1 && (ntohl (a4.s_addr) >> 24) == 127);
    curl_free (host);
    return yes;
}

static void
get_url (parser_t *p, section_t *s, const char *key, int require_tls_off_loopback, const char *secret_env,
         char **out)
{
    field_t f = field (p, s, key);
    if (!given (&f)) {
        FIELD_ERROR (&f, "required%s", s->line ? "" : " (the section is missing)");
        return;
    }
    const char *v = f.value;
    char why [400];
    CURLU *u = parse_url (v, secret_env, why, sizeof why);
    if (!u) {
        FIELD_ERROR (&f, "%s", why);
        return;
    }
    char *scheme = NULL, *query = NULL, *fragment = NULL;
    curl_url_get (u, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get (u, CURLUPART_QUERY, &query, 0);
    curl_url_get (u, CURLUPART_FRAGMENT, &fragment, 0);
    int https = scheme && !strcmp (scheme, "https"), http = scheme && !strcmp (scheme, "http");
    int loopback = url_host_is_loopback (u), extra = query || fragment;
    curl_free (scheme);
    curl_free (query);
    curl_free (fragment);
    curl_url_cleanup (u);
    if (!https && !http) {
        FIELD_ERROR (&f, "must start with http:// or https://, not '%s'", v);
        return;
    }
    if (strncmp (v, https ? "https://" : "http://", https ? 8 : 7) || strpbrk (v, " \t\"'<>\\")) {
        FIELD_ERROR (&f, "'%s' is not a usable URL", v);
        return;
    }
    if (extra) {
        FIELD_ERROR (&f, "a base URL takes no query or fragment: '%s'", v);
        return;
    }
    if (require_tls_off_loopback && !https && !loopback) {
        FIELD_ERROR (&f, "use https:// (the password would cross the network in clear "
                     "text); http:// is only for 127.0.0.1");
        return;
    }
    char *copy = dup_or_oom (p, v);
    if (!copy)
        return;
    size_t n = strlen (copy);
    while (n > 0 && copy [n - 1] == '/')
        copy [--n] = 0;
    *out = copy;
}

/* Relative paths are relative to the config file's directory. */
static char *
resolve_path (parser_t *p, const char *path)
{
    if (path [0] == '/' || !p->dir)
        return dup_or_oom (p, path);
    size_t n = strlen (p->dir) + strlen (path) + 2;
    char *full = malloc (n);
    if (!full) {
        p->out_of_memory = 1;
        return NULL;
    }
    snprintf (full, n, "%s/%s", p->dir, path);
    return full;
}

typedef enum { PATH_FILE, PATH_DIR, PATH_ANY } path_kind_t;

/* An existing, readable file (or directory) if given; NULL if not. */
static void
get_path (parser_t *p, section_t *s, const char *key, path_kind_t kind, char **out)
{
    field_t f = field (p, s, key);
    if (!given (&f))
        return;
    char *path = resolve_path (p, f.value);
    if (!path)
        return;
    if (kind != PATH_ANY) {
        struct stat st;
        if (stat (path, &st) != 0) {
            FIELD_ERROR (&f, "cannot use '%s': %s", path, strerror (errno));
            free (path);
            return;
        }
        if (kind == PATH_FILE && !S_ISREG (st.st_mode)) {
            FIELD_ERROR (&f, "'%s' is not a regular file", path);
            free (path);
            return;
        }
        if (kind == PATH_DIR && !S_ISDIR (st.st_mode)) {
            FIELD_ERROR (&f, "'%s' is not a directory", path);
            free (path);
            return;
        }
        if (access (path, R_OK) != 0) {
            FIELD_ERROR (&f, "cannot read '%s': %s", path, strerror (errno));
            free (path);
            return;
        }
    }
    *out = path;
}

/* A comma list of positive ids, no repeats. */
static void
get_ids (parser_t *p, section_t *s, const char *key, int required, int64_t **out, size_t *count)
{
    field_t f = field (p, s, key);
    *out = NULL;
    *count = 0;
    if (!given (&f)) {
        if (required)
            FIELD_ERROR (&f, "required: one or more ids, separated by commas%s",
                         s->line ? "" : " (the section is missing)");
        return;
    }
    char *copy = dup_or_oom (p, f.value);
    if (!copy)
        return;
    size_t cap = 1;
    for (const char *c = copy; *c; c++)
        cap += *c == ',';
    int64_t *ids = calloc (cap, sizeof *ids);
    if (!ids) {
        free (copy);
        p->out_of_memory = 1;
        return;
    }
    size_t n = 0;
    char *item = copy;
    int bad = 0;
    while (item && !bad) {
        char *comma = strchr (item, ',');
        if (comma)
            *comma = 0;
        char *t = trim (item);
        long long v;
        if (parse_long (t, 1, INT64_MAX, &v) != 0) {
            FIELD_ERROR (&f, "'%s' is not a positive whole number", t);
            bad = 1;
            break;
        }
        for (size_t i = 0; i < n; i++)
            if (ids [i] == v) {
                FIELD_ERROR (&f, "id %lld is listed twice", v);
                bad = 1;
            }
        ids [n++] = v;
        item = comma ? comma + 1 : NULL;
    }
    free (copy);
    if (bad) {
        free (ids);
        return;
    }
    *out = ids;
    *count = n;
}

/* Reads the first line of a password file that only its owner (and group)
 * may read. */
static char *
read_password_file (field_t *f, const char *path)
{
    struct stat st;
    if (stat (path, &st) != 0) {
        FIELD_ERROR (f, "cannot use '%s': %s", path, strerror (errno));
        return NULL;
    }
    if (!S_ISREG (st.st_mode)) {
        FIELD_ERROR (f, "'%s' is not a regular file", path);
        return NULL;
    }
    if (st.st_mode & (S_IROTH | S_IWOTH)) {
        FIELD_ERROR (f, "'%s' is open to other users (mode %04o); run: chmod o-rw %s",
                     path, (unsigned) (st.st_mode & 07777), path);
        return NULL;
    }
    FILE *file = fopen (path, "r");
    if (!file) {
        FIELD_ERROR (f, "cannot read '%s': %s", path, strerror (errno));
        return NULL;
    }
    char buf [1024];
    char *line = fgets (buf, sizeof buf, file);
    fclose (file);
    if (line) {
        size_t n = strlen (line);
        while (n && (line [n - 1] == '\n' || line [n - 1] == '\r'))
            line [--n] = 0;
    }
    if (!line || !*line) {
        FIELD_ERROR (f, "'%s' holds no password on its first line", path);
        return NULL;
    }
    return dup_or_oom (f->p, line);
}

static void
get_secret_from (parser_t *p, section_t *s, const char *file_key, const char *env, int needed,
                 char **password, char **source, char **file)
{
    field_t f = field (p, s, file_key);
    char *from_file = NULL;
    if (given (&f)) {
        *file = resolve_path (p, f.value);
        if (*file)
            from_file = read_password_file (&f, *file);
    }
    const char *from_env = getenv (env);
    if (from_env && *from_env) {
        *password = dup_or_oom (p, from_env);
        *source = dup_or_oom (p, env);
        free (from_file);
    }
    else if (from_file) {
        *password = from_file;
        *source = dup_or_oom (p, *file);
    }
    else if (needed && !given (&f))
        add_error (p, s->line, s->label, file_key,
                   "no password: set %s in the environment or %s", env, file_key);
}

/* A password: from env, else from the file password_file names. */
static void
get_secret (parser_t *p, section_t *s, const char *env, int needed, char **password,
            char **source, char **file)
{
    get_secret_from (p, s, "password_file", env, needed, password, source, file);
}

/* An alert URL: a secret (it carries the token), from env or the file
 * file_key names. http(s) only, https off this machine; the errors never
 * repeat it. */
static void
get_secret_url (parser_t *p, section_t *s, const char *file_key, const char *env, char **url,
                char **source, char **file)
{
    get_secret_from (p, s, file_key, env, 0, url, source, file);
    if (!*url)
        return;
    field_t f = field (p, s, file_key);
    char where [300];
    snprintf (where, sizeof where, "the URL in %s", *source ? *source : env);
    CURLU *u = curl_url ();
    char *scheme = NULL, *host = NULL;
    int ok = u && curl_url_set (u, CURLUPART_URL, *url, 0) == CURLUE_OK
             && curl_url_get (u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK
             && curl_url_get (u, CURLUPART_HOST, &host, 0) == CURLUE_OK;
    int https = ok && !strcmp (scheme, "https"), http = ok && !strcmp (scheme, "http");
    int loopback = ok && url_host_is_loopback (u);
    curl_free (scheme);
    curl_free (host);
    curl_url_cleanup (u);
    if (!https && !http)
        FIELD_ERROR (&f, "%s is not an http:// or https:// URL", where);
    else if (!https && !loopback)
        FIELD_ERROR (&f, "%s must be https:// (its token would cross the network in clear); "
                     "http:// only to this machine", where);
    else
        return;
    free_secret (*url);
    *url = NULL;
}

static int
valid_endpoint (parser_t *p, section_t *s, const char *key, const char *ep)
{
    field_t f = field (p, s, key);
    if (strncmp (ep, "ipc://", 6) == 0) {
        if (strlen (ep + 6) == 0) {
            FIELD_ERROR (&f, "'%s' names no socket file", ep);
            return 0;
        }
        if (strlen (ep + 6) > IPC_PATH_MAX) {
            FIELD_ERROR (&f, "the socket path '%s' is longer than %d bytes; use a shorter "
                         "run_dir", ep + 6, IPC_PATH_MAX);
            return 0;
        }
        return 1;
    }
    if (strncmp (ep, "tcp://", 6) == 0) {
        const char *colon = strrchr (ep + 6, ':');
        long long port;
        if (!colon || colon == ep + 6 || parse_long (colon + 1, 1, 65535, &port) != 0) {
            FIELD_ERROR (&f, "'%s' needs a host and a port: tcp://127.0.0.1:5555", ep);
            return 0;
        }
        return 1;
    }
    FIELD_ERROR (&f, "'%s' must be ipc://PATH or tcp://HOST:PORT", ep);
    return 0;
}

static void
get_endpoint (parser_t *p, section_t *s, const char *key, const char *run_dir, const char *file,
              char **out)
{
    field_t f = field (p, s, key);
    char buf [PATH_MAX + 16];
    if (given (&f))
        snprintf (buf, sizeof buf, "%s", f.value);
    else
        snprintf (buf, sizeof buf, "ipc://%s/%s", run_dir ? run_dir : "", file);
    if (valid_endpoint (p, s, key, buf))
        *out = dup_or_oom (p, buf);
}

static int
endpoint_is_remote (const char *ep)
{
    return ep && strncmp (ep, "tcp://", 6) == 0 && strncmp (ep + 6, "127.", 4) != 0
           && strncmp (ep + 6, "localhost:", 10) != 0 && strncmp (ep + 6, "[::1]:", 6) != 0;
}

/* A CURVE public key, 40 characters of Z85. */
static void
get_z85_key (parser_t *p, section_t *s, const char *key, char **out)
{
    field_t f = field (p, s, key);
    if (!given (&f))
        return;
    int ok = strlen (f.value) == 40;
    for (const char *k = f.value; ok && *k; k++)
        ok = strchr ("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     ".-:+=^!/*?&<>()[]{}@%$#", *k) != NULL;
    if (!ok)
        FIELD_ERROR (&f, "must be a 40-character Z85 public key");
    else
        *out = dup_or_oom (p, f.value);
}

/* key names a [site NAME] section: its name, or NULL (not given, or an error). */
static char *
get_site (parser_t *p, section_t *s, const char *key)
{
    field_t f = field (p, s, key);
    if (!given (&f))
        return NULL;
    if (!find_section (p, SEC_SITE, f.value)) {
        FIELD_ERROR (&f, "names no [site %s] section (a site needs one, with the endpoint of "
                     "its pusher)", f.value);
        return NULL;
    }
    return dup_or_oom (p, f.value);
}

/* The site this host's pusher serves, as written ([pipeline] site), or NULL. */
static const char *
host_site (parser_t *p)
{
    section_t *s = find_section (p, SEC_PIPELINE, NULL);
    field_t f = s ? field (p, s, "site") : (field_t) { 0 };
    return s && given (&f) ? f.value : NULL;
}

static int
same_site (const char *a, const char *b)
{
    return a ? b && strcmp (a, b) == 0 : !b;
}

/* --- the sections -------------------------------------------------------- */

static void
load_cardskipper (parser_t *p, section_t *s, int secrets, cs_cardskipper_config_t *c)
{
    get_url (p, s, "url", 1, "CARDSYNC_CARDSKIPPER_PASSWORD", &c->url);
    get_str (p, s, "username", NULL, 1, &c->username);
    get_secret (p, s, "CARDSYNC_CARDSKIPPER_PASSWORD", secrets & CS_SECRETS_CARDSKIPPER,
                &c->password, &c->password_source, &c->password_file);
    get_ids (p, s, "organisation_ids", 1, &c->organisation_ids, &c->organisation_count);
    get_ids (p, s, "roles", 0, &c->roles, &c->role_count);
    get_bool (p, s, "only_active", 1, &c->only_active);
    get_duration (p, s, "poll_interval", "5m", 1, 7 * 86400, &c->poll_interval);
    get_duration (p, s, "full_interval", "1h", 1, 30 * 86400, &c->full_interval);
    get_duration (p, s, "timeout", "120s", 1, 3600, &c->timeout);
    get_duration (p, s, "auth_retry_min", "1m", 1, 3600, &c->auth_retry_min);
    get_path (p, s, "ca_file", PATH_FILE, &c->ca_file);
}

static int
valid_door_right (const char *text)
{
    const char *c = text;
    while (*c) {
        long v = 0;
        if (*c < '1' || *c > '9')
            return 0;
        while (*c >= '0' && *c <= '9') {
            v = v * 10 + (*c++ - '0');
            if (v > 256)
                return 0;
        }
        if (*c == ',')
            c++;
        else if (*c)
            return 0;
    }
    return *text && text [strlen (text) - 1] != ',';
}

static void
load_device (parser_t *p, section_t *s, int secrets, cs_device_config_t *d)
{
    d->name = dup_or_oom (p, s->name);
    d->line = s->line;
    char env [96];
    cs_config_device_env (s->name, env, sizeof env);
    get_url (p, s, "url", 0, env, &d->url);
    get_str (p, s, "username", NULL, 1, &d->username);
    d->site = get_site (p, s, "site");
    /* a pusher needs the passwords of its own site's devices only */
    field_t site = field (p, s, "site");
    int own = same_site (given (&site) ? site.value : NULL, host_site (p));
    get_secret (p, s, env, (secrets & CS_SECRETS_DEVICES) && own, &d->password,
                &d->password_source, &d->password_file);
    field_t tz = field (p, s, "timezone");
    if (given (&tz) && !cs_tz_valid (tz.value))
        FIELD_ERROR (&tz, "unknown time zone '%s' (expected a name like Europe/Stockholm)",
                     tz.value);
    else
        d->timezone = dup_or_oom (p, given (&tz) ? tz.value : "");
    get_int (p, s, "max_inflight", 1, 1, 8, &d->max_inflight);
    get_bool (p, s, "verify", 1, &d->verify);
    get_path (p, s, "ca_file", PATH_FILE, &d->ca_file);
    field_t pin = field (p, s, "pinned_pubkey");
    if (given (&pin)) {
        if (strncmp (pin.value, "sha256//", 8) == 0)
            d->pinned_pubkey = dup_or_oom (p, pin.value);
        else
            get_path (p, s, "pinned_pubkey", PATH_FILE, &d->pinned_pubkey);
    }
    field_t door = field (p, s, "door_right");
    if (given (&door) && !valid_door_right (door.value))
        FIELD_ERROR (&door, "must be door numbers separated by commas, like 1 or 1,3; not '%s'",
                     door.value);
    else
        d->door_right = dup_or_oom (p, given (&door) ? door.value : "1");
    get_int (p, s, "plan_template", 1, 1, 65535, &d->plan_template);
    get_duration (p, s, "timeout", "15s", 1, 600, &d->timeout);
    if (d->url && strncmp (d->url, "http://", 7) == 0 && (d->ca_file || d->pinned_pubkey)) {
        field_t f = field (p, s, d->ca_file ? "ca_file" : "pinned_pubkey");
        FIELD_ERROR (&f, "applies only to https:// devices");
    }
}

static void
load_sync (parser_t *p, section_t *s, cs_sync_config_t *c)
{
    field_t f = field (p, s, "match");
    char *list = dup_or_oom (p, given (&f) ? f.value : "tag, map, member_id");
    if (!list)
        return;
    char *item = list;
    while (item) {
        char *comma = strchr (item, ',');
        if (comma)
            *comma = 0;
        char *t = trim (item);
        cs_match_t m;
        if (strcmp (t, "tag") == 0) m = CS_MATCH_TAG;
        else if (strcmp (t, "map") == 0) m = CS_MATCH_MAP;
        else if (strcmp (t, "member_id") == 0) m = CS_MATCH_MEMBER_ID;
        else {
            FIELD_ERROR (&f, "'%s' is not one of tag, map, member_id", t);
            break;
        }
        int twice = 0;
        for (size_t i = 0; i < c->match_count; i++)
            twice |= c->match [i] == m;
        if (twice) {
            FIELD_ERROR (&f, "'%s' is listed twice", t);
            break;
        }
        c->match [c->match_count++] = m;
        item = comma ? comma + 1 : NULL;
    }
    free (list);
    field_t tag = field (p, s, "tag_field");
    if (given (&tag) && strcmp (tag.value, "PersonInfoExtends") != 0
        && strcmp (tag.value, "name") != 0)
        FIELD_ERROR (&tag, "must be PersonInfoExtends or name, not '%s'", tag.value);
    else
        c->tag_field = dup_or_oom (p, given (&tag) ? tag.value : "PersonInfoExtends");
    get_path (p, s, "identity_map", PATH_FILE, &c->identity_map);
    int uses_map = 0;
    for (size_t i = 0; i < c->match_count; i++)
        uses_map |= c->match [i] == CS_MATCH_MAP;
    field_t map = field (p, s, "identity_map");
    if (given (&map) && !uses_map)
        FIELD_ERROR (&map, "is set but match does not include 'map'");
    get_bool (p, s, "create_missing", 0, &c->create_missing);
    get_bool (p, s, "revoke", 1, &c->revoke);
    get_int (p, s, "guard_max_revocations", 10, 0, 1000000, &c->guard_max_revocations);
    get_int (p, s, "guard_max_percent", 5, 0, 100, &c->guard_max_percent);
    get_duration (p, s, "scan_interval", "1h", 10, 7 * 86400, &c->scan_interval);
    get_duration (p, s, "lease", "10m", 1, 86400, &c->lease);
    get_duration (p, s, "max_retry_age", "1h", 1, 30 * 86400, &c->max_retry_age);
}

static void
load_pipeline (parser_t *p, section_t *s, cs_pipeline_config_t *c)
{
    field_t run = field (p, s, "run_dir");
    c->run_dir = resolve_path (p, given (&run) ? run.value : "/run/cardsync");
    field_t state = field (p, s, "state_dir");
    c->state_dir = resolve_path (p, given (&state) ? state.value : "/var/lib/cardsync");
    get_endpoint (p, s, "differ_in", c->run_dir, "differ.in", &c->differ_in);
    get_endpoint (p, s, "pusher_in", c->run_dir, "pusher.in", &c->pusher_in);
    get_endpoint (p, s, "auditor_in", c->run_dir, "auditor.in", &c->auditor_in);
    get_endpoint (p, s, "auditor_pub", c->run_dir, "auditor.pub", &c->auditor_pub);
    get_endpoint (p, s, "differ_ctl", c->run_dir, "differ.ctl", &c->differ_ctl);
    get_path (p, s, "curve_cert", PATH_FILE, &c->curve_cert);
    get_path (p, s, "curve_clients_dir", PATH_DIR, &c->curve_clients_dir);
    get_z85_key (p, s, "curve_server_key", &c->curve_server_key);
    const char *eps [] = { c->differ_in, c->pusher_in, c->auditor_in, c->auditor_pub, c->differ_ctl };
    const char *names [] = { "differ_in", "pusher_in", "auditor_in", "auditor_pub", "differ_ctl" };
    for (int i = 0; i < 5; i++)
        if (endpoint_is_remote (eps [i]) && !(c->curve_cert && c->curve_server_key)) {
            field_t ep = field (p, s, names [i]);
            FIELD_ERROR (&ep, "crosses hosts unencrypted; set curve_cert and curve_server_key "
                         "(or use 127.0.0.1)");
        }
    get_duration (p, s, "heartbeat_interval", "5s", 1, 60, &c->heartbeat_interval);
    c->site = get_site (p, s, "site");
    field_t level = field (p, s, "log_level");
    const char *lv = given (&level) ? level.value : "info";
    if (strcmp (lv, "debug") && strcmp (lv, "info") && strcmp (lv, "warn") && strcmp (lv, "error"))
        FIELD_ERROR (&level, "must be debug, info, warn or error, not '%s'", lv);
    else
        c->log_level = dup_or_oom (p, lv);
}

/* [site NAME]: where that site's pusher takes its commands. Across hosts only
 * with CURVE, and then the differ must know that pusher's public key. */
static void
load_site (parser_t *p, section_t *s, const cs_pipeline_config_t *pl, cs_site_config_t *c)
{
    c->name = dup_or_oom (p, s->name);
    c->line = s->line;
    field_t ep = field (p, s, "endpoint");
    if (!given (&ep))
        FIELD_ERROR (&ep, "required: the endpoint that site's pusher binds, like "
                     "tcp://10.1.2.3:5561");
    else if (valid_endpoint (p, s, "endpoint", ep.value))
        c->endpoint = dup_or_oom (p, ep.value);
    get_z85_key (p, s, "server_key", &c->server_key);
    if (!endpoint_is_remote (c->endpoint))
        return;
    if (!pl->curve_cert)
        FIELD_ERROR (&ep, "crosses hosts unencrypted; set [pipeline] curve_cert (and this "
                     "site's server_key)");
    else if (!c->server_key) {
        field_t key = field (p, s, "server_key");
        FIELD_ERROR (&key, "required with curve_cert: the public key of that site pusher's "
                     "certificate (the public-key line of its NAME.cert; --make-cert prints it)");
    }
}

/* listen = HOST:PORT, HOST an IPv4 address, [an IPv6 address] or localhost. */
static int
parse_listen (const char *text, cs_web_config_t *c)
{
    const char *colon = strrchr (text, ':');
    long long port;
    if (!colon || parse_long (colon + 1, 1, 65535, &port) != 0)
        return -1;
    size_t len = (size_t) (colon - text);
    char host [64];
    if (len == 0 || len >= sizeof host)
        return -1;
    memcpy (host, text, len);
    host [len] = 0;
    struct in_addr a4;
    struct in6_addr a6;
    if (host [0] == '[' && host [len - 1] == ']') {
        host [len - 1] = 0;
        if (inet_pton (AF_INET6, host + 1, &a6) != 1)
            return -1;
        c->family = AF_INET6;
        c->loopback = IN6_IS_ADDR_LOOPBACK (&a6);
        memmove (host, host + 1, len);
    }
    else if (!strcmp (host, "localhost")) {
        c->family = AF_INET;
        c->loopback = 1;
        snprintf (host, sizeof host, "127.0.0.1");
    }
    else if (inet_pton (AF_INET, host, &a4) == 1) {
        c->family = AF_INET;
        c->loopback = (ntohl (a4.s_addr) >> 24) == 127;
    }
    else
        return -1;
    c->address = strdup (host);
    c->port = (int) port;
    return c->address ? 0 : -1;
}

/* A Host header value's name (no port): letters, digits, '-', '.', or an
 * [IPv6] literal. */
static int
valid_host_name (const char *h)
{
    if (!*h || strlen (h) > 253)
        return 0;
    if (h [0] == '[')
        return h [strlen (h) - 1] == ']';
    for (const char *ch = h; *ch; ch++)
        if (!isalnum ((unsigned char) *ch) && *ch != '-' && *ch != '.')
            return 0;
    return 1;
}

static void
load_web (parser_t *p, section_t *s, int secrets, cs_web_config_t *c)
{
    field_t listen = field (p, s, "listen");
    const char *text = given (&listen) ? listen.value : "127.0.0.1:8480";
    if (parse_listen (text, c) != 0) {
        FIELD_ERROR (&listen, "must be ADDRESS:PORT (127.0.0.1:8480, [::1]:8480, 0.0.0.0:8480), "
                     "not '%s'", text);
        return;
    }
    /* the names a browser may use for this server (the Host check keeps a page
     * on another site from reaching it by DNS rebinding) */
    field_t hosts = field (p, s, "allowed_hosts");
    char fallback [128];
    snprintf (fallback, sizeof fallback, "localhost, 127.0.0.1, [::1]%s%s%s%s",
              c->loopback ? "" : ", ", c->loopback ? "" : c->family == AF_INET6 ? "[" : "",
              c->loopback ? "" : c->address, c->loopback || c->family != AF_INET6 ? "" : "]");
    size_t count;
    char **items = split_list (p, given (&hosts) ? hosts.value : fallback, &count);
    if (!items)
        return;
    c->allowed_hosts = items;
    for (size_t i = 0; i < count; i++) {
        for (char *ch = items [i]; ch && *ch; ch++)
            *ch = (char) tolower ((unsigned char) *ch);
        if (items [i] && !valid_host_name (items [i]))
            FIELD_ERROR (&hosts, "'%s' is not a host name (no scheme, no port: club.example, "
                         "192.168.1.10)", items [i]);
    }
    c->allowed_count = count;
    get_path (p, s, "cert_file", PATH_FILE, &c->cert_file);
    get_path (p, s, "key_file", PATH_FILE, &c->key_file);
    field_t cert = field (p, s, "cert_file"), key = field (p, s, "key_file");
    if (given (&cert) != given (&key))
        FIELD_ERROR (given (&cert) ? &key : &cert, "cert_file and key_file go together (TLS needs both)");
    get_bool (p, s, "allow_plain_http", 0, &c->allow_plain_http);
    get_str (p, s, "username", NULL, 0, &c->username);
    get_secret (p, s, "CARDSYNC_WEB_PASSWORD", (secrets & CS_SECRETS_WEB) && c->username,
                &c->password, &c->password_source, &c->password_file);
    if (!c->loopback && !c->username)
        FIELD_ERROR (&listen, "%s is not loopback: the window needs a login there; set "
                     "username = and the password in CARDSYNC_WEB_PASSWORD (or password_file =)", text);
    else if (!c->loopback && !c->cert_file && !c->allow_plain_http)
        FIELD_ERROR (&listen, "%s is not loopback: the login would cross the network in clear; "
                     "set cert_file = and key_file = (TLS), or allow_plain_http = true behind a "
                     "TLS proxy", text);
}

static void
load_notify (parser_t *p, section_t *s, int secrets, cs_notify_config_t *c)
{
    field_t url = field (p, s, "smtp_url");
    field_t from = field (p, s, "from");
    field_t to = field (p, s, "to");
    get_duration (p, s, "batch_interval", "15m", 1, 86400, &c->batch_interval);
    get_duration (p, s, "export_alert_after", "1h", 1, 30 * 86400, &c->export_alert_after);
    get_secret_url (p, s, "webhook_url_file", "CARDSYNC_WEBHOOK_URL", &c->webhook_url,
                    &c->webhook_source, &c->webhook_file);
    get_secret_url (p, s, "healthcheck_url_file", "CARDSYNC_HEALTHCHECK_URL", &c->healthcheck_url,
                    &c->healthcheck_source, &c->healthcheck_file);
    if (!given (&url)) {
        if (given (&from) || given (&to))
            FIELD_ERROR (&url, "required when from or to is set (or remove them)");
        return;
    }
    char why [400];
    CURLU *u = parse_url (url.value, "CARDSYNC_SMTP_PASSWORD", why, sizeof why);
    curl_url_cleanup (u);
    if (!u) {
        FIELD_ERROR (&url, "%s", why);
        return;
    }
    if (strncmp (url.value, "smtp://", 7) != 0 && strncmp (url.value, "smtps://", 8) != 0) {
        FIELD_ERROR (&url, "must start with smtp:// or smtps://, not '%s'", url.value);
        return;
    }
    c->smtp_url = dup_or_oom (p, url.value);
    get_bool (p, s, "starttls", 1, &c->starttls);
    get_path (p, s, "ca_file", PATH_FILE, &c->ca_file);
    get_str (p, s, "username", NULL, 0, &c->username);
    get_secret (p, s, "CARDSYNC_SMTP_PASSWORD", (secrets & CS_SECRETS_SMTP) && c->username,
                &c->password, &c->password_source, &c->password_file);
    char norm [CS_EMAIL_MAX + 1];
    cs_email_error_t e;
    if (!given (&from))
        FIELD_ERROR (&from, "required with smtp_url");
    else if ((e = cs_email_normalize (from.value, norm)) != CS_EMAIL_OK)
        FIELD_ERROR (&from, "'%s': %s", from.value, cs_email_strerror (e));
    else
        c->from = dup_or_oom (p, norm);
    if (!given (&to)) {
        FIELD_ERROR (&to, "required with smtp_url: one or more addresses, separated by commas");
        return;
    }
    size_t count;
    char **items = split_list (p, to.value, &count);
    if (!items)
        return;
    c->to = calloc (count ? count : 1, sizeof *c->to);
    if (!c->to)
        p->out_of_memory = 1;
    for (size_t i = 0; i < count && c->to; i++) {
        if ((e = cs_email_normalize (items [i] ? items [i] : "", norm)) != CS_EMAIL_OK) {
            FIELD_ERROR (&to, "'%s': %s", items [i] ? items [i] : "", cs_email_strerror (e));
            break;
        }
        c->to [c->to_count++] = dup_or_oom (p, norm);
    }
    if (!count)
        FIELD_ERROR (&to, "required with smtp_url: one or more addresses, separated by commas");
    free_list (items, count);
}

/* --- load, destroy, print ----------------------------------------------- */

void
cs_config_device_env (const char *name, char *out, size_t size)
{
    size_t len = (size_t) snprintf (out, size, "CARDSYNC_DEVICE_");
    for (const char *c = name; *c && len + 1 < size; c++)
        out [len++] = *c == '-' ? '_' : (*c >= 'a' && *c <= 'z') ? (char) (*c - 32) : *c;
    out [len < size ? len : size - 1] = 0;
    snprintf (out + strlen (out), size - strlen (out), "_PASSWORD");
}

static section_t *
section_or_empty (parser_t *p, sec_kind_t kind, section_t *empty)
{
    section_t *s = find_section (p, kind, NULL);
    if (s)
        return s;
    memset (empty, 0, sizeof *empty);
    empty->kind = kind;
    empty->label = (char *) s_section_names [kind];
    return empty;
}

cs_config_t *
cs_config_load (const char *path, int secrets, char **errors_p)
{
    parser_t p;
    memset (&p, 0, sizeof p);
    p.path = path;
    if (errors_p)
        *errors_p = NULL;
    cs_config_t *cfg = calloc (1, sizeof *cfg);
    if (!cfg)
        return NULL;

    p.file = fopen (path, "r");
    if (!p.file)
        add_error (&p, 0, NULL, NULL, "cannot read the config file: %s", strerror (errno));
    else {
        const char *slash = strrchr (path, '/');
        p.dir = slash ? strndup (path, (size_t) (slash - path + (slash == path))) : NULL;
        int rc = ini_parse_stream (reader, &p, handler, &p);
        if (rc > 0 && p.error_count == 0)
            add_error (&p, rc, NULL, NULL, "cannot parse this line");
        fclose (p.file);
        p.file = NULL;

        cfg->path = dup_or_oom (&p, path);
        section_t empty;
        section_t *cs = section_or_empty (&p, SEC_CARDSKIPPER, &empty);
        load_cardskipper (&p, cs, secrets, &cfg->cardskipper);
        size_t devices = 0;
        for (size_t i = 0; i < p.count; i++)
            devices += p.sections [i].kind == SEC_DEVICE;
        if (devices == 0)
            add_error (&p, 0, "device NAME", NULL,
                       "no device configured: add a section like [device door1]");
        cfg->devices = devices ? calloc (devices, sizeof *cfg->devices) : NULL;
        if (devices && !cfg->devices)
            p.out_of_memory = 1;
        for (size_t i = 0; i < p.count && cfg->devices; i++)
            if (p.sections [i].kind == SEC_DEVICE)
                load_device (&p, &p.sections [i], secrets, &cfg->devices [cfg->device_count++]);
        /* door-1 and door_1 would share one password variable */
        for (size_t i = 0; i < cfg->device_count; i++)
            for (size_t j = i + 1; j < cfg->device_count; j++) {
                char a [96], b [96];
                cs_config_device_env (cfg->devices [i].name, a, sizeof a);
                cs_config_device_env (cfg->devices [j].name, b, sizeof b);
                if (strcmp (a, b) == 0)
                    add_error (&p, cfg->devices [j].line, NULL, NULL,
                               "[device %s]: devices '%s' and '%s' would share %s; rename one",
                               cfg->devices [j].name, cfg->devices [i].name,
                               cfg->devices [j].name, a);
            }
        load_sync (&p, section_or_empty (&p, SEC_SYNC, &empty), &cfg->sync);
        section_t *pl = section_or_empty (&p, SEC_PIPELINE, &empty);
        load_pipeline (&p, pl, &cfg->pipeline);
        size_t sites = 0;
        for (size_t i = 0; i < p.count; i++)
            sites += p.sections [i].kind == SEC_SITE;
        cfg->sites = sites ? calloc (sites, sizeof *cfg->sites) : NULL;
        if (sites && !cfg->sites)
            p.out_of_memory = 1;
        for (size_t i = 0; i < p.count && cfg->sites; i++)
            if (p.sections [i].kind == SEC_SITE)
                load_site (&p, &p.sections [i], &cfg->pipeline, &cfg->sites [cfg->site_count++]);
        /* a site's pusher binds its site's endpoint unless told otherwise */
        field_t pusher_in = field (&p, pl, "pusher_in");
        if (cfg->pipeline.site && !given (&pusher_in))
            for (size_t i = 0; i < cfg->site_count; i++)
                if (!strcmp (cfg->sites [i].name, cfg->pipeline.site) && cfg->sites [i].endpoint) {
                    free (cfg->pipeline.pusher_in);
                    cfg->pipeline.pusher_in = dup_or_oom (&p, cfg->sites [i].endpoint);
                }
        get_int (&p, section_or_empty (&p, SEC_AUDITOR, &empty), "retention_days", 365, 1, 36500,
                 &cfg->auditor.retention_days);
        load_notify (&p, section_or_empty (&p, SEC_NOTIFY, &empty), secrets, &cfg->notify);
        load_web (&p, section_or_empty (&p, SEC_WEB, &empty), secrets, &cfg->web);
    }

    if (p.out_of_memory)
        add_error (&p, 0, NULL, NULL, "out of memory");
    for (size_t i = 0; i < p.count; i++) {
        for (int k = 0; k < MAX_KEYS; k++)
            free (p.sections [i].raw [k].value);
        free (p.sections [i].label);
        free (p.sections [i].name);
    }
    free (p.sections);
    free (p.dir);
    if (p.error_count || p.out_of_memory) {
        cs_config_destroy (&cfg);
        if (errors_p)
            *errors_p = p.errors ? p.errors : strdup ("out of memory\n");
        else
            free (p.errors);
        return NULL;
    }
    free (p.errors);
    return cfg;
}

static void
free_secret (char *secret)
{
    if (secret) {
        explicit_bzero (secret, strlen (secret));
        free (secret);
    }
}

void
cs_config_destroy (cs_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cs_config_t *self = *self_p;
    cs_cardskipper_config_t *c = &self->cardskipper;
    free (c->url); free (c->username); free_secret (c->password); free (c->password_source);
    free (c->password_file); free (c->organisation_ids); free (c->roles); free (c->ca_file);
    for (size_t i = 0; i < self->device_count; i++) {
        cs_device_config_t *d = &self->devices [i];
        free (d->name); free (d->url); free (d->username); free_secret (d->password);
        free (d->password_source); free (d->password_file); free (d->timezone);
        free (d->ca_file); free (d->pinned_pubkey); free (d->door_right); free (d->site);
    }
    free (self->devices);
    for (size_t i = 0; i < self->site_count; i++) {
        free (self->sites [i].name); free (self->sites [i].endpoint);
        free (self->sites [i].server_key);
    }
    free (self->sites);
    free (self->sync.tag_field); free (self->sync.identity_map);
    cs_pipeline_config_t *pl = &self->pipeline;
    free (pl->run_dir); free (pl->state_dir); free (pl->differ_in); free (pl->pusher_in);
    free (pl->auditor_in); free (pl->auditor_pub); free (pl->differ_ctl); free (pl->curve_cert);
    free (pl->curve_server_key); free (pl->curve_clients_dir); free (pl->log_level);
    free (pl->site);
    cs_notify_config_t *n = &self->notify;
    free (n->smtp_url); free (n->username); free_secret (n->password); free (n->ca_file);
    free (n->password_source); free (n->password_file); free (n->from);
    for (size_t i = 0; i < n->to_count; i++)
        free (n->to [i]);
    free (n->to);
    free_secret (n->webhook_url); free (n->webhook_source); free (n->webhook_file);
    free_secret (n->healthcheck_url); free (n->healthcheck_source); free (n->healthcheck_file);
    cs_web_config_t *w = &self->web;
    free (w->address); free (w->username); free_secret (w->password); free (w->password_source);
    free (w->password_file); free (w->cert_file); free (w->key_file);
    free_list (w->allowed_hosts, w->allowed_count);
    free (self->path);
    free (self);
    *self_p = NULL;
}

const cs_device_config_t *
cs_config_device (const cs_config_t *self, const char *name)
{
    for (size_t i = 0; i < self->device_count; i++)
        if (strcmp (self->devices [i].name, name) == 0)
            return &self->devices [i];
    return NULL;
}

int
cs_config_site_index (const cs_config_t *self, const char *name)
{
    const cs_device_config_t *d = name ? cs_config_device (self, name) : NULL;
    for (size_t i = 0; d && d->site && i < self->site_count; i++)
        if (strcmp (self->sites [i].name, d->site) == 0)
            return (int) i;
    return -1;
}

int
cs_config_serves (const cs_config_t *self, const cs_device_config_t *d)
{
    return same_site (d->site, self->pipeline.site);
}

static void
print_ids (FILE *out, const char *key, const int64_t *ids, size_t count)
{
    fprintf (out, "%s =", key);
    for (size_t i = 0; i < count; i++)
        fprintf (out, "%s%lld", i ? ", " : " ", (long long) ids [i]);
    fputc ('\n', out);
}

static void
print_duration (FILE *out, const char *key, int seconds)
{
    char text [32];
    format_duration (seconds, text, sizeof text);
    fprintf (out, "%s = %s\n", key, text);
}

static void
print_secret (FILE *out, const char *file, const char *source, const char *password)
{
    fprintf (out, "password_file = %s\n", file ? file : "");
    fprintf (out, "; password: %s\n", !password ? "not set"
             : source && strncmp (source, "CARDSYNC_", 9) == 0
             ? "(redacted) from the environment" : "(redacted) from password_file");
}

#define STR(s) ((s) ? (s) : "")

void
cs_config_print (const cs_config_t *self, FILE *out)
{
    const cs_cardskipper_config_t *c = &self->cardskipper;
    fprintf (out, "; effective configuration of %s\n", self->path);
    fprintf (out, "[cardskipper]\nurl = %s\nusername = %s\n", c->url, c->username);
    print_secret (out, c->password_file, c->password_source, c->password);
    print_ids (out, "organisation_ids", c->organisation_ids, c->organisation_count);
    print_ids (out, "roles", c->roles, c->role_count);
    fprintf (out, "only_active = %s\n", c->only_active ? "true" : "false");
    print_duration (out, "poll_interval", c->poll_interval);
    print_duration (out, "full_interval", c->full_interval);
    print_duration (out, "timeout", c->timeout);
    print_duration (out, "auth_retry_min", c->auth_retry_min);
    fprintf (out, "ca_file = %s\n", STR (c->ca_file));
    for (size_t i = 0; i < self->device_count; i++) {
        const cs_device_config_t *d = &self->devices [i];
        fprintf (out, "\n[device %s]\nurl = %s\nusername = %s\n", d->name, d->url, d->username);
        print_secret (out, d->password_file, d->password_source, d->password);
        fprintf (out, "timezone = %s%s\nmax_inflight = %d\nverify = %s\nca_file = %s\n"
                 "pinned_pubkey = %s\ndoor_right = %s\nplan_template = %d\n",
                 d->timezone, *d->timezone ? "" : "  ; the host's zone", d->max_inflight,
                 d->verify ? "true" : "false", STR (d->ca_file), STR (d->pinned_pubkey),
                 d->door_right, d->plan_template);
        print_duration (out, "timeout", d->timeout);
        fprintf (out, "site = %s%s\n", STR (d->site), d->site ? "" : "  ; the local pusher");
    }
    for (size_t i = 0; i < self->site_count; i++) {
        const cs_site_config_t *site = &self->sites [i];
        fprintf (out, "\n[site %s]\nendpoint = %s\nserver_key = %s\n", site->name, STR (site->endpoint),
                 STR (site->server_key));
    }
    const cs_sync_config_t *s = &self->sync;
    static const char *match_names [] = { "tag", "map", "member_id" };
    fprintf (out, "\n[sync]\nmatch =");
    for (size_t i = 0; i < s->match_count; i++)
        fprintf (out, "%s%s", i ? ", " : " ", match_names [s->match [i]]);
    fprintf (out, "\ntag_field = %s\nidentity_map = %s\ncreate_missing = %s\nrevoke = %s\n"
             "guard_max_revocations = %d\nguard_max_percent = %d\n", s->tag_field,
             STR (s->identity_map), s->create_missing ? "true" : "false",
             s->revoke ? "true" : "false", s->guard_max_revocations, s->guard_max_percent);
    print_duration (out, "scan_interval", s->scan_interval);
    print_duration (out, "lease", s->lease);
    print_duration (out, "max_retry_age", s->max_retry_age);
    const cs_pipeline_config_t *pl = &self->pipeline;
    fprintf (out, "\n[pipeline]\nrun_dir = %s\nstate_dir = %s\ndiffer_in = %s\npusher_in = %s\n"
             "auditor_in = %s\nauditor_pub = %s\ndiffer_ctl = %s\ncurve_cert = %s\ncurve_server_key = %s\n"
             "curve_clients_dir = %s\nlog_level = %s\n", pl->run_dir, pl->state_dir,
             pl->differ_in, pl->pusher_in, pl->auditor_in, pl->auditor_pub, pl->differ_ctl,
             STR (pl->curve_cert), STR (pl->curve_server_key), STR (pl->curve_clients_dir),
             pl->log_level);
    print_duration (out, "heartbeat_interval", pl->heartbeat_interval);
    fprintf (out, "site = %s%s\n", STR (pl->site), pl->site ? "" : "  ; this host's pusher "
             "serves the devices without a site");
    fprintf (out, "\n[auditor]\nretention_days = %d\n", self->auditor.retention_days);
    const cs_notify_config_t *n = &self->notify;
    fprintf (out, "\n[notify]\nsmtp_url = %s\nusername = %s\n", STR (n->smtp_url),
             STR (n->username));
    if (n->smtp_url && n->username)
        print_secret (out, n->password_file, n->password_source, n->password);
    fprintf (out, "from = %s\nto =", STR (n->from));
    for (size_t i = 0; i < n->to_count; i++)
        fprintf (out, "%s%s", i ? ", " : " ", n->to [i]);
    fputc ('\n', out);
    print_duration (out, "batch_interval", n->batch_interval);
    print_duration (out, "export_alert_after", n->export_alert_after);
    fprintf (out, "starttls = %s\nca_file = %s\n", n->starttls ? "true" : "false", STR (n->ca_file));
    fprintf (out, "webhook_url_file = %s\n; webhook: %s\n", STR (n->webhook_file), !n->webhook_url ? "none"
             : "(redacted) from the environment or webhook_url_file");
    fprintf (out, "healthcheck_url_file = %s\n; healthcheck: %s\n", STR (n->healthcheck_file),
             !n->healthcheck_url ? "none" : "(redacted) from the environment or healthcheck_url_file");
    const cs_web_config_t *w = &self->web;
    fprintf (out, "\n[web]\nlisten = %s%s%s:%d\nallowed_hosts =", w->family == AF_INET6 ? "[" : "",
             STR (w->address), w->family == AF_INET6 ? "]" : "", w->port);
    for (size_t i = 0; i < w->allowed_count; i++)
        fprintf (out, "%s%s", i ? ", " : " ", w->allowed_hosts [i]);
    fprintf (out, "\nusername = %s\n", STR (w->username));
    if (w->username)
        print_secret (out, w->password_file, w->password_source, w->password);
    fprintf (out, "cert_file = %s\nkey_file = %s\nallow_plain_http = %s\n", STR (w->cert_file),
             STR (w->key_file), w->allow_plain_http ? "true" : "false");
}
