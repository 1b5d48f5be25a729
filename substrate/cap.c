/* OS threads, capabilities, and the ways into the runtime. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "futex.h"
#include "internal.h"
#include "trace.h"
#include "sanitize.h"

struct lwc_runtime lwc_rt = { .lock = PTHREAD_MUTEX_INITIALIZER,
                              .scont_depot = LWC_DEPOT_INIT(-1u) };

/* Note [TLS across switches]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~
 * An SCont suspended on one OS thread may resume on another.  A compiler that
 * computed the address of a __thread variable before a switch may reuse it after
 * (it assumes a function never changes threads), and would then touch the old
 * thread's record.  So: code that may have switched gets its thread from the
 * swap's transfer value, or from lwc_thread_reload(), which the compiler cannot
 * fold into an earlier read (it is out of line and has a volatile asm). */
__thread struct lwc_thread *lwc_tls_thread __attribute__((tls_model("initial-exec")));
static pthread_key_t thread_key;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;

void lwc_thread_free(struct lwc_thread *t)
{
    if (t->registered) {
        pthread_mutex_lock(&lwc_rt.lock);
        if (t->foreign_prev)
            t->foreign_prev->foreign_next = t->foreign_next;
        else
            lwc_rt.foreign = t->foreign_next;
        if (t->foreign_next)
            t->foreign_next->foreign_prev = t->foreign_prev;
        pthread_mutex_unlock(&lwc_rt.lock);
    }
    lwc_ptm_thread_gone(t);
    lwc_stack_cache_flush(t);
    lwc_scont_cache_flush(t);
    lwc_tx_destroy(&t->tx);
    free(t->wakes);
    free(t->defers);
    free(t->idle_writes);
    free(t->altstack);
    free(t);
}

static void thread_key_destroy(void *p)
{
    struct lwc_thread *t = p;
    if (lwc_tls_thread == t)
        lwc_tls_thread = NULL;
    lwc_thread_free(t);
}

static void thread_key_init(void)
{
    pthread_key_create(&thread_key, thread_key_destroy);
}

static struct lwc_thread *thread_alloc(enum thread_kind kind)
{
    struct lwc_thread *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->kind = kind;
    t->service_countdown = LWC_SERVICE_EVERY;
    lwc_tx_init(&t->tx);
    return t;
}

struct lwc_thread *lwc_thread_get(void)
{
    if (lwc_tls_thread)
        return lwc_tls_thread;
    struct lwc_thread *t = thread_alloc(THREAD_FOREIGN);
    if (!t)
        return NULL;
    pthread_once(&thread_key_once, thread_key_init);
    pthread_setspecific(thread_key, t);     /* freed when the OS thread exits */
    pthread_mutex_lock(&lwc_rt.lock);       /* Note [Plain OS threads] in detect.c */
    t->foreign_next = lwc_rt.foreign;
    if (lwc_rt.foreign)
        lwc_rt.foreign->foreign_prev = t;
    lwc_rt.foreign = t;
    t->registered = true;
    pthread_mutex_unlock(&lwc_rt.lock);
    lwc_san_thread_start(t);
    t->pthread = pthread_self();                /* lwc_outcall_interrupt signals it */
    lwc_tls_thread = t;
    return t;
}

__attribute__((noinline)) struct lwc_thread *lwc_thread_reload(void)
{
    __asm__ __volatile__("" ::: "memory");
    return lwc_thread_get();
}

void lwc_warn(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "lwc: %s\n", buf);
}

/* ---- Mailboxes ------------------------------------------------------------- */

/* Note [Mailboxes]
 * ~~~~~~~~~~~~~~~~
 * A capability moves between OS threads by mail: (capability, SCont to run).
 * The fields are plain because at most one mail is ever in flight to a thread:
 * - a worker is mailed only its own capability, and only by the thread holding
 *   that capability (handle_request) or by lwc_cap_start, which took it idle;
 *   while someone else holds it the worker is in mail_wait, and it leaves
 *   mail_wait only by reading that one mail;
 * - a bound or host thread is mailed only to run its own SCont, and only by the
 *   thread that won that SCont's status (LWC_RUNNING is written once per resume).
 * lwc_shutdown overwrites the word with MAIL_STOP; a mail that races with it is
 * dropped with the runtime. */
enum { MAIL_EMPTY, MAIL_FULL, MAIL_ASLEEP, MAIL_STOP };

