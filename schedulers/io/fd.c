/* fd waits: lwc_wait_fd and lwc_fd_close for every scheduler.  A waiter
 * blocks through its own switch_to_next, on a node it shares with timers
 * (wait.h); epoll says when the fd is ready, asked by the capabilities
 * themselves through the substrate's poller (Note [The poller] in
 * substrate/service.c), and the waiter is woken through its own
 * unblock_thread. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lwc/io.h>
#include <lwc/lwc.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "wait.h"

/* Note [fd waits]
 * ~~~~~~~~~~~~~~~
 * Each fd has at most one waiting SCont per direction (reading, writing):
 * a second one gets LWC_EBUSY, as two readers of one socket would race for
 * its bytes anyway.  The fd is in the epoll set with EPOLLONESHOT and the
 * directions that have a waiter: an event disables it until it is armed
 * again, so a level-triggered fd that nobody reads does not wake the poller
 * over and over, and a capability polling without blocking never sees an
 * event another is handling.  The waiter registers (and arms) before it
 * blocks, so the event may come first; its node settles that as a timer's
 * does (Note [Timer nodes] in timer.c), and the deadline is a timer on the
 * same node: whichever fires first wins, the other finds it fired.
 *
 * What the poller found: the entry's waiters for the directions that are
 * ready, or all of them on EPOLLERR / EPOLLHUP (a read then returns the
 * error or 0, a write the error), are taken off the entry and fired with
 * what was ready; the directions still waited for are armed again.  The
 * fire happens after the lock is dropped, from a copy (node, generation),
 * so a waiter that has meanwhile given its node back is not disturbed.
 *
 * Closing: the kernel drops a closed fd from the epoll set without a word,
 * and its waiters would wait for their deadline (or for good: they are
 * pinned while they wait, roots for the detector, since the fd may yet
 * become ready).  lwc_fd_close wakes them first, with LWC_ECLOSED, and
 * closes it.  A regular file is always ready (epoll refuses it): its wait
 * returns at once with what was asked. */

enum { RD, WR };
#define CLOSED_BIT 0x80u                /* in a firing: lwc_fd_close */
#define WAKE_KEY UINT64_MAX             /* the eventfd's epoll key */
#define READY_MAX 64

struct fd_entry {
    struct timer *waiter[2];
    uint64_t      gen[2];
    bool          added;                /* in the epoll set (perhaps disabled) */
};

static struct {
    pthread_mutex_t     lock;           /* the table, setting up */
    int                 epfd, wakefd;
    struct fd_entry    *fds;
    size_t              nfds;
    /* between the poller's wait and its handle, which never overlap */
    struct epoll_event  ready[READY_MAX];
    int                 nready;
    _Atomic unsigned    nwaiting;       /* fds with a waiter, for lwc_fd_waits */
} io = { .lock = PTHREAD_MUTEX_INITIALIZER, .epfd = -1, .wakefd = -1 };

__attribute__((destructor)) static void fds_drain(void)
{
    free(io.fds);
    io.fds = NULL;
    io.nfds = 0;
    if (io.epfd >= 0)
        close(io.epfd);
    if (io.wakefd >= 0)
        close(io.wakefd);
    io.epfd = io.wakefd = -1;
}

/* ---- epoll ----------------------------------------------------------------- */

/* Arm fd for the directions that have a waiter.  0, or an errno. */
static int arm(int fd, struct fd_entry *e)
{
    uint32_t want = (e->waiter[RD] ? EPOLLIN | EPOLLRDHUP : 0) | (e->waiter[WR] ? EPOLLOUT : 0);
    if (!want)
        return 0;
    struct epoll_event ev = { .events = want | EPOLLONESHOT, .data.u64 = (uint64_t)fd };
    int op = e->added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    int rc = epoll_ctl(io.epfd, op, fd, &ev);
    if (rc < 0 && errno == ENOENT && op == EPOLL_CTL_MOD)   /* closed and opened again */
        rc = epoll_ctl(io.epfd, EPOLL_CTL_ADD, fd, &ev);
    else if (rc < 0 && errno == EEXIST && op == EPOLL_CTL_ADD)
        rc = epoll_ctl(io.epfd, EPOLL_CTL_MOD, fd, &ev);
    if (rc < 0)
        return errno;
    e->added = true;
    return 0;
}

