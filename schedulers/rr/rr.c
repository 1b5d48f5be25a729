/* The round-robin scheduler: a kit instance with its built-in FIFO (Note
 * [The built-in FIFO] in ../kit/kit.c).  lwc_rr_t is a lwc_kit_t. */
#include <lwc/lwc.h>
#include <lwc/kit.h>
#include <lwc/rr.h>

static lwc_kit_t *kit(lwc_rr_t *rr) { return (lwc_kit_t *)rr; }

lwc_rr_t *lwc_rr_new(unsigned max_caps)
{
    return (lwc_rr_t *)lwc_kit_new(NULL, NULL, max_caps);
}

int lwc_rr_spawn(lwc_rr_t *rr, void (*fn)(void *), void *arg)
{
    return lwc_kit_spawn(kit(rr), fn, arg, 0);
}

int lwc_rr_spawn_bound(lwc_rr_t *rr, void (*fn)(void *), void *arg)
{
    return lwc_kit_spawn_bound(kit(rr), fn, arg, 0);
}

/* The caller's instance is a kit's: a thread of another kit scheduler
 * yields in its own. */
int lwc_rr_yield(void)
{
    return lwc_kit_yield();
}

lwc_rr_t *lwc_rr_self(void)
{
    lwc_kit_t *k = lwc_kit_self();
    return k && !lwc_kit_policy(k) ? (lwc_rr_t *)k : NULL;
}

int lwc_rr_incall(lwc_rr_t *rr, void (*fn)(void *), void *arg)
{
    return lwc_kit_incall(kit(rr), fn, arg);
}

int lwc_rr_wait(lwc_rr_t *rr)
{
    return lwc_kit_wait(kit(rr));
}

void lwc_rr_free(lwc_rr_t *rr)
{
    lwc_kit_free(kit(rr));
}