void lwc_thread_mail(struct lwc_thread *t, struct lwc_cap *cap, lwc_scont_t *target)
{
    t->mail_cap = cap;
    t->mail_target = target;
    if (atomic_exchange_explicit(&t->mail, MAIL_FULL, memory_order_release) == MAIL_ASLEEP)
        lwc_futex_wake(&t->mail, 1);
}

/* Wait for a capability and an SCont to run on it.  False: the runtime stops. */
static bool mail_wait(struct lwc_thread *t)
{
    for (unsigned i = 0;; i++) {
        uint32_t m = atomic_load_explicit(&t->mail, memory_order_acquire);
        if (m == MAIL_FULL)
            break;
        if (m == MAIL_STOP || atomic_load(&lwc_rt.stopping))
            return false;
        if (i < LWC_SPIN_BOUND) {
            lwc_cpu_relax();
            continue;
        }
        if (m == MAIL_ASLEEP ||
            atomic_compare_exchange_strong(&t->mail, &m, MAIL_ASLEEP)) {
            if (t->kind == THREAD_HOST)
                lwc_gc_host_sleeps(t);
            else
                atomic_store(&t->asleep, 1);
            lwc_futex_wait(&t->mail, MAIL_ASLEEP);
            atomic_store(&t->asleep, 0);
        }
    }
    atomic_store_explicit(&t->mail, MAIL_EMPTY, memory_order_relaxed);
    return true;
}

/* ---- The native stack: each OS thread's dispatcher -------------------------- */

lwc_scont_t *lwc_cap_route(struct lwc_thread *t, struct lwc_cap *cap, lwc_scont_t *s)
{
    if (s && lwc_runs_on(s, t))
        return s;
    t->cap = NULL;
    if (s)
        lwc_thread_mail(s->bound ? s->bound : cap->worker, cap, s);
    else if (__builtin_expect(cap->hosted, 0) && cap->worker != t)
        lwc_thread_mail(cap->worker, cap, NULL);    /* lwc_cap_serve_hosted ends the turn */
    else
        atomic_store_explicit(&cap->busy, CAP_IDLE, memory_order_release);
    return NULL;
}

/* An SCont came back to the native stack asking for something (lwc_swap_to).
 * Returns the capability if it is to idle here (Note [Idling in a place of
 * its own] in idle.c). */
static struct lwc_cap *handle_request(struct lwc_thread *t)
{
    struct lwc_cap *cap = t->cap;
    enum thread_request req = t->request;
    lwc_scont_t *to = req == REQ_HANDOFF ? t->handoff : NULL;
    t->request = REQ_NONE;
    t->handoff = NULL;
    if (!cap)
        return NULL;
    if (req == REQ_IDLE && t->kind == THREAD_WORKER)
        return cap;
    if (req == REQ_IDLE) {
        t->cap = NULL;
        lwc_thread_mail(cap->worker, cap, NULL);    /* an empty mail: the worker idles */
        return NULL;
    }
    /* A handoff came here because `to` cannot run on t (lwc_swap_to asked
     * lwc_runs_on), so it is mailed; a release or an exit gives cap back. */
    lwc_cap_route(t, cap, to);
    return NULL;
}

void lwc_cap_serve(struct lwc_thread *t, struct lwc_cap *cap, lwc_scont_t *first)
{
    while (cap) {
        if (!first && !(first = lwc_idle_run(t, cap)))
            break;
        t->cap = cap;
        lwc_gc_safepoint(t);                /* Note [Stopping the world] in detect.c */
        lwc_swap_to(t, NULL, first);
        first = NULL;
        cap = handle_request(t);
    }
}

/* A host's turn on its hosted capability (host.c): a bound SCont runs on
 * its own OS thread, which mails the capability back here when it switches
 * to another, or when it gives it back (an empty mail, lwc_cap_route); the
 * host waits for it meanwhile, as for a blocking call. */
void lwc_cap_serve_hosted(struct lwc_thread *t, struct lwc_cap *cap, lwc_scont_t *first)
{
    /* first is never NULL here: route would give the capability back. */
    for (;;) {
        if ((first = lwc_cap_route(t, cap, first)))
            lwc_cap_serve(t, cap, first);
        if (atomic_load_explicit(&cap->busy, memory_order_acquire) == CAP_IDLE ||
            !mail_wait(t))
            return;
        if (!(first = t->mail_target)) {
            atomic_store_explicit(&cap->busy, CAP_IDLE, memory_order_release);
            return;
        }
    }
}

/* Run what the mailbox brings until the thread's own SCont completes (bound and
 * host threads) or the runtime stops.  cap and first, if given, run at once;
 * cap with no SCont (an empty mail) idles here. */
