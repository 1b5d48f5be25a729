/* The whole-program deadlock report, where it goes (lwc_set_deadlock_report),
 * and what LWC_GC_DEBUG prints after each pass. */
#include "config.h"

#include <lwc/detect.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "detect.h"

#if LWC_VALGRIND
#include <valgrind/memcheck.h>
#endif

static const char *status_name(lwc_status_t st)
{
    static const char *names[] = { "running", "runnable", "blocked on a data structure",
                                   "completed" };
    return names[st & 3];
}

void lwc_gc_debug_report(struct pass *ps)
{
    for (size_t i = 0; i < ps->nsc; i++) {
        struct sc *c = &ps->sc[i];
        unsigned long long id = lwc_scont_id(c->s);
        if (c->root)
            fprintf(stderr, "lwc: gc: SCont %llu is a root (%s)\n", id, status_name(c->st));
        if (c->stranded) {
            fprintf(stderr, "lwc: gc: SCont %llu is stranded in a scheduler nothing reaches\n", id);
            continue;
        }
        bool blocked = c->st == LWC_BLOCKED_ON_CONCDS;
        if (c->root || (!blocked && c->st != LWC_BLOCKED_ON_SCHED))
            continue;
        if (!c->marked) {
            fprintf(stderr, "lwc: gc: SCont %llu is blocked and unreachable\n", id);
            continue;
        }
        fprintf(stderr, "lwc: gc: SCont %llu is %s and reachable, first through %s", id,
                blocked ? "blocked" : "runnable", c->kept_by);
        if (c->kept_in && c->kept_in->stack.map)    /* a copy SCont's: somewhere in its frames */
            fprintf(stderr, " (SCont %llu, %td bytes below its stack's top)",
                    (unsigned long long)lwc_scont_id(c->kept_in),
                    lwc_gc_stack_top(c->kept_in) - (const char *)c->kept_at);
        else
            fprintf(stderr, " (%p)", c->kept_at);
#if LWC_VALGRIND
        VALGRIND_MAKE_MEM_DEFINED(&c->kept_word, sizeof c->kept_word);    /* read from anywhere */
#endif
        const char *w = (const char *)c->kept_word;
        if (!blocked && w == (const char *)lwc_scont_env(c->s))
            fprintf(stderr, ": the word %p is its scheduler's env\n", (const void *)w);
        else if (w >= (const char *)c->s && w < (const char *)(c->s + 1))
            fprintf(stderr, ": the word %p points into its struct\n", (const void *)w);
        else
            fprintf(stderr, ": the word %p points %td bytes below its stack's top\n",
                    (const void *)w, lwc_gc_stack_top(c->s) - w);
    }
}

/* Appends to buf at *len, within cap, like snprintf; *len may pass cap,
 * which ends the writing. */
