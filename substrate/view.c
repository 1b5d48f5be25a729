/* LWC_SCONTS_SIGNAL: a signal that prints the thread view (lwc_sconts_print
 * in detect_report.c) to stderr. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <lwc/detect.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* Note [The view on a signal]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * A program that hangs has every capability asleep, so nothing of lwc's
 * would look at a flag a signal handler set, and the view itself (locks,
 * malloc, stopping the world) is no work for a handler.  So the handler only
 * writes a byte to a pipe, and a watcher thread that lwc_init starts reads
 * it.  The watcher is no thread of the runtime's: one that lwc knows of and
 * that is awake outside lwc keeps the detector's idle passes from running
 * (Note [Plain OS threads] in detect.c), for as long as it lives.  So each
 * view is printed by a thread of its own, which registers, prints, and is
 * forgotten when it exits. */
static struct {
    int              sig;               /* 0: no watcher */
    int              pipe[2];
    pthread_t        watcher;
    struct sigaction old;
} view;

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    char c = 'v';
    ssize_t n = write(view.pipe[1], &c, 1);     /* full: a view is on its way anyway */
    (void)n;
    errno = saved;
}

static void *print_view(void *arg)
{
    (void)arg;
    int err = lwc_sconts_print(STDERR_FILENO);
    if (err != LWC_OK)
        lwc_warn("the thread view failed: %s", lwc_strerror(err));
    return NULL;
}

static void *watch(void *arg)
{
    (void)arg;
    char c;
    while (read(view.pipe[0], &c, 1) == 1 || errno == EINTR) {
        if (c == 'q')
            break;
        pthread_t t;
        if (pthread_create(&t, NULL, print_view, NULL) == 0)
            pthread_join(t, NULL);
    }
    return NULL;
}

static int signal_named(const char *v)
{
    if (!strncmp(v, "SIG", 3))
        v += 3;
    if (!strcmp(v, "USR1"))
        return SIGUSR1;
    if (!strcmp(v, "USR2"))
        return SIGUSR2;
    char *end;
    long n = strtol(v, &end, 10);
    return *v && !*end && n > 0 && n < SIGRTMAX && n != SIGKILL && n != SIGSTOP ? (int)n : 0;
}

void lwc_view_init(void)
{
    const char *v = getenv("LWC_SCONTS_SIGNAL");
    if (!v || !*v)
        return;
    int sig = signal_named(v);
    if (!sig) {
        lwc_warn("LWC_SCONTS_SIGNAL=%s: not a signal (USR1, USR2 or a number): ignored", v);
        return;
    }
    if (pipe2(view.pipe, O_CLOEXEC) != 0)
        return;
    fcntl(view.pipe[1], F_SETFL, O_NONBLOCK);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (pthread_create(&view.watcher, NULL, watch, NULL) != 0) {
        close(view.pipe[0]);
        close(view.pipe[1]);
        return;
    }
    sigaction(sig, &sa, &view.old);
    view.sig = sig;
}

/* From lwc_shutdown, before the runtime goes: a view under way ends first. */
void lwc_view_shutdown(void)
{
    if (!view.sig)
        return;
    sigaction(view.sig, &view.old, NULL);
    char c = 'q';
    while (write(view.pipe[1], &c, 1) != 1 && errno == EAGAIN)
        usleep(1000);
    pthread_join(view.watcher, NULL);
    close(view.pipe[0]);
    close(view.pipe[1]);
    view.sig = 0;
}
