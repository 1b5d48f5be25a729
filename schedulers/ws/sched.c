/* The scheduler interface (lwc/sched.h) on ws: one instance over every
 * capability that lwc_main starts, and whatever instance the calling thread
 * belongs to. */
#include <lwc/lwc.h>
#include <lwc/kit.h>
#include <lwc/sched.h>

#include "ws.h"

static void *main_ws;

static void *ws_create(void *unused) { (void)unused; return lwc_ws_new(0); }
static void  ws_drain(void *ws) { lwc_ws_close(ws, WS_DRAIN); }
static void  ws_free(void *ws) { lwc_ws_free_memory(ws); }

static const lwc_kit_main_ops_t ws_ops = { ws_create, lwc_ws_spawn_on, ws_drain, ws_free };

int lwc_main(void (*fn)(void *), void *arg)
{
    return lwc_kit_main_run(&ws_ops, NULL, &main_ws, fn, arg);
}

/* The caller's instance, else lwc_main's. */
static lwc_ws_t *spawn_target(void)
{
    lwc_ws_t *ws = lwc_ws_self();
    return ws ? ws : main_ws;
}

int lwc_spawn(void (*fn)(void *), void *arg)
{
    return lwc_ws_spawn(spawn_target(), fn, arg);        /* NULL: LWC_EINVAL */
}

int lwc_spawn_bound(void (*fn)(void *), void *arg)
{
    return lwc_ws_spawn_bound(spawn_target(), fn, arg);        /* NULL: LWC_EINVAL */
}

int lwc_yield(void)
{
    return lwc_ws_yield();
}

const char *lwc_sched_name(void)
{
    return "ws";
}

int lwc_spawn_joinable(void (*fn)(void *), void *arg, lwc_joinable_t **out)
{
    return lwc_kit_spawn_joinable(lwc_spawn, fn, arg, out);
}

int lwc_join(lwc_joinable_t *j)
{
    return lwc_kit_join(j);
}
