/* The foreign-loop scheduler (liblwc-loop) driven by hand, as a host would:
 * ticks and their budgets, evaluations, tokens settled from this thread and
 * from others, kills, timers and fds reported to the host, deadlocks, and
 * threads of ws and of a loop sharing MVars. */
#include "harness.h"
#include "loop_done.h"

#include <fcntl.h>
#include <lwc/io.h>
#include <lwc/loop.h>
#include <lwc/mvar.h>
#include <lwc/sched.h>
#include <lwc/ws.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

/* ---- a host ---------------------------------------------------------------------- */

static atomic_int wakes;

static void count_wake(void *ud)
{
    (void)ud;
    atomic_fetch_add(&wakes, 1);
}

static lwc_loop_t *loop_make(void)
{
    lwc_loop_t *l = NULL;
    lwc_loop_config_t cfg = { .wake = count_wake };
    ck_assert_int_eq(lwc_loop_new(&l, &cfg), LWC_OK);
    atomic_store(&wakes, 0);
    return l;
}

/* Tick until nothing is runnable; how many ticks that took. */
static unsigned tick_idle(lwc_loop_t *l, lwc_loop_status_t *st)
{
    unsigned n = 0;
    do {
        ck_assert_int_eq(lwc_loop_tick(l, LWC_NEVER, st), LWC_OK);
        n++;
    } while (st->state == LWC_LOOP_MORE);
    return n;
}

/* ---- ticks ----------------------------------------------------------------------- */

START_TEST(test_idle_tick)
{
    lwc_loop_t *l = loop_make();
    lwc_loop_status_t st;
    ck_assert_int_eq(lwc_loop_tick(l, 0, &st), LWC_OK);
    ck_assert_int_eq(st.state, LWC_LOOP_IDLE);
    ck_assert_uint_eq(st.switches, 0);
    ck_assert_uint_eq(st.threads, 0);
    ck_assert_uint_eq(st.tokens, 0);
    ck_assert_uint_eq(st.fds, 0);
    ck_assert_uint_eq(st.next_deadline, LWC_NEVER);
    ck_assert_int_eq(lwc_loop_timeout_ms(&st), -1);             /* wait for a wake */
    st.next_deadline = lwc_clock_ns() + 1500000;
    ck_assert_int_ge(lwc_loop_timeout_ms(&st), 1);              /* rounded up */
    ck_assert_int_le(lwc_loop_timeout_ms(&st), 2);
    st.next_deadline = 1;
    ck_assert_int_eq(lwc_loop_timeout_ms(&st), 0);              /* passed */
    st.state = LWC_LOOP_MORE;
    st.next_deadline = LWC_NEVER;
    ck_assert_int_eq(lwc_loop_timeout_ms(&st), 0);
    void (*wake)(void *);
    void *ud;
    ck_assert_int_eq(lwc_loop_get_wake(l, &wake, &ud), LWC_OK);
    ck_assert_ptr_eq((void *)(uintptr_t)wake, (void *)(uintptr_t)count_wake);
    ck_assert_int_eq(lwc_loop_free(l), LWC_OK);
}
END_TEST

#define YIELDERS 5
#define LAPS 40
static int laps_done[YIELDERS];

static void yielder(void *arg)
{
    int i = (int)(intptr_t)arg;
    for (int lap = 0; lap < LAPS; lap++) {
        laps_done[i]++;
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    }
}

/* The JS host's rule: no tick runs more than its budget of switches. */
START_TEST(test_switch_budget)
{
    lwc_loop_t *l = loop_make();
    memset(laps_done, 0, sizeof laps_done);
    for (int i = 0; i < YIELDERS; i++)
        ck_assert_int_eq(lwc_loop_spawn(l, yielder, (void *)(intptr_t)i), LWC_OK);
    lwc_loop_status_t st;
    unsigned ticks = 0;
    unsigned long total = 0;
    do {
        ck_assert_int_eq(lwc_loop_tick_limit(l, LWC_NEVER, 7, &st), LWC_OK);
        ck_assert_uint_le(st.switches, 7);
        ck_assert_uint_ge(st.switches, 1);
        total += st.switches;
        ticks++;
    } while (st.state == LWC_LOOP_MORE);
    for (int i = 0; i < YIELDERS; i++)
        ck_assert_int_eq(laps_done[i], LAPS);
    ck_assert_uint_ge(ticks, YIELDERS * LAPS / 7);
    ck_assert_uint_eq(st.threads, 0);
    /* Spawned outside a tick: one wake for all five, none from inside. */
    ck_assert_int_eq(atomic_load(&wakes), 1);
    ck_assert_int_eq(lwc_loop_free(l), LWC_OK);
}
END_TEST

