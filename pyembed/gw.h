/*
 * The worker's C side: one embedded interpreter, and per slot a thread state,
 * an output buffer and the state of the request it is serving. Go reaches it
 * through gw_init, gw_slot_new, gw_slot_serve and gw_slot_close; everything
 * else is shared between this package's .c files.
 *
 * Conventions: every prototype says whether the GIL is held on entry and
 * exit. Functions that run with the GIL held return NULL or -1 with a Python
 * exception set.
 */
#ifndef GW_H
#define GW_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "gw_frame.h"

/* A growable byte buffer, owned by one slot. */
typedef struct {
    char *data;
    size_t len, cap;
} gw_buf;

/* A worker slot: one OS thread, one Python thread state, one socket. */
typedef struct gw_slot {
    int fd;                 /* slot socket to the master */
    uint8_t *record;        /* this slot's scoreboard record (shared memory) */
    PyGILState_STATE gstate;
    PyThreadState *tstate;
    gw_buf out;             /* frames not yet written to fd */
    gw_buf status;          /* pending status line */
    gw_buf headers;         /* pending headers as a vars block */
    gw_buf scratch;         /* where start_response builds new headers */
    int broken;             /* writing to fd failed: the master is gone */
    int send_errno;

    /* The request being served. */
    uint32_t id;
    int is_head;            /* REQUEST_METHOD is HEAD: no body frames */
    int started;            /* start_response succeeded */
    int head_sent;          /* the head is in out (or already written) */
    int64_t content_length; /* the app's Content-Length, -1 when none */
    size_t memfd_bytes;     /* body bytes this response sent as memfds so far */
    const char *method, *path; /* for log lines; alias the request payload */
    size_t method_len, path_len;
    const char *script_name, *path_info; /* as sent, for gw_route; alias the payload */
    size_t script_name_len, path_info_len;
    PyObject *app;          /* the app gw_route chose, borrowed; NULL: none (404) */
    PyObject *logvars;      /* uwsgi.set_logvar's {bytes: bytes}; NULL until used */
    uint8_t *request_entry; /* its request table entry, claimed (gw_worker_requests.c); NULL: none */

    /* A direct response (FlagDirect, gw_worker_direct.c): out holds bytes for the
     * client until the socket would block, frames for the master after. */
    int client_fd;          /* the client's connection; -1: the response goes through the master */
    uint8_t framing;        /* GW_FRAMING_* */
    int handed_off;         /* the client's socket would block: the rest goes to the master */
    int client_gone;        /* writing to the client failed: stop producing */
    int head_out;           /* the scoreboard says bytes may have left for the client */
    uint64_t written;       /* bytes the worker wrote to the client itself */
    int client_wait_ms;     /* what this response may still wait for the client's socket (gw_client_wait) */
    uint64_t head_bytes, body_bytes; /* the response's sizes as framed for the client */
    uint32_t head_fields;   /* the header fields in that head, for the access line's "N headers" */

    /* FramingHTTP1 (gw_worker_http.c): the head waits until the framing is known. */
    uint8_t http_flags;     /* GW_HTTP_*, from the master */
    int http_status;        /* the status code */
    int64_t http_declared;  /* the first Content-Length, -1 for none or a status without a body */
    int http_has_server, http_has_date;
    int http_committed;     /* the framed head is in out */
    int http_length_sent;   /* a Content-Length is in the head being built */
    int http_bodyless, http_chunked, http_keep_alive;
    gw_buf held;            /* body held back before the head (GW_HTTP_HELD) */
    uint64_t http_counted;  /* body bytes the app gave, HEAD's included */
    PyObject *responder, *write; /* start_response and its write, reused (gw_responder_begin) */

    /* An upgraded connection (gw_worker_websocket.c). */
    const char *vars;       /* the request's CGI variables as sent; alias the payload */
    size_t vars_len;
    int upgraded;           /* a 101 went to the client: the connection is the app's protocol now */
    int websocket;          /* websocket_handshake made it a WebSocket */
    int ws_closed;          /* the WebSocket closed or failed: recv and send raise */
    int ws_fragmented;      /* a message's first fragment came, its last not yet */
    gw_buf ws_in;           /* bytes from the client not yet a whole frame */
    gw_buf ws_msg;          /* a fragmented message so far */
    time_t ws_last_ping, ws_last_pong; /* CLOCK_MONOTONIC seconds; 0: never */
    uint64_t responders_made; /* pairs of them made; a test of their reuse reads it */
} gw_slot;

