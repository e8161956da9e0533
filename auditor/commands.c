/* The operator commands. Everything about sync state comes from the differ,
 * asked on its control socket; only `history` (and `status` when the differ
 * does not answer) read audit.db. */
#include "auditor/commands.h"
#include "auditor/ctl.h"
#include "auditor/tail.h"
#include "common/cli.h"
#include "common/date.h"
#include "common/db.h"
#include "common/email.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A command's usage: on stdout when asked for with --help (exit 0), else on
 * stderr (exit 64). */
static int
usage (const char *text, int argc, const char **argv)
{
    int asked = argc >= 1 && (!strcmp (argv [0], "--help") || !strcmp (argv [0], "-h"));
    fputs (text, asked ? stdout : stderr);
    return asked ? 0 : EX_USAGE;
}

/* The flags a command takes, each at most once; -1 for anything else. */
static int
flags (int argc, const char **argv, const char *const *known, int *set)
{
    for (int i = 0; i < argc; i++) {
        int k = 0;
        while (known [k] && strcmp (known [k], argv [i]))
            k++;
        if (!known [k] || set [k])
            return -1;
        set [k] = 1;
    }
    return 0;
}

#define S(o, k) (json_string_value (json_object_get (o, k)) ? json_string_value (json_object_get (o, k)) : "")
#define I(o, k) ((long long) json_integer_value (json_object_get (o, k)))

/* Asks the differ; on failure says why on stderr. */
static json_t *
ask (const cs_config_t *cfg, const char *command, cs_msg_t *req, int timeout_ms, int *rc)
{
    json_t *body = NULL;
    char err [600];
    cs_ctl_rc_t r = req ? cs_ctl_ask (cfg, req, timeout_ms, &body, err, sizeof err) : CS_CTL_BROKEN;
    if (!req)
        snprintf (err, sizeof err, "out of memory");
    cs_msg_destroy (&req);
    if (r != CS_CTL_OK) {
        fprintf (stderr, "cardsync-auditor %s: %s\n", command, err);
        *rc = 1;
    }
    return body;
}

static void
print_json_rows (json_t *rows)
{
    size_t i;
    json_t *r;
    json_array_foreach (rows, i, r) {
        char *s = json_dumps (r, JSON_COMPACT | JSON_PRESERVE_ORDER);
        printf ("%s\n", s);
        free (s);
    }
}

/* A CSV field, quoted when it must be. */
static void
csv (const char *v, int last)
{
    if (strpbrk (v, ",\"\r\n")) {
        putchar ('"');
        for (const char *p = v; *p; p++) {
            if (*p == '"')
                putchar ('"');
            putchar (*p);
        }
        putchar ('"');
    }
    else
        fputs (v, stdout);
    putchar (last ? '\n' : ',');
}

/* Rows as CSV: a header of keys, then one line each. */
static void
print_csv_rows (json_t *rows, const char *const *keys)
{
    for (int k = 0; keys [k]; k++)
        csv (keys [k], !keys [k + 1]);
    size_t i;
    json_t *r;
    json_array_foreach (rows, i, r)
        for (int k = 0; keys [k]; k++) {
            json_t *v = json_object_get (r, keys [k]);
            char num [32];
            if (json_is_integer (v))
                snprintf (num, sizeof num, "%lld", (long long) json_integer_value (v));
            csv (json_is_integer (v) ? num : S (r, keys [k]), !keys [k + 1]);
        }
}

/* --- lists ------------------------------------------------------------------------------- */