static atomic_int stop_spinning;

static void spinner(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_spinning))
        ck_assert_int_eq(lwc_yield(), LWC_OK);
}

/* A time budget ends a tick whose threads never run out of work. */
START_TEST(test_time_budget)
{
    lwc_loop_t *l = loop_make();
    atomic_store(&stop_spinning, 0);
    ck_assert_int_eq(lwc_loop_spawn(l, spinner, NULL), LWC_OK);
    ck_assert_int_eq(lwc_loop_spawn(l, spinner, NULL), LWC_OK);
    lwc_loop_status_t st;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(lwc_loop_tick(l, 1000000, &st), LWC_OK);
        ck_assert_int_eq(st.state, LWC_LOOP_MORE);
        ck_assert_uint_gt(st.switches, 0);
        ck_assert_uint_eq(st.threads, 2);
    }
    atomic_store(&stop_spinning, 1);
    tick_idle(l, &st);
    ck_assert_uint_eq(st.threads, 0);
    ck_assert_int_eq(lwc_loop_free(l), LWC_OK);
}
END_TEST

static lwc_loop_t *the_loop;
static int inner_err, inner_state;

static void ticks_inside(void *arg)
{
    (void)arg;
    lwc_loop_status_t st;
    inner_err = lwc_loop_tick(the_loop, LWC_NEVER, &st);
    inner_state = st.state;
    ck_assert_ptr_eq(lwc_loop_self(), the_loop);
    ck_assert_str_eq(lwc_sched_name(), "loop");
    ck_assert(lwc_scont_has_scheduler(lwc_scont_self()));
}

START_TEST(test_reentrant_tick)
{
    the_loop = loop_make();
    inner_err = -100;
    ck_assert_int_eq(lwc_loop_spawn(the_loop, ticks_inside, NULL), LWC_OK);
    lwc_loop_status_t st;
    tick_idle(the_loop, &st);
    ck_assert_int_eq(inner_err, LWC_OK);
    ck_assert_int_eq(inner_state, LWC_LOOP_BUSY);
    ck_assert_ptr_null(lwc_loop_self());
    ck_assert_int_eq(lwc_loop_free(the_loop), LWC_OK);
}
END_TEST

/* ---- evaluations and tokens ---------------------------------------------------------- */

static lwc_word_t add_one(void *arg)
{
    ck_assert_int_eq(lwc_yield(), LWC_OK);
    return (lwc_word_t)(uintptr_t)arg + 1;
}

static lwc_loop_t *freed_from_done;
static int free_in_done;

static void free_in_done_cb(int err, lwc_word_t result, void *ud)
{
    (void)err, (void)result, (void)ud;
    free_in_done = lwc_loop_free(freed_from_done);
}

static lwc_token_t *free_tok;

static lwc_word_t awaits_free_tok(void *arg)
{
    (void)arg;
    lwc_word_t v = 0;
    lwc_token_await(free_tok, &v);
    return v;
}

START_TEST(test_free_from_done_is_refused)
{
    freed_from_done = loop_make();
    free_tok = lwc_token_new();
    ck_assert_int_eq(lwc_loop_eval_async(freed_from_done, awaits_free_tok, NULL, free_in_done_cb,
                                         NULL, NULL), LWC_EAGAIN);
    ck_assert_int_eq(lwc_token_resolve(free_tok, 3), LWC_OK);
    free_in_done = 1;
    lwc_loop_status_t st;
    tick_idle(freed_from_done, &st);
    ck_assert_int_eq(free_in_done, LWC_EBUSY);
    ck_assert_int_eq(lwc_loop_free(freed_from_done), LWC_OK);
    lwc_token_free(free_tok);
    freed_from_done = NULL;
}
END_TEST

