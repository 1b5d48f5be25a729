/* Joinable threads, for every scheduler library: a thread and an MVar that
 * its last act fills.  Needs only lwc_spawn from the library it is built into. */
#include <lwc/lwc.h>
#include <lwc/mvar.h>
#include <lwc/sched.h>
#include <stdlib.h>

struct lwc_joinable {
    lwc_mvar_t *done;
    void      (*fn)(void *);
    void       *arg;
};

static void joinable_main(void *arg)
{
    lwc_joinable_t *j = arg;
    lwc_scont_run(j->fn, j->arg);
    lwc_mvar_put(j->done, 1);
}

int lwc_spawn_joinable(void (*fn)(void *), void *arg, lwc_joinable_t **out)
{
    if (!fn || !out)
        return LWC_EINVAL;
    /* Traced: the joiner waits on `done`, which the thread reaches only
     * through j (README.md, "Threads blocked forever"). */
    lwc_joinable_t *j = lwc_alloc(sizeof *j);
    if (!j || !(j->done = lwc_mvar_new())) {
        lwc_free(j);
        return LWC_ENOMEM;
    }
    j->fn = fn;
    j->arg = arg;
    int err = lwc_spawn(joinable_main, j);
    if (err != LWC_OK) {
        lwc_mvar_free(j->done);
        lwc_free(j);
        return err;
    }
    *out = j;
    return LWC_OK;
}

int lwc_join(lwc_joinable_t *j)
{
    if (!j)
        return LWC_EINVAL;
    lwc_word_t v;
    int err = lwc_mvar_take(j->done, &v);
    if (err != LWC_OK)
        return err;
    lwc_mvar_free(j->done);
    lwc_free(j);
    return LWC_OK;
}
