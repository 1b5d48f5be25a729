/* lwc: pins and traced memory, what the blocked-forever detector can see.
 *
 * lwc cannot see into memory from malloc.  A thread blocked on an MVar (or a
 * PVar, or any data structure) is reachable, and so may still be woken, only
 * through what the detector scans: running SConts' stacks and registers, the
 * program's static data, PVar values, blocks from lwc_alloc, and pinned
 * objects.  A reference kept only in malloc memory, or handed to code lwc
 * does not know (a plain pthread, a callback of another library), must be
 * pinned for as long as that code may use it.  README.md, "Threads blocked
 * forever", states the rules. */
#ifndef LWC_DETECT_H
#define LWC_DETECT_H

#include <lwc/base.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* GHC's StablePtr: obj (an SCont, a PVar, an MVar, an lwc_alloc block, any
 * address the program wants kept) is a root until the matching lwc_unpin.
 * Pins count: pin twice, unpin twice.  NULL is ignored; unpinning what is not
 * pinned warns on stderr and does nothing.  Safe from any thread. */
LWC_API void lwc_pin(const void *obj);
LWC_API void lwc_unpin(const void *obj);
/* How many times obj is pinned now (0 if not). */
LWC_API unsigned lwc_pin_count(const void *obj);

/* n bytes, zeroed and aligned for any type, that the detector scans for
 * references, word by word.  NULL when out of memory.  lwc_free(NULL) does
 * nothing; a pointer that lwc_alloc did not return (or freed already) warns
 * on stderr and is left alone.  Safe from any thread. */
LWC_API void *lwc_alloc(size_t n);
LWC_API void  lwc_free(void *p);

/* A reference the detector does not follow, for a scheduler's or a data
 * structure's own bookkeeping: a list of every thread it made, a node's
 * pointer back to its thread, a free list.  Kept plain in lwc_alloc memory,
 * such a word keeps every thread it names reachable, blocked or not, and
 * none is ever found blocked for good.  A runnable thread needs no reference
 * to stay alive (its scheduler keeps it: README.md, "Threads blocked
 * forever"), and a blocked one must be reachable only through what can wake
 * it.  Hidden, the word is the address's complement, which on 64-bit targets
 * is never an address the detector knows. */
typedef struct lwc_hidden { uintptr_t bits; } lwc_hidden_t;
static inline lwc_hidden_t lwc_hide(const void *p)
{
    lwc_hidden_t h = { ~(uintptr_t)p };
    return h;
}
static inline void *lwc_unhide(lwc_hidden_t h)
{
    return (void *)~h.bits;
}

/* Run a detection pass now: every SCont blocked on a data structure that no
 * root reaches is woken with LWC_EBLOCKED_CONCDS, and every runnable one in a
 * scheduler nothing reaches is adopted (lwc_sched_adopts_orphans; README.md,
 * "Threads blocked forever").  Stops every capability at its next switch
 * point for the pass, so a thread that computes without switching delays it.
 * Returns how many SConts it woke or adopted, or LWC_EINVAL inside a
 * transaction or before lwc_init.  Passes also run by themselves whenever
 * every capability idles with no timer pending. */
LWC_API int lwc_gc(void);

/* Threads left runnable in a scheduler that nothing can reach any more (its
 * last capability has left, and the program keeps no reference to it) are
 * adopted by a live scheduler and get LWC_EBLOCKED_SCHED at their next
 * switch point (at once, if they are suspended in a yield).  A scheduler that
 * can adopt says so here, naming its switch_to_next upcall (rr and ws do).
 * The detector may then, with every capability stopped: give a stranded
 * SCont this scheduler's upcalls, set its local state to NULL, and call the
 * unblock_thread upcall in a transaction.  That upcall must take the SCont in
 * as a newcomer and set its local state (non-NULL; a re-run of the
 * transaction finds it set); left NULL, the adoption is undone.  When the
 * orphan completes, switch_to_next sees it with why LWC_COMPLETED and that
 * local state: the place to give it back.  LWC_OK; LWC_EINVAL for NULL;
 * LWC_ENOMEM once 16 schedulers have registered. */
LWC_API int lwc_sched_adopts_orphans(lwc_scont_t *(*switch_to_next)(lwc_tx_t *tx,
                                                                    lwc_scont_t *self,
                                                                    lwc_status_t why, void *env));

