/*
 * The shared area (gw_shared.h): its layout and formatting, which the
 * master runs (C, never Python), its mapping in the zygote, and the robust
 * process-shared locks everything in it is guarded by.
 */
#include "gw.h"
#include "gw_shared.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

gw_shared_header *gw_shared;

/* Offsets are rounded up to a cache line so no two locks share one. */
static uint64_t gw_align(uint64_t n)
{
    return (n + 63) & ~(uint64_t)63;
}

/* An item's header and key, rounded to 8 bytes so the next header is
 * aligned for its 64-bit fields. */
static uint64_t gw_item_size(uint64_t keysize)
{
    return (sizeof(gw_cache_item) + keysize + 7) & ~(uint64_t)7;
}

/* Adds n * size to *off, or returns -1 when the area would overflow. */
static int gw_reserve(uint64_t *off, uint64_t n, uint64_t size)
{
    if (size != 0 && n > (UINT64_MAX / 2 - *off) / size)
        return -1;
    *off = gw_align(*off + n * size);
    return 0;
}

/* Walks the layout for spec, filling in h (and the caches' and metrics'
 * headers) when it is not NULL. Returns the area's size, 0 on overflow. */
static uint64_t gw_shared_layout(const gw_shared_spec *spec, gw_shared_header *h)
{
    uint64_t off = gw_align(sizeof(gw_shared_header));
    uint64_t locks_off = off, caches_off, metrics_off, workers_off;
    if (gw_reserve(&off, (uint64_t)spec->locks + 1, sizeof(gw_shared_lock)) < 0)
        return 0;
    caches_off = off;
    if (gw_reserve(&off, (uint64_t)spec->ncaches, sizeof(gw_cache)) < 0)
        return 0;
    metrics_off = off;
    if (gw_reserve(&off, (uint64_t)spec->nmetrics, sizeof(gw_metric)) < 0)
        return 0;
    workers_off = off;
    if (gw_reserve(&off, (uint64_t)spec->workers, sizeof(gw_shared_worker)) < 0)
        return 0;
    for (int i = 0; i < spec->ncaches; i++) {
        const gw_cache_spec *cs = &spec->caches[i];
        gw_cache *c = h != NULL ? (gw_cache *)((char *)h + caches_off) + i : NULL;
        uint64_t hashtable = off, free_stack, items, data;
        uint64_t item_size = gw_item_size(cs->keysize);
        if (gw_reserve(&off, cs->hashsize, sizeof(uint64_t)) < 0)
            return 0;
        free_stack = off;
        if (gw_reserve(&off, cs->max_items, sizeof(uint64_t)) < 0)
            return 0;
        items = off;
        if (gw_reserve(&off, cs->max_items, item_size) < 0)
            return 0;
        data = off;
        if (gw_reserve(&off, cs->max_items, cs->blocksize) < 0)
            return 0;
        if (c != NULL) {
            snprintf(c->name, sizeof c->name, "%s", cs->name);
            c->max_items = cs->max_items;
            c->blocksize = cs->blocksize;
            c->keysize = cs->keysize;
            c->hashsize = cs->hashsize;
            c->item_size = item_size;
            c->math_initial = cs->math_initial;
            c->no_expire = (uint32_t)cs->no_expire;
            c->clear_on_full = (uint32_t)cs->clear_on_full;
            c->ignore_full = (uint32_t)cs->ignore_full;
            c->hashtable_off = hashtable;
            c->free_off = free_stack;
            c->items_off = items;
            c->data_off = data;
        }
    }
    if (h != NULL) {
        h->size = off;
        h->nlocks = (uint32_t)spec->locks + 1;
        h->ncaches = (uint32_t)spec->ncaches;
        h->nmetrics = (uint32_t)spec->nmetrics;
        h->nworkers = (uint32_t)spec->workers;
        h->workers_off = workers_off;
        h->locks_off = locks_off;
        h->caches_off = caches_off;
        h->metrics_off = metrics_off;
    }
    return off;
}

uint64_t gw_shared_size(const gw_shared_spec *spec)
{
    return gw_shared_layout(spec, NULL);
}

/* A process-shared robust mutex in place. Returns 0 or an errno. */
static int gw_lock_init(gw_shared_lock *l)
{
    pthread_mutexattr_t attr;
    int rc = pthread_mutexattr_init(&attr);
    if (rc != 0)
        return rc;
    if ((rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED)) == 0 &&
        (rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST)) == 0)
        rc = pthread_mutex_init(&l->mutex, &attr);
    pthread_mutexattr_destroy(&attr);
    return rc;
}

