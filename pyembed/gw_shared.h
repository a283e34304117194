/*
 * The shared area: one memory block the master creates for a generation of
 * workers (a memfd, mapped MAP_SHARED), formats here in C without Python,
 * and hands to that generation's zygote, which maps it before the app's
 * import so every worker it forks inherits the mapping. It holds what
 * uWSGI keeps in its master's shared memory: the user locks (--locks), the
 * caches (--cache2, --cache) and the metrics (--metric). A worker killed or
 * respawned leaves it as it was; a reload (a new generation) gets a new,
 * empty one, as uWSGI's reload, which re-executes its master, starts empty.
 *
 * Layout, every offset from the start of the area and 64-byte aligned:
 *   gw_shared_header
 *   nlocks x gw_shared_lock          uwsgi.lock(0 .. --locks)
 *   ncaches x gw_cache               each cache's header and lock; its
 *                                    hash table, free stack, items and
 *                                    blocks follow in its own region
 *   nmetrics x gw_metric
 *   nworkers x gw_shared_worker      uwsgi.workers() and total_requests()
 * Every lock is a pthread mutex made PTHREAD_PROCESS_SHARED and
 * PTHREAD_MUTEX_ROBUST, so a worker killed while holding one does not
 * leave the others waiting: the next taker gets EOWNERDEAD and goes on.
 */
#ifndef GW_SHARED_H
#define GW_SHARED_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define GW_SHARED_MAGIC 0x3161657261777367ULL /* "gswarea1" */
#define GW_SHARED_NAME_CAP 128                /* a cache's or metric's name, with its NUL */

/* A process-shared robust mutex on its own cache line. */
typedef union {
    pthread_mutex_t mutex;
    char pad[64];
} gw_shared_lock;

typedef struct {
    uint64_t magic;
    uint64_t size;
    uint32_t nlocks, ncaches, nmetrics, nworkers;
    uint64_t locks_off, caches_off, metrics_off, workers_off;
    int64_t listen_queue; /* the master: requests waiting for a slot, sampled */
} gw_shared_header;

/* What uwsgi.workers() tells of worker number i + 1, on its own cache
 * line: the master writes at each spawn, the worker counts its requests,
 * so nothing is written per request but by the worker, to its own line. */
typedef struct {
    uint64_t requests; /* the worker: served by every worker of this number */
    uint64_t running;  /* the worker: requests it is running now */
    int64_t pid, last_spawn; /* the master: the latest spawn, Unix seconds */
    uint64_t spawns;         /* the master */
    char pad[24];
} gw_shared_worker;

/* One cache, as uWSGI's --cache2 describes it. Items are numbered from 1
 * (0 means none, as in uWSGI, so items=N holds N - 1 keys); item i's value
 * lives in block i (uWSGI's layout without bitmap). */
typedef struct {
    gw_shared_lock lock;
    char name[GW_SHARED_NAME_CAP];
    uint64_t max_items, blocksize, keysize, hashsize, item_size;
    int64_t math_initial;
    uint32_t no_expire, clear_on_full, ignore_full, pad;
    uint64_t hashtable_off, free_off, items_off, data_off;
    /* Under lock: */
    uint64_t n_items, free_top, hits, miss, full;
} gw_cache;

/* One cache item's header; its key (keysize bytes) follows. */
typedef struct {
    uint64_t valsize, expires, hits, prev, next;
    uint32_t hash;
    uint16_t keysize, pad;
    char key[];
} gw_cache_item;

enum { GW_METRIC_COUNTER, GW_METRIC_GAUGE, GW_METRIC_ABSOLUTE };

/* One --metric; value is changed and read with atomic operations. */
typedef struct {
    char name[GW_SHARED_NAME_CAP];
    uint32_t type, pad;
    int64_t value;
    int64_t initial; /* initial_value, which metric_set_min compares with */
    char pad2[40];
} gw_metric;

/* What the master asks for; see pyembed.SharedSpec. */
typedef struct {
    const char *name;
    uint64_t max_items, blocksize, keysize, hashsize;
    int64_t math_initial;
    int no_expire, clear_on_full, ignore_full;
} gw_cache_spec;

typedef struct {
    const char *name;
    int type;
    int64_t initial;
} gw_metric_spec;

typedef struct {
    int locks;   /* --locks: user locks 0 .. locks */
    int workers; /* the most worker numbers there may be */
    const gw_cache_spec *caches;
    int ncaches;
    const gw_metric_spec *metrics;
    int nmetrics;
} gw_shared_spec;

/* In the master (no Python): the area's size, or 0 when it would not fit
 * in memory; and its formatting into mem, zeroed, of that size. */
uint64_t gw_shared_size(const gw_shared_spec *spec); /* GIL: any */
int gw_shared_format(void *mem, uint64_t len, const gw_shared_spec *spec); /* GIL: any; 0 or an errno */
int64_t gw_shared_metric_value(void *mem, int index); /* GIL: any */
void gw_shared_worker_spawned(void *mem, int num, int64_t pid, int64_t when); /* GIL: any */
void gw_shared_set_listen_queue(void *mem, int64_t n); /* GIL: any */

/* In a worker: its line, NULL when none (no master). */
gw_shared_worker *gw_shared_worker_line(int num); /* GIL: any */

/* In the zygote, before Python starts: maps the area the master passed on
 * fd and closes fd. Returns 0, or -1 with errno set. */
int gw_shared_attach(int fd); /* GIL: any */

/* Without a master (CGI mode, tests): an area of this process's own,
 * formatted here. Returns 0, or -1 with errno set. */
int gw_shared_private(const gw_shared_spec *spec); /* GIL: any */

/* The area this process mapped, NULL when none. */
extern gw_shared_header *gw_shared;

/* GIL: any (never held while waiting: callers release it). */
void gw_shared_lock_take(gw_shared_lock *l);
void gw_shared_lock_give(gw_shared_lock *l);
int gw_shared_lock_busy(gw_shared_lock *l); /* 1 when held by anyone, this thread included */

static inline void *gw_shared_at(uint64_t off)
{
    return (char *)gw_shared + off;
}

#endif
