#include "auditor/pages.h"
#include "common/date.h"
#include "common/text.h"

#include <stdio.h>
#include <string.h>

const char cs_pages_css [] =
    "body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2329;background:#f6f7f9}"
    "header{background:#23395b;color:#fff;padding:.6em 1.2em;display:flex;gap:1.5em;align-items:baseline;flex-wrap:wrap}"
    "header b{font-size:1.15em}header a{color:#dfe8f5;text-decoration:none;margin-right:1em}"
    "header a:hover{text-decoration:underline}main{padding:1em 1.2em;max-width:72em}"
    "h1{font-size:1.3em;margin:.2em 0 .6em}h2{font-size:1.05em;margin:1.4em 0 .4em}"
    "table{border-collapse:collapse;background:#fff;width:100%;margin:.3em 0}"
    "th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #e1e4e8;vertical-align:top}"
    "th{background:#eef1f5;font-weight:600}.ok{color:#17693a}.bad{color:#b3261e;font-weight:600}"
    ".verdict{padding:.7em 1em;border-radius:4px;background:#e3f4e8}.verdict.bad{background:#fbe4e2}"
    ".flash{padding:.5em 1em;background:#fff6d6;border-left:4px solid #d9a400}"
    "form.inline{display:inline}button{font:inherit;padding:.2em .8em;cursor:pointer}"
    "input[type=email]{font:inherit;padding:.2em .4em;width:22em}.muted{color:#5f6b7a}"
    "code{font-size:.95em}#events td:first-child,#history td:first-child{white-space:nowrap}";

/* The live view's script: appends what the server sends (Server-Sent
 * Events) to the table the page already holds. */
const char cs_pages_live_js [] =
    "(function(){var t=document.getElementById('events');if(!t||!window.EventSource)return;"
    "var s=document.getElementById('stream');var es=new EventSource('/events');"
    "es.onopen=function(){s.textContent='live: new events appear as they happen';};"
    "es.onerror=function(){s.textContent='live stream interrupted; reconnecting';};"
    "function two(n){return(n<10?'0':'')+n;}"
    "function when(ms){var d=new Date(ms);return d.getFullYear()+'-'+two(d.getMonth()+1)+'-'+two(d.getDate())"
    "+' '+two(d.getHours())+':'+two(d.getMinutes())+':'+two(d.getSeconds());}"
    "es.onmessage=function(m){var e=JSON.parse(m.data),r=t.insertRow(-1);"
    "[when(e.ts),e.kind||'',e.dev||'',e.email||'',e.no||'',(e.end||'')+' '+(e.msg||'')]"
    ".forEach(function(v){r.insertCell(-1).textContent=v;});"
    "while(t.rows.length>201)t.deleteRow(1);};})();\n";

static void
esc (cs_text_t *t, const char *s)
{
    for (; s && *s; s++)
        switch (*s) {
            case '&': cs_text_put (t, "&amp;"); break;
            case '<': cs_text_put (t, "&lt;"); break;
            case '>': cs_text_put (t, "&gt;"); break;
            case '"': cs_text_put (t, "&quot;"); break;
            case '\'': cs_text_put (t, "&#39;"); break;
            default: cs_text_put (t, "%c", *s);
        }
}

static const char *
str (const json_t *o, const char *key)
{
    const char *v = json_string_value (json_object_get (o, key));
    return v ? v : "";
}

static long long
num (const json_t *o, const char *key)
{
    return (long long) json_integer_value (json_object_get (o, key));
}

/* A cell: the key's value escaped (integers as numbers). */
static void
cell (cs_text_t *t, const json_t *o, const char *key)
{
    json_t *v = json_object_get (o, key);
    cs_text_put (t, "<td>");
    if (json_is_integer (v))
        cs_text_put (t, "%lld", (long long) json_integer_value (v));
    else
        esc (t, json_string_value (v));
    cs_text_put (t, "</td>");
}

