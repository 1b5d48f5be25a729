/* A round-robin scheduler in about forty lines, on the lwc substrate alone.
 *
 * The run queue is a ring of PVars.  switch_to_next pops it (and, when it is
 * empty but threads are blocked, retries: the capability sleeps until the queue
 * changes); unblock_thread pushes.  A consumer that finds the mailbox empty calls
 * lwc_tx_retry in its own transaction: it blocks through these upcalls, and the
 * producer's write wakes it.  Build it against liblwc and run it. */
#include <lwc/lwc.h>
#include <stdio.h>

#define QCAP 64
static lwc_pvar_t *slot[QCAP], *head, *tail, *live, *mailbox;

static void push(lwc_tx_t *tx, lwc_scont_t *s)
{
    lwc_word_t t = lwc_pvar_read(tx, tail);
    lwc_pvar_write(tx, slot[t % QCAP], (lwc_word_t)s);
    lwc_pvar_write(tx, tail, t + 1);
}

static lwc_scont_t *pop(lwc_tx_t *tx)
{
    lwc_word_t h = lwc_pvar_read(tx, head);
    if (h == lwc_pvar_read(tx, tail))
        return NULL;
    lwc_pvar_write(tx, head, h + 1);
    return (lwc_scont_t *)lwc_pvar_read(tx, slot[h % QCAP]);
}

static lwc_scont_t *next(lwc_tx_t *tx, lwc_scont_t *self, lwc_status_t why, void *env)
{
    (void)self; (void)why; (void)env;
    lwc_scont_t *n = pop(tx);
    if (!n && lwc_pvar_read(tx, live) > 0)
        lwc_tx_retry(tx);               /* someone is blocked: sleep until a push */
    return n;                           /* NULL: all done, release the capability */
}

static void unblock(lwc_tx_t *tx, lwc_scont_t *s, void *env) { (void)env; push(tx, s); }

static lwc_word_t enqueue(lwc_tx_t *tx, void *s) { push(tx, s); return 0; }

static lwc_scont_t *yield_body(lwc_tx_t *tx, lwc_scont_t *self, void *arg, lwc_status_t *st)
{
    (void)arg;
    push(tx, self);
    *st = LWC_BLOCKED_ON_SCHED;
    return pop(tx);
}

/* ---- the threads ---------------------------------------------------------- */

/* A thread counts itself out before it returns, in a transaction of its own: a
 * retry in switch_to_next would roll back a decrement made there. */
static lwc_word_t count_out(lwc_tx_t *tx, void *arg)
{
    (void)arg;
    lwc_pvar_write(tx, live, lwc_pvar_read(tx, live) - 1);
    return 0;
}

static lwc_word_t take(lwc_tx_t *tx, void *arg)
{
    (void)arg;
    lwc_word_t v = lwc_pvar_read(tx, mailbox);
    if (v == 0)
        lwc_tx_retry(tx);               /* blocks this SCont, not the capability */
    lwc_pvar_write(tx, mailbox, 0);
    return v;
}

static lwc_word_t put(lwc_tx_t *tx, void *arg)
{
    if (lwc_pvar_read(tx, mailbox) != 0)
        lwc_tx_retry(tx);
    lwc_pvar_write(tx, mailbox, (lwc_word_t)arg);
    return 0;
}

static void worker(void *arg)
{
    for (int step = 1; step <= 2; step++) {
        printf("  thread %s (SCont %llu), step %d\n", (char *)arg,
               (unsigned long long)lwc_scont_id(lwc_scont_self()), step);
        lwc_switch(yield_body, NULL);
    }
    lwc_atomically(count_out, NULL, NULL);
}

static void consumer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++) {
        lwc_word_t v;
        lwc_atomically(take, NULL, &v);
        printf("  consumer got %lu from the mailbox\n", (unsigned long)v);
    }
    lwc_atomically(count_out, NULL, NULL);
}

static void producer(void *arg)
{
    (void)arg;
    for (lwc_word_t v = 1; v <= 3; v++) {
        printf("  producer puts %lu\n", (unsigned long)v);
        lwc_atomically(put, (void *)(v * 100), NULL);
        lwc_switch(yield_body, NULL);
    }
    lwc_atomically(count_out, NULL, NULL);
}

static lwc_word_t wait_all_done(lwc_tx_t *tx, void *arg)
{
    lwc_scont_t **s = arg;
    if (lwc_pvar_read(tx, live) != 0)
        lwc_tx_retry(tx);               /* a plain OS thread sleeps here */
    for (int i = 0; i < 4; i++)         /* and until every completion committed */
        if (lwc_scont_status(tx, s[i]) != LWC_COMPLETED)
            lwc_tx_retry(tx);
    return 0;
}

int main(void)
{
    for (int i = 0; i < QCAP; i++)
        slot[i] = lwc_pvar_new(0);
    head = lwc_pvar_new(0), tail = lwc_pvar_new(0), live = lwc_pvar_new(0);
    mailbox = lwc_pvar_new(0);
    lwc_upcalls_t rr = { next, unblock, NULL };
    int err = lwc_init(NULL);
    if (err) {
        fprintf(stderr, "lwc_init: %s\n", lwc_strerror(err));
        return 1;
    }
    printf("lwc showcase: a round-robin scheduler written on the substrate\n");
    struct { void (*fn)(void *); const char *name; } threads[] = {
        { consumer, "consumer" }, { worker, "A" }, { worker, "B" }, { producer, "producer" },
    };
    lwc_scont_t *s[4];
    for (int i = 0; i < 4; i++) {
        lwc_scont_attr_t attr = { .name = threads[i].name };
        s[i] = lwc_scont_new(threads[i].fn, (void *)threads[i].name, &attr);
        lwc_scont_set_upcalls(s[i], &rr);
    }
    lwc_pvar_write(NULL, live, 4);
    for (int i = 1; i < 4; i++)         /* queue three, start the first */
        lwc_atomically(enqueue, s[i], NULL);
    lwc_cap_start(s[0]);
    lwc_atomically(wait_all_done, s, NULL);
    printf("all four threads finished\n");
    for (int i = 0; i < 4; i++)
        lwc_scont_release(s[i]);
    lwc_shutdown();
    for (int i = 0; i < QCAP; i++)
        lwc_pvar_free(slot[i]);
    lwc_pvar_free(head), lwc_pvar_free(tail), lwc_pvar_free(live), lwc_pvar_free(mailbox);
    return 0;
}
