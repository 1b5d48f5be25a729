/* lwc: pins and traced memory, what the blocked-forever detector can see.
 *
 * lwc cannot see into memory from malloc.  A thread blocked on an MVar (or a
 * PVar, or any data structure) is reachable, and so may still be woken, only
 * through what the detector scans: running SConts' stacks and registers, the
 * program's static data, PVar values, blocks from lwc_alloc, and pinned
 * objects.  A reference kept only in malloc memory, or handed to code lwc
 * does not know (a plain pthread, a callback of another library), must be
 * pinned for as long as that code may use it.  README.md, "Threads blocked
 * forever", states the rules. */
#ifndef LWC_DETECT_H
#define LWC_DETECT_H

#include <lwc/base.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* GHC's StablePtr: obj (an SCont, a PVar, an MVar, an lwc_alloc block, any
 * address the program wants kept) is a root until the matching lwc_unpin.
 * Pins count: pin twice, unpin twice.  NULL is ignored; unpinning what is not
 * pinned warns on stderr and does nothing.  Safe from any thread. */
LWC_API void lwc_pin(const void *obj);
LWC_API void lwc_unpin(const void *obj);
/* How many times obj is pinned now (0 if not). */
LWC_API unsigned lwc_pin_count(const void *obj);

/* n bytes, zeroed and aligned for any type, that the detector scans for
 * references, word by word.  NULL when out of memory.  lwc_free(NULL) does
 * nothing; a pointer that lwc_alloc did not return (or freed already) warns
 * on stderr and is left alone.  Safe from any thread. */
LWC_API void *lwc_alloc(size_t n);
LWC_API void  lwc_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