/* A poll(2) or epoll_wait timeout that ends no earlier than deadline. */
static int timeout_ms(uint64_t deadline)
{
    if (deadline == LWC_NEVER)
        return -1;
    uint64_t now = lwc_clock_ns();
    if (deadline <= now)
        return 0;
    uint64_t ms = (deadline - now + 999999) / 1000000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

static void poller_wait(void *arg, uint64_t deadline)
{
    (void)arg;
    int n = epoll_wait(io.epfd, io.ready, READY_MAX, timeout_ms(deadline));
    io.nready = n > 0 ? n : 0;
}

static void poller_wake(void *arg)
{
    (void)arg;
    uint64_t one = 1;
    ssize_t rc = write(io.wakefd, &one, sizeof one);
    (void)rc;                           /* full (EAGAIN): a wake is pending anyway */
}

/* e's waiter in direction k becomes tm (NULL: none), with io.lock held. */
static void waiter_set(struct fd_entry *e, int k, struct timer *tm)
{
    bool had = e->waiter[RD] || e->waiter[WR];
    e->waiter[k] = tm;
    bool has = e->waiter[RD] || e->waiter[WR];
    if (has != had)
        atomic_fetch_add_explicit(&io.nwaiting, has ? 1u : -1u, memory_order_relaxed);
}

/* Take off e's waiters that `events` makes ready into batch; arm e again
 * for the rest. */
static unsigned take_ready(int fd, struct fd_entry *e, uint32_t events, struct firing *batch)
{
    unsigned n = 0, extra = (events & EPOLLERR ? LWC_FD_ERROR : 0) |
                            (events & EPOLLHUP ? LWC_FD_HANGUP : 0);
    for (int k = RD; k <= WR; k++) {
        struct timer *tm = e->waiter[k];
        uint32_t mine = k == RD ? EPOLLIN | EPOLLRDHUP : EPOLLOUT;
        if (!tm || !(events & (mine | EPOLLERR | EPOLLHUP)))
            continue;
        batch[n++] = (struct firing){ tm, e->gen[k], tm->token, tm->s,
                                      (k == RD ? LWC_FD_READ : LWC_FD_WRITE) | extra };
        waiter_set(e, k, NULL);
    }
    arm(fd, e);
    return n;
}

static void poller_handle(void *arg)
{
    (void)arg;
    struct firing batch[2 * READY_MAX];
    unsigned n = 0;
    pthread_mutex_lock(&io.lock);
    for (int i = 0; i < io.nready; i++) {
        struct epoll_event *ev = &io.ready[i];
        if (ev->data.u64 == WAKE_KEY) {
            uint64_t v;
            ssize_t rc = read(io.wakefd, &v, sizeof v);
            (void)rc;
            continue;
        }
        size_t fd = (size_t)ev->data.u64;
        if (fd < io.nfds)
            n += take_ready((int)fd, &io.fds[fd], ev->events, batch + n);
    }
    io.nready = 0;
    pthread_mutex_unlock(&io.lock);
    for (unsigned i = 0; i < n; i++)
        io_fire(&batch[i]);
}

/* The epoll set, the wake-up eventfd and the poller, once. */
static int io_setup(void)
{
    static _Atomic bool ready;
    if (atomic_load_explicit(&ready, memory_order_acquire))
        return LWC_OK;
    int err = LWC_OK;
    pthread_mutex_lock(&io.lock);
    if (io.epfd < 0) {
        io.epfd = epoll_create1(EPOLL_CLOEXEC);
        io.wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = WAKE_KEY };
        if (io.epfd < 0 || io.wakefd < 0 || epoll_ctl(io.epfd, EPOLL_CTL_ADD, io.wakefd, &ev) < 0)
            err = LWC_ENOMEM;
    }
    if (err == LWC_OK)
        err = lwc_poller_set(&(lwc_poller_t){ poller_wait, poller_handle, poller_wake, NULL });
    if (err == LWC_OK)
        atomic_store_explicit(&ready, true, memory_order_release);
    pthread_mutex_unlock(&io.lock);
    return err;
}

/* ---- registering ------------------------------------------------------------ */

#define ALWAYS_READY 1

/* tm waits on fd for `events`: LWC_OK, ALWAYS_READY (epoll refuses the fd:
 * a regular file), LWC_EBUSY, LWC_EINVAL, LWC_ENOMEM. */
static int fd_register(int fd, unsigned events, struct timer *tm)
{
    pthread_mutex_lock(&io.lock);
    int err = LWC_OK;
    if ((size_t)fd >= io.nfds) {
        size_t n = io.nfds ? io.nfds : 64;
        while (n <= (size_t)fd)
            n *= 2;
        struct fd_entry *f = realloc(io.fds, n * sizeof *f);
        if (!f) {
            err = LWC_ENOMEM;
            goto out;
        }
        memset(f + io.nfds, 0, (n - io.nfds) * sizeof *f);
        io.fds = f;
        io.nfds = n;
    }
    struct fd_entry *e = &io.fds[fd];
    bool rd = events & LWC_FD_READ, wr = events & LWC_FD_WRITE;
    if ((rd && e->waiter[RD]) || (wr && e->waiter[WR])) {
        err = LWC_EBUSY;                            /* Note [fd waits] */
        goto out;
    }
    for (int k = RD; k <= WR; k++) {
        if (k == RD ? rd : wr) {
            waiter_set(e, k, tm);
            e->gen[k] = tm->gen;
        }
    }
    int rc = arm(fd, e);
    if (rc) {
        for (int k = RD; k <= WR; k++)
            if (e->waiter[k] == tm)
                waiter_set(e, k, NULL);
        arm(fd, e);
        err = rc == EPERM ? ALWAYS_READY : rc == ENOMEM || rc == ENOSPC ? LWC_ENOMEM : LWC_EINVAL;
    }
out:
    pthread_mutex_unlock(&io.lock);
    return err;
}

