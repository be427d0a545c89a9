#include "iscsi/portal.h"

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

#define ISCSI_DEFAULT_PORT 3260

struct iscsi_portal {
	struct reactor *reactor;
	struct reactor_op op;
	int fd;
	uint16_t tpgt;
	bool accepting;               /* an ACCEPT (or the pause after a failed one) is in flight */
	struct __kernel_timespec pause;
	bool stopping;
	portal_accept_fn fn;
	void *ctx;
	char name[64];
};

int portal_parse(const char *spec, char *address, size_t addrlen, uint16_t *port)
{
	const char *colon, *end;
	size_t len;
	unsigned long p = ISCSI_DEFAULT_PORT;
	char *stop;

	if (spec[0] == '[') {
		end = strchr(spec, ']');
		if (!end)
			return -1;
		len = (size_t)(end - spec - 1);
		spec++;
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] && !colon)
			return -1;
	} else {
		colon = strrchr(spec, ':');
		if (colon && strchr(spec, ':') != colon)
			return -1; /* a bare IPv6 address needs brackets */
		len = colon ? (size_t)(colon - spec) : strlen(spec);
	}
	if (!len || len >= addrlen)
		return -1;
	memcpy(address, spec, len);
	address[len] = '\0';
	if (colon) {
		errno = 0;
		p = strtoul(colon + 1, &stop, 10);
		if (errno || *stop || stop == colon + 1 || p == 0 || p > 65535)
			return -1;
	}
	*port = (uint16_t)p;
	return 0;
}

static void portal_accept(struct iscsi_portal *p);

static void portal_paused(struct reactor_op *op, int res)
{
	struct iscsi_portal *p = container_of(op, struct iscsi_portal, op);

	p->accepting = false;
	if (!p->stopping)
		portal_accept(p);
}

static void portal_accepted(struct reactor_op *op, int res)
{
	struct iscsi_portal *p = container_of(op, struct iscsi_portal, op);
	int one = 1;

	p->accepting = false;
	if (p->stopping) {
		if (res >= 0)
			close(res);
		return;
	}
	if (res < 0) {
		/* Out of file descriptors or memory: try again a little later, not in a loop. */
		log_warn("portal %s: accept: %s", p->name, strerror(-res));
		p->pause = (struct __kernel_timespec){ .tv_nsec = 100 * 1000 * 1000 };
		io_uring_prep_timeout(reactor_sqe(p->reactor, &p->op, portal_paused), &p->pause, 0, 0);
		p->accepting = true;
		return;
	}
	/* Small PDUs (responses, R2Ts) must not wait for Nagle. */
	setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	p->fn(p->ctx, res, p->tpgt);
	portal_accept(p);
}

static void portal_accept(struct iscsi_portal *p)
{
	io_uring_prep_accept(reactor_sqe(p->reactor, &p->op, portal_accepted), p->fd, NULL, NULL,
	                     SOCK_CLOEXEC);
	p->accepting = true;
}

int portal_open(struct reactor *r, const char *address, uint16_t port, uint16_t tpgt,
                portal_accept_fn fn, void *ctx, struct iscsi_portal **out, char *err, size_t errlen)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	socklen_t sl;
	struct iscsi_portal *p;
	int one = 1;

	if (inet_pton(AF_INET, address, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		sl = sizeof(*s4);
	} else if (inet_pton(AF_INET6, address, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		sl = sizeof(*s6);
	} else {
		snprintf(err, errlen, "portal address '%s' is neither IPv4 nor IPv6", address);
		return -1;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(p->name, sizeof(p->name), ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", address, port);
	p->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p->fd < 0 || setsockopt(p->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (ss.ss_family == AF_INET6 && setsockopt(p->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(p->fd, (struct sockaddr *)&ss, sl) < 0 || listen(p->fd, 128) < 0) {
		snprintf(err, errlen, "portal %s: %s", p->name, strerror(errno));
		if (p->fd >= 0)
			close(p->fd);
		free(p);
		return -1;
	}
	p->reactor = r;
	p->tpgt = tpgt;
	p->fn = fn;
	p->ctx = ctx;
	portal_accept(p);
	log_info("listening on %s (portal group %u)", p->name, tpgt);
	*out = p;
	return 0;
}

void portal_shutdown(struct iscsi_portal *p)
{
	p->stopping = true;
	/* Ends the ACCEPT in flight. */
	shutdown(p->fd, SHUT_RDWR);
}

bool portal_idle(const struct iscsi_portal *p) { return !p->accepting; }

void portal_free(struct iscsi_portal *p)
{
	if (!p)
		return;
	close(p->fd);
	free(p);
}
