/* Pins and traced memory (include/lwc/detect.h): the two ways a program shows
 * the blocked-forever detector a reference it could not otherwise see. */
#include "config.h"

#include <lwc/detect.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Note [Traced memory and pins]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * Both are tables keyed by address, under one mutex each: a pin or an
 * lwc_alloc is a call a program makes per shared object, not per operation,
 * so a lock costs less here than anything cleverer would cost the detector,
 * which must see a consistent set while it scans.  A pin's entry holds its
 * count; a block's, its size.
 *
 * lwc_free looks the pointer up instead of reading a header in front of it,
 * so a pointer lwc_alloc never returned, or a second free, is refused with a
 * warning and never read.  Blocks are zeroed: a conservative scan takes every
 * word for a possible reference, and stale bytes could only keep dead threads
 * alive, never wake live ones.
 *
 * The tables are open-addressed with linear probing, at most half full;
 * removal shifts later entries back, so no tombstones build up. */

struct entry { const void *key; size_t value; };

struct table {
    pthread_mutex_t lock;
    struct entry   *slots;
    size_t          cap, used;      /* cap a power of two, or 0 */
};

static struct table pins = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0 };
static struct table blocks = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0 };

static size_t home_of(const struct table *t, const void *key)
{
    uint64_t h = (uint64_t)(uintptr_t)key * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 32) & (t->cap - 1);
}

/* The entry for key, or the empty slot where it would go.  t->cap > 0. */
static struct entry *find(struct table *t, const void *key)
{
    size_t i = home_of(t, key);
    while (t->slots[i].key && t->slots[i].key != key)
        i = (i + 1) & (t->cap - 1);
    return &t->slots[i];
}

/* The entry for key, or NULL. */
static struct entry *lookup(struct table *t, const void *key)
{
    if (!t->cap)
        return NULL;
    struct entry *e = find(t, key);
    return e->key ? e : NULL;
}

/* The entry for key, added (value 0) if missing; NULL when out of memory. */
static struct entry *insert(struct table *t, const void *key)
{
    if (2 * (t->used + 1) > t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16, old_cap = t->cap;
        struct entry *old = t->slots, *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return NULL;
        t->slots = slots;
        t->cap = cap;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].key)
                *find(t, old[i].key) = old[i];
        free(old);
    }
    struct entry *e = find(t, key);
    if (!e->key) {
        *e = (struct entry){ key, 0 };
        t->used++;
    }
    return e;
}

