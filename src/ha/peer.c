#include "ha/peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

#define RETRY_FIRST_MS 250
#define RETRY_MAX_MS 2000
/* A refused connection means the partner's host is up and its daemon not listening yet:
 * it listens as soon as it has started, and every pause here delays the resync that
 * follows, while a refused SYN costs next to nothing.  So no backoff for those. */
#define RETRY_REFUSED_MS 100
/* How often a primary looks whether a connected link is still there. */
#define CHECK_MS 250
/* A SYN that is never answered would otherwise take the kernel minutes to give up. */
#define CONNECT_TIMEOUT_MS 3000
/* After a failed accept (out of descriptors): not in a loop. */
#define ACCEPT_PAUSE_MS 100
/* A link the device drops sooner than this after connecting (a partner that refuses our
 * secret) counts as a failure: the next dial waits out the backoff. */
#define STABLE_MS 5000

struct peer_link {
	struct ha_peer *peer;
	enum proto_link_kind kind;
	unsigned index;
	struct sockaddr_storage local, partner;
	socklen_t addrlen;
	char label[128];              /* "HA1: sync link 0 to 127.0.0.2:3401" */
	int fd;                       /* listening, or connecting; -1 */
	struct reactor_op op;
	bool in_flight;               /* op (accept or connect) submitted */
	bool connecting;
	struct reactor_timer timer;
	unsigned backoff_ms;
	int last_error;               /* of the last logged failure; 0 after a success */
	bool was_connected;           /* handed a socket to the device and not dialed since */
	uint64_t connected_ms;        /* when */
	struct sockaddr_storage from; /* of the accepted peer */
	socklen_t fromlen;
};

struct ha_peer {
	struct reactor *reactor;
	struct ha_device *device;
	enum ha_role role;
	bool stopping;
	unsigned n_links;
	struct peer_link links[2 * HA_MAX_LINKS];
};

static const char *kind_name(enum proto_link_kind kind)
{
	return kind == PROTO_LINK_SYNC ? "sync" : "heartbeat";
}

static int make_addr(const char *address, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, address, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, address, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*len = sizeof(*s6);
		return 0;
	}
	return -1;
}

static void format_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else {
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(s4->sin_port));
	}
}

/* Small messages (acknowledgements, pings) must not wait for Nagle; keepalive notices a
 * vanished partner even while the link is idle between pings. */
static void tune_socket(int fd)
{
	int one = 1, idle = 5, interval = 1, count = 3;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
}

/* Logs a failure once per change of cause, then at debug level. */
static void log_failure(struct peer_link *l, int error, const char *what)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "%s", strerror(error));
	msg[0] = (char)(msg[0] >= 'A' && msg[0] <= 'Z' ? msg[0] - 'A' + 'a' : msg[0]);
	if (error != l->last_error)
		log_warn("%s: %s%s, retrying", l->label, what, msg);
	else
		log_debug("%s: %s%s, retrying", l->label, what, msg);
	l->last_error = error;
}

/* ---- primary: dialing ---- */

static void dial(struct reactor_timer *t);

static void retry_later(struct peer_link *l)
{
	reactor_timer_start(l->peer->reactor, &l->timer, l->backoff_ms, dial);
	l->backoff_ms = MIN(l->backoff_ms * 2, RETRY_MAX_MS);
}

static void connect_timed_out(struct reactor_timer *t)
{
	struct peer_link *l = container_of(t, struct peer_link, timer);

	/* Aborts the connect in flight, which then completes with an error. */
	if (l->connecting)
		shutdown(l->fd, SHUT_RDWR);
}

