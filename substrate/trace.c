/* Event traces: recording (lwc/trace.h).  trace_json.c writes them. */
#include "config.h"

#include <errno.h>
#include <lwc/trace.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "trace.h"

/* Note [Trace buffers]
 * ~~~~~~~~~~~~~~~~~~~~
 * Each OS thread that records has a buffer of its own, a list of chunks of
 * events, found through thread-local storage: recording is a store of 32
 * bytes and a release store of the chunk's count, with no lock and no system
 * call (Note [Trace clocks]).  A full chunk gets a new one, twice as big up
 * to TRACE_CHUNK_MAX events, mapped with its pages in place (MAP_POPULATE):
 * touched one by one, a fresh page cost a fault every 128 events, which on
 * this project's VM was most of an event's cost.  The buffers hang on one list,
 * under a mutex taken once per OS thread, so the writer finds them all, and
 * reads each chunk up to the count it published.
 *
 * A buffer outlives its thread (the events are the trace's), and a trace
 * that stops keeps its buffers and their chunks for the next one, emptied:
 * a thread that read the flag just before the stop may still be writing
 * into a chunk, so nothing is freed while the runtime may record (such an
 * event is lost, or lands in the next trace).  lwc_trace_shutdown
 * frees them, and bumps the generation, which tells every thread that its
 * buffer pointer is stale. */
#define TRACE_CHUNK_MIN 4096
#define TRACE_CHUNK_MAX 65536

struct trace_chunk {
    _Atomic(struct trace_chunk *) next;
    _Atomic unsigned    n;
    unsigned            cap;            /* events it holds */
    struct trace_event  ev[];
};

struct trace_buf {
    struct trace_buf   *next;           /* every buffer: trace.bufs */
    uint32_t            os;             /* its number, for the OS thread's track */
    struct trace_chunk *first;
    _Atomic(struct trace_chunk *) last;
};

_Atomic int lwc_trace_flag;

static struct {
    pthread_mutex_t   lock;             /* bufs, path, names */
    struct trace_buf *bufs;
    uint32_t          nbufs;
    _Atomic unsigned  generation;
    char             *path;
    uint64_t          start_ticks, start_ns;   /* Note [Trace clocks] */
    char            **names;            /* TR_NAME copies, freed with the trace */
    size_t            nnames, cap_names;
} trace = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* initial-exec: the default model would call __tls_get_addr per event. */
#define TRACE_TLS __attribute__((tls_model("initial-exec")))
static __thread struct trace_buf *my_buf TRACE_TLS;
static __thread unsigned my_generation TRACE_TLS;

/* Wakes recorded inside a transaction, by slot: Note [Wakes in a trace]. */
#define WAKE_SLOTS 64
static __thread struct { uint64_t woken, waker; } my_wakes[WAKE_SLOTS] TRACE_TLS;
static __thread unsigned my_wake_next TRACE_TLS;

/* Note [Trace clocks]
 * ~~~~~~~~~~~~~~~~~~~
 * An event's time is the processor's time-stamp counter where there is one
 * that runs at a constant rate (x86-64: rdtsc, a few nanoseconds; the vDSO's
 * clock_gettime took 20 here, a third of an event), turned into nanoseconds
 * by the writer from two readings of both clocks, at the trace's start and
 * at its end.  Elsewhere it is lwc_clock_ns. */
#if defined(__x86_64__)
static inline uint64_t trace_ticks(void) { return __builtin_ia32_rdtsc(); }
#define TRACE_TSC 1
#else
static inline uint64_t trace_ticks(void) { return lwc_clock_ns(); }
#define TRACE_TSC 0
#endif

static size_t chunk_bytes(unsigned cap)
{
    return sizeof(struct trace_chunk) + (size_t)cap * sizeof(struct trace_event);
}

