/* The management API's methods: one table of names, handlers and parameter checks, the
 * registry of what they show (targets, LUNs, devices) and the event fan-out.  The bytes
 * travel through mgmt/api_server.c. */
#include "mgmt/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "common/util.h"
#include "iscsi/server.h"
#include "mgmt/api_auth.h"
#include "mgmt/api_proto.h"
#include "mgmt/api_server.h"
#include "mgmt/api_tls.h"
#include "mgmt/apply.h"

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

struct mgmt_api {
	struct api_server srv;
	char version[64];
	uint64_t node_id;
	uint64_t started_ms;
	char secret[API_SECRET_MAX];
	const struct iscsi_registry *registry;
	const struct iscsi_server *server;  /* NULL: no sessions to show */
	struct api_device *devices;
	size_t n_devices;
	struct api_lun *luns;
	size_t n_luns;
	struct mgmt_apply *apply;      /* NULL: no configuration to change */
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
	char node[24];

	/* A string: node ids use all 64 bits, more than a JSON number holds exactly. */
	snprintf(node, sizeof(node), "%llu", (unsigned long long)api->node_id);
	return json_pack("{s:s, s:i, s:s, s:I, s:I, s:I, s:I}", "version", api->version, "api_version",
	                 MGMT_API_VERSION, "node_id", node, "uptime_seconds",
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

/* One session of session.list: ISID as 12 hex digits, as initiators' tools show it. */
static void session_json(void *arg, const struct iscsi_session_info *s)
{
	json_t *list = arg, *conns = json_array();
	char isid[13];

	for (unsigned i = 0; i < 6; i++)
		snprintf(isid + 2 * i, 3, "%02x", s->isid[i]);
	for (unsigned i = 0; conns && i < s->n_conns; i++)
		json_array_append_new(conns, json_pack("{s:i, s:s}", "cid", (int)s->conns[i].cid, "peer",
		                                       s->conns[i].peer));
	json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:i, s:i, s:o}", "target", s->target, "initiator",
	                                      s->initiator, "isid", isid, "tsih", (int)s->tsih, "portal_group",
	                                      (int)s->tpgt, "connections", conns ? conns : json_array()));
}

