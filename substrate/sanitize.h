/* Telling valgrind, AddressSanitizer and ThreadSanitizer about our stacks and
 * switches.  Each tool keeps its own idea of "the current stack"; every swap in
 * lwc goes through lwc_swap_to, which calls switch_begin just before and
 * switch_end just after, so the tools' idea never drifts from ours. */
#ifndef LWC_SUBSTRATE_SANITIZE_H
#define LWC_SUBSTRATE_SANITIZE_H

#include "internal.h"

#if LWC_VALGRIND
#include <valgrind/valgrind.h>
static inline void lwc_san_stack_register(struct lwc_stack *st)
{
    st->vg_id = VALGRIND_STACK_REGISTER(lwc_stack_lo(st), st->map + st->map_size);
}
static inline void lwc_san_stack_forget(struct lwc_stack *st)
{
    VALGRIND_STACK_DEREGISTER(st->vg_id);
}
#else
static inline void lwc_san_stack_register(struct lwc_stack *st) { (void)st; }
static inline void lwc_san_stack_forget(struct lwc_stack *st) { (void)st; }
#endif

#if LWC_ASAN
#include <sanitizer/asan_interface.h>
#endif
#if LWC_TSAN
#include <sanitizer/tsan_interface.h>
#endif

static inline void lwc_san_thread_start(struct lwc_thread *t)
{
    (void)t;
#if LWC_ASAN
    pthread_attr_t a;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        pthread_attr_getstack(&a, &t->native_lo, &t->native_size);
        pthread_attr_destroy(&a);
    }
#endif
#if LWC_TSAN
    t->tsan_fiber = __tsan_get_current_fiber();
#endif
}

/* A stack given to an SCont for its first run. */
static inline void lwc_san_stack_fresh(struct lwc_stack *st)
{
    (void)st;
#if LWC_ASAN
    /* A pooled stack keeps the redzones of the frames its last SCont never
     * returned from (it completed, or was freed, inside them): a new frame
     * over one reads as an overflow. */
    __asan_unpoison_memory_region(lwc_stack_lo(st), lwc_stack_usable(st));
#endif
}

static inline void lwc_san_scont_new(lwc_scont_t *s)
{
    (void)s;
#if LWC_TSAN
    /* A fiber takes one of TSan's thread slots: past 8128 alive it dies. */
    s->tsan_fiber = __tsan_create_fiber(0);
#endif
}

static inline void lwc_san_scont_free(lwc_scont_t *s)
{
    (void)s;
#if LWC_TSAN
    if (s->tsan_fiber)
        __tsan_destroy_fiber(s->tsan_fiber);
    s->tsan_fiber = NULL;
#endif
}

/* Just before swapping from `from` (the native stack when NULL) to `to` (the
 * native stack when NULL).  A dying SCont's fake stack is released (NULL save). */
static inline void lwc_san_switch_begin(struct lwc_thread *t, lwc_scont_t *from,
                                        lwc_scont_t *to, bool dying)
{
    (void)t; (void)from; (void)to; (void)dying;
#if LWC_ASAN
    void **save = dying ? NULL : from ? &from->asan_fake_stack : &t->asan_fake_stack;
    const struct lwc_stack *st = to ? lwc_scont_stack(to) : NULL;   /* a copy SCont's is shared */
    if (st)
        __sanitizer_start_switch_fiber(save, lwc_stack_lo(st), lwc_stack_usable(st));
    else
        __sanitizer_start_switch_fiber(save, t->native_lo, t->native_size);
#endif
#if LWC_TSAN
    /* lwc_swap_to is not instrumented: its acquire of the flag that
     * lwc_land releases (Note [Switching out] in scont.c) is said here. */
    if (to)
        __tsan_acquire(&to->switching_out);
    __tsan_switch_to_fiber(to ? to->tsan_fiber : t->tsan_fiber, 0);
#endif
}

/* Just after a swap lands on thread t, in t->current (or t's native stack). */
static inline void lwc_san_switch_end(struct lwc_thread *t)
{
    (void)t;
#if LWC_ASAN
    void *fake = t->current ? t->current->asan_fake_stack : t->asan_fake_stack;
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
}

#endif
