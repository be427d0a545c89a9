/* The management API: requests are checked against the method table and answered with
 * results or errors that name the problem; a real api object on a reactor serves a client
 * over its Unix socket (mode 0600), streams events to subscribers, survives garbage,
 * over-long lines and clients that leave mid-request, and refuses a second daemon on the
 * same socket, and cuts off a subscriber that stops reading.  Over TCP (127.0.0.1:3501) it speaks TLS and serves only a client that
 * proves the admin secret, made at first start with the key and certificate (mode 0600). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/reactor.h"
#include "mgmt/api.h"
#include "mgmt/api_auth.h"
#include "mgmt/api_client.h"
#include "mgmt/api_proto.h"
#include "mgmt/api_tls.h"

#include <openssl/ssl.h>

/* A device whose commands record what they were asked. */
struct fake_dev {
	char failover[16];
	int resolved;      /* 1 local, 2 partner */
	bool verify_fails;
	int released;
};

static json_t *fake_status(void *dev)
{
	struct fake_dev *f = dev;

	return json_pack("{s:s, s:s, s:s}", "name", "HA1", "state", "synchronized", "failover", f->failover);
}

static int fake_resolve(void *dev, bool keep_local, char *err, size_t errlen)
{
	((struct fake_dev *)dev)->resolved = keep_local ? 1 : 2;
	return 0;
}

static int fake_set_failover(void *dev, const char *strategy, char *err, size_t errlen)
{
	snprintf(((struct fake_dev *)dev)->failover, sizeof(((struct fake_dev *)dev)->failover), "%s", strategy);
	return 0;
}

static int fake_verify(void *dev, char *err, size_t errlen)
{
	if (!((struct fake_dev *)dev)->verify_fails)
		return 0;
	snprintf(err, errlen, "the partner is not connected; wait for it");
	return -1;
}

static void fake_release(void *dev) { ((struct fake_dev *)dev)->released++; }

static const struct mgmt_device_ops fake_ops = {
	.status = fake_status,
	.resolve_split_brain = fake_resolve,
	.set_failover = fake_set_failover,
	.verify = fake_verify,
	.release = fake_release,
};

struct fixture {
	struct reactor *r;
	struct mgmt_api *api;
	struct fake_dev dev;
	char dir[64], path[128];
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct mgmt_api_params p = { .version = "test-1", .node_id = 7 };