/* Remove e, moving back the entries after it that probed past it. */
static void remove_entry(struct table *t, struct entry *e)
{
    size_t mask = t->cap - 1, i = (size_t)(e - t->slots);
    for (size_t j = (i + 1) & mask; t->slots[j].key; j = (j + 1) & mask) {
        /* j's entry may fill the hole at i unless its home lies in (i, j]. */
        if (((j - home_of(t, t->slots[j].key)) & mask) >= ((j - i) & mask)) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    t->slots[i] = (struct entry){ NULL, 0 };
    t->used--;
}

static void table_free(struct table *t)
{
    free(t->slots);
    t->slots = NULL;
    t->cap = t->used = 0;
}

/* ---- slabs ----------------------------------------------------------------------- */

/* Note [Slabs]
 * ~~~~~~~~~~~~
 * The detector must know some objects by their address: every PVar
 * lwc_pvar_new makes (a word holding its address is an edge to its value)
 * and every lwc_alloc block (a word pointing into it is an edge to its
 * contents).  Each used to be a malloc of its own with an entry of its own
 * in a table: 24 bytes of PVar cost about 80 with the allocator's header and
 * the table kept at most half full; a 56-byte scheduler node cost 120.  A
 * million blocked threads own three blocks and fourteen PVars each, so the
 * bookkeeping outweighed the objects.
 *
 * So small objects are carved from slabs of SLAB_BYTES, aligned to their
 * size, one set of slabs per object size (PVars; lwc_alloc blocks of up to
 * SLAB_OBJ_MAX bytes in steps of 16), with a bitmap of the slots in use; the
 * tables record slabs, not objects.  An object's slab is its address rounded
 * down, so freeing one finds its slot without a search, and the detector's
 * question (is this word a PVar?  which block holds it?) is one lookup of
 * the slab, a division and a bit.  Slabs with a free slot are on their set's
 * list; one that empties is given back unless it is the only one with room.
 * Everything is under the table's mutex, taken once per object made or
 * freed, as before.  The slots end a word short of the slab's end: Note
 * [Allocator slack] in internal.h.
 *
 * At exit the slabs nobody uses are freed.  Those still in use stay, with
 * their table, for the destructors that free their objects later (the MVar
 * pool's runs after this file's); each slab goes as it empties, and the
 * table with the last one.  The price: an object a program never frees keeps
 * its slab reachable from the table, and valgrind counts it as still
 * reachable where it reported a malloc'd one as lost. */
#define SLAB_BYTES   16384
#define SLAB_WORDS   16                  /* bitmap words: a slot is 16 bytes or more */
#define SLAB_OBJ_MAX 256

struct slab {
    struct slab     *prev, *next;        /* on its set's `roomy` while a slot is free */
    struct slab_set *set;
    uint32_t         nused;
    bool             roomy;
    uint64_t         used[SLAB_WORDS];
    _Alignas(16) char obj[];
};

/* The slabs of one object size, and the table that knows them. */
struct slab_set {
    struct table *table;
    struct slab  *roomy;
    uint32_t      size, slots;
};

#define SLAB_SET(table, size) \
    { &(table), NULL, (size), (uint32_t)((SLAB_BYTES - sizeof(struct slab) - sizeof(void *)) / (size)) }
_Static_assert((SLAB_BYTES - sizeof(struct slab)) / 16 <= 64 * SLAB_WORDS,
               "the bitmap covers every slot");

static struct table pvar_slabs = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0 };
static struct table block_slabs = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0 };
static struct slab_set pvar_set = SLAB_SET(pvar_slabs, sizeof(lwc_pvar_t));
static struct slab_set block_sets[SLAB_OBJ_MAX / 16] = {
    SLAB_SET(block_slabs, 16),  SLAB_SET(block_slabs, 32),  SLAB_SET(block_slabs, 48),
    SLAB_SET(block_slabs, 64),  SLAB_SET(block_slabs, 80),  SLAB_SET(block_slabs, 96),
    SLAB_SET(block_slabs, 112), SLAB_SET(block_slabs, 128), SLAB_SET(block_slabs, 144),
    SLAB_SET(block_slabs, 160), SLAB_SET(block_slabs, 176), SLAB_SET(block_slabs, 192),
    SLAB_SET(block_slabs, 208), SLAB_SET(block_slabs, 224), SLAB_SET(block_slabs, 240),
    SLAB_SET(block_slabs, 256),
};

static bool tables_gone;     /* after the exit destructor: see tables_free */

static void roomy_add(struct slab *sl)
{
    struct slab_set *set = sl->set;
    sl->prev = NULL;
    sl->next = set->roomy;
    if (set->roomy)
        set->roomy->prev = sl;
    set->roomy = sl;
    sl->roomy = true;
}

static void roomy_remove(struct slab *sl)
{
    if (sl->prev)
        sl->prev->next = sl->next;
    else
        sl->set->roomy = sl->next;
    if (sl->next)
        sl->next->prev = sl->prev;
    sl->roomy = false;
}

/* A slot of set, not zeroed; NULL when out of memory.  Under its table's lock. */
static void *slab_take(struct slab_set *set)
{
    struct slab *sl = set->roomy;
    if (!sl) {
        if (!(sl = aligned_alloc(SLAB_BYTES, SLAB_BYTES)) || !insert(set->table, sl)) {
            free(sl);
            return NULL;
        }
        memset(sl, 0, sizeof *sl);
        sl->set = set;
        roomy_add(sl);
    }
    size_t w = 0;
    while (sl->used[w] == ~0ull)
        w++;
    size_t i = 64 * w + (size_t)__builtin_ctzll(~sl->used[w]);
    sl->used[w] |= 1ull << (i % 64);
    if (++sl->nused == set->slots)
        roomy_remove(sl);
    return sl->obj + i * set->size;
}

/* The slab of table that holds p, and p's slot, if p is the start of an object in
 * use there (or, with inside, any address in one); else NULL.  Under the lock. */
