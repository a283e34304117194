/*
 * A worker's serving loop: one thread per slot, each with its own Python
 * thread state, taking request frames from the generation's shared queue
 * (one SOCK_SEQPACKET message each: the kernel hands each message to one
 * reader) or, for a frame too big for one message, from its slot socket,
 * claiming each in the request table (gw_worker_requests.c) and serving it
 * with gw_slot_serve, until the master closes the slot socket; an idle
 * slot's thread runs the handlers of uWSGI signals (gw_uwsgi_signal.c).
 *
 * It is C so that a worker the zygote forks never starts a Go runtime: the
 * runtime would give each worker about a megabyte of heap, its own threads
 * and a copy of nothing it needs, where uWSGI's workers carry only Python.
 */
#include "gw.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

/* The largest request frame buffer a slot keeps between requests; a bigger
 * one, for a rare large inline body, is freed after its request. */
#define GW_KEPT_FRAME_CAP (256 << 10)

typedef struct {
    int worker, index, fd;
    uint8_t *record;
    pthread_t thread;
} gw_slot_thread;

/* The slots report here whether they could start. */
static pthread_mutex_t gw_start_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gw_start_cond = PTHREAD_COND_INITIALIZER;
static int gw_started, gw_start_failed;

static void gw_slot_started(int ok)
{
    pthread_mutex_lock(&gw_start_mu);
    gw_started++;
    if (!ok)
        gw_start_failed = 1;
    pthread_cond_broadcast(&gw_start_cond);
    pthread_mutex_unlock(&gw_start_mu);
}

static void gw_worker_log(int worker, const char *what, int slot, const char *why)
{
    if (slot >= 0)
        fprintf(stderr, "gowsgi worker %d (pid %d): %s: slot %d: %s\n", worker, (int)getpid(), what, slot, why);
    else
        fprintf(stderr, "gowsgi worker %d (pid %d): %s: %s\n", worker, (int)getpid(), what, why);
    fflush(stderr);
}

/* Reads exactly n bytes. Returns 1, 0 at EOF before the first byte, or -1
 * with errno set (EPIPE for an EOF inside the bytes). */
static int gw_read_full(int fd, char *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0) {
            if (got == 0)
                return 0;
            errno = EPIPE;
            return -1;
        }
        got += (size_t)r;
    }
    return 1;
}

/* The most descriptors a request frame carries: the client connection's
 * (FlagDirect), then the spooled body's (FlagBodySpooled). */
#define GW_MAX_PASSED 2

/* Keeps the descriptors msg carries (SCM_RIGHTS) in passed, in order, while
 * there is room, and closes any other. */
static void gw_keep_fds(struct msghdr *msg, int *passed)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd, kept = 0;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            for (int k = 0; k < GW_MAX_PASSED && !kept; k++) {
                if (passed[k] < 0) {
                    passed[k] = fd;
                    kept = 1;
                }
            }
            if (!kept)
                close(fd);
        }
    }
}

/* Closes the descriptors in passed and marks them gone. */
static void gw_close_passed(int *passed)
{
    int saved = errno;
    for (int k = 0; k < GW_MAX_PASSED; k++) {
        if (passed[k] >= 0)
            close(passed[k]);
        passed[k] = -1;
    }
    errno = saved;
}

/* Reads a frame header, exactly n bytes, with recvmsg: the descriptors the
 * master sends with a request frame arrive with the header's first byte
 * (the master writes the header first, in the message that carries them).
 * passed receives them in order, -1 where none came. Returns as
 * gw_read_full; passed holds nothing unless it returns 1. */