static struct trace_chunk *chunk_new(unsigned cap)
{
    void *p = mmap(NULL, chunk_bytes(cap), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    struct trace_chunk *c = p;
    atomic_init(&c->next, NULL);
    c->cap = cap;
    atomic_init(&c->n, 0);
    return c;
}

static void chunk_free(struct trace_chunk *c)
{
    munmap(c, chunk_bytes(c->cap));
}

static __attribute__((noinline, cold)) struct trace_buf *buf_new(void)
{
    struct trace_buf *b = calloc(1, sizeof *b);
    struct trace_chunk *c = b ? chunk_new(TRACE_CHUNK_MIN) : NULL;
    if (!c) {
        free(b);
        return NULL;
    }
    b->first = c;
    atomic_init(&b->last, c);
    pthread_mutex_lock(&trace.lock);
    b->os = trace.nbufs++;
    b->next = trace.bufs;
    trace.bufs = b;
    my_generation = atomic_load(&trace.generation);
    pthread_mutex_unlock(&trace.lock);
    my_buf = b;
    return b;
}

/* The next chunk: one an earlier trace left (emptied), or a new one. */
static __attribute__((noinline)) struct trace_chunk *chunk_more(struct trace_buf *b,
                                                                struct trace_chunk *c)
{
    struct trace_chunk *more = atomic_load_explicit(&c->next, memory_order_acquire);
    if (!more) {
        if (!(more = chunk_new(c->cap < TRACE_CHUNK_MAX ? 2 * c->cap : c->cap)))
            return NULL;                /* the event is lost, nothing else */
        atomic_store_explicit(&c->next, more, memory_order_release);
    }
    atomic_store_explicit(&b->last, more, memory_order_release);
    return more;
}

/* The caller has seen the flag set (every hook is behind lwc_tracing). */
void lwc_trace_put(struct lwc_thread *t, unsigned kind, unsigned st, uint64_t a, uint64_t b)
{
    struct trace_buf *buf = my_buf;
    if (!buf || my_generation != atomic_load_explicit(&trace.generation, memory_order_relaxed))
        if (!(buf = buf_new()))
            return;
    struct trace_chunk *c = atomic_load_explicit(&buf->last, memory_order_relaxed);
    unsigned n = atomic_load_explicit(&c->n, memory_order_relaxed);
    if (n == c->cap) {
        if (!(c = chunk_more(buf, c)))
            return;
        n = 0;
    }
    if (!t)
        t = lwc_thread_peek();
    c->ev[n] = (struct trace_event){
        .ts = trace_ticks(), .kind = (uint8_t)kind, .st = (uint8_t)st,
        .cap = t && t->cap ? (uint16_t)t->cap->id : TRACE_NO_CAP, .os = buf->os, .a = a, .b = b };
    atomic_store_explicit(&c->n, n + 1, memory_order_release);
}

/* ---- the hooks -------------------------------------------------------------------------- */

/* From lwc_land, on the stack switched to: the switch that just happened. */
void lwc_trace_landed(struct lwc_thread *t, lwc_scont_t *prev)
{
    lwc_status_t why = !prev ? LWC_RUNNING
                       : prev->completed ? LWC_COMPLETED
                       : status_of(lwc_pvar_load(&prev->status));
    lwc_trace_put(t, TR_SWITCH, why, prev ? lwc_scont_id(prev) : 0,
                  t->current ? lwc_scont_id(t->current) : 0);
}

void lwc_trace_created(lwc_scont_t *s)
{
    lwc_trace_put(NULL, TR_CREATE, 0, lwc_scont_id(s), 0);
    if (s->name)
        lwc_trace_named(s);
}

/* The name is copied: the SCont's may be freed before the trace is written. */
void lwc_trace_named(lwc_scont_t *s)
{
    char *copy = strdup(s->name);
    if (!copy)
        return;
    pthread_mutex_lock(&trace.lock);
    if (trace.nnames == trace.cap_names) {
        size_t cap = trace.cap_names ? 2 * trace.cap_names : 64;
        char **names = realloc(trace.names, cap * sizeof *names);
        if (!names) {
            pthread_mutex_unlock(&trace.lock);
            free(copy);
            return;
        }
        trace.names = names;
        trace.cap_names = cap;
    }
    trace.names[trace.nnames++] = copy;
    pthread_mutex_unlock(&trace.lock);
    lwc_trace_put(NULL, TR_NAME, 0, lwc_scont_id(s), (uint64_t)(uintptr_t)copy);
}

/* Note [Wakes in a trace]
 * ~~~~~~~~~~~~~~~~~~~~~~~
 * A wake happens inside a transaction, which may run again or be thrown
 * away: recorded there, a wake that never committed would draw an arrow.  So
 * the transaction keeps the two ids in a slot of its OS thread's and defers
 * the recording (lwc_tx_defer), which runs once the commit has happened, on
 * the same OS thread.  The slots go round: a transaction that wakes more
 * than WAKE_SLOTS threads loses the arrows of its first ones. */
static void wake_committed(void *slot)
{
    unsigned i = (unsigned)(uintptr_t)slot;
    if (lwc_tracing())                  /* the trace may have stopped since */
        lwc_trace_put(NULL, TR_WAKE, 0, my_wakes[i].woken, my_wakes[i].waker);
}

void lwc_trace_wake_in(lwc_tx_t *tx, lwc_scont_t *s)
{
    unsigned i = my_wake_next++ % WAKE_SLOTS;
    my_wakes[i].woken = lwc_scont_id(s);
    my_wakes[i].waker = tx->self ? lwc_scont_id(tx->self) : 0;
    lwc_tx_defer(tx, wake_committed, (void *)(uintptr_t)i);
}

/* ---- the public side ----------------------------------------------------------------------- */

int lwc_trace_recording(void)
{
    return atomic_load(&lwc_trace_flag);
}

int lwc_trace_start(const char *path)
{
    if (!path)
        return LWC_EINVAL;
    char *copy = strdup(path);
    if (!copy)
        return LWC_ENOMEM;
    pthread_mutex_lock(&trace.lock);
    if (atomic_load(&lwc_trace_flag)) {
        pthread_mutex_unlock(&trace.lock);
        free(copy);
        return LWC_EBUSY;
    }
    free(trace.path);
    trace.path = copy;
    trace.start_ns = lwc_clock_ns();
    trace.start_ticks = trace_ticks();
    atomic_store(&lwc_trace_flag, 1);
    pthread_mutex_unlock(&trace.lock);
    return LWC_OK;
}

/* Every event recorded, in one array (the lock held). */
static struct trace_event *gather(size_t *n)
{
    size_t total = 0;
    for (struct trace_buf *b = trace.bufs; b; b = b->next)
        for (struct trace_chunk *c = b->first; c; c = atomic_load_explicit(&c->next, memory_order_acquire))
            total += atomic_load_explicit(&c->n, memory_order_acquire);
    struct trace_event *all = malloc((total ? total : 1) * sizeof *all);
    if (!all)
        return NULL;
    size_t k = 0;
    for (struct trace_buf *b = trace.bufs; b; b = b->next)
        for (struct trace_chunk *c = b->first; c; c = atomic_load_explicit(&c->next, memory_order_acquire)) {
            unsigned m = atomic_load_explicit(&c->n, memory_order_acquire);
            if (k + m > total)
                m = (unsigned)(total - k);  /* recorded since we counted */
            memcpy(all + k, c->ev, m * sizeof *all);
            k += m;
        }
    *n = k;
    return all;
}

/* Empty every buffer for the next trace (Note [Trace buffers]): its chunks
 * stay, to be filled again, since a thread that read the flag before the
 * stop may still write into one; so do the names, which an event in flight
 * may name.  With free_all (lwc_shutdown: nothing records), all go. */
static void empty_buffers(bool free_all)
{
    for (struct trace_buf *b = trace.bufs, *next; b; b = next) {
        next = b->next;
        for (struct trace_chunk *c = b->first, *cn; c; c = cn) {
            cn = atomic_load(&c->next);
            atomic_store(&c->n, 0);
            if (free_all)
                chunk_free(c);
        }
        atomic_store(&b->last, b->first);
        if (free_all)
            free(b);
    }
    if (!free_all)
        return;
    for (size_t i = 0; i < trace.nnames; i++)
        free(trace.names[i]);
    free(trace.names);
    trace.names = NULL;
    trace.nnames = trace.cap_names = 0;
    trace.bufs = NULL;
    trace.nbufs = 0;
    atomic_fetch_add(&trace.generation, 1);
}

static int stop(bool free_all)
{
    pthread_mutex_lock(&trace.lock);
    if (!atomic_exchange(&lwc_trace_flag, 0)) {
        pthread_mutex_unlock(&trace.lock);
        return LWC_EINVAL;
    }
    size_t n = 0;
    struct trace_event *all = gather(&n);
    uint64_t end_ticks = trace_ticks(), end_ns = lwc_clock_ns();
    if (all && TRACE_TSC) {
        /* Note [Trace clocks]: ticks to nanoseconds, on the line through the two readings. */
        double per_tick = end_ticks > trace.start_ticks
                          ? (double)(end_ns - trace.start_ns) / (double)(end_ticks - trace.start_ticks)
                          : 1.0;
        for (size_t i = 0; i < n; i++)
            all[i].ts = trace.start_ns + (uint64_t)((double)(int64_t)(all[i].ts - trace.start_ticks) *
                                                    per_tick);
    }
    int err = all ? lwc_trace_write_json(trace.path, all, n) : LWC_ENOMEM;
    free(all);
    empty_buffers(free_all);
    free(trace.path);
    trace.path = NULL;
    pthread_mutex_unlock(&trace.lock);
    return err;
}

int lwc_trace_stop(void)
{
    return stop(false);
}

void lwc_trace_mark(const char *name)
{
    if (name && lwc_tracing())
        lwc_trace_put(NULL, TR_MARK, 0, 0, (uint64_t)(uintptr_t)name);
}

/* A span belongs to the SCont that opens it (or, outside every SCont, to
 * the OS thread), which may move between capabilities while it is open. */
static uint64_t span_owner(void)
{
    lwc_scont_t *s = lwc_scont_self();
    return s ? lwc_scont_id(s) : (uint64_t)1 << 63 | (my_buf ? my_buf->os : 0);
}

void lwc_trace_begin(const char *name)
{
    if (name && lwc_tracing())
        lwc_trace_put(NULL, TR_BEGIN, 0, span_owner(), (uint64_t)(uintptr_t)name);
}

void lwc_trace_end(void)
{
    if (lwc_tracing())
        lwc_trace_put(NULL, TR_END, 0, span_owner(), 0);
}

void lwc_trace_steal(lwc_scont_t *s, unsigned victim)
{
    if (s && lwc_tracing())
        lwc_trace_put(NULL, TR_STEAL, 0, lwc_scont_id(s), victim);
}

void lwc_trace_init(void)
{
    const char *path = getenv("LWC_TRACE");
    if (path && *path && lwc_trace_start(path) != LWC_OK)
        lwc_warn("LWC_TRACE=%s: the trace could not start", path);
}

/* The runtime's threads are gone: a trace still recording is written, and
 * every buffer goes. */
void lwc_trace_shutdown(void)
{
    int err = stop(true);
    if (err != LWC_OK && err != LWC_EINVAL)
        lwc_warn("the trace could not be written: %s", lwc_strerror(err));
    pthread_mutex_lock(&trace.lock);
    empty_buffers(true);
    pthread_mutex_unlock(&trace.lock);
}
