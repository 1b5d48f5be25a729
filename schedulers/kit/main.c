/* lwc_main's contract for any scheduler (lwc_kit_main_run), and on a kit
 * instance (lwc_kit_main). */
#include <lwc/lwc.h>
#include <lwc/kit.h>

#include "kit.h"

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

int lwc_kit_main_run(const lwc_kit_main_ops_t *ops, void *ctx, void **current,
                     void (*fn)(void *), void *arg)
{
    if (!ops || !current || !fn)
        return LWC_EINVAL;
    int err = lwc_init(NULL);
    if (err != LWC_OK)
        return err;
    struct main_call mc = { fn, arg, lwc_pvar_new(0), LWC_OK };
    void *sched = mc.done ? ops->create(ctx) : NULL;
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

/* ---- on a kit instance ------------------------------------------------------------------ */

struct kit_main_ctx { const lwc_kit_policy_t *policy; void *state; };

static void *main_kit;

static void *kit_create(void *ctx)
{
    struct kit_main_ctx *c = ctx;
    return lwc_kit_new(c->policy, c->state, 0);
}

/* lwc_main's function has returned: the capabilities leave once nothing is
 * runnable, and threads blocked for good stay where they are. */
static void kit_drain(void *k) { kit_close(k, KIT_DRAIN); }
static void kit_free(void *k) { kit_free_memory(k); }

static const lwc_kit_main_ops_t kit_ops = { kit_create, kit_spawn_on, kit_drain, kit_free };

int lwc_kit_main(const lwc_kit_policy_t *policy, void *state, void (*fn)(void *), void *arg)
{
    struct kit_main_ctx c = { policy, state };
    return lwc_kit_main_run(&kit_ops, &c, &main_kit, fn, arg);
}

lwc_kit_t *lwc_kit_main_instance(void)
{
    return main_kit;
}
