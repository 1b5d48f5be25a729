/* A scheduler of every pattern the README's "Threads blocked forever" allows
 * (issue 19, point 5), written here on the public API alone, and the
 * detector finding a partial and a whole-program deadlock in each, by
 * itself (no lwc_gc call), on 1, 2 and 3 capabilities:
 *
 *  - how a capability idles: in the switch_to_next upcall's retry, or in an
 *    idle SCont of its own (IDLE_IN_SCONT: one per capability, made ahead of
 *    time with no upcalls, each sleeping in a retry of its own switch; on 3
 *    capabilities some never run);
 *  - where its bookkeeping lives: malloc, or lwc_alloc memory (TRACED: the
 *    scheduler, its nodes and a list of every thread it made, each node's
 *    word for its thread hidden with lwc_hide);
 *  - how threads are made: when spawned, or ahead of time (AHEAD: a pool of
 *    LWC_SCONT_DORMANT SConts handed over with lwc_unblock_thread, some
 *    never).
 *
 * Blocked threads report through plain ints and an MVar in a static; the
 * MVars they block on are their own. */
#include "../unit/harness.h"

#include <stdio.h>
#include <lwc/mvar.h>
#include <string.h>

enum { IDLE_IN_SCONT = 1, TRACED = 2, AHEAD = 4, PATTERNS = 8 };

#define MAX_CAPS 3
#define POOL 8                  /* AHEAD: workers made ahead; the tests use fewer */
#define MADE 32

struct pnode {
    lwc_pvar_t    next;         /* the run queue, or the stack of idle SConts */
    struct pnode *all_next;     /* every thread of the scheduler */
    lwc_hidden_t  s;            /* its thread: bookkeeping, not a way to wake it */
    void        (*fn)(void *);
    void         *arg;
    struct pat   *p;
};

struct pat {
    lwc_pvar_t    head, tail;   /* runnable threads */
    lwc_pvar_t    idle;         /* IDLE_IN_SCONT: idle SConts not running */
    int           flags;
    lwc_upcalls_t up;
    pthread_mutex_t lock;
    struct pnode *all;          /* every node, for the end */
    struct pnode *pool[POOL];   /* AHEAD: not handed over yet */
    int           npool;
    lwc_hidden_t  made[MADE];   /* handles to release at the end */
    int           nmade;
};

static void *pat_alloc(const struct pat *p, size_t n)
{
    void *m = p && p->flags & TRACED ? lwc_alloc(n) : calloc(1, n);
    ck_assert_ptr_nonnull(m);
    return m;
}

static void pat_free(const struct pat *p, void *m)
{
    if (p->flags & TRACED)
        lwc_free(m);
    else
        free(m);
}

static void push(lwc_tx_t *tx, struct pat *p, struct pnode *n)
{
    lwc_pvar_write(tx, &n->next, 0);
    struct pnode *last = (struct pnode *)lwc_pvar_read(tx, &p->tail);
    lwc_pvar_write(tx, last ? &last->next : &p->head, (lwc_word_t)n);
    lwc_pvar_write(tx, &p->tail, (lwc_word_t)n);
}

static struct pnode *pop(lwc_tx_t *tx, struct pat *p)
{
    struct pnode *n = (struct pnode *)lwc_pvar_read(tx, &p->head);
    if (n) {
        struct pnode *next = (struct pnode *)lwc_pvar_read(tx, &n->next);
        lwc_pvar_write(tx, &p->head, (lwc_word_t)next);
        if (!next)
            lwc_pvar_write(tx, &p->tail, 0);
    }
    return n;
}

static void idle_push(lwc_tx_t *tx, struct pat *p, struct pnode *n)
{
    lwc_pvar_write(tx, &n->next, lwc_pvar_read(tx, &p->idle));
    lwc_pvar_write(tx, &p->idle, (lwc_word_t)n);
}

