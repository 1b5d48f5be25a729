/* The ws scheduler's own behaviour: stealing by a sleeping capability, spawns
 * from outside, many threads over many seeds on 1 and 2 capabilities. */
#include "harness.h"

#include <lwc/mvar.h>
#include <lwc/sched.h>
#include <lwc/ws.h>
#include <stdbool.h>
#include <unistd.h>

/* ---- a sleeping capability wakes and steals ------------------------------------------ */

/* A and B each wait until the other has started, so they must run at the same
 * time, on both capabilities; they sit on the deque of the capability their
 * parent runs on, and the other capability is asleep by then: it must wake and
 * steal. */
struct steal { atomic_int started, first_done; lwc_mvar_t *done; unsigned cap[2]; };

static void first(void *arg)
{
    struct steal *st = arg;
    atomic_store(&st->first_done, 1);   /* its capability goes idle, then to sleep */
}

static void meet(struct steal *st, int who)
{
    st->cap[who] = lwc_cap_self();
    atomic_fetch_add(&st->started, 1);
    while (atomic_load(&st->started) < 2)
        sched_yield();
    ck_assert_int_eq(lwc_mvar_put(st->done, (lwc_word_t)who + 1), LWC_OK);
}

static void thread_a(void *arg) { meet(arg, 0); }
static void thread_b(void *arg) { meet(arg, 1); }

static void parent(void *arg)
{
    struct steal *st = arg;
    lwc_ws_t *ws = lwc_ws_self();
    ck_assert_ptr_nonnull(ws);
    ck_assert_int_eq(lwc_ws_spawn(ws, first, st), LWC_OK);     /* starts the 2nd capability */
    while (!atomic_load(&st->first_done))
        sched_yield();
    ck_assert_int_eq(lwc_ws_spawn(ws, thread_a, st), LWC_OK);  /* on this deque */
    ck_assert_int_eq(lwc_ws_spawn(ws, thread_b, st), LWC_OK);
    lwc_word_t v, sum = 0;
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(lwc_mvar_take(st->done, &v), LWC_OK);
        sum += v;
    }
    ck_assert_uint_eq(sum, 3);
}

START_TEST(test_sleeping_capability_steals)
{
    ck_assert_int_eq(lwc_init(&(lwc_config_t){ .ncaps = 2 }), LWC_OK);
    for (int round = 0; round < (LIGHT_RUN() ? 3 : 30); round++) {
        struct steal st = { .done = lwc_mvar_new() };
        lwc_ws_t *ws = lwc_ws_new(2);
        ck_assert_ptr_nonnull(ws);
        ck_assert_int_eq(lwc_ws_spawn(ws, parent, &st), LWC_OK);
        lwc_ws_free(ws);
        ck_assert_uint_ne(st.cap[0], st.cap[1]);
        lwc_mvar_free(st.done);
    }
    lwc_shutdown();
}
END_TEST

/* ---- a random tree of spawns, counted ------------------------------------------------- */

struct tree { lwc_ws_t *ws; atomic_uint ran; };
struct node { struct tree *tr; unsigned depth, seed; };

/* Child i of a node whose seed is s after drawing its number of children has
 * seed s + 77i + 1: grow and tree_size draw the same tree. */
static void grow(void *arg)
{
    struct node *n = arg;
    struct tree *tr = n->tr;
    atomic_fetch_add(&tr->ran, 1);
    unsigned kids = n->depth ? next_rand(&n->seed) % 4 : 0, yields = n->seed;
    for (unsigned i = 0; i < kids; i++) {
        struct node *k = malloc(sizeof *k);
        ck_assert_ptr_nonnull(k);
        *k = (struct node){ tr, n->depth - 1, n->seed + 77 * i + 1 };
        ck_assert_int_eq(lwc_ws_spawn(tr->ws, grow, k), LWC_OK);
        if (next_rand(&yields) % 3 == 0)
            ck_assert_int_eq(lwc_ws_yield(), LWC_OK);
    }
    free(n);
}

