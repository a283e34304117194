/*
 * uWSGI's shared cache in the uwsgi module: cache_get, cache_set,
 * cache_update, cache_del, cache_exists, cache_clear, cache_keys and the
 * 64-bit arithmetic cache_inc, cache_dec, cache_mul, cache_div, cache_num,
 * with uWSGI 2.0's signatures, answers (True or None, bytes, a list of
 * bytes keys) and rules, over the caches of the shared area (gw_shared.h);
 * and the user locks, lock, unlock and is_locked.
 *
 * The rules, as uWSGI's core/cache.c applies them: a key is 1 to keysize
 * bytes and a value 1 to blocksize; cache_set fails on a key that exists
 * and cache_update overwrites; the arithmetic keeps an int64 in the value's
 * first 8 bytes in the machine's order (so cache_get shows those bytes),
 * creates a missing key from the cache's math_initial and leaves its
 * expiry as it was; dividing by 0 gives 0. A cache of N items holds N - 1
 * keys, uWSGI's item 0 being reserved. Expiry is lazy where uWSGI's master
 * sweeps every few seconds: an expired item is gone from the moment it
 * expires, to every call, and a full cache reuses the expired items first.
 *
 * Every call takes the cache's lock with the GIL released, so a worker's
 * other threads run while it waits for another process.
 */
#include "gw.h"
#include "gw_shared.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The flags of a store, as uWSGI names them. */
enum {
    GW_CACHE_UPDATE = 1 << 0,     /* overwrite a key that exists */
    GW_CACHE_MATH = 1 << 1,       /* the value is an int64 operand */
    GW_CACHE_FIX_EXPIRE = 1 << 2, /* an existing key keeps its expiry */
};

enum gw_math { GW_MATH_NONE, GW_MATH_INC, GW_MATH_DEC, GW_MATH_MUL, GW_MATH_DIV };

static gw_cache_item *gw_item(gw_cache *c, uint64_t index)
{
    return (gw_cache_item *)((char *)gw_shared_at(c->items_off) + index * c->item_size);
}

static char *gw_block(gw_cache *c, uint64_t index)
{
    return (char *)gw_shared_at(c->data_off) + index * c->blocksize;
}

static uint64_t *gw_hashtable(gw_cache *c)
{
    return gw_shared_at(c->hashtable_off);
}

/* uWSGI's djb33x over the key's bytes as signed chars, as it computes it. */
static uint32_t gw_djb33x(const char *key, size_t len)
{
    uint32_t hash = 5381;
    for (size_t i = 0; i < len; i++)
        hash = ((hash << 5) + hash) ^ (uint32_t)(int32_t)(signed char)key[i];
    return hash;
}

/* The cache named name (NULL or "": the first one), or NULL. */
static gw_cache *gw_cache_named(const char *name)
{
    if (gw_shared == NULL || gw_shared->ncaches == 0)
        return NULL;
    gw_cache *caches = gw_shared_at(gw_shared->caches_off);
    if (name == NULL || name[0] == '\0')
        return &caches[0];
    for (uint32_t i = 0; i < gw_shared->ncaches; i++)
        if (strcmp(caches[i].name, name) == 0)
            return &caches[i];
    return NULL;
}

static int gw_expired(gw_cache *c, gw_cache_item *it, uint64_t now)
{
    return !c->no_expire && it->expires != 0 && it->expires <= now;
}

/* Lock held. Unlinks item index and puts it back on the free stack. */
static void gw_cache_unlink(gw_cache *c, uint64_t index)
{
    gw_cache_item *it = gw_item(c, index);
    if (it->keysize == 0)
        return;
    if (it->prev != 0)
        gw_item(c, it->prev)->next = it->next;
    else
        gw_hashtable(c)[it->hash % c->hashsize] = it->next;
    if (it->next != 0)
        gw_item(c, it->next)->prev = it->prev;
    ((uint64_t *)gw_shared_at(c->free_off))[c->free_top++] = index;
    c->n_items--;
    memset(it, 0, sizeof *it);
}

/* Lock held. The item holding key, 0 when none; an expired one is removed
 * on the way. */