static struct pnode *idle_pop(lwc_tx_t *tx, struct pat *p)
{
    struct pnode *n = (struct pnode *)lwc_pvar_read(tx, &p->idle);
    if (n)
        lwc_pvar_write(tx, &p->idle, lwc_pvar_read(tx, &n->next));
    return n;
}

static lwc_scont_t *thread_of(struct pnode *n)
{
    return lwc_unhide(n->s);
}

static lwc_scont_t *pat_next(lwc_tx_t *tx, lwc_scont_t *self, lwc_status_t why, void *env)
{
    (void)self; (void)why;
    struct pat *p = env;
    struct pnode *n = pop(tx, p);
    if (n)
        return thread_of(n);
    if (p->flags & IDLE_IN_SCONT) {
        n = idle_pop(tx, p);                /* one per capability: one is free */
        ck_assert_ptr_nonnull(n);
        return thread_of(n);
    }
    lwc_tx_retry(tx);                       /* idle here */
    return NULL;
}

static void pat_unblock(lwc_tx_t *tx, lwc_scont_t *s, void *env)
{
    push(tx, env, lwc_scont_get_local(s));
}

/* ---- idle SConts ------------------------------------------------------------- */

static lwc_scont_t *idle_switch(lwc_tx_t *tx, lwc_scont_t *self, void *arg, lwc_status_t *st)
{
    struct pat *p = arg;
    struct pnode *n = pop(tx, p);
    if (!n)
        lwc_tx_retry(tx);                   /* its capability sleeps here */
    idle_push(tx, p, lwc_scont_get_local(self));
    *st = LWC_BLOCKED_ON_SCHED;
    return thread_of(n);
}

/* Runs until lwc_shutdown, asleep in its switch whenever there is nothing
 * to run.  Asleep, it is a root (Note [Work] in substrate/detect_roots.c),
 * and the frames of each switch lie where the last one's did: scrubbed
 * first, they keep no thread it switched to before (Note [Scrubbing the
 * stack] in substrate/detect.c). */
static void idle_main(void *arg)
{
    struct pnode *n = arg;
    for (;;) {
        lwc_stack_scrub();
        ck_assert_int_eq(lwc_switch(idle_switch, n->p), LWC_OK);
    }
}

/* ---- threads ------------------------------------------------------------------- */

static void run_node(void *arg)
{
    struct pnode *n = arg;
    n->fn(n->arg);
}

static struct pnode *node_new(struct pat *p, void (*body)(void *), unsigned sflags,
                              const lwc_upcalls_t *up)
{
    struct pnode *n = pat_alloc(p, sizeof *n);
    n->p = p;
    lwc_scont_attr_t a = { .upcalls = up, .flags = sflags };
    lwc_scont_t *s = lwc_scont_new(body, n, &a);
    ck_assert_ptr_nonnull(s);
    lwc_scont_set_local(s, n);
    n->s = lwc_hide(s);
    pthread_mutex_lock(&p->lock);
    n->all_next = p->all;
    p->all = n;
    ck_assert_int_lt(p->nmade, MADE);
    p->made[p->nmade++] = lwc_hide(s);
    pthread_mutex_unlock(&p->lock);
    return n;
}

static lwc_word_t queue_body(lwc_tx_t *tx, void *arg)
{
    struct pnode *n = arg;
    if (n->p->flags & AHEAD)
        lwc_unblock_thread(tx, thread_of(n));   /* hands the dormant SCont over */
    else
        push(tx, n->p, n);
    return 0;
}

static lwc_word_t helper_pop(lwc_tx_t *tx, void *arg)
{
    struct pat *p = arg;
    return (lwc_word_t)(p->flags & IDLE_IN_SCONT ? idle_pop(tx, p) : pop(tx, p));
}

static lwc_word_t helper_back(lwc_tx_t *tx, void *arg)
{
    struct pnode *n = arg;
    if (n->p->flags & IDLE_IN_SCONT)
        idle_push(tx, n->p, n);
    else
        push(tx, n->p, n);
    return 0;
}

/* Put an idle capability to work, if there is one: an idle SCont, or a
 * queued thread, started on it. */