static int gw_read_header(int fd, char *p, size_t n, int *passed)
{
    size_t got = 0;
    for (int k = 0; k < GW_MAX_PASSED; k++)
        passed[k] = -1;
    while (got < n) {
        union {
            struct cmsghdr align;
            char buf[CMSG_SPACE(4 * sizeof(int))];
        } control;
        struct iovec iov = {p + got, n - got};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof control.buf};
        ssize_t r = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto fail;
        gw_keep_fds(&msg, passed);
        if (r == 0) {
            if (got == 0 && passed[0] < 0)
                return 0;
            errno = EPIPE;
            goto fail;
        }
        got += (size_t)r;
    }
    return 1;
fail:
    gw_close_passed(passed);
    return -1;
}

/* What a slot watches, as epoll data: its own socket (a frame too big for
 * the queue, or its end, which retires the slot), the worker's signal
 * socket and the generation's shared one, and the queue. The shared ones
 * are read by every idle slot of every worker: they are watched with
 * EPOLLEXCLUSIVE, so a message wakes one waiter rather than all of them
 * (with poll(2), 8 idle slots cost 5 context switches per request); a slot
 * that is not waiting is skipped. The kernel wakes the exclusive watcher
 * first added, so each time a slot goes idle it adds the queue again, at
 * the end: the slot idle longest takes the next request, as uWSGI's queue
 * of idle cores does. That happens after a response, off the path of the
 * next request; a busy slot's next request costs no epoll call. */
enum { GW_WATCH_SLOT, GW_WATCH_QUEUE, GW_WATCH_OWN, GW_WATCH_HUB };

/* Builds the slot's epoll set, without the queue. Returns its descriptor,
 * or -1 with errno. */
static int gw_watch_new(int fd)
{
    int ep = epoll_create1(EPOLL_CLOEXEC), own, hub;
    if (ep < 0)
        return -1;
    gw_signal_fds(&own, &hub);
    struct {
        int fd;
        uint32_t events;
    } watch[] = {{fd, EPOLLIN}, {own, EPOLLIN}, {hub, EPOLLIN | EPOLLEXCLUSIVE}};
    uint32_t what[] = {GW_WATCH_SLOT, GW_WATCH_OWN, GW_WATCH_HUB};
    for (size_t i = 0; i < sizeof watch / sizeof watch[0]; i++) {
        struct epoll_event ev = {.events = watch[i].events, .data.u32 = what[i]};
        if (watch[i].fd >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, watch[i].fd, &ev) < 0) {
            int saved = errno;
            close(ep);
            errno = saved;
            return -1;
        }
    }
    return ep;
}

/* An idle slot waits as SCHED_BATCH (sched(7)) and runs requests as
 * SCHED_OTHER. The master wakes an idle slot as it sends a request, and the
 * kernel places a thread that a unix socket wakes on the waker's CPU and,
 * for SCHED_OTHER, lets it preempt the waker there: the master lost its
 * CPU in the middle of its loop once per request. A waking batch thread
 * does not preempt; it runs when a CPU is free, or the master sleeps.
 * Measured with hello at 32 connections on 2 CPUs: 61-65k req/s without,
 * 79-82k with. The slot is back to SCHED_OTHER before it runs anything, so
 * the app and the threads and processes it starts keep the ordinary
 * policy; a thread that did not start as SCHED_OTHER (chrt, systemd's
 * CPUSchedulingPolicy) is left as it is. Set per thread, as Linux's
 * sched_setscheduler(0, ...) is. */
static __thread int gw_idle_as_batch = -1; /* -1: not decided yet */

static void gw_sched_idle(void)
{
    if (gw_idle_as_batch < 0)
        gw_idle_as_batch = sched_getscheduler(0) == SCHED_OTHER;
    if (gw_idle_as_batch) {
        struct sched_param p = {0};
        sched_setscheduler(0, SCHED_BATCH, &p);
    }
}

static void gw_sched_busy(void)
{
    if (gw_idle_as_batch > 0) {
        struct sched_param p = {0};
        sched_setscheduler(0, SCHED_OTHER, &p);
    }
}

