/* The iSCSI server: portals, connections and sessions of one daemon on one reactor, and
 * its life from start to a clean stop on SIGTERM or SIGINT. */
#ifndef TWINSAN_ISCSI_SERVER_H
#define TWINSAN_ISCSI_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/reactor.h"
#include "iscsi/login.h"
#include "iscsi/target.h"

struct iscsi_server;

/* Defaults for everything tunable (limits we declare in login, timers). */
struct iscsi_server_params {
	struct iscsi_login_limits limits;
	unsigned login_timeout_ms;
	unsigned nop_interval_ms;
	unsigned nop_timeout_ms;
};
void iscsi_server_default_params(struct iscsi_server_params *params);

int iscsi_server_new(struct reactor *r, struct iscsi_registry *registry,
                     const struct iscsi_server_params *params, struct iscsi_server **out);
void iscsi_server_free(struct iscsi_server *srv);

/* Listens on "addr:port" or "[v6addr]:port" for portal group tpgt, and lists the portal
 * for discovery. */
int iscsi_server_add_portal(struct iscsi_server *srv, const char *spec, uint16_t tpgt,
                            char *err, size_t errlen);
/* Lets the SCSI layer of a target served here abort tasks of any session. */
void iscsi_server_serve(struct iscsi_server *srv, struct scsi_target *target);

/* A session as an administrator sees it (twinctl session list). */
#define ISCSI_SESSION_INFO_CONNS 8
struct iscsi_session_info {
	const char *target;        /* "" for a discovery session */
	const char *initiator;
	uint8_t isid[6];
	uint16_t tsih;
	uint16_t tpgt;             /* the portal group it logged in through */
	unsigned n_conns;
	struct {
		uint16_t cid;
		const char *peer;      /* the initiator's address and port */
	} conns[ISCSI_SESSION_INFO_CONNS];
};
/* Calls fn for every session logged in (full feature phase), newest first; the strings
 * live until the reactor runs again. */
void iscsi_server_sessions(const struct iscsi_server *srv,
                           void (*fn)(void *arg, const struct iscsi_session_info *s), void *arg);
/* How many sessions are logged in to target. */
unsigned iscsi_server_target_sessions(const struct iscsi_server *srv, struct iscsi_target *target);
/* Ends the sessions logged in to target and the logins to it in progress (their
 * connections close); how many sessions there were. */
unsigned iscsi_server_end_target_sessions(struct iscsi_server *srv, struct iscsi_target *target, const char *why);
/* True while a connection, logged in or logging in, still uses target: it may be freed
 * once this is false after iscsi_registry_remove(). */
bool iscsi_server_target_in_use(const struct iscsi_server *srv, struct iscsi_target *target);

/* Runs until SIGTERM or SIGINT, then closes every connection (logging nobody out) and
 * returns 0 once they are gone; or -errno if the reactor failed.  The signals are blocked
 * in the calling thread from iscsi_server_new() on. */
int iscsi_server_run(struct iscsi_server *srv);

#endif