static void start_helper(struct pat *p)
{
    struct pnode *n;
    ck_assert_int_eq(lwc_atomically(helper_pop, p, (lwc_word_t *)&n), LWC_OK);
    if (!n)
        return;
    int err = lwc_cap_start(thread_of(n));
    if (err == LWC_OK)
        return;
    ck_assert_int_eq(err, LWC_EBUSY);
    ck_assert_int_eq(lwc_atomically(helper_back, n, NULL), LWC_OK);
}

static void pat_spawn(struct pat *p, void (*fn)(void *), void *arg)
{
    struct pnode *n;
    if (p->flags & AHEAD) {
        pthread_mutex_lock(&p->lock);
        ck_assert_int_gt(p->npool, 0);
        n = p->pool[--p->npool];
        pthread_mutex_unlock(&p->lock);
    } else {
        n = node_new(p, run_node, 0, &p->up);
    }
    n->fn = fn;
    n->arg = arg;
    ck_assert_int_eq(lwc_atomically(queue_body, n, NULL), LWC_OK);
    start_helper(p);
    lwc_stack_scrub();
}

static struct pat *pat_new(int flags)
{
    struct pat probe = { .flags = flags };
    struct pat *p = pat_alloc(&probe, sizeof *p);
    p->flags = flags;
    p->up = (lwc_upcalls_t){ pat_next, pat_unblock, p };
    pthread_mutex_init(&p->lock, NULL);
    if (flags & IDLE_IN_SCONT) {
        static const lwc_upcalls_t none;
        for (unsigned i = 0; i < lwc_cap_count(); i++) {
            struct pnode *n = node_new(p, idle_main, 0, &none);
            ck_assert_int_eq(lwc_atomically(helper_back, n, NULL), LWC_OK);
        }
    }
    if (flags & AHEAD)
        for (int i = 0; i < POOL; i++)
            p->pool[p->npool++] = node_new(p, run_node, LWC_SCONT_DORMANT, &p->up);
    return p;
}

/* From the host, once its SCont is done: the capabilities, asleep in a
 * retry, stop, and every record goes. */
static void pat_end(struct pat *p)
{
    for (int i = 0; i < p->nmade; i++)
        lwc_scont_release(lwc_unhide(p->made[i]));
    lwc_shutdown();
    for (struct pnode *n = p->all, *next; n; n = next) {
        next = n->all_next;
        lwc_pvar_fini(&n->next);
        pat_free(p, n);
    }
    lwc_pvar_fini(&p->head);
    lwc_pvar_fini(&p->tail);
    lwc_pvar_fini(&p->idle);
    pthread_mutex_destroy(&p->lock);
    pat_free(p, p);
}

static struct pat *pat_start(int flags, unsigned caps)
{
    ck_assert_int_eq(lwc_init(&(lwc_config_t){ .ncaps = caps }), LWC_OK);
    return pat_new(flags);
}

/* The host's thread runs fn(p) as an SCont of p, and returns when it is done. */
static int pat_eval(struct pat *p, void (*fn)(void *))
{
    struct pnode *n = node_new(p, run_node, 0, &p->up);
    n->fn = fn;
    n->arg = p;
    return lwc_eval(thread_of(n));
}

static int flags_of(int i) { return i % PATTERNS; }
static unsigned caps_of(int i) { return 1 + (unsigned)i / PATTERNS; }

/* ---- a partial deadlock ---------------------------------------------------------
 * Three threads block, each on an MVar of its own; the host's thread waits
 * for their reports.  Every capability idles: the pass that runs by itself
 * wakes the three with LWC_EBLOCKED_CONCDS, and they report it. */

#define VICTIMS 3
static lwc_mvar_t *reports;             /* a static: a root */

static void victim(void *arg)
{
    (void)arg;
    lwc_mvar_t *mine = lwc_mvar_new();
    ck_assert_ptr_nonnull(mine);
    lwc_word_t v;
    int err = lwc_mvar_take(mine, &v);
    lwc_mvar_free(mine);
    ck_assert_int_eq(lwc_mvar_put(reports, (lwc_word_t)(intptr_t)err), LWC_OK);
}