static void connected(struct reactor_op *op, int res)
{
	struct peer_link *l = container_of(op, struct peer_link, op);
	struct ha_peer *p = l->peer;
	int fd = l->fd;

	l->in_flight = false;
	l->connecting = false;
	l->fd = -1;
	reactor_timer_cancel(p->reactor, &l->timer);
	if (p->stopping) {
		close(fd);
		return;
	}
	if (res < 0) {
		/* The timer's shutdown shows as a reset or abort: say what really happened. */
		log_failure(l, res == -ECONNABORTED || res == -ECONNRESET ? ETIMEDOUT : -res,
		            "connect: ");
		close(fd);
		if (res == -ECONNREFUSED) {
			l->backoff_ms = RETRY_FIRST_MS;
			reactor_timer_start(p->reactor, &l->timer, RETRY_REFUSED_MS, dial);
		} else {
			retry_later(l);
		}
		return;
	}
	tune_socket(fd);
	/* The device logs the link once it is authenticated. */
	log_debug("%s: connected", l->label);
	l->last_error = 0;
	l->was_connected = true;
	l->connected_ms = now_ms();
	ha_device_add_link(p->device, fd, l->kind, l->index);
	reactor_timer_start(p->reactor, &l->timer, CHECK_MS, dial);
}

static void dial(struct reactor_timer *t)
{
	struct peer_link *l = container_of(t, struct peer_link, timer);
	struct ha_peer *p = l->peer;
	struct sockaddr_storage from = l->local;

	if (p->stopping)
		return;
	if (ha_device_link_connected(p->device, l->kind, l->index)) {
		reactor_timer_start(p->reactor, &l->timer, CHECK_MS, dial);
		return;
	}
	if (l->was_connected) {
		l->was_connected = false;
		if (now_ms() - l->connected_ms < STABLE_MS) {
			log_debug("%s: dropped at once, dialing again in %u ms", l->label, l->backoff_ms);
			retry_later(l);
			return;
		}
		log_debug("%s: not connected, dialing", l->label);
		l->backoff_ms = RETRY_FIRST_MS;
	}
	/* Any source port: a fixed one would wait out TIME_WAIT after each reconnect. */
	if (from.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&from)->sin6_port = 0;
	else
		((struct sockaddr_in *)&from)->sin_port = 0;
	l->fd = socket(l->local.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l->fd < 0 || bind(l->fd, (struct sockaddr *)&from, l->addrlen) < 0) {
		log_failure(l, errno, "local address: ");
		if (l->fd >= 0)
			close(l->fd);
		l->fd = -1;
		retry_later(l);
		return;
	}
	io_uring_prep_connect(reactor_sqe(p->reactor, &l->op, connected), l->fd, (struct sockaddr *)&l->partner,
	                      l->addrlen);
	l->in_flight = true;
	l->connecting = true;
	reactor_timer_start(p->reactor, &l->timer, CONNECT_TIMEOUT_MS, connect_timed_out);
}

/* ---- secondary: listening ---- */

static void accept_next(struct peer_link *l);

static void accept_paused(struct reactor_timer *t)
{
	struct peer_link *l = container_of(t, struct peer_link, timer);

	if (!l->peer->stopping)
		accept_next(l);
}

static void accepted(struct reactor_op *op, int res)
{
	struct peer_link *l = container_of(op, struct peer_link, op);
	struct ha_peer *p = l->peer;
	char from[INET6_ADDRSTRLEN + 16];

	l->in_flight = false;
	if (p->stopping) {
		if (res >= 0)
			close(res);
		return;
	}
	if (res < 0) {
		log_failure(l, -res, "accept: ");
		reactor_timer_start(p->reactor, &l->timer, ACCEPT_PAUSE_MS, accept_paused);
		return;
	}
	tune_socket(res);
	format_addr(&l->from, from, sizeof(from));
	log_debug("%s: connection from %s", l->label, from);
	l->last_error = 0;
	ha_device_add_link(p->device, res, l->kind, l->index);
	accept_next(l);
}

static void accept_next(struct peer_link *l)
{
	l->fromlen = sizeof(l->from);
	io_uring_prep_accept(reactor_sqe(l->peer->reactor, &l->op, accepted), l->fd, (struct sockaddr *)&l->from,
	                     &l->fromlen, SOCK_CLOEXEC);
	l->in_flight = true;
}

