#include "producer/export.h"
#include "common/date.h"
#include "common/zmq.h"

#include <curl/curl.h>
#include <libxml/parser.h>
#include <libxml/SAX2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_BODY ((size_t) 2 << 30)   /* a bound on an export: 2 GiB */
#define MAX_ROLES CS_MSG_MAX_ROLES
#define FIELD_MAX 512

typedef struct {
    /* where the parse is */
    xmlParserCtxtPtr ctxt;
    int depth;
    int saw_root;               /* the root element was Cardskipper */
    int member_depth;           /* depth of the open Member, 0 if none */
    int64_t org_open;           /* the Organisation being read inside a Member, or 0 */
    int failed;                 /* stop: error holds why */
    int stopped;                /* xmlStopParser was called */
    char error [512];
    /* the member being read */
    char email [FIELD_MAX];
    char first [FIELD_MAX];
    char last [FIELD_MAX];
    int has_email, has_first, has_last;
    int64_t omid;
    int inactive;
    cs_msg_role_t roles [MAX_ROLES];
    size_t role_count;
    /* the request */
    const cs_cardskipper_config_t *cfg;
    int64_t org;
    cs_member_fn *fn;
    void *arg;
    /* the response */
    CURL *curl;
    long http_status;
    char error_body [256];      /* the start of a non-200 body */
    size_t error_len;
    size_t members;
    size_t bytes;
} export_t;