static void partial(void *arg)
{
    struct pat *p = arg;
    for (int i = 0; i < VICTIMS; i++)
        pat_spawn(p, victim, NULL);
    for (int i = 0; i < VICTIMS; i++) {
        lwc_word_t err;
        ck_assert_int_eq(lwc_mvar_take(reports, &err), LWC_OK);
        ck_assert_int_eq((int)(intptr_t)err, LWC_EBLOCKED_CONCDS);
    }
}

START_TEST(test_partial_deadlock_found)
{
    /* In ASan and TSan builds the first run of an idle SCont, switched to
     * from a victim, leaves the victim's stack address in the idle SCont's
     * top frames (192 bytes below its top: LWC_GC_DEBUG=1 says so), and an
     * idle SCont asleep is a root: the conservative scan keeps that victim.
     * Native and valgrind runs have no such word; the whole-program test
     * runs these patterns in every build. */
    if (SANITIZED && flags_of(_i) & IDLE_IN_SCONT)
        return;
    struct pat *p = pat_start(flags_of(_i), caps_of(_i));
    reports = lwc_mvar_new();
    ck_assert_int_eq(pat_eval(p, partial), LWC_OK);
    lwc_mvar_free(reports);
    reports = NULL;
    pat_end(p);
}
END_TEST

/* ---- a whole-program deadlock ----------------------------------------------------
 * The host's SCont starts a thread that finishes, then takes from an MVar in
 * a static that nobody will fill.  Nothing can run: its take returns
 * LWC_EDEADLOCK, and so does lwc_eval, after the report. */

static lwc_mvar_t *never;
static atomic_int whole_err, quick_done;
static char report_text[2048];
static uint64_t host_id;

static void keep_report(const char *report, void *arg)
{
    (void)arg;
    snprintf(report_text, sizeof report_text, "%s", report);
}

static void quick(void *arg)
{
    (void)arg;
    atomic_store(&quick_done, 1);
}

static void whole(void *arg)
{
    struct pat *p = arg;
    host_id = lwc_scont_id(lwc_scont_self());
    pat_spawn(p, quick, NULL);
    lwc_word_t v;
    atomic_store(&whole_err, lwc_mvar_take(never, &v));
}

START_TEST(test_whole_program_deadlock_found)
{
    struct pat *p = pat_start(flags_of(_i), caps_of(_i));
    never = lwc_mvar_new();
    atomic_store(&whole_err, LWC_OK);
    atomic_store(&quick_done, 0);
    report_text[0] = 0;
    lwc_set_deadlock_report(keep_report, NULL);
    ck_assert_int_eq(pat_eval(p, whole), LWC_EDEADLOCK);
    lwc_set_deadlock_report(NULL, NULL);
    ck_assert_int_eq(atomic_load(&whole_err), LWC_EDEADLOCK);
    ck_assert_int_eq(atomic_load(&quick_done), 1);
    char want[96];
    snprintf(want, sizeof want, "SCont %llu: blocked on a data structure, on MVar %p",
             (unsigned long long)host_id, (void *)never);
    ck_assert_msg(strstr(report_text, want), "report: %s", report_text);
    lwc_mvar_free(never);
    never = NULL;
    pat_end(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("patterns");
    TCase *tc = tcase_create("patterns");
    tcase_set_timeout(tc, 60);
    /* PATTERN=n runs the n-th of each (LWC_GC_DEBUG=1 says what each pass saw). */
    int lo = 0, hi = PATTERNS * MAX_CAPS;
    if (getenv("PATTERN"))
        hi = (lo = atoi(getenv("PATTERN"))) + 1;
    tcase_add_loop_test(tc, test_partial_deadlock_found, lo, hi);
    tcase_add_loop_test(tc, test_whole_program_deadlock_found, lo, hi);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
