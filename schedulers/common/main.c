/* lwc_main, shared by the scheduler libraries (main.h). */
#include <lwc/lwc.h>

#include "main.h"

struct main_call { void (*fn)(void *); void *arg; lwc_pvar_t *done; };

static void main_thread(void *arg)
{
    struct main_call *mc = arg;
    lwc_scont_run(mc->fn, mc->arg);
    lwc_pvar_write(NULL, mc->done, 1);
}

static lwc_word_t wait_done(lwc_tx_t *tx, void *done)
{
    if (!lwc_pvar_read(tx, done))
        lwc_tx_retry(tx);
    return 0;
}

int lwc_main_run(const struct lwc_main_ops *ops, void **current,
                 void (*fn)(void *), void *arg)
{
    if (!fn)
        return LWC_EINVAL;
    int err = lwc_init(NULL);
    if (err != LWC_OK)
        return err;
    struct main_call mc = { fn, arg, lwc_pvar_new(0) };
    void *sched = mc.done ? ops->create() : NULL;
    if (!sched) {
        lwc_pvar_free(mc.done);
        lwc_shutdown();
        return LWC_ENOMEM;
    }
    *current = sched;
    err = ops->spawn(sched, main_thread, &mc);
    if (err == LWC_OK)
        err = lwc_atomically(wait_done, mc.done, NULL);
    ops->drain(sched);
    lwc_shutdown();
    ops->free_memory(sched);
    *current = NULL;
    lwc_pvar_free(mc.done);
    return err;
}
