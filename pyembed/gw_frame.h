/*
 * The master<->worker wire format as the worker's C side sees it. These
 * numbers mirror wsgi/frame.go and wsgi/scoreboard.go, which are the
 * reference; frame.go in this package pairs them up and a test checks that
 * they agree.
 */
#ifndef GW_FRAME_H
#define GW_FRAME_H

#include <stdint.h>

/* Frame header: kind u8, flags u8, zero u16, id u32, payload length u32,
 * all little-endian. */
#define GW_FRAME_HEADER_LEN 12
#define GW_MAX_FRAME_PAYLOAD (64 << 20)

#define GW_FRAME_REQUEST 'Q'
#define GW_FRAME_HEAD 'H'
#define GW_FRAME_BODY 'B'
#define GW_FRAME_FILE 'F'
#define GW_FRAME_END 'E'
#define GW_FRAME_HANDOFF 'D'
#define GW_FRAME_RAW 'R'

#define GW_FLAG_BODY_SPOOLED 1 /* FrameRequest: the body's descriptor comes with it */
#define GW_FLAG_END_BROKEN 1   /* FrameEnd: close the client connection */
#define GW_FLAG_DIRECT 2       /* FrameRequest: the worker writes to the client */
#define GW_FLAG_POSTED 4       /* FrameRequest: claim it in the request table before running it */
/* The largest request frame the master sends on the shared queue, one
 * message each: a bigger one goes on a slot socket. */
#define GW_QUEUE_FRAME_CAP (64 << 10)

/* A FlagDirect request's framing parameters (u8 framing, 3 zero bytes),
 * the framings, and the completion record a FrameEnd then carries. */
#define GW_DIRECT_PARAMS_LEN 4
#define GW_FRAMING_HTTP_HEAD 1 /* HTTP/1.1 status line, headers, body to the close: uwsgi */
#define GW_FRAMING_CGI 2       /* "Status:" head, headers, body to the close: SCGI */
#define GW_FRAMING_HTTP1 3     /* HTTP/1.x with keep-alive, chunking, Date and Server: the HTTP socket */
/* FramingHTTP1's second parameter byte: what the request decided
 * (wsgi.HTTPFlags, gateways/http1response.go's responseParams). */
#define GW_HTTP_11 1           /* HTTP/1.1 or later: chunked allowed, keep-alive by default */
#define GW_HTTP_HEAD 2         /* a HEAD request: no body goes out */
#define GW_HTTP_WANTS_CLOSE 4  /* the client asked to close, or is HTTP/1.0 without keep-alive */
#define GW_HTTP_KEEP10 8       /* an HTTP/1.0 client asked for keep-alive */
#define GW_HTTP_STOPPING 16    /* the server is shutting down: close after this response */
#define GW_HTTP_UPGRADE 32     /* the client asked to switch protocols: a 101 may answer (gw_worker_websocket.c) */
#define GW_COMPLETION_LEN 24
#define GW_COMPLETION_KEEP_ALIVE 1 /* the completion's flags: the connection may carry another request */
#define GW_COMPLETION_FIELDS_SHIFT 8 /* the flags' bits from here up: the head's header fields */

/* Scoreboard slot record: byte offsets of its naturally aligned words. */
#define GW_SLOT_RECORD_LEN 64
#define GW_SLOT_CURRENT_ID 0 /* u32, worker writes */
#define GW_SLOT_ABORT_ID 4   /* u32, master writes */
#define GW_SLOT_STARTED_NS 8 /* i64, worker writes */
#define GW_SLOT_SERVED 16    /* u64, worker writes */
#define GW_SLOT_HEAD_OUT 24  /* u32, worker writes: last id written to its client */
#define GW_SLOT_HEAD_STATUS 28 /* u32, worker writes: that response's status code */
#define GW_SLOT_USER_HARAKIRI_NS 32 /* i64, worker writes: uwsgi.set_user_harakiri's deadline, 0 none */

/* The request table (wsgi/requests.go): 64-byte entries, each led by a
 * u64 word: id (bits 0-31), phase (32-35), waiting (36), the pid of the
 * worker that took it (37-63); then the completion the worker stores before it
 * moves the word to DONE. */
#define GW_REQUEST_ENTRY_LEN 64
#define GW_REQUEST_WORD 0        /* u64 */
#define GW_REQUEST_STATUS 8      /* u32 */
#define GW_REQUEST_FLAGS 12      /* u32: GW_COMPLETION_KEEP_ALIVE, GW_REQUEST_BROKEN, GW_REQUEST_FRAME_FOLLOWS */
#define GW_REQUEST_HEAD_BYTES 16 /* u64 */
#define GW_REQUEST_BODY_BYTES 24 /* u64 */
#define GW_REQUEST_TAKEN_NS 32   /* i64, CLOCK_REALTIME */
#define GW_REQUEST_BROKEN 2
#define GW_REQUEST_FRAME_FOLLOWS 4 /* the FrameEnd goes anyway: log variables, or an HTTP connection that closes */
#define GW_PHASE_QUEUED 1
#define GW_PHASE_TAKEN 2
#define GW_PHASE_DONE 3
#define GW_PHASE_LOST 4
#define GW_WORD_PHASE_SHIFT 32
#define GW_WORD_WAITING (1ULL << 36)
#define GW_WORD_PID_SHIFT 37

/* Largest key or value in a vars block (16-bit lengths). */
#define GW_MAX_VAR_LEN 0xffff

/* Reads a little-endian u32 of the wire format. */
static inline uint32_t gw_get_u32(const void *p)
{
    const unsigned char *u = p;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

/* The zygote's messages (gw_zygote.c; the master's side is
 * server/zygote_linux.go, which reads these through pyembed). */
#define GW_ZYGOTE_FDS_PER_MSG 250 /* descriptors one message carries, under the kernel's SCM_MAX_FD (253) */
#define GW_ZYGOTE_MSG_CAP 1100    /* the longest message the zygote sends */

#endif