static void put(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    if (*len >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    *len += n > 0 ? (size_t)n : 0;
}

/* "SCont 7 "name": blocked on a data structure, on MVar 0x...": the start
 * of a line of the deadlock report and of the thread view. */
static void put_scont(char *buf, size_t cap, size_t *len, const struct sc *c)
{
    lwc_scont_t *s = c->s;
    put(buf, cap, len, "lwc:   SCont %llu%s%s%s: %s", (unsigned long long)lwc_scont_id(s),
        s->name ? " \"" : "", s->name ? s->name : "", s->name ? "\"" : "",
        c->dormant ? "dormant (made ahead, not yet handed over)" : status_name(c->st));
    if (c->st != LWC_BLOCKED_ON_CONCDS)
        return;
    if (s->retry_nodes)
        put(buf, cap, len, ", in a PTM retry on %u PVars", s->retry_nnodes);
    else if (s->wait_what && s->wait_obj)
        put(buf, cap, len, ", on %s %p", s->wait_what, s->wait_obj);
    else if (s->wait_what)
        put(buf, cap, len, ", on %s", s->wait_what);
}

void lwc_gc_report(struct pass *ps)
{
    size_t cap = 256 + ps->nsc * 160, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return;
    put(buf, cap, &len, "lwc: deadlock: no thread can run, and nothing outside lwc can wake "
                        "one (no pin, timer or foreign call)\n");
    for (size_t i = 0; i < ps->nsc && len < cap; i++) {
        struct sc *c = &ps->sc[i];
        if (c->st != LWC_BLOCKED_ON_CONCDS && !c->stranded)
            continue;
        put_scont(buf, cap, &len, c);
        if (c->stranded)
            put(buf, cap, &len, ", in a scheduler that nothing reaches (none adopts it)");
        put(buf, cap, &len, "%s\n",
            atomic_load(&c->s->host_waits) ? " (the host waits for it)" : "");
    }
    pthread_mutex_lock(&lwc_detector.report_lock);
    lwc_report_fn fn = lwc_detector.report;
    void *arg = lwc_detector.report_arg;
    pthread_mutex_unlock(&lwc_detector.report_lock);
    if (fn)
        fn(buf, arg);
    else
        fputs(buf, stderr);
    free(buf);
}


void lwc_set_deadlock_report(lwc_report_fn fn, void *arg)
{
    pthread_mutex_lock(&lwc_detector.report_lock);
    lwc_detector.report = fn;
    lwc_detector.report_arg = arg;
    pthread_mutex_unlock(&lwc_detector.report_lock);
}

/* ---- the thread view ------------------------------------------------------------------ */

/* Note [Naming schedulers]
 * ~~~~~~~~~~~~~~~~~~~~~~~~
 * The substrate knows a scheduler only by its switch_to_next and env.  A
 * scheduler library names itself for diagnostics with lwc_sched_set_namer:
 * a function of the env, since one switch_to_next may serve instances of
 * several kinds (the kit's serves rr and every policy).  The table is a
 * few slots filled once each, read without a lock by the view. */
#define NAMERS_MAX 16
static struct namer {
    _Atomic(void *) fn;
    const char *(*name)(void *env);
} namers[NAMERS_MAX];

int lwc_sched_set_namer(lwc_scont_t *(*switch_to_next)(lwc_tx_t *, lwc_scont_t *, lwc_status_t,
                                                       void *),
                        const char *(*name)(void *env))
{
    if (!switch_to_next || !name)
        return LWC_EINVAL;
    for (unsigned i = 0; i < NAMERS_MAX; i++) {
        void *seen = NULL;
        if (atomic_load(&namers[i].fn) == (void *)switch_to_next)
            return LWC_OK;
        if (atomic_compare_exchange_strong(&namers[i].fn, &seen, (void *)switch_to_next)) {
            namers[i].name = name;
            return LWC_OK;
        }
    }
    return LWC_ENOMEM;
}

static const char *sched_name_of(const lwc_upcalls_t *u)
{
    for (unsigned i = 0; i < NAMERS_MAX; i++)
        if (atomic_load(&namers[i].fn) == (void *)u->switch_to_next && namers[i].name)
            return namers[i].name(u->env);
    return NULL;
}

struct view { char *buf; size_t cap, len; };

static void put_scheduler(struct view *v, const struct sc *c)
{
    lwc_upcalls_t u;
    if (lwc_scont_get_upcalls(c->s, &u) != LWC_OK || !u.switch_to_next) {
        put(v->buf, v->cap, &v->len, "; no scheduler");
        return;
    }
    const char *name = sched_name_of(&u);
    put(v->buf, v->cap, &v->len, "; scheduler %s (switch_to_next %p, env %p)",
        name ? name : "unnamed", (void *)u.switch_to_next, u.env);
}

static void put_verdict(struct view *v, const struct sc *c)
{
    if (c->stranded)
        put(v->buf, v->cap, &v->len, "; stranded: its scheduler is unreachable\n");
    else if (c->root)
        put(v->buf, v->cap, &v->len, "; a root (%s)\n",
            c->st == LWC_RUNNING ? "it runs"
            : c->st == LWC_BLOCKED_ON_SCHED ? "runnable in a live scheduler"
            : "in a foreign call, or its wake-up under way");
    else if (c->marked)
        put(v->buf, v->cap, &v->len, "; reachable, first through %s\n", c->kept_by);
    else if (c->st == LWC_BLOCKED_ON_CONCDS)
        put(v->buf, v->cap, &v->len, "; unreachable: blocked for good\n");
    else
        put(v->buf, v->cap, &v->len, "; unreachable\n");
}

static bool view_alloc(struct view *v, size_t nsc)
{
    v->cap = 512 + nsc * 320;
    return (v->buf = malloc(v->cap)) != NULL;
}

/* The world would not stop: the SConts as their records say, without the
 * detector's verdict.  Read while they run: a line may be a moment stale. */
static void view_unstopped(struct view *v, unsigned stuck)
{
    pthread_mutex_lock(&lwc_rt.lock);
    size_t n = 0;
    for (struct scont_batch *b = lwc_rt.scont_batches; b; b = b->next)
        n += b->used;
    if (!view_alloc(v, n)) {
        pthread_mutex_unlock(&lwc_rt.lock);
        return;
    }
    put(v->buf, v->cap, &v->len,
        "lwc: capability %u did not stop within a second (it runs code that reaches no switch "
        "point: a loop, or a blocking call lwc does not know of); the SConts, without the "
        "detector's verdict:\n", stuck);
    for (struct scont_batch *b = lwc_rt.scont_batches; b; b = b->next)
    for (lwc_scont_t *s = b->s; s < b->s + b->used; s++) {
        if (!atomic_load_explicit(&s->alive, memory_order_acquire) || s->completed)
            continue;
        struct sc c = { .s = s, .st = status_of(lwc_pvar_load(&s->status)) };
        put_scont(v->buf, v->cap, &v->len, &c);
        put_scheduler(v, &c);
        put(v->buf, v->cap, &v->len, "\n");
    }
    pthread_mutex_unlock(&lwc_rt.lock);
}

static void view_pass(struct pass *ps, unsigned stuck, void *arg)
{
    struct view *v = arg;
    if (!ps) {
        view_unstopped(v, stuck);
        return;
    }
    if (!view_alloc(v, ps->nsc))
        return;
    put(v->buf, v->cap, &v->len, "lwc: %zu SConts\n", ps->nsc);
    for (size_t i = 0; i < ps->nsc; i++) {
        put_scont(v->buf, v->cap, &v->len, &ps->sc[i]);
        put_scheduler(v, &ps->sc[i]);
        put_verdict(v, &ps->sc[i]);
    }
}

int lwc_sconts_print(int fd)
{
    struct view v = { NULL, 0, 0 };
    int err = lwc_gc_look(view_pass, &v);
    if (err == LWC_OK && !v.buf)
        err = LWC_ENOMEM;
    if (err != LWC_OK) {
        free(v.buf);
        return err;
    }
    size_t n = v.len < v.cap ? v.len : v.cap - 1;
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, v.buf + off, n - off);
        if (w <= 0) {
            free(v.buf);
            return LWC_EINVAL;
        }
        off += (size_t)w;
    }
    free(v.buf);
    return LWC_OK;
}
