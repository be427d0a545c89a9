/* Internal to the management API (mgmt/api.c): the transport that carries its request
 * and response lines, mgmt/api_server.c.  Connections are visible to the methods, which
 * subscribe them to events and log them in. */
#ifndef TWINSAN_MGMT_API_SERVER_H
#define TWINSAN_MGMT_API_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include "common/reactor.h"
#include "mgmt/api_proto.h"
#include "mgmt/api_tls.h"

struct api_server;

struct out_line {
	struct out_line *next;
	char *text;
	size_t len, sent;
};

struct api_listener {
	struct api_server *srv;
	int fd;
	bool tcp;
	struct reactor_op accept_op, cancel_op;
	unsigned in_flight;  /* ACCEPT and cancel operations */
};

struct api_conn {
	struct api_server *srv;
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

struct api_conn;
/* The response line to a request line of c (malloc'd; NULL when out of memory). */
typedef char *api_answer_fn(void *arg, struct api_conn *c, const char *line, size_t len);

struct api_server {
	struct reactor *r;
	api_answer_fn *answer;
	void *arg;
	struct api_listener local, tcp;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct api_tls_ctx *tls;
	bool closing;
	struct api_conn *conns;
};

void api_server_init(struct api_server *srv, struct reactor *r, api_answer_fn *answer, void *arg);
/* Listens on a Unix socket at path (mode 0600), creating its directory (0700) if
 * missing; a stale socket file is replaced, one a running daemon answers on is an error. */
int api_server_listen_unix(struct api_server *srv, const char *path, char *err, size_t errlen);
/* Listens on TCP with TLS (the key and certificate made at first start, api_tls.h);
 * its connections must log in before their requests are answered. */
int api_server_listen_tcp(struct api_server *srv, const char *address, uint16_t port, const char *key_path,
                          const char *cert_path, char *err, size_t errlen);
/* Closes the connections and listeners; runs the reactor until their operations ended. */
void api_server_close(struct api_server *srv);

/* Queues a response or event line (taking text) for c. */
void api_conn_queue(struct api_conn *c, char *text);

#endif
