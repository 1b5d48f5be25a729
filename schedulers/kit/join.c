/* Joinable threads for every scheduler (lwc/kit.h): a thread and an MVar
 * that its last act fills. */
#include <lwc/lwc.h>
#include <lwc/kit.h>
#include <lwc/mvar.h>
#include <stdlib.h>

#include "../common/pool.h"

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

typedef int spawn_fn(void (*fn)(void *), void *arg);

static int spawn_plain(void *spawn, void (*fn)(void *), void *arg)
{
    return (*(spawn_fn **)spawn)(fn, arg);
}

int lwc_kit_spawn_joinable(int (*spawn)(void (*fn)(void *), void *arg),
                           void (*fn)(void *), void *arg, lwc_joinable_t **out)
{
    return spawn ? joinable_spawn(spawn_plain, &spawn, fn, arg, out) : LWC_EINVAL;
}

int lwc_kit_incall_with(int (*spawn)(void *sched, void (*fn)(void *), void *arg),
                        void *sched, void (*fn)(void *), void *arg)
{
    if (!spawn || !sched)
        return LWC_EINVAL;
    lwc_joinable_t *j;
    int err = joinable_spawn(spawn, sched, fn, arg, &j);
    return err == LWC_OK ? lwc_kit_join(j) : err;
}

int lwc_kit_join(lwc_joinable_t *j)
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
