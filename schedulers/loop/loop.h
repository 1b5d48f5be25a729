/* The loop scheduler's instance, for its files alone (loop.c, token.c,
 * sched.c). */
#ifndef LWC_SCHEDULERS_LOOP_H
#define LWC_SCHEDULERS_LOOP_H

#include <lwc/loop.h>
#include <lwc/lwc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct eval;

struct lwc_loop {
    lwc_pvar_t       *head, *tail;  /* runnable threads, FIFO */
    _Atomic long      live;         /* threads whose function has not returned */
    unsigned          cap;          /* the hosted capability the host's turns run */
    lwc_loop_config_t cfg;
    pthread_t         owner;        /* the host's thread */
    bool              in_tick;
    unsigned          reporting;    /* done callbacks running (report_done), nested */
    /* the budget of the tick in progress: Note [Tick budgets] in loop.c */
    unsigned long     switches, max_switches;
    uint64_t          budget_end;
    unsigned          tokens;       /* threads awaiting a token (token.c) */
    bool              ran;          /* something ran since the last idle pass */
    uint64_t          ran_at;       /* when a tick last ran a thread: the idle timer */
    bool              timer_passed; /* ... and the idle timer's pass ran since */
    _Atomic int       woken;        /* the wake hook was called since the tick began */
    struct eval      *done, **done_tail;    /* finished evaluations to report */
    struct eval      *unfinished;   /* evaluations whose thread has not finished */
    bool              owns_runtime; /* lwc_loop_new started it */
};

/* The loop sched.c's lwc_main runs, for lwc_spawn from outside a loop. */
extern lwc_loop_t *lwc_loop_main;

/* Free the loop whatever threads it has left (they go with the runtime:
 * lwc_main, after its function returned). */
void lwc_loop_free_anyway(lwc_loop_t *loop);
int  lwc_loop_yield(void);

#endif
