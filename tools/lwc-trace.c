/* lwc-trace: a trace of lwc (lwc/trace.h) in a terminal.
 *
 *   lwc-trace summary FILE   time per thread and per state, per capability,
 *                            steals, the longest blocked times
 *   lwc-trace check FILE     is it valid JSON, is each track's sequence of
 *                            slices in order, does every arrow pair up
 *   lwc-trace runs FILE      each track's run slices in order: track, time,
 *                            thread, what it did then
 *   lwc-trace svg FILE [FROM TO]
 *                            a picture of the timeline (SVG, on stdout),
 *                            or of FROM to TO milliseconds into it
 *
 * It reads the JSON lwc writes (any JSON, strictly; the events it knows of
 * are Chrome's trace events), so it is also the test of that file
 * (tests/trace.sh). */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the events ------------------------------------------------------------------------- */

struct event {
    char     ph;
    unsigned tid;
    double   ts, dur;
    long     id, scont;
    char     name[96], cat[16], then[48];
    bool     has_ts, has_dur, has_id;
};

static struct event *events;
static size_t nevents, cap_events;

/* ---- a strict JSON reader ------------------------------------------------------------- */

static const char *src, *at;
static int line = 1;

static _Noreturn void bad(const char *what)
{
    fprintf(stderr, "lwc-trace: not valid JSON, line %d: %s\n", line, what);
    exit(2);
}

static void skip(void)
{
    for (; *at == ' ' || *at == '\t' || *at == '\n' || *at == '\r'; at++)
        line += *at == '\n';
}

static void expect(char c)
{
    skip();
    if (*at != c) {
        char msg[32];
        snprintf(msg, sizeof msg, "expected '%c'", c);
        bad(msg);
    }
    at++;
}

/* A string into buf (cut to len), or skipped if buf is NULL. */
static void string(char *buf, size_t len)
{
    expect('"');
    size_t n = 0;
    for (;;) {
        char c = *at++;
        if (c == '"')
            break;
        if (c == '\0' || (unsigned char)c < 0x20)
            bad("unterminated string or a control character in one");
        if (c == '\\') {
            c = *at++;
            if (c == 'u') {
                for (int i = 0; i < 4; i++)
                    if (!isxdigit((unsigned char)*at++))
                        bad("bad \\u escape");
                c = '?';
            } else if (!strchr("\"\\/bfnrt", c)) {
                bad("bad escape");
            }
        }
        if (buf && n + 1 < len)
            buf[n++] = c;
    }
    if (buf)
        buf[n] = '\0';
}

static double number(void)
{
    skip();
    const char *p = at;
    if (*p == '-')
        p++;
    if (!isdigit((unsigned char)*p))
        bad("expected a number");
    if (*p == '0' && isdigit((unsigned char)p[1]))
        bad("a number with a leading zero");
    char *end;
    double v = strtod(at, &end);
    at = end;
    return v;
}

static void value(struct event *e, const char *key, int depth);

static void copy(char *to, size_t len, const char *from)
{
    size_t n = strlen(from);
    n = n < len - 1 ? n : len - 1;
    memcpy(to, from, n);
    to[n] = '\0';
}

static void object(struct event *e, int depth)
{
    expect('{');
    skip();
    if (*at == '}') {
        at++;
        return;
    }
    for (;;) {
        char key[32];
        string(key, sizeof key);
        expect(':');
        value(e, key, depth + 1);
        skip();
        if (*at == ',') {
            at++;
            continue;
        }
        expect('}');
        return;
    }
}

static void array(int depth, bool events_here)
{
    expect('[');
    skip();
    if (*at == ']') {
        at++;
        return;
    }
    for (;;) {
        skip();
        if (events_here && *at == '{') {
            if (nevents == cap_events) {
                cap_events = cap_events ? 2 * cap_events : 4096;
                if (!(events = realloc(events, cap_events * sizeof *events)))
                    bad("out of memory");
            }
            struct event *e = &events[nevents++];
            memset(e, 0, sizeof *e);
            e->scont = -1;
            object(e, depth + 1);
        } else {
            value(NULL, "", depth + 1);
        }
        skip();
        if (*at == ',') {
            at++;
            continue;
        }
        expect(']');
        return;
    }
}