/* What a worker loads: the default app, any mounted ones, and where. */
typedef struct {
    const char *module, *wsgi_file, *callable; /* the default app; module and wsgi_file may be "" */
    char **paths;           /* --pythonpath entries */
    int npaths;
    const char *mounts;     /* "POINT=APP\n" lines; points have no trailing '/' */
    const char *home;       /* virtualenv or installation prefix, "" for none */
    const char *module_list; /* --py-autoreload's list of module files, "" for none */
    const char *paste;      /* a PasteDeploy URI ("config:/path/app.ini") for the default app, "" for none */
    int manage_script_name, multithread, multiprocess, run_once;
    int no_file_wrapper;    /* environ has no wsgi.file_wrapper (--wsgi-disable-file-wrapper) */
} gw_spec;

/* What uWSGI's Python API tells of the server (gw_uwsgi.c); the strings
 * must live as long as the process. */
typedef struct {
    const char *opt_json;   /* [[key, value or true], ...] as uWSGI's opt reads them */
    int numproc, cores, buffer_size;
    int is_reload;          /* the workers of a reload's generation */
    long started_on;        /* when the master started, Unix seconds */
    long masterpid;         /* 0 without a master (CGI mode) */
    long websockets_max_size; /* KiB; 0 for the default (gw_worker_websocket.c) */
    long websockets_ping_freq, websockets_pong_tolerance; /* seconds; 0 for the defaults */
} gw_uwsgi_info;

/* Entry points for Go. */
int gw_init(const char *argv0, const gw_spec *spec, char *summary,
            size_t cap); /* GIL not held on entry or exit */
gw_slot *gw_slot_new(int fd, uint8_t *record); /* GIL not held on entry or exit */
int gw_slot_serve(gw_slot *s, uint32_t id, uint8_t flags, const char *payload, size_t len, int client_fd,
                  int body_fd, int flush); /* GIL not held on entry or exit */
void gw_slot_close(gw_slot *s); /* GIL not held on entry or exit */
const char *gw_version(void);  /* GIL: any */

/* gw_wsgi_serve.c: the stores a slot makes to its scoreboard record over one
 * request, in the order it makes them; the app is called after the first
 * GW_STORES_BEFORE_APP. */
enum { GW_STORE_STARTED, GW_STORE_ID, GW_STORE_SERVED, GW_STORE_IDLE, GW_STORES };
#define GW_STORES_BEFORE_APP (GW_STORE_ID + 1)
void gw_record_stores(uint8_t *record, uint32_t id, int from, int to); /* GIL: any */

/* gw_python_init.c */
int gw_start(const char *argv0, const char *home, char *summary, size_t cap); /* GIL not held on entry; held on success */
int gw_load(const gw_spec *spec, char *summary, size_t cap); /* GIL held */

/* gw_wsgi_mount.c */
extern PyObject *gw_app; /* the default app; NULL when only mounts were given */
PyObject *gw_mounts_parse(const char *lines, int manage_script_name); /* GIL held: [(point, app spec)] */
int gw_mounts_bind(PyObject *apps);  /* GIL held: apps[0] the default or None, then one per mount */
int gw_route(gw_slot *s, PyObject *environ); /* GIL held: sets s->app */

/* gw_worker_modules.c */
void gw_modules_watch(const char *path); /* GIL held; before the app's import */
void gw_modules_list(void);              /* GIL held; after it */
void gw_modules_note_new(void);          /* GIL held */

/* gw_worker_requests.c: the worker's side of the request table
 * (wsgi/requests.go) and the generation's shared queue. entry is the
 * request's 64-byte entry. */
