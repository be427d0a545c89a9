#include "mgmt/api_client.h"

#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/util.h"
#include "mgmt/api_auth.h"
#include "mgmt/api_proto.h"
#include "mgmt/api_tls.h"

/* Answers carry whole status objects of every device: far larger than requests. */
#define CLIENT_LINE_MAX (16u << 20)
#define CLIENT_HOST_MAX 256

struct api_client {
	int fd;
	SSL_CTX *ctx;     /* over TCP */
	SSL *ssl;
	char *buf;        /* received, not yet returned as lines */
	size_t len, cap;
	char where[300];  /* the server, for messages */
	char pin[API_CLIENT_PIN_HEX + 1];
	json_int_t next_id;
};

static enum api_client_status broken(struct api_client *c, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "twinsand at %s %s", c->where, what);
	return API_CLIENT_UNREACHABLE;
}

static struct api_client *client_new(const char *where)
{
	struct api_client *c = calloc(1, sizeof(*c));

	if (c) {
		c->fd = -1;
		str_copy(c->where, sizeof(c->where), where);
	}
	return c;
}

enum api_client_status api_client_connect(const char *path, struct api_client **out, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct api_client *c;

	if (strlen(path) >= sizeof(sa.sun_path) || !path[0]) {
		snprintf(err, errlen, "socket path '%s' is empty or too long", path);
		return API_CLIENT_UNREACHABLE;
	}
	strcpy(sa.sun_path, path);
	c = client_new(path);
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return API_CLIENT_UNREACHABLE;
	}
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		snprintf(err, errlen, "cannot reach twinsand at %s: %s; %s", path, strerror(e),
		         e == EACCES || e == EPERM ? "run twinctl as root"
		                                   : "is twinsand running, and is this its api socket?");
		api_client_close(c);
		return API_CLIENT_UNREACHABLE;
	}
	*out = c;
	return API_CLIENT_OK;
}

