/* The scheduler interface (lwc/sched.h) on rr: one instance that lwc_main
 * starts, and whatever instance the calling thread belongs to. */
#include <lwc/lwc.h>
#include <lwc/sched.h>

#include "../common/main.h"
#include "rr.h"

static void *main_rr;

static void *rr_create(void) { return lwc_rr_new(0); }
static void  rr_drain(void *rr) { lwc_rr_close(rr, RR_DRAIN); }
static void  rr_free(void *rr) { lwc_rr_free_memory(rr); }

static const struct lwc_main_ops rr_ops = { rr_create, lwc_rr_spawn_on, rr_drain, rr_free };

int lwc_main(void (*fn)(void *), void *arg)
{
    return lwc_main_run(&rr_ops, &main_rr, fn, arg);
}

/* The caller's instance, else lwc_main's. */
static lwc_rr_t *spawn_target(void)
{
    lwc_rr_t *rr = lwc_rr_self();
    return rr ? rr : main_rr;
}

int lwc_spawn(void (*fn)(void *), void *arg)
{
    return lwc_rr_spawn(spawn_target(), fn, arg);        /* NULL: LWC_EINVAL */
}

int lwc_spawn_bound(void (*fn)(void *), void *arg)
{
    return lwc_rr_spawn_bound(spawn_target(), fn, arg);        /* NULL: LWC_EINVAL */
}

int lwc_yield(void)
{
    return lwc_rr_yield();
}

const char *lwc_sched_name(void)
{
    return "rr";
}