/* An audited event (its stored body: ts, kind, dev, no, email, end, msg). */
static void
event_row (cs_text_t *t, const json_t *e, int with_member)
{
    char when [CS_TIME_TEXT_LEN];
    cs_time_text ((int64_t) json_integer_value (json_object_get (e, "ts")), when);
    cs_text_put (t, "<tr><td>%s</td>", when);
    cell (t, e, "kind");
    cell (t, e, "dev");
    if (with_member)
        cell (t, e, "email");
    cell (t, e, "no");
    cs_text_put (t, "<td>");
    esc (t, str (e, "end"));
    cs_text_put (t, " ");
    esc (t, str (e, "msg"));
    cs_text_put (t, "</td></tr>\n");
}

static void
begin (cs_text_t *t, const char *title)
{
    cs_text_put (t, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                 "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                 "<title>cardsync: ");
    esc (t, title);
    cs_text_put (t, "</title><link rel=\"stylesheet\" href=\"/style.css\"></head><body>\n"
                 "<header><b>cardsync</b><nav><a href=\"/\">Overview</a><a href=\"/devices\">Devices</a>"
                 "<a href=\"/failed\">Failed</a><a href=\"/guard\">Guard</a><a href=\"/member\">Member</a>"
                 "<a href=\"/review\">Review</a><a href=\"/live\">Live</a></nav></header>\n<main>\n");
}

static char *
end (cs_text_t *t)
{
    cs_text_put (t, "</main></body></html>\n");
    return cs_text_take (t);
}

/* The page's head and, when the differ did not answer, why. 1: go on. */
static int
start (cs_text_t *t, const char *title, const json_t *data, const char *error)
{
    begin (t, title);
    if (data)
        return 1;
    cs_text_put (t, "<h1>");
    esc (t, title);
    cs_text_put (t, "</h1><p class=\"verdict bad\" id=\"error\">");
    esc (t, error ? error : "no answer");
    cs_text_put (t, "</p>\n");
    return 0;
}

static void
flash (cs_text_t *t, const cs_page_ctx_t *ctx)
{
    if (ctx && ctx->flash) {
        cs_text_put (t, "<p class=\"flash\" id=\"flash\">");
        esc (t, ctx->flash);
        cs_text_put (t, "</p>\n");
    }
}

static void
token (cs_text_t *t, const cs_page_ctx_t *ctx)
{
    cs_text_put (t, "<input type=\"hidden\" name=\"csrf\" value=\"");
    esc (t, ctx ? ctx->csrf : "");
    cs_text_put (t, "\">");
}

char *
cs_page_message (const char *title, const char *text)
{
    cs_text_t t = { 0 };
    begin (&t, title);
    cs_text_put (&t, "<h1>");
    esc (&t, title);
    cs_text_put (&t, "</h1><p>");
    esc (&t, text);
    cs_text_put (&t, "</p>\n");
    return end (&t);
}

/* --- overview and devices ------------------------------------------------------------------ */

static void
devices_table (cs_text_t *t, const json_t *status, const json_t *failed)
{
    cs_text_put (t, "<table id=\"devices\"><tr><th>device</th><th>health</th><th>persons</th>"
                 "<th>last scan</th>%s</tr>\n", failed ? "<th>failed</th>" : "");
    size_t i;
    json_t *d;
    json_array_foreach (json_object_get (status, "devices"), i, d) {
        const char *h = str (d, "health");
        cs_text_put (t, "<tr data-device=\"");
        esc (t, str (d, "name"));
        cs_text_put (t, "\"><td>");
        esc (t, str (d, "name"));
        cs_text_put (t, "</td><td class=\"%s\">", !strcmp (h, "ok") ? "ok" : "bad");
        esc (t, h);
        if (*str (d, "msg")) {
            cs_text_put (t, ": ");
            esc (t, str (d, "msg"));
        }
        if (*str (d, "paused_until")) {
            cs_text_put (t, " (paused until ");
            esc (t, str (d, "paused_until"));
            cs_text_put (t, ")");
        }
        cs_text_put (t, "</td><td>%lld", num (d, "persons"));
        if (num (d, "capacity"))
            cs_text_put (t, " of %lld", num (d, "capacity"));
        cs_text_put (t, " <span class=\"muted\">(%lld tied to members)</span></td><td>", num (d, "managed"));
        esc (t, *str (d, "last_scan") ? str (d, "last_scan") : "never");
        cs_text_put (t, "</td>");
        if (failed) {
            size_t k, n = 0;
            json_t *f;
            json_array_foreach (json_object_get (failed, "rows"), k, f)
                n += !strcmp (str (f, "device"), str (d, "name"));
            cs_text_put (t, "<td class=\"%s\">%zu</td>", n ? "bad" : "ok", n);
        }
        cs_text_put (t, "</tr>\n");
    }
    cs_text_put (t, "</table>\n");
}

char *
cs_page_overview (const json_t *status, const char *error)
{
    cs_text_t t = { 0 };
    if (!start (&t, "Overview", status, error))
        return end (&t);
    json_t *need = json_object_get (status, "attention");
    size_t n = json_array_size (need), i;
    json_t *x;
    if (n == 0)
        cs_text_put (&t, "<p class=\"verdict\" id=\"verdict\">All well: every program is alive, the last "
                     "export was good and every door holds what the members are entitled to.</p>\n");
    else {
        cs_text_put (&t, "<div class=\"verdict bad\" id=\"verdict\">%zu thing%s need%s attention:<ul>",
                     n, n == 1 ? "" : "s", n == 1 ? "s" : "");
        json_array_foreach (need, i, x) {
            cs_text_put (&t, "<li>");
            esc (&t, json_string_value (x));
            cs_text_put (&t, "</li>");
        }
        cs_text_put (&t, "</ul></div>\n");
    }
    cs_text_put (&t, "<h2>Programs</h2><table id=\"stages\"><tr><th>program</th><th>state</th>"
                 "<th>last heartbeat</th></tr>\n<tr><td>differ</td><td class=\"ok\">answering</td><td>up since ");
    esc (&t, str (status, "differ_started"));
    cs_text_put (&t, "</td></tr>\n");
    json_array_foreach (json_object_get (status, "stages"), i, x) {
        int alive = json_is_true (json_object_get (x, "alive"));
        int needed = !json_is_false (json_object_get (x, "needed"));
        cs_text_put (&t, "<tr><td>");
        esc (&t, str (x, "name"));
        if (*str (x, "site")) {
            cs_text_put (&t, " at ");
            esc (&t, str (x, "site"));
        }
        cs_text_put (&t, "</td><td class=\"%s\">%s</td><td>", alive || !needed ? "ok" : "bad",
                     alive ? "alive" : needed ? "SILENT" : "not needed (every device is at a site)");
        esc (&t, *str (x, "last_heartbeat") ? str (x, "last_heartbeat") : "none since the differ started");
        cs_text_put (&t, "</td></tr>\n");
    }
    const json_t *e = json_object_get (status, "last_export"), *tg = json_object_get (status, "targets");
    cs_text_put (&t, "</table>\n<h2>Cardskipper</h2><p id=\"export\">");
    if (*str (e, "when")) {
        cs_text_put (&t, "Last export ");
        esc (&t, str (e, "when"));
        cs_text_put (&t, ": ");
        esc (&t, str (e, "result"));
        cs_text_put (&t, ", %lld member%s", num (e, "members"), num (e, "members") == 1 ? "" : "s");
        if (*str (e, "msg")) {
            cs_text_put (&t, " (");
            esc (&t, str (e, "msg"));
            cs_text_put (&t, ")");
        }
        cs_text_put (&t, ". Last good export: ");
        esc (&t, *str (e, "last_good") ? str (e, "last_good") : "none");
        cs_text_put (&t, ".");
    }
    else
        cs_text_put (&t, "No export yet.");
    cs_text_put (&t, " %lld members, %lld with a usable e-mail.</p>\n", num (status, "members"),
                 num (status, "members_with_email"));
    cs_text_put (&t, "<h2>Persons tied to members</h2><p id=\"targets\">%lld in all: %lld in sync, %lld pending, "
                 "<a href=\"/failed\">%lld failed</a>, <a href=\"/guard\">%lld held by the guard</a>; "
                 "<a href=\"/review\">%lld unmatched</a> (an entitled member without a person on a door).</p>\n",
                 num (tg, "matched"), num (tg, "in_sync"), num (tg, "pending"), num (tg, "failed"),
                 num (tg, "held"), num (tg, "unmatched"));
    cs_text_put (&t, "<h2>Guard</h2><p id=\"guard\">");
    if (num (status, "guard_held"))
        cs_text_put (&t, "<span class=\"bad\">Tripped:</span> %lld revocations held back. "
                     "<a href=\"/guard\">Review and approve</a>.", num (status, "guard_held"));
    else
        cs_text_put (&t, "Clear.");
    cs_text_put (&t, "</p>\n<h2>Devices</h2>\n");
    devices_table (&t, status, NULL);
    cs_text_put (&t, "<p class=\"muted\">Outbox: %lld events not yet in the audit. state.db: ", num (status, "outbox"));
    esc (&t, str (status, "state_db"));
    cs_text_put (&t, ".</p>\n");
    return end (&t);
}

char *
cs_page_devices (const json_t *status, const json_t *failed, const char *error)
{
    cs_text_t t = { 0 };
    if (!start (&t, "Devices", status, error))
        return end (&t);
    cs_text_put (&t, "<h1>Devices</h1>\n");
    devices_table (&t, status, failed);
    return end (&t);
}

/* --- failed and the guard -------------------------------------------------------------------- */

char *
cs_page_failed (const json_t *failed, const cs_page_ctx_t *ctx, const char *error)
{
    cs_text_t t = { 0 };
    if (!start (&t, "Failed", failed, error))
        return end (&t);
    json_t *rows = json_object_get (failed, "rows");
    cs_text_put (&t, "<h1>Failed queue: %zu</h1>\n", json_array_size (rows));
    flash (&t, ctx);
    if (!json_array_size (rows)) {
        cs_text_put (&t, "<p id=\"empty\">Nothing failed.</p>\n");
        return end (&t);
    }
    cs_text_put (&t, "<p>A replay sends each door what the member is entitled to now (never the "
                 "stale command).</p><form method=\"post\" action=\"/replay\">");
    token (&t, ctx);
    cs_text_put (&t, "<input type=\"hidden\" name=\"all\" value=\"1\"><button id=\"replay-all\">Replay all "
                 "%zu</button></form>\n<table id=\"failed\"><tr><th>id</th><th>when</th><th>member</th>"
                 "<th>device</th><th>person</th><th>class</th><th>tries</th><th>the device said</th><th></th></tr>\n",
                 json_array_size (rows));
    size_t i;
    json_t *r;
    json_array_foreach (rows, i, r) {
        cs_text_put (&t, "<tr data-id=\"%lld\">", num (r, "id"));
        static const char *const keys [] = { "id", "when", "email", "device", "employee_no", "class", "tries", "msg", NULL };
        for (int k = 0; keys [k]; k++)
            cell (&t, r, keys [k]);
        cs_text_put (&t, "<td><form class=\"inline\" method=\"post\" action=\"/replay\">");
        token (&t, ctx);
        cs_text_put (&t, "<input type=\"hidden\" name=\"id\" value=\"%lld\"><button name=\"replay\">Replay</button>"
                     "</form></td></tr>\n", num (r, "id"));
    }
    cs_text_put (&t, "</table>\n");
    return end (&t);
}

char *
cs_page_guard (const json_t *held, const cs_page_ctx_t *ctx, const char *error)
{
    cs_text_t t = { 0 };
    if (!start (&t, "Guard", held, error))
        return end (&t);
    long long count = num (held, "held");
    cs_text_put (&t, "<h1>Guard</h1>\n");
    flash (&t, ctx);
    if (!count) {
        cs_text_put (&t, "<p id=\"clear\">The guard is clear: no revocation waits for approval.</p>\n");
        return end (&t);
    }
    cs_text_put (&t, "<p class=\"verdict bad\">Tripped: %lld revocations are held back. Approving sends "
                 "them: these persons will no longer be admitted (their validity ends yesterday).</p>\n"
                 "<table id=\"held\"><tr><th>device</th><th>person</th><th>member</th><th>admitted until now</th></tr>\n",
                 count);
    size_t i;
    json_t *r;
    json_array_foreach (json_object_get (held, "rows"), i, r) {
        cs_text_put (&t, "<tr>");
        cell (&t, r, "device");
        cell (&t, r, "employee_no");
        cell (&t, r, "email");
        cell (&t, r, "end");
        cs_text_put (&t, "</tr>\n");
    }
    cs_text_put (&t, "</table>\n<form method=\"post\" action=\"/approve\">");
    token (&t, ctx);
    cs_text_put (&t, "<input type=\"hidden\" name=\"count\" value=\"%lld\"><button id=\"approve\">Approve these "
                 "%lld revocations</button></form>\n", count, count);
    return end (&t);
}

/* --- a member --------------------------------------------------------------------------------- */

char *
cs_page_member (const char *email, const json_t *member, const json_t *history, const char *error)
{
    cs_text_t t = { 0 };
    begin (&t, "Member");
    cs_text_put (&t, "<h1>Member</h1><form method=\"get\" action=\"/member\"><input type=\"email\" name=\"email\" "
                 "placeholder=\"e-mail address\" value=\"");
    esc (&t, email);
    cs_text_put (&t, "\" required> <button>Search</button></form>\n");
    if (!email)
        return end (&t);
    if (!member) {
        cs_text_put (&t, "<p class=\"verdict bad\" id=\"error\">");
        esc (&t, error ? error : "no answer");
        cs_text_put (&t, "</p>\n");
        return end (&t);
    }
    json_t *rows = json_object_get (member, "rows");
    if (!json_array_size (rows))
        cs_text_put (&t, "<p id=\"none\">The differ knows no member with this address.</p>\n");
    size_t i, k;
    json_t *m, *p;
    json_array_foreach (rows, i, m) {
        cs_text_put (&t, "<h2 class=\"member\">");
        esc (&t, str (m, "first"));
        cs_text_put (&t, " ");
        esc (&t, str (m, "last"));
        cs_text_put (&t, " &lt;");
        esc (&t, str (m, "email"));
        cs_text_put (&t, "&gt; <span class=\"muted\">member %lld:%lld%s</span></h2>\n<p>Role periods "
                     "(role:start:end): <code class=\"roles\">", num (m, "org"), num (m, "member_id"),
                     json_is_true (json_object_get (m, "inactive")) ? ", inactive" : "");
        esc (&t, str (m, "roles"));
        cs_text_put (&t, "</code></p>\n");
        if (!json_array_size (json_object_get (m, "persons"))) {
            cs_text_put (&t, "<p>Tied to no person on any door.</p>\n");
            continue;
        }
        cs_text_put (&t, "<table class=\"persons\"><tr><th>device</th><th>person</th><th>tied by</th>"
                     "<th>state</th><th>admitted from</th><th>admitted until</th></tr>\n");
        json_array_foreach (json_object_get (m, "persons"), k, p) {
            cs_text_put (&t, "<tr data-device=\"");
            esc (&t, str (p, "device"));
            cs_text_put (&t, "\">");
            cell (&t, p, "device");
            cell (&t, p, "employee_no");
            cs_text_put (&t, "<td>");
            esc (&t, str (p, "rule"));
            if (*str (p, "via")) {
                cs_text_put (&t, " ");
                esc (&t, str (p, "via"));
            }
            cs_text_put (&t, "</td><td>");
            esc (&t, *str (p, "sync") ? str (p, "sync") : "not planned yet");
            cs_text_put (&t, "</td><td class=\"begin\">");
            esc (&t, str (p, "begin"));
            cs_text_put (&t, "</td><td class=\"end\">");
            esc (&t, str (p, "end"));
            cs_text_put (&t, "</td></tr>\n");
        }
        cs_text_put (&t, "</table>\n");
    }
    cs_text_put (&t, "<h2>History</h2>\n");
    if (!history)
        cs_text_put (&t, "<p class=\"muted\">The audit cannot be read now.</p>\n");
    else {
        cs_text_put (&t, "<table id=\"history\"><tr><th>when</th><th>what</th><th>device</th><th>person</th>"
                     "<th>until / said</th></tr>\n");
        json_t *e;
        json_array_foreach (json_object_get (history, "rows"), i, e)
            event_row (&t, e, 0);
        cs_text_put (&t, "</table>\n");
    }
    return end (&t);
}

/* --- review lists and the live view ---------------------------------------------------------- */

static void
list (cs_text_t *t, const char *id, const json_t *body, const char *const *keys, const char *const *heads)
{
    cs_text_put (t, "<table id=\"%s\"><tr>", id);
    for (int k = 0; keys [k]; k++)
        cs_text_put (t, "<th>%s</th>", heads [k]);
    cs_text_put (t, "</tr>\n");
    size_t i;
    json_t *r;
    json_array_foreach (json_object_get (body, "rows"), i, r) {
        cs_text_put (t, "<tr>");
        for (int k = 0; keys [k]; k++)
            cell (t, r, keys [k]);
        cs_text_put (t, "</tr>\n");
    }
    cs_text_put (t, "</table>\n");
}

char *
cs_page_review (const json_t *unmatched, const json_t *orphans, const char *error)
{
    cs_text_t t = { 0 };
    if (!start (&t, "Review", unmatched && orphans ? unmatched : NULL, error))
        return end (&t);
    static const char *const ukeys [] = { "device", "email", "name", "org", "member_id", NULL };
    static const char *const uheads [] = { "device", "member", "name", "org", "member id" };
    static const char *const okeys [] = { "device", "employee_no", "name", "tag", "until", "why", NULL };
    static const char *const oheads [] = { "device", "person", "name", "tag", "admitted until", "why listed" };
    cs_text_put (&t, "<h1>Review</h1><h2>Unmatched: %zu</h2><p>Entitled members with no person on a door: give "
                 "them a card, a tag or a line in identity_map.</p>\n", json_array_size (json_object_get (unmatched, "rows")));
    list (&t, "unmatched", unmatched, ukeys, uheads);
    cs_text_put (&t, "<h2>Orphans: %zu</h2><p>Persons still admitted whom no entitled member ties (untagged "
                 "staff cards are not listed).</p>\n", json_array_size (json_object_get (orphans, "rows")));
    list (&t, "orphans", orphans, okeys, oheads);
    return end (&t);
}

char *
cs_page_live (const json_t *events, const char *error)
{
    cs_text_t t = { 0 };
    if (!start (&t, "Live", events, error))
        return end (&t);
    cs_text_put (&t, "<h1>Events</h1><p id=\"stream\" class=\"muted\">The latest events; reload for more "
                 "(with JavaScript, new ones appear as they happen).</p>\n<table id=\"events\"><tr><th>when</th>"
                 "<th>what</th><th>device</th><th>member</th><th>person</th><th>until / said</th></tr>\n");
    size_t i;
    json_t *e;
    json_array_foreach (json_object_get (events, "rows"), i, e)
        event_row (&t, e, 1);
    cs_text_put (&t, "</table>\n<script src=\"/live.js\"></script>\n");
    return end (&t);
}
