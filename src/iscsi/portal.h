/* A listening TCP portal (RFC 7143 §3.4.1): an IPv4 or IPv6 address and port belonging to
 * a target portal group, accepting connections through the reactor. */
#ifndef TWINSAN_ISCSI_PORTAL_H
#define TWINSAN_ISCSI_PORTAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/reactor.h"

struct iscsi_portal;

/* Called with each accepted socket, which the callee then owns. */
typedef void (*portal_accept_fn)(void *ctx, int fd, uint16_t tpgt);

/* Splits "a.b.c.d:port", "[v6]:port" or "host" (port 3260) into address and port. */
int portal_parse(const char *spec, char *address, size_t addrlen, uint16_t *port);

int portal_open(struct reactor *r, const char *address, uint16_t port, uint16_t tpgt,
                portal_accept_fn fn, void *ctx, struct iscsi_portal **out, char *err, size_t errlen);
/* Stops accepting; the portal is idle once its accept in flight has ended. */
void portal_shutdown(struct iscsi_portal *p);
bool portal_idle(const struct iscsi_portal *p);
void portal_free(struct iscsi_portal *p);

#endif
