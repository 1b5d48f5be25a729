/* The scheduler interface (lwc/sched.h) on rr: one instance that lwc_main
 * starts, and whatever instance the calling thread belongs to. */
#include <lwc/lwc.h>
#include <lwc/sched.h>

#include "rr.h"

static lwc_rr_t *main_rr;

struct main_call { void (*fn)(void *); void *arg; lwc_pvar_t *done; };

static void main_thread(void *arg)
{
    struct main_call *mc = arg;
    mc->fn(mc->arg);
    lwc_pvar_write(NULL, mc->done, 1);
}

static lwc_word_t wait_done(lwc_tx_t *tx, void *done)
{
    if (!lwc_pvar_read(tx, done))
        lwc_tx_retry(tx);
    return 0;
}

int lwc_main(void (*fn)(void *), void *arg)
{
    if (!fn)
        return LWC_EINVAL;
    int err = lwc_init(NULL);
    if (err != LWC_OK)
        return err;
    struct main_call mc = { fn, arg, lwc_pvar_new(0) };
    if (!mc.done || !(main_rr = lwc_rr_new(0))) {
        lwc_pvar_free(mc.done);
        lwc_shutdown();
        return LWC_ENOMEM;
    }
    err = lwc_rr_spawn(main_rr, main_thread, &mc);
    if (err == LWC_OK)
        err = lwc_atomically(wait_done, mc.done, NULL);
    /* Runnable threads run to the end or until they block (Note [rr capabilities]). */
    lwc_rr_close(main_rr, RR_DRAIN);
    lwc_shutdown();
    lwc_rr_free_memory(main_rr);
    main_rr = NULL;
    lwc_pvar_free(mc.done);
    return err;
}

int lwc_spawn(void (*fn)(void *), void *arg)
{
    lwc_rr_t *rr = lwc_rr_self();
    if (!rr && !(rr = main_rr))
        return LWC_EINVAL;
    return lwc_rr_spawn(rr, fn, arg);
}

int lwc_yield(void)
{
    return lwc_rr_yield();
}

const char *lwc_sched_name(void)
{
    return "rr";
}
