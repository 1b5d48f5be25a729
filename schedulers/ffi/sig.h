/* What ffi.c and closure.c share: a signature's insides. */
#ifndef LWC_FFI_SIG_H
#define LWC_FFI_SIG_H

#include <ffi.h>
#include <lwc/ffi.h>

struct lwc_ffi_sig {
    ffi_cif        cif;
    lwc_ffi_kind_t ret;
    unsigned       nargs;
    ffi_type      *types[];       /* the cif points here */
};

/* Results up to this size come back through a buffer of the call's own:
 * Note [Results through a buffer of our own] in ffi.c. */
#define RESULT_BYTES 256

#endif