int
cs_cmd_failed (const cs_config_t *cfg, int argc, const char **argv)
{
    static const char *const known [] = { "--json", NULL };
    int set [1] = { 0 }, rc = 0;
    if (flags (argc, argv, known, set) != 0) {
        const char *text = "usage: cardsync-auditor failed [--json]\n"
                 "The failed queue: what could not be written, with the device's own words.\n"
                 "example: cardsync-auditor failed; then: cardsync-auditor replay --all\n";
        return usage (text, argc, argv);
    }
    json_t *body = ask (cfg, "failed", cs_ctl_request ("failed"), CS_CTL_TIMEOUT_MS, &rc);
    if (!body)
        return rc;
    json_t *rows = json_object_get (body, "rows");
    if (set [0])
        print_json_rows (rows);
    else {
        printf ("%-6s  %-19s  %-30s  %-8s  %-8s  %-10s  %5s  %s\n", "id", "when", "member",
                "device", "person", "class", "tries", "the device said");
        size_t i;
        json_t *r;
        json_array_foreach (rows, i, r)
            printf ("%-6lld  %-19s  %-30s  %-8s  %-8s  %-10s  %5lld  %s\n", I (r, "id"), S (r, "when"),
                    S (r, "email"), S (r, "device"), S (r, "employee_no"), S (r, "class"), I (r, "tries"),
                    S (r, "msg"));
        printf ("%zu failed\n", json_array_size (rows));
    }
    json_decref (body);
    return 0;
}

/* unmatched and orphans: the lists an operator reviews, as a table, CSV or JSON. */
static int
review_list (const cs_config_t *cfg, const char *op, int argc, const char **argv, const char *help,
             const char *const *keys, const char *const *heads, const int *widths, const char *one,
             const char *many)
{
    static const char *const known [] = { "--json", "--csv", NULL };
    int set [2] = { 0, 0 }, rc = 0;
    if (flags (argc, argv, known, set) != 0 || (set [0] && set [1]))
        return usage (help, argc, argv);
    json_t *body = ask (cfg, op, cs_ctl_request (op), CS_CTL_TIMEOUT_MS, &rc);
    if (!body)
        return rc;
    json_t *rows = json_object_get (body, "rows");
    if (set [0])
        print_json_rows (rows);
    else if (set [1])
        print_csv_rows (rows, keys);
    else {
        for (int k = 0; k < 5; k++)
            printf ("%-*s%s", k < 4 ? widths [k] : 0, heads [k], k < 4 ? "  " : "\n");
        size_t i;
        json_t *r;
        json_array_foreach (rows, i, r) {
            for (int k = 0; k < 5; k++) {
                json_t *x = json_object_get (r, keys [k]);
                char num [32];
                if (json_is_integer (x))
                    snprintf (num, sizeof num, "%lld", (long long) json_integer_value (x));
                printf ("%-*s%s", k < 4 ? widths [k] : 0, json_is_integer (x) ? num : S (r, keys [k]),
                        k < 4 ? "  " : "\n");
            }
        }
        printf ("%zu %s\n", json_array_size (rows), json_array_size (rows) == 1 ? one : many);
    }
    json_decref (body);
    return 0;
}

int
cs_cmd_unmatched (const cs_config_t *cfg, int argc, const char **argv)
{
    static const char *const keys [] = { "device", "email", "name", "org", "member_id", NULL };
    static const char *const heads [] = { "device", "member", "name", "org", "member id" };
    return review_list (cfg, "unmatched", argc, argv,
                        "usage: cardsync-auditor unmatched [--json | --csv]\n"
                        "Entitled members with no person on a device (give them a card, a tag or a\n"
                        "line in identity_map, or set create_missing).\n"
                        "example: cardsync-auditor unmatched --csv > unmatched.csv\n",
                        keys, heads, (const int []) { 10, 30, 24, 6 },
                        "entitled member without a person on a device",
                        "entitled members without a person on a device");
}