/* Runs the handler of every signal waiting for this worker on s's thread,
 * so handlers run between requests, never in the middle of one on this
 * slot; and reports whether the slot socket has something to read (its
 * end retires the slot before it takes anything more) or the queue does.
 * Waits timeout_ms (-1: until one of them does). Returns a bit set of
 * 1 << GW_WATCH_SLOT and 1 << GW_WATCH_QUEUE, or -1 with errno set. */
static int gw_watch_poll(gw_slot *s, int ep, int timeout_ms)
{
    struct epoll_event ev[4];
    int n;
    if (timeout_ms != 0)
        gw_sched_idle();
    while ((n = epoll_wait(ep, ev, 4, timeout_ms)) < 0 && errno == EINTR)
        ;
    if (timeout_ms != 0)
        gw_sched_busy();
    if (n < 0)
        return -1;
    int ready = 0, own, hub;
    gw_signal_fds(&own, &hub);
    for (int i = 0; i < n; i++) {
        uint32_t what = ev[i].data.u32;
        if (what == GW_WATCH_SLOT || what == GW_WATCH_QUEUE) {
            ready |= 1 << what;
            continue;
        }
        int sigfd = what == GW_WATCH_OWN ? own : hub;
        if (ev[i].events & EPOLLIN)
            gw_signal_take(s, sigfd);
        else /* the master has gone: the slot socket ends too */
            epoll_ctl(ep, EPOLL_CTL_DEL, sigfd, NULL);
    }
    return ready;
}

/* Waits idle until the slot socket or the queue has something to read,
 * the queue watched from the end of the line (*watched: it is in the set).
 * Returns as gw_watch_poll. */
static int gw_watch_idle(gw_slot *s, int ep, int queue, int *watched)
{
    if (queue >= 0) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.u32 = GW_WATCH_QUEUE};
        if (*watched && epoll_ctl(ep, EPOLL_CTL_DEL, queue, NULL) < 0)
            return -1;
        *watched = 0;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, queue, &ev) < 0)
            return -1;
        *watched = 1;
    }
    int ready;
    do
        ready = gw_watch_poll(s, ep, -1);
    while (ready == 0);
    return ready;
}

/* Reads one request frame from the queue without waiting: the header into
 * h, the payload into buf (GW_QUEUE_FRAME_CAP bytes), the descriptors into
 * passed. Returns the payload's length; 0 when another slot took the
 * message first; -1 at the queue's end (the master retired the
 * generation), or with errno set. */
