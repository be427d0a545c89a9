/* The API server: its listeners (a Unix socket, optionally TCP with TLS) and connections
 * on the reactor (one RECV and one SEND in flight per connection at most), and one table
 * of methods. */
#include "mgmt/api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "common/util.h"
#include "mgmt/api_auth.h"
#include "mgmt/api_proto.h"
#include "mgmt/api_tls.h"

/* A subscriber that reads more slowly than events come is cut off past this. */
#define MGMT_OUTPUT_MAX (1u << 20)
/* Wrong admin secrets a TCP connection may try before it is closed. */
#define LOGIN_ATTEMPTS 3

struct api_device {
	char name[64];
	const struct mgmt_device_ops *ops;
	void *dev;
};

struct api_lun {
	char target[ISCSI_NAME_MAX];
	uint64_t lun;
	char backing[256];
	char device[64];
	const struct store *store;
};

struct out_line {
	struct out_line *next;
	char *text;
	size_t len, sent;
};

struct api_listener {
	struct mgmt_api *api;
	int fd;
	bool tcp;
	struct reactor_op accept_op, cancel_op;
	unsigned in_flight;  /* ACCEPT and cancel operations */
};

struct api_conn {
	struct mgmt_api *api;
	struct api_conn *next;
	int fd;
	char who[80];        /* "uid 0", "admin@192.0.2.1:41000": for the log */
	struct api_tls *tls; /* on TCP connections */
	bool authenticated;  /* by its uid on the Unix socket, by session.login over TCP */
	unsigned failed_logins;
	struct reactor_op recv_op, send_op, cancel_op;
	unsigned in_flight;  /* RECV, SEND and cancel operations */
	bool receiving, sending;
	bool closing;        /* cancelled; freed once nothing is in flight */
	bool finishing;      /* sends what is queued, then closes */
	bool subscribed;
	struct out_line *out_head, *out_tail;
	size_t out_bytes;
	size_t in_len;
	char in[MGMT_REQUEST_MAX + 1]; /* request bytes (plaintext) */
	char raw[MGMT_REQUEST_MAX];    /* TLS records as received */
};

struct mgmt_api {
	struct reactor *r;
	char version[64];
	uint64_t node_id;
	uint64_t started_ms;
	struct api_listener local, tcp;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct api_tls_ctx *tls;
	char secret[API_SECRET_MAX];
	bool closing;
	struct api_conn *conns;
	const struct iscsi_registry *registry;
	struct api_device *devices;
	size_t n_devices;
	struct api_lun *luns;
	size_t n_luns;
};

/* ---- methods ---- */

typedef json_t *method_fn(struct mgmt_api *api, struct api_conn *c, const json_t *params, struct mgmt_error *err);

static const char *param_str(const json_t *params, const char *name)
{
	return json_string_value(json_object_get(params, name));
}

static struct api_device *device_find(struct mgmt_api *api, const json_t *params, struct mgmt_error *err)
{
	const char *name = param_str(params, "name");

	for (size_t i = 0; i < api->n_devices; i++)
		if (!strcmp(api->devices[i].name, name))
			return &api->devices[i];
	mgmt_fail(err, MGMT_E_NOT_FOUND, "no device named \"%s\"; 'twinctl device list' shows the devices", name);
	return NULL;
}

static json_t *m_server_info(struct mgmt_api *api, struct api_conn *c, const json_t *params, struct mgmt_error *err)
{
	return json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:I}", "version", api->version, "api_version",
	                 MGMT_API_VERSION, "node_id", (json_int_t)api->node_id, "uptime_seconds",
	                 (json_int_t)((now_ms() - api->started_ms) / 1000), "pid", (json_int_t)getpid(),
	                 "targets", (json_int_t)(api->registry ? iscsi_registry_count(api->registry) : 0),
	                 "devices", (json_int_t)api->n_devices);
}

const char *mgmt_access_name(enum store_access a)
{
	switch (a) {
	case STORE_ACCESS_OK: return "ok";
	case STORE_ACCESS_TRANSITIONING: return "transitioning";
	case STORE_ACCESS_UNAVAILABLE: return "unavailable";
	}
	return "unknown";
}