static uint64_t gw_cache_find(gw_cache *c, const char *key, size_t keylen, uint32_t hash, uint64_t now)
{
    for (uint64_t index = gw_hashtable(c)[hash % c->hashsize], rounds = 0; index != 0 && rounds < c->max_items;
         rounds++) {
        gw_cache_item *it = gw_item(c, index);
        if (it->hash == hash && it->keysize == keylen && memcmp(it->key, key, keylen) == 0) {
            if (!gw_expired(c, it, now))
                return index;
            gw_cache_unlink(c, index);
            return 0;
        }
        index = it->next;
    }
    return 0;
}

/* Lock held. Makes room in a full cache: its expired items first, then,
 * with clear_on_full, everything. */
static void gw_cache_make_room(gw_cache *c, uint64_t now)
{
    for (uint64_t i = 1; i < c->max_items; i++)
        if (gw_item(c, i)->keysize != 0 && gw_expired(c, gw_item(c, i), now))
            gw_cache_unlink(c, i);
    if (c->free_top == 0 && c->clear_on_full)
        for (uint64_t i = 1; i < c->max_items; i++)
            gw_cache_unlink(c, i);
    if (c->free_top == 0) {
        c->full++;
        if (!c->ignore_full)
            fprintf(stderr, "*** DANGER cache \"%s\" is FULL !!! ***\n", c->name);
    }
}

/* Lock held. Applies op with operand delta to *num, wrapping as uWSGI's
 * int64 arithmetic does on this machine. */
static void gw_cache_math(int64_t *num, enum gw_math op, int64_t delta)
{
    uint64_t n = (uint64_t)*num;
    switch (op) {
    case GW_MATH_INC:
        n += (uint64_t)delta;
        break;
    case GW_MATH_DEC:
        n -= (uint64_t)delta;
        break;
    case GW_MATH_MUL:
        n *= (uint64_t)delta;
        break;
    case GW_MATH_DIV:
        /* INT64_MIN / -1 would trap; wrapped, it is INT64_MIN again. */
        if (delta == 0)
            n = 0;
        else if (!(delta == -1 && *num == INT64_MIN))
            n = (uint64_t)(*num / delta);
        break;
    case GW_MATH_NONE:
        break;
    }
    *num = (int64_t)n;
}

static uint64_t gw_expiry(uint64_t expires, uint64_t now)
{
    return expires != 0 ? now + expires : 0;
}

/* Lock held. uWSGI's cache_set2. Returns 0, or -1 when the store is
 * refused (limits, full, set on an existing key). */
static int gw_cache_store(gw_cache *c, const char *key, size_t keylen, const char *val, size_t vallen,
                          uint64_t expires, int flags, enum gw_math op, uint64_t now)
{
    if (keylen == 0 || vallen == 0 || keylen > c->keysize || vallen > c->blocksize)
        return -1;
    uint32_t hash = gw_djb33x(key, keylen);
    uint64_t index = gw_cache_find(c, key, keylen, hash, now);
    if (index != 0) {
        if (!(flags & GW_CACHE_UPDATE))
            return -1;
        gw_cache_item *it = gw_item(c, index);
        if (!(flags & GW_CACHE_FIX_EXPIRE))
            it->expires = gw_expiry(expires, now);
        if (flags & GW_CACHE_MATH) {
            int64_t delta;
            memcpy(&delta, val, sizeof delta);
            gw_cache_math((int64_t *)gw_block(c, index), op, delta);
        } else {
            memcpy(gw_block(c, index), val, vallen);
        }
        it->valsize = vallen;
        return 0;
    }
    if (c->free_top == 0)
        gw_cache_make_room(c, now);
    if (c->free_top == 0)
        return -1;
    index = ((uint64_t *)gw_shared_at(c->free_off))[--c->free_top];
    gw_cache_item *it = gw_item(c, index);
    it->expires = gw_expiry(expires, now);
    it->hash = hash;
    it->hits = 0;
    memcpy(it->key, key, keylen);
    if (flags & GW_CACHE_MATH) {
        int64_t delta, num = c->math_initial;
        memcpy(&delta, val, sizeof delta);
        gw_cache_math(&num, op, delta);
        memcpy(gw_block(c, index), &num, sizeof num);
    } else {
        memcpy(gw_block(c, index), val, vallen);
    }
    it->valsize = vallen;
    it->keysize = (uint16_t)keylen;
    /* Appended to its bucket's chain, as uWSGI does. */
    uint64_t *head = &gw_hashtable(c)[hash % c->hashsize];
    it->prev = it->next = 0;
    if (*head == 0) {
        *head = index;
    } else {
        uint64_t last = *head;
        while (gw_item(c, last)->next != 0)
            last = gw_item(c, last)->next;
        gw_item(c, last)->next = index;
        it->prev = last;
    }
    c->n_items++;
    return 0;
}