static void native_loop(struct lwc_thread *t, struct lwc_cap *cap, lwc_scont_t *first)
{
    for (;;) {
        lwc_cap_serve(t, cap, first);
        if (t->bound_done || !mail_wait(t))
            return;
        cap = t->mail_cap;
        first = t->mail_target;
        if (cap)
            lwc_outcall_mail(t, cap);       /* Note [Outcalls] in outcall.c */
        else if (t->mail_job)
            lwc_outcall_run_job(t);         /* Note [Calls from a hosted capability] */
    }
}

static void *runtime_thread_main(void *arg)
{
    struct lwc_thread *t = arg;
    lwc_tls_thread = t;
    lwc_san_thread_start(t);
    lwc_altstack_enter(t);
    native_loop(t, NULL, NULL);
    lwc_altstack_leave(t);
    return NULL;
}

/* A worker for a capability, or the OS thread of a bound SCont. */
static struct lwc_thread *runtime_thread_start(enum thread_kind kind, lwc_scont_t *bound)
{
    struct lwc_thread *t = thread_alloc(kind);
    if (!t)
        return NULL;
    t->bound_scont = bound;
    if (pthread_create(&t->pthread, NULL, runtime_thread_main, t) != 0) {
        lwc_thread_free(t);
        return NULL;
    }
    pthread_mutex_lock(&lwc_rt.lock);
    t->all_next = lwc_rt.threads;
    lwc_rt.threads = t;
    pthread_mutex_unlock(&lwc_rt.lock);
    return t;
}

struct lwc_thread *lwc_thread_new_bound(lwc_scont_t *s)
{
    return runtime_thread_start(THREAD_BOUND, s);
}

struct lwc_thread *lwc_thread_new_worker(void)
{
    return runtime_thread_start(THREAD_WORKER, NULL);
}

/* ---- Capabilities ------------------------------------------------------------ */

/* Note [Releasing a capability]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * A scheduler gives a capability back by returning NULL from switch_to_next,
 * and usually records that in the same transaction (rr and ws count their
 * capabilities in a PVar).  Another thread that sees the count drop may at once
 * ask for an idle capability, for a new instance say, and must not be told
 * LWC_EBUSY because the OS thread is still on its way back to its native stack.
 * So lwc_tx_run marks the capability CAP_RELEASING before it commits such a
 * switch (and back to CAP_BUSY if the commit fails), and cap_take_idle waits
 * for a releasing capability instead of failing: the wait is the few
 * instructions between the commit and handle_request. */
void lwc_cap_set_releasing(struct lwc_cap *cap, bool on)
{
    atomic_store_explicit(&cap->busy, on ? CAP_RELEASING : CAP_BUSY, memory_order_release);
}

/* An idle capability, `only` if not NULL; NULL if there is none. */
static struct lwc_cap *cap_take_idle(struct lwc_cap *only)
{
    for (unsigned spin = 0;; spin++) {
        bool releasing = false;
        for (unsigned i = 0; i < lwc_rt.ncaps; i++) {
            int idle = CAP_IDLE;
            if (only && only != &lwc_rt.caps[i])
                continue;
            if (atomic_compare_exchange_strong(&lwc_rt.caps[i].busy, &idle, CAP_BUSY))
                return &lwc_rt.caps[i];
            releasing |= idle == CAP_RELEASING;
        }
        if (!releasing)
            return NULL;
        lwc_spin_step(spin);
    }
}

struct resume { lwc_scont_t *s; struct lwc_cap *cap; };

static lwc_word_t resume_body(lwc_tx_t *tx, void *arg)
{
    struct resume *r = arg;
    lwc_scont_mark_running_on(tx, r->s, r->cap);
    return 0;
}

int lwc_cap_start(lwc_scont_t *s)
{
    if (!s || !atomic_load(&lwc_rt.up))
        return LWC_EINVAL;
    lwc_status_t st = lwc_scont_status(NULL, s);
    if (st != LWC_BLOCKED_ON_SCHED && st != LWC_BLOCKED_ON_CONCDS)
        return LWC_ESTATE;          /* one answer, whether a capability is idle or not */
    struct lwc_cap *cap = cap_take_idle(lwc_scont_home(s));   /* Note [Copy stacks] in copy.c */
    if (!cap)
        return LWC_EBUSY;
    int err = lwc_tx_run(resume_body, &(struct resume){ s, cap }, NULL, true);
    if (err != LWC_OK) {
        atomic_store(&cap->busy, CAP_IDLE);
        return err;
    }
    lwc_thread_mail(s->bound ? s->bound : cap->worker, cap, s);
    return LWC_OK;
}