static json_t *target_luns(struct mgmt_api *api, const char *target)
{
	json_t *luns = json_array();

	for (size_t i = 0; luns && i < api->n_luns; i++) {
		const struct api_lun *l = &api->luns[i];

		if (strcmp(l->target, target))
			continue;
		json_array_append_new(luns, json_pack("{s:I, s:s, s:I, s:s, s:s?}", "lun", (json_int_t)l->lun,
		                                      "backing", l->backing, "size", (json_int_t)store_size(l->store),
		                                      "access", mgmt_access_name(store_access(l->store)), "device",
		                                      l->device[0] ? l->device : NULL));
	}
	return luns;
}

static json_t *m_target_list(struct mgmt_api *api, struct api_conn *c, const json_t *params, struct mgmt_error *err)
{
	json_t *targets = json_array(), *portals = json_array();
	size_t n = api->registry ? iscsi_registry_count(api->registry) : 0;

	for (size_t i = 0; targets && i < n; i++) {
		struct iscsi_target *t = iscsi_registry_at(api->registry, i);

		json_array_append_new(targets, json_pack("{s:s, s:s, s:b, s:o}", "name", iscsi_target_name(t), "alias",
		                                         iscsi_target_alias(t), "chap",
		                                         iscsi_target_auth(t)->chap_required, "luns",
		                                         target_luns(api, iscsi_target_name(t))));
	}
	for (size_t i = 0; portals && api->registry && i < iscsi_registry_portal_count(api->registry); i++) {
		char portal[ISCSI_PORTAL_MAX];

		iscsi_registry_portal_format(api->registry, i, portal, sizeof(portal));
		json_array_append_new(portals, json_string(portal));
	}
	return json_pack("{s:o, s:o}", "targets", targets, "portals", portals);
}

static json_t *m_device_list(struct mgmt_api *api, struct api_conn *c, const json_t *params, struct mgmt_error *err)
{
	json_t *devices = json_array();

	for (size_t i = 0; devices && i < api->n_devices; i++)
		json_array_append_new(devices, api->devices[i].ops->status(api->devices[i].dev));
	return json_pack("{s:o}", "devices", devices);
}

static json_t *m_device_status(struct mgmt_api *api, struct api_conn *c, const json_t *params, struct mgmt_error *err)
{
	struct api_device *d = device_find(api, params, err);

	return d ? d->ops->status(d->dev) : NULL;
}

/* Runs a device command: the result names the device, or err carries its message. */
static json_t *command_result(struct api_device *d, int rc, const char *msg, struct mgmt_error *err)
{
	if (rc < 0) {
		/* Named once: the device's own messages may start with its name already. */
		if (strncmp(msg, d->name, strlen(d->name)))
			mgmt_fail(err, MGMT_E_FAILED, "%s: %s", d->name, msg);
		else
			mgmt_fail(err, MGMT_E_FAILED, "%s", msg);
		return NULL;
	}
	return json_pack("{s:s}", "name", d->name);
}

static json_t *m_resolve(struct mgmt_api *api, struct api_conn *c, const json_t *params, struct mgmt_error *err)
{
	struct api_device *d = device_find(api, params, err);
	bool keep_local;
	char msg[256] = "";
	json_t *res;

	if (!d)
		return NULL;
	keep_local = !strcmp(param_str(params, "keep"), "local");
	res = command_result(d, d->ops->resolve_split_brain(d->dev, keep_local, msg, sizeof(msg)), msg, err);
	if (res)
		json_object_set_new(res, "kept", json_string(keep_local ? "local" : "partner"));
	return res;
}

static json_t *m_set_failover(struct mgmt_api *api, struct api_conn *c, const json_t *params, struct mgmt_error *err)
{
	struct api_device *d = device_find(api, params, err);
	const char *strategy = param_str(params, "failover");
	char msg[256] = "";
	json_t *res;

	if (!d)
		return NULL;
	res = command_result(d, d->ops->set_failover(d->dev, strategy, msg, sizeof(msg)), msg, err);
	if (res)
		json_object_set_new(res, "failover", json_string(strategy));
	return res;
}

static json_t *m_verify(struct mgmt_api *api, struct api_conn *c, const json_t *params, struct mgmt_error *err)
{
	struct api_device *d = device_find(api, params, err);
	char msg[256] = "";

	return d ? command_result(d, d->ops->verify(d->dev, msg, sizeof(msg)), msg, err) : NULL;
}

static json_t *m_subscribe(struct mgmt_api *api, struct api_conn *c, const json_t *params, struct mgmt_error *err)
{
	if (!c) {
		mgmt_fail(err, MGMT_E_FAILED, "events need a connection");
		return NULL;
	}
	c->subscribed = true;
	log_info("api: %s subscribed to events", c->who);
	return json_pack("{s:b}", "subscribed", 1);
}

