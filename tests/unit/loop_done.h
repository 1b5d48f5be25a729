/* For the loop scheduler's tests (loop.c, loop_uv.c): an evaluation's done
 * callback that records what it was told. */
#ifndef LWC_TEST_LOOP_DONE_H
#define LWC_TEST_LOOP_DONE_H

#include <lwc/loop.h>

struct done { int calls, err; lwc_word_t result; };

static inline void record_done(int err, lwc_word_t result, void *ud)
{
    struct done *d = ud;
    d->calls++;
    d->err = err;
    d->result = result;
}

#endif
