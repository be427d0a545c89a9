/* The management API's wire format, without sockets: newline-delimited JSON.
 *
 *   request   {"version":1,"id":N,"method":"device.status","params":{"name":"HA1"}}
 *   response  {"version":1,"id":N,"result":{...}}
 *          or {"version":1,"id":N,"error":{"code":"not_found","message":"..."}}
 *   event     {"version":1,"event":"partner_lost","device":"HA1","detail":"...","time":T}
 *
 * An error about the request itself (it is not JSON, has no id) carries "id":null.
 * Everything here is pure, so the parser can be fuzzed and unit tested alone. */
#ifndef TWINSAN_MGMT_API_PROTO_H
#define TWINSAN_MGMT_API_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define MGMT_API_VERSION 1
/* Longest request line accepted (the newline excluded); requests are small objects. */
#define MGMT_REQUEST_MAX 16384

/* Error codes clients may rely on. */
#define MGMT_E_PARSE "parse_error"              /* not a JSON object */
#define MGMT_E_REQUEST "invalid_request"        /* an envelope field is missing or wrong */
#define MGMT_E_VERSION "unsupported_version"
#define MGMT_E_METHOD "unknown_method"
#define MGMT_E_PARAMS "invalid_params"
#define MGMT_E_TOO_LARGE "request_too_large"
#define MGMT_E_NOT_FOUND "not_found"            /* no such device or target */
#define MGMT_E_FAILED "failed"                  /* the operation was refused or failed */
#define MGMT_E_DENIED "permission_denied"
#define MGMT_E_BUSY "busy"                      /* in use (initiators logged in); force to override */

struct mgmt_error {
	char code[32];
	char message[320];
};
/* Fills err and returns -1, so callers can `return mgmt_fail(...)`. */
int mgmt_fail(struct mgmt_error *err, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* What a method accepts: its parameters (a table ended by a NULL name).  A string may be
 * limited to choices (a NULL-terminated list); parameters not listed are refused. */
enum mgmt_param_type { MGMT_PARAM_STRING = 1, MGMT_PARAM_BOOL };
struct mgmt_param {
	const char *name;
	enum mgmt_param_type type;
	bool required;
	const char *const *choices;
};

struct mgmt_request {
	json_t *root;       /* owns everything below */
	json_t *id;         /* an integer, or NULL before it is known */
	const char *method;
	json_t *params;     /* an object, empty when the request had none */
};

/* Parses one request line (without its newline).  On -1, err says what is wrong and
 * req->id is the request's id if it could be read, for the error response. */
int mgmt_request_parse(const char *line, size_t len, struct mgmt_request *req, struct mgmt_error *err);
void mgmt_request_free(struct mgmt_request *req);

/* Checks params against a method's parameter table. */
int mgmt_params_check(const struct mgmt_param *spec, const json_t *params, struct mgmt_error *err);

/* Response and event lines, newline-terminated, malloc'd (NULL when out of memory).
 * id may be NULL (then "id":null); result is consumed. */
char *mgmt_response_result(json_t *id, json_t *result);
char *mgmt_response_error(json_t *id, const struct mgmt_error *err);
/* time_ms is wall-clock milliseconds since the epoch; device and detail may be NULL. */
char *mgmt_event_line(const char *event, const char *device, const char *detail, long long time_ms);

#endif