static unsigned tree_size(unsigned depth, unsigned seed)
{
    unsigned kids = depth ? next_rand(&seed) % 4 : 0, n = 1;
    for (unsigned i = 0; i < kids; i++)
        n += tree_size(depth - 1, seed + 77 * i + 1);
    return n;
}

START_TEST(test_random_trees)
{
    unsigned caps = (unsigned)_i + 1;
    ck_assert_int_eq(lwc_init(&(lwc_config_t){ .ncaps = caps }), LWC_OK);
    for (unsigned seed = 1; seed <= (LIGHT_RUN() ? 3u : 40u); seed++) {
        struct tree tr = { lwc_ws_new(0), 0 };
        struct node *root = malloc(sizeof *root);
        *root = (struct node){ &tr, 9, seed * 2654435761u };
        unsigned want = tree_size(9, root->seed);
        ck_assert_int_eq(lwc_ws_spawn(tr.ws, grow, root), LWC_OK);
        lwc_ws_free(tr.ws);
        ck_assert_uint_eq(atomic_load(&tr.ran), want);
    }
    lwc_shutdown();
}
END_TEST

/* ---- fair turns (Note [Fair turns] in schedulers/ws/ws.c) ------------------------------- */

/* A thread that spawns a batch and yields, again and again, comes back to a
 * capability once the batches it spawned there before its last turn have
 * run: at most two batches per capability are alive.  (When every fair turn
 * served the shared queue it came back after 61, and nearly all the threads
 * it spawned were alive at once.) */
#define BATCH 300
struct batches { lwc_ws_t *ws; atomic_long alive; long most; };

static void batch_member(void *arg)
{
    struct batches *b = arg;
    atomic_fetch_sub(&b->alive, 1);
}

static void batch_spawner(void *arg)
{
    struct batches *b = arg;
    for (int round = 0; round < 40; round++) {
        for (int i = 0; i < BATCH; i++) {
            atomic_fetch_add(&b->alive, 1);
            ck_assert_int_eq(lwc_ws_spawn(b->ws, batch_member, b), LWC_OK);
        }
        long alive = atomic_load(&b->alive);
        if (alive > b->most)
            b->most = alive;
        ck_assert_int_eq(lwc_ws_yield(), LWC_OK);
    }
}

START_TEST(test_yielding_spawner_keeps_few_alive)
{
    unsigned caps = (unsigned)_i + 1;
    ck_assert_int_eq(lwc_init(&(lwc_config_t){ .ncaps = caps }), LWC_OK);
    struct batches b = { .ws = lwc_ws_new(0) };
    ck_assert_int_eq(lwc_ws_spawn(b.ws, batch_spawner, &b), LWC_OK);
    lwc_ws_free(b.ws);
    ck_assert_int_eq(atomic_load(&b.alive), 0);
    ck_assert_int_le(b.most, 2 * (long)caps * BATCH);
    lwc_shutdown();
}
END_TEST

/* Two threads that keep waking each other keep the bottom of the deque busy
 * for ever; the thread spawned before them, at the top, still gets its turn,
 * and it is the one that stops them. */
struct rally { lwc_mvar_t *ping, *pong; atomic_int stop; };

static void stopper(void *arg)
{
    atomic_store(&((struct rally *)arg)->stop, 1);
}

static void rally_player(struct rally *r, lwc_mvar_t *in, lwc_mvar_t *out, bool serves)
{
    lwc_word_t v = 1;
    if (serves)
        ck_assert_int_eq(lwc_mvar_put(out, v), LWC_OK);
    for (;;) {
        ck_assert_int_eq(lwc_mvar_take(in, &v), LWC_OK);
        if (v == 0)
            return;                             /* the other one has stopped */
        v = !atomic_load(&r->stop);
        ck_assert_int_eq(lwc_mvar_put(out, v), LWC_OK);
        if (v == 0)
            return;
    }
}

