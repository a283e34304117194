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

#define GW_FLAG_BODY_SPOOLED 1 /* FrameRequest: the body's descriptor comes with it */
#define GW_FLAG_END_BROKEN 1   /* FrameEnd: close the client connection */

/* Scoreboard slot record: byte offsets of its naturally aligned words. */
#define GW_SLOT_RECORD_LEN 64
#define GW_SLOT_CURRENT_ID 0 /* u32, worker writes */
#define GW_SLOT_ABORT_ID 4   /* u32, master writes */
#define GW_SLOT_STARTED_NS 8 /* i64, worker writes */
#define GW_SLOT_SERVED 16    /* u64, worker writes */
#define GW_SLOT_USER_HARAKIRI_NS 24 /* i64, worker writes: uwsgi.set_user_harakiri's deadline, 0 none */

/* Largest key or value in a vars block (16-bit lengths). */
#define GW_MAX_VAR_LEN 0xffff

/* Reads a little-endian u32 of the wire format. */
static inline uint32_t gw_get_u32(const void *p)
{
    const unsigned char *u = p;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

#endif