int
cs_cmd_orphans (const cs_config_t *cfg, int argc, const char **argv)
{
    static const char *const keys [] = { "device", "employee_no", "name", "until", "why", "tag", NULL };
    static const char *const heads [] = { "device", "person", "name", "admitted until", "why" };
    return review_list (cfg, "orphans", argc, argv,
                        "usage: cardsync-auditor orphans [--json | --csv]\n"
                        "Persons a device still admits whom no entitled member ties: staff,\n"
                        "strangers' cards, and members whose revocation has not landed yet.\n"
                        "example: cardsync-auditor orphans --csv > orphans.csv\n",
                        keys, heads, (const int []) { 10, 10, 24, 19 },
                        "person admitted whom no entitled member ties",
                        "persons admitted whom no entitled member ties");
}

int
cs_cmd_held (const cs_config_t *cfg, int argc, const char **argv)
{
    static const char *const known [] = { "--json", NULL };
    int set [1] = { 0 }, rc = 0;
    if (flags (argc, argv, known, set) != 0) {
        const char *text = "usage: cardsync-auditor held [--json]\n"
                 "The revocations a tripped guard holds back (approve them with approve).\n"
                 "example: cardsync-auditor held\n";
        return usage (text, argc, argv);
    }
    json_t *body = ask (cfg, "held", cs_ctl_request ("held"), CS_CTL_TIMEOUT_MS, &rc);
    if (!body)
        return rc;
    json_t *rows = json_object_get (body, "rows");
    if (set [0])
        print_json_rows (rows);
    else {
        printf ("%-8s  %-10s  %-30s  %s\n", "device", "person", "member", "admitted until now");
        size_t i;
        json_t *r;
        json_array_foreach (rows, i, r)
            printf ("%-8s  %-10s  %-30s  %s\n", S (r, "device"), S (r, "employee_no"), S (r, "email"),
                    S (r, "end"));
        printf ("%lld revocation%s held back by the guard\n", I (body, "held"), I (body, "held") == 1 ? "" : "s");
    }
    json_decref (body);
    return 0;
}

int
cs_cmd_member (const cs_config_t *cfg, int argc, const char **argv)
{
    char email [CS_EMAIL_MAX + 1];
    cs_msg_t *req = cs_ctl_request ("member");
    int json = 0, ok = argc >= 1 && strcmp (argv [0], "--help") && strcmp (argv [0], "-h");
    for (int i = 0; i < argc && ok; i++) {
        const char *a = argv [i], *v = i + 1 < argc ? argv [i + 1] : NULL;
        char *end = NULL;
        long long n = v ? strtoll (v, &end, 10) : 0;
        if (!strcmp (a, "--json"))
            json = 1;
        else if ((!strcmp (a, "--org") || !strcmp (a, "--id")) && v && *v && !*end && n > 0) {
            ok = cs_msg_set_int (req, !strcmp (a, "--org") ? CS_F_ORG : CS_F_MID, n) == 0;
            i++;
        }
        else if (!cs_msg_has (req, CS_F_EMAIL) && cs_email_normalize (a, email) == CS_EMAIL_OK)
            ok = cs_msg_set_str (req, CS_F_EMAIL, email) == 0;
        else
            ok = 0;
    }
    if (ok)
        ok = cs_msg_has (req, CS_F_EMAIL) != (cs_msg_has (req, CS_F_ORG) && cs_msg_has (req, CS_F_MID))
             && (cs_msg_has (req, CS_F_EMAIL) || !cs_msg_has (req, CS_F_ORG) == !cs_msg_has (req, CS_F_MID));
    if (!ok) {
        cs_msg_destroy (&req);
        const char *text = "usage: cardsync-auditor member (EMAIL | --org ORG --id MEMBER_ID) [--json]\n"
                 "One member as the differ holds it: its roles, and on each device the persons\n"
                 "tied to it, how, and whether the device holds what the member is entitled to.\n"
                 "example: cardsync-auditor member asa.oberg@example.se\n";
        return usage (text, argc, argv);
    }
    int rc = 0;
    json_t *body = ask (cfg, "member", req, CS_CTL_TIMEOUT_MS, &rc);
    if (!body)
        return rc;
    json_t *rows = json_object_get (body, "rows");
    size_t i, k;
    json_t *m, *p;
    if (json)
        print_json_rows (rows);
    else
        json_array_foreach (rows, i, m) {
            printf ("member %lld:%lld  %s %s <%s>%s\n  roles (id:start:end): %s\n", I (m, "org"),
                    I (m, "member_id"), S (m, "first"), S (m, "last"), S (m, "email"),
                    json_is_true (json_object_get (m, "inactive")) ? "  (inactive)" : "", S (m, "roles"));
            if (!json_array_size (json_object_get (m, "persons")))
                printf ("  tied to no person on any device\n");
            json_array_foreach (json_object_get (m, "persons"), k, p)
                printf ("  %-10s person %-10s tied by %s%s%s; %s: %s .. %s%s%s\n", S (p, "device"),
                        S (p, "employee_no"), S (p, "rule"), *S (p, "via") ? " " : "", S (p, "via"),
                        *S (p, "sync") ? S (p, "sync") : "not planned yet", S (p, "begin"), S (p, "end"),
                        *S (p, "retag") ? "; should be tagged " : "", S (p, "retag"));
        }
    if (!json_array_size (rows))
        fprintf (stderr, "cardsync-auditor member: the differ knows no such member\n");
    int found = json_array_size (rows) > 0;
    json_decref (body);
    return found ? 0 : 1;
}

