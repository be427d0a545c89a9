#include "common/stop_signal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

struct stop_signal {
	struct reactor *r;
	int fd;
	struct signalfd_siginfo info;
	struct reactor_op op;
	bool reading;
	const char *hup_note;
	stop_signal_fn fn;
	void *arg;
};

int stop_signal_new(struct reactor *r, const char *hup_note, stop_signal_fn fn, void *arg,
                    struct stop_signal **out)
{
	struct stop_signal *s = calloc(1, sizeof(*s));
	sigset_t mask;

	if (!s)
		return -ENOMEM;
	*s = (struct stop_signal){ .r = r, .fd = -1, .hup_note = hup_note, .fn = fn, .arg = arg };
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 || (s->fd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0) {
		int err = -errno;

		free(s);
		return err;
	}
	*out = s;
	return 0;
}

static void signalled(struct reactor_op *op, int res)
{
	struct stop_signal *s = container_of(op, struct stop_signal, op);
	char why[96];

	s->reading = false;
	if (res == (int)sizeof(s->info) && s->info.ssi_signo == SIGHUP) {
		log_info("SIGHUP: %s; ignored", s->hup_note);
		stop_signal_watch(s);
		return;
	}
	if (res == -EINTR || res == -EAGAIN) {
		stop_signal_watch(s);
		return;
	}
	/* A signalfd that cannot be read would leave the daemon deaf to SIGTERM: better
	 * stop cleanly now than be killed later. */
	if (res == (int)sizeof(s->info))
		snprintf(why, sizeof(why), "%s", strsignal((int)s->info.ssi_signo));
	else
		snprintf(why, sizeof(why), "cannot read signals: %s", res < 0 ? strerror(-res) : "short read");
	s->fn(s->arg, why);
}

void stop_signal_watch(struct stop_signal *s)
{
	io_uring_prep_read(reactor_sqe(s->r, &s->op, signalled), s->fd, &s->info, sizeof(s->info), 0);
	s->reading = true;
}

bool stop_signal_reading(const struct stop_signal *s) { return s->reading; }

void stop_signal_free(struct stop_signal *s)
{
	if (!s)
		return;
	close(s->fd);
	free(s);
}