/* tm's wait is over: off fd's entry if the poller did not take it. */
static void fd_unregister(int fd, struct timer *tm)
{
    pthread_mutex_lock(&io.lock);
    struct fd_entry *e = &io.fds[fd];
    for (int k = RD; k <= WR; k++)
        if (e->waiter[k] == tm)
            waiter_set(e, k, NULL);
    pthread_mutex_unlock(&io.lock);
}

/* ---- waiting ------------------------------------------------------------------- */

/* From a plain OS thread, or with the deadline passed: poll(2). */
static int wait_plain(int fd, unsigned events, uint64_t deadline, unsigned *revents)
{
    struct pollfd p = { fd, (short)((events & LWC_FD_READ ? POLLIN : 0) |
                                    (events & LWC_FD_WRITE ? POLLOUT : 0)), 0 };
    for (;;) {
        int n = poll(&p, 1, timeout_ms(deadline));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (p.revents & POLLNVAL))
            return LWC_EINVAL;
        *revents = (p.revents & POLLIN ? LWC_FD_READ : 0) | (p.revents & POLLOUT ? LWC_FD_WRITE : 0) |
                   (p.revents & POLLERR ? LWC_FD_ERROR : 0) | (p.revents & POLLHUP ? LWC_FD_HANGUP : 0);
        return LWC_OK;
    }
}

int lwc_wait_fd(int fd, unsigned events, uint64_t deadline, unsigned *revents)
{
    unsigned none;
    if (!revents)
        revents = &none;
    *revents = 0;
    if (fd < 0 || !events || (events & ~(unsigned)(LWC_FD_READ | LWC_FD_WRITE)) ||
        fcntl(fd, F_GETFD) < 0)
        return LWC_EINVAL;
    if (!lwc_scont_self() || deadline <= lwc_clock_ns())
        return wait_plain(fd, events, lwc_scont_self() ? 0 : deadline, revents);
    int err = io_setup();
    struct timer *tm = NULL;
    if (err == LWC_OK)
        err = io_wait_prepare(&tm, deadline);
    if (err != LWC_OK)
        return err;
    err = fd_register(fd, events, tm);
    if (err != LWC_OK) {
        io_wait_finish(tm);
        if (err == ALWAYS_READY)
            *revents = events;
        return err == ALWAYS_READY ? LWC_OK : err;
    }
    /* A root while it waits: the fd may become ready whatever the threads do. */
    lwc_poller_arm();
    err = io_wait_block(tm, true, "fd", NULL);
    lwc_poller_disarm();
    fd_unregister(fd, tm);
    unsigned r = io_wait_finish(tm);
    if (err == LWC_OK && (r & CLOSED_BIT))
        return LWC_ECLOSED;
    *revents = r & (LWC_FD_READ | LWC_FD_WRITE | LWC_FD_ERROR | LWC_FD_HANGUP);
    return err;
}

int lwc_fd_close(int fd)
{
    if (fd < 0)
        return LWC_EINVAL;
    struct firing batch[2];
    unsigned n = 0;
    pthread_mutex_lock(&io.lock);
    if ((size_t)fd < io.nfds) {
        struct fd_entry *e = &io.fds[fd];
        for (int k = RD; k <= WR; k++) {
            struct timer *tm = e->waiter[k];
            if (tm)
                batch[n++] = (struct firing){ tm, e->gen[k], tm->token, tm->s, CLOSED_BIT };
            waiter_set(e, k, NULL);
        }
        if (e->added)
            epoll_ctl(io.epfd, EPOLL_CTL_DEL, fd, NULL);
        e->added = false;
    }
    pthread_mutex_unlock(&io.lock);
    for (unsigned i = 0; i < n; i++)
        io_fire(&batch[i]);
    return close(fd) == 0 ? LWC_OK : LWC_EINVAL;
}

/* ---- for a host that waits in its own loop ------------------------------------ */

unsigned lwc_fd_waits(lwc_fd_wait_t *out, unsigned max)
{
    if (!out || !max)
        return atomic_load_explicit(&io.nwaiting, memory_order_relaxed);
    unsigned n = 0;
    pthread_mutex_lock(&io.lock);
    for (size_t fd = 0; fd < io.nfds; fd++) {
        struct fd_entry *e = &io.fds[fd];
        if (!e->waiter[RD] && !e->waiter[WR])
            continue;
        if (n < max)
            out[n] = (lwc_fd_wait_t){ (int)fd, (e->waiter[RD] ? LWC_FD_READ : 0u) |
                                               (e->waiter[WR] ? LWC_FD_WRITE : 0u) };
        n++;
    }
    pthread_mutex_unlock(&io.lock);
    return n;
}

int lwc_fd_backend(void)
{
    return io_setup() == LWC_OK ? io.epfd : -1;
}
