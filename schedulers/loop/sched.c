/* The scheduler interface (lwc/sched.h) on the loop scheduler: lwc_main is
 * a plain host, ticking one loop on the calling thread and sleeping in
 * poll(2) between ticks. */
#include <errno.h>
#include <lwc/loop.h>
#include <lwc/lwc.h>
#include <lwc/sched.h>
#include <lwc/kit.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "loop.h"

lwc_loop_t *lwc_loop_main;

static void eventfd_wake(void *ud)
{
    uint64_t one = 1;
    ssize_t rc = write((int)(intptr_t)ud, &one, sizeof one);
    (void)rc;                           /* full: a wake is pending anyway */
}

/* Sleep until a wake, an fd the threads wait for, or the deadline. */
static void host_wait(int wakefd, lwc_loop_t *loop, const lwc_loop_status_t *st)
{
    struct pollfd p[2] = { { wakefd, POLLIN, 0 }, { -1, POLLIN, 0 } };
    if (st->fds)
        p[1].fd = lwc_loop_backend_fd(loop);
    if (poll(p, 2, lwc_loop_timeout_ms(st)) > 0 && (p[0].revents & POLLIN)) {
        uint64_t v;
        ssize_t rc = read(wakefd, &v, sizeof v);
        (void)rc;
    }
}

struct main_call { void (*fn)(void *); void *arg; bool done; int err; };

static lwc_word_t main_thread(void *arg)
{
    struct main_call *mc = arg;
    mc->fn(mc->arg);
    return 0;
}

static void main_done(int err, lwc_word_t result, void *ud)
{
    struct main_call *mc = ud;
    (void)result;
    mc->done = true;
    mc->err = err == LWC_EKILLED ? LWC_OK : err;       /* lwc_exit from fn */
}

int lwc_main(void (*fn)(void *), void *arg)
{
    if (!fn || lwc_loop_main)
        return LWC_EINVAL;
    int wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wakefd < 0)
        return LWC_ENOMEM;
    lwc_loop_t *loop;
    lwc_loop_config_t cfg = { .wake = eventfd_wake, .wake_ud = (void *)(intptr_t)wakefd };
    int err = lwc_loop_new(&loop, &cfg);
    if (err != LWC_OK) {
        close(wakefd);
        return err;
    }
    lwc_loop_main = loop;
    /* The caller's frames hold what arg points to; ours, below, will hold
     * the first thread's address, which must not keep it alive. */
    lwc_host_enter(__builtin_frame_address(0));
    struct main_call mc = { fn, arg, false, LWC_OK };
    err = lwc_loop_eval_async(loop, main_thread, &mc, main_done, &mc, NULL);
    if (err == LWC_OK || err == LWC_EKILLED)
        main_done(err, 0, &mc);
    else if (err != LWC_EAGAIN)
        mc = (struct main_call){ .done = true, .err = err };
    lwc_loop_status_t st = { .state = LWC_LOOP_MORE };
    while (!mc.done) {
        if (st.state == LWC_LOOP_IDLE)
            host_wait(wakefd, loop, &st);
        lwc_loop_tick(loop, LWC_NEVER, &st);
    }
    /* fn has returned: what is runnable runs, then the rest goes. */
    do
        lwc_loop_tick(loop, LWC_NEVER, &st);
    while (st.state == LWC_LOOP_MORE);
    lwc_host_leave();
    lwc_loop_main = NULL;
    lwc_loop_free_anyway(loop);
    close(wakefd);
    return mc.err;
}

/* The caller's loop, else lwc_main's. */
static lwc_loop_t *spawn_target(void)
{
    lwc_loop_t *l = lwc_loop_self();
    return l ? l : lwc_loop_main;
}

int lwc_spawn(void (*fn)(void *), void *arg)
{
    return lwc_loop_spawn(spawn_target(), fn, arg);         /* NULL: LWC_EINVAL */
}

/* Every thread of a loop runs on its host's OS thread already. */
int lwc_spawn_bound(void (*fn)(void *), void *arg)
{
    return lwc_spawn(fn, arg);
}

int lwc_yield(void)
{
    return lwc_loop_yield();
}

const char *lwc_sched_name(void)
{
    return "loop";
}

int lwc_spawn_joinable(void (*fn)(void *), void *arg, lwc_joinable_t **out)
{
    return lwc_kit_spawn_joinable(lwc_spawn, fn, arg, out);
}

int lwc_join(lwc_joinable_t *j)
{
    return lwc_kit_join(j);
}