int
cs_cmd_history (const cs_config_t *cfg, int argc, const char **argv)
{
    char email [CS_EMAIL_MAX + 1];
    if (argc < 1 || !strcmp (argv [0], "--help") || !strcmp (argv [0], "-h") || cs_email_normalize (argv [0], email) != CS_EMAIL_OK) {
        const char *text = "usage: cardsync-auditor history EMAIL [--json]\n"
                 "Everything the audit holds about one member.\n"
                 "example: cardsync-auditor history asa.oberg@example.se\n";
        return usage (text, argc, argv);
    }
    const char *args [8] = { "--email", email, "-n", "1000000" };
    int n = 4;
    for (int i = 1; i < argc && n < 8; i++)
        args [n++] = argv [i];
    return cs_tail_run (cfg, n, args);
}

/* --- status ---------------------------------------------------------------------------- */

/* What audit.db alone can say when the differ does not answer. */
static void
status_from_audit (const cs_config_t *cfg)
{
    char path [4200], error [512];
    snprintf (path, sizeof path, "%s/audit.db", cfg->pipeline.state_dir);
    if (access (path, R_OK) != 0)
        return;
    cs_db_t *db = cs_db_open (path, error, sizeof error);
    sqlite3_stmt *st = db ? cs_db_stmt (db, "SELECT ts, state, count, coalesce (msg, '') FROM event "
                                            "WHERE kind = 'cycle' ORDER BY seq DESC LIMIT 1") : NULL;
    printf ("from the audit alone (%s):\n", path);
    if (st && sqlite3_step (st) == SQLITE_ROW) {
        char w [CS_TIME_TEXT_LEN];
        cs_time_text (sqlite3_column_int64 (st, 0), w);
        printf ("  last export:  %s  %s, %lld members%s%s\n", w, sqlite3_column_text (st, 1),
                (long long) sqlite3_column_int64 (st, 2), *sqlite3_column_text (st, 3) ? ": " : "",
                sqlite3_column_text (st, 3));
    }
    else
        printf ("  last export:  none recorded\n");
    if (st)
        sqlite3_reset (st);
    st = db ? cs_db_stmt (db, "SELECT max (ts), count (*) FROM event") : NULL;
    if (st && sqlite3_step (st) == SQLITE_ROW && sqlite3_column_type (st, 0) != SQLITE_NULL) {
        char w [CS_TIME_TEXT_LEN];
        cs_time_text (sqlite3_column_int64 (st, 0), w);
        printf ("  last event:   %s (%lld events held)\n", w, (long long) sqlite3_column_int64 (st, 1));
    }
    if (st)
        sqlite3_reset (st);
    cs_db_destroy (&db);
}

