/* lwc: the scheduler author's kit (liblwc-kit, pkg-config lwc-kit).
 *
 * A scheduler is a policy (which runnable thread goes next) and a lifecycle
 * around it that every scheduler repeats: threads counted in and out,
 * capabilities started, idled and given back, orphans adopted, copy stacks
 * sent home, lwc_main's contract, joins.  The kit is that lifecycle, the
 * same code the round-robin scheduler runs on (liblwc-rr is the kit with its
 * built-in FIFO), so a scheduler of your own is the policy alone:
 *
 *     static void push(lwc_tx_t *tx, void *state, lwc_kit_thread_t *t);
 *     static lwc_kit_thread_t *pop(lwc_tx_t *tx, void *state);
 *
 * and the seven symbols of <lwc/sched.h>, one line each.  examples/prio/ is a
 * priority scheduler written so; doc/scheduler-guide.md is the guide, and
 * the rules the kit keeps for you are listed there.
 *
 * For a scheduler that is not a policy over queues in PVars (ws's deques,
 * the foreign loop), the pieces stand alone: lwc_kit_main_run (lwc_main's
 * contract), lwc_kit_spawn_joinable / lwc_kit_join (joins), lwc_kit_incall. */
#ifndef LWC_KIT_H
#define LWC_KIT_H

#include <lwc/base.h>
#include <lwc/ptm.h>
#include <lwc/sched.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- a scheduler from a policy ----------------------------------------------------- */

typedef struct lwc_kit lwc_kit_t;                 /* an instance */
typedef struct lwc_kit_thread lwc_kit_thread_t;   /* a thread's node, type-stable */

/* The policy.  Both run inside a transaction that may be re-run or thrown
 * away: keep the run queues in PVars (lwc_kit_queue_t below), and do nothing
 * else with effects.  `state` is what lwc_kit_new was given.
 *   push: t became runnable (spawned, yielded, woken); queue it.
 *   pop:  the thread to run next, taken out of your queues; NULL if none
 *         (the capability then idles until a push, with no call to you).
 *   name: the scheduler's name in the thread view (lwc_sconts_print) and
 *         the debugger; NULL: "kit". */
typedef struct lwc_kit_policy {
    void              (*push)(lwc_tx_t *tx, void *state, lwc_kit_thread_t *t);
    lwc_kit_thread_t *(*pop)(lwc_tx_t *tx, void *state);
    const char         *name;
} lwc_kit_policy_t;

/* An instance with `policy` (NULL: the built-in FIFO, which is liblwc-rr) that
 * runs its threads on at most max_caps capabilities (0: all).  NULL when out
 * of memory (errno ENOMEM) or when lwc_init has not run (EINVAL).  The policy
 * and state must outlive the instance. */
LWC_API lwc_kit_t *lwc_kit_new(const lwc_kit_policy_t *policy, void *state, unsigned max_caps);

/* A thread of k running fn(arg), made runnable through the policy's push.
 * `word` is the policy's to read (lwc_kit_thread_word): a priority, a
 * deadline.  The first spawn (and others, while k has fewer than max_caps)
 * starts it on an idle capability; with none idle and none yet working for k,
 * LWC_EBUSY and nothing is created.  LWC_EINVAL for k or fn NULL, or k closed. */
LWC_API int lwc_kit_spawn(lwc_kit_t *k, void (*fn)(void *), void *arg, lwc_word_t word);
/* The same, for a thread on an OS thread of its own (lwc_spawn_bound). */
LWC_API int lwc_kit_spawn_bound(lwc_kit_t *k, void (*fn)(void *), void *arg, lwc_word_t word);

/* The caller goes back to the policy (push), and the policy's next thread
 * (pop) runs; the caller carries on if pop gives it back or nothing.
 * LWC_EINVAL from outside a thread of a kit instance. */
LWC_API int lwc_kit_yield(void);

/* The instance the calling thread belongs to, and its node; NULL outside one.
 * A thread adopted from a scheduler that nothing can reach any more (an
 * orphan) belongs to its adopter, with word 0. */
LWC_API lwc_kit_t        *lwc_kit_self(void);
LWC_API lwc_kit_thread_t *lwc_kit_thread_self(void);