START_TEST(test_eval_completes_at_once)
{
    lwc_loop_t *l = loop_make();
    struct done d = { 0 };
    lwc_word_t r = 0;
    ck_assert_int_eq(lwc_loop_eval_async(l, add_one, (void *)41, record_done, &d, &r), LWC_OK);
    ck_assert_uint_eq(r, 42);
    ck_assert_int_eq(lwc_loop_eval_sync(l, add_one, (void *)1, &r), LWC_OK);
    ck_assert_uint_eq(r, 2);
    lwc_loop_status_t st;
    tick_idle(l, &st);
    ck_assert_int_eq(d.calls, 0);               /* completed in its own tick: no done */
    ck_assert_int_eq(lwc_loop_free(l), LWC_OK);
}
END_TEST

static lwc_token_t *tok;
static int await_err;

static lwc_word_t await_tok(void *arg)
{
    (void)arg;
    lwc_word_t v = 0;
    await_err = lwc_token_await(tok, &v);
    return await_err == LWC_OK ? v * 2 : (lwc_word_t)(intptr_t)await_err;
}

static void *resolve_later(void *arg)
{
    usleep(LIGHT_RUN() ? 100000 : 10000);
    ck_assert_int_eq(lwc_token_resolve(tok, (lwc_word_t)(uintptr_t)arg), LWC_OK);
    return NULL;
}

/* Wait as a host does: for a wake, or until the deadline (a short sleep stands in). */
static void host_wait_for_wake(int before)
{
    while (atomic_load(&wakes) == before)
        usleep(1000);
}

START_TEST(test_token_from_another_thread)
{
    lwc_loop_t *l = loop_make();
    tok = lwc_token_new();
    ck_assert_ptr_nonnull(tok);
    struct done d = { 0 };
    ck_assert_int_eq(lwc_loop_eval_async(l, await_tok, NULL, record_done, &d, NULL), LWC_EAGAIN);
    lwc_loop_status_t st;
    ck_assert_int_eq(lwc_loop_pending(l, &st), LWC_OK);
    ck_assert_int_eq(st.state, LWC_LOOP_IDLE);
    ck_assert_uint_eq(st.tokens, 1);
    ck_assert_uint_eq(st.threads, 1);
    ck_assert_int_eq(lwc_token_state(tok), LWC_TOKEN_PENDING);
    ck_assert_int_eq(atomic_load(&wakes), 1);   /* pending: look at the loop again */
    tick_idle(l, &st);
    pthread_t p;
    ck_assert_int_eq(pthread_create(&p, NULL, resolve_later, (void *)21), 0);
    host_wait_for_wake(1);
    ck_assert_int_eq(d.calls, 0);
    tick_idle(l, &st);
    pthread_join(p, NULL);
    ck_assert_int_eq(d.calls, 1);
    ck_assert_int_eq(d.err, LWC_OK);
    ck_assert_uint_eq(d.result, 42);
    ck_assert_uint_eq(st.tokens, 0);
    ck_assert_int_eq(lwc_token_state(tok), LWC_TOKEN_RESOLVED);
    ck_assert_int_eq(lwc_token_resolve(tok, 1), LWC_ESTATE);    /* settled once */
    lwc_token_free(tok);
    ck_assert_int_eq(lwc_loop_free(l), LWC_OK);
}
END_TEST

START_TEST(test_token_reject_and_early_settle)
{
    lwc_loop_t *l = loop_make();
    tok = lwc_token_new();
    struct done d = { 0 };
    ck_assert_int_eq(lwc_loop_eval_async(l, await_tok, NULL, record_done, &d, NULL), LWC_EAGAIN);
    lwc_loop_status_t st;
    tick_idle(l, &st);
    int before = atomic_load(&wakes);
    ck_assert_int_eq(lwc_token_reject(tok, LWC_EKILLED), LWC_OK);
    ck_assert_int_eq(atomic_load(&wakes), before + 1);  /* settled outside a tick */
    tick_idle(l, &st);
    ck_assert_int_eq(d.calls, 1);
    ck_assert_int_eq(await_err, LWC_EKILLED);
    lwc_token_free(tok);
    /* Settled before the await: no wait at all. */
    tok = lwc_token_new();
    ck_assert_int_eq(lwc_token_resolve(tok, 5), LWC_OK);
    lwc_word_t r = 0;
    ck_assert_int_eq(lwc_loop_eval_sync(l, await_tok, NULL, &r), LWC_OK);
    ck_assert_uint_eq(r, 10);
    lwc_token_free(tok);
    ck_assert_int_eq(lwc_loop_free(l), LWC_OK);
}
END_TEST

