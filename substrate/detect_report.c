/* The whole-program deadlock report, where it goes (lwc_set_deadlock_report),
 * and what LWC_GC_DEBUG prints after each pass. */
#include "config.h"

#include <lwc/detect.h>
#include <stdio.h>
#include <stdlib.h>

#include "detect.h"

#if LWC_VALGRIND
#include <valgrind/memcheck.h>
#endif

static const char *status_name(lwc_status_t st)
{
    static const char *names[] = { "running", "runnable", "blocked on a data structure",
                                   "completed" };
    return names[st & 3];
}

void lwc_gc_debug_report(struct pass *ps)
{
    for (size_t i = 0; i < ps->nsc; i++) {
        struct sc *c = &ps->sc[i];
        unsigned long long id = lwc_scont_id(c->s);
        if (c->root)
            fprintf(stderr, "lwc: gc: SCont %llu is a root (%s)\n", id, status_name(c->st));
        if (c->stranded) {
            fprintf(stderr, "lwc: gc: SCont %llu is stranded in a scheduler nothing reaches\n", id);
            continue;
        }
        bool blocked = c->st == LWC_BLOCKED_ON_CONCDS;
        if (c->root || (!blocked && c->st != LWC_BLOCKED_ON_SCHED))
            continue;
        if (!c->marked) {
            fprintf(stderr, "lwc: gc: SCont %llu is blocked and unreachable\n", id);
            continue;
        }
        fprintf(stderr, "lwc: gc: SCont %llu is %s and reachable, first through %s", id,
                blocked ? "blocked" : "runnable", c->kept_by);
        if (c->kept_in && c->kept_in->stack.map)    /* a copy SCont's: somewhere in its frames */
            fprintf(stderr, " (SCont %llu, %td bytes below its stack's top)",
                    (unsigned long long)lwc_scont_id(c->kept_in),
                    lwc_gc_stack_top(c->kept_in) - (const char *)c->kept_at);
        else
            fprintf(stderr, " (%p)", c->kept_at);
#if LWC_VALGRIND
        VALGRIND_MAKE_MEM_DEFINED(&c->kept_word, sizeof c->kept_word);    /* read from anywhere */
#endif
        const char *w = (const char *)c->kept_word;
        if (!blocked && w == (const char *)lwc_scont_env(c->s))
            fprintf(stderr, ": the word %p is its scheduler's env\n", (const void *)w);
        else if (w >= (const char *)c->s && w < (const char *)(c->s + 1))
            fprintf(stderr, ": the word %p points into its struct\n", (const void *)w);
        else
            fprintf(stderr, ": the word %p points %td bytes below its stack's top\n",
                    (const void *)w, lwc_gc_stack_top(c->s) - w);
    }
}

void lwc_gc_report(struct pass *ps)
{
    size_t cap = 256 + ps->nsc * 160, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return;
    len += (size_t)snprintf(buf + len, cap - len,
                            "lwc: deadlock: no thread can run, and nothing outside lwc can wake "
                            "one (no pin, timer or foreign call)\n");
    for (size_t i = 0; i < ps->nsc && len < cap; i++) {
        struct sc *c = &ps->sc[i];
        if (c->st != LWC_BLOCKED_ON_CONCDS && !c->stranded)
            continue;
        lwc_scont_t *s = c->s;
        len += (size_t)snprintf(buf + len, cap - len, "lwc:   SCont %llu%s%s%s: %s",
                                (unsigned long long)lwc_scont_id(s), s->name ? " \"" : "",
                                s->name ? s->name : "", s->name ? "\"" : "", status_name(c->st));
        if (len < cap && c->stranded)
            len += (size_t)snprintf(buf + len, cap - len,
                                    ", in a scheduler that nothing reaches (none adopts it)");
        else if (len < cap && s->retry_nodes)
            len += (size_t)snprintf(buf + len, cap - len, ", in a PTM retry on %u PVars",
                                    s->retry_nnodes);
        else if (len < cap && s->wait_what)
            len += (size_t)snprintf(buf + len, cap - len, ", on %s %p", s->wait_what,
                                    s->wait_obj);
        if (len < cap)
            len += (size_t)snprintf(buf + len, cap - len, "%s\n",
                                    atomic_load(&s->host_waits) ? " (the host waits for it)" : "");
    }
    pthread_mutex_lock(&lwc_detector.report_lock);
    lwc_report_fn fn = lwc_detector.report;
    void *arg = lwc_detector.report_arg;
    pthread_mutex_unlock(&lwc_detector.report_lock);
    if (fn)
        fn(buf, arg);
    else
        fputs(buf, stderr);
    free(buf);
}


void lwc_set_deadlock_report(lwc_report_fn fn, void *arg)
{
    pthread_mutex_lock(&lwc_detector.report_lock);
    lwc_detector.report = fn;
    lwc_detector.report_arg = arg;
    pthread_mutex_unlock(&lwc_detector.report_lock);
}