/* A TCP connection to host:port, any of its addresses. */
static int tcp_connect(const char *host, const char *port, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	int rc = getaddrinfo(host, port, &hints, &res), fd = -1, e = 0;

	if (rc) {
		snprintf(err, errlen, "cannot reach twinsand at %s:%s: %s", host, port, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			e = errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, errlen, "cannot reach twinsand at %s:%s: %s; is its api-listen set and the port open?", host,
		         port, strerror(e));
	return fd;
}

/* Records the server certificate's SHA-256; -1 if it is not the pinned one. */
static int check_pin(struct api_client *c, const char *pin, char *err, size_t errlen)
{
	X509 *cert = SSL_get1_peer_certificate(c->ssl);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned len = 0;

	if (!cert || !X509_digest(cert, EVP_sha256(), md, &len) || len * 2 != API_CLIENT_PIN_HEX) {
		X509_free(cert);
		snprintf(err, errlen, "twinsand at %s showed no usable certificate", c->where);
		return -1;
	}
	X509_free(cert);
	for (unsigned i = 0; i < len; i++)
		snprintf(c->pin + 2 * i, 3, "%02x", md[i]);
	if (pin && pin[0] && strcmp(pin, c->pin)) {
		snprintf(err, errlen, "twinsand at %s showed certificate sha256:%s, not the saved sha256:%s; if that node's "
		                      "api.crt was replaced, save the server again (twinctl server add)", c->where, c->pin, pin);
		return -1;
	}
	return 0;
}

/* TLS 1.3 to the server, its certificate checked against the pin, then the login proof
 * bound to this session. */
static enum api_client_status tls_login(struct api_client *c, const char *secret, const char *pin, char *err,
                                        size_t errlen)
{
	uint8_t binding[API_TLS_BINDING_LEN];
	char proof[API_PROOF_HEX + 1];
	enum api_client_status st;
	json_t *res = NULL;

	c->ctx = SSL_CTX_new(TLS_client_method());
	if (!c->ctx || !SSL_CTX_set_min_proto_version(c->ctx, TLS1_3_VERSION) || !(c->ssl = SSL_new(c->ctx)) ||
	    !SSL_set_fd(c->ssl, c->fd) || SSL_connect(c->ssl) != 1 ||
	    SSL_export_keying_material(c->ssl, binding, sizeof(binding), API_TLS_EXPORTER_LABEL,
	                               strlen(API_TLS_EXPORTER_LABEL), NULL, 0, 0) != 1) {
		char ossl[160] = "";

		ERR_error_string_n(ERR_get_error(), ossl, sizeof(ossl));
		ERR_clear_error();
		snprintf(err, errlen, "TLS with twinsand at %s failed: %s", c->where, ossl[0] ? ossl : "connection closed");
		return API_CLIENT_UNREACHABLE;
	}
	if (check_pin(c, pin, err, errlen) < 0)
		return API_CLIENT_UNREACHABLE;
	api_login_proof(secret, binding, sizeof(binding), proof);
	st = api_client_call(c, "session.login", json_pack("{s:s}", "proof", proof), &res, err, errlen);
	OPENSSL_cleanse(proof, sizeof(proof));
	json_decref(res);
	return st == API_CLIENT_FAILED ? API_CLIENT_UNREACHABLE : st;
}

enum api_client_status api_client_connect_tcp(const char *address, const char *secret_path, const char *pin,
                                              struct api_client **out, char *err, size_t errlen)
{
	char host[CLIENT_HOST_MAX], secret[API_SECRET_MAX];
	const char *colon = strrchr(address, ':');
	size_t hlen = colon ? (size_t)(colon - address) : 0;
	struct api_client *c;
	enum api_client_status st;

	if (address[0] == '[' && hlen >= 2 && address[hlen - 1] == ']') {
		address++;
		hlen -= 2;
	}
	if (!colon || !hlen || hlen >= sizeof(host)) {
		snprintf(err, errlen, "'%s' is not HOST:PORT", address);
		return API_CLIENT_UNREACHABLE;
	}
	memcpy(host, address, hlen);
	host[hlen] = '\0';
	if (api_secret_load(secret_path, false, secret, err, errlen) < 0)
		return API_CLIENT_FAILED;
	c = client_new(address);
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return API_CLIENT_UNREACHABLE;
	}
	c->fd = tcp_connect(host, colon + 1, err, errlen);
	st = c->fd < 0 ? API_CLIENT_UNREACHABLE : tls_login(c, secret, pin, err, errlen);
	OPENSSL_cleanse(secret, sizeof(secret));
	if (st != API_CLIENT_OK) {
		api_client_close(c);
		return st;
	}
	*out = c;
	return API_CLIENT_OK;
}

const char *api_client_pin(const struct api_client *c) { return c->pin; }

void api_client_close(struct api_client *c)
{
	if (!c)
		return;
	if (c->ssl)
		SSL_shutdown(c->ssl);
	SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	free(c);
}

/* Reads more bytes into the buffer; false when the connection ended. */
static bool read_more(struct api_client *c)
{
	size_t n = 0;
	ssize_t r;

	if (c->cap - c->len < 4096) {
		char *grown = c->cap < CLIENT_LINE_MAX + 8192 ? realloc(c->buf, c->cap + 65536) : NULL;

		if (!grown)
			return false;
		c->buf = grown;
		c->cap += 65536;
	}
	if (c->ssl) {
		bool ok = SSL_read_ex(c->ssl, c->buf + c->len, c->cap - c->len, &n) == 1;

		ERR_clear_error();
		c->len += n;
		return ok;
	}
	do
		r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return false;
	c->len += (size_t)r;
	return true;
}

/* Reads the next line as a JSON object. */
static enum api_client_status read_object(struct api_client *c, json_t **obj, char *err, size_t errlen)
{
	char *nl;
	size_t scanned = 0;
	json_error_t jerr;