static lwc_scont_t *parked;

static lwc_word_t await_tok_noting(void *arg)
{
    parked = lwc_scont_self();
    return await_tok(arg);
}

START_TEST(test_kill_while_parked)
{
    lwc_loop_t *l = loop_make();
    tok = lwc_token_new();
    struct done d = { 0 };
    ck_assert_int_eq(lwc_loop_eval_async(l, await_tok_noting, NULL, record_done, &d, NULL),
                     LWC_EAGAIN);
    ck_assert_int_eq(lwc_kill(parked), LWC_OK);
    parked = NULL;                  /* static data: it would keep the struct's next SCont */
    ck_assert_int_ge(atomic_load(&wakes), 1);
    lwc_loop_status_t st;
    tick_idle(l, &st);
    ck_assert_int_eq(d.calls, 1);
    ck_assert_int_eq(await_err, LWC_EKILLED);
    ck_assert_int_eq(lwc_token_state(tok), LWC_TOKEN_CANCELED);
    ck_assert_int_eq(lwc_token_resolve(tok, 1), LWC_ECANCELED);   /* into nothing, and says so */
    lwc_token_free(tok);
    ck_assert_int_eq(lwc_loop_free(l), LWC_OK);
}
END_TEST

START_TEST(test_free_awaited_token)
{
    lwc_loop_t *l = loop_make();
    tok = lwc_token_new();
    struct done d = { 0 };
    ck_assert_int_eq(lwc_loop_eval_async(l, await_tok, NULL, record_done, &d, NULL), LWC_EAGAIN);
    lwc_token_free(tok);                        /* the waiter frees it */
    lwc_loop_status_t st;
    tick_idle(l, &st);
    ck_assert_int_eq(await_err, LWC_ECANCELED);
    ck_assert_int_eq(d.calls, 1);
    ck_assert_int_eq(lwc_loop_free(l), LWC_OK);
}
END_TEST

static atomic_int finished_later;

static lwc_word_t await_then_note(void *arg)
{
    lwc_word_t r = await_tok(arg);
    atomic_store(&finished_later, 1);
    return r;
}

START_TEST(test_sync_would_block)
{
    lwc_loop_t *l = loop_make();
    tok = lwc_token_new();
    atomic_store(&finished_later, 0);
    lwc_word_t r = 7;
    ck_assert_int_eq(lwc_loop_eval_sync(l, await_then_note, NULL, &r), LWC_EWOULDBLOCK);
    ck_assert_uint_eq(r, 7);
    ck_assert_int_eq(lwc_loop_free(l), LWC_EBUSY);   /* its thread goes on */
    ck_assert_int_eq(lwc_token_resolve(tok, 3), LWC_OK);
    lwc_loop_status_t st;
    tick_idle(l, &st);
    ck_assert_int_eq(atomic_load(&finished_later), 1);
    lwc_token_free(tok);
    ck_assert_int_eq(lwc_loop_free(l), LWC_OK);
}
END_TEST

/* Scenario 24: a thread awaiting a token is a root; idle ticks (and the
 * passes they may run) leave it alone, and the host resolves it later. */
static lwc_mvar_t *private_mv;

static lwc_word_t await_with_private_mvar(void *arg)
{
    lwc_mvar_t *mv = lwc_mvar_new();
    lwc_word_t r = await_tok(arg);
    ck_assert_int_eq(lwc_mvar_put(mv, r), LWC_OK);
    lwc_word_t v;
    ck_assert_int_eq(lwc_mvar_take(mv, &v), LWC_OK);
    lwc_mvar_free(mv);
    return v;
}

START_TEST(test_tokens_are_roots)
{
    lwc_loop_t *l = loop_make();
    tok = lwc_token_new();
    struct done d = { 0 };
    ck_assert_int_eq(lwc_loop_eval_async(l, await_with_private_mvar, NULL, record_done, &d, NULL),
                     LWC_EAGAIN);
    lwc_loop_status_t st;
    for (int i = 0; i < 5; i++) {
        tick_idle(l, &st);
        ck_assert_int_eq(lwc_gc(), 0);
        usleep(1000);
    }
    ck_assert_int_eq(d.calls, 0);
    ck_assert_int_eq(lwc_token_resolve(tok, 8), LWC_OK);
    tick_idle(l, &st);
    ck_assert_int_eq(d.calls, 1);
    ck_assert_int_eq(d.err, LWC_OK);
    ck_assert_uint_eq(d.result, 16);
    lwc_token_free(tok);
    ck_assert_int_eq(lwc_loop_free(l), LWC_OK);
    (void)private_mv;
}
END_TEST