/* A value; its meaning for the event e (NULL: none) under key. */
static void value(struct event *e, const char *key, int depth)
{
    if (depth > 64)
        bad("nested too deep");
    skip();
    if (*at == '{') {
        object(e && !strcmp(key, "args") ? e : NULL, depth);
    } else if (*at == '[') {
        array(depth, depth == 1 && !strcmp(key, "traceEvents"));
    } else if (*at == '"') {
        char buf[96];
        string(buf, sizeof buf);
        if (!e)
            return;
        if (!strcmp(key, "ph"))
            e->ph = buf[0];
        else if (!strcmp(key, "name"))
            copy(e->name, sizeof e->name, buf);
        else if (!strcmp(key, "cat"))
            copy(e->cat, sizeof e->cat, buf);
        else if (!strcmp(key, "then"))
            copy(e->then, sizeof e->then, buf);
    } else if (!strncmp(at, "true", 4) || !strncmp(at, "null", 4)) {
        at += 4;
    } else if (!strncmp(at, "false", 5)) {
        at += 5;
    } else {
        double v = number();
        if (!e)
            return;
        if (!strcmp(key, "tid"))
            e->tid = (unsigned)v;
        else if (!strcmp(key, "ts"))
            e->ts = v, e->has_ts = true;
        else if (!strcmp(key, "dur"))
            e->dur = v, e->has_dur = true;
        else if (!strcmp(key, "id"))
            e->id = (long)v, e->has_id = true;
        else if (!strcmp(key, "scont"))
            e->scont = (long)v;
    }
}

static void read_trace(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "lwc-trace: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    for (size_t r; buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += r;
        if (n + 1 == cap && !(buf = realloc(buf, cap *= 2)))
            break;
    }
    fclose(f);
    if (!buf)
        bad("out of memory");
    buf[n] = '\0';
    src = at = buf;
    value(NULL, "", 0);
    skip();
    if (*at)
        bad("more after the value");
}

/* ---- check -------------------------------------------------------------------------------- */

static int by_tid_then_ts(const void *x, const void *y)
{
    const struct event *a = *(struct event *const *)x, *b = *(struct event *const *)y;
    if (a->tid != b->tid)
        return a->tid < b->tid ? -1 : 1;
    return a->ts < b->ts ? -1 : a->ts > b->ts;
}

static int by_id(const void *x, const void *y)
{
    const struct event *a = *(struct event *const *)x, *b = *(struct event *const *)y;
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    return a->ph < b->ph ? -1 : a->ph > b->ph;      /* 'f' before 's' */
}

/* The run slices ("cat":"scont") of one track follow each other without
 * overlap; idle slices too; every other slice lies inside one of them or
 * between them.  Every flow id has one start and one end, the start first. */
static int check(void)
{
    struct event **x = malloc((nevents ? nevents : 1) * sizeof *x);
    size_t nx = 0, nflow = 0, nslices = 0;
    int errors = 0;
    for (size_t i = 0; i < nevents; i++) {
        struct event *e = &events[i];
        if (!e->ph || (e->ph != 'M' && !e->has_ts)) {
            fprintf(stderr, "lwc-trace: event %zu has no ph or ts\n", i);
            errors++;
        }
        if (e->ph == 'X' && (!strcmp(e->cat, "scont") || !strcmp(e->cat, "idle")))
            x[nx++] = e;
    }
    qsort(x, nx, sizeof *x, by_tid_then_ts);
    for (size_t i = 1; i < nx; i++)
        if (x[i]->tid == x[i - 1]->tid && x[i]->ts + 1e-3 < x[i - 1]->ts + x[i - 1]->dur) {
            fprintf(stderr, "lwc-trace: track %u: \"%s\" at %.3f begins before \"%s\" at %.3f "
                            "ends\n", x[i]->tid, x[i]->name, x[i]->ts, x[i - 1]->name,
                    x[i - 1]->ts);
            errors++;
        }
    nslices = nx;
    nx = 0;
    for (size_t i = 0; i < nevents; i++)
        if (events[i].ph == 's' || events[i].ph == 'f')
            x[nx++] = &events[i];
    qsort(x, nx, sizeof *x, by_id);
    for (size_t i = 0; i < nx; i++) {
        if (i + 1 < nx && x[i]->id == x[i + 1]->id && x[i]->ph == 'f' && x[i + 1]->ph == 's' &&
            (i + 2 == nx || x[i + 2]->id != x[i]->id)) {
            if (x[i + 1]->ts > x[i]->ts + 1e-3) {
                fprintf(stderr, "lwc-trace: arrow %ld ends before it starts\n", x[i]->id);
                errors++;
            }
            nflow++;
            i++;
            continue;
        }
        fprintf(stderr, "lwc-trace: arrow %ld does not pair up\n", x[i]->id);
        errors++;
    }
    free(x);
    printf("lwc-trace: %zu events, %zu run and idle slices, %zu arrows: %s\n", nevents,
           nslices, nflow, errors ? "errors above" : "ok");
    return errors ? 1 : 0;
}

/* ---- summary ------------------------------------------------------------------------------ */

struct thread { long id; char name[96]; double run, runnable, blocked, call, longest, last_end;
                char last_then[48]; unsigned runs; };

static struct thread *threads;
static size_t nthreads;

