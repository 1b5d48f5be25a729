/* Signatures, struct kinds and the plain call: <lwc/ffi.h> over libffi. */
#include "config.h"

#include "sig.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FIELDS 64

/* ---- kinds ---------------------------------------------------------------------- */

static ffi_type *const scalar[] = {
    [LWC_FFI_VOID] = &ffi_type_void,
    [LWC_FFI_SINT8] = &ffi_type_sint8,   [LWC_FFI_UINT8] = &ffi_type_uint8,
    [LWC_FFI_SINT16] = &ffi_type_sint16, [LWC_FFI_UINT16] = &ffi_type_uint16,
    [LWC_FFI_SINT32] = &ffi_type_sint32, [LWC_FFI_UINT32] = &ffi_type_uint32,
    [LWC_FFI_SINT64] = &ffi_type_sint64, [LWC_FFI_UINT64] = &ffi_type_uint64,
    [LWC_FFI_FLOAT] = &ffi_type_float,   [LWC_FFI_DOUBLE] = &ffi_type_double,
    [LWC_FFI_POINTER] = &ffi_type_pointer,
};
#define NSCALAR (sizeof scalar / sizeof scalar[0])

/* Struct kinds live as long as the process, at fixed addresses: signatures
 * and enclosing structs point at their ffi_types.  A kind is its index here
 * plus LWC_FFI_STRUCT_FIRST. */
struct struct_kind {
    ffi_type       type;
    unsigned       nfields;
    lwc_ffi_kind_t fields[];      /* then the elements array, NULL-ended */
};

static pthread_mutex_t kinds_lock = PTHREAD_MUTEX_INITIALIZER;
static struct struct_kind **structs;
static unsigned nstructs, cap_structs;

/* With kinds_lock held: the ffi_type of kind, or NULL if there is none. */
static ffi_type *type_locked(lwc_ffi_kind_t kind)
{
    if ((unsigned)kind < NSCALAR)
        return scalar[kind];
    unsigned i = (unsigned)kind - LWC_FFI_STRUCT_FIRST;
    return kind >= LWC_FFI_STRUCT_FIRST && i < nstructs ? &structs[i]->type : NULL;
}

/* With kinds_lock held: the index of the struct kind with these fields, or
 * nstructs if there is none. */
static unsigned find_struct(unsigned n, const lwc_ffi_kind_t *fields)
{
    unsigned i = 0;
    while (i < nstructs &&
           (structs[i]->nfields != n || memcmp(structs[i]->fields, fields, n * sizeof *fields)))
        i++;
    return i;
}

static struct struct_kind *make_struct(unsigned n, const lwc_ffi_kind_t *fields)
{
    struct struct_kind *k = calloc(1, sizeof *k + n * sizeof *fields + (n + 1) * sizeof(ffi_type *));
    if (!k)
        return NULL;
    ffi_type **elements = (ffi_type **)((char *)k + sizeof *k + n * sizeof *fields);
    for (unsigned i = 0; i < n; i++)
        elements[i] = type_locked(fields[i]);
    memcpy(k->fields, fields, n * sizeof *fields);
    k->nfields = n;
    k->type.type = FFI_TYPE_STRUCT;
    k->type.elements = elements;
    /* Lays the struct out: size and alignment, as the C compiler would. */
    if (ffi_get_struct_offsets(FFI_DEFAULT_ABI, &k->type, NULL) != FFI_OK) {
        free(k);
        return NULL;
    }
    return k;
}

/* With kinds_lock held: room for one more struct kind. */
static bool room_for_struct(void)
{
    if (nstructs < cap_structs)
        return true;
    unsigned c = cap_structs ? 2 * cap_structs : 16;
    struct struct_kind **p = realloc(structs, c * sizeof *p);
    if (!p)
        return false;
    structs = p;
    cap_structs = c;
    return true;
}