static struct slab *slab_of(struct table *table, const void *p, bool inside, size_t *slot)
{
    struct slab *sl = (struct slab *)((uintptr_t)p & ~(uintptr_t)(SLAB_BYTES - 1));
    if (!lookup(table, sl) || (const char *)p < sl->obj)
        return NULL;
    size_t off = (size_t)((const char *)p - sl->obj);
    size_t i = off / sl->set->size;
    if ((!inside && off % sl->set->size) || i >= sl->set->slots ||
        !(sl->used[i / 64] >> (i % 64) & 1))
        return NULL;
    *slot = i;
    return sl;
}

/* Give slot i of sl back; under its table's lock. */
static void slab_release(struct slab *sl, size_t i)
{
    struct table *table = sl->set->table;
    sl->used[i / 64] &= ~(1ull << (i % 64));
    sl->nused--;
    if (!sl->roomy)
        roomy_add(sl);
    if (sl->nused == 0 && (sl->prev || sl->next || tables_gone)) {
        roomy_remove(sl);
        remove_entry(table, lookup(table, sl));
        free(sl);
        if (tables_gone && !table->used)
            table_free(table);
    }
}

/* Every object in use in the slabs of table. */
static void slab_each(struct table *table, void (*fn)(void *arg, const void *p, size_t n),
                      void *arg)
{
    for (size_t i = 0; i < table->cap; i++) {
        const struct slab *sl = table->slots[i].key;
        for (size_t j = 0; sl && j < sl->set->slots; j++)
            if (sl->used[j / 64] >> (j % 64) & 1)
                fn(arg, sl->obj + j * sl->set->size, sl->set->size);
    }
}

/* At exit: free the slabs of table nobody uses (Note [Slabs]). */
static void slab_free_unused(struct table *table)
{
    pthread_mutex_lock(&table->lock);
    for (size_t i = 0; i < table->cap;) {
        struct slab *sl = (struct slab *)table->slots[i].key;
        if (!sl || sl->nused) {
            i++;
            continue;
        }
        roomy_remove(sl);
        remove_entry(table, &table->slots[i]);  /* may move another into slot i */
        free(sl);
    }
    if (!table->used)
        table_free(table);
    pthread_mutex_unlock(&table->lock);
}

/* ---- traced memory ---------------------------------------------------------------- */

void *lwc_alloc(size_t n)
{
    if (n <= SLAB_OBJ_MAX) {                /* Note [Slabs] */
        struct slab_set *set = &block_sets[n ? (n - 1) / 16 : 0];
        pthread_mutex_lock(&block_slabs.lock);
        void *p = slab_take(set);
        pthread_mutex_unlock(&block_slabs.lock);
        if (p)
            memset(p, 0, set->size);        /* Note [Traced memory and pins] */
        return p;
    }
    if (n > PTRDIFF_MAX - LWC_MALLOC_SLACK)   /* no object can be that big */
        return NULL;
    void *p = calloc(1, n + LWC_MALLOC_SLACK);   /* Note [Allocator slack] */
    if (!p)
        return NULL;
    pthread_mutex_lock(&blocks.lock);
    struct entry *e = insert(&blocks, p);
    if (e)
        e->value = n;
    pthread_mutex_unlock(&blocks.lock);
    if (!e) {
        free(p);
        return NULL;
    }
    return p;
}

void lwc_free(void *p)
{
    if (!p)
        return;
    size_t slot;
    pthread_mutex_lock(&block_slabs.lock);
    struct slab *sl = slab_of(&block_slabs, p, false, &slot);
    if (sl)
        slab_release(sl, slot);
    pthread_mutex_unlock(&block_slabs.lock);
    if (sl)
        return;
    if (tables_gone) {
        free(p);                /* another destructor gives its blocks back */
        return;
    }
    pthread_mutex_lock(&blocks.lock);
    struct entry *e = lookup(&blocks, p);
    if (e)
        remove_entry(&blocks, e);
    pthread_mutex_unlock(&blocks.lock);
    if (!e) {
        lwc_warn("lwc_free(%p): not a block from lwc_alloc, or freed already: ignored", p);
        return;
    }
    free(p);
}

/* ---- pins ------------------------------------------------------------------------ */