static json_t *m_session_list(struct mgmt_api *api, struct api_conn *c, const json_t *params, struct mgmt_error *err)
{
	json_t *sessions = json_array();

	if (sessions && api->server)
		iscsi_server_sessions(api->server, session_json, sessions);
	return json_pack("{s:o}", "sessions", sessions);
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
	/* A device made through the API keeps its strategy and witness over a restart. */
	if (api->apply && mgmt_apply_has_ha(api->apply, d->name))
		return mgmt_apply_device_set_failover(api->apply, params, err);
	if (json_object_get(params, "witness")) {
		mgmt_fail(err, MGMT_E_FAILED, "%s is defined in the configuration file: give it its witness there", d->name);
		return NULL;
	}
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

/* Configuration changes go through the managed configuration (mgmt/apply.h). */
static struct mgmt_apply *apply_of(struct mgmt_api *api, struct mgmt_error *err)
{
	if (!api->apply)
		mgmt_fail(err, MGMT_E_FAILED, "this daemon serves what its command line says; start it with --config "
		          "to create and delete targets and devices");
	return api->apply;
}

static json_t *m_target_create(struct mgmt_api *api, struct api_conn *c, const json_t *params, struct mgmt_error *err)
{
	struct mgmt_apply *a = apply_of(api, err);

	return a ? mgmt_apply_target_create(a, params, err) : NULL;
}

static json_t *m_target_delete(struct mgmt_api *api, struct api_conn *c, const json_t *params, struct mgmt_error *err)
{
	struct mgmt_apply *a = apply_of(api, err);

	return a ? mgmt_apply_target_delete(a, params, err) : NULL;
}

static json_t *m_device_create(struct mgmt_api *api, struct api_conn *c, const json_t *params, struct mgmt_error *err)
{
	struct mgmt_apply *a = apply_of(api, err);

	return a ? mgmt_apply_device_create(a, params, err) : NULL;
}

static json_t *m_device_resize(struct mgmt_api *api, struct api_conn *c, const json_t *params, struct mgmt_error *err)
{
	struct mgmt_apply *a = apply_of(api, err);

	return a ? mgmt_apply_device_resize(a, params, err) : NULL;
}

static json_t *m_device_delete(struct mgmt_api *api, struct api_conn *c, const json_t *params, struct mgmt_error *err)
{
	struct mgmt_apply *a = apply_of(api, err);

	return a ? mgmt_apply_device_delete(a, params, err) : NULL;
}

void mgmt_api_set_apply(struct mgmt_api *api, struct mgmt_apply *apply)
{
	api->apply = apply;
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
static const struct mgmt_param p_delete[] = {
	{ "name", MGMT_PARAM_STRING, true, NULL },
	{ "force", MGMT_PARAM_BOOL, false, NULL },
	{ NULL, 0, false, NULL },
};
static const struct mgmt_param p_login[] = {
	{ "proof", MGMT_PARAM_STRING, true, NULL },
	{ NULL, 0, false, NULL },
};
static const struct mgmt_param p_failover[] = {
	{ "name", MGMT_PARAM_STRING, true, NULL },
	{ "failover", MGMT_PARAM_STRING, true, failover_choices },
	{ "witness", MGMT_PARAM_STRING, false, NULL },
	{ "witness_secret", MGMT_PARAM_STRING, false, NULL },
	{ NULL, 0, false, NULL },
};

static const struct mgmt_param p_target_create[] = {
	{ "name", MGMT_PARAM_STRING, true, NULL },
	{ "iqn", MGMT_PARAM_STRING, false, NULL },
	{ "portals", MGMT_PARAM_STRING, false, NULL },
	{ "allow", MGMT_PARAM_STRING, false, NULL },
	{ "chap_user", MGMT_PARAM_STRING, false, NULL },
	{ "chap_secret", MGMT_PARAM_STRING, false, NULL },
	{ "mutual_chap_user", MGMT_PARAM_STRING, false, NULL },
	{ "mutual_chap_secret", MGMT_PARAM_STRING, false, NULL },
	{ "check", MGMT_PARAM_BOOL, false, NULL },
	{ NULL, 0, false, NULL },
};
static const struct mgmt_param p_resize[] = {
	{ "name", MGMT_PARAM_STRING, true, NULL },
	{ "size", MGMT_PARAM_STRING, true, NULL },
	{ NULL, 0, false, NULL },
};
static const struct mgmt_param p_device_create[] = {
	{ "name", MGMT_PARAM_STRING, true, NULL },
	{ "path", MGMT_PARAM_STRING, false, NULL },
	{ "size", MGMT_PARAM_STRING, false, NULL },
	{ "target", MGMT_PARAM_STRING, false, NULL },
	{ "lun", MGMT_PARAM_STRING, false, NULL },
	{ "block_size", MGMT_PARAM_STRING, false, NULL },
	{ "direct", MGMT_PARAM_BOOL, false, NULL },
	{ "check", MGMT_PARAM_BOOL, false, NULL },
	{ "ha", MGMT_PARAM_BOOL, false, NULL },
	{ "uuid", MGMT_PARAM_STRING, false, NULL },
	{ "secret", MGMT_PARAM_STRING, false, NULL },
	{ "priority", MGMT_PARAM_STRING, false, NULL },
	{ "initial_sync", MGMT_PARAM_STRING, false, NULL },
	{ "failover", MGMT_PARAM_STRING, false, NULL },
	{ "sync", MGMT_PARAM_STRING, false, NULL },
	{ "heartbeat", MGMT_PARAM_STRING, false, NULL },
	{ "witness", MGMT_PARAM_STRING, false, NULL },
	{ "witness_secret", MGMT_PARAM_STRING, false, NULL },
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
	{ "session.list", m_session_list, false, NULL, false },
	{ "device.list", m_device_list, false, NULL, false },
	{ "device.status", m_device_status, false, p_name, false },
	{ "device.resolve_split_brain", m_resolve, true, p_resolve, false },
	{ "device.set_failover", m_set_failover, true, p_failover, false },
	{ "device.verify", m_verify, true, p_name, false },
	{ "target.create", m_target_create, true, p_target_create, false },
	{ "target.delete", m_target_delete, true, p_delete, false },
	{ "device.create", m_device_create, true, p_device_create, false },
	{ "device.delete", m_device_delete, true, p_delete, false },
	{ "device.resize", m_device_resize, true, p_resize, false },
	{ "events.subscribe", m_subscribe, false, NULL, false },
};

static const struct api_method *method_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(methods); i++)
		if (!strcmp(methods[i].name, name))
			return &methods[i];
	return NULL;
}

