/* Shared plumbing of the simulators: an HTTP server on 127.0.0.1 (libmicrohttpd,
 * a thread per connection) that lets a handler answer before the request body
 * is read (as devices do with an auth challenge) or after all of it, plus reply
 * helpers and a seeded random generator. For tests only. */
#ifndef SIM_HTTP_H
#define SIM_HTTP_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_BODY_MAX (4 * 1024 * 1024)

typedef struct {
    char *body;                 /* the request body so far (NUL-terminated) */
    size_t len;
    size_t cap;
    int too_big;                /* the body passed SIM_BODY_MAX */
    int answered;               /* a response has been queued */
    int counted;                /* the handler counted it as in flight */
    int64_t start_us;           /* when its headers were in (sim_now_us) */
    int ended;                  /* done has been called */
    void *user;                 /* the handler's own state */
} sim_req_t;

typedef enum { SIM_CONTINUE, SIM_DONE, SIM_FAIL } sim_step_t;

/* Called once with complete == 0 when the headers are in (return SIM_DONE
 * after queuing a response to answer before the body), then, if it returned
 * SIM_CONTINUE, once with complete == 1 when the whole body is in. */
typedef sim_step_t (sim_handler_fn) (void *cls, struct MHD_Connection *conn, const char *method,
                                     const char *url, sim_req_t *req, int complete);
typedef void (sim_done_fn) (void *cls, sim_req_t *req);

typedef struct {
    sim_handler_fn *handler;
    sim_done_fn *done;          /* once a request's answer is queued (the client may have it
                                 * before MHD calls it complete), or it ends unanswered;
                                 * may be NULL */
    void *cls;
    struct MHD_Daemon *daemon;
    uint16_t port;
} sim_server_t;

/* Listens on 127.0.0.1:port (0: any free port; srv->port tells). */
int sim_listen (sim_server_t *srv, uint16_t port, uint64_t seed);
void sim_stop (sim_server_t *srv);

/* Queues a response; headers are name, value pairs ending with NULL. */
sim_step_t sim_reply (struct MHD_Connection *conn, unsigned status, const char *content_type,
                      const char *body, size_t len, ...) __attribute__ ((sentinel));
sim_step_t sim_reply_text (struct MHD_Connection *conn, unsigned status, const char *text);
/* Queues j (taking its reference) as JSON; close adds "Connection: close". */
sim_step_t sim_reply_json (struct MHD_Connection *conn, unsigned status, json_t *j, int close);
/* A control-port error: {"error": why}. */
sim_step_t sim_control_error (struct MHD_Connection *conn, unsigned status, const char *why);

/* The client's address as text ("127.0.0.1"). */
void sim_client_ip (struct MHD_Connection *conn, char *out, size_t size);

/* xorshift64*: reproducible from a seed. */
typedef struct {
    uint64_t state;
} sim_rng_t;
void sim_rng_seed (sim_rng_t *rng, uint64_t seed);
uint64_t sim_rng_next (sim_rng_t *rng);
double sim_rng_real (sim_rng_t *rng);          /* [0, 1) */
unsigned sim_rng_below (sim_rng_t *rng, unsigned n);

/* Milliseconds on a monotonic clock; sleeping. */
int64_t sim_now_ms (void);
int64_t sim_now_us (void);      /* CLOCK_MONOTONIC, microseconds */
void sim_sleep_ms (int64_t ms);
/* The next reply from this thread (one per connection) leaves ms from now at
 * the earliest: a device that answers in ms, whatever the work in between. */
void sim_reply_after_ms (int64_t ms);

/* Writes the port into path (atomically), for the tests that started us. */
int sim_write_port_file (const char *path, const uint16_t *ports, size_t count);

/* Growable text buffer. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} sim_buf_t;
void sim_buf_add (sim_buf_t *b, const char *text, size_t len);
void sim_buf_printf (sim_buf_t *b, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
/* Appends text escaped for an XML attribute value. */
void sim_buf_xml (sim_buf_t *b, const char *text);
void sim_buf_free (sim_buf_t *b);
/* Appends a string literal. */
#define SIM_ADD(b, lit) sim_buf_add ((b), (lit), sizeof (lit) - 1)

#endif