LWC_API void       *lwc_kit_state(lwc_kit_t *k);
LWC_API const lwc_kit_policy_t *lwc_kit_policy(lwc_kit_t *k);        /* NULL: the FIFO */
LWC_API lwc_word_t  lwc_kit_thread_word(lwc_kit_thread_t *t);
/* Change the caller's word; the policy sees it at the next push. */
LWC_API int         lwc_kit_set_word(lwc_word_t word);
LWC_API lwc_scont_t *lwc_kit_thread_scont(lwc_kit_thread_t *t);

/* From an OS thread outside k: wait until every thread of k has returned. */
LWC_API int  lwc_kit_wait(lwc_kit_t *k);
/* Run fn(arg) as a thread of k and wait until it has returned (from an OS
 * thread or a thread of any scheduler).  lwc_rr_incall says more. */
LWC_API int  lwc_kit_incall(lwc_kit_t *k, void (*fn)(void *), void *arg);
/* Wait as lwc_kit_wait, give k's capabilities back, free it.  NULL ignored. */
LWC_API void lwc_kit_free(lwc_kit_t *k);

/* lwc_main on a new instance of `policy`: what a kit scheduler's lwc_main
 * returns.  lwc_kit_main_instance is that instance while it runs (NULL
 * otherwise): lwc_spawn from outside every thread spawns there. */
LWC_API int        lwc_kit_main(const lwc_kit_policy_t *policy, void *state,
                                void (*fn)(void *), void *arg);
LWC_API lwc_kit_t *lwc_kit_main_instance(void);

/* ---- run queues: a FIFO of nodes in PVars -------------------------------------------- */

/* All bytes zero is an empty queue (a static, or calloc'ed memory); or
 * lwc_kit_queue_init.  lwc_kit_queue_fini once no transaction can use it.
 * A node is in at most one queue at a time. */
typedef struct lwc_kit_queue { lwc_pvar_t head, tail; } lwc_kit_queue_t;

LWC_API void              lwc_kit_queue_init(lwc_kit_queue_t *q);
LWC_API void              lwc_kit_queue_fini(lwc_kit_queue_t *q);
LWC_API void              lwc_kit_queue_push(lwc_tx_t *tx, lwc_kit_queue_t *q, lwc_kit_thread_t *t);
/* The oldest node, taken out, or NULL. */
LWC_API lwc_kit_thread_t *lwc_kit_queue_pop(lwc_tx_t *tx, lwc_kit_queue_t *q);

/* ---- the pieces, for schedulers of any shape ------------------------------------------- */

/* lwc_main's contract (<lwc/sched.h>) for a scheduler whose instances are
 * made by ops: start the runtime, create an instance (published in *current
 * while it runs, for lwc_spawn from outside), run fn(arg) as its first
 * thread, wait until fn has returned, let the instance drain (run what is
 * runnable, give its capabilities back), shut the runtime down, free the
 * instance.  A whole-program deadlock of the first thread ends the wait with
 * LWC_EDEADLOCK (lwc_host_wait_begin in <lwc/detect.h>). */
typedef struct lwc_kit_main_ops {
    void *(*create)(void *ctx);                         /* NULL: LWC_ENOMEM */
    int   (*spawn)(void *sched, void (*fn)(void *), void *arg);
    void  (*drain)(void *sched);
    void  (*free_memory)(void *sched);                  /* after lwc_shutdown */
} lwc_kit_main_ops_t;

LWC_API int lwc_kit_main_run(const lwc_kit_main_ops_t *ops, void *ctx, void **current,
                             void (*fn)(void *), void *arg);

/* Joinable threads for any scheduler: `spawn` (the library's lwc_spawn)
 * makes the thread; lwc_kit_join is lwc_join (<lwc/sched.h>).  Pooled: a
 * spawn and join per call allocates nothing after the first.  A scheduler
 * library's lwc_spawn_joinable and lwc_join are these two:
 *     return lwc_kit_spawn_joinable(lwc_spawn, fn, arg, out);
 *     return lwc_kit_join(j); */
LWC_API int lwc_kit_spawn_joinable(int (*spawn)(void (*fn)(void *), void *arg),
                                   void (*fn)(void *), void *arg, lwc_joinable_t **out);
LWC_API int lwc_kit_join(lwc_joinable_t *j);
/* An in-call on a given instance: spawn(sched, fn, arg) as a joinable, then
 * join it.  LWC_EINVAL for spawn, sched or fn NULL. */
LWC_API int lwc_kit_incall_with(int (*spawn)(void *sched, void (*fn)(void *), void *arg),
                                void *sched, void (*fn)(void *), void *arg);

#ifdef __cplusplus
}
#endif
#endif