static json_t *m_login(struct mgmt_api *api, struct api_conn *c, const json_t *params, struct mgmt_error *err)
{
	uint8_t binding[API_TLS_BINDING_LEN];

	if (!c || !c->tls) {
		mgmt_fail(err, MGMT_E_FAILED, "only TCP connections log in; on the Unix socket the peer's uid decides");
		return NULL;
	}
	if (api_tls_binding(c->tls, binding) < 0 ||
	    !api_login_check(api->secret, binding, sizeof(binding), param_str(params, "proof"))) {
		log_warn("api: %s: wrong admin secret", c->who);
		/* Guessing costs a new TLS handshake every few tries. */
		if (++c->failed_logins >= LOGIN_ATTEMPTS)
			c->finishing = true;
		mgmt_fail(err, MGMT_E_DENIED, "wrong admin secret; use the one in the daemon's admin secret file");
		return NULL;
	}
	c->authenticated = true;
	log_info("api: %s logged in", c->who);
	return json_pack("{s:b}", "logged_in", 1);
}

static const char *const keep_choices[] = { "local", "partner", NULL };
static const char *const failover_choices[] = { "heartbeat", "majority", NULL };
static const struct mgmt_param p_name[] = {
	{ "name", MGMT_PARAM_STRING, true, NULL },
	{ NULL, 0, false, NULL },
};
static const struct mgmt_param p_resolve[] = {
	{ "name", MGMT_PARAM_STRING, true, NULL },
	{ "keep", MGMT_PARAM_STRING, true, keep_choices },
	{ NULL, 0, false, NULL },
};
static const struct mgmt_param p_login[] = {
	{ "proof", MGMT_PARAM_STRING, true, NULL },
	{ NULL, 0, false, NULL },
};
static const struct mgmt_param p_failover[] = {
	{ "name", MGMT_PARAM_STRING, true, NULL },
	{ "failover", MGMT_PARAM_STRING, true, failover_choices },
	{ NULL, 0, false, NULL },
};

static const struct api_method {
	const char *name;
	method_fn *fn;
	bool changes_state;            /* logged with the caller */
	const struct mgmt_param *params;
	bool before_login;             /* callable by a TCP client that has not logged in */
} methods[] = {
	{ "session.login", m_login, false, p_login, true },
	{ "server.info", m_server_info, false, NULL, false },
	{ "target.list", m_target_list, false, NULL, false },
	{ "device.list", m_device_list, false, NULL, false },
	{ "device.status", m_device_status, false, p_name, false },
	{ "device.resolve_split_brain", m_resolve, true, p_resolve, false },
	{ "device.set_failover", m_set_failover, true, p_failover, false },
	{ "device.verify", m_verify, true, p_name, false },
	{ "events.subscribe", m_subscribe, false, NULL, false },
};

static const struct api_method *method_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(methods); i++)
		if (!strcmp(methods[i].name, name))
			return &methods[i];
	return NULL;
}

/* The response line to one request; c is NULL outside a connection. */
static char *api_answer(struct mgmt_api *api, struct api_conn *c, const char *line, size_t len)
{
	struct mgmt_request req;
	struct mgmt_error err = { "", "" };
	const struct api_method *m = NULL;
	json_t *result = NULL;
	char *out;

	if (mgmt_request_parse(line, len, &req, &err) == 0) {
		m = method_find(req.method);
		if (!m)
			mgmt_fail(&err, MGMT_E_METHOD, "no method \"%.64s\" (this server speaks API version %d)",
			          req.method, MGMT_API_VERSION);
		else if (c && !c->authenticated && !m->before_login)
			mgmt_fail(&err, MGMT_E_DENIED, "log in first (session.login with the proof of the admin secret)");
		else if (mgmt_params_check(m->params, req.params, &err) == 0 &&
		         !(result = m->fn(api, c, req.params, &err)) && !err.code[0])
			mgmt_fail(&err, MGMT_E_FAILED, "out of memory");
	}
	if (m && m->changes_state) {
		char *p = json_dumps(req.params, JSON_COMPACT);

		log_info("api: %s: %s %s: %s", c ? c->who : "local", m->name, p ? p : "", result ? "done" : err.message);
		free(p);
	}
	out = result ? mgmt_response_result(req.id, result) : mgmt_response_error(req.id, &err);
	mgmt_request_free(&req);
	return out;
}

