/* The blocked-forever detector's own header, for substrate/detect*.c alone:
 * what one pass knows of the world (struct pass) and the steps of a pass,
 * file by file.  The order of a pass is in pass_run (detect.c). */
#ifndef LWC_SUBSTRATE_DETECT_H
#define LWC_SUBSTRATE_DETECT_H

#include <link.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

enum { OBJ_SCONT, OBJ_STACK, OBJ_BLOCK };

struct obj {
    uintptr_t lo, hi;
    uint32_t  index;        /* OBJ_SCONT, OBJ_STACK: into pass.sc */
    uint8_t   kind;
    bool      marked;       /* OBJ_BLOCK */
};

/* What the pass knows of one SCont. */
struct sc {
    lwc_scont_t  *s;
    lwc_status_t  st;       /* as the pass sees it: Note [Idle in a blocking switch] */
    bool          root, marked;
    bool          runs;     /* running, or runnable in a live scheduler */
    bool          inert;    /* a root that cannot run by itself: Note [Work] */
    bool          dormant;  /* Note [Dormant SConts] in internal.h */
    bool          stranded; /* runnable in a scheduler nothing reaches (Note [Orphans]) */
    char         *sp;       /* lowest live word of its stack, or NULL */
    bool          in_buffer; /* a copy SCont's frames, saved: Note [Copy stacks] in copy.c */
    struct retry_waiter *idle_waiter;   /* idles in its blocking switch */
    const char   *kept_by;  /* LWC_GC_DEBUG: what reached it first ... */
    const void   *kept_at;  /* ... and the word, or object, that did */
    lwc_scont_t  *kept_in;  /* ... in this SCont */
    uintptr_t     kept_word;    /* ... and the word's value */
};

struct item { uint8_t kind; void *p; };

/* A runnable SCont and the env of its scheduler: Note [Orphans] in
 * detect_wake.c. */
struct env_ref { uintptr_t env; uint32_t index; bool live; };     /* env first */

/* An SCont blocked in a retry that read the PVar at pv: Note [PVars inside
 * other memory] in detect_mark.c. */
struct retry_edge { uintptr_t pv; uint32_t index; };     /* pv first: first_at_least */

/* Memory scanned as a root: the program's static data, plain threads' stacks. */
struct range { uintptr_t lo, hi; };

struct pass {
    struct obj  *obj;
    size_t       nobj, cap_obj;
    struct sc   *sc;
    size_t       nsc, cap_sc;
    uintptr_t    min, max;      /* no object lies outside */
    uint64_t    *filter;        /* Note [The chunk filter] in detect_mark.c */
    const void **seen;          /* PVars visited: open-addressed set */
    size_t       seen_cap, seen_used;
    struct item *work;
    size_t       nwork, cap_work;
    struct lwc_tx_write *overlay;   /* the writes of blocking switches that idle */
    size_t       noverlay, cap_overlay;
    struct retry_edge *edges;   /* sorted by pv */
    size_t       nedges, cap_edges;
    struct env_ref *envs;       /* sorted by env: Note [Orphans] */
    size_t       nenv, cap_env;
    uintptr_t    env_lo, env_hi;    /* no env lies outside */
    struct range *root_mem;
    size_t       nroot_mem, cap_root_mem;
    struct lwc_thread *caller;      /* who runs the pass ... */
    const void  *caller_sp;         /* ... and the lowest live word of its stack */
    bool         nomem;
    bool         foreign_asleep;    /* every plain OS thread asleep in lwc */
    const char  *region;            /* what is being scanned: for LWC_GC_DEBUG */
    lwc_scont_t *region_scont;
    const void  *region_at;
    uintptr_t    region_word;       /* the word being resolved */
};

struct wake {
    struct pass *ps;
    uint64_t     seq;           /* the sequence the marking saw */
    int          err;
    bool         only_hosts;    /* a deadlock: wake the SConts a host waits for */
    size_t       next;          /* the first SCont the next batch looks at */
    unsigned     woken;
};