unsigned lwc_cap_count(void)
{
    return atomic_load(&lwc_rt.up) ? lwc_rt.ncaps : 0;
}

unsigned lwc_cap_self(void)
{
    struct lwc_thread *t = lwc_thread_peek();
    return t && t->cap ? t->cap->id : (unsigned)-1;
}

static lwc_word_t eval_unblock_body(lwc_tx_t *tx, void *arg)
{
    lwc_scont_t *s = arg;
    lwc_upcalls_t u;
    lwc_scont_load_upcalls(s, &u);
    if (lwc_scont_status(tx, s) != LWC_BLOCKED_ON_SCHED)
        lwc_tx_abort(tx, LWC_ESTATE);
    if (!u.unblock_thread)
        lwc_tx_abort(tx, LWC_EBUSY);
    u.unblock_thread(tx, s, u.env);
    return 0;
}

static int eval(lwc_scont_t *s, bool may_start)
{
    if (!s || !atomic_load(&lwc_rt.up) || s->bound)
        return LWC_EINVAL;
    lwc_upcalls_t u;
    lwc_scont_load_upcalls(s, &u);
    if (!may_start && !u.unblock_thread)
        return LWC_EINVAL;
    struct lwc_thread *t = lwc_thread_get();
    if (!t)
        return LWC_ENOMEM;
    if (t->current || t->kind != THREAD_FOREIGN)
        return LWC_EINVAL;
    if (lwc_scont_home(s))
        return LWC_ESTATE;              /* a copy SCont that has run: Note [Copy stacks] */
    /* s runs only on this OS thread from now on: every switch to it hands the
     * capability here, and the mailbox loop below serves it. */
    __atomic_store_n(&s->bound, t, __ATOMIC_RELAXED);   /* lwc_scont_reserve_stack */
    t->kind = THREAD_HOST;
    t->bound_scont = s;
    t->bound_done = false;
    lwc_altstack_enter(t);
    int err;
    struct lwc_cap *cap = may_start ? cap_take_idle(NULL) : NULL;
    if (cap) {
        err = lwc_tx_run(resume_body, &(struct resume){ s, cap }, NULL, true);
        if (err != LWC_OK)
            atomic_store(&cap->busy, CAP_IDLE);
    } else {
        err = lwc_tx_run(eval_unblock_body, s, NULL, true);
    }
    if (err == LWC_OK) {
        lwc_host_wait_begin(s);
        native_loop(t, cap, cap ? s : NULL);
        int deadlock = lwc_host_wait_end(s);
        if (!t->bound_done)
            err = LWC_EBUSY;                /* the runtime stopped first */
        else
            __atomic_store_n(&s->bound, NULL, __ATOMIC_RELAXED);  /* completed: unbound */
        if (err == LWC_OK)
            err = deadlock;
    } else {
        __atomic_store_n(&s->bound, NULL, __ATOMIC_RELAXED);
    }
    lwc_altstack_leave(t);
    t->kind = THREAD_FOREIGN;
    t->bound_scont = NULL;
    t->bound_done = false;
    return err;
}

int lwc_eval(lwc_scont_t *s)
{
    return eval(s, true);
}

int lwc_eval_queued(lwc_scont_t *s)
{
    return eval(s, false);
}

/* ---- Start and stop --------------------------------------------------------- */

static unsigned env_unsigned(const char *name, unsigned dflt, unsigned max)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || *end || n == 0 || n > max) {
        lwc_warn("ignoring %s=%s (want 1..%u)", name, v, max);
        return dflt;
    }
    return (unsigned)n;
}

static lwc_stack_kind_t env_stack_kind(void)
{
    static const char *const names[] = { "", "guarded", "plain", "copy" };
    const char *v = getenv("LWC_STACK_KIND");
    if (!v || !*v)
        return LWC_STACK_DEFAULT;
    for (int k = LWC_STACK_GUARDED; k <= LWC_STACK_COPY; k++)
        if (strcmp(v, names[k]) == 0)
            return (lwc_stack_kind_t)k;
    lwc_warn("ignoring LWC_STACK_KIND=%s (want guarded, plain or copy)", v);
    return LWC_STACK_DEFAULT;
}

#define LWC_MAX_CAPS 1024