char *mgmt_api_execute(struct mgmt_api *api, const char *line, size_t len)
{
	return api_answer(api, NULL, line, len);
}

/* ---- connections ---- */

static void conn_recv(struct api_conn *c);
static void conn_send(struct api_conn *c);

static bool api_idle(const struct mgmt_api *api)
{
	return !api->local.in_flight && !api->tcp.in_flight && !api->conns;
}

static void conn_free(struct api_conn *c)
{
	struct mgmt_api *api = c->api;

	for (struct api_conn **p = &api->conns; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	while (c->out_head) {
		struct out_line *o = c->out_head;

		c->out_head = o->next;
		free(o->text);
		free(o);
	}
	api_tls_free(c->tls);
	close(c->fd);
	free(c);
	if (api->closing && api_idle(api))
		reactor_stop(api->r);
}

/* An operation of c ended: frees c once it is closing and nothing else is in flight. */
static bool conn_op_done(struct api_conn *c)
{
	c->in_flight--;
	if (c->closing && !c->in_flight) {
		conn_free(c);
		return true;
	}
	return c->closing;
}

static void conn_cancelled(struct reactor_op *op, int res)
{
	conn_op_done(container_of(op, struct api_conn, cancel_op));
}

static void conn_close(struct api_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (!c->in_flight) {
		/* Never inside a caller that may still use c: free it from the loop. */
		c->in_flight++;
		reactor_defer(c->api->r, &c->cancel_op, conn_cancelled);
		return;
	}
	c->in_flight++;
	io_uring_prep_cancel_fd(reactor_sqe(c->api->r, &c->cancel_op, conn_cancelled), c->fd,
	                        IORING_ASYNC_CANCEL_ALL);
}

/* Queues len bytes at buf (taken) to be sent as they are. */
static void conn_push(struct api_conn *c, char *buf, size_t len)
{
	struct out_line *o = buf && !c->closing ? malloc(sizeof(*o)) : NULL;

	if (!o || c->out_bytes + len > MGMT_OUTPUT_MAX) {
		if (!c->closing)
			log_warn("api: %s: %s; closing the connection", c->who,
			         o ? "it does not read what it is sent" : "out of memory");
		free(o);
		free(buf);
		conn_close(c);
		return;
	}
	*o = (struct out_line){ .text = buf, .len = len };
	if (c->out_tail)
		c->out_tail->next = o;
	else
		c->out_head = o;
	c->out_tail = o;
	c->out_bytes += len;
	conn_send(c);
}

/* Queues what TLS has to send (handshake messages, records). */
static void conn_push_tls(struct api_conn *c)
{
	char *buf;
	size_t len = api_tls_take_output(c->tls, &buf);

	if (len)
		conn_push(c, buf, len);
}

/* Queues a response or event line (taking text). */
static void conn_queue(struct api_conn *c, char *text)
{
	if (!text || !c->tls) {
		conn_push(c, text, text ? strlen(text) : 0);
		return;
	}
	if (api_tls_write(c->tls, text, strlen(text)) < 0) {
		log_warn("api: %s: TLS failed; closing the connection", c->who);
		conn_close(c);
	}
	free(text);
	if (!c->closing)
		conn_push_tls(c);
}

static void conn_sent(struct reactor_op *op, int res)
{
	struct api_conn *c = container_of(op, struct api_conn, send_op);
	struct out_line *o = c->out_head;

	c->sending = false;
	if (conn_op_done(c))
		return;
	if (res <= 0) {
		conn_close(c); /* the client went away */
		return;
	}
	o->sent += (size_t)res;
	c->out_bytes -= (size_t)res;
	if (o->sent == o->len) {
		c->out_head = o->next;
		if (!c->out_head)
			c->out_tail = NULL;
		free(o->text);
		free(o);
	}
	if (c->out_head)
		conn_send(c);
	else if (c->finishing)
		conn_close(c);
}

static void conn_send(struct api_conn *c)
{
	struct out_line *o = c->out_head;

	if (!o || c->sending || c->closing)
		return;
	c->sending = true;
	c->in_flight++;
	io_uring_prep_send(reactor_sqe(c->api->r, &c->send_op, conn_sent), c->fd, o->text + o->sent,
	                   o->len - o->sent, MSG_NOSIGNAL);
}

/* Answers every complete line in the input buffer. */
static void conn_lines(struct api_conn *c)
{
	char *start = c->in, *nl;

	while (!c->finishing && (nl = memchr(start, '\n', c->in_len - (size_t)(start - c->in)))) {
		size_t len = (size_t)(nl - start);

		if (len && start[len - 1] == '\r')
			len--;
		if (len)
			conn_queue(c, api_answer(c->api, c, start, len));
		start = nl + 1;
	}
	c->in_len -= (size_t)(start - c->in);
	memmove(c->in, start, c->in_len);
	if (c->in_len == sizeof(c->in) && !c->finishing) {
		struct mgmt_error err;

		/* Without its end the line cannot be skipped reliably: answer, then close. */
		mgmt_fail(&err, MGMT_E_TOO_LARGE, "a request line is longer than %d bytes", MGMT_REQUEST_MAX);
		conn_queue(c, mgmt_response_error(NULL, &err));
		c->finishing = true;
	}
}

/* Decrypts received TLS records into requests and answers them. */
static void conn_tls_received(struct api_conn *c, size_t len)
{
	ssize_t n;

	if (api_tls_feed(c->tls, c->raw, len) < 0) {
		log_warn("api: %s: not a TLS client, or its handshake failed", c->who);
		conn_push_tls(c); /* the alert, if any */
		c->finishing = true;
		return;
	}
	conn_push_tls(c);
	while (!c->finishing && !c->closing &&
	       (n = api_tls_read(c->tls, c->in + c->in_len, sizeof(c->in) - c->in_len)) != 0) {
		if (n < 0) {
			c->finishing = true;
			return;
		}
		c->in_len += (size_t)n;
		conn_lines(c);
	}
}

static void conn_received(struct reactor_op *op, int res)
{
	struct api_conn *c = container_of(op, struct api_conn, recv_op);

	c->receiving = false;
	if (conn_op_done(c))
		return;
	if (res <= 0) {
		/* A client may end its side after its last request: answer what is queued first. */
		c->finishing = true;
	} else if (c->tls) {
		conn_tls_received(c, (size_t)res);
	} else {
		c->in_len += (size_t)res;
		conn_lines(c);
	}
	if (c->finishing) {
		if (!c->out_head)
			conn_close(c);
		return;
	}
	conn_recv(c);
}

static void conn_recv(struct api_conn *c)
{
	if (c->receiving || c->closing || c->finishing)
		return;
	c->receiving = true;
	c->in_flight++;
	if (c->tls)
		io_uring_prep_recv(reactor_sqe(c->api->r, &c->recv_op, conn_received), c->fd, c->raw, sizeof(c->raw), 0);
	else
		io_uring_prep_recv(reactor_sqe(c->api->r, &c->recv_op, conn_received), c->fd, c->in + c->in_len,
		                   sizeof(c->in) - c->in_len, 0);
}

/* ---- the listeners ---- */

static void api_accept(struct api_listener *l);

/* A local peer may manage the daemon if it is root or the daemon's own user. */
static void conn_check_peer(struct api_conn *c)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct mgmt_error err;

	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		log_warn("api: refusing a connection: no peer credentials: %s", strerror(errno));
		conn_close(c);
		return;
	}
	snprintf(c->who, sizeof(c->who), "uid %u", (unsigned)cred.uid);
	if (cred.uid == 0 || cred.uid == geteuid()) {
		c->authenticated = true;
		conn_recv(c);
		return;
	}
	log_warn("api: refusing pid %d uid %u: only root and uid %u may manage this daemon", (int)cred.pid,
	         (unsigned)cred.uid, (unsigned)geteuid());
	mgmt_fail(&err, MGMT_E_DENIED, "uid %u may not manage this daemon; run twinctl as root", (unsigned)cred.uid);
	c->finishing = true;
	conn_queue(c, mgmt_response_error(NULL, &err));
}

