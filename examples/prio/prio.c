/* A priority scheduler, the whole of it: the policy is push and pop over a
 * FIFO per level; the kit (lwc/kit.h) keeps the lifecycle, and the seven
 * symbols of lwc/sched.h are one call each.  Build it as a library of its
 * own (examples/README.md) and link any program of lwc/sched.h against it. */
#include <lwc/kit.h>
#include <lwc/sched.h>

#include "prio.h"

/* The runnable threads, a queue per level: lwc_main runs one instance at a
 * time, so static queues do, made afresh for each run. */
struct prio { lwc_kit_queue_t level[PRIO_LEVELS]; };
static struct prio runnable;

/* ---- the policy: both run inside the transaction of a switch ------------------------ */

static void prio_push(lwc_tx_t *tx, void *state, lwc_kit_thread_t *t)
{
    struct prio *p = state;
    lwc_word_t level = lwc_kit_thread_word(t);      /* an adopted orphan: 0 */
    lwc_kit_queue_push(tx, &p->level[level < PRIO_LEVELS ? level : PRIO_LEVELS - 1], t);
}

static lwc_kit_thread_t *prio_pop(lwc_tx_t *tx, void *state)
{
    struct prio *p = state;
    for (unsigned i = 0; i < PRIO_LEVELS; i++) {
        lwc_kit_thread_t *t = lwc_kit_queue_pop(tx, &p->level[i]);
        if (t)
            return t;
    }
    return NULL;                /* the kit idles the capability until a push */
}

static const lwc_kit_policy_t prio_policy = { prio_push, prio_pop, "prio" };

/* ---- its own API -------------------------------------------------------------------- */

/* The caller's instance, else lwc_main's (lwc_spawn from outside). */
static lwc_kit_t *target(void)
{
    lwc_kit_t *k = lwc_kit_self();
    return k && lwc_kit_policy(k) == &prio_policy ? k : lwc_kit_main_instance();
}

int prio_level(void)
{
    lwc_kit_t *k = lwc_kit_self();
    if (!k || lwc_kit_policy(k) != &prio_policy)
        return -1;
    return (int)lwc_kit_thread_word(lwc_kit_thread_self());
}

int prio_spawn(unsigned level, void (*fn)(void *), void *arg)
{
    if (level >= PRIO_LEVELS)
        return LWC_EINVAL;
    return lwc_kit_spawn(target(), fn, arg, level);
}

int prio_set_level(unsigned level)
{
    if (level >= PRIO_LEVELS || prio_level() < 0)
        return LWC_EINVAL;
    lwc_kit_set_word(level);
    return lwc_kit_yield();
}

/* ---- lwc/sched.h -------------------------------------------------------------------- */

static unsigned inherited(void)
{
    int level = prio_level();
    return level < 0 ? PRIO_LEVELS / 2 : (unsigned)level;
}

int lwc_main(void (*fn)(void *), void *arg)
{
    for (unsigned i = 0; i < PRIO_LEVELS; i++)
        lwc_kit_queue_init(&runnable.level[i]);
    int err = lwc_kit_main(&prio_policy, &runnable, fn, arg);
    for (unsigned i = 0; i < PRIO_LEVELS; i++)
        lwc_kit_queue_fini(&runnable.level[i]);
    return err;
}

int lwc_spawn(void (*fn)(void *), void *arg)
{
    return lwc_kit_spawn(target(), fn, arg, inherited());
}

int lwc_spawn_bound(void (*fn)(void *), void *arg)
{
    return lwc_kit_spawn_bound(target(), fn, arg, inherited());
}

int lwc_yield(void)
{
    return lwc_kit_yield();
}

const char *lwc_sched_name(void)
{
    return "prio";
}

int lwc_spawn_joinable(void (*fn)(void *), void *arg, lwc_joinable_t **out)
{
    return lwc_kit_spawn_joinable(lwc_spawn, fn, arg, out);
}

int lwc_join(lwc_joinable_t *j)
{
    return lwc_kit_join(j);
}
