/* PTM from plain OS threads: no lwc_init needed. */
#include "harness.h"

#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string.h>

static lwc_word_t read_write(lwc_tx_t *tx, void *arg)
{
    lwc_pvar_t *pv = arg;
    lwc_word_t v = lwc_pvar_read(tx, pv);
    lwc_pvar_write(tx, pv, v + 1);
    ck_assert_uint_eq(lwc_pvar_read(tx, pv), v + 1);   /* reads its own write */
    return v;
}

START_TEST(test_read_write_commit)
{
    lwc_pvar_t *pv = lwc_pvar_new(41);
    ck_assert_ptr_nonnull(pv);
    lwc_word_t old = 0;
    ck_assert_int_eq(lwc_atomically(read_write, pv, &old), LWC_OK);
    ck_assert_uint_eq(old, 41);
    ck_assert_uint_eq(lwc_pvar_peek(pv), 42);
    ck_assert_int_eq(lwc_atomically(read_write, pv, NULL), LWC_OK);
    ck_assert_uint_eq(lwc_pvar_peek(pv), 43);
    lwc_pvar_write(NULL, pv, 7);                       /* a transaction of one write */
    ck_assert_uint_eq(lwc_pvar_peek(pv), 7);
    ck_assert_uint_eq(lwc_pvar_read(NULL, pv), 7);
    lwc_pvar_free(pv);
    lwc_pvar_free(NULL);
}
END_TEST

static lwc_word_t nested(lwc_tx_t *tx, void *arg)
{
    (void)tx;
    return (lwc_word_t)lwc_atomically(read_write, arg, NULL);
}

START_TEST(test_bad_arguments)
{
    lwc_pvar_t *pv = lwc_pvar_new(0);
    ck_assert_int_eq(lwc_atomically(NULL, NULL, NULL), LWC_EINVAL);
    lwc_word_t r = 0;
    ck_assert_int_eq(lwc_atomically(nested, pv, &r), LWC_OK);
    ck_assert_int_eq((int)r, LWC_EINVAL);              /* transactions do not nest */
    ck_assert_uint_eq(lwc_pvar_peek(pv), 0);
    ck_assert_int_eq(lwc_switch(NULL, NULL), LWC_EINVAL);
    lwc_pvar_free(pv);
}
END_TEST

/* Note [Slabs] in substrate/traced.c: PVars from many slabs, freed in
 * an order of their own and made again, keep their values apart; a pointer
 * lwc_pvar_new never returned, or a second free, is refused with a warning,
 * not freed. */
START_TEST(test_pvars_many_freed_in_any_order)
{
    enum { N = 2000 };
    static lwc_pvar_t *pv[N];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++)
            ck_assert_ptr_nonnull(pv[i] = lwc_pvar_new((lwc_word_t)(i * 3 + round)));
        for (int i = 0; i < N; i++)
            ck_assert_uint_eq(lwc_pvar_peek(pv[i]), (lwc_word_t)(i * 3 + round));
        for (int i = 0; i < N; i += 2)              /* the evens, then the odds */
            lwc_pvar_free(pv[i]);
        for (int i = 1; i < N; i += 2)
            ck_assert_uint_eq(lwc_pvar_peek(pv[i]), (lwc_word_t)(i * 3 + round));
        for (int i = 1; i < N; i += 2)
            lwc_pvar_free(pv[i]);
    }
    lwc_pvar_t *kept = lwc_pvar_new(7), *gone = lwc_pvar_new(8);
    lwc_pvar_free(gone);
    lwc_pvar_free(gone);                            /* twice: refused */
    lwc_pvar_free((lwc_pvar_t *)((char *)kept + 8));  /* not a PVar's address */
    static _Alignas(64) char not_made[64];
    lwc_pvar_free((lwc_pvar_t *)not_made);
    ck_assert_uint_eq(lwc_pvar_peek(kept), 7);
    lwc_pvar_free(kept);
}
END_TEST

/* A PVar inside a struct of the caller's (lwc_pvar_init): transactions read
 * and write it like any other, a retry on it is woken by a write from
 * another OS thread, and lwc_pvar_free refuses it. */
struct embedding { char before; lwc_pvar_t pv; lwc_pvar_t second; char after; };