static uint64_t gw_now(void)
{
    return (uint64_t)time(NULL);
}

/* GIL held. The cache a call names, NULL (no exception) when there is
 * none, as uWSGI answers None then; a remote NAME@SERVER raises. */
static int gw_cache_arg(const char *function, const char *name, gw_cache **c)
{
    if (name != NULL && strchr(name, '@') != NULL) {
        PyErr_Format(PyExc_NotImplementedError,
                     "uwsgi.%s: gowsgi does not implement remote caches (NAME@SERVER) yet", function);
        return -1;
    }
    *c = gw_cache_named(name);
    return 0;
}

/* GIL held. Parses the (key, cache=None) arguments every key-taking
 * function has and finds the cache; *c is NULL when there is no such
 * cache (the function answers None, as uWSGI does). 0, or -1 with an
 * exception set. */
static int gw_cache_key_args(PyObject *args, const char *function, const char **key, Py_ssize_t *keylen,
                             gw_cache **c)
{
    char format[48];
    const char *name = NULL;
    snprintf(format, sizeof format, "s#|s:%s", function);
    if (!PyArg_ParseTuple(args, format, key, keylen, &name))
        return -1;
    return gw_cache_arg(function, name, c);
}

/* GIL held, released while the cache's lock is held. Whether key is in c
 * and alive; with remove, it is taken out too. */
static int gw_cache_lookup(gw_cache *c, const char *key, Py_ssize_t keylen, int remove)
{
    uint64_t index;
    Py_BEGIN_ALLOW_THREADS
    gw_shared_lock_take(&c->lock);
    index = gw_cache_find(c, key, (size_t)keylen, gw_djb33x(key, (size_t)keylen), gw_now());
    if (index != 0 && remove)
        gw_cache_unlink(c, index);
    gw_shared_lock_give(&c->lock);
    Py_END_ALLOW_THREADS
    return index != 0;
}

static PyObject *gw_true_or_none(int ok)
{
    if (ok)
        Py_RETURN_TRUE;
    Py_RETURN_NONE;
}

/* GIL held. Stores under the cache's lock, with the GIL released. */
static PyObject *gw_cache_store_call(const char *function, const char *name, const char *key, Py_ssize_t keylen,
                                     const char *val, Py_ssize_t vallen, long expires, int flags, enum gw_math op)
{
    gw_cache *c;
    if (gw_cache_arg(function, name, &c) < 0)
        return NULL;
    if (c == NULL)
        Py_RETURN_NONE;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    gw_shared_lock_take(&c->lock);
    rc = gw_cache_store(c, key, (size_t)keylen, val, (size_t)vallen, (uint64_t)expires, flags, op, gw_now());
    gw_shared_lock_give(&c->lock);
    Py_END_ALLOW_THREADS
    return gw_true_or_none(rc == 0);
}

/* GIL held. uwsgi.cache_set(key, value, expires=0, cache=None). */
static PyObject *gw_uw_cache_set(PyObject *self, PyObject *args)
{
    const char *key, *val, *name = NULL;
    Py_ssize_t keylen, vallen;
    long expires = 0;
    if (!PyArg_ParseTuple(args, "s#s#|ls:cache_set", &key, &keylen, &val, &vallen, &expires, &name))
        return NULL;
    return gw_cache_store_call("cache_set", name, key, keylen, val, vallen, expires, 0, GW_MATH_NONE);
}

/* GIL held. uwsgi.cache_update(key, value, expires=0, cache=None). */
static PyObject *gw_uw_cache_update(PyObject *self, PyObject *args)
{
    const char *key, *val, *name = NULL;
    Py_ssize_t keylen, vallen;
    long expires = 0;
    if (!PyArg_ParseTuple(args, "s#s#|ls:cache_update", &key, &keylen, &val, &vallen, &expires, &name))
        return NULL;
    return gw_cache_store_call("cache_update", name, key, keylen, val, vallen, expires, GW_CACHE_UPDATE,
                               GW_MATH_NONE);
}