static void
print_status (json_t *j)
{
    json_t *e = json_object_get (j, "last_export"), *t = json_object_get (j, "targets");
    size_t i;
    json_t *x;
    printf ("stages:        differ up since %s", S (j, "differ_started"));
    json_array_foreach (json_object_get (j, "stages"), i, x)
        printf ("; %s%s%s %s", S (x, "name"), *S (x, "site") ? " at " : "", S (x, "site"),
                json_is_false (json_object_get (x, "needed")) ? "not needed (every device is at a site)"
                : json_is_true (json_object_get (x, "alive")) ? "alive" : "SILENT");
    printf ("\n");
    if (json_object_get (e, "when"))
        printf ("last export:   %s  %s, %lld members%s%s%s%s\n", S (e, "when"), S (e, "result"),
                I (e, "members"), *S (e, "msg") ? ": " : "", S (e, "msg"),
                strcmp (S (e, "when"), S (e, "last_good")) && *S (e, "last_good") ? "; last good " : "",
                strcmp (S (e, "when"), S (e, "last_good")) ? S (e, "last_good") : "");
    else
        printf ("last export:   none yet\n");
    printf ("members:       %lld (%lld with a usable e-mail)\n", I (j, "members"), I (j, "members_with_email"));
    printf ("persons:       %lld tied to members: %lld in sync, %lld pending, %lld failed, %lld held by "
            "the guard; %lld unmatched\n", I (t, "matched"), I (t, "in_sync"), I (t, "pending"), I (t, "failed"),
            I (t, "held"), I (t, "unmatched"));
    json_array_foreach (json_object_get (j, "tags_to_update"), i, x) {
        if (i == 0)
            printf ("tags to update (the member's e-mail changed; the person stays tied):\n");
        printf ("  %-12s person %-10s should be tagged %s\n", S (x, "device"), S (x, "employee_no"),
                S (x, "email"));
    }
    if (I (j, "tags_to_update_count") > (long long) json_array_size (json_object_get (j, "tags_to_update")))
        printf ("  ... %lld in all\n", I (j, "tags_to_update_count"));
    printf ("devices:\n");
    json_array_foreach (json_object_get (j, "devices"), i, x) {
        char paused [64] = "", capacity [48] = "";
        if (json_object_get (x, "paused_until"))
            snprintf (paused, sizeof paused, " (paused until %s)", S (x, "paused_until"));
        if (I (x, "capacity"))
            snprintf (capacity, sizeof capacity, " of %lld", I (x, "capacity"));
        char site [80] = "";
        if (*S (x, "site"))
            snprintf (site, sizeof site, "; at site %s", S (x, "site"));
        printf ("  %-12s %s%s%s%s%s; last scan %s, %lld persons%s%s\n", S (x, "name"), S (x, "health"),
                *S (x, "msg") ? ": " : "", S (x, "msg"), paused,
                json_is_false (json_object_get (x, "pusher_alive")) ? " (as last heard: its pusher is silent)" : "",
                json_object_get (x, "last_scan") ? S (x, "last_scan") : "never", I (x, "persons"), capacity,
                site);
    }
    if (I (j, "guard_held"))
        printf ("guard:         TRIPPED: %lld revocations held back (cardsync-auditor approve)\n",
                I (j, "guard_held"));
    else
        printf ("guard:         clear\n");
    printf ("failed queue:  %lld%s\n", I (t, "failed"), I (t, "failed") ? " (cardsync-auditor failed; then replay)" : "");
    printf ("outbox:        %lld event%s not yet acknowledged by the auditor\n", I (j, "outbox"),
            I (j, "outbox") == 1 ? "" : "s");
    printf ("state.db:      %s\n", S (j, "state_db"));
    json_t *disk = json_object_get (j, "disk");
    if (disk)
        printf ("disk:          %lld MB free (%lld %%)\n", I (disk, "free_mb"), I (disk, "free_percent"));
    json_t *need = json_object_get (j, "attention");
    if (json_array_size (need)) {
        printf ("attention:\n");
        json_array_foreach (need, i, x)
            printf ("  - %s\n", json_string_value (x));
    }
    else
        printf ("all well\n");
}

