/* Event traces: writing them as Chrome trace-event JSON (lwc/trace.h). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <lwc/trace.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"

/* Note [The trace's shape]
 * ~~~~~~~~~~~~~~~~~~~~~~~~
 * The buffers hold points in time; the file holds what a person looks at.
 * Each capability is a track (tid = its number), each OS thread seen outside
 * a capability (a foreign call's, a plain thread's marks) is another (tid =
 * CAP_TRACKS + its buffer's number).  On a capability's track a switch ends the
 * slice ("ph":"X") of the SCont that went out, its args saying why ("then":
 * yield, blocked, completed), and begins the next one's; a sleep of the
 * capability is an "idle" slice between them (the SCont that had stopped,
 * if the capability idled in its switch_to_next, resumes a new slice after
 * it).  A wake (or a creation) and the woken SCont's next run are the two
 * ends of a flow ("ph":"s" on the waker's track, "ph":"f" binding to the
 * run's slice), which the viewers draw as an arrow.  Foreign calls and
 * detector passes are slices of their own; marks are instants; the
 * program's spans are nestable async events ("b"/"e", id: the SCont), since
 * a thread's span may outlast its run and end on another capability, and
 * "B"/"E" there would cross the run slices.  Times are microseconds from the first event. */

/* Tracks: capabilities first, then OS threads (by buffer number, which wraps
 * past OS_TRACKS: a program with more OS threads shares their tracks). */
#define CAP_TRACKS 1024
#define OS_TRACKS  4096

struct track {
    uint64_t running, since;        /* the SCont on it and since when (0: none) */
    uint64_t woken_by;              /* ... who woke it for this run (~0: none known) */
    bool     first_run;             /* ... its first */
    uint64_t paused;                /* the SCont that stopped as it went idle */
    uint64_t idle_since, call_since, call_scont, gc_since;
    bool     seen, idle, in_call, in_gc;
};

/* A small open-addressed map from SCont id to a pair of words. */
struct map { uint64_t *key, *v1, *v2, *v3; size_t cap, used; };

static bool map_grow(struct map *m)
{
    struct map n = { NULL, NULL, NULL, NULL, m->cap ? 2 * m->cap : 1024, 0 };
    n.key = calloc(n.cap, sizeof *n.key);
    n.v1 = calloc(n.cap, sizeof *n.v1);
    n.v2 = calloc(n.cap, sizeof *n.v2);
    n.v3 = calloc(n.cap, sizeof *n.v3);
    if (!n.key || !n.v1 || !n.v2 || !n.v3) {
        free(n.key), free(n.v1), free(n.v2), free(n.v3);
        return false;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->key[i]) {
            size_t j = m->key[i] * 0x9e3779b97f4a7c15ull % n.cap;
            while (n.key[j])
                j = (j + 1) % n.cap;
            n.key[j] = m->key[i], n.v1[j] = m->v1[i], n.v2[j] = m->v2[i], n.v3[j] = m->v3[i];
            n.used++;
        }
    free(m->key), free(m->v1), free(m->v2), free(m->v3);
    *m = n;
    return true;
}

/* The slot of key (0 is no key), made if `make`; NULL if absent or no memory. */
static size_t *map_slot(struct map *m, uint64_t key, bool make, size_t *slot)
{
    if (!key || (!m->cap && !make))
        return NULL;
    if (make && 2 * (m->used + 1) > m->cap && !map_grow(m))
        return NULL;
    size_t j = key * 0x9e3779b97f4a7c15ull % m->cap;
    while (m->key[j] && m->key[j] != key)
        j = (j + 1) % m->cap;
    if (!m->key[j]) {
        if (!make)
            return NULL;
        m->key[j] = key;
        m->used++;
    }
    *slot = j;
    return slot;
}

static void map_free(struct map *m)
{
    free(m->key), free(m->v1), free(m->v2), free(m->v3);
}

static int by_time(const void *x, const void *y)
{
    const struct trace_event *a = x, *b = y;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    return a->os < b->os ? -1 : a->os > b->os;
}

