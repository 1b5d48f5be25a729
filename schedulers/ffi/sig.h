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

#endif