static int listen_on(struct peer_link *l, char *err, size_t errlen)
{
	int one = 1;

	l->fd = socket(l->local.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l->fd < 0 || setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (l->local.ss_family == AF_INET6 &&
	     setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(l->fd, (struct sockaddr *)&l->local, l->addrlen) < 0 || listen(l->fd, 4) < 0) {
		snprintf(err, errlen, "%s: cannot listen: %s", l->label, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- the manager ---- */

static int setup_link(struct ha_peer *p, const char *name, const struct ha_peer_link *spec, struct peer_link *l,
                      char *err, size_t errlen)
{
	socklen_t partner_len;
	char local[INET6_ADDRSTRLEN + 16], partner[INET6_ADDRSTRLEN + 16];

	l->peer = p;
	l->fd = -1;
	l->kind = spec->kind;
	l->index = spec->index;
	l->backoff_ms = RETRY_FIRST_MS;
	if (make_addr(spec->local_address, spec->local_port, &l->local, &l->addrlen) < 0 ||
	    make_addr(spec->partner_address, spec->partner_port, &l->partner, &partner_len) < 0 ||
	    l->local.ss_family != l->partner.ss_family || spec->index >= HA_MAX_LINKS) {
		snprintf(err, errlen, "%s: %s link %u: bad addresses %s:%u and %s:%u", name, kind_name(spec->kind),
		         spec->index, spec->local_address, spec->local_port, spec->partner_address,
		         spec->partner_port);
		return -1;
	}
	format_addr(&l->local, local, sizeof(local));
	format_addr(&l->partner, partner, sizeof(partner));
	if (p->role == HA_ROLE_PRIMARY)
		snprintf(l->label, sizeof(l->label), "%s: %s link %u to %s", name, kind_name(l->kind), l->index,
		         partner);
	else
		snprintf(l->label, sizeof(l->label), "%s: %s link %u on %s", name, kind_name(l->kind), l->index,
		         local);
	return 0;
}

int ha_peer_start(struct reactor *r, const struct ha_peer_params *params, struct ha_peer **out, char *err,
                  size_t errlen)
{
	struct ha_peer *p;

	if (params->n_links == 0 || params->n_links > 2 * HA_MAX_LINKS) {
		snprintf(err, errlen, "%s: %u links; 1 to %d are possible", params->name, params->n_links,
		         2 * HA_MAX_LINKS);
		return -1;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		snprintf(err, errlen, "%s: out of memory", params->name);
		return -1;
	}
	p->reactor = r;
	p->device = params->device;
	p->role = params->role;
	for (unsigned i = 0; i < params->n_links; i++) {
		struct peer_link *l = &p->links[i];

		p->n_links = i + 1;
		if (setup_link(p, params->name, &params->links[i], l, err, errlen) < 0 ||
		    (p->role == HA_ROLE_SECONDARY && listen_on(l, err, errlen) < 0)) {
			ha_peer_free(p);
			return -1;
		}
	}
	for (unsigned i = 0; i < p->n_links; i++) {
		struct peer_link *l = &p->links[i];

		if (p->role == HA_ROLE_SECONDARY) {
			log_info("%s: listening", l->label);
			accept_next(l);
		} else {
			reactor_timer_start(r, &l->timer, 0, dial);
		}
	}
	*out = p;
	return 0;
}

void ha_peer_stop(struct ha_peer *p)
{
	if (p == NULL || p->stopping)
		return;
	p->stopping = true;
	for (unsigned i = 0; i < p->n_links; i++) {
		struct peer_link *l = &p->links[i];

		reactor_timer_cancel(p->reactor, &l->timer);
		/* Ends the accept or connect in flight. */
		if (l->fd >= 0)
			shutdown(l->fd, SHUT_RDWR);
	}
}

bool ha_peer_idle(const struct ha_peer *p)
{
	for (unsigned i = 0; i < p->n_links; i++)
		if (p->links[i].in_flight)
			return false;
	return true;
}

void ha_peer_free(struct ha_peer *p)
{
	if (p == NULL)
		return;
	for (unsigned i = 0; i < p->n_links; i++) {
		reactor_timer_cancel(p->reactor, &p->links[i].timer);
		if (p->links[i].fd >= 0)
			close(p->links[i].fd);
	}
	free(p);
}