struct out {
    FILE       *f;
    uint64_t    t0;
    struct map  names;          /* id -> name, and whether it has run */
    struct map  wakes;          /* id -> ts of its wake, tid of the waker's track, and the
                                 * waker (an SCont id; 0: an OS thread; ~0: its creator) */
    uint64_t    flows;
    bool        first;
};

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* Microseconds with three decimals, printed from integers: %f was most of
 * the writer's time. */
#define US_FMT "%" PRIu64 ".%03u"
#define US(ns) (uint64_t)(ns) / 1000, (unsigned)((uint64_t)(ns) % 1000)

static uint64_t since(const struct out *o, uint64_t ts)
{
    return ts - o->t0;
}

static void begin_event(struct out *o)
{
    fputs(o->first ? "\n" : ",\n", o->f);
    o->first = false;
}

static void scont_name(struct out *o, uint64_t id, char *buf, size_t len)
{
    size_t j;
    const char *name = map_slot(&o->names, id, false, &j) ? (const char *)(uintptr_t)o->names.v1[j]
                                                           : NULL;
    if (name)
        snprintf(buf, len, "SCont %" PRIu64 " \"%s\"", id, name);
    else
        snprintf(buf, len, "SCont %" PRIu64, id);
}

static const char *why_name(unsigned st)
{
    switch (st) {
    case LWC_BLOCKED_ON_SCHED:  return "runnable (yield or preempted)";
    case LWC_BLOCKED_ON_CONCDS: return "blocked on a data structure";
    case LWC_COMPLETED:         return "completed";
    default:                    return "left the capability for a foreign call";
    }
}

static void slice(struct out *o, unsigned tid, const char *name, const char *cat, uint64_t from,
                  uint64_t to, uint64_t scont, const char *then, const char *more)
{
    begin_event(o);
    fprintf(o->f, "{\"ph\":\"X\",\"pid\":1,\"tid\":%u,\"ts\":" US_FMT ",\"dur\":" US_FMT
                  ",\"cat\":\"%s\",\"name\":", tid, US(since(o, from)), US(to - from), cat);
    json_string(o->f, name);
    fputs(",\"args\":{", o->f);
    if (scont)
        fprintf(o->f, "\"scont\":%" PRIu64 "%s", scont, then ? "," : "");
    if (then)
        fprintf(o->f, "\"then\":\"%s\"", then);
    if (more && *more)
        fprintf(o->f, ",%s", more);
    fputs("}}", o->f);
}

static void instant(struct out *o, unsigned tid, uint64_t ts, const char *cat, const char *name)
{
    begin_event(o);
    fprintf(o->f, "{\"ph\":\"i\",\"s\":\"t\",\"pid\":1,\"tid\":%u,\"ts\":" US_FMT ",\"cat\":\"%s\","
                  "\"name\":", tid, US(since(o, ts)), cat);
    json_string(o->f, name);
    fputc('}', o->f);
}

static void run_slice(struct out *o, unsigned tid, struct track *tr, uint64_t until,
                      const char *then)
{
    char name[96], by[96], more[160] = "";
    scont_name(o, tr->running, name, sizeof name);
    if (tr->woken_by != ~(uint64_t)0) {
        if (tr->woken_by)
            scont_name(o, tr->woken_by, by, sizeof by);
        else
            snprintf(by, sizeof by, "an OS thread");
        size_t n = (size_t)snprintf(more, sizeof more, "\"woken_by\":\"");
        for (const char *c = by; *c && n + 3 < sizeof more; c++) {    /* escaped */
            if (*c == '"' || *c == '\\')
                more[n++] = '\\';
            more[n++] = *c;
        }
        snprintf(more + n, sizeof more - n, "\"");
    }
    if (tr->first_run)
        snprintf(more + strlen(more), sizeof more - strlen(more), "%s\"first_run\":true",
                 *more ? "," : "");
    slice(o, tid, name, "scont", tr->since, until, tr->running, then, more);
}

