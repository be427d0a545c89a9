#include "iscsi/server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/stop_signal.h"
#include "iscsi/conn.h"
#include "iscsi/portal.h"
#include "iscsi/session.h"

#define SERVER_MAX_PORTALS 16
#define SERVER_TICK_MS 250
/* Connections that do not drain by then (a stuck task) are abandoned at shutdown. */
#define SERVER_DRAIN_MS 5000

struct iscsi_server {
	struct reactor *reactor;
	struct iscsi_registry *registry;
	struct iscsi_conn_env env;
	struct iscsi_portal *portals[SERVER_MAX_PORTALS];
	size_t nportals;
	struct stop_signal *signals;
	bool stopping;
	uint64_t stop_started_ms;
	uint64_t last_tick_ms;
};

void iscsi_server_default_params(struct iscsi_server_params *params)
{
	*params = (struct iscsi_server_params){
		.limits = {
			.max_recv_data_segment_length = 256 * 1024,
			.max_burst_length = 1024 * 1024,
			.first_burst_length = 256 * 1024,
			.max_outstanding_r2t = 8,
			.max_connections = 8,
		},
		.login_timeout_ms = 30000,
		.nop_interval_ms = 15000,
		.nop_timeout_ms = 30000,
	};
}

static void server_accepted(void *ctx, int fd, uint16_t tpgt)
{
	struct iscsi_server *srv = ctx;
	struct iscsi_conn *conn;

	if (srv->stopping || conn_new(&srv->env, fd, tpgt, &conn) < 0) {
		log_warn("refusing a connection: %s", srv->stopping ? "shutting down" : "out of memory");
		close(fd);
	}
}

static void server_begin_stop(struct iscsi_server *srv, const char *why)
{
	if (srv->stopping)
		return;
	log_info("shutting down: %s", why);
	srv->stopping = true;
	srv->stop_started_ms = now_ms();
	for (size_t i = 0; i < srv->nportals; i++)
		portal_shutdown(srv->portals[i]);
	sessions_close_all(srv->env.sessions, "target shutting down");
	/* Connections still in login have no session. */
	for (struct iscsi_conn *c = srv->env.conns; c; c = c->next)
		conn_close(c, "target shutting down");
}

static bool server_drained(const struct iscsi_server *srv)
{
	if (srv->env.conns || stop_signal_reading(srv->signals))
		return false;
	for (size_t i = 0; i < srv->nportals; i++)
		if (!portal_idle(srv->portals[i]))
			return false;
	return true;
}

static void server_tick(void *arg)
{
	struct iscsi_server *srv = arg;
	uint64_t now = now_ms();

	if (srv->stopping) {
		if (server_drained(srv)) {
			reactor_stop(srv->reactor);
		} else if (now - srv->stop_started_ms > SERVER_DRAIN_MS) {
			log_warn("shutting down with connections still busy");
			reactor_stop(srv->reactor);
		}
		return;
	}
	if (now - srv->last_tick_ms < 1000)
		return;
	srv->last_tick_ms = now;
	for (struct iscsi_conn *c = srv->env.conns, *next; c; c = next) {
		next = c->next;
		conn_tick(c, now);
	}
}

static void server_signalled(void *arg, const char *why)
{
	server_begin_stop(arg, why);
}

int iscsi_server_new(struct reactor *r, struct iscsi_registry *registry,
                     const struct iscsi_server_params *params, struct iscsi_server **out)
{
	struct iscsi_server *srv = calloc(1, sizeof(*srv));
	int err;

	if (!srv)
		return -ENOMEM;
	srv->reactor = r;
	srv->registry = registry;
	srv->env = (struct iscsi_conn_env){
		.reactor = r,
		.registry = registry,
		.limits = params->limits,
		.login_timeout_ms = params->login_timeout_ms,
		.nop_interval_ms = params->nop_interval_ms,
		.nop_timeout_ms = params->nop_timeout_ms,
	};
	if (sessions_new(&srv->env.sessions) < 0) {
		free(srv);
		return -ENOMEM;
	}
	err = stop_signal_new(r, "reloading the configuration is not supported", server_signalled, srv,
	                      &srv->signals);
	if (err == 0 && reactor_add_ticker(r, SERVER_TICK_MS, server_tick, srv) < 0)
		err = -ENOSPC;
	if (err < 0) {
		iscsi_server_free(srv);
		return err;
	}
	*out = srv;
	return 0;
}

