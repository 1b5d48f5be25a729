/* Timers: lwc_sleep_until and lwc_sleep_ns for every scheduler, and the
 * waiting node that fd waits (fd.c) share.  A sleeper blocks through its
 * own switch_to_next; the idle service below, polled by idle capabilities
 * and at switch points, wakes it through its own unblock_thread. */
#include <errno.h>
#include <lwc/io.h>
#include <lwc/lwc.h>
#include <lwc/sched.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "wait.h"

/* Note [Timer nodes]
 * ~~~~~~~~~~~~~~~~~~
 * A sleeper puts a node in the heap *before* the transaction that blocks it:
 * were the node put in after the commit (lwc_tx_defer), a capability with
 * nothing else to run would retry that transaction, roll the sleep back and
 * sleep in the kernel with no deadline to wake it.  So the poll may pop the
 * node and fire it before the sleeper has blocked, or while it is blocking.
 * Both sides are transactions over the node's `fired` PVar:
 *  - the sleeper, in generation g, blocks unless `fired` already reads g;
 *  - the poll, firing generation g, does nothing if `fired` reads g or more,
 *    and otherwise writes g and unblocks the sleeper if it is blocked.
 * Serializability leaves no third order, so no wake-up is lost or doubled.
 *
 * The poll copies what it needs (SCont, resume token, generation) out of the
 * node while it holds the heap lock, and the sleeper gives the node back once
 * it has been resumed.  A fire that comes late, after the node went back to the
 * pool and was taken again, finds `fired` at g or beyond, since each use of a
 * node counts g up and `fired` never goes down.  Nodes are type-stable (Note
 * [Type-stable nodes] in ../common/pool.h), and the token (the SCont's id when
 * it went to sleep) drops a timer whose thread was freed, by the end of an
 * lwc_main run or by lwc_shutdown, as MVar waiters are dropped (Note [Waiter
 * nodes] in ../mvar/mvar.c). */
struct lwc_pool io_pool = LWC_POOL_INIT(struct timer, false, 0);

/* A binary min-heap on (deadline, seq).  The seq makes the firing order
 * deterministic, but sleepers fired by one poll may still resume in another
 * order: one whose blocking transaction was being retried (its capability had
 * nothing else to run) finds itself fired and carries straight on. */
static pthread_mutex_t heap_lock = PTHREAD_MUTEX_INITIALIZER;
static struct timer  **heap;
static size_t          heap_len, heap_cap;
static uint64_t        next_seq;

__attribute__((destructor)) static void timers_drain(void)
{
    lwc_pool_destroy_all(&io_pool, NULL);
    free(heap);
    heap = NULL;
    heap_len = heap_cap = 0;
}

