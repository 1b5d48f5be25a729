/* Event traces (lwc/trace.h): the records, and the hooks the substrate and
 * PTM call.  trace.c records; trace_json.c writes. */
#ifndef LWC_SUBSTRATE_TRACE_H
#define LWC_SUBSTRATE_TRACE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal.h"

enum trace_kind {
    TR_SWITCH,      /* a: the SCont that went out (0: the OS thread's own stack), st: why;
                     * b: the SCont that came in (0: none, the capability's own loop) */
    TR_CREATE,      /* a: the new SCont */
    TR_NAME,        /* a: the SCont, b: its name (a copy the trace owns) */
    TR_WAKE,        /* a: the SCont woken, b: the SCont that woke it (0: an OS thread) */
    TR_STEAL,       /* a: the SCont stolen, b: the capability it was taken from */
    TR_IDLE,        /* st: 1 the capability goes to sleep, 0 it wakes */
    TR_CALL,        /* st: 1 a foreign call begins, 0 it ends; a: the SCont in it */
    TR_GC,          /* st: 1 a detector pass begins, 0 it ends; a: how many it woke */
    TR_MARK,        /* b: the name (the program's, not copied) */
    TR_BEGIN,       /* a: the SCont (or OS thread) it belongs to, b: the name */
    TR_END,         /* a: as TR_BEGIN's */
};

#define TRACE_NO_CAP 0xffffu

/* 32 bytes: a cache line holds two. */
struct trace_event {
    uint64_t ts;            /* lwc_clock_ns */
    uint8_t  kind, st;
    uint16_t cap;           /* the capability it happened on, or TRACE_NO_CAP */
    uint32_t os;            /* the recording OS thread's buffer number */
    uint64_t a, b;
};

/* Note [Tracing costs a branch]: every hook is behind this flag, read with
 * a relaxed load, so a program that does not trace pays a load and a
 * predicted branch at each place, and nothing else. */
extern _Atomic int lwc_trace_flag;

static inline bool lwc_tracing(void)
{
    return __builtin_expect(atomic_load_explicit(&lwc_trace_flag, memory_order_relaxed), 0);
}

/* Record one event on the calling OS thread's buffer; t is its record, or
 * NULL to look it up.  Only behind lwc_tracing(): it does not look again. */
void lwc_trace_put(struct lwc_thread *t, unsigned kind, unsigned st, uint64_t a, uint64_t b);
void lwc_trace_landed(struct lwc_thread *t, lwc_scont_t *prev);
void lwc_trace_created(lwc_scont_t *s);
void lwc_trace_named(lwc_scont_t *s);
void lwc_trace_wake_in(lwc_tx_t *tx, lwc_scont_t *s);
/* From lwc_init and lwc_shutdown: LWC_TRACE, and the trace written. */
void lwc_trace_init(void);
void lwc_trace_shutdown(void);

/* trace_json.c: the events of every buffer, written to path as Chrome
 * trace-event JSON.  LWC_OK, LWC_ENOMEM, or LWC_EINVAL (errno set). */
struct trace_chunk;
int lwc_trace_write_json(const char *path, struct trace_event *ev, size_t n);

#endif