int gw_requests_attach(int table_fd, int queue_fd); /* GIL: any; in the zygote, before any fork; -1 with errno */
uint8_t *gw_request_entry(uint32_t id);             /* GIL: any; NULL without a table */
void gw_requests_count_claim(void);                 /* GIL: any */
int gw_queue_fd(void);                              /* GIL: any; -1 without a queue */
int gw_request_claim(uint8_t *entry, uint32_t id, pid_t pid); /* GIL: any; 1 claimed, 0 not ours */
int gw_request_done(uint8_t *entry, uint32_t id, uint32_t status, int keep_alive, int broken, int frame_follows,
                    uint32_t head_fields, uint64_t head_bytes,
                    uint64_t body_bytes); /* GIL: any; 1 send the FrameEnd, 0 not, -1 not ours */

/* gw_worker_loop.c */
int gw_worker_serve(int worker, int control, uint8_t *board, const int *slot_fds,
                    int slots); /* GIL not held */

/* gw_uwsgi.c */
void gw_uwsgi_configure(const gw_uwsgi_info *info); /* GIL: any; before gw_start */
int gw_register_uwsgi(void);                 /* GIL not held; before Python starts */
void gw_uwsgi_set_worker(int num);           /* GIL: any */
void gw_uwsgi_request_begun(void);           /* GIL: any: counts for uwsgi.workers() */
void gw_uwsgi_request_ended(void);           /* GIL: any */
void gw_uwsgi_set_board(uint8_t *board, int slots); /* GIL: any */
void gw_uwsgi_bind_slot(gw_slot *s);         /* GIL: any; on the slot's thread */
void gw_uwsgi_post_fork(void);               /* GIL held */
void gw_uwsgi_atexit(void);                  /* GIL not held */
int gw_uwsgi_environ(PyObject *template_environ); /* GIL held: adds uwsgi.version and uwsgi.node */
gw_slot *gw_uwsgi_request_slot(const char *function); /* GIL held: the calling thread's slot, or NULL with RuntimeError set */
int gw_uwsgi_worker_id(void);                /* GIL: any; 0 outside a worker */
void gw_uwsgi_user_harakiri(gw_slot *s, int64_t deadline_ns); /* GIL: any */

/* gw_proctitle.c: the title ps shows (uWSGI's procname options). */
void gw_proctitle_set(const char *prefix, const char *name, const char *append); /* GIL: any */
void gw_proctitle_configure(int on, const char *prefix, const char *name, const char *append); /* GIL: any */
void gw_proctitle_role(const char *role);   /* GIL: any */
void gw_proctitle_rename(const char *name); /* GIL: any */

/* gw_uwsgi_signal.c */
extern PyMethodDef gw_signal_methods[];      /* uWSGI's signal functions, added to "uwsgi" */
void gw_signal_set_hub(int fd);              /* GIL: any */
void gw_signal_set_own(int fd);              /* GIL: any */
void gw_signal_take(gw_slot *s, int fd);     /* GIL not held */
void gw_signal_fds(int *own, int *hub);      /* GIL: any; -1 for one the process has not */
int gw_uwsgi_logvars_block(gw_slot *s, gw_buf *b); /* GIL held: set_logvar's, for the end frame */

/* gw_uwsgi_cache.c */
int gw_uwsgi_cache_add(PyObject *module); /* GIL held: the cache_* and lock functions */

/* gw_uwsgi_metrics.c */
int gw_uwsgi_metrics_add(PyObject *module); /* GIL held: the metric_* functions */

/* gw_wsgi_environ.c */
int gw_environ_setup(int multithread, int multiprocess, int run_once, PyObject *file_wrapper); /* GIL held */
PyObject *gw_environ_new(gw_slot *s, const char *vars, size_t vars_len,
                         const char *body, size_t body_len, int *body_fd,
                         PyObject **input); /* GIL held */

/* gw_wsgi_response.c */
extern PyTypeObject gw_responder_type, gw_writer_type;
PyObject *gw_responder_begin(gw_slot *s);         /* GIL held: borrowed */
void gw_responder_end(gw_slot *s);                /* GIL held */
void gw_responder_clear(gw_slot *s);              /* GIL held */
int gw_emit_head(gw_slot *s);                     /* GIL held */