int lwc_init(const lwc_config_t *cfg)
{
    if (atomic_load(&lwc_rt.up) || atomic_load(&lwc_rt.stopping))
        return LWC_EBUSY;
    unsigned ncaps = cfg && cfg->ncaps ? cfg->ncaps : env_unsigned("LWC_CAPS", 1, LWC_MAX_CAPS);
    if (ncaps > LWC_MAX_CAPS)
        return LWC_EINVAL;
    size_t stack = cfg && cfg->stack_size ? cfg->stack_size
                   : (size_t)env_unsigned("LWC_STACK_SIZE", 256 * 1024, 1u << 30);
    if (stack < 16 * 1024 || stack > ((size_t)1 << 30))
        return LWC_EINVAL;
    lwc_stack_set_default_size(stack);
    lwc_stack_kind_t kind = cfg && cfg->stack_kind ? cfg->stack_kind : env_stack_kind();
    if (kind > LWC_STACK_COPY)
        return LWC_EINVAL;
    lwc_stack_set_default_kind(kind);
    unsigned idle_gc_ms = cfg && cfg->idle_gc_ms ? cfg->idle_gc_ms
                          : env_unsigned("LWC_IDLE_GC_MS", 0, 1u << 30);
    lwc_rt.idle_gc_ns = (uint64_t)idle_gc_ms * 1000000u;
    if (cfg && cfg->no_workers)
        ncaps = 0;
    /* Room for the hosted capabilities too, which never move: Note [Hosted
     * capabilities] in host.c. */
    lwc_rt.caps = calloc(ncaps + LWC_MAX_HOSTED_CAPS, sizeof *lwc_rt.caps);
    if (!lwc_rt.caps)
        return LWC_ENOMEM;
    lwc_rt.ncaps = ncaps;
    atomic_store(&lwc_rt.ncaps_all, ncaps);
    for (unsigned i = 0; i < ncaps + LWC_MAX_HOSTED_CAPS; i++) {
        lwc_rt.caps[i].id = i;
        atomic_init(&lwc_rt.caps[i].busy, 0);
    }
    for (unsigned i = 0; i < ncaps; i++) {
        if (!(lwc_rt.caps[i].worker = runtime_thread_start(THREAD_WORKER, NULL))) {
            atomic_store(&lwc_rt.up, 1);
            lwc_shutdown();
            return LWC_ENOMEM;
        }
    }
    lwc_overflow_install();
    lwc_outcall_init();
    atomic_store(&lwc_rt.up, 1);
    lwc_view_init();
    lwc_trace_init();
    return LWC_OK;
}

void lwc_shutdown(void)
{
    if (!atomic_load(&lwc_rt.up))
        return;
    struct lwc_thread *self = lwc_thread_peek();
    if (self && (self->current || self->kind != THREAD_FOREIGN)) {
        lwc_warn("lwc_shutdown called from inside the runtime: ignored");
        return;
    }
    lwc_view_shutdown();
    atomic_store(&lwc_rt.stopping, 1);
    atomic_store(&lwc_rt.up, 0);
    lwc_outcall_shutdown();             /* no hand-off from here on */
    pthread_mutex_lock(&lwc_rt.lock);
    struct lwc_thread *threads = lwc_rt.threads;
    lwc_rt.threads = NULL;
    pthread_mutex_unlock(&lwc_rt.lock);
    for (struct lwc_thread *t = threads; t; t = t->all_next) {
        lwc_retry_interrupt(t);
        if (atomic_exchange(&t->mail, MAIL_STOP) == MAIL_ASLEEP)
            lwc_futex_wake(&t->mail, 1);
    }
    for (struct lwc_thread *t = threads; t;) {
        struct lwc_thread *next = t->all_next;
        pthread_join(t->pthread, NULL);
        lwc_thread_free(t);
        t = next;
    }
    lwc_trace_shutdown();               /* no capability records any more */
    lwc_scont_free_all();
    for (unsigned i = 0; i < lwc_cap_slots(); i++)
        lwc_copy_stack_free(&lwc_rt.caps[i]);
    lwc_gc_shutdown();
    lwc_overflow_uninstall();
    free(lwc_rt.caps);
    lwc_rt.caps = NULL;
    lwc_rt.ncaps = 0;
    atomic_store(&lwc_rt.ncaps_all, 0);
    if (self && !self->tx.active) {
        pthread_setspecific(thread_key, NULL);
        lwc_tls_thread = NULL;
        lwc_thread_free(self);
    }
    lwc_stack_pool_drain();
    atomic_store(&lwc_rt.stopping, 0);
}