int
cs_cmd_status (const cs_config_t *cfg, int argc, const char **argv)
{
    static const char *const known [] = { "--json", NULL };
    int set [1] = { 0 };
    if (flags (argc, argv, known, set) != 0) {
        const char *text = "usage: cardsync-auditor status [--json]\n"
                 "The one health verdict, from the differ: each program's heartbeat, the last\n"
                 "export, members and persons by state, each device's health and last scan, the\n"
                 "guard, the events not yet in the audit, state.db and the disk. Exits 0 when all\n"
                 "is well, 1 when something needs attention (listed last) or the differ does not\n"
                 "answer, 69 when there is no state yet: usable as a health check.\n"
                 "example: cardsync-auditor status || mail -s 'cardsync needs attention' root\n";
        return usage (text, argc, argv);
    }
    json_t *body = NULL;
    char err [600];
    cs_msg_t *req = cs_ctl_request ("status");
    cs_ctl_rc_t r = req ? cs_ctl_ask (cfg, req, CS_CTL_TIMEOUT_MS, &body, err, sizeof err) : CS_CTL_BROKEN;
    cs_msg_destroy (&req);
    if (r != CS_CTL_OK) {
        char path [4200];
        snprintf (path, sizeof path, "%s/state.db", cfg->pipeline.state_dir);
        int never = access (path, F_OK) != 0;
        snprintf (path, sizeof path, "%s/audit.db", cfg->pipeline.state_dir);
        never = never && access (path, F_OK) != 0;
        if (set [0]) {
            json_t *j = json_pack ("{s:s, s:[s]}", "error", err, "attention", err);
            char *s = json_dumps (j, JSON_COMPACT);
            printf ("%s\n", s);
            free (s);
            json_decref (j);
        }
        fprintf (stderr, "cardsync-auditor status: %s\n", err);
        if (never) {
            fprintf (stderr, "cardsync-auditor status: no state yet: neither state.db nor audit.db "
                     "exists in %s; has the pipeline run?\n", cfg->pipeline.state_dir);
            return EX_UNAVAILABLE;
        }
        if (!set [0])
            status_from_audit (cfg);
        return 1;
    }
    int rc = json_array_size (json_object_get (body, "attention")) ? 1 : 0;
    if (set [0]) {
        char *s = json_dumps (body, JSON_COMPACT);
        printf ("%s\n", s);
        free (s);
    }
    else
        print_status (body);
    json_decref (body);
    return rc;
}

/* --- changes ------------------------------------------------------------------------------ */

