/* A small known program for tests/trace.sh to trace: on one capability,
 * "ping" and "pong" pass a token through two MVars ROUNDS times inside a
 * span, the first thread marks the half, makes a foreign call and runs a
 * detector pass.  It also checks the trace calls' errors. */
#include <lwc/lwc.h>
#include <lwc/mvar.h>
#include <lwc/sched.h>
#include <lwc/trace.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define ROUNDS 20

static lwc_mvar_t *to_pong, *to_ping;

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "trace target: %s\n", what);
        exit(1);
    }
}

static void ping(void *arg)
{
    (void)arg;
    lwc_scont_set_name(lwc_scont_self(), "ping");
    lwc_word_t v;
    lwc_trace_begin("exchange");
    for (int i = 0; i < ROUNDS; i++) {
        check(lwc_mvar_put(to_pong, (lwc_word_t)i) == LWC_OK, "put");
        check(lwc_mvar_take(to_ping, &v) == LWC_OK && v == (lwc_word_t)i, "take");
        if (i == ROUNDS / 2)
            lwc_trace_mark("halfway");
    }
    lwc_trace_end();
}

static void pong(void *arg)
{
    (void)arg;
    lwc_scont_set_name(lwc_scont_self(), "pong");
    lwc_word_t v;
    for (int i = 0; i < ROUNDS; i++) {
        check(lwc_mvar_take(to_pong, &v) == LWC_OK, "take");
        check(lwc_mvar_put(to_ping, v) == LWC_OK, "put");
    }
}

static void *nap(void *arg)
{
    (void)arg;
    usleep(1000);
    return NULL;
}

static void first(void *arg)
{
    (void)arg;
    check(lwc_trace_recording(), "LWC_TRACE did not start a trace");
    check(lwc_trace_start("/tmp/other.json") == LWC_EBUSY, "a second start");
    to_pong = lwc_mvar_new();
    to_ping = lwc_mvar_new();
    lwc_joinable_t *a, *b;
    check(lwc_spawn_joinable(ping, NULL, &a) == LWC_OK, "spawn");
    check(lwc_spawn_joinable(pong, NULL, &b) == LWC_OK, "spawn");
    check(lwc_join(a) == LWC_OK && lwc_join(b) == LWC_OK, "join");
    void *r;
    check(lwc_call_safe(nap, NULL, &r) == LWC_OK, "foreign call");
    check(lwc_gc() >= 0, "lwc_gc");
    lwc_mvar_free(to_pong);
    lwc_mvar_free(to_ping);
}

int main(void)
{
    setenv("LWC_CAPS", "1", 1);
    check(lwc_trace_start(NULL) == LWC_EINVAL, "start(NULL)");
    check(lwc_trace_stop() == LWC_EINVAL, "a stop with no trace");
    check(lwc_main(first, NULL) == LWC_OK, "lwc_main");
    /* A trace of no runtime, to a file that cannot be written. */
    check(lwc_trace_start("/nonexistent/dir/t.json") == LWC_OK, "start");
    lwc_trace_mark("alone");
    check(lwc_trace_stop() == LWC_EINVAL, "a stop that cannot write");
    check(!lwc_trace_recording(), "still recording");
    printf("trace target: done\n");
    return 0;
}
