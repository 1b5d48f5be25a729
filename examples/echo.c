/* A TCP echo server with one thread per connection, and the client that
 * loads it, on whichever scheduler library this is linked with (echo-rr,
 * echo-ws).  Every socket is non-blocking; a thread that would block waits
 * in lwc_wait_fd, which blocks only that thread.
 *
 *   echo-ws serve PORT                          serve on 127.0.0.1:PORT (0: any free
 *                                               port, printed) until killed
 *   echo-ws load PORT CONNS CLIENTS ROUNDS      open CONNS connections at once, each
 *       echoing a message while all are open; then CLIENTS of them make ROUNDS
 *       round trips of 64 bytes each; print the requests per second
 *
 * tools/echo-bench.sh runs the client against this server and against the
 * same server in Go (tools/peers/echo.go), in one run. */
#define _GNU_SOURCE
#include <errno.h>
#include <lwc/io.h>
#include <lwc/mvar.h>
#include <lwc/sched.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define MSG 64

/* Read or write all of buf, waiting whenever the socket would block.
 * False at end of file or on an error. */
static bool transfer(int fd, char *buf, size_t n, bool writing)
{
    for (size_t done = 0; done < n;) {
        ssize_t r = writing ? write(fd, buf + done, n - done) : read(fd, buf + done, n - done);
        if (r > 0) {
            done += (size_t)r;
        } else if (r < 0 && errno == EAGAIN) {
            if (lwc_wait_fd(fd, writing ? LWC_FD_WRITE : LWC_FD_READ, LWC_NEVER, NULL) != LWC_OK)
                return false;
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else {
            return false;
        }
    }
    return true;
}

/* ---- the server ---------------------------------------------------------------- */

static void connection(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) {
            if (!transfer(fd, buf, (size_t)n, true))
                break;
        } else if (n < 0 && errno == EAGAIN) {
            if (lwc_wait_fd(fd, LWC_FD_READ, LWC_NEVER, NULL) != LWC_OK)
                break;
        } else if (!(n < 0 && errno == EINTR)) {
            break;                                  /* closed by the client */
        }
    }
    lwc_fd_close(fd);
}

static void serve(void *arg)
{
    int port = (int)(intptr_t)arg;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 4096) < 0) {
        perror("echo: bind/listen");
        exit(1);
    }
    socklen_t len = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &len);
    printf("echo: serving on 127.0.0.1:%d (%s)\n", ntohs(a.sin_port), lwc_sched_name());
    fflush(stdout);
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (lwc_spawn(connection, (void *)(intptr_t)fd) != LWC_OK)
                close(fd);
        } else if (errno == EAGAIN) {
            lwc_wait_fd(lfd, LWC_FD_READ, LWC_NEVER, NULL);
        } else if (errno != EINTR && errno != ECONNABORTED) {
            perror("echo: accept");
            lwc_sleep_ns(1000000);                  /* out of fds: let some close */
        }
    }
}

/* ---- the client ---------------------------------------------------------------- */

static int port, conns, clients, rounds;
static atomic_int opened, failed;
static lwc_mvar_t *go;                              /* passed from thread to thread */
static lwc_joinable_t **joins;

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    unsigned rev = 0;
    int err = 0;
    socklen_t len = sizeof err;
    if (lwc_wait_fd(fd, LWC_FD_WRITE, LWC_NEVER, &rev) != LWC_OK ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool round_trip(int fd, char *msg)
{
    char back[MSG];
    return transfer(fd, msg, MSG, true) && transfer(fd, back, MSG, false) &&
           memcmp(back, msg, MSG) == 0;
}

static void client(void *arg)
{
    int i = (int)(intptr_t)arg;
    char msg[MSG];
    memset(msg, 'a' + i % 26, sizeof msg);
    int fd = dial();
    if (fd < 0 || !round_trip(fd, msg)) {
        atomic_fetch_add(&failed, 1);
        if (fd >= 0)
            lwc_fd_close(fd);
        fd = -1;
    }
    atomic_fetch_add(&opened, 1);
    /* Hold the connection until every one is open: take the baton, pass it on. */
    lwc_word_t v;
    lwc_mvar_take(go, &v);
    lwc_mvar_put(go, v);
    if (fd >= 0 && i < clients)
        for (int r = 0; r < rounds; r++)
            if (!round_trip(fd, msg)) {
                atomic_fetch_add(&failed, 1);
                break;
            }
    if (fd >= 0)
        lwc_fd_close(fd);
}

static double now_s(void)
{
    return (double)lwc_clock_ns() / 1e9;
}

static void load(void *arg)
{
    (void)arg;
    go = lwc_mvar_new();
    joins = calloc((size_t)conns, sizeof *joins);
    double t0 = now_s();
    for (int i = 0; i < conns; i++)
        if (lwc_spawn_joinable(client, (void *)(intptr_t)i, &joins[i]) != LWC_OK) {
            fprintf(stderr, "echo: cannot spawn client %d\n", i);
            exit(1);
        }
    while (atomic_load(&opened) < conns)
        lwc_sleep_ns(1000000);
    double t1 = now_s();
    printf("echo: %d connections open at once and echoing (%d failed) in %.2f s\n", conns,
           atomic_load(&failed), t1 - t0);
    lwc_mvar_put(go, 1);
    for (int i = 0; i < conns; i++)
        lwc_join(joins[i]);
    double t2 = now_s();
    double rps = (double)clients * rounds / (t2 - t1);
    printf("echo: %d clients x %d round trips of %d bytes: %.0f requests/s (%d failed)\n",
           clients, rounds, MSG, rps, atomic_load(&failed));
    printf("BENCH {\"name\":\"echo_%s_rps\",\"rps\":%.0f}\n", lwc_sched_name(), rps);
    free(joins);
    lwc_mvar_free(go);
    if (atomic_load(&failed))
        exit(1);
}

static void more_fds(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

int main(int argc, char **argv)
{
    more_fds();
    if (argc == 3 && !strcmp(argv[1], "serve"))
        return lwc_main(serve, (void *)(intptr_t)atoi(argv[2])) == LWC_OK ? 0 : 1;
    if (argc == 6 && !strcmp(argv[1], "load")) {
        port = atoi(argv[2]);
        conns = atoi(argv[3]);
        clients = atoi(argv[4]);
        rounds = atoi(argv[5]);
        if (conns < 1 || clients < 0 || clients > conns || rounds < 0) {
            fprintf(stderr, "echo: want CONNS >= 1, 0 <= CLIENTS <= CONNS, ROUNDS >= 0\n");
            return 2;
        }
        return lwc_main(load, NULL) == LWC_OK ? 0 : 1;
    }
    fprintf(stderr, "usage: %s serve PORT | load PORT CONNS CLIENTS ROUNDS\n", argv[0]);
    return 2;
}