int lwc_ffi_struct_kind(lwc_ffi_kind_t *out, unsigned nfields, const lwc_ffi_kind_t *fields)
{
    if (!out || !fields || nfields == 0 || nfields > MAX_FIELDS)
        return LWC_EINVAL;
    int err = LWC_OK;
    pthread_mutex_lock(&kinds_lock);
    for (unsigned i = 0; i < nfields; i++)
        if (fields[i] == LWC_FFI_VOID || !type_locked(fields[i]))
            err = LWC_EINVAL;
    unsigned at = find_struct(nfields, fields);
    if (err == LWC_OK && at == nstructs) {
        struct struct_kind *k = room_for_struct() ? make_struct(nfields, fields) : NULL;
        if (k)
            structs[nstructs++] = k;
        else
            err = LWC_ENOMEM;
    }
    if (err == LWC_OK)
        *out = (lwc_ffi_kind_t)(LWC_FFI_STRUCT_FIRST + at);
    pthread_mutex_unlock(&kinds_lock);
    return err;
}

size_t lwc_ffi_kind_size(lwc_ffi_kind_t kind)
{
    pthread_mutex_lock(&kinds_lock);
    ffi_type *t = kind == LWC_FFI_VOID ? NULL : type_locked(kind);   /* libffi says 1 */
    size_t n = t ? t->size : 0;
    pthread_mutex_unlock(&kinds_lock);
    return n;
}

/* ---- signatures ------------------------------------------------------------------- */

/* A C variadic argument arrives promoted: no float, no integer narrower
 * than int. */
static bool promoted(lwc_ffi_kind_t k)
{
    return k != LWC_FFI_FLOAT && (k < LWC_FFI_SINT8 || k > LWC_FFI_UINT16);
}

static int sig_make(lwc_ffi_sig_t **out, lwc_ffi_kind_t ret, unsigned nfixed, unsigned nargs,
                    const lwc_ffi_kind_t *args, bool variadic)
{
    if (!out || (nargs && !args) || nargs > 0xffff)
        return LWC_EINVAL;
    *out = NULL;
    lwc_ffi_sig_t *sig = malloc(sizeof *sig + nargs * sizeof sig->types[0]);
    if (!sig)
        return LWC_ENOMEM;
    sig->ret = ret;
    sig->nargs = nargs;
    pthread_mutex_lock(&kinds_lock);
    ffi_type *rtype = type_locked(ret);
    bool ok = rtype != NULL;
    for (unsigned i = 0; i < nargs && ok; i++) {
        sig->types[i] = type_locked(args[i]);
        ok = sig->types[i] && args[i] != LWC_FFI_VOID && (i < nfixed || promoted(args[i]));
    }
    pthread_mutex_unlock(&kinds_lock);
    ffi_status st = FFI_BAD_TYPEDEF;
    if (ok && variadic)
        st = ffi_prep_cif_var(&sig->cif, FFI_DEFAULT_ABI, nfixed, nargs, rtype, sig->types);
    else if (ok)
        st = ffi_prep_cif(&sig->cif, FFI_DEFAULT_ABI, nargs, rtype, sig->types);
    if (st != FFI_OK) {
        free(sig);
        return LWC_EINVAL;
    }
    *out = sig;
    return LWC_OK;
}

int lwc_ffi_sig_new(lwc_ffi_sig_t **out, lwc_ffi_kind_t ret, unsigned nargs,
                    const lwc_ffi_kind_t *args)
{
    return sig_make(out, ret, nargs, nargs, args, false);
}

int lwc_ffi_sig_new_variadic(lwc_ffi_sig_t **out, lwc_ffi_kind_t ret, unsigned nfixed,
                             unsigned nargs, const lwc_ffi_kind_t *args)
{
    if (nfixed == 0 || nfixed > nargs) {
        if (out)
            *out = NULL;
        return LWC_EINVAL;
    }
    return sig_make(out, ret, nfixed, nargs, args, true);
}

void lwc_ffi_sig_free(lwc_ffi_sig_t *sig)
{
    free(sig);
}

unsigned lwc_ffi_sig_nargs(const lwc_ffi_sig_t *sig)
{
    return sig ? sig->nargs : 0;
}