void iscsi_server_free(struct iscsi_server *srv)
{
	if (!srv)
		return;
	reactor_remove_ticker(srv->reactor, server_tick, srv);
	for (size_t i = 0; i < srv->nportals; i++)
		portal_free(srv->portals[i]);
	sessions_free(srv->env.sessions);
	stop_signal_free(srv->signals);
	free(srv);
}

int iscsi_server_add_portal(struct iscsi_server *srv, const char *spec, uint16_t tpgt,
                            char *err, size_t errlen)
{
	char address[64];
	uint16_t port;

	if (srv->nportals == SERVER_MAX_PORTALS) {
		snprintf(err, errlen, "at most %d portals", SERVER_MAX_PORTALS);
		return -1;
	}
	if (portal_parse(spec, address, sizeof(address), &port) < 0) {
		snprintf(err, errlen, "bad portal '%s' (want ADDRESS:PORT or [IPV6]:PORT)", spec);
		return -1;
	}
	if (portal_open(srv->reactor, address, port, tpgt, server_accepted, srv,
	                &srv->portals[srv->nportals], err, errlen) < 0)
		return -1;
	srv->nportals++;
	if (iscsi_registry_add_portal(srv->registry, address, port, tpgt) < 0) {
		snprintf(err, errlen, "cannot list portal %s for discovery", spec);
		return -1;
	}
	return 0;
}

void iscsi_server_serve(struct iscsi_server *srv, struct scsi_target *target)
{
	struct scsi_transport_ops ops;

	sessions_transport_ops(srv->env.sessions, &ops);
	scsi_target_set_transport(target, &ops);
}

/* ---- sessions, for the administrator ---- */

struct session_walk {
	void (*fn)(void *arg, const struct iscsi_session_info *s);
	void *arg;
	const struct scsi_target *target;  /* counting: the target's sessions */
	unsigned count;
};

static void session_visit(void *arg, const struct iscsi_session *s)
{
	struct session_walk *w = arg;
	const struct iscsi_session_params *sp = session_params(s);
	struct iscsi_session_info info = {
		.target = sp->type == ISCSI_SESSION_NORMAL ? sp->target_name : "", .initiator = sp->initiator_name,
		.tsih = sp->tsih, .tpgt = session_itn(s)->tpgt,
	};

	if (w->target) {
		w->count += session_scsi(s) == w->target;
		return;
	}
	memcpy(info.isid, sp->isid, sizeof(info.isid));
	for (const struct iscsi_conn *c = session_conns(s); c && info.n_conns < ISCSI_SESSION_INFO_CONNS;
	     c = c->next_in_session) {
		if (c->state == CONN_CLOSING)
			continue;
		info.conns[info.n_conns].cid = c->params.cid;
		info.conns[info.n_conns++].peer = c->peer;
	}
	w->fn(w->arg, &info);
}

void iscsi_server_sessions(const struct iscsi_server *srv,
                           void (*fn)(void *arg, const struct iscsi_session_info *s), void *arg)
{
	struct session_walk w = { .fn = fn, .arg = arg };

	sessions_each(srv->env.sessions, session_visit, &w);
}

unsigned iscsi_server_target_sessions(const struct iscsi_server *srv, struct iscsi_target *target)
{
	struct session_walk w = { .target = iscsi_target_scsi(target) };

	sessions_each(srv->env.sessions, session_visit, &w);
	return w.count;
}

static bool conn_uses(const struct iscsi_conn *c, struct iscsi_target *target)
{
	return (c->session && session_scsi(c->session) == iscsi_target_scsi(target)) ||
	       (c->login && iscsi_login_target(c->login) == target);
}

unsigned iscsi_server_end_target_sessions(struct iscsi_server *srv, struct iscsi_target *target, const char *why)
{
	unsigned n = sessions_end_target(srv->env.sessions, iscsi_target_scsi(target), why);

	for (struct iscsi_conn *c = srv->env.conns; c; c = c->next)
		if (!c->session && conn_uses(c, target))
			conn_close(c, why);
	return n;
}

bool iscsi_server_target_in_use(const struct iscsi_server *srv, struct iscsi_target *target)
{
	for (const struct iscsi_conn *c = srv->env.conns; c; c = c->next)
		if (conn_uses(c, target))
			return true;
	return false;
}

int iscsi_server_run(struct iscsi_server *srv)
{
	stop_signal_watch(srv->signals);
	return reactor_run(srv->reactor);
}