/* The woken SCont runs on tr: the arrow from its wake, and who woke it. */
static void flow_to(struct out *o, unsigned tid, struct track *tr, uint64_t id, uint64_t ts)
{
    size_t j;
    tr->woken_by = ~(uint64_t)0;
    if (map_slot(&o->names, id, true, &j)) {
        tr->first_run = !o->names.v2[j];
        o->names.v2[j] = 1;
    }
    if (!map_slot(&o->wakes, id, false, &j) || !o->wakes.v1[j])
        return;
    tr->woken_by = o->wakes.v3[j];
    uint64_t id_flow = ++o->flows;
    begin_event(o);
    fprintf(o->f, "{\"ph\":\"s\",\"pid\":1,\"tid\":%" PRIu64 ",\"ts\":" US_FMT ",\"id\":%" PRIu64
                  ",\"cat\":\"wake\",\"name\":\"wake\"}", o->wakes.v2[j], US(since(o, o->wakes.v1[j])),
            id_flow);
    begin_event(o);
    fprintf(o->f, "{\"ph\":\"f\",\"bp\":\"e\",\"pid\":1,\"tid\":%u,\"ts\":" US_FMT ",\"id\":%" PRIu64
                  ",\"cat\":\"wake\",\"name\":\"wake\"}", tid, US(since(o, ts)), id_flow);
    o->wakes.v1[j] = 0;
}

static unsigned tid_of(const struct trace_event *e)
{
    return e->cap == TRACE_NO_CAP ? CAP_TRACKS + e->os % OS_TRACKS : e->cap % CAP_TRACKS;
}

static void one(struct out *o, struct track *tracks, const struct trace_event *e)
{
    unsigned tid = tid_of(e);
    struct track *tr = &tracks[e->cap == TRACE_NO_CAP ? 0 : e->cap % CAP_TRACKS];
    struct track *os = &tracks[CAP_TRACKS + e->os % OS_TRACKS];
    char name[128];
    size_t j;
    switch (e->kind) {
    case TR_SWITCH:
        if (e->cap == TRACE_NO_CAP)
            break;
        if (tr->running)
            run_slice(o, tid, tr, e->ts, why_name(e->st));
        tr->running = e->b;
        tr->since = e->ts;
        tr->paused = 0;
        if (e->b)
            flow_to(o, tid, tr, e->b, e->ts);
        break;
    case TR_IDLE:
        tr = e->cap == TRACE_NO_CAP ? os : tr;
        if (e->st && !tr->idle) {
            if (tr->running)
                run_slice(o, tid, tr, e->ts, "idle");
            tr->woken_by = ~(uint64_t)0;            /* the rest of the run, after */
            tr->first_run = false;
            tr->paused = tr->running;
            tr->running = 0;
            tr->idle = true;
            tr->idle_since = e->ts;
        } else if (!e->st && tr->idle) {
            slice(o, tid, "idle", "idle", tr->idle_since, e->ts, 0, NULL, NULL);
            tr->idle = false;
            if ((tr->running = tr->paused))
                tr->since = e->ts;
        }
        break;
    case TR_CALL:
        if (e->st) {
            os->in_call = true;
            os->call_since = e->ts;
            os->call_scont = e->a;
        } else if (os->in_call) {
            scont_name(o, os->call_scont, name, sizeof name - 16);
            char title[160];
            snprintf(title, sizeof title, "foreign call of %s", name);
            slice(o, CAP_TRACKS + e->os % OS_TRACKS, title, "call", os->call_since, e->ts, os->call_scont,
                  NULL, NULL);
            os->in_call = false;
        }
        os->seen = true;
        break;
    case TR_GC:
        tr = e->cap == TRACE_NO_CAP ? os : tr;
        if (e->st) {
            tr->in_gc = true;
            tr->gc_since = e->ts;
        } else if (tr->in_gc) {
            snprintf(name, sizeof name, "detector pass: %" PRIu64 " woken", e->a);
            slice(o, tid, name, "detector", tr->gc_since, e->ts, 0, NULL, NULL);
            tr->in_gc = false;
        }
        break;
    case TR_CREATE:             /* its first run's arrow: from its creator */
        if (map_slot(&o->wakes, e->a, true, &j))
            o->wakes.v1[j] = e->ts, o->wakes.v2[j] = tid,
            o->wakes.v3[j] = e->cap == TRACE_NO_CAP ? 0 : tr->running;
        break;
    case TR_NAME:
        if (map_slot(&o->names, e->a, true, &j))
            o->names.v1[j] = e->b;
        break;
    case TR_WAKE:
        if (map_slot(&o->wakes, e->a, true, &j))
            o->wakes.v1[j] = e->ts, o->wakes.v2[j] = tid, o->wakes.v3[j] = e->b;
        break;
    case TR_STEAL:
        snprintf(name, sizeof name, "stole SCont %" PRIu64 " from capability %" PRIu64, e->a,
                 e->b);
        instant(o, tid, e->ts, "steal", name);
        break;
    case TR_MARK:
        instant(o, tid, e->ts, "mark", (const char *)(uintptr_t)e->b);
        break;
    case TR_BEGIN:
    case TR_END:
        /* Nestable async events, one sequence per SCont: its span may begin
         * on one capability and end on another, across its run slices. */
        begin_event(o);
        fprintf(o->f, "{\"ph\":\"%s\",\"pid\":1,\"tid\":%u,\"ts\":" US_FMT ",\"cat\":\"span\","
                      "\"id\":\"0x%" PRIx64 "\"", e->kind == TR_BEGIN ? "b" : "e", tid,
                US(since(o, e->ts)), e->a);
        if (e->kind == TR_BEGIN) {
            fputs(",\"name\":", o->f);
            json_string(o->f, (const char *)(uintptr_t)e->b);
        }
        fputc('}', o->f);
        break;
    }
    if (e->cap == TRACE_NO_CAP)
        os->seen = true;
    else
        tr->seen = true;
}