/* What the detector keeps between passes, in one place, which the pass does
 * not scan for references (scan_static in detect_roots.c). */
struct lwc_detector {
    pthread_mutex_t lock;            /* one pass at a time */
    pthread_mutex_t report_lock;     /* the handler: never held across a pass */
    lwc_report_fn   report;
    /* Kept from pass to pass, under `lock`: allocated afresh, these two
     * (1.5 MiB) came from mmap and cost a page fault per 4 KiB each pass. */
    uint64_t       *filter;          /* Note [The chunk filter] in detect_mark.c */
    size_t         *radix_count;     /* sort_objs */
    void           *report_arg;
};
extern struct lwc_detector lwc_detector;

/* detect.c: the triggers, and the pass itself. */
bool lwc_gc_foreign_all_asleep(void);
char *lwc_gc_thread_stack_hi(void);

/* detect_mark.c: the objects a word may point into, and marking. */
void *lwc_gc_grow(void *arr, size_t *cap, size_t need, size_t elem, bool *nomem);
void lwc_gc_add_obj(struct pass *ps, uintptr_t lo, uintptr_t hi, uint8_t kind, uint32_t index);
struct obj *lwc_gc_find_obj(struct pass *ps, uintptr_t p);
void lwc_gc_filter_add(struct pass *ps, uintptr_t lo, uintptr_t hi);
bool lwc_gc_debug(void);
void lwc_gc_mark_sc(struct pass *ps, size_t i);
void lwc_gc_env_live(struct pass *ps, uintptr_t env);
void lwc_gc_resolve(struct pass *ps, uintptr_t w);
void lwc_gc_scan(struct pass *ps, const void *lo, const void *hi);
/* The same, the words into [own_lo, own_hi) skipped: [lo, hi) stands for it. */
void lwc_gc_scan_as(struct pass *ps, const void *lo, const void *hi,
                    const void *own_lo, const void *own_hi);
const char *lwc_gc_stack_top(lwc_scont_t *s);
void lwc_gc_drain(struct pass *ps);
void lwc_gc_mark(struct pass *ps);

/* detect_roots.c: where marking starts, and what a pass gathers first. */
int lwc_gc_static_segments(struct dl_phdr_info *info, size_t size, void *arg);
void lwc_gc_pin_root(void *arg, const void *p);
void lwc_gc_pass_free(struct pass *ps);
/* detect.c: one mark that wakes nobody, read by fn (the thread view); ps
 * NULL if capability `stuck` would not stop. */
int  lwc_gc_look(void (*fn)(struct pass *ps, unsigned stuck, void *arg), void *arg);
bool lwc_gc_cap_upcalls(struct lwc_cap *cap, lwc_upcalls_t *u);
void lwc_gc_gather_sconts(struct pass *ps);
void lwc_gc_gather_overlay(struct pass *ps);
void lwc_gc_sort_envs(struct pass *ps);
void lwc_gc_sort_edges(struct pass *ps);
void lwc_gc_envs_inside_roots(struct pass *ps);
void lwc_gc_find_stranded(struct pass *ps);
void lwc_gc_scan_thread_stack(struct pass *ps, const void *lo, const void *hi);

/* detect_wake.c: waking the threads blocked for good, adopting orphans. */
bool lwc_gc_is_victim(const struct wake *wk, const struct sc *c);
bool lwc_gc_wake(struct wake *wk);
bool lwc_gc_choose_adopter(const struct pass *ps, struct lwc_thread *t, lwc_upcalls_t *u);
unsigned lwc_gc_adopt(struct pass *ps, const lwc_upcalls_t *to);

/* detect_report.c: the deadlock report, and LWC_GC_DEBUG's. */
void lwc_gc_debug_report(struct pass *ps);
void lwc_gc_report(struct pass *ps);

#endif
