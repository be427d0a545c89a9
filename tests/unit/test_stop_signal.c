/* Stop signals arrive as reactor events: SIGHUP is ignored and reading goes on, SIGTERM
 * (or SIGINT) is reported once, with its name. */
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "common/reactor.h"
#include "common/stop_signal.h"

struct seen {
	struct reactor *r;
	int calls;
	char why[96];
};

static void on_stop(void *arg, const char *why)
{
	struct seen *s = arg;

	s->calls++;
	strncpy(s->why, why, sizeof(s->why) - 1);
	reactor_stop(s->r);
}

static void stop(int signo, const char *name)
{
	struct seen seen = { 0 };
	struct stop_signal *sig;

	assert_int_equal(reactor_new(8, &seen.r), 0);
	assert_int_equal(stop_signal_new(seen.r, "nothing to reload", on_stop, &seen, &sig), 0);
	stop_signal_watch(sig);
	/* Blocked now: both wait in the signalfd, SIGHUP read first (lower number). */
	assert_int_equal(raise(SIGHUP), 0);
	assert_int_equal(raise(signo), 0);
	assert_int_equal(reactor_run(seen.r), 0);
	assert_int_equal(seen.calls, 1);
	assert_string_equal(seen.why, name);
	assert_false(stop_signal_reading(sig));
	stop_signal_free(sig);
	reactor_free(seen.r);
}

static void sighup_is_ignored_sigterm_stops(void **state)
{
	(void)state;
	stop(SIGTERM, strsignal(SIGTERM));
}

static void sigint_stops(void **state)
{
	(void)state;
	stop(SIGINT, strsignal(SIGINT));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sighup_is_ignored_sigterm_stops),
		cmocka_unit_test(sigint_stops),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