static struct thread *thread_of(long id, const char *name)
{
    for (size_t i = 0; i < nthreads; i++)
        if (threads[i].id == id)
            return &threads[i];
    threads = realloc(threads, (nthreads + 1) * sizeof *threads);
    if (!threads)
        bad("out of memory");
    struct thread *t = &threads[nthreads++];
    memset(t, 0, sizeof *t);
    t->id = id;
    t->last_end = -1;
    copy(t->name, sizeof t->name, name);
    return t;
}

static int by_run(const void *x, const void *y)
{
    const struct thread *a = x, *b = y;
    return a->run < b->run ? 1 : a->run > b->run ? -1 : 0;
}

static int by_start(const void *x, const void *y)
{
    const struct event *a = *(struct event *const *)x, *b = *(struct event *const *)y;
    return a->ts < b->ts ? -1 : a->ts > b->ts;
}

static int summary(void)
{
    struct event **runs = malloc((nevents ? nevents : 1) * sizeof *runs);
    size_t nruns = 0, steals = 0;
    double cap_busy[1024] = { 0 }, cap_idle[1024] = { 0 }, end = 0;
    for (size_t i = 0; i < nevents; i++) {
        struct event *e = &events[i];
        if (e->ph == 'X' && !strcmp(e->cat, "scont"))
            runs[nruns++] = e;
        if (e->ph == 'X' && e->tid < 1024 && !strcmp(e->cat, "idle"))
            cap_idle[e->tid] += e->dur;
        if (e->ph == 'X' && e->tid < 1024 && !strcmp(e->cat, "scont"))
            cap_busy[e->tid] += e->dur;
        steals += e->ph == 'i' && !strcmp(e->cat, "steal");
        if (e->has_ts && e->ts + e->dur > end)
            end = e->ts + e->dur;
    }
    /* A thread's time between two runs is in the state its first run ended in. */
    qsort(runs, nruns, sizeof *runs, by_start);
    for (size_t i = 0; i < nruns; i++) {
        struct thread *t = thread_of(runs[i]->scont, runs[i]->name);
        if (t->last_end >= 0) {
            double gap = runs[i]->ts - t->last_end;
            if (strstr(t->last_then, "blocked")) {
                t->blocked += gap;
                if (gap > t->longest)
                    t->longest = gap;
            } else if (strstr(t->last_then, "foreign call")) {
                t->call += gap;
            } else {
                t->runnable += gap;
            }
        }
        t->run += runs[i]->dur;
        t->runs++;
        t->last_end = runs[i]->ts + runs[i]->dur;
        copy(t->last_then, sizeof t->last_then, runs[i]->then);
    }
    printf("trace: %.3f ms, %zu threads, %zu runs, %zu steals\n\n", end / 1000, nthreads, nruns,
           steals);
    printf("%-5s %12s %12s\n", "cap", "busy ms", "idle ms");
    for (unsigned c = 0; c < 1024; c++)
        if (cap_busy[c] > 0 || cap_idle[c] > 0)
            printf("%-5u %12.3f %12.3f\n", c, cap_busy[c] / 1000, cap_idle[c] / 1000);
    qsort(threads, nthreads, sizeof *threads, by_run);
    printf("\n%-28s %6s %12s %12s %12s %12s\n", "thread (most running first)", "runs",
           "running ms", "runnable ms", "blocked ms", "in calls ms");
    for (size_t i = 0; i < nthreads && i < 20; i++)
        printf("%-28.28s %6u %12.3f %12.3f %12.3f %12.3f\n", threads[i].name, threads[i].runs,
               threads[i].run / 1000, threads[i].runnable / 1000, threads[i].blocked / 1000,
               threads[i].call / 1000);
    if (nthreads > 20)
        printf("(%zu more)\n", nthreads - 20);
    printf("\n%-28s %16s\n", "longest blocked", "ms");
    for (int k = 0; k < 5; k++) {
        struct thread *best = NULL;
        for (size_t i = 0; i < nthreads; i++)
            if (threads[i].longest > 0 && (!best || threads[i].longest > best->longest))
                best = &threads[i];
        if (!best)
            break;
        printf("%-28.28s %16.3f\n", best->name, best->longest / 1000);
        best->longest = -best->longest;             /* taken */
    }
    free(runs);
    return 0;
}

/* ---- runs ------------------------------------------------------------------------------- */

static int runs(void)
{
    struct event **x = malloc((nevents ? nevents : 1) * sizeof *x);
    size_t nx = 0;
    for (size_t i = 0; i < nevents; i++)
        if (events[i].ph == 'X' && !strcmp(events[i].cat, "scont"))
            x[nx++] = &events[i];
    qsort(x, nx, sizeof *x, by_tid_then_ts);
    for (size_t i = 0; i < nx; i++)
        printf("%u %.3f %s: %s\n", x[i]->tid, x[i]->ts, x[i]->name, x[i]->then);
    free(x);
    return 0;
}