	while (!(nl = c->len > scanned ? memchr(c->buf + scanned, '\n', c->len - scanned) : NULL)) {
		scanned = c->len;
		if (!read_more(c))
			return broken(c, c->len > CLIENT_LINE_MAX ? "sent an over-long line" : "closed the connection", err,
			              errlen);
	}
	*obj = json_loadb(c->buf, (size_t)(nl - c->buf), 0, &jerr);
	c->len -= (size_t)(nl + 1 - c->buf);
	memmove(c->buf, nl + 1, c->len);
	if (!json_is_object(*obj)) {
		json_decref(*obj);
		return broken(c, "sent something that is not a JSON object", err, errlen);
	}
	return API_CLIENT_OK;
}

static enum api_client_status send_all(struct api_client *c, const char *buf, size_t len, char *err, size_t errlen)
{
	while (len) {
		size_t n = 0;
		ssize_t r;

		if (c->ssl) {
			if (SSL_write_ex(c->ssl, buf, len, &n) != 1) {
				ERR_clear_error();
				return broken(c, "closed the connection", err, errlen);
			}
		} else {
			r = send(c->fd, buf, len, MSG_NOSIGNAL);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return broken(c, "closed the connection", err, errlen);
			n = (size_t)r;
		}
		buf += n;
		len -= n;
	}
	return API_CLIENT_OK;
}

/* An error object as "code: message"; a refusal of the connection itself is unreachable. */
static enum api_client_status error_of(const json_t *error, char *err, size_t errlen)
{
	const char *code = json_string_value(json_object_get(error, "code"));
	const char *message = json_string_value(json_object_get(error, "message"));

	snprintf(err, errlen, "%s: %s", code ? code : "error", message ? message : "(no message)");
	return code && !strcmp(code, MGMT_E_DENIED) ? API_CLIENT_UNREACHABLE : API_CLIENT_FAILED;
}

enum api_client_status api_client_call(struct api_client *c, const char *method, json_t *params, json_t **result,
                                       char *err, size_t errlen)
{
	json_int_t id = c->next_id++;
	json_t *req = json_pack("{s:i, s:I, s:s, s:o}", "version", MGMT_API_VERSION, "id", id, "method", method,
	                        "params", params ? params : json_object());
	char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
	enum api_client_status st;
	json_t *obj;

	json_decref(req);
	if (!text) {
		snprintf(err, errlen, "out of memory");
		return API_CLIENT_FAILED;
	}
	if (send_all(c, text, strlen(text), err, errlen) == API_CLIENT_OK)
		send_all(c, "\n", 1, err, errlen);
	free(text);
	/* A server that refused the connection said why before closing it: read that too. */
	while ((st = read_object(c, &obj, err, errlen)) == API_CLIENT_OK) {
		json_t *rid = json_object_get(obj, "id");

		if (json_object_get(obj, "event")) {
			json_decref(obj);
			continue;
		}
		if (json_is_integer(rid) && json_integer_value(rid) == id && json_is_object(json_object_get(obj, "result"))) {
			*result = json_incref(json_object_get(obj, "result"));
			json_decref(obj);
			return API_CLIENT_OK;
		}
		if (json_object_get(obj, "error"))
			st = error_of(json_object_get(obj, "error"), err, errlen);
		else
			st = broken(c, "answered something else than the request", err, errlen);
		json_decref(obj);
		return st;
	}
	return st;
}

enum api_client_status api_client_next_event(struct api_client *c, json_t **event, char *err, size_t errlen)
{
	enum api_client_status st;
	json_t *obj;

	while ((st = read_object(c, &obj, err, errlen)) == API_CLIENT_OK) {
		if (json_object_get(obj, "event")) {
			*event = obj;
			return API_CLIENT_OK;
		}
		if (json_object_get(obj, "error")) {
			st = error_of(json_object_get(obj, "error"), err, errlen);
			json_decref(obj);
			return st;
		}
		json_decref(obj);
	}
	return st;
}