static void
fail (export_t *x, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
fail (export_t *x, const char *fmt, ...)
{
    if (x->failed)
        return;
    x->failed = 1;
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (x->error, sizeof x->error, fmt, ap);
    va_end (ap);
    /* one line: libxml2's messages end with a newline, some hold two lines */
    for (char *c = x->error; *c; c++)
        if (*c == '\n' || *c == '\r' || *c == '\t')
            *c = ' ';
    for (size_t n = strlen (x->error); n > 0 && x->error [n - 1] == ' '; n--)
        x->error [n - 1] = 0;
}

/* Stops the parse once a callback has failed the export. Only as the very
 * last thing a callback does: xmlStopParser frees the input, and with it the
 * name and attribute values the callback was given. */
static void
stop_if_failed (export_t *x)
{
    if (x->failed && !x->stopped && x->ctxt) {
        x->stopped = 1;
        xmlStopParser (x->ctxt);
    }
}

static int
is (const xmlChar *name, const char *want)
{
    return strcmp ((const char *) name, want) == 0;
}

/* An attribute's value (entities already decoded by libxml2) into out. */
static int
attr (int count, const xmlChar **attrs, const char *name, char *out, size_t size)
{
    for (int i = 0; i < count; i++) {
        const xmlChar **a = attrs + i * 5;
        if (!is (a [0], name))
            continue;
        size_t n = (size_t) (a [4] - a [3]);
        if (n >= size)
            n = size - 1;
        memcpy (out, a [3], n);
        out [n] = 0;
        return 1;
    }
    return 0;
}

static int
parse_long (const char *text, int64_t *out)
{
    char *end;
    long long v = strtoll (text, &end, 10);
    if (!*text || *end)
        return -1;
    *out = v;
    return 0;
}

static void
start_element (export_t *x, const xmlChar *name, int nb_attrs, const xmlChar **attrs)
{
    x->depth++;
    if (x->failed)
        return;
    if (x->depth == 1) {
        if (!strcasecmp ((const char *) name, "html"))
            fail (x, "Cardskipper answered with an HTML page, not XML (a proxy or an error page?)");
        else if (!is (name, "Cardskipper"))
            fail (x, "the export's root element is <%s>, not <Cardskipper>", (const char *) name);
        x->saw_root = 1;
        return;
    }
    char value [FIELD_MAX];
    if (is (name, "Member")) {
        if (x->member_depth) {
            fail (x, "a Member inside a Member");
            return;
        }
        x->member_depth = x->depth;
        x->has_first = attr (nb_attrs, attrs, "Firstname", x->first, sizeof x->first);
        x->has_last = attr (nb_attrs, attrs, "Lastname", x->last, sizeof x->last);
        x->has_email = 0;
        x->omid = 0;
        x->inactive = 0;
        x->role_count = 0;
        x->org_open = 0;
        if (attr (nb_attrs, attrs, "OrganisationMemberId", value, sizeof value)
            && (parse_long (value, &x->omid) != 0 || x->omid <= 0))
            fail (x, "a Member's OrganisationMemberId is not a number: '%s'", value);
        if (attr (nb_attrs, attrs, "Inactive", value, sizeof value))
            x->inactive = !strcmp (value, "true") || !strcmp (value, "True") || !strcmp (value, "1");
        return;
    }
    if (!x->member_depth)
        return;
    if (is (name, "ContactInfo")) {
        x->has_email = attr (nb_attrs, attrs, "EMail", x->email, sizeof x->email);
    }
    else if (is (name, "Organisation")) {
        x->org_open = 0;
        if (attr (nb_attrs, attrs, "Id", value, sizeof value) && parse_long (value, &x->org_open) != 0)
            fail (x, "member %lld: Organisation Id '%s' is not a number", (long long) x->omid,
                  value);
    }
    else if (is (name, "Role") && x->org_open == x->org) {
        char start [64], end [64];
        int64_t role = 0;
        if (!attr (nb_attrs, attrs, "Id", value, sizeof value) || parse_long (value, &role) != 0) {
            fail (x, "member %lld: a Role without a numeric Id", (long long) x->omid);
            return;
        }
        if (!attr (nb_attrs, attrs, "StartDate", start, sizeof start)
            || !attr (nb_attrs, attrs, "EndDate", end, sizeof end)) {
            fail (x, "member %lld: role %lld lacks StartDate or EndDate", (long long) x->omid,
                  (long long) role);
            return;
        }
        cs_day_t s, e;
        const char *why = "";
        if (cs_date_parse_cardskipper (start, &s, &why) != 0
            || cs_date_parse_cardskipper (end, &e, &why) != 0) {
            fail (x, "member %lld: role %lld has a date that cannot be read ('%s' .. '%s'): %s",
                  (long long) x->omid, (long long) role, start, end, why);
            return;
        }
        if (x->role_count == MAX_ROLES) {
            fail (x, "member %lld has more than %d roles", (long long) x->omid, MAX_ROLES);
            return;
        }
        cs_msg_role_t *r = &x->roles [x->role_count++];
        r->role = role;
        cs_day_format (s, r->start);
        cs_day_format (e, r->end);
    }
}

static void
on_start (void *ctx, const xmlChar *name, const xmlChar *prefix, const xmlChar *uri,
          int nb_ns, const xmlChar **ns, int nb_attrs, int nb_defaulted, const xmlChar **attrs)
{
    (void) prefix; (void) uri; (void) nb_ns; (void) ns; (void) nb_defaulted;
    start_element (ctx, name, nb_attrs, attrs);
    stop_if_failed (ctx);
}

static void
on_end (void *ctx, const xmlChar *name, const xmlChar *prefix, const xmlChar *uri)
{
    (void) name; (void) prefix; (void) uri;
    export_t *x = ctx;
    if (!x->failed && x->member_depth && x->depth == x->member_depth) {
        cs_member_t m = {
            .org = x->org, .omid = x->omid,
            .email = x->has_email ? x->email : NULL,
            .first = x->has_first ? x->first : NULL,
            .last = x->has_last ? x->last : NULL,
            .inactive = x->inactive, .roles = x->roles, .role_count = x->role_count,
        };
        x->members++;
        if (x->fn (x->arg, &m) != 0)
            fail (x, "stopped while sending member %lld", (long long) x->omid);
        x->member_depth = 0;
    }
    x->depth--;
    stop_if_failed (x);
}

static void
on_doctype (void *ctx, const xmlChar *name, const xmlChar *external, const xmlChar *system)
{
    (void) external; (void) system;
    if (name && !strcasecmp ((const char *) name, "html"))
        fail (ctx, "Cardskipper answered with an HTML page, not XML (a proxy or an error page?)");
    else
        fail (ctx, "the export has a DOCTYPE; refused (entities are not accepted)");
    stop_if_failed (ctx);
}

static void
on_entity (void *ctx, const xmlChar *name, int type, const xmlChar *public_id,
           const xmlChar *system_id, xmlChar *content)
{
    (void) type; (void) public_id; (void) system_id; (void) content;
    fail (ctx, "the export declares an entity '%s'; refused", (const char *) name);
    stop_if_failed (ctx);
}

/* The SAX push parser, set up to refuse what an export never has. */
static int
parser_new (export_t *x)
{
    xmlSAXHandler sax;
    memset (&sax, 0, sizeof sax);
    sax.initialized = XML_SAX2_MAGIC;
    sax.startElementNs = on_start;
    sax.endElementNs = on_end;
    sax.internalSubset = on_doctype;
    sax.externalSubset = on_doctype;
    sax.entityDecl = on_entity;
    x->ctxt = xmlCreatePushParserCtxt (&sax, x, NULL, 0, "export.xml");
    if (!x->ctxt)
        return -1;
    /* an export is UTF-8 (cardskipper-api.md): a declared encoding is not
     * obeyed, so bytes that are not UTF-8 fail the export however they come */
    xmlCtxtUseOptions (x->ctxt, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING
                                | XML_PARSE_NOCDATA | XML_PARSE_IGNORE_ENC);
    return 0;
}

/* One piece of a 200 answer's body, as it arrives. 0, or -1 once failed. */
static int
feed (export_t *x, const char *data, size_t n)
{
    if (x->failed)
        return -1;
    if (xmlParseChunk (x->ctxt, data, (int) n, 0) != 0 && !x->failed) {
        const xmlError *e = xmlCtxtGetLastError (x->ctxt);
        fail (x, "the export is not well-formed XML (line %d): %s", e ? e->line : 0,
              e && e->message ? e->message : "parse error");
    }
    return x->failed ? -1 : 0;
}

/* The whole 200 body has arrived: it must have been a complete export. */
static void
finish (export_t *x)
{
    if (x->failed)
        return;
    if (x->bytes == 0)
        fail (x, "Cardskipper answered HTTP 200 with an empty body, not an export");
    else if (xmlParseChunk (x->ctxt, NULL, 0, 1) != 0 || !x->ctxt->wellFormed) {
        const xmlError *e = xmlCtxtGetLastError (x->ctxt);
        fail (x, "the export is not well-formed XML (line %d): %s", e ? e->line : 0,
              e && e->message ? e->message : "parse error");
    }
    else if (!x->saw_root)
        fail (x, "the export is empty (no <Cardskipper> document)");
}

static size_t
on_body (char *data, size_t size, size_t count, void *arg)
{
    export_t *x = arg;
    size_t n = size * count;
    if (!x->http_status)
        curl_easy_getinfo (x->curl, CURLINFO_RESPONSE_CODE, &x->http_status);
    x->bytes += n;
    if (x->http_status != 200) {
        /* an error page: keep its start for the message, never parse it */
        size_t room = sizeof x->error_body - 1 - x->error_len;
        size_t take = n < room ? n : room;
        memcpy (x->error_body + x->error_len, data, take);
        x->error_len += take;
        x->error_body [x->error_len] = 0;
        return n;
    }
    if (x->bytes > MAX_BODY) {
        fail (x, "the export is larger than %zu bytes", MAX_BODY);
        return 0;
    }
    return feed (x, data, n) == 0 ? n : 0;
}

static int
on_progress (void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void) dltotal; (void) dlnow; (void) ultotal; (void) ulnow;
    export_t *x = arg;
    if (x && x->fn)
        x->fn (x->arg, NULL);
    return cs_zmq_interrupted () ? 1 : 0;
}