int
cs_cmd_replay (const cs_config_t *cfg, int argc, const char **argv)
{
    cs_msg_t *m = cs_ctl_request ("replay");
    int what = 0;
    char email [CS_EMAIL_MAX + 1];
    for (int i = 0; m && i < argc; i++) {
        const char *a = argv [i], *v = i + 1 < argc ? argv [i + 1] : NULL;
        char *end;
        long long id = strtoll (a, &end, 10);
        if (!strcmp (a, "--all"))
            what += cs_msg_set_bool (m, CS_F_ALL, 1) == 0;
        else if (!strcmp (a, "--email") && v && cs_email_normalize (v, email) == CS_EMAIL_OK) {
            what += cs_msg_set_str (m, CS_F_EMAIL, email) == 0;
            i++;
        }
        else if (!strcmp (a, "--device") && v) {
            what += cs_msg_set_str (m, CS_F_DEV, v) == 0;
            i++;
        }
        else if (*a && !*end && id > 0)
            what += cs_msg_add_id (m, (uint64_t) id) == 0;
        else {
            what = -1000;
            break;
        }
    }
    if (what <= 0) {
        const char *text = "usage: cardsync-auditor replay (--all | ID... | --email E | --device D)\n"
                 "Sends the current desired state of failed targets again (IDs from `failed`).\n"
                 "example: cardsync-auditor replay --device door1\n";
        cs_msg_destroy (&m);
        return usage (text, argc, argv);
    }
    int rc = 0;
    json_t *body = ask (cfg, "replay", m, 6 * CS_CTL_TIMEOUT_MS, &rc);
    if (!body)
        return rc;
    json_t *rows = json_object_get (body, "rows");
    size_t i;
    json_t *r;
    json_array_foreach (rows, i, r) {
        if (!strcmp (S (r, "state"), "replayed"))
            printf ("re-sent     %-8s %s (command %lld, person %s)\n", S (r, "device"), S (r, "email"),
                    I (r, "id"), S (r, "employee_no"));
        else
            printf ("superseded  %-8s %s: the device already has, or no longer needs, "
                    "what failed (person %s)\n", S (r, "device"), S (r, "email"), S (r, "employee_no"));
    }
    printf ("%zu failed target%s replayed; watch them with: cardsync-auditor tail -f\n",
            json_array_size (rows), json_array_size (rows) == 1 ? "" : "s");
    json_decref (body);
    return 0;
}

int
cs_cmd_approve (const cs_config_t *cfg, int argc, const char **argv)
{
    static const char *const known [] = { "--yes", NULL };
    int set [1] = { 0 }, rc = 0;
    if (flags (argc, argv, known, set) != 0) {
        const char *text = "usage: cardsync-auditor approve [--yes]\n"
                 "Shows the revocations a tripped guard holds back and, once confirmed, lets the\n"
                 "differ send them. --yes confirms without asking (for scripts).\n"
                 "example: cardsync-auditor approve\n";
        return usage (text, argc, argv);
    }
    json_t *held = ask (cfg, "approve", cs_ctl_request ("held"), CS_CTL_TIMEOUT_MS, &rc);
    if (!held)
        return rc;
    long long count = I (held, "held");
    if (count == 0) {
        printf ("the guard is clear: no revocation waits for approval\n");
        json_decref (held);
        return 0;
    }
    printf ("%-8s  %-10s  %-30s  %s\n", "device", "person", "member", "admitted until now");
    size_t i;
    json_t *r;
    json_array_foreach (json_object_get (held, "rows"), i, r)
        printf ("%-8s  %-10s  %-30s  %s\n", S (r, "device"), S (r, "employee_no"), S (r, "email"), S (r, "end"));
    json_decref (held);
    printf ("%lld revocation%s held back by the guard: these persons would no longer be admitted\n"
            "(their validity would end yesterday).\n", count, count == 1 ? "" : "s");
    if (!set [0]) {
        printf ("Send them? Type yes to confirm: ");
        fflush (stdout);
        char answer [16] = "";
        if (!fgets (answer, sizeof answer, stdin) || strcmp (answer, "yes\n") != 0) {
            printf ("\nnot approved; nothing sent\n");
            return 1;
        }
    }
    cs_msg_t *m = cs_ctl_request ("approve");
    if (m)
        cs_msg_set_int (m, CS_F_COUNT, count);
    json_t *body = ask (cfg, "approve", m, 6 * CS_CTL_TIMEOUT_MS, &rc);
    if (!body)
        return rc;
    rc = json_is_true (json_object_get (body, "approved")) ? 0 : EX_TEMPFAIL;
    if (rc == 0)
        printf ("approved: %s; watch them with: cardsync-auditor tail -f --type applied\n", S (body, "msg"));
    else
        fprintf (stderr, "cardsync-auditor approve: %s\n", S (body, "msg"));
    json_decref (body);
    return rc;
}

#undef S
#undef I