static bool earlier(const struct timer *a, const struct timer *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_set(size_t i, struct timer *tm)
{
    heap[i] = tm;
    tm->index = i;
}

static void sift_up(size_t i)
{
    struct timer *tm = heap[i];
    while (i > 0 && earlier(tm, heap[(i - 1) / 2])) {
        heap_set(i, heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(i, tm);
}

static void sift_down(size_t i)
{
    struct timer *tm = heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= heap_len)
            break;
        if (c + 1 < heap_len && earlier(heap[c + 1], heap[c]))
            c++;
        if (!earlier(heap[c], tm))
            break;
        heap_set(i, heap[c]);
        i = c;
    }
    heap_set(i, tm);
}

static bool heap_push(struct timer *tm)
{
    if (heap_len == heap_cap) {
        size_t c = heap_cap ? 2 * heap_cap : 64;
        struct timer **h = realloc(heap, c * sizeof *h);
        if (!h)
            return false;
        heap = h;
        heap_cap = c;
    }
    tm->seq = next_seq++;
    heap_set(heap_len++, tm);
    sift_up(heap_len - 1);
    return true;
}

static void heap_remove(size_t i)
{
    struct timer *last = heap[--heap_len];
    if (i == heap_len)
        return;
    heap_set(i, last);
    sift_up(i);
    sift_down(last->index);
}

/* ---- firing ---------------------------------------------------------------- */

static lwc_word_t fire_body(lwc_tx_t *tx, void *arg)
{
    struct firing *f = arg;
    if (lwc_pvar_read(tx, &f->tm->fired) >= f->gen)
        return 0;                               /* fired already, or a later use */
    lwc_pvar_write(tx, &f->tm->fired, f->gen);
    if (f->revents)
        lwc_pvar_write(tx, &f->tm->revents, f->gen << 8 | f->revents);
    if (lwc_scont_id(f->s) == f->token && lwc_scont_status(tx, f->s) == LWC_BLOCKED_ON_CONCDS)
        lwc_unblock_thread(tx, f->s);
    return 0;
}

void io_fire(struct firing *f)
{
    int err = lwc_atomically(fire_body, f, NULL);
    if (err != LWC_OK)
        fprintf(stderr, "lwc: waking SCont %llu from a wait failed: %s\n",
                (unsigned long long)f->token, lwc_strerror(err));
}


#define FIRE_BATCH 32

/* The idle service: fire every timer due at `now`. */
static uint64_t timers_poll(void *arg, uint64_t now)
{
    (void)arg;
    for (;;) {
        struct firing batch[FIRE_BATCH];
        unsigned n = 0;
        pthread_mutex_lock(&heap_lock);
        while (n < FIRE_BATCH && heap_len && heap[0]->deadline <= now) {
            struct timer *tm = heap[0];
            heap_remove(0);
            tm->index = SIZE_MAX;
            batch[n++] = (struct firing){ tm, tm->gen, tm->token, tm->s, 0 };
        }
        uint64_t next = heap_len ? heap[0]->deadline : LWC_NEVER;
        pthread_mutex_unlock(&heap_lock);
        for (unsigned i = 0; i < n; i++)
            io_fire(&batch[i]);
        if (n < FIRE_BATCH)
            return next;
    }
}

/* ---- sleeping -------------------------------------------------------------- */

static lwc_word_t block_body(lwc_tx_t *tx, void *arg)
{
    struct timer *tm = arg;
    if (lwc_pvar_read(tx, &tm->fired) != tm->gen)
        lwc_switch_to_next(tx, LWC_BLOCKED_ON_CONCDS);
    return 0;
}

static lwc_word_t settle_body(lwc_tx_t *tx, void *arg)
{
    struct timer *tm = arg;
    if (lwc_pvar_read(tx, &tm->fired) < tm->gen)
        lwc_pvar_write(tx, &tm->fired, tm->gen);
    return 0;
}

/* The sleep was cut short (the block failed, or something else resumed the
 * thread): take the node out of the heap, and make a fire still on its way
 * find it fired, before the node goes back. */
static void heap_take_out(struct timer *tm)
{
    pthread_mutex_lock(&heap_lock);
    if (tm->index < heap_len && heap[tm->index] == tm)
        heap_remove(tm->index);
    tm->index = SIZE_MAX;
    pthread_mutex_unlock(&heap_lock);
}

static void timer_cancel(struct timer *tm)
{
    heap_take_out(tm);
    while (lwc_atomically(settle_body, tm, NULL) != LWC_OK)
        ;
}

static int os_thread_sleep(uint64_t deadline)
{
    struct timespec ts = { (time_t)(deadline / 1000000000u), (long)(deadline % 1000000000u) };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
    return LWC_OK;
}

static atomic_bool service_added;

int io_wait_prepare(struct timer **out, uint64_t deadline)
{
    lwc_scont_t *self = lwc_scont_self();
    if (!lwc_scont_has_scheduler(self))
        return LWC_EINVAL;
    if (!atomic_load_explicit(&service_added, memory_order_acquire)) {
        int err = lwc_service_add(timers_poll, NULL);
        if (err != LWC_OK)
            return err;
        atomic_store_explicit(&service_added, true, memory_order_release);
    }
    struct timer *tm = lwc_pool_take(&io_pool);
    if (!tm)
        return LWC_ENOMEM;
    tm->gen++;
    tm->deadline = deadline;
    tm->s = self;
    tm->token = lwc_scont_id(self);
    tm->index = SIZE_MAX;
    *out = tm;
    return LWC_OK;
}

int io_wait_block(struct timer *tm, bool root, const char *what, const void *obj)
{
    if (tm->deadline != LWC_NEVER) {
        pthread_mutex_lock(&heap_lock);
        bool in = heap_push(tm);
        pthread_mutex_unlock(&heap_lock);
        if (!in)
            return LWC_ENOMEM;
        lwc_service_due(tm->deadline);
    }
    lwc_scont_t *self = tm->s;
    if (root)
        lwc_pin(self);
    lwc_scont_note_wait(self, what, obj);
    int err = lwc_atomically(block_body, tm, NULL);
    if (root)
        lwc_unpin(self);
    return err;
}

unsigned io_wait_finish(struct timer *tm)
{
    if (lwc_pvar_peek(&tm->fired) != tm->gen)
        timer_cancel(tm);
    else if (tm->index != SIZE_MAX)
        heap_take_out(tm);
    lwc_word_t r = lwc_pvar_peek(&tm->revents);
    lwc_pool_give(&io_pool, tm);
    return r >> 8 == tm->gen ? (unsigned)(r & 0xff) : 0;
}

int lwc_sleep_until(uint64_t deadline)
{
    if (deadline <= lwc_clock_ns())
        return LWC_OK;
    if (!lwc_scont_self())
        return os_thread_sleep(deadline);
    struct timer *tm;
    int err = io_wait_prepare(&tm, deadline);
    if (err != LWC_OK)
        return err;
    /* A sleeper is a root: its timer will wake it, from memory the detector
     * does not scan.  One that sleeps for good is not. */
    err = io_wait_block(tm, deadline != LWC_NEVER, "sleep", NULL);
    io_wait_finish(tm);
    return err;
}

int lwc_sleep_ns(uint64_t ns)
{
    uint64_t now = lwc_clock_ns();
    return lwc_sleep_until(ns >= LWC_NEVER - now ? LWC_NEVER : now + ns);
}
