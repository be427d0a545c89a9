#include "mgmt/api_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mgmt/api_proto.h"

/* Answers carry whole status objects of every device: far larger than requests. */
#define CLIENT_LINE_MAX (16u << 20)

struct api_client {
	int fd;
	FILE *in;
	char path[108];
	json_int_t next_id;
};

enum api_client_status api_client_connect(const char *path, struct api_client **out, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct api_client *c;

	if (strlen(path) >= sizeof(sa.sun_path) || !path[0]) {
		snprintf(err, errlen, "socket path '%s' is empty or too long", path);
		return API_CLIENT_UNREACHABLE;
	}
	strcpy(sa.sun_path, path);
	c = calloc(1, sizeof(*c));
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
		if (c->fd >= 0)
			close(c->fd);
		free(c);
		return API_CLIENT_UNREACHABLE;
	}
	c->in = fdopen(c->fd, "r");
	if (!c->in) {
		snprintf(err, errlen, "out of memory");
		close(c->fd);
		free(c);
		return API_CLIENT_UNREACHABLE;
	}
	strcpy(c->path, path);
	*out = c;
	return API_CLIENT_OK;
}

void api_client_close(struct api_client *c)
{
	if (!c)
		return;
	fclose(c->in); /* closes fd */
	free(c);
}

static enum api_client_status broken(struct api_client *c, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "twinsand at %s %s", c->path, what);
	return API_CLIENT_UNREACHABLE;
}

/* Reads the next line as a JSON object. */
static enum api_client_status read_object(struct api_client *c, json_t **obj, char *err, size_t errlen)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len = getline(&line, &cap, c->in);
	json_error_t jerr;

	if (len <= 0) {
		free(line);
		return broken(c, "closed the connection", err, errlen);
	}
	if ((size_t)len > CLIENT_LINE_MAX) {
		free(line);
		return broken(c, "sent an over-long line", err, errlen);
	}
	*obj = json_loadb(line, (size_t)len, 0, &jerr);
	free(line);
	if (!json_is_object(*obj)) {
		json_decref(*obj);
		return broken(c, "sent something that is not a JSON object", err, errlen);
	}
	return API_CLIENT_OK;
}

static enum api_client_status send_all(struct api_client *c, const char *buf, size_t len, char *err, size_t errlen)
{
	while (len) {
		ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return broken(c, "closed the connection", err, errlen);
		buf += n;
		len -= (size_t)n;
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
