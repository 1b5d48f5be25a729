/* Error names. */
#include <lwc/base.h>

const char *lwc_strerror(int err)
{
    switch (err) {
    case LWC_OK:              return "success";
    case LWC_EINVAL:          return "invalid argument";
    case LWC_ENOMEM:          return "out of memory";
    case LWC_ESTATE:          return "SCont cannot be resumed (running, completed or resumed already)";
    case LWC_EBLOCKED_CONCDS: return "blocked indefinitely on a concurrent data structure";
    case LWC_EBLOCKED_SCHED:  return "blocked indefinitely: its scheduler can never run it";
    case LWC_EDEADLOCK:       return "deadlock: the whole program can make no progress";
    case LWC_EKILLED:         return "killed";
    case LWC_EAGAIN:          return "operation would block";
    case LWC_EWOULDBLOCK:     return "synchronous evaluation met a foreign event";
    case LWC_EBUSY:           return "busy";
    case LWC_ECLOSED:         return "the file descriptor was closed while waited on";
    case LWC_ECANCELED:       return "the token's waiter is gone: nobody will see the value";
    default:                  return "unknown lwc error";
    }
}