/* ---- deadlocks ------------------------------------------------------------------------ */

static lwc_mvar_t *global_mv;           /* static data: a root, so never unreachable */

static lwc_word_t take_global(void *arg)
{
    (void)arg;
    lwc_word_t v;
    return (lwc_word_t)(intptr_t)lwc_mvar_take(global_mv, &v);
}

static lwc_word_t take_private(void *arg)
{
    (void)arg;
    lwc_mvar_t *mv = lwc_mvar_new();
    lwc_word_t v;
    int err = lwc_mvar_take(mv, &v);
    lwc_mvar_free(mv);
    return (lwc_word_t)(intptr_t)err;
}

static void quiet_report(const char *report, void *arg)
{
    (void)report;
    (*(int *)arg)++;
}

START_TEST(test_deadlock_completes_eval)
{
    lwc_loop_t *l = loop_make();
    int reports = 0;
    lwc_set_deadlock_report(quiet_report, &reports);
    /* Blocked on an MVar nothing else reaches: woken with the error. */
    struct done d = { 0 };
    ck_assert_int_eq(lwc_loop_eval_async(l, take_private, NULL, record_done, &d, NULL), LWC_EAGAIN);
    lwc_loop_status_t st;
    tick_idle(l, &st);
    ck_assert_int_eq(d.calls, 1);
    ck_assert_int_eq(d.err, LWC_OK);
    ck_assert_int_eq((int)(intptr_t)d.result, LWC_EBLOCKED_CONCDS);
    /* Blocked on one the program still reaches: a whole-program deadlock. */
    global_mv = lwc_mvar_new();
    d = (struct done){ 0 };
    ck_assert_int_eq(lwc_loop_eval_async(l, take_global, NULL, record_done, &d, NULL), LWC_EAGAIN);
    tick_idle(l, &st);
    ck_assert_int_eq(d.calls, 1);
    ck_assert_int_eq(d.err, LWC_EDEADLOCK);
    ck_assert_int_eq(reports, 1);
    ck_assert_int_eq(lwc_loop_eval_sync(l, take_global, NULL, NULL), LWC_EDEADLOCK);
    lwc_set_deadlock_report(NULL, NULL);
    lwc_mvar_free(global_mv);
    ck_assert_int_eq(lwc_loop_free(l), LWC_OK);
}
END_TEST

/* ---- timers and fds ------------------------------------------------------------------- */

static lwc_word_t nap(void *arg)
{
    return (lwc_word_t)(intptr_t)lwc_sleep_ns((uint64_t)(uintptr_t)arg);
}

START_TEST(test_timer_is_the_hosts)
{
    lwc_loop_t *l = loop_make();
    struct done d = { 0 };
    uint64_t start = lwc_clock_ns();
    ck_assert_int_eq(lwc_loop_eval_async(l, nap, (void *)5000000, record_done, &d, NULL),
                     LWC_EAGAIN);
    lwc_loop_status_t st;
    ck_assert_int_eq(lwc_loop_pending(l, &st), LWC_OK);
    ck_assert_int_eq(st.state, LWC_LOOP_IDLE);
    ck_assert_uint_ge(st.next_deadline, start + 5000000);
    while (!d.calls) {
        uint64_t now = lwc_clock_ns();
        if (st.next_deadline > now)
            usleep((useconds_t)((st.next_deadline - now) / 1000 + 1));
        tick_idle(l, &st);
    }
    ck_assert_int_eq(d.err, LWC_OK);
    ck_assert_int_eq((int)d.result, LWC_OK);
    ck_assert_uint_ge(lwc_clock_ns(), start + 5000000);
    ck_assert_int_eq(lwc_loop_free(l), LWC_OK);
}
END_TEST

static int pipefd[2];