/* For the host of a hosted capability (<lwc/cap.h>; liblwc-loop), between
 * turns, whose loop has nothing left that could make its threads runnable
 * (no timer, no fd, nothing it will settle): run the pass that runs by
 * itself when nothing can run, counting the calling thread asleep in lwc
 * (its stack scanned from here up, or from lwc_host_enter's mark), if every
 * capability idles for good and every other plain OS thread sleeps in lwc.
 * What the host keeps outside its stack and lwc's sight, to give its
 * threads later, must be pinned (the rule for lwc_gc).  Returns how many
 * SConts it woke (0 when it did not run); LWC_EINVAL inside an SCont, a
 * turn or a transaction, or before lwc_init. */
LWC_API int lwc_gc_host_idle(void);
/* The idle timer (lwc_config_t.idle_gc_ms, GHC's -I) for such a host: how
 * long it is (0: off), and its pass, which the host runs once its loop has
 * idled that long with threads blocked, whatever timers or fds are
 * pending, if every capability idles.  LWC_EINVAL also when the timer is
 * off. */
LWC_API uint64_t lwc_gc_idle_timer_ns(void);
LWC_API int lwc_gc_host_idle_timer(void);

/* The host (lwc_main, lwc_eval, an embedding's event loop) waits for s to
 * finish.  When the whole program deadlocks, such SConts are woken with
 * LWC_EDEADLOCK.  _end returns LWC_EDEADLOCK if that happened since _begin,
 * else LWC_OK.  lwc_main and lwc_eval do this for their SCont. */
LWC_API int lwc_host_wait_begin(lwc_scont_t *s);
LWC_API int lwc_host_wait_end(lwc_scont_t *s);

/* The calling OS thread, not an SCont, is about to wait inside lwc for SConts
 * that use data on its stack (lwc_main's caller passes its locals to the
 * first thread).  While it sleeps in lwc, the detector scans its stack from
 * stack_lo (an address in the caller's frame) up, instead of from where it
 * sleeps.  LWC_EINVAL from an SCont. */
LWC_API int  lwc_host_enter(const void *stack_lo);
LWC_API void lwc_host_leave(void);

/* Where the deadlock report goes: fn(report, arg) with the whole report, one
 * line per blocked SCont, instead of stderr.  NULL restores stderr. */
typedef void (*lwc_report_fn)(const char *report, void *arg);
LWC_API void lwc_set_deadlock_report(lwc_report_fn fn, void *arg);

/* The thread view: write to fd one line per SCont that exists (not yet
 * completed): id, name, status, what it waits on, its scheduler, and whether
 * the detector reaches it (a root, reachable and through what, or
 * unreachable: blocked for good).  It stops the world for one mark of the
 * detector and wakes nobody: for a program that hangs, not for a hot path.
 * From any OS thread or SCont outside a transaction; LWC_EINVAL before
 * lwc_init or inside a transaction, LWC_ENOMEM.  LWC_SCONTS_SIGNAL=USR1 (or
 * USR2, or a number) in the environment at lwc_init makes that signal print
 * the view to stderr (from a thread of lwc's, so a hung program answers). */
LWC_API int lwc_sconts_print(int fd);

/* A scheduler names itself for the view (and tools/gdb/lwc.py): name(env)
 * for an SCont whose switch_to_next is this one.  LWC_ENOMEM when 16
 * schedulers have names already. */
LWC_API int lwc_sched_set_namer(lwc_scont_t *(*switch_to_next)(lwc_tx_t *tx, lwc_scont_t *self,
                                                               lwc_status_t why, void *env),
                                const char *(*name)(void *env));

/* Zero the dead stack just below the caller's frame, where the functions
 * it has called kept their locals (Note [Scrubbing the stack] in
 * substrate/detect.c).  A scheduler's spawn calls it on its way out, so the
 * new thread's address does not linger where the spawner's later frames will
 * be, and keep the new thread reachable for the detector. */
LWC_API void lwc_stack_scrub(void);

/* For the report: s is about to wait on `what` (a static string such as
 * "MVar") at obj.  A data structure calls it before blocking s. */
LWC_API void lwc_scont_note_wait(lwc_scont_t *s, const char *what, const void *obj);

#ifdef __cplusplus
}
#endif
#endif