/* ---- svg ---------------------------------------------------------------------------------- */

static bool in_window(const struct event *e, double from, double to)
{
    return to <= from || (e->ts + e->dur >= from && e->ts <= to);
}

static int svg(double from, double to)
{
    double end = 0, start = -1;
    unsigned tracks[64], ntracks = 0;
    for (size_t i = 0; i < nevents; i++) {
        struct event *e = &events[i];
        if (e->ph != 'X' || !in_window(e, from, to))
            continue;
        if (start < 0 || e->ts < start)
            start = e->ts;
        if (e->ts + e->dur > end)
            end = e->ts + e->dur;
        bool known = false;
        for (unsigned k = 0; k < ntracks; k++)
            known |= tracks[k] == e->tid;
        if (!known && ntracks < 64)
            tracks[ntracks++] = e->tid;
    }
    if (start < 0)
        start = 0;
    if (to > from) {
        start = from;
        end = to;
    }
    const double width = 960, row = 28, left = 110;
    double scale = (width - left - 10) / (end > start ? end - start : 1);
    printf("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
           "font-family=\"sans-serif\" font-size=\"11\">\n", width, row * (ntracks + 1) + 10);
    printf("<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    for (unsigned k = 0; k < ntracks; k++)
        printf("<text x=\"4\" y=\"%.0f\">%s %u</text>\n", row * k + 18,
               tracks[k] < 1024 ? "capability" : "OS thread",
               tracks[k] < 1024 ? tracks[k] : tracks[k] - 1024);
    static const char *colors[] = { "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
                                    "#edc948", "#b07aa1", "#ff9da7", "#9c755f" };
    for (size_t i = 0; i < nevents; i++) {
        struct event *e = &events[i];
        unsigned k = 0;
        while (k < ntracks && tracks[k] != e->tid)
            k++;
        if (e->ph != 'X' || k == ntracks || !in_window(e, from, to))
            continue;
        bool idle = !strcmp(e->cat, "idle");
        const char *color = idle ? "#dddddd"
                            : !strcmp(e->cat, "scont") ? colors[(unsigned long)e->scont % 9]
                            : "#333333";
        double x0 = e->ts > start ? e->ts : start;
        double x1 = e->ts + e->dur < end ? e->ts + e->dur : end;
        double w = (x1 - x0) * scale;
        printf("<rect x=\"%.2f\" y=\"%.0f\" width=\"%.2f\" height=\"%.0f\" fill=\"%s\"/>\n",
               left + (x0 - start) * scale, row * k + 6, w > 0.3 ? w : 0.3, row - 10, color);
        if (w > 60 && !idle) {
            char label[96];
            copy(label, sizeof label, strncmp(e->name, "SCont ", 6) ? e->name : e->name + 6);
            for (char *c = label; *c; c++)          /* no markup in a label */
                if (*c == '<' || *c == '>' || *c == '&' || *c == '"')
                    *c = '\'';
            printf("<text x=\"%.2f\" y=\"%.0f\" fill=\"white\">%.*s</text>\n",
                   left + (x0 - start) * scale + 3, row * k + 19, (int)(w / 7), label);
        }
    }
    for (size_t i = 0; i < nevents; i++) {          /* steals: a red tick */
        struct event *e = &events[i];
        unsigned k = 0;
        while (k < ntracks && tracks[k] != e->tid)
            k++;
        if (e->ph != 'i' || strcmp(e->cat, "steal") || k == ntracks || !in_window(e, from, to))
            continue;
        double x = left + (e->ts - start) * scale;
        printf("<line x1=\"%.2f\" y1=\"%.0f\" x2=\"%.2f\" y2=\"%.0f\" stroke=\"red\"/>\n", x,
               row * k + 2, x, row * k + row - 2);
    }
    printf("<text x=\"%.0f\" y=\"%.0f\">%.3f ms; each colour a thread, grey: idle, "
           "red: a steal</text>\n",
           left, row * ntracks + 20, (end - start) / 1000);
    printf("</svg>\n");
    return 0;
}

int main(int argc, char **argv)
{
    bool window = argc == 5 && !strcmp(argv[1], "svg");
    if ((argc != 3 && !window) || (strcmp(argv[1], "summary") && strcmp(argv[1], "check") &&
                                   strcmp(argv[1], "runs") && strcmp(argv[1], "svg"))) {
        fprintf(stderr, "usage: lwc-trace summary|check|runs FILE, lwc-trace svg FILE [FROM TO]\n");
        return 2;
    }
    read_trace(argv[2]);
    if (!strcmp(argv[1], "check"))
        return check();
    if (!strcmp(argv[1], "runs"))
        return runs();
    if (!strcmp(argv[1], "svg"))
        return svg(window ? 1000 * atof(argv[3]) : 0, window ? 1000 * atof(argv[4]) : 0);
    return summary();
}
