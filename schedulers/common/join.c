/* Joinable threads, for every scheduler library: a thread and an MVar that
 * its last act fills.  Needs only lwc_spawn from the library it is built into. */
#include <lwc/lwc.h>
#include <lwc/mvar.h>
#include <lwc/sched.h>
#include <stdlib.h>

#include "pool.h"

struct lwc_joinable {
    lwc_mvar_t *done;           /* empty, and kept, while the node is in the pool */
    void      (*fn)(void *);
    void       *arg;
};

/* Traced: the joiner waits on `done`, which the thread reaches only through
 * its joinable (README.md, "Threads blocked forever").  Pooled with its
 * MVar, which a successful join leaves empty and without waiters: a spawn
 * and join per call, as fork-join programs make, then costs no lwc_alloc
 * and no MVar made or freed (each took the global block table's lock, and
 * the MVar a transaction). */
static struct lwc_pool joinables = LWC_POOL_INIT(struct lwc_joinable, true, 0);

/* The MVars are freed by their own pool's destructor, which finds every MVar
 * it made. */
static void joinable_destroy(void *j) { (void)j; }

__attribute__((destructor)) static void joinables_drain(void)
{
    lwc_pool_destroy_all(&joinables, joinable_destroy);
}

static void joinable_main(void *arg)
{
    lwc_joinable_t *j = arg;
    lwc_scont_run(j->fn, j->arg);
    lwc_mvar_put(j->done, 1);
}

/* A joinable thread, made by spawn(sched, ...). */
static int joinable_spawn(int (*spawn)(void *sched, void (*fn)(void *), void *arg), void *sched,
                          void (*fn)(void *), void *arg, lwc_joinable_t **out)
{
    if (!fn || !out)
        return LWC_EINVAL;
    lwc_joinable_t *j = lwc_pool_take(&joinables);
    if (!j)
        return LWC_ENOMEM;
    if (!j->done && !(j->done = lwc_mvar_new())) {
        lwc_pool_give(&joinables, j);
        return LWC_ENOMEM;
    }
    j->fn = fn;
    j->arg = arg;
    int err = spawn(sched, joinable_main, j);
    if (err != LWC_OK) {
        lwc_pool_give(&joinables, j);
        return err;
    }
    *out = j;
    return LWC_OK;
}

static int spawn_here(void *sched, void (*fn)(void *), void *arg)
{
    (void)sched;
    return lwc_spawn(fn, arg);
}

int lwc_spawn_joinable(void (*fn)(void *), void *arg, lwc_joinable_t **out)
{
    return joinable_spawn(spawn_here, NULL, fn, arg, out);
}

int sched_incall(int (*spawn)(void *sched, void (*fn)(void *), void *arg), void *sched,
                 void (*fn)(void *), void *arg)
{
    if (!sched)
        return LWC_EINVAL;
    lwc_joinable_t *j;
    int err = joinable_spawn(spawn, sched, fn, arg, &j);
    return err == LWC_OK ? lwc_join(j) : err;
}

int lwc_join(lwc_joinable_t *j)
{
    if (!j)
        return LWC_EINVAL;
    lwc_word_t v;
    int err = lwc_mvar_take(j->done, &v);
    if (err != LWC_OK)
        return err;
    lwc_pool_give(&joinables, j);
    return LWC_OK;
}