/* The parameters of a change as the log shows them: secrets left out. */
static char *params_for_log(const json_t *params)
{
	json_t *copy = json_deep_copy(params), *v;
	const char *key;
	char *text;

	json_object_foreach(copy, key, v)
		if (strstr(key, "secret"))
			json_object_set_new(copy, key, json_string("(not shown)"));
	text = json_dumps(copy, JSON_COMPACT);
	json_decref(copy);
	return text;
}

/* The response line to one request; c is NULL outside a connection. */
static char *api_answer(void *arg, struct api_conn *c, const char *line, size_t len)
{
	struct mgmt_api *api = arg;
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
		char *p = params_for_log(req.params);

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

/* ---- the object ---- */

int mgmt_api_new(struct reactor *r, const struct mgmt_api_params *p, struct mgmt_api **out)
{
	struct mgmt_api *api = calloc(1, sizeof(*api));

	if (!api)
		return -1;
	api_server_init(&api->srv, r, api_answer, api);
	api->node_id = p->node_id;
	api->started_ms = now_ms();
	str_copy(api->version, sizeof(api->version), p->version ? p->version : "unknown");
	*out = api;
	return 0;
}

int mgmt_api_listen(struct mgmt_api *api, const char *path, char *err, size_t errlen)
{
	if (api_server_listen_unix(&api->srv, path, err, errlen) < 0)
		return -1;
	log_info("management API on %s", path);
	return 0;
}

int mgmt_api_listen_tcp(struct mgmt_api *api, const struct mgmt_api_tcp_params *p, char *err, size_t errlen)
{
	if (api_secret_load(p->secret_path, true, api->secret, err, errlen) < 0 ||
	    api_server_listen_tcp(&api->srv, p->address, p->port, p->key_path, p->cert_path, err, errlen) < 0)
		return -1;
	log_info("management API on %s port %u (TLS; the admin secret is in %s)", p->address, p->port, p->secret_path);
	return 0;
}

void mgmt_api_free(struct mgmt_api *api)
{
	if (!api)
		return;
	api_server_close(&api->srv);
	OPENSSL_cleanse(api->secret, sizeof(api->secret));
	for (size_t i = 0; i < api->n_devices; i++)
		if (api->devices[i].ops->release)
			api->devices[i].ops->release(api->devices[i].dev);
	free(api->devices);
	free(api->luns);
	free(api);
}

void mgmt_api_set_registry(struct mgmt_api *api, const struct iscsi_registry *reg) { api->registry = reg; }
void mgmt_api_set_server(struct mgmt_api *api, const struct iscsi_server *srv) { api->server = srv; }

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

void mgmt_api_remove_lun(struct mgmt_api *api, const struct store *s)
{
	for (size_t i = 0; i < api->n_luns; i++) {
		if (api->luns[i].store == s) {
			memmove(api->luns + i, api->luns + i + 1, (api->n_luns - i - 1) * sizeof(*api->luns));
			api->n_luns--;
			return;
		}
	}
}

void mgmt_api_remove_device(struct mgmt_api *api, const char *name)
{
	for (size_t i = 0; i < api->n_devices; i++) {
		if (!strcmp(api->devices[i].name, name)) {
			if (api->devices[i].ops->release)
				api->devices[i].ops->release(api->devices[i].dev);
			memmove(api->devices + i, api->devices + i + 1, (api->n_devices - i - 1) * sizeof(*api->devices));
			api->n_devices--;
			return;
		}
	}
}

void mgmt_api_publish_event(struct mgmt_api *api, const char *event, const char *device, const char *detail)
{
	struct timespec ts;
	long long ms;

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	for (struct api_conn *c = api->srv.conns; c; c = c->next)
		if (c->subscribed && !c->closing)
			api_conn_queue(c, mgmt_event_line(event, device, detail, ms));
}