/* A TCP peer speaks TLS and must log in before anything else. */
static void conn_start_tls(struct api_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char addr[INET6_ADDRSTRLEN] = "?";
	uint16_t port = 0;

	if (getpeername(c->fd, (struct sockaddr *)&ss, &len) == 0) {
		const void *a = ss.ss_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
		                                         : (const void *)&((struct sockaddr_in *)&ss)->sin_addr;

		inet_ntop(ss.ss_family, a, addr, sizeof(addr));
		port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
		                                      : ((struct sockaddr_in *)&ss)->sin_port);
	}
	snprintf(c->who, sizeof(c->who), ss.ss_family == AF_INET6 ? "admin@[%s]:%u" : "admin@%s:%u", addr, port);
	c->tls = api_tls_new(c->api->tls);
	if (!c->tls) {
		log_warn("api: refusing %s: out of memory", c->who);
		conn_close(c);
		return;
	}
	conn_recv(c);
}

static void conn_start(struct api_listener *l, int fd)
{
	struct api_conn *c = calloc(1, sizeof(*c));

	if (!c) {
		log_warn("api: refusing a connection: out of memory");
		close(fd);
		return;
	}
	c->api = l->api;
	c->fd = fd;
	c->next = l->api->conns;
	l->api->conns = c;
	if (l->tcp)
		conn_start_tls(c);
	else
		conn_check_peer(c);
}

