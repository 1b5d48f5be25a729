/* A program for tests/view.sh to look at: a thread named "taker" blocked in
 * waits_in_take on an MVar that static data holds, another blocked for good
 * on a private one, and the first thread stopped in view_stop_here (where
 * gdb breaks).  It prints the thread view on stdout, by the call and then
 * by LWC_SCONTS_SIGNAL's signal, and ends normally. */
#include <lwc/detect.h>
#include <lwc/io.h>
#include <lwc/lwc.h>
#include <lwc/mvar.h>
#include <lwc/sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static lwc_mvar_t *never_filled_yet;

static void check(int err, const char *what)
{
    if (err != LWC_OK) {
        fprintf(stderr, "view target: %s: %s\n", what, lwc_strerror(err));
        exit(1);
    }
}

__attribute__((noinline)) static void waits_in_take(void)
{
    lwc_word_t v;
    check(lwc_mvar_take(never_filled_yet, &v), "take");
}

static void taker(void *arg)
{
    (void)arg;
    check(lwc_scont_set_name(lwc_scont_self(), "taker"), "name");
    waits_in_take();
}

static void forgotten(void *arg)
{
    (void)arg;
    lwc_scont_set_name(lwc_scont_self(), "forgotten");
    lwc_mvar_t *mine = lwc_mvar_new();
    lwc_word_t v;
    int err = lwc_mvar_take(mine, &v);          /* woken by lwc_gc below */
    printf("forgotten woke with %s\n", lwc_strerror(err));
    lwc_mvar_free(mine);
}

__attribute__((noinline)) void view_stop_here(void)
{
    __asm__ __volatile__("" ::: "memory");
}

/* The view by signal: stderr goes to a pipe while lwc's watcher prints. */
static void view_by_signal(void)
{
    int p[2], saved = dup(STDERR_FILENO);
    if (pipe(p) != 0 || saved < 0)
        exit(1);
    dup2(p[1], STDERR_FILENO);
    raise(SIGUSR1);
    unsigned ready;
    check(lwc_wait_fd(p[0], LWC_FD_READ, LWC_NEVER, &ready), "wait for the view");
    char buf[4096];
    ssize_t n = read(p[0], buf, sizeof buf - 1);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(p[0]);
    close(p[1]);
    buf[n > 0 ? n : 0] = 0;
    printf("by signal:\n%s", buf);
}

static void first(void *arg)
{
    (void)arg;
    lwc_joinable_t *t;
    never_filled_yet = lwc_mvar_new();
    check(lwc_spawn_joinable(taker, NULL, &t), "spawn");
    check(lwc_spawn(forgotten, NULL), "spawn");
    check(lwc_yield(), "yield");                /* both block */
    check(lwc_yield(), "yield");
    printf("by call:\n");
    fflush(stdout);
    check(lwc_sconts_print(STDOUT_FILENO), "view");
    view_by_signal();
    fflush(stdout);
    view_stop_here();
    check(lwc_mvar_put(never_filled_yet, 1), "put");
    check(lwc_join(t), "join");
    printf("lwc_gc woke %d\n", lwc_gc());
    lwc_yield();
}

int main(void)
{
    setenv("LWC_SCONTS_SIGNAL", "USR1", 1);
    setenv("LWC_CAPS", "1", 1);
    check(lwc_main(first, NULL), "lwc_main");
    printf("view target: done\n");
    return 0;
}
