/* lwc: calling C functions described at run time, through libffi.
 *
 * A signature describes a C function's return and argument kinds once; it
 * owns a prepared libffi call interface and is reused for every call, from
 * any number of threads at once.  Structs by value are kinds too, made with
 * lwc_ffi_struct_kind.  Link with -llwc-ffi (pkg-config lwc-ffi).
 *
 * lwc_ffi_call is a safe call: the other SConts keep running while the
 * callee blocks (lwc_outcall in <lwc/cap.h> says how; lwc_call_safe there
 * is the same for a plain void *(*)(void *) function, with no libffi).
 * lwc_ffi_call_unsafe is a plain call, for functions that never block: the
 * capability stays with the caller for the call's length. */
#ifndef LWC_FFI_H
#define LWC_FFI_H

#include <lwc/base.h>
#include <lwc/cap.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The kinds of C values.  Every integer width is explicit: pass an int as
 * LWC_FFI_SINT32, a long or a size_t as LWC_FFI_SINT64 / LWC_FFI_UINT64 on
 * LP64 targets.  A struct kind (lwc_ffi_struct_kind) is a value from
 * LWC_FFI_STRUCT_FIRST up. */
typedef enum lwc_ffi_kind {
    LWC_FFI_VOID, LWC_FFI_SINT8, LWC_FFI_UINT8, LWC_FFI_SINT16, LWC_FFI_UINT16,
    LWC_FFI_SINT32, LWC_FFI_UINT32, LWC_FFI_SINT64, LWC_FFI_UINT64,
    LWC_FFI_FLOAT, LWC_FFI_DOUBLE, LWC_FFI_POINTER,
    LWC_FFI_STRUCT_FIRST = 256
} lwc_ffi_kind_t;

/* The kind of a struct whose members have the kinds fields[0..nfields), laid
 * out as the C compiler lays out such a struct (members may be structs).
 * The same list gives the same kind; a kind lives as long as the process.
 * LWC_OK; LWC_EINVAL for no fields, more than 64, a void or unknown field
 * kind, or out NULL; LWC_ENOMEM. */
LWC_API int lwc_ffi_struct_kind(lwc_ffi_kind_t *out, unsigned nfields,
                                const lwc_ffi_kind_t *fields);
/* sizeof a value of the kind: 0 for void or a kind that does not exist. */
LWC_API size_t lwc_ffi_kind_size(lwc_ffi_kind_t kind);

typedef struct lwc_ffi_sig lwc_ffi_sig_t;

/* A signature: return kind ret (LWC_FFI_VOID for none) and nargs arguments of
 * the kinds args[0..nargs).  LWC_OK; LWC_EINVAL for an unknown kind, a void
 * argument, out NULL or args NULL with nargs > 0; LWC_ENOMEM. */
LWC_API int lwc_ffi_sig_new(lwc_ffi_sig_t **out, lwc_ffi_kind_t ret, unsigned nargs,
                            const lwc_ffi_kind_t *args);
/* The same for a variadic function called with nargs arguments, the first
 * nfixed of them named in its prototype (1 <= nfixed <= nargs).  The
 * variadic ones arrive promoted, as C passes them: LWC_EINVAL for a float,
 * or an integer narrower than 32 bits, among them. */
LWC_API int lwc_ffi_sig_new_variadic(lwc_ffi_sig_t **out, lwc_ffi_kind_t ret, unsigned nfixed,
                                     unsigned nargs, const lwc_ffi_kind_t *args);
LWC_API void lwc_ffi_sig_free(lwc_ffi_sig_t *sig);     /* NULL: nothing */
LWC_API unsigned lwc_ffi_sig_nargs(const lwc_ffi_sig_t *sig);
LWC_API lwc_ffi_kind_t lwc_ffi_sig_ret(const lwc_ffi_sig_t *sig);

/* Call fn as sig describes, now, on this capability.  args[i] points at
 * argument i, a value of its kind; the result goes to ret, which points at
 * storage for a value of the return kind (lwc_ffi_kind_size bytes are
 * written, narrowed from what libffi returns; ret may be NULL for void).
 * errno afterwards is the callee's.  LWC_OK, or LWC_EINVAL (sig or fn NULL,
 * ret NULL for a result, args NULL for arguments), and then fn is not
 * called. */
LWC_API int lwc_ffi_call_unsafe(const lwc_ffi_sig_t *sig, void (*fn)(void), void *ret,
                                void **args);

/* The same as a safe call (lwc_outcall in <lwc/cap.h>): the capability goes
 * to the other SConts while fn runs, if it runs long.  LWC_OK, LWC_EINVAL as
 * above, or an error thrown at the caller during the call (the call has
 * run: its result is in ret). */
LWC_API int lwc_ffi_call(const lwc_ffi_sig_t *sig, void (*fn)(void), void *ret, void **args);
/* GHC's interruptible: an error thrown at the caller also makes a blocking
 * system call in the callee return EINTR (lwc_outcall_interruptible). */
LWC_API int lwc_ffi_call_interruptible(const lwc_ffi_sig_t *sig, void (*fn)(void), void *ret,
                                       void **args);

/* ---- Callbacks --------------------------------------------------------------------
 * A closure is a C function pointer (*code) of the signature sig that any C
 * library may call, from any OS thread; each call runs handler(ret, args,
 * ud) as lwc code.  args[i] points at argument i; the handler writes the
 * result, a value of the return kind, at ret.  Called from an SCont (a
 * foreign call of its own, such as qsort's comparator), the handler runs
 * on that SCont, nested, and may yield and block like any of its code.
 * Called from any other OS thread, the call is an in-call: the handler runs
 * as a new SCont with the upcalls of the closure's creator (its scheduler)
 * and the OS thread waits for it (lwc_eval); if that fails (the runtime is
 * down, out of memory) the result is zeroed and a warning printed, since a
 * C caller can take no error.  sig must outlive the closure. */
typedef struct lwc_ffi_closure lwc_ffi_closure_t;
typedef void (*lwc_ffi_handler_t)(void *ret, void **args, void *ud);

/* LWC_OK; LWC_EINVAL (an argument NULL), LWC_ENOMEM. */
LWC_API int lwc_ffi_closure_new(lwc_ffi_closure_t **out, const lwc_ffi_sig_t *sig,
                                lwc_ffi_handler_t handler, void *ud, void (**code)(void));
/* LWC_OK; LWC_EBUSY, and nothing freed, while a call of it is running (its
 * handler calling this, or another thread's); NULL: nothing. */
LWC_API int lwc_ffi_closure_free(lwc_ffi_closure_t *c);

#ifdef __cplusplus
}
#endif
#endif