static void player_a(void *arg) { struct rally *r = arg; rally_player(r, r->pong, r->ping, true); }
static void player_b(void *arg) { struct rally *r = arg; rally_player(r, r->ping, r->pong, false); }

/* On its deque, the stopper first (the top), then the players. */
static void rally_parent(void *arg)
{
    lwc_ws_t *ws = lwc_ws_self();
    ck_assert_int_eq(lwc_ws_spawn(ws, stopper, arg), LWC_OK);
    ck_assert_int_eq(lwc_ws_spawn(ws, player_a, arg), LWC_OK);
    ck_assert_int_eq(lwc_ws_spawn(ws, player_b, arg), LWC_OK);
}

START_TEST(test_top_of_deque_not_starved)
{
    ck_assert_int_eq(lwc_init(&(lwc_config_t){ .ncaps = 1 }), LWC_OK);
    struct rally r = { lwc_mvar_new(), lwc_mvar_new(), 0 };
    lwc_ws_t *ws = lwc_ws_new(0);
    ck_assert_int_eq(lwc_ws_spawn(ws, rally_parent, &r), LWC_OK);
    lwc_ws_free(ws);
    ck_assert_int_eq(atomic_load(&r.stop), 1);
    lwc_mvar_free(r.ping);
    lwc_mvar_free(r.pong);
    lwc_shutdown();
}
END_TEST

/* ---- a woken thread is not stranded in a busy waker's hand-off slot -------------------- */

/* The waker wakes B, which goes to its hand-off slot, and then never lets go
 * of its capability: it waits, on the OS thread, for B to run.  Only the other
 * capability, asleep since B blocked there, can run B: the slot's watch must
 * let it steal B (Note [The hand-off slot] in schedulers/ws/ws.c). */
struct stranded { lwc_mvar_t *mv; atomic_int blocking, ran; unsigned cap_waker, cap_b; };

static void woken(void *arg)
{
    struct stranded *st = arg;
    lwc_word_t v;
    atomic_store(&st->blocking, 1);
    ck_assert_int_eq(lwc_mvar_take(st->mv, &v), LWC_OK);
    st->cap_b = lwc_cap_self();
    atomic_store(&st->ran, 1);
}

static void busy_waker(void *arg)
{
    struct stranded *st = arg;
    ck_assert_int_eq(lwc_ws_spawn(lwc_ws_self(), woken, st), LWC_OK);  /* on the other cap */
    while (!atomic_load(&st->blocking))
        sched_yield();
    usleep(10000);                      /* B is blocked by now, as a rule: then the put wakes it */
    ck_assert_int_eq(lwc_mvar_put(st->mv, 1), LWC_OK);
    st->cap_waker = lwc_cap_self();
    while (!atomic_load(&st->ran))
        sched_yield();                  /* holds this capability throughout */
}

START_TEST(test_handoff_not_stranded)
{
    ck_assert_int_eq(lwc_init(&(lwc_config_t){ .ncaps = 2 }), LWC_OK);
    for (int round = 0; round < (LIGHT_RUN() ? 2 : 10); round++) {
        struct stranded st = { .mv = lwc_mvar_new() };
        lwc_ws_t *ws = lwc_ws_new(2);
        ck_assert_ptr_nonnull(ws);
        ck_assert_int_eq(lwc_ws_spawn(ws, busy_waker, &st), LWC_OK);
        lwc_ws_free(ws);
        ck_assert_int_eq(atomic_load(&st.ran), 1);
        ck_assert_uint_ne(st.cap_b, st.cap_waker);
        lwc_mvar_free(st.mv);
    }
    lwc_shutdown();
}
END_TEST

/* ---- waiter nodes reused under many putters ------------------------------------------- */

/* Issue 18's program, through lwc_main as a user writes it: each thread
 * waits at a gate of its own, then all put into one MVar that the first
 * thread empties.  Nodes of served putters go back to the pool while the
 * other capability still pops the queue; a server that took a reused node
 * for its old wait dropped the taker's node, and the taker slept for ever
 * (Note [Waiter nodes] in schedulers/mvar/mvar.c). */