/* GIL held. cache_inc, cache_dec, cache_mul, cache_div(key, value, expires=0,
 * cache=None); value defaults to 1 for inc and dec, 2 for mul and div. */
static PyObject *gw_cache_math_call(PyObject *args, const char *format, const char *function, enum gw_math op,
                                    long operand)
{
    const char *key, *name = NULL;
    Py_ssize_t keylen;
    long expires = 0;
    if (!PyArg_ParseTuple(args, format, &key, &keylen, &operand, &expires, &name))
        return NULL;
    int64_t delta = operand;
    return gw_cache_store_call(function, name, key, keylen, (const char *)&delta, sizeof delta, expires,
                               GW_CACHE_UPDATE | GW_CACHE_MATH | GW_CACHE_FIX_EXPIRE, op);
}

static PyObject *gw_uw_cache_inc(PyObject *self, PyObject *args)
{
    return gw_cache_math_call(args, "s#|lls:cache_inc", "cache_inc", GW_MATH_INC, 1);
}

static PyObject *gw_uw_cache_dec(PyObject *self, PyObject *args)
{
    return gw_cache_math_call(args, "s#|lls:cache_dec", "cache_dec", GW_MATH_DEC, 1);
}

static PyObject *gw_uw_cache_mul(PyObject *self, PyObject *args)
{
    return gw_cache_math_call(args, "s#|lls:cache_mul", "cache_mul", GW_MATH_MUL, 2);
}

static PyObject *gw_uw_cache_div(PyObject *self, PyObject *args)
{
    return gw_cache_math_call(args, "s#|lls:cache_div", "cache_div", GW_MATH_DIV, 2);
}

/* GIL held. Copies key's value out under the lock: a malloc'd copy in
 * *out (NULL when the key is missing), or -1 with MemoryError set. */
static int gw_cache_copy(gw_cache *c, const char *key, Py_ssize_t keylen, char **out, uint64_t *len)
{
    int rc = 0;
    *out = NULL;
    Py_BEGIN_ALLOW_THREADS
    gw_shared_lock_take(&c->lock);
    uint64_t index = gw_cache_find(c, key, (size_t)keylen, gw_djb33x(key, (size_t)keylen), gw_now());
    if (index != 0) {
        gw_cache_item *it = gw_item(c, index);
        it->hits++;
        c->hits++;
        *len = it->valsize;
        if ((*out = malloc(it->valsize)) != NULL)
            memcpy(*out, gw_block(c, index), it->valsize);
        else
            rc = -1;
    } else {
        c->miss++;
    }
    gw_shared_lock_give(&c->lock);
    Py_END_ALLOW_THREADS
    if (rc < 0)
        PyErr_NoMemory();
    return rc;
}

/* GIL held. uwsgi.cache_get(key, cache=None): bytes, or None. */
static PyObject *gw_uw_cache_get(PyObject *self, PyObject *args)
{
    const char *key;
    Py_ssize_t keylen;
    gw_cache *c;
    char *val;
    uint64_t len;
    if (gw_cache_key_args(args, "cache_get", &key, &keylen, &c) < 0)
        return NULL;
    if (c == NULL)
        Py_RETURN_NONE;
    if (gw_cache_copy(c, key, keylen, &val, &len) < 0)
        return NULL;
    if (val == NULL)
        Py_RETURN_NONE;
    PyObject *r = PyBytes_FromStringAndSize(val, (Py_ssize_t)len);
    free(val);
    return r;
}

/* GIL held. uwsgi.cache_num(key, cache=None): the int64 an 8-byte value
 * holds, else 0. */
static PyObject *gw_uw_cache_num(PyObject *self, PyObject *args)
{
    const char *key;
    Py_ssize_t keylen;
    gw_cache *c;
    char *val = NULL;
    uint64_t len = 0;
    int64_t num = 0;
    if (gw_cache_key_args(args, "cache_num", &key, &keylen, &c) < 0)
        return NULL;
    if (c != NULL && gw_cache_copy(c, key, keylen, &val, &len) < 0)
        return NULL;
    if (val != NULL && len == sizeof num)
        memcpy(&num, val, sizeof num);
    free(val);
    return PyLong_FromLongLong(num);
}

