/* The stop signals of a daemon as reactor events: SIGTERM or SIGINT ends it cleanly, from
 * the loop like every other event, so that what it holds is flushed first.  SIGHUP is
 * caught as well, because its default would kill the daemon without that; it is logged
 * as ignored.  The signals are blocked and read through a signalfd. */
#ifndef TWINSAN_COMMON_STOP_SIGNAL_H
#define TWINSAN_COMMON_STOP_SIGNAL_H

#include <stdbool.h>

#include "common/reactor.h"

struct stop_signal;

/* Called once, from the loop, with what stops the daemon ("Terminated", "Interrupt", or
 * "cannot read signals: ..."). */
typedef void (*stop_signal_fn)(void *arg, const char *why);

/* Blocks SIGTERM, SIGINT and SIGHUP for the calling thread and opens their signalfd.
 * hup_note says why SIGHUP does nothing (for the log line).  0 or -errno. */
int stop_signal_new(struct reactor *r, const char *hup_note, stop_signal_fn fn, void *arg,
                    struct stop_signal **out);
/* Starts reading the signals; fn follows the first stop signal. */
void stop_signal_watch(struct stop_signal *s);
/* True while a read is in flight: the reactor still refers to s. */
bool stop_signal_reading(const struct stop_signal *s);
void stop_signal_free(struct stop_signal *s);

#endif