void lwc_pin(const void *obj)
{
    if (!obj)
        return;
    pthread_mutex_lock(&pins.lock);
    struct entry *e = insert(&pins, obj);
    if (e)
        e->value++;
    pthread_mutex_unlock(&pins.lock);
    if (!e) {
        /* Going on without the pin could wake a thread that something
         * outside will still wake: better to stop than to lie. */
        lwc_warn("lwc_pin(%p): out of memory", obj);
        abort();
    }
}

void lwc_unpin(const void *obj)
{
    if (!obj)
        return;
    pthread_mutex_lock(&pins.lock);
    struct entry *e = lookup(&pins, obj);
    if (e && --e->value == 0)
        remove_entry(&pins, e);
    pthread_mutex_unlock(&pins.lock);
    if (!e)
        lwc_warn("lwc_unpin(%p): not pinned: ignored", obj);
}

unsigned lwc_pin_count(const void *obj)
{
    pthread_mutex_lock(&pins.lock);
    struct entry *e = obj ? lookup(&pins, obj) : NULL;
    unsigned n = e ? (unsigned)e->value : 0;
    pthread_mutex_unlock(&pins.lock);
    return n;
}

/* ---- PVars ---------------------------------------------------------------------- */

lwc_pvar_t *lwc_pvar_alloc(void)
{
    pthread_mutex_lock(&pvar_slabs.lock);
    lwc_pvar_t *pv = slab_take(&pvar_set);
    pthread_mutex_unlock(&pvar_slabs.lock);
    return pv;
}

bool lwc_pvar_known(const lwc_pvar_t *pv)
{
    size_t slot;
    pthread_mutex_lock(&pvar_slabs.lock);
    bool known = slab_of(&pvar_slabs, pv, false, &slot) != NULL;
    pthread_mutex_unlock(&pvar_slabs.lock);
    return known;
}

/* pv is known (lwc_pvar_known): its slab and slot follow from its address. */
void lwc_pvar_release(lwc_pvar_t *pv)
{
    struct slab *sl = (struct slab *)((uintptr_t)pv & ~(uintptr_t)(SLAB_BYTES - 1));
    pthread_mutex_lock(&pvar_slabs.lock);
    slab_release(sl, (size_t)((char *)pv - sl->obj) / sizeof *pv);
    pthread_mutex_unlock(&pvar_slabs.lock);
}

/* ---- for the detector: the tables, held still while it scans ---------------------- */

void lwc_traced_lock(void)
{
    pthread_mutex_lock(&pins.lock);
    pthread_mutex_lock(&blocks.lock);
    pthread_mutex_lock(&block_slabs.lock);
    pthread_mutex_lock(&pvar_slabs.lock);
}

void lwc_traced_unlock(void)
{
    pthread_mutex_unlock(&pvar_slabs.lock);
    pthread_mutex_unlock(&block_slabs.lock);
    pthread_mutex_unlock(&blocks.lock);
    pthread_mutex_unlock(&pins.lock);
}

bool lwc_traced_is_pvar(const void *p)
{
    size_t slot;
    return slab_of(&pvar_slabs, p, false, &slot) != NULL;
}

void lwc_traced_each_block(void (*fn)(void *arg, const void *p, size_t n), void *arg)
{
    for (size_t i = 0; i < blocks.cap; i++)
        if (blocks.slots[i].key)
            fn(arg, blocks.slots[i].key, blocks.slots[i].value);
    slab_each(&block_slabs, fn, arg);
}

void lwc_traced_each_pin(void (*fn)(void *arg, const void *p), void *arg)
{
    for (size_t i = 0; i < pins.cap; i++)
        if (pins.slots[i].key)
            fn(arg, pins.slots[i].key);
}

void lwc_traced_each_pvar(void (*fn)(void *arg, const void *p, size_t n), void *arg)
{
    slab_each(&pvar_slabs, fn, arg);
}

size_t lwc_traced_npins(void)
{
    return pins.used;
}

/* Blocks still allocated at exit are the program's leak, reported as such by
 * valgrind when they are big ones (Note [Slabs]); the tables are ours. */
__attribute__((destructor)) static void tables_free(void)
{
    table_free(&pins);
    table_free(&blocks);
    slab_free_unused(&pvar_slabs);
    slab_free_unused(&block_slabs);
    tables_gone = true;
}
