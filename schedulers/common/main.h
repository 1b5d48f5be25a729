/* lwc_main for every scheduler library (main.c): the steps are the same, only
 * the instance differs. */
#ifndef LWC_SCHEDULERS_MAIN_H
#define LWC_SCHEDULERS_MAIN_H

struct lwc_main_ops {
    void *(*create)(void);                         /* an instance on every capability */
    int   (*spawn)(void *sched, void (*fn)(void *), void *arg);
    void  (*drain)(void *sched);    /* run what is runnable, then give the capabilities back */
    void  (*free_memory)(void *sched);             /* after lwc_shutdown */
};

/* Start the runtime, run fn as the first thread of a new instance (published
 * in *current while it runs, for lwc_spawn from outside), return once fn has
 * returned and the instance has drained. */
int lwc_main_run(const struct lwc_main_ops *ops, void **current,
                 void (*fn)(void *), void *arg);

/* An in-call (join.c): run fn(arg) as a thread that spawn makes on sched,
 * and wait until it has returned, from an OS thread or a thread of any
 * scheduler.  Made and waited for as a joinable, from its pool: nothing
 * allocated when repeated.  LWC_EINVAL for sched or fn NULL; spawn's
 * errors; an error thrown at the waiter (the thread runs on). */
int sched_incall(int (*spawn)(void *sched, void (*fn)(void *), void *arg), void *sched,
                 void (*fn)(void *), void *arg);

#endif