static lwc_word_t wait_read(void *arg)
{
    (void)arg;
    unsigned rev = 0;
    int err = lwc_wait_fd(pipefd[0], LWC_FD_READ, LWC_NEVER, &rev);
    return err == LWC_OK ? rev : (lwc_word_t)(intptr_t)err;
}

START_TEST(test_fds_are_the_hosts)
{
    lwc_loop_t *l = loop_make();
    ck_assert_int_eq(pipe(pipefd), 0);
    struct done d = { 0 };
    ck_assert_int_eq(lwc_loop_eval_async(l, wait_read, NULL, record_done, &d, NULL), LWC_EAGAIN);
    lwc_loop_status_t st;
    ck_assert_int_eq(lwc_loop_pending(l, &st), LWC_OK);
    ck_assert_uint_eq(st.fds, 1);
    lwc_loop_fd_t fds[4];
    ck_assert_uint_eq(lwc_loop_fds(l, fds, 4), 1);
    ck_assert_int_eq(fds[0].fd, pipefd[0]);
    ck_assert_uint_eq(fds[0].events, LWC_FD_READ);
    int backend = lwc_loop_backend_fd(l);
    ck_assert_int_ge(backend, 0);
    struct pollfd p = { backend, POLLIN, 0 };
    ck_assert_int_eq(poll(&p, 1, 0), 0);        /* nothing ready yet */
    ck_assert_int_eq(write(pipefd[1], "x", 1), 1);
    ck_assert_int_eq(poll(&p, 1, 10000), 1);    /* the host sees it ... */
    tick_idle(l, &st);                          /* ... and the tick serves it */
    ck_assert_int_eq(d.calls, 1);
    ck_assert_uint_eq(d.result, LWC_FD_READ);
    ck_assert_uint_eq(st.fds, 0);
    close(pipefd[0]);
    close(pipefd[1]);
    ck_assert_int_eq(lwc_loop_free(l), LWC_OK);
}
END_TEST

/* ---- with ws ----------------------------------------------------------------------------- */

static lwc_mvar_t *answer;

static void ws_work(void *arg)
{
    lwc_word_t sum = 0;
    for (uintptr_t i = 1; i <= (uintptr_t)arg; i++) {
        sum += i;
        if (i % 64 == 0)
            ck_assert_int_eq(lwc_ws_yield(), LWC_OK);
    }
    ck_assert_int_eq(lwc_mvar_put(answer, sum), LWC_OK);
}

static lwc_word_t take_answer(void *arg)
{
    (void)arg;
    lwc_word_t v = 0;
    ck_assert_int_eq(lwc_mvar_take(answer, &v), LWC_OK);
    return v;
}

START_TEST(test_shares_mvars_with_ws)
{
    ck_assert_int_eq(lwc_init(&(lwc_config_t){ .ncaps = 2 }), LWC_OK);
    lwc_ws_t *ws = lwc_ws_new(2);
    ck_assert_ptr_nonnull(ws);
    lwc_loop_t *l = loop_make();
    answer = lwc_mvar_new();
    /* The work first: a host that starts it after its loop's thread blocks
     * has let the loop go idle with nothing that could wake it (a deadlock,
     * by the rules of lwc/loop.h). */
    unsigned n = scaled(100000);
    ck_assert_int_eq(lwc_ws_spawn(ws, ws_work, (void *)(uintptr_t)n), LWC_OK);
    struct done d = { 0 };
    int r = lwc_loop_eval_async(l, take_answer, NULL, record_done, &d, NULL);
    ck_assert(r == LWC_EAGAIN || r == LWC_OK);
    if (r == LWC_OK)
        d.calls = 1, d.result = (lwc_word_t)n * (n + 1) / 2;
    lwc_loop_status_t st;
    while (!d.calls) {
        int before = atomic_load(&wakes);
        tick_idle(l, &st);
        if (!d.calls)
            host_wait_for_wake(before);         /* the ws thread's put wakes the host */
    }
    ck_assert_uint_eq(d.result, (lwc_word_t)n * (n + 1) / 2);
    if (r == LWC_EAGAIN)
        ck_assert_int_ge(atomic_load(&wakes), 1);   /* from the ws thread's put */
    ck_assert_int_eq(lwc_loop_free(l), LWC_OK);
    lwc_ws_free(ws);
    lwc_mvar_free(answer);
    lwc_shutdown();
}
END_TEST