/* GIL held. uwsgi.cache_exists(key, cache=None): True, or None. */
static PyObject *gw_uw_cache_exists(PyObject *self, PyObject *args)
{
    const char *key;
    Py_ssize_t keylen;
    gw_cache *c;
    if (gw_cache_key_args(args, "cache_exists", &key, &keylen, &c) < 0)
        return NULL;
    if (c == NULL)
        Py_RETURN_NONE;
    return gw_true_or_none(gw_cache_lookup(c, key, keylen, 0));
}

/* GIL held. uwsgi.cache_del(key, cache=None): True, or None when the key
 * is missing. */
static PyObject *gw_uw_cache_del(PyObject *self, PyObject *args)
{
    const char *key;
    Py_ssize_t keylen;
    gw_cache *c;
    if (gw_cache_key_args(args, "cache_del", &key, &keylen, &c) < 0)
        return NULL;
    if (c == NULL)
        Py_RETURN_NONE;
    return gw_true_or_none(gw_cache_lookup(c, key, keylen, 1));
}

/* GIL held. uwsgi.cache_clear(cache=None): True, or None without the
 * cache. */
static PyObject *gw_uw_cache_clear(PyObject *self, PyObject *args)
{
    const char *name = NULL;
    if (!PyArg_ParseTuple(args, "|s:cache_clear", &name))
        return NULL;
    gw_cache *c;
    if (gw_cache_arg("cache_clear", name, &c) < 0)
        return NULL;
    if (c == NULL)
        Py_RETURN_NONE;
    Py_BEGIN_ALLOW_THREADS
    gw_shared_lock_take(&c->lock);
    for (uint64_t i = 1; i < c->max_items; i++)
        gw_cache_unlink(c, i);
    gw_shared_lock_give(&c->lock);
    Py_END_ALLOW_THREADS
    Py_RETURN_TRUE;
}

/* Lock held. Copies the live keys, each as a uint16 length and its bytes,
 * into a malloc'd buffer; NULL when out of memory. */
static char *gw_cache_key_list(gw_cache *c, uint64_t now, size_t *len)
{
    size_t cap = 1;
    for (uint64_t i = 1; i < c->max_items; i++)
        if (gw_item(c, i)->keysize != 0)
            cap += sizeof(uint16_t) + gw_item(c, i)->keysize;
    char *buf = malloc(cap), *p = buf;
    if (buf == NULL)
        return NULL;
    /* In the hash table's order, as uWSGI walks it. */
    for (uint64_t bucket = 0; bucket < c->hashsize; bucket++) {
        for (uint64_t index = gw_hashtable(c)[bucket]; index != 0;) {
            gw_cache_item *it = gw_item(c, index);
            uint64_t next = it->next;
            if (!gw_expired(c, it, now)) {
                memcpy(p, &it->keysize, sizeof(uint16_t));
                memcpy(p + sizeof(uint16_t), it->key, it->keysize);
                p += sizeof(uint16_t) + it->keysize;
            }
            index = next;
        }
    }
    *len = (size_t)(p - buf);
    return buf;
}

/* GIL held. uwsgi.cache_keys(cache=None): a list of bytes; ValueError
 * without the cache. */
static PyObject *gw_uw_cache_keys(PyObject *self, PyObject *args)
{
    const char *name = NULL;
    if (!PyArg_ParseTuple(args, "|s:cache_keys", &name))
        return NULL;
    gw_cache *c;
    if (gw_cache_arg("cache_keys", name, &c) < 0)
        return NULL;
    if (c == NULL)
        return PyErr_Format(PyExc_ValueError, "no local uWSGI cache available");
    char *buf;
    size_t len = 0;
    Py_BEGIN_ALLOW_THREADS
    gw_shared_lock_take(&c->lock);
    buf = gw_cache_key_list(c, gw_now(), &len);
    gw_shared_lock_give(&c->lock);
    Py_END_ALLOW_THREADS
    if (buf == NULL)
        return PyErr_NoMemory();
    PyObject *list = PyList_New(0);
    for (size_t at = 0; list != NULL && at < len;) {
        uint16_t keylen;
        memcpy(&keylen, buf + at, sizeof keylen);
        PyObject *key = PyBytes_FromStringAndSize(buf + at + sizeof keylen, keylen);
        if (key == NULL || PyList_Append(list, key) < 0)
            Py_CLEAR(list);
        Py_XDECREF(key);
        at += sizeof keylen + keylen;
    }
    free(buf);
    return list;
}