static ssize_t gw_read_queued(int queue, unsigned char *h, char *buf, int *passed)
{
    for (int k = 0; k < GW_MAX_PASSED; k++)
        passed[k] = -1;
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(4 * sizeof(int))];
    } control;
    struct iovec iov[2] = {{h, GW_FRAME_HEADER_LEN}, {buf, GW_QUEUE_FRAME_CAP}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
    ssize_t r;
    while ((r = recvmsg(queue, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (r < 0)
        return -1;
    gw_keep_fds(&msg, passed);
    if (r == 0) {
        errno = 0;
        return -1;
    }
    if ((msg.msg_flags & MSG_TRUNC) || r < GW_FRAME_HEADER_LEN || gw_get_u32(h + 8) != (uint32_t)(r - GW_FRAME_HEADER_LEN)) {
        gw_close_passed(passed);
        errno = EMSGSIZE;
        return -1;
    }
    return r - GW_FRAME_HEADER_LEN;
}

/* Reads one request frame from the slot socket: the header into h, the
 * payload into *buf, grown as needed. Returns the payload's length, 0 at
 * EOF before a frame, or -1 with *failure set. */
static ssize_t gw_read_addressed(int fd, unsigned char *h, char **buf, size_t *cap, int *passed, const char **failure)
{
    int rc = gw_read_header(fd, (char *)h, GW_FRAME_HEADER_LEN, passed);
    if (rc == 0)
        return 0;
    if (rc < 0) {
        *failure = strerror(errno);
        return -1;
    }
    uint32_t len = gw_get_u32(h + 8);
    if (len == 0 || len > GW_MAX_FRAME_PAYLOAD) {
        *failure = "the master sent a request frame of a size out of bounds";
        return -1;
    }
    if (len > *cap) {
        free(*buf);
        *cap = len;
        if ((*buf = malloc(*cap)) == NULL) {
            *cap = 0;
            *failure = "out of memory for a request frame";
            return -1;
        }
    }
    if (gw_read_full(fd, *buf, len) <= 0) {
        *failure = "the master's request frame ended early";
        return -1;
    }
    return len;
}

/* Claims a posted request in the table. Returns 1 when the slot may run it
 * (its entry in *entry, NULL for a request not posted), 0 when another
 * worker ran it or the master gave it up: a copy to drop. */
static int gw_claim(const unsigned char *h, uint8_t **entry)
{
    *entry = NULL;
    if (!(h[1] & GW_FLAG_POSTED))
        return 1;
    uint32_t id = gw_get_u32(h + 4);
    static __thread pid_t pid;
    if (pid == 0)
        pid = getpid();
    uint8_t *e = gw_request_entry(id);
    if (e == NULL || !gw_request_claim(e, id, pid))
        return 0;
    gw_requests_count_claim();
    *entry = e;
    return 1;
}

/* Serves s's requests until its slot socket ends. Returns NULL, or why it
 * stopped early. */
static const char *gw_slot_loop(gw_slot *s, int fd)
{
    char *buf = NULL, *queued = NULL;
    size_t cap = 0;
    const char *failure = NULL;
    int passed[GW_MAX_PASSED] = {-1, -1};
    int ep = gw_watch_new(fd), queue = gw_queue_fd(), watched = 0, polled = 0;
    if (ep < 0)
        return strerror(errno);
    if (queue >= 0 && (queued = malloc(GW_QUEUE_FRAME_CAP)) == NULL) {
        close(ep);
        return "out of memory for the queue's frames";
    }
    for (;;) {
        unsigned char h[GW_FRAME_HEADER_LEN];
        /* Between two requests: signals, and the slot socket first; just
         * done when the slot wakes from waiting idle. */
        int ready = polled ? polled : gw_watch_poll(s, ep, 0);
        polled = 0;
        if (ready < 0) {
            failure = strerror(errno);
            break;
        }
        ssize_t len = 0;
        char *payload = NULL;
        if (!(ready & (1 << GW_WATCH_SLOT)) && queue >= 0) {
            len = gw_read_queued(queue, h, queued, passed);
            if (len < 0 && errno == 0) {
                /* The generation is retired: the slot socket's end follows. */
                if (watched)
                    epoll_ctl(ep, EPOLL_CTL_DEL, queue, NULL);
                queue = -1;
                watched = 0;
                continue;
            }
            if (len < 0) {
                failure = strerror(errno);
                break;
            }
            payload = queued;
        }
        if (len == 0 && !(ready & (1 << GW_WATCH_SLOT))) {
            ready = gw_watch_idle(s, ep, queue, &watched);
            if (ready < 0) {
                failure = strerror(errno);
                break;
            }
            if (!(ready & (1 << GW_WATCH_SLOT))) {
                polled = ready; /* the queue: read it at the top */
                continue;
            }
        }
        if (len == 0) {
            len = gw_read_addressed(fd, h, &buf, &cap, passed, &failure);
            if (len <= 0)
                break;
            payload = buf;
        }
        if (h[0] != GW_FRAME_REQUEST) {
            failure = "the master sent a frame that is not a request";
            break;
        }
        if (!gw_claim(h, &s->request_entry)) {
            gw_close_passed(passed);
            continue;
        }
        /* Every response leaves as its request ends, so a fast request
         * never waits for a slow one. gw_slot_serve takes the descriptors:
         * the client's comes first when the frame is direct. */
        int direct = (h[1] & GW_FLAG_DIRECT) != 0;
        int rc = gw_slot_serve(s, gw_get_u32(h + 4), h[1], payload, (size_t)len, direct ? passed[0] : -1,
                               passed[direct ? 1 : 0], 1);
        s->request_entry = NULL;
        if (!direct && passed[1] >= 0)
            close(passed[1]); /* a descriptor the frame does not call for */
        passed[0] = passed[1] = -1;
        if (rc != 0) {
            failure = strerror(errno);
            break;
        }
        if (cap > GW_KEPT_FRAME_CAP) {
            free(buf);
            buf = NULL;
            cap = 0;
        }
    }
    gw_close_passed(passed);
    free(buf);
    free(queued);
    close(ep);
    return failure;
}

static void *gw_slot_main(void *arg)
{
    gw_slot_thread *t = arg;
    /* The thread has nothing to do but wait on its socket: blocking reads,
     * whatever mode the socket came in. */
    int flags = fcntl(t->fd, F_GETFL);
    if (flags >= 0 && (flags & O_NONBLOCK))
        fcntl(t->fd, F_SETFL, flags & ~O_NONBLOCK);
    gw_slot *s = gw_slot_new(t->fd, t->record);
    gw_slot_started(s != NULL);
    if (s == NULL) {
        gw_worker_log(t->worker, "worker cannot start", t->index, "out of memory creating a slot");
        return NULL;
    }
    const char *failure = gw_slot_loop(s, t->fd);
    if (failure != NULL)
        gw_worker_log(t->worker, "worker slot failed", t->index, failure);
    gw_slot_close(s); /* writes what is still buffered, so before the close */
    close(t->fd);
    return NULL;
}

/* Writes the one control line: 'R' and the Python version. */
static void gw_report_ready(int worker, int control)
{
    char line[64];
    const char *v = gw_version();
    int n = snprintf(line, sizeof line, "R%.*s\n", (int)strcspn(v, " "), v);
    ssize_t w;
    while ((w = write(control, line, (size_t)n)) < 0 && errno == EINTR)
        ;
    if (w != n)
        gw_worker_log(worker, "worker cannot report to the master", -1, w < 0 ? strerror(errno) : "short write");
}

/* GIL not held. Serves every slot of worker (board: its slots' scoreboard
 * records, in order), tells the master it is ready on control once they all
 * run, and returns the exit status: 0 once every slot socket has ended
 * (after uwsgi.atexit and Python's atexit handlers), 1 when a slot could
 * not start. */
int gw_worker_serve(int worker, int control, uint8_t *board, const int *slot_fds, int slots)
{
    gw_slot_thread *threads = calloc((size_t)slots, sizeof *threads);
    if (threads == NULL) {
        gw_worker_log(worker, "worker cannot start", -1, "out of memory");
        return 1;
    }
    gw_uwsgi_set_board(board, slots);
    int created = 0;
    for (int i = 0; i < slots; i++) {
        gw_slot_thread *t = &threads[i];
        *t = (gw_slot_thread){.worker = worker, .index = i, .fd = slot_fds[i], .record = board + i * GW_SLOT_RECORD_LEN};
        int err = pthread_create(&t->thread, NULL, gw_slot_main, t);
        if (err != 0) {
            gw_worker_log(worker, "worker cannot start", i, strerror(err));
            return 1;
        }
        created++;
    }
    pthread_mutex_lock(&gw_start_mu);
    while (gw_started < created)
        pthread_cond_wait(&gw_start_cond, &gw_start_mu);
    int failed = gw_start_failed;
    pthread_mutex_unlock(&gw_start_mu);
    if (failed)
        return 1;
    gw_report_ready(worker, control);
    close(control);
    for (int i = 0; i < slots; i++)
        pthread_join(threads[i].thread, NULL);
    free(threads);
    gw_uwsgi_atexit();
    return 0;
}
