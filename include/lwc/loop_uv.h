/* lwc: the foreign-loop scheduler inside a libuv loop (liblwc-loop-uv, built
 * when libuv is found: Debian libuv1-dev).
 *
 * Attached, a loop ticks from a prepare handle on every turn of the uv loop,
 * before it polls; an idle handle keeps the poll from blocking while threads
 * are runnable, a timer waits for the next lwc deadline, a poll handle for
 * the fds lwc threads wait on (lwc_loop_backend_fd), and an async handle is
 * the loop's wake hook.  What keeps uv_run going: runnable threads, a timer
 * or an fd lwc threads wait for, and a thread awaiting a token (which another
 * OS thread may settle); threads blocked on MVars alone do not.  Every call
 * belongs to the thread that runs the uv loop. */
#ifndef LWC_LOOP_UV_H
#define LWC_LOOP_UV_H

#include <lwc/loop.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Attach loop to uv (one uv loop per lwc loop; the loop's wake hook becomes
 * the adapter's).  Each tick runs for at most 2 ms of lwc threads
 * (lwc_loop_uv_set_budget).  LWC_EINVAL for NULL or a loop attached
 * already, LWC_ENOMEM, or LWC_EINVAL when libuv refuses a handle. */
LWC_API int  lwc_loop_uv_attach(lwc_loop_t *loop, uv_loop_t *uv);
/* The time budget of each tick (and the switches: 0 for no limit). */
LWC_API int  lwc_loop_uv_set_budget(lwc_loop_t *loop, uint64_t budget_ns,
                                    unsigned long max_switches);
/* Close the handles (their memory goes once uv_run has run their close
 * callbacks).  LWC_EINVAL if loop is not attached. */
LWC_API int  lwc_loop_uv_detach(lwc_loop_t *loop);

#ifdef __cplusplus
}
#endif
#endif
