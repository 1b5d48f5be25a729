/* A host that owns its thread and its event loop (plain epoll, a frame timer
 * of its own), and runs lwc threads inside it with liblwc-loop: ticks with a
 * budget, timers and fds reported to the host, a token the host resolves
 * from its own frame handler and one a pthread resolves.
 *
 *   cc loop-host.c $(pkg-config --cflags --libs lwc-loop) -o loop-host */
#include <lwc/loop.h>
#include <lwc/mvar.h>
#include <lwc/sched.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

static lwc_token_t *frame_token, *worker_token;
static lwc_mvar_t *box;

/* ---- the lwc side: ordinary threads ------------------------------------------------ */

static void producer(void *arg)
{
    (void)arg;
    for (lwc_word_t i = 1; i <= 5; i++) {
        lwc_sleep_ns(3000000);                  /* 3 ms: the host's epoll waits for it */
        lwc_mvar_put(box, i * i);
    }
}

static lwc_word_t consume(void *arg)
{
    (void)arg;
    lwc_word_t sum = 0, v;
    lwc_spawn(producer, NULL);
    for (int i = 0; i < 5; i++) {
        lwc_mvar_take(box, &v);
        sum += v;
    }
    lwc_word_t frame = 0, from_worker = 0;
    lwc_token_await(frame_token, &frame);       /* the host's 5th frame resolves it */
    lwc_token_await(worker_token, &from_worker);
    printf("  lwc: sum of squares %lu; resolved at frame %lu; the pthread said %lu\n",
           (unsigned long)sum, (unsigned long)frame, (unsigned long)from_worker);
    return sum;
}

static void *worker(void *arg)
{
    (void)arg;
    usleep(30000);
    lwc_token_resolve(worker_token, 42);        /* any OS thread may settle a token */
    return NULL;
}

/* ---- the host ---------------------------------------------------------------------- */

static void wake_up(void *ud)
{
    uint64_t one = 1;
    ssize_t rc = write(*(int *)ud, &one, sizeof one);
    (void)rc;
}

static void done(int err, lwc_word_t result, void *ud)
{
    printf("  host: evaluation done: %s, result %lu\n", lwc_strerror(err), (unsigned long)result);
    *(int *)ud = 1;
}

static void watch(int ep, int fd)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

int main(void)
{
    int wakefd = eventfd(0, EFD_NONBLOCK), ep = epoll_create1(0);
    int frames = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    timerfd_settime(frames, 0, &(struct itimerspec){ { 0, 10000000 }, { 0, 10000000 } }, NULL);
    lwc_loop_t *loop;
    if (lwc_loop_new(&loop, &(lwc_loop_config_t){ .wake = wake_up, .wake_ud = &wakefd }))
        return 1;
    watch(ep, wakefd);
    watch(ep, frames);
    watch(ep, lwc_loop_backend_fd(loop));       /* ready when an fd lwc threads wait on is */
    box = lwc_mvar_new();
    frame_token = lwc_token_new();
    worker_token = lwc_token_new();
    pthread_t p;
    pthread_create(&p, NULL, worker, NULL);
    int finished = 0;
    unsigned long frame = 0, ticks = 0;
    lwc_loop_eval_async(loop, consume, NULL, done, &finished, NULL);
    lwc_loop_status_t st = { .state = LWC_LOOP_MORE };
    while (!finished) {
        struct epoll_event ev[4];
        int n = epoll_wait(ep, ev, 4, lwc_loop_timeout_ms(&st));   /* 0 while MORE */
        for (int i = 0; i < n; i++) {
            uint64_t v;
            if (ev[i].data.fd == frames && read(frames, &v, sizeof v) > 0 && ++frame == 5)
                lwc_token_resolve(frame_token, frame);      /* the host's own work */
            if (ev[i].data.fd == wakefd)
                (void)!read(wakefd, &v, sizeof v);
        }
        lwc_loop_tick(loop, 2000000, &st);      /* at most 2 ms of lwc threads */
        ticks++;
    }
    pthread_join(p, NULL);
    printf("  host: %lu frames, %lu ticks, the host's thread never blocked in lwc\n", frame, ticks);
    lwc_token_free(frame_token);
    lwc_token_free(worker_token);
    lwc_mvar_free(box);
    lwc_loop_free(loop);
    close(frames);
    close(ep);
    close(wakefd);
    return 0;
}