/* A listener's operation ended; at shutdown the last one lets mgmt_api_free() go on. */
static bool listener_op_done(struct api_listener *l)
{
	l->in_flight--;
	if (!l->api->closing)
		return false;
	if (api_idle(l->api))
		reactor_stop(l->api->r);
	return true;
}

static void api_accepted(struct reactor_op *op, int res)
{
	struct api_listener *l = container_of(op, struct api_listener, accept_op);

	if (listener_op_done(l)) {
		if (res >= 0)
			close(res);
		return;
	}
	if (res >= 0)
		conn_start(l, res);
	else if (res != -EINTR && res != -ECONNABORTED)
		log_warn("api: accept: %s", strerror(-res));
	/* A failure (no file descriptors) does not spin: the next accept waits for a client. */
	api_accept(l);
}

static void api_accept(struct api_listener *l)
{
	l->in_flight++;
	io_uring_prep_accept(reactor_sqe(l->api->r, &l->accept_op, api_accepted), l->fd, NULL, NULL, SOCK_CLOEXEC);
}

static void listener_cancelled(struct reactor_op *op, int res)
{
	listener_op_done(container_of(op, struct api_listener, cancel_op));
}

static void listener_stop(struct api_listener *l)
{
	if (!l->in_flight)
		return;
	l->in_flight++;
	io_uring_prep_cancel64(reactor_sqe(l->api->r, &l->cancel_op, listener_cancelled),
	                       (uint64_t)(uintptr_t)&l->accept_op, 0);
}

/* True if a daemon still answers on the socket file at path. */
static bool socket_in_use(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool used = fd >= 0 && connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;

	if (fd >= 0)
		close(fd);
	return used;
}

static int api_bind(struct mgmt_api *api, const struct sockaddr_un *sa, char *err, size_t errlen)
{
	struct stat st;

	if (lstat(sa->sun_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "api socket %s: exists and is not a socket; remove it or choose another path",
			         sa->sun_path);
			return -1;
		}
		if (socket_in_use(sa)) {
			snprintf(err, errlen, "api socket %s: another daemon is listening on it; stop it or choose another path",
			         sa->sun_path);
			return -1;
		}
		unlink(sa->sun_path);
	}
	if (bind(api->local.fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 ||
	    chmod(sa->sun_path, 0600) < 0 || listen(api->local.fd, 16) < 0) {
		snprintf(err, errlen, "api socket %s: %s", sa->sun_path, strerror(errno));
		return -1;
	}
	return 0;
}

int mgmt_api_listen(struct mgmt_api *api, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[sizeof(sa.sun_path)];
	char *slash;

	if (str_copy(sa.sun_path, sizeof(sa.sun_path), path) < 0 || !path[0]) {
		snprintf(err, errlen, "api socket path '%s' is empty or longer than %zu bytes", path,
		         sizeof(sa.sun_path) - 1);
		return -1;
	}
	str_copy(dir, sizeof(dir), path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "api socket directory %s: %s", dir, strerror(errno));
			return -1;
		}
	}
	api->local.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (api->local.fd < 0) {
		snprintf(err, errlen, "api socket: %s", strerror(errno));
		return -1;
	}
	if (api_bind(api, &sa, err, errlen) < 0) {
		close(api->local.fd);
		api->local.fd = -1;
		return -1;
	}
	str_copy(api->path, sizeof(api->path), path);
	api_accept(&api->local);
	log_info("management API on %s", path);
	return 0;
}