/* ---- a JavaScript host ------------------------------------------------------------------
 * One thread, a macrotask queue, and after each macrotask a tick (the
 * microtask checkpoint) with a budget of switches.  The wake hook queues a
 * tick as a macrotask (queueMicrotask), from any OS thread.  The lwc side:
 * an evaluation that awaits a token a later macrotask resolves (setTimeout),
 * then one a pthread resolves, while workers compute in small steps; every
 * tick must return within its budget. */

#define JS_BUDGET 4
#define JS_TASKS 64

struct js_host {
    pthread_mutex_t lock;               /* the queue: the wake hook may come from a pthread */
    void (*task[JS_TASKS])(struct js_host *, long);
    long arg[JS_TASKS];
    unsigned head, tail;
    lwc_loop_t *loop;
    lwc_token_t *timer_token, *thread_token;
    long ticks, macrotasks;
    struct done d;
};

static void js_queue(struct js_host *h, void (*fn)(struct js_host *, long), long arg)
{
    pthread_mutex_lock(&h->lock);
    ck_assert_uint_lt(h->tail - h->head, JS_TASKS);
    h->task[h->tail % JS_TASKS] = fn;
    h->arg[h->tail % JS_TASKS] = arg;
    h->tail++;
    pthread_mutex_unlock(&h->lock);
}

static void js_nothing(struct js_host *h, long arg) { (void)h, (void)arg; }

static void js_wake(void *ud)
{
    js_queue(ud, js_nothing, 0);        /* any macrotask is followed by a tick */
}

/* setTimeout(resolve, n macrotasks) */
static void js_timer(struct js_host *h, long left)
{
    if (left > 0)
        js_queue(h, js_timer, left - 1);
    else
        ck_assert_int_eq(lwc_token_resolve(h->timer_token, 100), LWC_OK);
}

static atomic_int js_steps;

static void js_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 50; i++) {
        atomic_fetch_add(&js_steps, 1);
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    }
}

static lwc_word_t js_main(void *arg)
{
    struct js_host *h = arg;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(lwc_spawn(js_worker, NULL), LWC_OK);
    lwc_word_t a = 0, b = 0;
    ck_assert_int_eq(lwc_token_await(h->timer_token, &a), LWC_OK);
    ck_assert_int_eq(lwc_token_await(h->thread_token, &b), LWC_OK);
    return a + b;
}

static void *js_other_thread(void *arg)
{
    struct js_host *h = arg;
    usleep(LIGHT_RUN() ? 50000 : 5000);
    ck_assert_int_eq(lwc_token_resolve(h->thread_token, 20), LWC_OK);
    return NULL;
}

static void js_start(struct js_host *h, long arg)
{
    (void)arg;
    js_queue(h, js_timer, 10);
    int err = lwc_loop_eval_async(h->loop, js_main, h, record_done, &h->d, NULL);
    ck_assert_int_eq(err, LWC_EAGAIN);
}

START_TEST(test_js_host)
{
    struct js_host h = { .lock = PTHREAD_MUTEX_INITIALIZER };
    atomic_store(&js_steps, 0);
    lwc_loop_config_t cfg = { .wake = js_wake, .wake_ud = &h, .eval_max_switches = JS_BUDGET };
    ck_assert_int_eq(lwc_loop_new(&h.loop, &cfg), LWC_OK);
    h.timer_token = lwc_token_new();
    h.thread_token = lwc_token_new();
    pthread_t p;
    ck_assert_int_eq(pthread_create(&p, NULL, js_other_thread, &h), 0);
    js_queue(&h, js_start, 0);
    lwc_loop_status_t st = { .threads = 1 };
    while (!h.d.calls || st.threads) {
        pthread_mutex_lock(&h.lock);
        bool empty = h.head == h.tail;
        void (*fn)(struct js_host *, long) = empty ? NULL : h.task[h.head % JS_TASKS];
        long arg = empty ? 0 : h.arg[h.head % JS_TASKS];
        h.head += !empty;
        pthread_mutex_unlock(&h.lock);
        if (empty) {
            usleep(100);                /* the event loop waits */
            continue;
        }
        fn(&h, arg);
        h.macrotasks++;
        ck_assert_int_eq(lwc_loop_tick_limit(h.loop, LWC_NEVER, JS_BUDGET, &st), LWC_OK);
        ck_assert_uint_le(st.switches, JS_BUDGET);     /* within its budget, every time */
        h.ticks++;
        if (st.state == LWC_LOOP_MORE)
            js_queue(&h, js_nothing, 0);                /* setImmediate */
    }
    pthread_join(p, NULL);
    ck_assert_int_eq(h.d.err, LWC_OK);
    ck_assert_uint_eq(h.d.result, 120);
    ck_assert_int_eq(atomic_load(&js_steps), 150);
    ck_assert_int_gt(h.ticks, 150 / JS_BUDGET);
    lwc_token_free(h.timer_token);
    lwc_token_free(h.thread_token);
    ck_assert_int_eq(lwc_loop_free(h.loop), LWC_OK);
}
END_TEST