/* gw_wsgi_file_wrapper.c */
extern PyTypeObject gw_file_wrapper_type;
int gw_try_send_file(gw_slot *s, PyObject *wrapper); /* GIL held: 1 sent, 0 not a file, -1 */

/* gw_worker_output.c */
struct iovec;
void gw_iov_advance(struct iovec **iov, int *n, size_t w); /* GIL: any */
int gw_buf_reserve(gw_buf *b, size_t n);          /* GIL held */
int gw_buf_append(gw_buf *b, const void *p, size_t n); /* GIL held */
int gw_buf_append_var(gw_buf *b, const char *p, size_t n); /* GIL held */
void gw_buf_free(gw_buf *b);                      /* GIL: any */
int gw_out_frame(gw_slot *s, char kind, uint8_t flags, size_t len); /* GIL held */
int gw_out_body(gw_slot *s, const char *p, size_t n); /* GIL held */
int gw_out_flush(gw_slot *s);                     /* GIL held, released while writing */
int gw_out_send_fd(gw_slot *s, int fd, uint64_t offset, int64_t count); /* GIL held, released while writing */
int gw_send_pending(gw_slot *s);                  /* GIL not held */
int gw_out_frames(gw_slot *s, char kind, const char *p, size_t n); /* GIL held, released while writing */
void gw_put_u32(char *p, uint32_t v);              /* GIL: any */
void gw_put_u64(char *p, uint64_t v);              /* GIL: any */

/* gw_worker_direct.c */
#define GW_CLIENT_WAIT_MS 20 /* the most one response waits for its client's socket before handing over */
int gw_direct_head(gw_slot *s);                   /* GIL held */
int gw_direct_body(gw_slot *s, const char *p, size_t n); /* GIL held, released while writing */
int gw_direct_flush(gw_slot *s);                  /* GIL held, released while writing */
int gw_direct_file(gw_slot *s, int fd, uint64_t offset, int64_t count); /* GIL held, released while writing */
uint8_t gw_direct_finish(gw_slot *s, uint8_t end_flags, const gw_buf *logvars); /* GIL held, released while writing */
int gw_direct_raw(gw_slot *s, const char *p, size_t n); /* GIL held, released while writing */
void gw_mark_head_out(gw_slot *s);                /* GIL: any */

/* gw_worker_websocket.c */
void gw_ws_configure(uint64_t max_size, int ping_freq, int pong_tolerance); /* GIL: any */
void gw_ws_begin(gw_slot *s);                     /* GIL: any */
void gw_ws_end(gw_slot *s);                       /* GIL: any */
int gw_ws_can_upgrade(gw_slot *s, const char *function); /* GIL held */
int gw_upgrade_head(gw_slot *s);                  /* GIL held, released while writing */
int gw_upgraded_body(gw_slot *s, const char *p, size_t n); /* GIL held, released while writing */
PyObject *gw_uw_websocket_handshake(PyObject *self, PyObject *args); /* GIL held */
PyObject *gw_uw_websocket_recv(PyObject *self, PyObject *unused);    /* GIL held */
PyObject *gw_uw_websocket_recv_nb(PyObject *self, PyObject *unused); /* GIL held */
PyObject *gw_uw_websocket_send(PyObject *self, PyObject *args);      /* GIL held */
PyObject *gw_uw_websocket_send_binary(PyObject *self, PyObject *args); /* GIL held */
PyObject *gw_uw_connection_fd(PyObject *self, PyObject *unused);     /* GIL held */

/* gw_worker_http.c */
void gw_http_begin(gw_slot *s, uint8_t flags);    /* GIL: any */
int gw_http_head(gw_slot *s);                     /* GIL held */
int gw_http_commit(gw_slot *s, int ended);        /* GIL held, released while writing */
int gw_http_body(gw_slot *s, const char *p, size_t n); /* GIL held, released while writing */
int gw_http_file(gw_slot *s, int fd, uint64_t offset, int64_t count); /* GIL held, released while writing */
int gw_http_end(gw_slot *s, int whole);           /* GIL held, released while writing */
uint32_t gw_head_fields(const char *head, size_t len); /* header fields in a head; no GIL needed */

#endif
