/* lwc_main, shared by the scheduler libraries (main.h). */
#include <lwc/lwc.h>

#include "main.h"

struct main_call { void (*fn)(void *); void *arg; lwc_pvar_t *done; int deadlock; };

static void main_thread(void *arg)
{
    struct main_call *mc = arg;
    lwc_scont_t *self = lwc_scont_self();
    lwc_host_wait_begin(self);          /* a whole-program deadlock wakes it */
    lwc_scont_run(mc->fn, mc->arg);
    mc->deadlock = lwc_host_wait_end(self);
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
    struct main_call mc = { fn, arg, lwc_pvar_new(0), LWC_OK };
    void *sched = mc.done ? ops->create() : NULL;
    if (!sched) {
        lwc_pvar_free(mc.done);
        lwc_shutdown();
        return LWC_ENOMEM;
    }
    *current = sched;
    /* The caller's frames hold what arg points to; ours, below, will hold
     * the first thread's address, which must not keep it alive. */
    lwc_host_enter(__builtin_frame_address(0));
    err = ops->spawn(sched, main_thread, &mc);
    if (err == LWC_OK)
        err = lwc_atomically(wait_done, mc.done, NULL);
    lwc_host_leave();
    if (err == LWC_OK)
        err = mc.deadlock;
    ops->drain(sched);
    lwc_shutdown();
    ops->free_memory(sched);
    *current = NULL;
    lwc_pvar_free(mc.done);
    return err;
}
