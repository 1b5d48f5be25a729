/* lwc: a C runtime for user-level schedulers.  This umbrella header includes the
 * substrate's public API; modules have headers of their own. */
#ifndef LWC_H
#define LWC_H

#include <lwc/base.h>
#include <lwc/ptm.h>
#include <lwc/scont.h>
#include <lwc/cap.h>
#include <lwc/exception.h>
#include <lwc/detect.h>
#include <lwc/trace.h>

#endif