int gw_shared_format(void *mem, uint64_t len, const gw_shared_spec *spec)
{
    gw_shared_header *h = mem;
    if (gw_shared_layout(spec, NULL) != len)
        return EINVAL;
    gw_shared_layout(spec, h);
    gw_shared_lock *locks = (gw_shared_lock *)((char *)mem + h->locks_off);
    for (uint32_t i = 0; i < h->nlocks; i++) {
        int rc = gw_lock_init(&locks[i]);
        if (rc != 0)
            return rc;
    }
    gw_cache *caches = (gw_cache *)((char *)mem + h->caches_off);
    for (uint32_t i = 0; i < h->ncaches; i++) {
        gw_cache *c = &caches[i];
        int rc = gw_lock_init(&c->lock);
        if (rc != 0)
            return rc;
        /* Every item but the reserved 0 starts on the free stack, the
         * lowest on top. */
        uint64_t *free_stack = (uint64_t *)((char *)mem + c->free_off);
        for (uint64_t item = c->max_items - 1; item >= 1; item--)
            free_stack[c->free_top++] = item;
    }
    gw_metric *metrics = (gw_metric *)((char *)mem + h->metrics_off);
    for (int i = 0; i < spec->nmetrics; i++) {
        snprintf(metrics[i].name, sizeof metrics[i].name, "%s", spec->metrics[i].name);
        metrics[i].type = (uint32_t)spec->metrics[i].type;
        metrics[i].value = metrics[i].initial = spec->metrics[i].initial;
    }
    /* Last: an area whose magic is set is whole. */
    __atomic_store_n(&h->magic, GW_SHARED_MAGIC, __ATOMIC_RELEASE);
    return 0;
}

int64_t gw_shared_metric_value(void *mem, int index)
{
    gw_shared_header *h = mem;
    gw_metric *m = (gw_metric *)((char *)mem + h->metrics_off) + index;
    return __atomic_load_n(&m->value, __ATOMIC_RELAXED);
}

/* The line of worker num (from 1) in the area at h, NULL past the table. */
static gw_shared_worker *gw_worker_line_in(gw_shared_header *h, int num)
{
    if (h == NULL || num < 1 || (uint32_t)num > h->nworkers)
        return NULL;
    return (gw_shared_worker *)((char *)h + h->workers_off) + (num - 1);
}

void gw_shared_worker_spawned(void *mem, int num, int64_t pid, int64_t when)
{
    gw_shared_worker *w = gw_worker_line_in(mem, num);
    if (w == NULL)
        return;
    __atomic_store_n(&w->pid, pid, __ATOMIC_RELAXED);
    __atomic_store_n(&w->last_spawn, when, __ATOMIC_RELAXED);
    __atomic_add_fetch(&w->spawns, 1, __ATOMIC_RELAXED);
    /* A worker killed mid-request never ended it. */
    __atomic_store_n(&w->running, 0, __ATOMIC_RELAXED);
}

void gw_shared_set_listen_queue(void *mem, int64_t n)
{
    __atomic_store_n(&((gw_shared_header *)mem)->listen_queue, n, __ATOMIC_RELAXED);
}

gw_shared_worker *gw_shared_worker_line(int num)
{
    return gw_worker_line_in(gw_shared, num);
}

int gw_shared_attach(int fd)
{
    struct stat st;
    int rc = fstat(fd, &st);
    void *mem = rc == 0 ? mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
    int saved = errno;
    close(fd);
    if (mem == MAP_FAILED) {
        errno = saved;
        return -1;
    }
    gw_shared_header *h = mem;
    if ((uint64_t)st.st_size < sizeof *h || __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != GW_SHARED_MAGIC ||
        h->size != (uint64_t)st.st_size) {
        munmap(mem, (size_t)st.st_size);
        errno = EINVAL;
        return -1;
    }
    gw_shared = h;
    return 0;
}

int gw_shared_private(const gw_shared_spec *spec)
{
    uint64_t size = gw_shared_layout(spec, NULL);
    if (size == 0) {
        errno = ENOMEM;
        return -1;
    }
    void *mem = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return -1;
    int rc = gw_shared_format(mem, size, spec);
    if (rc != 0) {
        munmap(mem, (size_t)size);
        errno = rc;
        return -1;
    }
    gw_shared = mem;
    return 0;
}

void gw_shared_lock_take(gw_shared_lock *l)
{
    /* The holder died (killed, harakiri): what it guarded may be half
     * changed, which uWSGI accepts too; the lock is made usable again
     * rather than leaving every worker waiting on it for ever. */
    if (pthread_mutex_lock(&l->mutex) == EOWNERDEAD)
        pthread_mutex_consistent(&l->mutex);
}

void gw_shared_lock_give(gw_shared_lock *l)
{
    pthread_mutex_unlock(&l->mutex);
}

int gw_shared_lock_busy(gw_shared_lock *l)
{
    int rc = pthread_mutex_trylock(&l->mutex);
    if (rc == EOWNERDEAD) {
        pthread_mutex_consistent(&l->mutex);
        rc = 0;
    }
    if (rc == 0) {
        pthread_mutex_unlock(&l->mutex);
        return 0;
    }
    return 1;
}