static int tcp_socket(const char *address, uint16_t port, char *err, size_t errlen)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	socklen_t sl = sizeof(*s4);
	int one = 1, fd;

	if (inet_pton(AF_INET, address, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
	} else if (inet_pton(AF_INET6, address, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		sl = sizeof(*s6);
	} else {
		snprintf(err, errlen, "api address '%s' is neither IPv4 nor IPv6", address);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 16) < 0) {
		snprintf(err, errlen, "api listener %s port %u: %s", address, port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int mgmt_api_listen_tcp(struct mgmt_api *api, const struct mgmt_api_tcp_params *p, char *err, size_t errlen)
{
	if (api_secret_load(p->secret_path, true, api->secret, err, errlen) < 0 ||
	    api_tls_ctx_new(p->key_path, p->cert_path, &api->tls, err, errlen) < 0)
		return -1;
	api->tcp.fd = tcp_socket(p->address, p->port, err, errlen);
	if (api->tcp.fd < 0)
		return -1;
	api_accept(&api->tcp);
	log_info("management API on %s port %u (TLS; the admin secret is in %s)", p->address, p->port, p->secret_path);
	return 0;
}

/* ---- the object ---- */

int mgmt_api_new(struct reactor *r, const struct mgmt_api_params *p, struct mgmt_api **out)
{
	struct mgmt_api *api = calloc(1, sizeof(*api));

	if (!api)
		return -1;
	api->r = r;
	api->local = (struct api_listener){ .api = api, .fd = -1 };
	api->tcp = (struct api_listener){ .api = api, .fd = -1, .tcp = true };
	api->node_id = p->node_id;
	api->started_ms = now_ms();
	str_copy(api->version, sizeof(api->version), p->version ? p->version : "unknown");
	*out = api;
	return 0;
}

void mgmt_api_free(struct mgmt_api *api)
{
	if (!api)
		return;
	api->closing = true;
	listener_stop(&api->local);
	listener_stop(&api->tcp);
	for (struct api_conn *c = api->conns; c; c = c->next)
		conn_close(c);
	while (!api_idle(api))
		if (reactor_run(api->r) < 0)
			break;
	if (api->local.fd >= 0) {
		close(api->local.fd);
		unlink(api->path);
	}
	if (api->tcp.fd >= 0)
		close(api->tcp.fd);
	api_tls_ctx_free(api->tls);
	OPENSSL_cleanse(api->secret, sizeof(api->secret));
	for (size_t i = 0; i < api->n_devices; i++)
		if (api->devices[i].ops->release)
			api->devices[i].ops->release(api->devices[i].dev);
	free(api->devices);
	free(api->luns);
	free(api);
}

void mgmt_api_set_registry(struct mgmt_api *api, const struct iscsi_registry *reg) { api->registry = reg; }

/* array (of n elements of size bytes) grown by one zeroed element; NULL when out of memory. */
static void *array_grow(void *array, size_t n, size_t size)
{
	char *grown = realloc(array, (n + 1) * size);

	if (grown)
		memset(grown + n * size, 0, size);
	return grown;
}

int mgmt_api_add_lun(struct mgmt_api *api, const char *target, uint64_t lun, const char *backing,
                     const struct store *s, const char *device)
{
	struct api_lun *luns = array_grow(api->luns, api->n_luns, sizeof(*luns)), *l;

	if (!luns)
		return -1;
	api->luns = luns;
	l = &luns[api->n_luns++];
	l->lun = lun;
	l->store = s;
	str_copy(l->target, sizeof(l->target), target);
	str_copy(l->backing, sizeof(l->backing), backing);
	str_copy(l->device, sizeof(l->device), device ? device : "");
	return 0;
}

int mgmt_api_add_device(struct mgmt_api *api, const char *name, const struct mgmt_device_ops *ops, void *dev)
{
	struct api_device *devices = array_grow(api->devices, api->n_devices, sizeof(*devices)), *d;

	if (!devices)
		return -1;
	api->devices = devices;
	d = &devices[api->n_devices++];
	d->ops = ops;
	d->dev = dev;
	str_copy(d->name, sizeof(d->name), name);
	return 0;
}

void mgmt_api_publish_event(struct mgmt_api *api, const char *event, const char *device, const char *detail)
{
	struct timespec ts;
	long long ms;

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	for (struct api_conn *c = api->conns; c; c = c->next)
		if (c->subscribed && !c->closing)
			conn_queue(c, mgmt_event_line(event, device, detail, ms));
}
