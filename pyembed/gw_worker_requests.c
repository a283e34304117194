/*
 * The worker's side of the request table (wsgi/requests.go, which explains
 * the word): claiming a request read from the shared queue before running
 * it, and ending it by storing its completion in shared memory, so the
 * master is woken by a frame only when it asked for one. Every change to
 * the word is a sequentially consistent compare-and-swap: the master's
 * atomic or of the waiting bit and the worker's move to DONE are ordered,
 * and exactly one of them sees the other.
 */
#include "gw.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define GW_WORD_ID_MASK 0xffffffffULL
#define GW_WORD_PHASE_MASK (0xfULL << GW_WORD_PHASE_SHIFT)

/* The table and the queue, mapped and kept by the zygote before any fork,
 * so every worker it forks has them; written once, before the threads. */
static uint8_t *gw_requests;
static uint32_t gw_requests_mask; /* entries - 1: an id's low bits name its entry */
static int gw_queue = -1;

/* GIL: any. Maps the request table (a memfd the master made, a power of
 * two of entries) and keeps the generation's queue, the receiving end the
 * slots read request frames from (gw_worker_loop.c). Both stay open across
 * fork and close on exec, so the app's subprocesses hold neither. Returns
 * 0, or -1 with errno set. */
int gw_requests_attach(int table_fd, int queue_fd)
{
    struct stat st;
    if (fstat(table_fd, &st) < 0)
        return -1;
    size_t entries = (size_t)st.st_size / GW_REQUEST_ENTRY_LEN;
    if (entries < 2 || (entries & (entries - 1)) != 0) {
        errno = EINVAL;
        return -1;
    }
    void *mem = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, table_fd, 0);
    if (mem == MAP_FAILED)
        return -1;
    close(table_fd);
    if (fcntl(queue_fd, F_SETFD, FD_CLOEXEC) < 0)
        return -1;
    gw_requests = mem;
    gw_requests_mask = (uint32_t)(entries - 1);
    gw_queue = queue_fd;
    return 0;
}

/* GIL: any. Request id's entry, or NULL without a table. */
uint8_t *gw_request_entry(uint32_t id)
{
    if (gw_requests == NULL)
        return NULL;
    return gw_requests + (size_t)(id & gw_requests_mask) * GW_REQUEST_ENTRY_LEN;
}

/* GIL: any. Counts a claim in the table's header (entry 0, which no
 * request uses): the master reads claims against what it sent to know how
 * many requests wait in the queue (--listen, readiness). */
void gw_requests_count_claim(void)
{
    if (gw_requests != NULL)
        __atomic_add_fetch((uint64_t *)(gw_requests + GW_REQUEST_WORD), 1, __ATOMIC_RELAXED);
}

/* GIL: any. The generation's queue, -1 without one. */
int gw_queue_fd(void)
{
    return gw_queue;
}

static uint64_t *gw_request_word(uint8_t *entry)
{
    return (uint64_t *)(entry + GW_REQUEST_WORD);
}

static int gw_word_is(uint64_t w, uint32_t id, uint64_t phase)
{
    return (w & GW_WORD_ID_MASK) == id && (w & GW_WORD_PHASE_MASK) == phase << GW_WORD_PHASE_SHIFT;
}

/* GIL: any. Claims request id for the worker pid: its word must still
 * say QUEUED with this id. Returns 1 when the slot may run it, 0 when the
 * message is a copy the master gave up (LOST), or its entry has moved on:
 * the caller drops it, closing the descriptors that came with it. */
int gw_request_claim(uint8_t *entry, uint32_t id, pid_t pid)
{
    uint64_t *word = gw_request_word(entry);
    uint64_t taker = (uint64_t)pid << GW_WORD_PID_SHIFT;
    uint64_t old = __atomic_load_n(word, __ATOMIC_SEQ_CST);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    /* Stored before the claim: the master reads it only once the word has
     * left QUEUED, and a claim that fails leaves it to a request no one
     * reads it for. */
    __atomic_store_n((int64_t *)(entry + GW_REQUEST_TAKEN_NS), (int64_t)now.tv_sec * 1000000000 + now.tv_nsec,
                     __ATOMIC_RELAXED);
    for (;;) {
        if (!gw_word_is(old, id, GW_PHASE_QUEUED))
            return 0;
        /* The waiting bit stays: an eager request is posted with it. */
        uint64_t taken = (old & (GW_WORD_ID_MASK | GW_WORD_WAITING)) | (uint64_t)GW_PHASE_TAKEN << GW_WORD_PHASE_SHIFT |
                         taker;
        if (__atomic_compare_exchange_n(word, &old, taken, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            return 1;
        /* old now holds what the word became: the master set waiting, or
         * gave the request up. */
    }
}

/* GIL: any. Ends request id, which this worker claimed: stores the
 * completion (the flags as a completion record's, wsgi/direct.go), then moves the word TAKEN -> DONE. frame_follows says the
 * caller sends the FrameEnd in any case (it carries the app's log
 * variables), which the entry tells a master that reads it. Returns 1 when
 * the caller must send the FrameEnd: the master had set waiting, or
 * frame_follows; 0 when the master will read the completion here; -1 when
 * the word is not this request's TAKEN (a bug: nothing else moves a
 * claimed request). */
int gw_request_done(uint8_t *entry, uint32_t id, uint32_t status, int keep_alive, int broken, int frame_follows,
                    uint32_t head_fields, uint64_t head_bytes, uint64_t body_bytes)
{
    uint32_t flags = (keep_alive ? GW_COMPLETION_KEEP_ALIVE : 0) | (broken ? GW_REQUEST_BROKEN : 0) |
                     (frame_follows ? GW_REQUEST_FRAME_FOLLOWS : 0) | head_fields << GW_COMPLETION_FIELDS_SHIFT;
    gw_put_u32((char *)entry + GW_REQUEST_STATUS, status);
    gw_put_u32((char *)entry + GW_REQUEST_FLAGS, flags);
    gw_put_u64((char *)entry + GW_REQUEST_HEAD_BYTES, head_bytes);
    gw_put_u64((char *)entry + GW_REQUEST_BODY_BYTES, body_bytes);
    uint64_t *word = gw_request_word(entry);
    uint64_t old = __atomic_load_n(word, __ATOMIC_SEQ_CST);
    for (;;) {
        if (!gw_word_is(old, id, GW_PHASE_TAKEN))
            return -1;
        uint64_t done = (old & ~GW_WORD_PHASE_MASK) | (uint64_t)GW_PHASE_DONE << GW_WORD_PHASE_SHIFT;
        if (__atomic_compare_exchange_n(word, &old, done, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            return frame_follows || (old & GW_WORD_WAITING) != 0;
    }
}