static long gated_n;
static lwc_mvar_t **gates, *gated_done;

static void gated_child(void *arg)
{
    lwc_word_t v;
    ck_assert_int_eq(lwc_mvar_take(gates[(long)arg], &v), LWC_OK);
    ck_assert_int_eq(lwc_mvar_put(gated_done, 1), LWC_OK);
}

static void gated_first(void *arg)
{
    (void)arg;
    ck_assert_ptr_nonnull(gates = malloc((size_t)gated_n * sizeof *gates));
    ck_assert_ptr_nonnull(gated_done = lwc_mvar_new());
    for (long i = 0; i < gated_n; i++)
        ck_assert_ptr_nonnull(gates[i] = lwc_mvar_new());
    for (long i = 0; i < gated_n; i++)
        ck_assert_int_eq(lwc_spawn(gated_child, (void *)i), LWC_OK);
    ck_assert_int_eq(lwc_yield(), LWC_OK);
    for (long i = 0; i < gated_n; i++)
        ck_assert_int_eq(lwc_mvar_put(gates[i], 1), LWC_OK);
    lwc_word_t v;
    for (long i = 0; i < gated_n; i++)
        ck_assert_int_eq(lwc_mvar_take(gated_done, &v), LWC_OK);
    ck_assert_int_eq(lwc_mvar_try_take(gated_done, &v), LWC_EAGAIN);
    for (long i = 0; i < gated_n; i++)
        lwc_mvar_free(gates[i]);
    lwc_mvar_free(gated_done);
    free(gates);
}

START_TEST(test_many_putters_one_taker)
{
    ck_assert_int_eq(setenv("LWC_CAPS", _i ? "2" : "1", 1), 0);
    /* ThreadSanitizer: at most 8128 SConts alive (tests/unit/stack.c). */
    gated_n = LIGHT_RUN() ? 300 : LWC_TSAN ? 2000 : 10000;
    for (int round = 0; round < (LIGHT_RUN() ? 1 : LWC_TSAN ? 3 : 20); round++)
        ck_assert_int_eq(lwc_main(gated_first, NULL), LWC_OK);
    unsetenv("LWC_CAPS");
}
END_TEST

/* ---- misuse ------------------------------------------------------------------------------ */

static void noop(void *arg) { (void)arg; }

START_TEST(test_bad_arguments)
{
    ck_assert_ptr_null(lwc_ws_new(0));              /* before lwc_init */
    ck_assert_int_eq(lwc_init(&(lwc_config_t){ .ncaps = 1 }), LWC_OK);
    lwc_ws_t *ws = lwc_ws_new(0);
    ck_assert_int_eq(lwc_ws_spawn(NULL, noop, NULL), LWC_EINVAL);
    ck_assert_int_eq(lwc_ws_spawn(ws, NULL, NULL), LWC_EINVAL);
    ck_assert_int_eq(lwc_ws_yield(), LWC_EINVAL);   /* not a thread of ws */
    ck_assert_ptr_null(lwc_ws_self());
    ck_assert_int_eq(lwc_ws_wait(NULL), LWC_EINVAL);
    lwc_ws_free(ws);
    lwc_ws_free(NULL);
    lwc_shutdown();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ws");
    TCase *tc = tcase_create("ws");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_sleeping_capability_steals);
    tcase_add_loop_test(tc, test_random_trees, 0, 2);
    tcase_add_loop_test(tc, test_yielding_spawner_keeps_few_alive, 0, 2);
    tcase_add_test(tc, test_top_of_deque_not_starved);
    tcase_add_test(tc, test_handoff_not_stranded);
    tcase_add_loop_test(tc, test_many_putters_one_taker, 0, 2);
    tcase_add_test(tc, test_bad_arguments);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
