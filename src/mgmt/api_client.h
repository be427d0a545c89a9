/* A blocking client of the management API (mgmt/api.h), for twinctl and tests: one
 * request at a time, or a stream of events after events.subscribe; over the local Unix
 * socket, or over TCP with TLS after logging in with the administrator secret. */
#ifndef TWINSAN_MGMT_API_CLIENT_H
#define TWINSAN_MGMT_API_CLIENT_H

#include <stddef.h>

#include <jansson.h>

/* The outcomes, numbered as twinctl's exit codes. */
enum api_client_status {
	API_CLIENT_OK = 0,
	API_CLIENT_FAILED = 1,      /* the server answered with an error */
	API_CLIENT_UNREACHABLE = 3, /* no connection, refused, or the connection broke */
};

struct api_client;

/* Connects to a Unix socket path; err says what to check when it cannot. */
enum api_client_status api_client_connect(const char *path, struct api_client **out, char *err, size_t errlen);
/* Connects to HOST:PORT ([IPv6]:PORT) and logs in with the secret in secret_path
 * (mgmt/api_auth.h); a wrong secret is API_CLIENT_UNREACHABLE, an unreadable file
 * API_CLIENT_FAILED.  With pin (the hex SHA-256 of the server's certificate), a server
 * showing another certificate is refused (API_CLIENT_UNREACHABLE) before logging in. */
#define API_CLIENT_PIN_HEX 64
enum api_client_status api_client_connect_tcp(const char *address, const char *secret_path, const char *pin,
                                              struct api_client **out, char *err, size_t errlen);
/* The hex SHA-256 of the certificate a TCP server showed; "" on a Unix socket. */
const char *api_client_pin(const struct api_client *c);
void api_client_close(struct api_client *c);

/* Sends method with params (consumed; NULL: none) and waits for the answer: the result
 * object in *result (the caller's), or err "code: message".  Events arriving meanwhile
 * are dropped. */
enum api_client_status api_client_call(struct api_client *c, const char *method, json_t *params, json_t **result,
                                       char *err, size_t errlen);

/* After events.subscribe: waits for the next event object. */
enum api_client_status api_client_next_event(struct api_client *c, json_t **event, char *err, size_t errlen);

#endif
