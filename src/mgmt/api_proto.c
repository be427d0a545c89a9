#include "mgmt/api_proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mgmt_fail(struct mgmt_error *err, const char *code, const char *fmt, ...)
{
	va_list ap;

	snprintf(err->code, sizeof(err->code), "%s", code);
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	/* Messages quote what the client sent, and may be cut mid-character: kept to
	 * printable ASCII, they are always valid JSON strings. */
	for (char *p = err->message; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
	return -1;
}

int mgmt_request_parse(const char *line, size_t len, struct mgmt_request *req, struct mgmt_error *err)
{
	json_error_t jerr;
	json_t *version, *method, *value;
	const char *key;

	*req = (struct mgmt_request){ 0 };
	if (len > MGMT_REQUEST_MAX)
		return mgmt_fail(err, MGMT_E_TOO_LARGE, "request of %zu bytes; at most %d are accepted", len,
		                 MGMT_REQUEST_MAX);
	/* Duplicate keys would let two checks see two different values. */
	req->root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!req->root)
		return mgmt_fail(err, MGMT_E_PARSE, "not JSON (column %d: %s); send one JSON object per line",
		                 jerr.column, jerr.text);
	if (!json_is_object(req->root))
		return mgmt_fail(err, MGMT_E_PARSE, "a request must be a JSON object");
	req->id = json_object_get(req->root, "id");
	if (!json_is_integer(req->id) || json_integer_value(req->id) < 0) {
		req->id = NULL;
		return mgmt_fail(err, MGMT_E_REQUEST, "\"id\" must be a non-negative integer");
	}
	version = json_object_get(req->root, "version");
	if (!json_is_integer(version))
		return mgmt_fail(err, MGMT_E_REQUEST, "\"version\" must be an integer (this server speaks %d)",
		                 MGMT_API_VERSION);
	if (json_integer_value(version) != MGMT_API_VERSION)
		return mgmt_fail(err, MGMT_E_VERSION, "version %lld is not supported; this server speaks %d",
		                 (long long)json_integer_value(version), MGMT_API_VERSION);
	method = json_object_get(req->root, "method");
	if (!json_is_string(method))
		return mgmt_fail(err, MGMT_E_REQUEST, "\"method\" must be a string");
	req->method = json_string_value(method);
	req->params = json_object_get(req->root, "params");
	if (!req->params) {
		req->params = json_object();
		if (!req->params || json_object_set_new(req->root, "params", req->params) < 0)
			return mgmt_fail(err, MGMT_E_FAILED, "out of memory");
	} else if (!json_is_object(req->params)) {
		return mgmt_fail(err, MGMT_E_REQUEST, "\"params\" must be an object");
	}
	json_object_foreach(req->root, key, value)
		if (strcmp(key, "version") && strcmp(key, "id") && strcmp(key, "method") && strcmp(key, "params"))
			return mgmt_fail(err, MGMT_E_REQUEST, "unknown request field \"%s\"", key);
	return 0;
}

void mgmt_request_free(struct mgmt_request *req)
{
	json_decref(req->root);
	*req = (struct mgmt_request){ 0 };
}

static const struct mgmt_param *param_find(const struct mgmt_param *spec, const char *name)
{
	for (; spec && spec->name; spec++)
		if (!strcmp(spec->name, name))
			return spec;
	return NULL;
}

static int choice_check(const struct mgmt_param *p, const char *value, struct mgmt_error *err)
{
	char list[160] = "";
	size_t off = 0;

	for (const char *const *c = p->choices; *c; c++) {
		if (!strcmp(*c, value))
			return 0;
		off += (size_t)snprintf(list + off, off < sizeof(list) ? sizeof(list) - off : 0, "%s%s",
		                        c == p->choices ? "" : ", ", *c);
	}
	return mgmt_fail(err, MGMT_E_PARAMS, "\"%s\" must be one of: %s", p->name, list);
}

int mgmt_params_check(const struct mgmt_param *spec, const json_t *params, struct mgmt_error *err)
{
	const char *key;
	json_t *value;

	json_object_foreach((json_t *)params, key, value) {
		const struct mgmt_param *p = param_find(spec, key);

		if (!p)
			return mgmt_fail(err, MGMT_E_PARAMS, "unknown parameter \"%s\"", key);
		if (p->type == MGMT_PARAM_BOOL && !json_is_boolean(value))
			return mgmt_fail(err, MGMT_E_PARAMS, "\"%s\" must be true or false", key);
		if (p->type == MGMT_PARAM_STRING) {
			if (!json_is_string(value) || !json_string_length(value))
				return mgmt_fail(err, MGMT_E_PARAMS, "\"%s\" must be a non-empty string", key);
			if (p->choices && choice_check(p, json_string_value(value), err) < 0)
				return -1;
		}
	}
	for (; spec && spec->name; spec++)
		if (spec->required && !json_object_get(params, spec->name))
			return mgmt_fail(err, MGMT_E_PARAMS, "missing parameter \"%s\"", spec->name);
	return 0;
}

/* Serialises obj (consumed) as one line. */
static char *line_of(json_t *obj)
{
	char *text, *line = NULL;
	size_t len;

	if (!obj)
		return NULL;
	text = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (!text)
		return NULL;
	len = strlen(text);
	line = realloc(text, len + 2);
	if (!line) {
		free(text);
		return NULL;
	}
	line[len] = '\n';
	line[len + 1] = '\0';
	return line;
}

static json_t *envelope(json_t *id)
{
	return json_pack("{s:i, s:O}", "version", MGMT_API_VERSION, "id", id ? id : json_null());
}

char *mgmt_response_result(json_t *id, json_t *result)
{
	json_t *obj = envelope(id);

	if (!obj) {
		json_decref(result);
		return NULL;
	}
	/* set_new takes result even when it fails. */
	if (!result || json_object_set_new(obj, "result", result) < 0) {
		json_decref(obj);
		return NULL;
	}
	return line_of(obj);
}

char *mgmt_response_error(json_t *id, const struct mgmt_error *err)
{
	json_t *obj = envelope(id);

	if (obj && json_object_set_new(obj, "error", json_pack("{s:s, s:s}", "code", err->code, "message",
	                                                       err->message)) < 0) {
		json_decref(obj);
		return NULL;
	}
	return line_of(obj);
}

char *mgmt_event_line(const char *event, const char *device, const char *detail, long long time_ms)
{
	return line_of(json_pack("{s:i, s:s, s:s?, s:s?, s:f}", "version", MGMT_API_VERSION, "event", event,
	                         "device", device, "detail", detail, "time", (double)time_ms / 1000.0));
}