static lwc_word_t wait_embedded(lwc_tx_t *tx, void *arg)
{
    struct embedding *e = arg;
    lwc_word_t v = lwc_pvar_read(tx, &e->pv);
    if (!v)
        lwc_tx_retry(tx);
    lwc_pvar_write(tx, &e->second, v + 1);
    return v;
}

static void *set_embedded(void *arg)
{
    struct embedding *e = arg;
    lwc_pvar_write(NULL, &e->pv, 41);
    return NULL;
}

START_TEST(test_pvar_embedded)
{
    struct embedding e = { .before = 'b', .after = 'a' };
    lwc_pvar_init(&e.pv, 0);
    lwc_pvar_init(&e.second, 5);
    ck_assert_uint_eq(lwc_pvar_peek(&e.second), 5);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, set_embedded, &e), 0);
    lwc_word_t r = 0;
    ck_assert_int_eq(lwc_atomically(wait_embedded, &e, &r), LWC_OK);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_uint_eq(r, 41);
    ck_assert_uint_eq(lwc_pvar_peek(&e.second), 42);
    ck_assert_int_eq(e.before, 'b');
    ck_assert_int_eq(e.after, 'a');
    lwc_pvar_free(&e.pv);                           /* not lwc_pvar_new's: refused */
    ck_assert_uint_eq(lwc_pvar_peek(&e.pv), 41);
    lwc_pvar_fini(&e.pv);
    lwc_pvar_fini(&e.second);
    lwc_pvar_fini(NULL);
}
END_TEST

/* GHC stm047: a retry that read nothing can never be woken. */
static lwc_word_t retry_nothing(lwc_tx_t *tx, void *arg)
{
    (void)arg;
    lwc_tx_retry(tx);
}

/* GHC stm048: the retry rolls back the write before it. */
static lwc_word_t write_then_retry(lwc_tx_t *tx, void *arg)
{
    lwc_pvar_write(tx, arg, 99);
    lwc_tx_retry(tx);
}

/* Fill the callee-saved registers with junk, as a body may before it is left
 * by an abort (Note [Leaving a body] in ptm/ptm.c). */