/* GIL held. User lock n, or NULL with ValueError set as uWSGI words it. */
static gw_shared_lock *gw_user_lock(int n)
{
    if (gw_shared == NULL || n < 0 || (uint32_t)n >= gw_shared->nlocks) {
        PyErr_SetString(PyExc_ValueError, "Invalid lock number");
        return NULL;
    }
    return (gw_shared_lock *)gw_shared_at(gw_shared->locks_off) + n;
}

/* GIL held. uwsgi.lock(n=0): waits for user lock n with the GIL released. */
static PyObject *gw_uw_lock(PyObject *self, PyObject *args)
{
    int n = 0;
    if (!PyArg_ParseTuple(args, "|i:lock", &n))
        return NULL;
    gw_shared_lock *l = gw_user_lock(n);
    if (l == NULL)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    gw_shared_lock_take(l);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* GIL held. uwsgi.unlock(n=0); unlocking a lock this thread does not hold
 * does nothing, as under uWSGI. */
static PyObject *gw_uw_unlock(PyObject *self, PyObject *args)
{
    int n = 0;
    if (!PyArg_ParseTuple(args, "|i:unlock", &n))
        return NULL;
    gw_shared_lock *l = gw_user_lock(n);
    if (l == NULL)
        return NULL;
    gw_shared_lock_give(l);
    Py_RETURN_NONE;
}

/* GIL held. uwsgi.is_locked(n=0): whether anyone holds user lock n. */
static PyObject *gw_uw_is_locked(PyObject *self, PyObject *args)
{
    int n = 0;
    if (!PyArg_ParseTuple(args, "|i:is_locked", &n))
        return NULL;
    gw_shared_lock *l = gw_user_lock(n);
    if (l == NULL)
        return NULL;
    return PyBool_FromLong(gw_shared_lock_busy(l));
}

static PyMethodDef gw_cache_methods[] = {
    {"cache_get", gw_uw_cache_get, METH_VARARGS, "The value of a key, or None."},
    {"cache_set", gw_uw_cache_set, METH_VARARGS, "Store a key that does not exist yet: True, or None."},
    {"cache_update", gw_uw_cache_update, METH_VARARGS, "Store a key, overwriting it: True, or None."},
    {"cache_del", gw_uw_cache_del, METH_VARARGS, "Delete a key: True, or None."},
    {"cache_exists", gw_uw_cache_exists, METH_VARARGS, "True when the key exists, else None."},
    {"cache_clear", gw_uw_cache_clear, METH_VARARGS, "Delete every key."},
    {"cache_keys", gw_uw_cache_keys, METH_VARARGS, "The keys, as a list of bytes."},
    {"cache_inc", gw_uw_cache_inc, METH_VARARGS, "Add to a key's int64."},
    {"cache_dec", gw_uw_cache_dec, METH_VARARGS, "Subtract from a key's int64."},
    {"cache_mul", gw_uw_cache_mul, METH_VARARGS, "Multiply a key's int64."},
    {"cache_div", gw_uw_cache_div, METH_VARARGS, "Divide a key's int64."},
    {"cache_num", gw_uw_cache_num, METH_VARARGS, "A key's int64, 0 when it holds none."},
    {"lock", gw_uw_lock, METH_VARARGS, "Take a user lock (default 0)."},
    {"unlock", gw_uw_unlock, METH_VARARGS, "Release a user lock."},
    {"is_locked", gw_uw_is_locked, METH_VARARGS, "Whether a user lock is held."},
    {NULL, NULL, 0, NULL},
};

/* GIL held. Adds the cache and lock functions to the uwsgi module. */
int gw_uwsgi_cache_add(PyObject *module)
{
    return PyModule_AddFunctions(module, gw_cache_methods);
}
