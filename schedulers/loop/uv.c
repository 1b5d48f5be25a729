/* liblwc-loop-uv: a loop ticked by a libuv loop (lwc/loop_uv.h). */
#include <lwc/loop_uv.h>
#include <stdbool.h>
#include <stdlib.h>

/* Note [Ticking inside libuv]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * A uv loop turns: timers, pending callbacks, idle, prepare, poll (for I/O,
 * blocking up to the next uv timer, or not at all while an idle handle is
 * active), check, close callbacks.  The tick runs in prepare, last before
 * the poll, so it sees what every callback of the turn did (a token a
 * callback settled, a thread it spawned) and arms what the poll waits for:
 *  - runnable threads left (LWC_LOOP_MORE): the idle handle, so the poll
 *    does not block and the next turn ticks again;
 *  - the next lwc deadline: the timer, whose callback does nothing (the turn
 *    it ends ticks);
 *  - fds lwc threads wait for: a poll handle on lwc_loop_backend_fd, epoll's
 *    own fd, readable when one of them may be;
 *  - the wake hook: uv_async_send, from any thread, which ends the poll.
 * The prepare and async handles are unreferenced, so uv_run returns once
 * neither the host nor lwc has anything that could happen: the idle, timer
 * and poll handles are referenced while active, and the async handle while
 * a thread awaits a token, which another OS thread may settle, and from a
 * wake on the uv loop's thread (a spawn, a pending evaluation) until the
 * next tick has looked. */

struct attached {
    lwc_loop_t     *loop;
    uv_loop_t      *uv;
    uv_prepare_t    prepare;
    uv_idle_t       idle;
    uv_timer_t      timer;
    uv_poll_t       poll;
    uv_async_t      async;
    int             poll_fd;    /* -1 until fds are waited on */
    bool            poll_open;  /* poll is initialised on poll_fd */
    int             open;       /* handles not yet closed */
    uv_thread_t     owner;      /* the thread that runs the uv loop */
    uint64_t        budget_ns;
    unsigned long   max_switches;
};

static void wake(void *ud);

/* The adapter of an attached loop is its wake hook's argument. */
static struct attached *find(lwc_loop_t *loop)
{
    void (*fn)(void *);
    void *ud;
    return lwc_loop_get_wake(loop, &fn, &ud) == LWC_OK && fn == wake ? ud : NULL;
}

static void idle_cb(uv_idle_t *h) { (void)h; }
static void timer_cb(uv_timer_t *h) { (void)h; }
static void async_cb(uv_async_t *h) { (void)h; }
static void poll_cb(uv_poll_t *h, int status, int events) { (void)h, (void)status, (void)events; }

/* From the uv loop's own thread (a spawn, an evaluation left pending, a
 * token settled by a callback) the loop may have work that no handle says
 * yet, before the next prepare: keep uv_run from returning until then. */
static void wake(void *ud)
{
    struct attached *a = ud;
    uv_thread_t self = uv_thread_self();
    if (uv_thread_equal(&self, &a->owner))
        uv_ref((uv_handle_t *)&a->async);
    uv_async_send(&a->async);
}

static void prepare_cb(uv_prepare_t *h)
{
    struct attached *a = h->data;
    lwc_loop_status_t st;
    if (lwc_loop_tick_limit(a->loop, a->budget_ns, a->max_switches, &st) != LWC_OK ||
        st.state == LWC_LOOP_BUSY)
        return;
    if (st.state == LWC_LOOP_MORE)
        uv_idle_start(&a->idle, idle_cb);
    else
        uv_idle_stop(&a->idle);
    int ms = lwc_loop_timeout_ms(&st);
    if (ms >= 0)
        uv_timer_start(&a->timer, timer_cb, (uint64_t)ms, 0);
    else
        uv_timer_stop(&a->timer);
    if (st.fds && !a->poll_open && (a->poll_fd = lwc_loop_backend_fd(a->loop)) >= 0 &&
        uv_poll_init(a->uv, &a->poll, a->poll_fd) == 0) {
        a->poll_open = true;
        a->open++;
    }
    if (a->poll_open && st.fds)
        uv_poll_start(&a->poll, UV_READABLE, poll_cb);
    else if (a->poll_open)
        uv_poll_stop(&a->poll);
    if (st.tokens)
        uv_ref((uv_handle_t *)&a->async);
    else
        uv_unref((uv_handle_t *)&a->async);
}

int lwc_loop_uv_attach(lwc_loop_t *loop, uv_loop_t *uv)
{
    void (*fn)(void *);
    void *ud;
    if (!uv || lwc_loop_get_wake(loop, &fn, &ud) != LWC_OK || fn == wake)
        return LWC_EINVAL;                      /* NULL, not the caller's, attached */
    struct attached *a = calloc(1, sizeof *a);
    if (!a)
        return LWC_ENOMEM;
    *a = (struct attached){ .loop = loop, .uv = uv, .poll_fd = -1, .budget_ns = 2000000,
                            .owner = uv_thread_self() };
    /* Only the async handle can fail (an eventfd); it comes first. */
    if (uv_async_init(uv, &a->async, async_cb) != 0) {
        free(a);
        return LWC_EINVAL;
    }
    uv_prepare_init(uv, &a->prepare);
    uv_idle_init(uv, &a->idle);
    uv_timer_init(uv, &a->timer);
    a->open = 4;
    a->prepare.data = a;
    uv_prepare_start(&a->prepare, prepare_cb);
    uv_unref((uv_handle_t *)&a->prepare);
    uv_unref((uv_handle_t *)&a->async);
    return lwc_loop_set_wake(loop, wake, a);     /* cannot fail: get_wake did not */
}

int lwc_loop_uv_set_budget(lwc_loop_t *loop, uint64_t budget_ns, unsigned long max_switches)
{
    struct attached *a = find(loop);
    if (!a)
        return LWC_EINVAL;
    a->budget_ns = budget_ns;
    a->max_switches = max_switches;
    return LWC_OK;
}

static void closed(uv_handle_t *h)
{
    struct attached *a = h->data;
    if (--a->open == 0)
        free(a);
}

int lwc_loop_uv_detach(lwc_loop_t *loop)
{
    struct attached *a = find(loop);
    if (!a)
        return LWC_EINVAL;
    lwc_loop_set_wake(loop, NULL, NULL);
    uv_handle_t *h[] = { (uv_handle_t *)&a->prepare, (uv_handle_t *)&a->idle,
                         (uv_handle_t *)&a->timer, (uv_handle_t *)&a->async,
                         a->poll_open ? (uv_handle_t *)&a->poll : NULL };
    for (unsigned i = 0; i < sizeof h / sizeof h[0]; i++) {
        if (h[i]) {
            h[i]->data = a;
            uv_close(h[i], closed);
        }
    }
    return LWC_OK;
}