static void clobber_callee_saved(void)
{
#if defined(__x86_64__)
    __asm__ __volatile__("mov $0x5a5a5a5a, %%ebx\n\tmov %%rbx, %%r12\n\tmov %%rbx, %%r13\n\t"
                         "mov %%rbx, %%r14\n\tmov %%rbx, %%r15"
                         ::: "rbx", "r12", "r13", "r14", "r15");
#elif defined(__aarch64__)
    __asm__ __volatile__("mov x19, #0x5a5a\n\tmov x20, x19\n\tmov x21, x19\n\tmov x22, x19\n\t"
                         "mov x23, x19\n\tmov x24, x19\n\tmov x25, x19\n\tmov x26, x19\n\t"
                         "mov x27, x19\n\tmov x28, x19\n\tfmov d8, x19\n\tfmov d9, x19\n\t"
                         "fmov d10, x19\n\tfmov d11, x19\n\tfmov d12, x19\n\tfmov d13, x19\n\t"
                         "fmov d14, x19\n\tfmov d15, x19"
                         ::: "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27",
                             "x28", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15");
#endif
}

START_TEST(test_retry_nothing_to_wait_for)
{
    lwc_pvar_t *pv = lwc_pvar_new(5);
    for (int i = 0; i < 3; i++)                        /* and again: it carries on */
        ck_assert_int_eq(lwc_atomically(retry_nothing, NULL, NULL), LWC_EBLOCKED_CONCDS);
    ck_assert_int_eq(lwc_atomically(write_then_retry, pv, NULL), LWC_EBLOCKED_CONCDS);
    ck_assert_uint_eq(lwc_pvar_peek(pv), 5);
    lwc_pvar_free(pv);
}
END_TEST

/* ---- a forced re-run: another thread commits in the middle of the body ----- */

struct rerun {
    lwc_pvar_t *a, *c;
    atomic_int runs, deferred, go, done;
};

static void *commit_a(void *arg)
{
    struct rerun *r = arg;
    while (!atomic_load(&r->go))
        sched_yield();
    lwc_pvar_write(NULL, r->a, 1000);
    atomic_store(&r->done, 1);
    return NULL;
}

static void count_defer(void *arg)
{
    atomic_fetch_add(&((struct rerun *)arg)->deferred, 1);
}

static lwc_word_t rerun_body(lwc_tx_t *tx, void *arg)
{
    struct rerun *r = arg;
    lwc_word_t a = lwc_pvar_read(tx, r->a);
    if (atomic_fetch_add(&r->runs, 1) == 0) {
        atomic_store(&r->go, 1);                       /* let the other thread commit */
        while (!atomic_load(&r->done))
            sched_yield();
    }
    lwc_tx_defer(tx, count_defer, r);
    lwc_pvar_write(tx, r->c, a + 1);
    return a;
}

START_TEST(test_conflict_reruns_and_defer_runs_once)
{
    struct rerun r = { .a = lwc_pvar_new(1), .c = lwc_pvar_new(0) };
    pthread_t t;
    pthread_create(&t, NULL, commit_a, &r);
    lwc_word_t a = 0;
    ck_assert_int_eq(lwc_atomically(rerun_body, &r, &a), LWC_OK);
    pthread_join(t, NULL);
    ck_assert_int_eq(atomic_load(&r.runs), 2);         /* the first run saw a stale a */
    ck_assert_uint_eq(a, 1000);
    ck_assert_uint_eq(lwc_pvar_peek(r.c), 1001);
    ck_assert_int_eq(atomic_load(&r.deferred), 1);     /* not for the abandoned run */
    lwc_pvar_free(r.a);
    lwc_pvar_free(r.c);
}
END_TEST

/* ---- big transactions grow past the inline sets ---------------------------------- */

#define BIG 300
struct big { lwc_pvar_t *pv[BIG]; atomic_int deferred; };

static void big_defer(void *arg)
{
    atomic_fetch_add(&((struct big *)arg)->deferred, 1);
}

static lwc_word_t big_body(lwc_tx_t *tx, void *arg)
{
    struct big *b = arg;
    lwc_word_t sum = 0;
    for (int i = 0; i < BIG; i++) {
        sum += lwc_pvar_read(tx, b->pv[i]);
        lwc_pvar_write(tx, b->pv[i], (lwc_word_t)i * 2);
    }
    for (int i = 0; i < 20; i++)
        lwc_tx_defer(tx, big_defer, b);
    return sum;
}

START_TEST(test_large_transaction)
{
    struct big b;
    atomic_init(&b.deferred, 0);
    for (int i = 0; i < BIG; i++)
        b.pv[i] = lwc_pvar_new(1);
    lwc_word_t sum = 0;
    ck_assert_int_eq(lwc_atomically(big_body, &b, &sum), LWC_OK);
    ck_assert_uint_eq(sum, BIG);
    ck_assert_int_eq(atomic_load(&b.deferred), 20);
    for (int i = 0; i < BIG; i++) {
        ck_assert_uint_eq(lwc_pvar_peek(b.pv[i]), (lwc_word_t)i * 2);
        lwc_pvar_free(b.pv[i]);
    }
}
END_TEST

/* ---- opacity: a body never sees x + y != 0 ---------------------------------------- */

struct pair { lwc_pvar_t *x, *y; atomic_int stop, torn; unsigned iters; };

static lwc_word_t move_pair(lwc_tx_t *tx, void *arg)
{
    struct pair *p = arg;
    lwc_word_t x = lwc_pvar_read(tx, p->x);
    lwc_pvar_write(tx, p->x, x + 1);
    lwc_pvar_write(tx, p->y, lwc_pvar_read(tx, p->y) - 1);
    return 0;
}

static lwc_word_t check_pair(lwc_tx_t *tx, void *arg)
{
    struct pair *p = arg;
    lwc_word_t x = lwc_pvar_read(tx, p->x);
    spin_for(50);                                      /* widen the window */
    lwc_word_t y = lwc_pvar_read(tx, p->y);
    if (x + y != 0)
        atomic_fetch_add(&p->torn, 1);                 /* inside the body: opacity */
    return x;
}

static void *pair_writer(void *arg)
{
    struct pair *p = arg;
    for (unsigned i = 0; i < p->iters; i++)
        lwc_atomically(move_pair, p, NULL);
    atomic_store(&p->stop, 1);
    return NULL;
}

START_TEST(test_opacity)
{
    struct pair p = { .x = lwc_pvar_new(0), .y = lwc_pvar_new(0), .iters = scaled(200000) };
    pthread_t w;
    pthread_create(&w, NULL, pair_writer, &p);
    unsigned checks = 0;
    while (!atomic_load(&p.stop) || checks < 100) {
        lwc_atomically(check_pair, &p, NULL);
        checks++;
    }
    pthread_join(w, NULL);
    ck_assert_int_eq(atomic_load(&p.torn), 0);
    ck_assert_uint_eq(lwc_pvar_peek(p.x), p.iters);
    ck_assert_uint_eq(lwc_pvar_peek(p.x) + lwc_pvar_peek(p.y), 0);
    lwc_pvar_free(p.x);
    lwc_pvar_free(p.y);
}
END_TEST

/* ---- write skew: two transactions that read both PVars and write different ones ----
 * Doctors on call (x and y): each may leave only while the other is on call.  Each
 * reads both and writes its own, so the write sets never overlap: only validation
 * of the reads stands between them and both leaving.  Serializability keeps
 * x + y >= 1 in every state a transaction sees. */

struct skew { lwc_pvar_t *on_call[2]; unsigned iters; _Atomic unsigned broken; };
struct doctor { struct skew *k; int me; };

static lwc_word_t leave_if_covered(lwc_tx_t *tx, void *arg)
{
    struct doctor *d = arg;
    lwc_word_t mine = lwc_pvar_read(tx, d->k->on_call[d->me]);
    lwc_word_t other = lwc_pvar_read(tx, d->k->on_call[1 - d->me]);
    if (!(mine && other))
        return 0;
    lwc_pvar_write(tx, d->k->on_call[d->me], 0);
    return 1;
}

static lwc_word_t someone_on_call(lwc_tx_t *tx, void *arg)
{
    struct doctor *d = arg;
    return lwc_pvar_read(tx, d->k->on_call[0]) + lwc_pvar_read(tx, d->k->on_call[1]);
}

static lwc_word_t come_back(lwc_tx_t *tx, void *arg)
{
    struct doctor *d = arg;
    lwc_pvar_write(tx, d->k->on_call[d->me], 1);
    return 0;
}

/* A doctor who left looks before coming back: if both left together, whichever
 * looks first finds nobody on call (the other cannot come back before looking). */
static void *doctor_loop(void *arg)
{
    struct doctor *d = arg;
    for (unsigned i = 0; i < d->k->iters; i++) {
        lwc_word_t left = 0, on_call = 0;
        lwc_atomically(leave_if_covered, d, &left);
        if (!left)
            continue;
        lwc_atomically(someone_on_call, d, &on_call);
        if (on_call == 0)
            atomic_fetch_add(&d->k->broken, 1);
        lwc_atomically(come_back, d, NULL);
    }
    return NULL;
}

START_TEST(test_no_write_skew)
{
    struct skew k = { { lwc_pvar_new(1), lwc_pvar_new(1) }, scaled(200000), 0 };
    struct doctor d[2] = { { &k, 0 }, { &k, 1 } };
    pthread_t th;
    pthread_create(&th, NULL, doctor_loop, &d[1]);
    doctor_loop(&d[0]);
    pthread_join(th, NULL);
    unsigned both_left = atomic_load(&k.broken);
    ck_assert_uint_eq(both_left, 0);
    ck_assert_uint_eq(lwc_pvar_peek(k.on_call[0]) + lwc_pvar_peek(k.on_call[1]), 2);
    lwc_pvar_free(k.on_call[0]);
    lwc_pvar_free(k.on_call[1]);
}
END_TEST

/* ---- the bank: transfers from several OS threads keep the total --------------------- */

static void *teller(void *arg)
{
    teller_loop(arg);
    return NULL;
}

START_TEST(test_bank_invariant_os_threads)
{
    for (unsigned seed = 1; seed <= 8; seed++) {
        struct bank b;
        bank_open(&b, scaled(20000));
        pthread_t th[3];
        struct teller t[3];
        for (int i = 0; i < 3; i++) {
            t[i] = (struct teller){ &b, seed * 7919 + (unsigned)i };
            pthread_create(&th[i], NULL, teller, &t[i]);
        }
        for (int i = 0; i < 3; i++)
            pthread_join(th[i], NULL);
        bank_close(&b);
    }
}
END_TEST

/* ---- retry wake-ups are never lost: a one-slot channel between OS threads ----------- */

struct chan { lwc_pvar_t *slot; unsigned n; };

static void *producer(void *arg)
{
    struct chan *c = arg;
    for (lwc_word_t i = 1; i <= c->n; i++)
        slot_put(c->slot, i);
    return NULL;
}

START_TEST(test_retry_wakeups_not_lost)
{
    struct chan c = { lwc_pvar_new(0), scaled(50000) };
    pthread_t p;
    pthread_create(&p, NULL, producer, &c);
    for (lwc_word_t i = 1; i <= c.n; i++)
        ck_assert_uint_eq(slot_take(c.slot), i);       /* in order, none lost */
    pthread_join(p, NULL);
    ck_assert_uint_eq(lwc_pvar_peek(c.slot), 0);
    lwc_pvar_free(c.slot);
}
END_TEST

/* A retry that read several PVars wakes on a write to any of them. */
struct many { lwc_pvar_t *pv[40]; };

static lwc_word_t wait_any(lwc_tx_t *tx, void *arg)
{
    struct many *m = arg;
    for (int i = 0; i < 40; i++)
        if (lwc_pvar_read(tx, m->pv[i]))
            return (lwc_word_t)i;
    lwc_tx_retry(tx);
}

static void *poke_last(void *arg)
{
    struct many *m = arg;
    spin_for(100000);
    lwc_pvar_write(NULL, m->pv[37], 1);
    return NULL;
}

START_TEST(test_retry_wakes_on_any_read)
{
    struct many m;
    for (int i = 0; i < 40; i++)
        m.pv[i] = lwc_pvar_new(0);
    pthread_t t;
    pthread_create(&t, NULL, poke_last, &m);
    lwc_word_t which = 0;
    ck_assert_int_eq(lwc_atomically(wait_any, &m, &which), LWC_OK);
    ck_assert_uint_eq(which, 37);
    pthread_join(t, NULL);
    for (int i = 0; i < 40; i++)
        lwc_pvar_free(m.pv[i]);
}
END_TEST

/* ---- the commit bias (Note [Biased commit] in ptm/ptm.c) ------------------------------ */

static lwc_word_t bump(lwc_tx_t *tx, void *pv)
{
    lwc_word_t v = lwc_pvar_read(tx, pv);
    lwc_pvar_write(tx, pv, v + 1);
    return v;
}

/* Commit alone until this thread holds the bias; no other thread may be
 * committing.  False where the bias is off: then only a ThreadSanitizer build or
 * LWC_PTM_BIAS=0 may be the reason. */
static bool earn_bias(lwc_pvar_t *pv)
{
    lwc_ptm_stats_t st0, st;
    lwc_ptm_get_stats(&st0);
    if (!st0.bias_enabled) {
        const char *env = getenv("LWC_PTM_BIAS");
        ck_assert(LWC_TSAN || (env && !strcmp(env, "0")));
        return false;
    }
    /* Held already: the caller is the only thread alive that commits (an exited
     * thread releases its bias), so it is the holder. */
    if (st0.bias_grants > st0.bias_revocations)
        return true;
    for (unsigned i = 0; i < (1u << 18); i++) {
        ck_assert_int_eq(lwc_atomically(bump, pv, NULL), LWC_OK);
        lwc_ptm_get_stats(&st);
        if (st.bias_grants > st0.bias_grants)
            return true;
    }
    ck_abort_msg("2^18 commits in a row did not earn the bias (grants %llu revocations %llu)", (unsigned long long)st.bias_grants, (unsigned long long)st.bias_revocations);
    return false;
}

struct bumper { lwc_pvar_t *pv; unsigned n; };

static void *bump_n(void *arg)
{
    struct bumper *b = arg;
    for (unsigned i = 0; i < b->n; i++)
        ck_assert_int_eq(lwc_atomically(bump, b->pv, NULL), LWC_OK);
    return NULL;
}

/* The holder commits while another thread does: the other revokes the bias,
 * and not one increment of either is lost. */
START_TEST(test_bias_revoked_nothing_lost)
{
    lwc_pvar_t *pv = lwc_pvar_new(0);
    for (int round = 0; round < 3; round++) {
        if (!earn_bias(pv))
            break;
        lwc_ptm_stats_t before, after;
        lwc_ptm_get_stats(&before);
        lwc_word_t base = lwc_pvar_peek(pv);
        struct bumper b = { pv, scaled(100000) };
        pthread_t th;
        pthread_create(&th, NULL, bump_n, &b);
        bump_n(&b);
        pthread_join(th, NULL);
        ck_assert_uint_eq(lwc_pvar_peek(pv), base + 2 * (lwc_word_t)b.n);
        lwc_ptm_get_stats(&after);
        ck_assert_uint_gt(after.bias_revocations, before.bias_revocations);
    }
    lwc_pvar_free(pv);
}
END_TEST

static void *put_later(void *arg)
{
    struct chan *c = arg;
    spin_for(200000);
    slot_put(c->slot, c->n);
    return NULL;
}

static void *take_later(void *arg)
{
    struct chan *c = arg;
    c->n = (unsigned)slot_take(c->slot);
    return NULL;
}

/* A retry inside a direct transaction sleeps and is woken by a thread that
 * must revoke the bias to write (Note [Retry wake-up]); the other way round, a
 * sleeper is woken by a direct commit. */
START_TEST(test_bias_retry_wakeups)
{
    lwc_pvar_t *pv = lwc_pvar_new(0);
    struct chan c = { lwc_pvar_new(0), 0 };
    for (unsigned round = 1; round <= 3; round++) {
        if (!earn_bias(pv))
            break;
        c.n = round;
        pthread_t th;
        pthread_create(&th, NULL, put_later, &c);
        ck_assert_uint_eq(slot_take(c.slot), round);        /* the holder sleeps */
        pthread_join(th, NULL);
        if (!earn_bias(pv))
            break;
        pthread_create(&th, NULL, take_later, &c);
        spin_for(200000);
        slot_put(c.slot, 42);                               /* the holder wakes it */
        pthread_join(th, NULL);
        ck_assert_uint_eq(c.n, 42);
    }
    lwc_pvar_free(c.slot);
    lwc_pvar_free(pv);
}
END_TEST

static unsigned runs;

static lwc_word_t retry_first_run(lwc_tx_t *tx, void *pv)
{
    lwc_word_t v = lwc_pvar_read(tx, pv);
    if (runs++ == 0) {
        clobber_callee_saved();
        lwc_tx_retry(tx);
    }
    return v;
}

/* Values live across the call sit in callee-saved registers: more of them
 * than there are caller-saved ones to spare. */
static __attribute__((noinline)) uint64_t retry_once(lwc_pvar_t *pv, uint64_t seed)
{
    uint64_t a = seed, b = seed * 3, c = seed ^ 0x77, d = seed + 11, e = seed * 5;
    double f = (double)seed * 0.5;
    runs = 0;
    lwc_word_t v = 0;
    ck_assert_int_eq(lwc_atomically(retry_first_run, pv, &v), LWC_OK);
    ck_assert_uint_eq(runs, 2);
    ck_assert_uint_eq(v, lwc_pvar_peek(pv));
    return a + b + c + d + e + (uint64_t)f;
}

/* Note [Unlogged reads]: a direct body that retries is run again with its
 * reads logged before anything sleeps, and that run is a transaction like any
 * other: here it no longer retries, so it commits, and nothing sleeps (a
 * sleep would never end: nobody writes).  The first run left its body by an
 * abort with the callee-saved registers full of junk: lwc_tx_run and its
 * caller still find theirs (Note [Leaving a body]). */
START_TEST(test_bias_retry_runs_again_logged)
{
    lwc_pvar_t *pv = lwc_pvar_new(0);
    for (uint64_t seed = 1000; seed < 1003; seed++) {
        if (!earn_bias(pv))
            break;
        uint64_t want = seed + seed * 3 + (seed ^ 0x77) + seed + 11 + seed * 5 +
                        (uint64_t)((double)seed * 0.5);
        ck_assert_uint_eq(retry_once(pv, seed), want);
    }
    lwc_pvar_free(pv);
}
END_TEST

static void *earn_and_exit(void *pv)
{
    earn_bias(pv);
    return NULL;
}

/* A thread that exits holding the bias releases it with its record. */
START_TEST(test_bias_released_at_thread_exit)
{
    lwc_pvar_t *pv = lwc_pvar_new(0);
    lwc_ptm_stats_t before, after;
    lwc_ptm_get_stats(&before);
    pthread_t th;
    pthread_create(&th, NULL, earn_and_exit, pv);
    pthread_join(th, NULL);
    lwc_ptm_get_stats(&after);
    if (after.bias_enabled) {
        ck_assert_uint_gt(after.bias_grants, before.bias_grants);
        ck_assert_uint_gt(after.bias_revocations, before.bias_revocations);
    }
    lwc_word_t v = lwc_pvar_peek(pv);
    ck_assert_int_eq(lwc_atomically(bump, pv, NULL), LWC_OK);
    ck_assert_uint_eq(lwc_pvar_peek(pv), v + 1);
    lwc_pvar_free(pv);
}
END_TEST

/* ---- in-place transactions (Note [In-place transactions] in ptm/ptm.c) ------------- */

struct scribble { lwc_pvar_t **pvs; unsigned npvs, rounds; bool abandon; };

/* Writes every PVar `rounds` times (the last round writes 1000 + i), reading
 * its own writes back; then, if asked, leaves with an error: lwc_switch_to
 * from a plain OS thread is LWC_EINVAL, and nothing may be committed. */
static lwc_word_t scribble(lwc_tx_t *tx, void *arg)
{
    struct scribble *sc = arg;
    for (unsigned r = 1; r <= sc->rounds; r++)
        for (unsigned i = 0; i < sc->npvs; i++) {
            lwc_word_t v = r == sc->rounds ? 1000 + i : r * 7 + i;
            lwc_pvar_write(tx, sc->pvs[i], v);
            ck_assert_uint_eq(lwc_pvar_read(tx, sc->pvs[i]), v);
        }
    if (sc->abandon)
        lwc_switch_to(tx, NULL, LWC_BLOCKED_ON_SCHED);
    return 0;
}

/* An in-place body stores as it goes; leaving it with an error puts every
 * PVar back as it found it, however often it wrote each and whether or not
 * its log had to grow (1, 3 and 200 PVars; 1, 2 and 50 rounds).  Run beside
 * the same bodies committed: the values are the last round's. */
START_TEST(test_in_place_abort_restores)
{
    enum { MAX = 200 };
    lwc_pvar_t *pvs[MAX];
    for (unsigned i = 0; i < MAX; i++)
        pvs[i] = lwc_pvar_new(i);
    static const unsigned sizes[] = { 1, 3, MAX }, rounds[] = { 1, 2, 50 };
    for (unsigned a = 0; a < 3; a++)
        for (unsigned b = 0; b < 3; b++) {
            if (!earn_bias(pvs[0]))
                break;
            lwc_word_t before[MAX];
            for (unsigned i = 0; i < MAX; i++)
                before[i] = lwc_pvar_peek(pvs[i]);
            struct scribble sc = { pvs, sizes[a], rounds[b], true };
            ck_assert_int_eq(lwc_atomically(scribble, &sc, NULL), LWC_EINVAL);
            for (unsigned i = 0; i < MAX; i++)
                ck_assert_uint_eq(lwc_pvar_peek(pvs[i]), before[i]);
            sc.abandon = false;
            ck_assert_int_eq(lwc_atomically(scribble, &sc, NULL), LWC_OK);
            for (unsigned i = 0; i < MAX; i++)
                ck_assert_uint_eq(lwc_pvar_peek(pvs[i]), i < sizes[a] ? 1000 + i : before[i]);
        }
    for (unsigned i = 0; i < MAX; i++)
        lwc_pvar_free(pvs[i]);
}
END_TEST

struct peeker { lwc_pvar_t *pv; _Atomic int stop; unsigned seen_bad, peeks; };

static void *peek_loop(void *arg)
{
    struct peeker *p = arg;
    while (!atomic_load(&p->stop)) {
        if (lwc_pvar_peek(p->pv) == 1)
            p->seen_bad++;
        p->peeks++;
    }
    return NULL;
}

static lwc_word_t write_one_then_fail(lwc_tx_t *tx, void *pv)
{
    lwc_pvar_write(tx, pv, 1);
    lwc_switch_to(tx, NULL, LWC_BLOCKED_ON_SCHED);     /* LWC_EINVAL: abandoned */
    return 0;
}

/* The bias holder stores 1 in place again and again and never commits it;
 * another OS thread peeks all the while and must never see the 1 (it waits
 * while the holder is inside a transaction). */
START_TEST(test_in_place_peek_sees_commits_only)
{
    lwc_pvar_t *pv = lwc_pvar_new(0), *other = lwc_pvar_new(0);
    if (!earn_bias(other)) {
        lwc_pvar_free(pv);
        lwc_pvar_free(other);
        return;
    }
    lwc_ptm_stats_t st0, st;
    lwc_ptm_get_stats(&st0);
    struct peeker p = { .pv = pv };
    pthread_t th;
    pthread_create(&th, NULL, peek_loop, &p);
    for (unsigned i = 0; i < scaled(200000); i++) {
        ck_assert_int_eq(lwc_atomically(write_one_then_fail, pv, NULL), LWC_EINVAL);
        ck_assert_int_eq(lwc_atomically(bump, other, NULL), LWC_OK);   /* keeps the bias */
        if (i % 1024 == 0)
            sched_yield();              /* let the peeker run on one core too */
    }
    atomic_store(&p.stop, 1);
    pthread_join(th, NULL);
    ck_assert_uint_eq(p.seen_bad, 0);
    ck_assert_uint_gt(p.peeks, 0);
    lwc_ptm_get_stats(&st);
    ck_assert_uint_eq(st.bias_revocations, st0.bias_revocations);  /* peeks never revoke */
    ck_assert_uint_eq(lwc_pvar_peek(pv), 0);
    lwc_pvar_free(pv);
    lwc_pvar_free(other);
}
END_TEST

/* ---- misuse names itself ---------------------------------------------------- */

static lwc_tx_t *kept_tx;

static lwc_word_t keep_tx(lwc_tx_t *tx, void *pv)
{
    kept_tx = tx;
    lwc_pvar_write(tx, pv, lwc_pvar_read(tx, pv) + 1);
    return 0;
}

/* Run misuse(arg) in a child: it must die of SIGABRT, saying so on stderr. */
static void dies_named(void (*misuse)(void *), void *arg, const char *says)
{
    int out[2];
    ck_assert_int_eq(pipe(out), 0);
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(out[1], 2);
        misuse(arg);
        _exit(0);                               /* it returned: the parent fails */
    }
    close(out[1]);
    char buf[512] = { 0 };
    size_t got = 0;
    ssize_t n;
    while (got < sizeof buf - 1 && (n = read(out[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)n;
    close(out[0]);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "status %#x", status);
    ck_assert_msg(strstr(buf, says) != NULL, "said: %s", buf);
}

static void retry_null(void *arg)
{
    (void)arg;
    lwc_tx_retry(NULL);
}

static void retry_kept(void *arg)
{
    lwc_pvar_t *pv = arg;
    ck_assert_int_eq(lwc_atomically(keep_tx, pv, NULL), LWC_OK);
    lwc_tx_retry(kept_tx);                      /* its transaction has committed */
}

START_TEST(test_misused_tx_is_named)
{
    lwc_pvar_t *pv = lwc_pvar_new(0);
    dies_named(retry_null, NULL, "lwc_tx_retry((nil)) outside the body of a running transaction");
    dies_named(retry_kept, pv, "outside the body of a running transaction");
    lwc_pvar_free(pv);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ptm");
    TCase *tc = tcase_create("basics");
    tcase_add_test(tc, test_read_write_commit);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_pvars_many_freed_in_any_order);
    tcase_add_test(tc, test_pvar_embedded);
    tcase_add_test(tc, test_retry_nothing_to_wait_for);
    tcase_add_test(tc, test_conflict_reruns_and_defer_runs_once);
    tcase_add_test(tc, test_large_transaction);
    tcase_add_test(tc, test_misused_tx_is_named);
    suite_add_tcase(s, tc);
    tc = tcase_create("concurrent");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_opacity);
    tcase_add_test(tc, test_no_write_skew);
    tcase_add_test(tc, test_bank_invariant_os_threads);
    tcase_add_test(tc, test_retry_wakeups_not_lost);
    tcase_add_test(tc, test_retry_wakes_on_any_read);
    suite_add_tcase(s, tc);
    tc = tcase_create("bias");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_bias_revoked_nothing_lost);
    tcase_add_test(tc, test_bias_retry_wakeups);
    tcase_add_test(tc, test_bias_released_at_thread_exit);
    tcase_add_test(tc, test_bias_retry_runs_again_logged);
    tcase_add_test(tc, test_in_place_abort_restores);
    tcase_add_test(tc, test_in_place_peek_sees_commits_only);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
