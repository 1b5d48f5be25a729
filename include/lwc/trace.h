/* lwc: event traces, a timeline of what the threads did.
 *
 * While a trace records, every capability notes, in a buffer of its OS
 * thread's own (no lock, no system call), each switch (which SCont went out,
 * why, and which came in), each SCont created, woken (and by whom), stolen,
 * each capability idle and woken, each foreign call, each detector pass, and
 * the program's own marks and spans.  The trace is written as Chrome
 * trace-event JSON, which the Perfetto UI (ui.perfetto.dev) and
 * chrome://tracing open as they are: a track per capability, one per OS
 * thread in a foreign call, arrows from each wake-up to the woken thread's
 * next run.  tools/lwc-trace summarizes a trace in a terminal.
 *
 * LWC_TRACE=file.json in the environment at lwc_init records from the start
 * and writes the file at lwc_shutdown.  Off, each place that records costs a
 * load and a branch. */
#ifndef LWC_TRACE_H
#define LWC_TRACE_H

#include <lwc/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Start recording; lwc_trace_stop (or lwc_shutdown) writes path.  LWC_EBUSY
 * while a trace records, LWC_EINVAL for path NULL, LWC_ENOMEM. */
LWC_API int  lwc_trace_start(const char *path);
/* Stop recording and write the file.  LWC_EINVAL if no trace records,
 * LWC_ENOMEM, or LWC_EINVAL if the file cannot be written (errno says why).
 * Events in flight on other OS threads as it stops may be left out. */
LWC_API int  lwc_trace_stop(void);
/* Whether a trace records now. */
LWC_API int  lwc_trace_recording(void);

/* The program's own events, on the caller's track (its capability's, or its
 * OS thread's).  `name` is not copied: a string that lives until the trace
 * is written (a literal).  A span's begin and end pair up on one track. */
LWC_API void lwc_trace_mark(const char *name);
LWC_API void lwc_trace_begin(const char *name);
LWC_API void lwc_trace_end(void);

/* For schedulers: the calling capability took s from capability `victim`'s
 * queue (ws calls it for each steal). */
LWC_API void lwc_trace_steal(lwc_scont_t *s, unsigned victim);

#ifdef __cplusplus
}
#endif
#endif