	assert_non_null(fx);
	assert_int_equal(reactor_new(64, &fx->r), 0);
	assert_int_equal(mgmt_api_new(fx->r, &p, &fx->api), 0);
	strcpy(fx->dev.failover, "heartbeat");
	assert_int_equal(mgmt_api_add_device(fx->api, "HA1", &fake_ops, &fx->dev), 0);
	strcpy(fx->dir, "/tmp/test_mgmt_api.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->path, sizeof(fx->path), "%s/run/api.sock", fx->dir);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char run[200];

	mgmt_api_free(fx->api);
	assert_int_equal(fx->dev.released, 1);
	reactor_free(fx->r);
	for (const char *f = "admin.secret"; f; f = !strcmp(f, "admin.secret") ? "api.key" : !strcmp(f, "api.key") ? "api.crt" : NULL) {
		snprintf(run, sizeof(run), "%s/%s", fx->dir, f);
		unlink(run);
	}
	snprintf(run, sizeof(run), "%s/run", fx->dir);
	rmdir(run);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* Executes a request line; returns the parsed response (the caller's). */
static json_t *execute(struct fixture *fx, const char *line)
{
	char *out = mgmt_api_execute(fx->api, line, strlen(line));
	json_t *resp;

	assert_non_null(out);
	assert_int_equal(out[strlen(out) - 1], '\n');
	resp = json_loads(out, 0, NULL);
	free(out);
	assert_non_null(resp);
	assert_int_equal(json_integer_value(json_object_get(resp, "version")), MGMT_API_VERSION);
	return resp;
}

/* Asserts an error response with code whose message contains what. */
static void expect_error(struct fixture *fx, const char *line, const char *code, const char *what)
{
	json_t *resp = execute(fx, line);
	json_t *error = json_object_get(resp, "error");

	assert_non_null(error);
	assert_null(json_object_get(resp, "result"));
	assert_string_equal(json_string_value(json_object_get(error, "code")), code);
	if (!strstr(json_string_value(json_object_get(error, "message")), what))
		fail_msg("message '%s' lacks '%s'", json_string_value(json_object_get(error, "message")), what);
	json_decref(resp);
}

static json_t *expect_result(struct fixture *fx, const char *line)
{
	json_t *resp = execute(fx, line);
	json_t *result = json_incref(json_object_get(resp, "result"));

	if (!result)
		fail_msg("error: %s", json_dumps(resp, 0));
	json_decref(resp);
	return result;
}

static void test_malformed_requests_get_errors_naming_the_problem(void **state)
{
	struct fixture *fx = *state;
	json_t *resp;

	expect_error(fx, "{\"version\":1,", MGMT_E_PARSE, "not JSON");
	expect_error(fx, "[1,2]", MGMT_E_PARSE, "object");
	expect_error(fx, "{\"version\":1,\"method\":\"server.info\"}", MGMT_E_REQUEST, "\"id\"");
	expect_error(fx, "{\"version\":1,\"id\":-3,\"method\":\"server.info\"}", MGMT_E_REQUEST, "\"id\"");
	expect_error(fx, "{\"id\":1,\"method\":\"server.info\"}", MGMT_E_REQUEST, "\"version\"");
	expect_error(fx, "{\"version\":2,\"id\":1,\"method\":\"server.info\"}", MGMT_E_VERSION, "speaks 1");
	expect_error(fx, "{\"version\":1,\"id\":1}", MGMT_E_REQUEST, "\"method\"");
	expect_error(fx, "{\"version\":1,\"id\":1,\"method\":\"nope\"}", MGMT_E_METHOD, "nope");
	expect_error(fx, "{\"version\":1,\"id\":1,\"method\":\"server.info\",\"params\":[]}", MGMT_E_REQUEST,
	             "\"params\"");
	expect_error(fx, "{\"version\":1,\"id\":1,\"method\":\"server.info\",\"extra\":1}", MGMT_E_REQUEST, "extra");
	expect_error(fx, "{\"version\":1,\"id\":1,\"id\":2,\"method\":\"server.info\"}", MGMT_E_PARSE, "duplicate");
	expect_error(fx, "{\"version\":1,\"id\":1,\"method\":\"device.status\"}", MGMT_E_PARAMS, "missing parameter \"name\"");
	expect_error(fx, "{\"version\":1,\"id\":1,\"method\":\"device.status\",\"params\":{\"name\":3}}", MGMT_E_PARAMS,
	             "non-empty string");
	expect_error(fx, "{\"version\":1,\"id\":1,\"method\":\"device.status\",\"params\":{\"name\":\"HA1\",\"x\":1}}",
	             MGMT_E_PARAMS, "unknown parameter \"x\"");
	expect_error(fx, "{\"version\":1,\"id\":1,\"method\":\"device.set_failover\",\"params\":{\"name\":\"HA1\","
	                 "\"failover\":\"coin\"}}", MGMT_E_PARAMS, "heartbeat, majority");
	expect_error(fx, "{\"version\":1,\"id\":1,\"method\":\"server.info\",\"params\":{\"a\":\"\\u0000\"}}",
	             MGMT_E_PARSE, "not JSON");

	/* The id is echoed when it could be read, null otherwise. */
	resp = execute(fx, "{\"version\":9,\"id\":41,\"method\":\"x\"}");
	assert_int_equal(json_integer_value(json_object_get(resp, "id")), 41);
	json_decref(resp);
	resp = execute(fx, "garbage");
	assert_true(json_is_null(json_object_get(resp, "id")));
	json_decref(resp);
}

static void test_methods_reach_the_device(void **state)
{
	struct fixture *fx = *state;
	json_t *res;

	res = expect_result(fx, "{\"version\":1,\"id\":5,\"method\":\"server.info\"}");
	assert_string_equal(json_string_value(json_object_get(res, "version")), "test-1");
	assert_string_equal(json_string_value(json_object_get(res, "node_id")), "7");
	assert_int_equal(json_integer_value(json_object_get(res, "devices")), 1);
	json_decref(res);

	res = expect_result(fx, "{\"version\":1,\"id\":6,\"method\":\"device.list\",\"params\":{}}");
	assert_int_equal(json_array_size(json_object_get(res, "devices")), 1);
	json_decref(res);

	res = expect_result(fx, "{\"version\":1,\"id\":7,\"method\":\"device.set_failover\",\"params\":{\"name\":\"HA1\","
	                        "\"failover\":\"majority\"}}");
	assert_string_equal(json_string_value(json_object_get(res, "failover")), "majority");
	json_decref(res);
	assert_string_equal(fx->dev.failover, "majority");
	res = expect_result(fx, "{\"version\":1,\"id\":8,\"method\":\"device.status\",\"params\":{\"name\":\"HA1\"}}");
	assert_string_equal(json_string_value(json_object_get(res, "failover")), "majority");
	json_decref(res);

	res = expect_result(fx, "{\"version\":1,\"id\":9,\"method\":\"device.resolve_split_brain\",\"params\":{\"name\":"
	                        "\"HA1\",\"keep\":\"partner\"}}");
	assert_int_equal(fx->dev.resolved, 2);
	json_decref(res);

	expect_error(fx, "{\"version\":1,\"id\":10,\"method\":\"device.status\",\"params\":{\"name\":\"HA9\"}}",
	             MGMT_E_NOT_FOUND, "twinctl device list");
	fx->dev.verify_fails = true;
	expect_error(fx, "{\"version\":1,\"id\":11,\"method\":\"device.verify\",\"params\":{\"name\":\"HA1\"}}",
	             MGMT_E_FAILED, "HA1: the partner is not connected");
	/* Events need a connection. */
	expect_error(fx, "{\"version\":1,\"id\":12,\"method\":\"events.subscribe\"}", MGMT_E_FAILED, "connection");

	res = expect_result(fx, "{\"version\":1,\"id\":13,\"method\":\"target.list\"}");
	assert_int_equal(json_array_size(json_object_get(res, "targets")), 0);
	json_decref(res);
}

/* ---- over the socket: a client thread, the reactor on the test's thread ---- */

struct session {
	struct fixture *fx;
	atomic_int step;   /* 1: subscribed, waiting for an event; 2: done */
	char failure[256];
};

static void session_fail(struct session *s, const char *what, const char *err)
{
	/* A failure message is for the test log: a long reply is cut short on purpose. */
	snprintf(s->failure, sizeof(s->failure), "%.80s: %.160s", what, err);
}

/* Sends raw bytes on a new connection, then reads one line back (empty if none). */
static void raw_exchange(const char *path, const char *bytes, size_t len, bool close_early, char *line,
                         size_t linelen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	size_t got = 0;

	strcpy(sa.sun_path, path);
	line[0] = '\0';
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return;
	while (len) {
		ssize_t n = send(fd, bytes, len, MSG_NOSIGNAL);

		if (n <= 0)
			break;
		bytes += n;
		len -= (size_t)n;
	}
	if (!close_early) {
		while (got + 1 < linelen) {
			ssize_t n = recv(fd, line + got, 1, 0);

			if (n <= 0 || line[got] == '\n')
				break;
			got++;
		}
		line[got] = '\0';
	}
	close(fd);
}

static void *client_thread(void *arg)
{
	struct session *s = arg;
	struct api_client *c, *sub;
	char err[512], line[1024];
	json_t *res = NULL, *ev = NULL;
	char *big;

	if (api_client_connect(s->fx->path, &c, err, sizeof(err)) != API_CLIENT_OK) {
		session_fail(s, "connect", err);
		goto out;
	}
	if (api_client_call(c, "server.info", NULL, &res, err, sizeof(err)) != API_CLIENT_OK ||
	    strcmp(json_string_value(json_object_get(res, "node_id")), "7"))
		session_fail(s, "server.info", err);
	json_decref(res);
	if (api_client_call(c, "device.status", json_pack("{s:s}", "name", "nope"), &res, err, sizeof(err)) !=
	            API_CLIENT_FAILED || !strstr(err, "not_found: no device named \"nope\""))
		session_fail(s, "device.status of a missing device", err);

	/* Garbage, then a valid request on the same connection: both answered. */
	raw_exchange(s->fx->path, "hello\n", 6, false, line, sizeof(line));
	if (!strstr(line, "\"parse_error\""))
		session_fail(s, "garbage line", line);
	/* An over-long line is answered, then the connection closes. */
	big = malloc(MGMT_REQUEST_MAX + 100);
	memset(big, 'x', MGMT_REQUEST_MAX + 100);
	raw_exchange(s->fx->path, big, MGMT_REQUEST_MAX + 100, false, line, sizeof(line));
	free(big);
	if (!strstr(line, "\"request_too_large\""))
		session_fail(s, "over-long line", line);
	/* A client that leaves mid-request. */
	raw_exchange(s->fx->path, "{\"version\":1,\"id\":1,\"meth", 25, true, line, sizeof(line));

	if (api_client_connect(s->fx->path, &sub, err, sizeof(err)) != API_CLIENT_OK ||
	    api_client_call(sub, "events.subscribe", NULL, &res, err, sizeof(err)) != API_CLIENT_OK) {
		session_fail(s, "subscribe", err);
	} else {
		json_decref(res);
		atomic_store(&s->step, 1);
		if (api_client_next_event(sub, &ev, err, sizeof(err)) != API_CLIENT_OK)
			session_fail(s, "event", err);
		else if (strcmp(json_string_value(json_object_get(ev, "event")), "partner_lost") ||
		         strcmp(json_string_value(json_object_get(ev, "device")), "HA1") ||
		         strcmp(json_string_value(json_object_get(ev, "detail")), "sync 0 timed out") ||
		         !json_is_number(json_object_get(ev, "time")))
			session_fail(s, "event", "wrong fields");
		json_decref(ev);
		/* The first connection still works after all that. */
		if (api_client_call(c, "device.list", NULL, &res, err, sizeof(err)) != API_CLIENT_OK)
			session_fail(s, "device.list", err);
		json_decref(res);
		api_client_close(sub);
	}
	api_client_close(c);
out:
	atomic_store(&s->step, 2);
	return NULL;
}

static void session_tick(void *arg)
{
	struct session *s = arg;

	if (atomic_load(&s->step) == 1) {
		mgmt_api_publish_event(s->fx->api, "partner_lost", "HA1", "sync 0 timed out");
		atomic_store(&s->step, 3);
	} else if (atomic_load(&s->step) == 2) {
		reactor_stop(s->fx->r);
	}
}

static void test_serves_a_client_over_its_socket(void **state)
{
	struct fixture *fx = *state;
	struct session s = { .fx = fx };
	struct stat st;
	pthread_t t;
	char err[256];

	assert_int_equal(mgmt_api_listen(fx->api, fx->path, err, sizeof(err)), 0);
	assert_int_equal(stat(fx->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);

	assert_int_equal(reactor_add_ticker(fx->r, 5, session_tick, &s), 0);
	assert_int_equal(pthread_create(&t, NULL, client_thread, &s), 0);
	assert_int_equal(reactor_run(fx->r), 0);
	pthread_join(t, NULL);
	reactor_remove_ticker(fx->r, session_tick, &s);
	if (s.failure[0])
		fail_msg("%s", s.failure);
}

static void test_second_daemon_on_the_same_socket_is_refused(void **state)
{
	struct fixture *fx = *state;
	struct mgmt_api_params p = { 0 };
	struct mgmt_api *other;
	char err[256];
	int fd;

	assert_int_equal(mgmt_api_listen(fx->api, fx->path, err, sizeof(err)), 0);
	assert_int_equal(mgmt_api_new(fx->r, &p, &other), 0);
	assert_int_equal(mgmt_api_listen(other, fx->path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "another daemon"));
	mgmt_api_free(other);
	/* Still there: the refused one did not remove it. */
	assert_int_equal(access(fx->path, F_OK), 0);

	/* A regular file in the way is not replaced. */
	snprintf(err, sizeof(err), "%s/file", fx->dir);
	fd = open(err, O_CREAT | O_WRONLY, 0600);
	close(fd);
	assert_int_equal(mgmt_api_new(fx->r, &p, &other), 0);
	assert_int_equal(mgmt_api_listen(other, err, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a socket"));
	mgmt_api_free(other);
	snprintf(err, sizeof(err), "%s/file", fx->dir);
	unlink(err);
}

static void test_stale_socket_is_replaced_and_removed_at_free(void **state)
{
	struct fixture *fx = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct mgmt_api_params p = { 0 };
	struct mgmt_api *api;
	char err[256], run[200];
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	/* A socket file nobody listens on, as a crashed daemon leaves it. */
	snprintf(run, sizeof(run), "%s/run", fx->dir);
	mkdir(run, 0700);
	strcpy(sa.sun_path, fx->path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(mgmt_api_new(fx->r, &p, &api), 0);
	assert_int_equal(mgmt_api_listen(api, fx->path, err, sizeof(err)), 0);
	mgmt_api_free(api);
	assert_int_equal(access(fx->path, F_OK), -1);
}

/* ---- a subscriber that does not read ---- */

struct slow_session {
	struct fixture *fx;
	atomic_int step;   /* 1: subscribed; 2: flooded; 3: done */
	char failure[512];
};

static void *slow_client_thread(void *arg)
{
	struct slow_session *s = arg;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static const char sub[] = "{\"version\":1,\"id\":1,\"method\":\"events.subscribe\"}\n";
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct api_client *c;
	char buf[65536], err[256];
	json_t *res;
	ssize_t n;

	strcpy(sa.sun_path, s->fx->path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || send(fd, sub, sizeof(sub) - 1, 0) < 0) {
		snprintf(s->failure, sizeof(s->failure), "subscribe");
	} else {
		/* The answer, then nothing read until the daemon has queued far more than its limit. */
		while ((n = recv(fd, buf, sizeof(buf), MSG_PEEK)) > 0 && !memchr(buf, '\n', (size_t)n))
			;
		atomic_store(&s->step, 1);
		while (atomic_load(&s->step) != 2)
			usleep(1000);
		/* What was sent before it was cut off can be read; then the end. */
		while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
			;
		if (n < 0)
			snprintf(s->failure, sizeof(s->failure), "recv: %s", strerror(errno));
	}
	close(fd);
	/* Others are served as before. */
	if (api_client_connect(s->fx->path, &c, err, sizeof(err)) != API_CLIENT_OK ||
	    api_client_call(c, "server.info", NULL, &res, err, sizeof(err)) != API_CLIENT_OK)
		snprintf(s->failure, sizeof(s->failure), "after the flood: %s", err);
	else
		json_decref(res);
	api_client_close(c);
	atomic_store(&s->step, 3);
	return NULL;
}

static void slow_tick(void *arg)
{
	struct slow_session *s = arg;
	char detail[200];

	if (atomic_load(&s->step) == 1) {
		memset(detail, 'd', sizeof(detail) - 1);
		detail[sizeof(detail) - 1] = '\0';
		for (int i = 0; i < 20000; i++)
			mgmt_api_publish_event(s->fx->api, "state", "HA1", detail);
		atomic_store(&s->step, 2);
	} else if (atomic_load(&s->step) == 3) {
		reactor_stop(s->fx->r);
	}
}

static void test_subscriber_that_does_not_read_is_cut_off(void **state)
{
	struct fixture *fx = *state;
	struct slow_session s = { .fx = fx };
	pthread_t t;
	char err[256];

	assert_int_equal(mgmt_api_listen(fx->api, fx->path, err, sizeof(err)), 0);
	assert_int_equal(reactor_add_ticker(fx->r, 5, slow_tick, &s), 0);
	assert_int_equal(pthread_create(&t, NULL, slow_client_thread, &s), 0);
	assert_int_equal(reactor_run(fx->r), 0);
	pthread_join(t, NULL);
	reactor_remove_ticker(fx->r, slow_tick, &s);
	if (s.failure[0])
		fail_msg("%s", s.failure);
}

/* ---- TCP with TLS ---- */

#define TCP_PORT 3501

struct tcp_session {
	struct fixture *fx;
	char secret_path[160], wrong_path[160];
	atomic_int done;
	char failure[1024];
};

/* A TLS client that does not log in: its requests are refused. */
static void unauthenticated_request(struct tcp_session *s)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(TCP_PORT) };
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = ctx ? SSL_new(ctx) : NULL;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	static const char req[] = "{\"version\":1,\"id\":1,\"method\":\"server.info\"}\n";
	char line[512] = "";
	size_t n = 0;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (!ssl || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || !SSL_set_fd(ssl, fd) ||
	    SSL_connect(ssl) != 1 || SSL_write(ssl, req, sizeof(req) - 1) <= 0 ||
	    SSL_read_ex(ssl, line, sizeof(line) - 1, &n) != 1)
		snprintf(s->failure, sizeof(s->failure), "plain TLS client failed");
	else if (!strstr(line, "\"permission_denied\"") || !strstr(line, "log in first"))
		snprintf(s->failure, sizeof(s->failure), "not logged in: %s", line);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
}

static void *tcp_client_thread(void *arg)
{
	struct tcp_session *s = arg;
	struct api_client *c;
	char err[512], line[256], pin[80] = "";
	json_t *res = NULL;
	int fd;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(TCP_PORT) };

	if (api_client_connect_tcp("127.0.0.1:3501", s->secret_path, NULL, &c, err, sizeof(err)) != API_CLIENT_OK) {
		snprintf(s->failure, sizeof(s->failure), "login: %s", err);
	} else {
		if (api_client_call(c, "device.status", json_pack("{s:s}", "name", "HA1"), &res, err, sizeof(err)) !=
		            API_CLIENT_OK ||
		    strcmp(json_string_value(json_object_get(res, "state")), "synchronized"))
			snprintf(s->failure, sizeof(s->failure), "device.status over TLS: %s", err);
		json_decref(res);
		snprintf(pin, sizeof(pin), "%s", api_client_pin(c));
		api_client_close(c);
		/* The certificate it showed, pinned, is accepted next time. */
		if (strlen(pin) != 64 ||
		    api_client_connect_tcp("127.0.0.1:3501", s->secret_path, pin, &c, err, sizeof(err)) != API_CLIENT_OK)
			snprintf(s->failure, sizeof(s->failure), "the pinned certificate: '%s' %s", pin, err);
		else
			api_client_close(c);
	}
	if (api_client_connect_tcp("127.0.0.1:3501", s->secret_path, "00", &c, err, sizeof(err)) != API_CLIENT_UNREACHABLE ||
	    !strstr(err, "not the saved sha256:00"))
		snprintf(s->failure, sizeof(s->failure), "a wrong pin: %s", err);
	if (api_client_connect_tcp("127.0.0.1:3501", s->wrong_path, NULL, &c, err, sizeof(err)) != API_CLIENT_UNREACHABLE ||
	    !strstr(err, "wrong admin secret"))
		snprintf(s->failure, sizeof(s->failure), "a wrong secret: %s", err);
	unauthenticated_request(s);
	/* Not TLS at all: the connection is closed. */
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		ssize_t n;

		n = send(fd, "{\"version\":1}\n", 14, MSG_NOSIGNAL);
		n = recv(fd, line, sizeof(line), 0);
		if (n > 0 && memchr(line, '{', (size_t)n))
			snprintf(s->failure, sizeof(s->failure), "a plaintext client got an answer");
	}
	close(fd);
	atomic_store(&s->done, 1);
	return NULL;
}

static void tcp_tick(void *arg)
{
	struct tcp_session *s = arg;

	if (atomic_load(&s->done))
		reactor_stop(s->fx->r);
}

static void test_tcp_needs_tls_and_the_admin_secret(void **state)
{
	struct fixture *fx = *state;
	struct tcp_session s = { .fx = fx };
	char key[160], cert[160], err[256], secret[API_SECRET_MAX];
	struct mgmt_api_tcp_params p = { .address = "127.0.0.1", .port = TCP_PORT, .secret_path = s.secret_path,
	                                 .key_path = key, .cert_path = cert };
	struct stat st;
	pthread_t t;
	FILE *f;

	snprintf(s.secret_path, sizeof(s.secret_path), "%s/admin.secret", fx->dir);
	snprintf(s.wrong_path, sizeof(s.wrong_path), "%s/wrong.secret", fx->dir);
	snprintf(key, sizeof(key), "%s/api.key", fx->dir);
	snprintf(cert, sizeof(cert), "%s/api.crt", fx->dir);
	assert_int_equal(mgmt_api_listen_tcp(fx->api, &p, err, sizeof(err)), 0);
	for (const char *path = s.secret_path; path; path = path == s.secret_path ? key : path == key ? cert : NULL) {
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
	}
	assert_int_equal(api_secret_load(s.secret_path, false, secret, err, sizeof(err)), 0);
	assert_int_equal(strlen(secret), 64);
	f = fopen(s.wrong_path, "w");
	fprintf(f, "%s-not\n", secret);
	fclose(f);
	chmod(s.wrong_path, 0600);

	assert_int_equal(reactor_add_ticker(fx->r, 5, tcp_tick, &s), 0);
	assert_int_equal(pthread_create(&t, NULL, tcp_client_thread, &s), 0);
	assert_int_equal(reactor_run(fx->r), 0);
	pthread_join(t, NULL);
	reactor_remove_ticker(fx->r, tcp_tick, &s);
	unlink(s.wrong_path);
	if (s.failure[0])
		fail_msg("%s", s.failure);
}

/* A secret others may read is refused, by the daemon and by the client alike. */
static void test_readable_secret_is_refused(void **state)
{
	struct fixture *fx = *state;
	char path[160], err[256], secret[API_SECRET_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/open.secret", fx->dir);
	f = fopen(path, "w");
	fprintf(f, "sesame\n");
	fclose(f);
	chmod(path, 0644);
	assert_int_equal(api_secret_load(path, true, secret, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "chmod 600"));
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_malformed_requests_get_errors_naming_the_problem, setup, teardown),
		cmocka_unit_test_setup_teardown(test_methods_reach_the_device, setup, teardown),
		cmocka_unit_test_setup_teardown(test_serves_a_client_over_its_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_daemon_on_the_same_socket_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_socket_is_replaced_and_removed_at_free, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subscriber_that_does_not_read_is_cut_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_needs_tls_and_the_admin_secret, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readable_secret_is_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