static void track_names(struct out *o, struct track *tracks)
{
    char name[64];
    for (unsigned i = 0; i < CAP_TRACKS + OS_TRACKS; i++) {
        if (!tracks[i].seen)
            continue;
        if (i < CAP_TRACKS)
            snprintf(name, sizeof name, "capability %u", i);
        else
            snprintf(name, sizeof name, "OS thread %u", i - CAP_TRACKS);
        begin_event(o);
        fprintf(o->f, "{\"ph\":\"M\",\"pid\":1,\"tid\":%u,\"name\":\"thread_name\","
                      "\"args\":{\"name\":\"%s\"}}", i, name);
        begin_event(o);
        fprintf(o->f, "{\"ph\":\"M\",\"pid\":1,\"tid\":%u,\"name\":\"thread_sort_index\","
                      "\"args\":{\"sort_index\":%u}}", i, i);
    }
}

/* What is still open at the end closes with the last event. */
static void close_open(struct out *o, struct track *tracks, uint64_t end)
{
    for (unsigned i = 0; i < CAP_TRACKS + OS_TRACKS; i++) {
        if (tracks[i].running)
            run_slice(o, i, &tracks[i], end, "running at the end");
        if (tracks[i].idle)
            slice(o, i, "idle", "idle", tracks[i].idle_since, end, 0, NULL, NULL);
    }
}

int lwc_trace_write_json(const char *path, struct trace_event *ev, size_t n)
{
    struct track *tracks = calloc(CAP_TRACKS + OS_TRACKS, sizeof *tracks);
    FILE *f = tracks ? fopen(path, "w") : NULL;
    if (!f) {
        int e = errno;
        free(tracks);
        errno = e;
        return tracks ? LWC_EINVAL : LWC_ENOMEM;
    }
    qsort(ev, n, sizeof *ev, by_time);
    struct out o = { .f = f, .t0 = n ? ev[0].ts : 0, .first = true };
    fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[", f);
    begin_event(&o);
    fputs("{\"ph\":\"M\",\"pid\":1,\"name\":\"process_name\",\"args\":{\"name\":\"lwc\"}}", f);
    for (size_t i = 0; i < n; i++)
        one(&o, tracks, &ev[i]);
    close_open(&o, tracks, n ? ev[n - 1].ts : 0);
    track_names(&o, tracks);
    fputs("\n]}\n", f);
    map_free(&o.names);
    map_free(&o.wakes);
    free(tracks);
    int err = ferror(f) ? LWC_EINVAL : LWC_OK;
    if (fclose(f) != 0)
        err = LWC_EINVAL;
    return err;
}
