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
static struct table pvars = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0 };  /* slabs: below */

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

/* ---- traced memory ---------------------------------------------------------------- */

void *lwc_alloc(size_t n)
{
    if (n > PTRDIFF_MAX - LWC_MALLOC_SLACK)   /* no object can be that big */
        return NULL;
    void *p = calloc(1, (n ? n : 1) + LWC_MALLOC_SLACK);   /* Note [Allocator slack] */
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

static bool tables_gone;     /* after the exit destructor: see tables_free */

void lwc_free(void *p)
{
    if (!p)
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

/* Note [PVar slabs]
 * ~~~~~~~~~~~~~~~~~
 * A word that holds a PVar's address is an edge to its value only if the
 * detector knows the address for a PVar's, so every PVar lwc_pvar_new makes
 * is recorded.  Each used to be a malloc of its own and an entry of its own
 * in a table: 24 bytes of PVar cost about 80 with the allocator's header and
 * the table kept at most half full, and making a million MVars (six PVars
 * each) spent a fifth of its time inserting into that table.  So PVars are
 * carved from slabs of one page, aligned to a page, with a bitmap of the
 * slots in use; the table records slabs, not PVars.  A PVar's slab is its
 * address rounded down to the page, so freeing one finds its slot without a
 * search, and the detector's question (is this word a PVar?) is one lookup
 * of the slab, a division and a bit.  Slabs with a free slot are on a list;
 * one that empties is given back unless it is the only one with room.
 * Everything is under the table's mutex, taken once per PVar made or freed,
 * as before.
 *
 * At exit the slabs nobody uses are freed.  Those still in use stay, with
 * the table, for the destructors that free their PVars later (the MVar
 * pool's runs after this file's); each slab goes as it empties, and the
 * table with the last one.  The price: a PVar a program never frees keeps
 * its slab reachable from the table, and valgrind counts it as still
 * reachable where it reported a malloc'd PVar as lost. */
#define SLAB_BYTES 4096
#define SLAB_WORDS 3

struct pvar_slab {
    struct pvar_slab *prev, *next;  /* on `roomy` while a slot is free */
    uint32_t          nused;
    bool              roomy;
    uint64_t          used[SLAB_WORDS];
    lwc_pvar_t        pv[];
};

#define SLAB_SLOTS ((SLAB_BYTES - sizeof(struct pvar_slab)) / sizeof(lwc_pvar_t))
_Static_assert(SLAB_SLOTS <= 64 * SLAB_WORDS, "the bitmap covers every slot");

static struct pvar_slab *roomy;     /* slabs with a free slot; under pvars.lock */

static void roomy_add(struct pvar_slab *sl)
{
    sl->prev = NULL;
    sl->next = roomy;
    if (roomy)
        roomy->prev = sl;
    roomy = sl;
    sl->roomy = true;
}

static void roomy_remove(struct pvar_slab *sl)
{
    if (sl->prev)
        sl->prev->next = sl->next;
    else
        roomy = sl->next;
    if (sl->next)
        sl->next->prev = sl->prev;
    sl->roomy = false;
}

/* The slab and slot of p if p is a PVar in use, else NULL.  Under pvars.lock. */
static struct pvar_slab *slab_of(const void *p, size_t *slot)
{
    struct pvar_slab *sl = (struct pvar_slab *)((uintptr_t)p & ~(uintptr_t)(SLAB_BYTES - 1));
    if (!lookup(&pvars, sl) || (const char *)p < (const char *)sl->pv)
        return NULL;
    size_t off = (size_t)((const char *)p - (const char *)sl->pv);
    size_t i = off / sizeof(lwc_pvar_t);
    if (off % sizeof(lwc_pvar_t) || i >= SLAB_SLOTS || !(sl->used[i / 64] >> (i % 64) & 1))
        return NULL;
    *slot = i;
    return sl;
}

lwc_pvar_t *lwc_pvar_alloc(void)
{
    pthread_mutex_lock(&pvars.lock);
    struct pvar_slab *sl = roomy;
    if (!sl) {
        if (!(sl = aligned_alloc(SLAB_BYTES, SLAB_BYTES)) || !insert(&pvars, sl)) {
            pthread_mutex_unlock(&pvars.lock);
            free(sl);
            return NULL;
        }
        memset(sl, 0, sizeof *sl);
        roomy_add(sl);
    }
    size_t w = 0;
    while (sl->used[w] == ~0ull)
        w++;
    size_t i = 64 * w + (size_t)__builtin_ctzll(~sl->used[w]);
    sl->used[w] |= 1ull << (i % 64);
    if (++sl->nused == SLAB_SLOTS)
        roomy_remove(sl);
    pthread_mutex_unlock(&pvars.lock);
    return &sl->pv[i];
}

bool lwc_pvar_known(const lwc_pvar_t *pv)
{
    size_t slot;
    pthread_mutex_lock(&pvars.lock);
    bool known = slab_of(pv, &slot) != NULL;
    pthread_mutex_unlock(&pvars.lock);
    return known;
}

/* pv is known (lwc_pvar_known): its slab and slot follow from its address. */
void lwc_pvar_release(lwc_pvar_t *pv)
{
    struct pvar_slab *sl = (struct pvar_slab *)((uintptr_t)pv & ~(uintptr_t)(SLAB_BYTES - 1));
    size_t i = (size_t)(pv - sl->pv);
    pthread_mutex_lock(&pvars.lock);
    sl->used[i / 64] &= ~(1ull << (i % 64));
    sl->nused--;
    if (!sl->roomy)
        roomy_add(sl);
    if (sl->nused == 0 && (sl->prev || sl->next || tables_gone)) {
        roomy_remove(sl);
        remove_entry(&pvars, lookup(&pvars, sl));
        free(sl);
        if (tables_gone && !pvars.used)
            table_free(&pvars);
    }
    pthread_mutex_unlock(&pvars.lock);
}

/* ---- for the detector: the three tables, held still while it scans ---------------- */

void lwc_traced_lock(void)
{
    pthread_mutex_lock(&pins.lock);
    pthread_mutex_lock(&blocks.lock);
    pthread_mutex_lock(&pvars.lock);
}

void lwc_traced_unlock(void)
{
    pthread_mutex_unlock(&pvars.lock);
    pthread_mutex_unlock(&blocks.lock);
    pthread_mutex_unlock(&pins.lock);
}

bool lwc_traced_is_pvar(const void *p)
{
    size_t slot;
    return slab_of(p, &slot) != NULL;
}

void lwc_traced_each_block(void (*fn)(void *arg, const void *p, size_t n), void *arg)
{
    for (size_t i = 0; i < blocks.cap; i++)
        if (blocks.slots[i].key)
            fn(arg, blocks.slots[i].key, blocks.slots[i].value);
}

void lwc_traced_each_pin(void (*fn)(void *arg, const void *p), void *arg)
{
    for (size_t i = 0; i < pins.cap; i++)
        if (pins.slots[i].key)
            fn(arg, pins.slots[i].key);
}

void lwc_traced_each_pvar(void (*fn)(void *arg, const void *p), void *arg)
{
    for (size_t i = 0; i < pvars.cap; i++) {
        const struct pvar_slab *sl = pvars.slots[i].key;
        for (size_t j = 0; sl && j < SLAB_SLOTS; j++)
            if (sl->used[j / 64] >> (j % 64) & 1)
                fn(arg, &sl->pv[j]);
    }
}

size_t lwc_traced_npins(void)
{
    return pins.used;
}

/* Blocks still allocated at exit are the program's leak, reported as such by
 * valgrind; the tables themselves are ours. */
__attribute__((destructor)) static void tables_free(void)
{
    table_free(&pins);
    table_free(&blocks);
    pthread_mutex_lock(&pvars.lock);           /* Note [PVar slabs] */
    for (size_t i = 0; i < pvars.cap;) {
        struct pvar_slab *sl = (struct pvar_slab *)pvars.slots[i].key;
        if (!sl || sl->nused) {
            i++;
            continue;
        }
        roomy_remove(sl);
        remove_entry(&pvars, &pvars.slots[i]);  /* may move another into slot i */
        free(sl);
    }
    if (!pvars.used)
        table_free(&pvars);
    pthread_mutex_unlock(&pvars.lock);
    tables_gone = true;
}