lwc_ffi_kind_t lwc_ffi_sig_ret(const lwc_ffi_sig_t *sig)
{
    return sig ? sig->ret : LWC_FFI_VOID;
}

/* ---- the call --------------------------------------------------------------------- */

/* Note [Results through a buffer of our own]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * libffi writes an integer result narrower than a register as a whole
 * ffi_arg, widened, and a small struct returned in registers in whole
 * registers: more bytes than the caller's variable of that kind may have.
 * So a result up to RESULT_BYTES comes back in a buffer here, and exactly
 * its kind's size is copied out (narrowed, for the integers).  A larger
 * struct is returned in memory, which libffi writes at its exact size.
 * closure.c does the converse for a handler's result (widen). */

/* Each case copies a constant size, which the compiler inlines. */
static void narrow(lwc_ffi_kind_t k, const void *from, void *to, size_t size)
{
    ffi_arg a;
    memcpy(&a, from, sizeof a);
    switch (k) {
    case LWC_FFI_SINT8:  *(int8_t *)to = (int8_t)a;     return;
    case LWC_FFI_UINT8:  *(uint8_t *)to = (uint8_t)a;   return;
    case LWC_FFI_SINT16: memcpy(to, &(int16_t){ (int16_t)a }, 2);   return;
    case LWC_FFI_UINT16: memcpy(to, &(uint16_t){ (uint16_t)a }, 2); return;
    case LWC_FFI_SINT32: memcpy(to, &(int32_t){ (int32_t)a }, 4);   return;
    case LWC_FFI_UINT32: memcpy(to, &(uint32_t){ (uint32_t)a }, 4); return;
    case LWC_FFI_FLOAT:  memcpy(to, from, sizeof(float));  return;
    case LWC_FFI_POINTER: memcpy(to, from, sizeof(void *)); return;
    case LWC_FFI_SINT64: case LWC_FFI_UINT64: case LWC_FFI_DOUBLE:
        memcpy(to, from, 8);
        return;
    default:
        memcpy(to, from, size);                     /* a struct */
    }
}

/* The call itself, in the caller's frame or lwc_outcall's. */
static inline void call_direct(const lwc_ffi_sig_t *sig, void (*fn)(void), void *ret, void **args)
{
    size_t size = sig->cif.rtype->size;
    if (sig->ret == LWC_FFI_VOID || size > RESULT_BYTES) {
        ffi_call((ffi_cif *)&sig->cif, fn, ret, args);
        return;
    }
    _Alignas(16) char buf[RESULT_BYTES];
    ffi_call((ffi_cif *)&sig->cif, fn, buf, args);
    narrow(sig->ret, buf, ret, size);               /* leaves errno the callee's */
}

struct call { const lwc_ffi_sig_t *sig; void (*fn)(void); void *ret; void **args; };

static void call_now(void *arg)
{
    struct call *c = arg;
    call_direct(c->sig, c->fn, c->ret, c->args);
}

static bool call_valid(const lwc_ffi_sig_t *sig, void (*fn)(void), void *ret, void **args)
{
    return sig && fn && (ret || sig->ret == LWC_FFI_VOID) && (args || !sig->nargs);
}

int lwc_ffi_call_unsafe(const lwc_ffi_sig_t *sig, void (*fn)(void), void *ret, void **args)
{
    if (!call_valid(sig, fn, ret, args))
        return LWC_EINVAL;
    call_direct(sig, fn, ret, args);
    return LWC_OK;
}

int lwc_ffi_call(const lwc_ffi_sig_t *sig, void (*fn)(void), void *ret, void **args)
{
    if (!call_valid(sig, fn, ret, args))
        return LWC_EINVAL;
    return lwc_outcall(call_now, &(struct call){ sig, fn, ret, args });
}

int lwc_ffi_call_interruptible(const lwc_ffi_sig_t *sig, void (*fn)(void), void *ret, void **args)
{
    if (!call_valid(sig, fn, ret, args))
        return LWC_EINVAL;
    return lwc_outcall_interruptible(call_now, &(struct call){ sig, fn, ret, args });
}
