/* The C side of tools/peers/ffi_peer.hs. */
#include <pthread.h>

extern long peerEcho(long x);

void peer_empty(void)
{
    __asm__ __volatile__("");
}

long peer_call_many(long (*cb)(long), long n)
{
    long sum = 0;
    for (long i = 0; i < n; i++)
        sum += cb(1);
    return sum;
}

static void *incaller(void *arg)
{
    long n = (long)arg;
    for (long i = 0; i < n; i++)
        peerEcho(1);
    return 0;
}

void peer_incall_many(long n)
{
    pthread_t t;
    pthread_create(&t, 0, incaller, (void *)n);
    pthread_join(t, 0);
}