/* Attribute values for the request, escaped. */
static void
xml_escape (const char *in, char *out, size_t size)
{
    size_t n = 0;
    for (; *in && n + 7 < size; in++) {
        const char *rep = *in == '&' ? "&amp;" : *in == '<' ? "&lt;" : *in == '>' ? "&gt;"
                        : *in == '"' ? "&quot;" : *in == '\'' ? "&apos;" : NULL;
        if (rep) {
            memcpy (out + n, rep, strlen (rep));
            n += strlen (rep);
        }
        else
            out [n++] = *in;
    }
    out [n] = 0;
}

static CURL *
new_handle (const cs_cardskipper_config_t *cfg, const char *path, export_t *x)
{
    CURL *curl = curl_easy_init ();
    if (!curl)
        return NULL;
    char url [1024];
    snprintf (url, sizeof url, "%s%s", cfg->url, path);
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
    curl_easy_setopt (curl, CURLOPT_USERNAME, cfg->username);
    curl_easy_setopt (curl, CURLOPT_PASSWORD, cfg->password ? cfg->password : "");
    if (cfg->ca_file)
        curl_easy_setopt (curl, CURLOPT_CAINFO, cfg->ca_file);
    curl_easy_setopt (curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt (curl, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT, (long) cfg->timeout);
    curl_easy_setopt (curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt (curl, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt (curl, CURLOPT_USERAGENT, "cardsync/" CARDSYNC_VERSION);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, x);
    curl_easy_setopt (curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt (curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt (curl, CURLOPT_XFERINFODATA, x);
    return curl;
}

/* The verdict on a finished transfer. */
static void
conclude (export_t *x, CURLcode rc, const char *what, cs_export_result_t *r)
{
    r->http_status = x->http_status;
    r->members = x->members;
    r->bytes = x->bytes;
    if (rc == CURLE_ABORTED_BY_CALLBACK && cs_zmq_interrupted ()) {
        r->status = CS_EXPORT_INTERRUPTED;
        snprintf (r->error, sizeof r->error, "%.60s interrupted by a signal", what);
        return;
    }
    if (x->http_status && x->http_status != 200) {
        /* one line of the body, for the operator */
        for (char *c = x->error_body; *c; c++)
            if (*c == '\n' || *c == '\r' || *c == '\t')
                *c = ' ';
        long s = x->http_status;
        r->status = s == 401 || s == 403 ? CS_EXPORT_AUTH
                  : s == 429 || s == 502 || s == 503 || s == 504 || s >= 500 ? CS_EXPORT_TRANSIENT
                  : CS_EXPORT_FAILED;
        snprintf (r->error, sizeof r->error, "%.60s: HTTP %ld%s: %.200s", what, s,
                  s == 401 ? " (the username or password is wrong)"
                  : s == 403 ? " (the account lacks the API right for this call or organisation)"
                  : "", x->error_body);
        return;
    }
    if (x->failed && rc != CURLE_OK && rc != CURLE_WRITE_ERROR) {
        r->status = CS_EXPORT_FAILED;
        snprintf (r->error, sizeof r->error, "%.60s: %.440s", what, x->error);
        return;
    }
    if (x->failed) {
        r->status = CS_EXPORT_FAILED;
        snprintf (r->error, sizeof r->error, "%.60s: %.440s", what, x->error);
        return;
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        r->status = CS_EXPORT_TRANSIENT;
        snprintf (r->error, sizeof r->error, "%.60s: no complete answer within %d s "
                  "([cardskipper] timeout), %zu bytes received", what, x->cfg->timeout, x->bytes);
        return;
    }
    if (rc != CURLE_OK) {
        r->status = rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE
                    || rc == CURLE_SSL_CONNECT_ERROR ? CS_EXPORT_FAILED : CS_EXPORT_TRANSIENT;
        snprintf (r->error, sizeof r->error, "%.60s: %.200s%s", what, curl_easy_strerror (rc),
                  rc == CURLE_PEER_FAILED_VERIFICATION
                  ? " (the server's certificate is not trusted; see [cardskipper] ca_file)" : "");
        return;
    }
    r->status = CS_EXPORT_OK;
}

void
cs_export_run (const cs_cardskipper_config_t *cfg, int64_t org, const char *changed_at,
               cs_member_fn *fn, void *arg, cs_export_result_t *result)
{
    memset (result, 0, sizeof *result);
    export_t *x = calloc (1, sizeof *x);
    if (!x) {
        result->status = CS_EXPORT_FAILED;
        snprintf (result->error, sizeof result->error, "out of memory");
        return;
    }
    x->cfg = cfg;
    x->org = org;
    x->fn = fn;
    x->arg = arg;
    if (parser_new (x) != 0) {
        result->status = CS_EXPORT_FAILED;
        snprintf (result->error, sizeof result->error, "out of memory");
        free (x);
        return;
    }

    char body [1024], escaped [128];
    int n = snprintf (body, sizeof body,
                      "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Cardskipper>\n"
                      "  <SearchCriteriaMember>\n    <OrganisationId value=\"%lld\"/>\n",
                      (long long) org);
    if (cfg->only_active)
        n += snprintf (body + n, sizeof body - (size_t) n, "    <OnlyActive value=\"true\"/>\n");
    if (changed_at) {
        xml_escape (changed_at, escaped, sizeof escaped);
        n += snprintf (body + n, sizeof body - (size_t) n, "    <ChangedAt value=\"%s\"/>\n",
                       escaped);
    }
    snprintf (body + n, sizeof body - (size_t) n, "  </SearchCriteriaMember>\n</Cardskipper>\n");

    char what [64];
    snprintf (what, sizeof what, "export of organisation %lld", (long long) org);
    x->curl = new_handle (cfg, "/Member/Export", x);
    struct curl_slist *headers = curl_slist_append (NULL, "Content-Type: application/xml; charset=utf-8");
    headers = curl_slist_append (headers, "Accept: application/xml");
    CURLcode rc = CURLE_OUT_OF_MEMORY;
    if (x->curl && headers) {
        curl_easy_setopt (x->curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt (x->curl, CURLOPT_POSTFIELDS, body);
        rc = curl_easy_perform (x->curl);
        if (!x->http_status)
            curl_easy_getinfo (x->curl, CURLINFO_RESPONSE_CODE, &x->http_status);
    }
    if (rc == CURLE_OK && x->http_status == 200)
        finish (x);
    conclude (x, rc, what, result);
    curl_slist_free_all (headers);
    curl_easy_cleanup (x->curl);
    xmlFreeParserCtxt (x->ctxt);
    free (x);
}

void
cs_export_parse (int64_t org, const char *data, size_t size, const size_t *cuts, size_t cut_count,
                 cs_member_fn *fn, void *arg, cs_export_result_t *result)
{
    memset (result, 0, sizeof *result);
    static const cs_cardskipper_config_t none;
    export_t *x = calloc (1, sizeof *x);
    if (!x || parser_new (x) != 0) {
        result->status = CS_EXPORT_FAILED;
        snprintf (result->error, sizeof result->error, "out of memory");
        free (x);
        return;
    }
    x->cfg = &none;
    x->org = org;
    x->fn = fn;
    x->arg = arg;
    x->http_status = 200;
    size_t at = 0;
    for (size_t i = 0; i <= cut_count; i++) {
        size_t next = i < cut_count ? cuts [i] : size;
        if (next <= at || next > size)
            continue;               /* an empty piece, or a cut out of order or past the end */
        x->bytes += next - at;
        if (feed (x, data + at, next - at) != 0)
            break;
        at = next;
    }
    finish (x);
    conclude (x, CURLE_OK, "export", result);
    xmlFreeParserCtxt (x->ctxt);
    free (x);
}

void
cs_export_info (const cs_cardskipper_config_t *cfg, char *out, size_t size,
                cs_export_result_t *result)
{
    memset (result, 0, sizeof *result);
    out [0] = 0;
    export_t x;
    memset (&x, 0, sizeof x);
    x.cfg = cfg;
    /* small: read it whole, then look for Organisation elements */
    x.curl = new_handle (cfg, "/Organisation/Info", &x);
    x.ctxt = xmlCreatePushParserCtxt (NULL, NULL, NULL, 0, "info.xml");
    if (!x.curl || !x.ctxt) {
        result->status = CS_EXPORT_FAILED;
        snprintf (result->error, sizeof result->error, "out of memory");
        curl_easy_cleanup (x.curl);
        xmlFreeParserCtxt (x.ctxt);
        return;
    }
    xmlCtxtUseOptions (x.ctxt, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    CURLcode rc = curl_easy_perform (x.curl);
    if (!x.http_status)
        curl_easy_getinfo (x.curl, CURLINFO_RESPONSE_CODE, &x.http_status);
    if (rc == CURLE_OK && x.http_status == 200 && !x.failed) {
        xmlParseChunk (x.ctxt, NULL, 0, 1);
        xmlDocPtr doc = x.ctxt->myDoc;
        xmlNodePtr top = doc ? xmlDocGetRootElement (doc) : NULL;
        if (!x.ctxt->wellFormed || !doc || doc->intSubset)
            fail (&x, "the organisation info is not well-formed XML (or has a DOCTYPE)");
        else if (!top || !is (top->name, "Cardskipper"))
            fail (&x, "the answer is not a Cardskipper document (root <%s>)",
                  top ? (const char *) top->name : "none");
        else {
            size_t len = 0;
            xmlNodePtr root = xmlDocGetRootElement (doc);
            for (xmlNodePtr orgs = root ? root->children : NULL; orgs; orgs = orgs->next)
                for (xmlNodePtr o = orgs->children; o; o = o->next) {
                    if (o->type != XML_ELEMENT_NODE || !is (o->name, "Organisation"))
                        continue;
                    xmlChar *id = xmlGetProp (o, BAD_CAST "Id");
                    xmlChar *name = xmlGetProp (o, BAD_CAST "Name");
                    len += (size_t) snprintf (out + len, len < size ? size - len : 0, "%s%s %s",
                                              len ? ", " : "", id ? (char *) id : "?",
                                              name ? (char *) name : "");
                    xmlFree (id);
                    xmlFree (name);
                }
        }
        if (x.ctxt->myDoc)
            xmlFreeDoc (x.ctxt->myDoc);
    }
    conclude (&x, rc, "organisation info", result);
    curl_easy_cleanup (x.curl);
    xmlFreeParserCtxt (x.ctxt);
}
