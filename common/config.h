/* cs_config: the one INI file all four programs read (design §4).
 *
 * Loading validates everything and collects every error, each naming the
 * file, the line and the key ("cardsync.ini:12: [device door1] max_inflight:
 * must be a whole number from 1 to 8, not 'many'"). Secrets never live in the
 * file: they come from CARDSYNC_* environment variables or a password_file.
 *
 * The result is plain read-only data: the fields below are the API. */
#ifndef CS_CONFIG_H
#define CS_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Which secrets a program needs; the others are checked only if configured. */
#define CS_SECRETS_CARDSKIPPER  0x1
#define CS_SECRETS_DEVICES      0x2
#define CS_SECRETS_SMTP         0x4
#define CS_SECRETS_WEB          0x8
#define CS_SECRETS_ALL          0xf

#define CS_DEVICE_NAME_MAX 32

typedef struct {
    char *url;                  /* base URL, no trailing slash */
    char *username;
    char *password;             /* the secret (from password_source) */
    char *password_source;      /* the variable name or the password file */
    char *password_file;
    int64_t *organisation_ids;  /* at least one */
    size_t organisation_count;
    int64_t *roles;             /* role ids that grant access; none = all */
    size_t role_count;
    int only_active;
    int poll_interval;          /* seconds, incremental (ChangedAt) export */
    int full_interval;          /* seconds, full export */
    int timeout;                /* seconds for one whole export */
    int auth_retry_min;         /* seconds to wait after a refused login, doubling to an hour */
    char *ca_file;              /* NULL: the system's CAs */
} cs_cardskipper_config_t;

typedef struct {
    char *name;                 /* [a-z0-9_-]{1,32} */
    char *url;                  /* base URL, no trailing slash */
    char *username;
    char *password;
    char *password_source;
    char *password_file;
    char *timezone;             /* "" means the host's zone */
    int max_inflight;           /* requests in flight, 1..8 */
    int verify;                 /* verify the TLS certificate */
    char *ca_file;
    char *pinned_pubkey;        /* libcurl CURLOPT_PINNEDPUBLICKEY form */
    char *door_right;           /* doors for created persons: "1" or "1,3" */
    int plan_template;          /* plan template for created persons */
    int timeout;                /* seconds for one request */
    char *site;                 /* the [site NAME] whose pusher writes to it; NULL: the local one */
    int line;                   /* where the section starts */
} cs_device_config_t;

typedef struct {               /* [site NAME]: a building with its own pusher */
    char *name;
    char *endpoint;             /* where that pusher takes its commands (it binds; the differ
                                 * connects) */
    char *server_key;           /* that pusher's CURVE public key (Z85), or NULL */
    int line;
} cs_site_config_t;

typedef enum {
    CS_MATCH_TAG = 0,
    CS_MATCH_MAP,
    CS_MATCH_MEMBER_ID
} cs_match_t;

typedef struct {
    cs_match_t match [3];       /* the order in which identities are tried */
    size_t match_count;
    char *tag_field;            /* "PersonInfoExtends" or "name" */
    char *identity_map;         /* CSV email,employeeNo or NULL */
    int create_missing;
    int revoke;
    int guard_max_revocations;
    int guard_max_percent;
    int scan_interval;          /* seconds */
    int lease;                  /* seconds */
    int max_retry_age;          /* seconds */
} cs_sync_config_t;

typedef struct {
    char *run_dir;
    char *state_dir;
    char *differ_in;            /* endpoints, defaults inside run_dir */
    char *pusher_in;
    char *auditor_in;
    char *auditor_pub;
    char *differ_ctl;           /* the differ's control socket (operator requests) */
    char *curve_cert;           /* this host's secret certificate (zcert) or NULL */
    char *curve_server_key;     /* the binding side's public key (Z85) */
    char *curve_clients_dir;    /* public certificates allowed to connect */
    char *log_level;            /* debug, info, warn, error */
    int heartbeat_interval;     /* seconds between heartbeats to the differ */
    char *site;                 /* the site this host's pusher serves; NULL: the devices with
                                 * none (then pusher_in defaults to that site's endpoint) */
} cs_pipeline_config_t;

typedef struct {
    int retention_days;
} cs_auditor_config_t;

typedef struct {
    char *smtp_url;             /* NULL: no e-mail */
    char *username;
    char *password;
    char *password_source;
    char *password_file;
    char *from;
    char **to;
    size_t to_count;
    int batch_interval;         /* seconds */
    int export_alert_after;     /* seconds of failing exports before a mail */
    int starttls;               /* smtp:// must upgrade to TLS (default) */
    char *ca_file;
    char *webhook_url;          /* the digest as JSON POST (a secret: it carries a token) */
    char *webhook_source;
    char *webhook_file;
    char *healthcheck_url;      /* a dead-man ping after each good full cycle; /fail */
    char *healthcheck_source;
    char *healthcheck_file;
} cs_notify_config_t;

typedef struct {               /* [web]: cardsync-auditor serve */
    char *address;              /* to listen on: "127.0.0.1", "::1", "0.0.0.0" */
    int family;                 /* AF_INET or AF_INET6 */
    int port;
    int loopback;               /* address is this machine only */
    char **allowed_hosts;       /* lower case; a request's Host must be one of them */
    size_t allowed_count;
    char *username;             /* NULL: no login (loopback only) */
    char *password;
    char *password_source;
    char *password_file;
    char *cert_file;            /* TLS when set (with key_file) */
    char *key_file;
    int allow_plain_http;       /* off loopback without TLS (behind a TLS proxy) */
} cs_web_config_t;

typedef struct {
    char *path;                 /* the file this came from */
    cs_cardskipper_config_t cardskipper;
    cs_device_config_t *devices;
    size_t device_count;
    cs_site_config_t *sites;
    size_t site_count;
    cs_sync_config_t sync;
    cs_pipeline_config_t pipeline;
    cs_auditor_config_t auditor;
    cs_notify_config_t notify;
    cs_web_config_t web;
} cs_config_t;

/* Loads and validates path. On failure returns NULL and, when errors_p is not
 * NULL, a newly allocated text with one error per line (the caller frees). */
cs_config_t *cs_config_load (const char *path, int secrets, char **errors_p);
void cs_config_destroy (cs_config_t **self_p);

/* The device called name, or NULL. */
const cs_device_config_t *cs_config_device (const cs_config_t *self, const char *name);

/* The site whose pusher writes to the device called name: its index in
 * sites, or -1 for the local pusher (also for a device not configured). */
int cs_config_site_index (const cs_config_t *self, const char *name);

/* True when this host's pusher ([pipeline] site) is the one for device d. */
int cs_config_serves (const cs_config_t *self, const cs_device_config_t *d);

/* The environment variable holding device name's password
 * (CARDSYNC_DEVICE_<NAME>_PASSWORD, upper case, '-' as '_'). */
void cs_config_device_env (const char *name, char *out, size_t size);

/* Prints the effective configuration (defaults filled in) as INI, with
 * secrets shown only by where they come from. */
void cs_config_print (const cs_config_t *self, FILE *out);

/* Parses a duration ("90s", "5m", "1h30m", "2d", "300") into seconds. */
int cs_config_parse_duration (const char *text, int *seconds);

#endif
