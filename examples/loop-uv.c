/* A libuv program with timers of its own and a TCP server whose connection
 * handlers are lwc threads (liblwc-loop-uv): libuv accepts, each connection
 * becomes an lwc thread that reads lines with lwc_wait_fd, counts them in an
 * MVar shared by every handler, sleeps a little as if it worked, and
 * answers.  Clients, lwc threads too, talk to it; a uv timer beats meanwhile,
 * and when the clients are done the program closes its handles and uv_run
 * returns.
 *
 *   cc loop-uv.c $(pkg-config --cflags --libs lwc-loop-uv) -o loop-uv */
#include <errno.h>
#include <lwc/loop_uv.h>
#include <lwc/mvar.h>
#include <lwc/sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#define CLIENTS 8
#define LINES 20

static lwc_loop_t *loop;
static lwc_mvar_t *served;       /* lines answered so far, by every handler */
static lwc_mvar_t *clients_done;
static uv_tcp_t server;
static uv_timer_t beat;
static int beats, port;

/* ---- lwc threads ------------------------------------------------------------------- */

/* Read up to a newline (the peer sends one line at a time); 0 at EOF. */
static ssize_t read_line(int fd, char *buf, size_t n)
{
    for (;;) {
        ssize_t got = read(fd, buf, n);
        if (got >= 0 || errno != EAGAIN)
            return got;
        if (lwc_wait_fd(fd, LWC_FD_READ, LWC_NEVER, NULL) != LWC_OK)
            return -1;
    }
}

static void handler(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char line[128], reply[160];
    ssize_t n;
    while ((n = read_line(fd, line, sizeof line - 1)) > 0) {
        line[n] = 0;
        lwc_word_t count;
        lwc_mvar_take(served, &count);
        lwc_mvar_put(served, ++count);
        lwc_sleep_ns(200000);                   /* 0.2 ms of "work": others run meanwhile */
        int len = snprintf(reply, sizeof reply, "#%lu %s", (unsigned long)count, line);
        if (write(fd, reply, (size_t)len) != len)
            break;
    }
    lwc_fd_close(fd);
}

static void client(void *arg)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int ok = 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 || errno == EINPROGRESS) {
        lwc_wait_fd(fd, LWC_FD_WRITE, LWC_NEVER, NULL);
        char line[64], reply[160];
        for (int i = 0; i < LINES; i++) {
            int len = snprintf(line, sizeof line, "client %d line %d\n", (int)(intptr_t)arg, i);
            if (write(fd, line, (size_t)len) != len || read_line(fd, reply, sizeof reply) <= 0)
                break;
            ok++;
        }
    }
    lwc_fd_close(fd);
    lwc_mvar_put(clients_done, (lwc_word_t)ok);
}

static lwc_word_t run_clients(void *arg)
{
    (void)arg;
    for (intptr_t i = 0; i < CLIENTS; i++)
        lwc_spawn(client, (void *)i);
    lwc_word_t total = 0, ok;
    for (int i = 0; i < CLIENTS; i++) {
        lwc_mvar_take(clients_done, &ok);
        total += ok;
    }
    return total;
}

/* ---- the libuv side ---------------------------------------------------------------- */

static void on_beat(uv_timer_t *t)
{
    (void)t;
    beats++;
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void on_connection(uv_stream_t *s, int status)
{
    if (status < 0)
        return;
    uv_tcp_t *c = malloc(sizeof *c);
    uv_tcp_init(s->loop, c);
    uv_os_fd_t fd;
    if (uv_accept(s, (uv_stream_t *)c) == 0 && uv_fileno((uv_handle_t *)c, &fd) == 0) {
        int mine = dup(fd);                     /* the connection is lwc's from here on */
        if (mine >= 0)
            lwc_loop_spawn(loop, handler, (void *)(intptr_t)mine);
    }
    uv_close((uv_handle_t *)c, free_handle);
}

static void clients_finished(int err, lwc_word_t answered, void *ud)
{
    (void)ud;
    lwc_word_t count;
    lwc_mvar_take(served, &count);              /* never blocks: it is full */
    printf("  lwc: %lu of %d lines answered (%s); the handlers counted %lu\n",
           (unsigned long)answered, CLIENTS * LINES, lwc_strerror(err), (unsigned long)count);
    printf("  uv: the heartbeat timer fired %d times meanwhile\n", beats);
    uv_close((uv_handle_t *)&server, NULL);     /* nothing left: uv_run returns */
    uv_close((uv_handle_t *)&beat, NULL);
}

int main(void)
{
    uv_loop_t *uv = uv_default_loop();
    if (lwc_loop_new(&loop, NULL) != LWC_OK || lwc_loop_uv_attach(loop, uv) != LWC_OK)
        return 1;
    served = lwc_mvar_new_full(0);
    clients_done = lwc_mvar_new();
    uv_timer_init(uv, &beat);
    uv_timer_start(&beat, on_beat, 1, 1);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_init(uv, &server);
    int len = sizeof sa;
    if (uv_tcp_bind(&server, (struct sockaddr *)&sa, 0) || uv_listen((uv_stream_t *)&server, 128, on_connection) ||
        uv_tcp_getsockname(&server, (struct sockaddr *)&sa, &len))
        return 1;
    port = ntohs(sa.sin_port);
    printf("  uv: serving on 127.0.0.1:%d; connection handlers are lwc threads\n", port);
    lwc_loop_eval_async(loop, run_clients, NULL, clients_finished, NULL, NULL);
    uv_run(uv, UV_RUN_DEFAULT);
    lwc_loop_uv_detach(loop);
    uv_run(uv, UV_RUN_DEFAULT);                 /* the adapter's close callbacks */
    uv_loop_close(uv);
    lwc_mvar_free(served);
    lwc_mvar_free(clients_done);
    int err = lwc_loop_free(loop);
    printf("  %s\n", err == LWC_OK ? "every lwc thread finished; the loop is freed" : lwc_strerror(err));
    return err == LWC_OK ? 0 : 1;
}
