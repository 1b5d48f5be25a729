/* The scheduler interface (lwc/sched.h) on rr: one instance that lwc_main
 * starts, and whatever instance the calling thread belongs to. */
#include <lwc/lwc.h>
#include <lwc/kit.h>
#include <lwc/sched.h>

int lwc_main(void (*fn)(void *), void *arg)
{
    return lwc_kit_main(NULL, NULL, fn, arg);
}

/* The caller's instance, else lwc_main's. */
static lwc_kit_t *spawn_target(void)
{
    lwc_kit_t *k = lwc_kit_self();
    return k ? k : lwc_kit_main_instance();
}

int lwc_spawn(void (*fn)(void *), void *arg)
{
    return lwc_kit_spawn(spawn_target(), fn, arg, 0);     /* NULL: LWC_EINVAL */
}

int lwc_spawn_bound(void (*fn)(void *), void *arg)
{
    return lwc_kit_spawn_bound(spawn_target(), fn, arg, 0);
}

int lwc_yield(void)
{
    return lwc_kit_yield();
}

const char *lwc_sched_name(void)
{
    return "rr";
}

int lwc_spawn_joinable(void (*fn)(void *), void *arg, lwc_joinable_t **out)
{
    return lwc_kit_spawn_joinable(lwc_spawn, fn, arg, out);
}

int lwc_join(lwc_joinable_t *j)
{
    return lwc_kit_join(j);
}
