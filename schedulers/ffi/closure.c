/* Closures: C function pointers that run lwc code, nested in an SCont's
 * foreign call or as an in-call from any other OS thread. */
#include "config.h"

#include "sig.h"

#include <lwc/cap.h>
#include <lwc/scont.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lwc_ffi_closure {
    ffi_closure       *closure;     /* libffi's, at a writable address */
    const lwc_ffi_sig_t *sig;
    lwc_ffi_handler_t  handler;
    void              *ud;
    lwc_upcalls_t      up;          /* the creator's: in-calls run under them */
    size_t             ret_size;    /* lwc_ffi_kind_size of the result */
    _Atomic unsigned   in_use;      /* calls running */
};

/* libffi wants an integer result narrower than a register as a whole
 * ffi_arg, widened; the handler wrote one of its kind's size (the converse
 * of Note [Results through a buffer of our own] in ffi.c). */
static void widen(lwc_ffi_kind_t k, const void *from, void *to, size_t size)
{
    switch (k) {
    case LWC_FFI_SINT8:  *(ffi_sarg *)to = *(const int8_t *)from;  return;
    case LWC_FFI_UINT8:  *(ffi_arg *)to = *(const uint8_t *)from;  return;
    case LWC_FFI_SINT16: { int16_t v; memcpy(&v, from, 2); *(ffi_sarg *)to = v; return; }
    case LWC_FFI_UINT16: { uint16_t v; memcpy(&v, from, 2); *(ffi_arg *)to = v; return; }
    case LWC_FFI_SINT32: { int32_t v; memcpy(&v, from, 4); *(ffi_sarg *)to = v; return; }
    case LWC_FFI_UINT32: { uint32_t v; memcpy(&v, from, 4); *(ffi_arg *)to = v; return; }
    default:
        memcpy(to, from, size);
    }
}

struct incall {
    struct lwc_ffi_closure *c;
    void  *ret;
    void **args;
};

static void incall_body(void *arg)
{
    struct incall *ic = arg;
    ic->c->handler(ic->ret, ic->args, ic->c->ud);
}

/* From an OS thread that runs no SCont: the handler runs as an SCont of the
 * creator's scheduler, and this thread waits for it. */
static int in_call(struct lwc_ffi_closure *c, void *ret, void **args)
{
    struct incall ic = { c, ret, args };
    lwc_scont_t *s = lwc_scont_new(incall_body, &ic, &(lwc_scont_attr_t){ .upcalls = &c->up });
    if (!s)
        return LWC_ENOMEM;
    /* Queued, not started on an idle capability: the scheduler counts the
     * capabilities it runs on (rr, ws), and one that did not start there
     * would upset the count.  With no scheduler, an idle one it is. */
    int err = c->up.unblock_thread ? lwc_eval_queued(s) : lwc_eval(s);
    lwc_scont_release(s);
    return err;
}

static void on_call(ffi_cif *cif, void *ret, void **args, void *user)
{
    (void)cif;
    struct lwc_ffi_closure *c = user;
    atomic_fetch_add(&c->in_use, 1);
    size_t size = c->ret_size;
    _Alignas(16) char buf[RESULT_BYTES];            /* widened into libffi's after */
    void *out = size > RESULT_BYTES ? ret : buf;
    memset(out, 0, size);                           /* a handler that writes nothing */
    int err = LWC_OK;
    struct incall ic = { c, out, args };
    if (lwc_scont_self())
        lwc_outcall_callback(incall_body, &ic);     /* nested, on this SCont */
    else
        err = in_call(c, out, args);
    if (err != LWC_OK) {
        fprintf(stderr, "lwc: a closure called from a plain OS thread could not run its "
                        "handler (%s): its result is zero\n", lwc_strerror(err));
        memset(out, 0, size);
    }
    if (size && out == buf)
        widen(c->sig->ret, buf, ret, size);
    atomic_fetch_sub(&c->in_use, 1);
}

int lwc_ffi_closure_new(lwc_ffi_closure_t **out, const lwc_ffi_sig_t *sig,
                        lwc_ffi_handler_t handler, void *ud, void (**code)(void))
{
    if (!out || !sig || !handler || !code)
        return LWC_EINVAL;
    *out = NULL;
    struct lwc_ffi_closure *c = calloc(1, sizeof *c);
    void *entry = NULL;
    if (c)
        c->closure = ffi_closure_alloc(sizeof(ffi_closure), &entry);
    if (!c || !c->closure) {
        free(c);
        return LWC_ENOMEM;
    }
    c->sig = sig;
    c->ret_size = lwc_ffi_kind_size(sig->ret);      /* once: it takes a lock */
    c->handler = handler;
    c->ud = ud;
    lwc_scont_t *self = lwc_scont_self();
    if (self)
        lwc_scont_get_upcalls(self, &c->up);
    if (ffi_prep_closure_loc(c->closure, (ffi_cif *)&sig->cif, on_call, c, entry) != FFI_OK) {
        ffi_closure_free(c->closure);
        free(c);
        return LWC_EINVAL;
    }
    *code = (void (*)(void))entry;
    *out = c;
    return LWC_OK;
}

int lwc_ffi_closure_free(lwc_ffi_closure_t *c)
{
    if (!c)
        return LWC_OK;
    if (atomic_load(&c->in_use))
        return LWC_EBUSY;
    ffi_closure_free(c->closure);
    free(c);
    return LWC_OK;
}