/* ---- misuse ------------------------------------------------------------------------------- */

static void *tick_elsewhere(void *arg)
{
    lwc_loop_status_t st;
    ck_assert_int_eq(lwc_loop_tick(arg, 0, &st), LWC_EINVAL);
    ck_assert_int_eq(lwc_loop_eval_sync(arg, add_one, NULL, NULL), LWC_EINVAL);
    ck_assert_int_eq(lwc_loop_free(arg), LWC_EINVAL);
    return NULL;
}

static void nothing(void *arg) { (void)arg; }

START_TEST(test_bad_input)
{
    ck_assert_int_eq(lwc_loop_new(NULL, NULL), LWC_EINVAL);
    ck_assert_int_eq(lwc_loop_tick(NULL, 0, NULL), LWC_EINVAL);
    ck_assert_int_eq(lwc_loop_free(NULL), LWC_EINVAL);
    ck_assert_int_eq(lwc_loop_spawn(NULL, nothing, NULL), LWC_EINVAL);
    ck_assert_int_eq(lwc_token_resolve(NULL, 0), LWC_EINVAL);
    ck_assert_int_eq(lwc_token_await(NULL, NULL), LWC_EINVAL);
    ck_assert(!lwc_scont_has_scheduler(NULL));
    lwc_token_free(NULL);
    lwc_loop_t *l = loop_make();
    ck_assert_int_eq(lwc_loop_spawn(l, NULL, NULL), LWC_EINVAL);
    ck_assert_int_eq(lwc_loop_eval_async(l, NULL, NULL, NULL, NULL, NULL), LWC_EINVAL);
    lwc_token_t *t = lwc_token_new();
    ck_assert_int_eq(lwc_token_await(t, NULL), LWC_EINVAL);    /* not a thread */
    lwc_token_free(t);
    pthread_t p;
    ck_assert_int_eq(pthread_create(&p, NULL, tick_elsewhere, l), 0);
    pthread_join(p, NULL);
    /* Spawning from another OS thread is allowed, and wakes the host. */
    ck_assert_int_eq(lwc_loop_spawn(l, nothing, NULL), LWC_OK);
    ck_assert_int_eq(lwc_loop_free(l), LWC_EBUSY);
    lwc_loop_status_t st;
    tick_idle(l, &st);
    ck_assert_int_eq(lwc_loop_free(l), LWC_OK);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("loop");
    TCase *tc = tcase_create("loop");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_idle_tick);
    tcase_add_test(tc, test_switch_budget);
    tcase_add_test(tc, test_time_budget);
    tcase_add_test(tc, test_reentrant_tick);
    tcase_add_test(tc, test_eval_completes_at_once);
    tcase_add_test(tc, test_free_from_done_is_refused);
    tcase_add_test(tc, test_token_from_another_thread);
    tcase_add_test(tc, test_token_reject_and_early_settle);
    tcase_add_test(tc, test_kill_while_parked);
    tcase_add_test(tc, test_free_awaited_token);
    tcase_add_test(tc, test_sync_would_block);
    tcase_add_test(tc, test_tokens_are_roots);
    tcase_add_test(tc, test_deadlock_completes_eval);
    tcase_add_test(tc, test_timer_is_the_hosts);
    tcase_add_test(tc, test_fds_are_the_hosts);
    tcase_add_test(tc, test_shares_mvars_with_ws);
    tcase_add_test(tc, test_js_host);
    tcase_add_test(tc, test_bad_input);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
