/* The management API's transport: its listeners (a Unix socket whose peers are checked
 * by SO_PEERCRED, and TCP with TLS) and connections on the reactor, one RECV and one SEND
 * in flight per connection at most.  Complete request lines go to the answer callback. */
#include "mgmt/api_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "mgmt/api_proto.h"

/* A subscriber that reads more slowly than events come is cut off past this. */
#define MGMT_OUTPUT_MAX (1u << 20)

/* ---- connections ---- */

static void conn_recv(struct api_conn *c);
static void conn_send(struct api_conn *c);

static bool server_idle(const struct api_server *srv)
{
	return !srv->local.in_flight && !srv->tcp.in_flight && !srv->conns;
}

static void conn_free(struct api_conn *c)
{
	struct api_server *srv = c->srv;

	for (struct api_conn **p = &srv->conns; *p; p = &(*p)->next) {
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
	if (srv->closing && server_idle(srv))
		reactor_stop(srv->r);
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
		reactor_defer(c->srv->r, &c->cancel_op, conn_cancelled);
		return;
	}
	c->in_flight++;
	io_uring_prep_cancel_fd(reactor_sqe(c->srv->r, &c->cancel_op, conn_cancelled), c->fd,
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
void api_conn_queue(struct api_conn *c, char *text)
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
	io_uring_prep_send(reactor_sqe(c->srv->r, &c->send_op, conn_sent), c->fd, o->text + o->sent,
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
			api_conn_queue(c, c->srv->answer(c->srv->arg, c, start, len));
		start = nl + 1;
	}
	c->in_len -= (size_t)(start - c->in);
	memmove(c->in, start, c->in_len);
	if (c->in_len == sizeof(c->in) && !c->finishing) {
		struct mgmt_error err;

		/* Without its end the line cannot be skipped reliably: answer, then close. */
		mgmt_fail(&err, MGMT_E_TOO_LARGE, "a request line is longer than %d bytes", MGMT_REQUEST_MAX);
		api_conn_queue(c, mgmt_response_error(NULL, &err));
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
		io_uring_prep_recv(reactor_sqe(c->srv->r, &c->recv_op, conn_received), c->fd, c->raw, sizeof(c->raw), 0);
	else
		io_uring_prep_recv(reactor_sqe(c->srv->r, &c->recv_op, conn_received), c->fd, c->in + c->in_len,
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
	api_conn_queue(c, mgmt_response_error(NULL, &err));
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
	c->tls = api_tls_new(c->srv->tls);
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
	c->srv = l->srv;
	c->fd = fd;
	c->next = l->srv->conns;
	l->srv->conns = c;
	if (l->tcp)
		conn_start_tls(c);
	else
		conn_check_peer(c);
}

/* A listener's operation ended; at shutdown the last one lets mgmt_api_free() go on. */
static bool listener_op_done(struct api_listener *l)
{
	l->in_flight--;
	if (!l->srv->closing)
		return false;
	if (server_idle(l->srv))
		reactor_stop(l->srv->r);
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
	io_uring_prep_accept(reactor_sqe(l->srv->r, &l->accept_op, api_accepted), l->fd, NULL, NULL, SOCK_CLOEXEC);
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
	io_uring_prep_cancel64(reactor_sqe(l->srv->r, &l->cancel_op, listener_cancelled),
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

static int unix_bind(struct api_server *srv, const struct sockaddr_un *sa, char *err, size_t errlen)
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
	if (bind(srv->local.fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 ||
	    chmod(sa->sun_path, 0600) < 0 || listen(srv->local.fd, 16) < 0) {
		snprintf(err, errlen, "api socket %s: %s", sa->sun_path, strerror(errno));
		return -1;
	}
	return 0;
}

int api_server_listen_unix(struct api_server *srv, const char *path, char *err, size_t errlen)
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
	srv->local.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (srv->local.fd < 0) {
		snprintf(err, errlen, "api socket: %s", strerror(errno));
		return -1;
	}
	if (unix_bind(srv, &sa, err, errlen) < 0) {
		close(srv->local.fd);
		srv->local.fd = -1;
		return -1;
	}
	str_copy(srv->path, sizeof(srv->path), path);
	api_accept(&srv->local);
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

int api_server_listen_tcp(struct api_server *srv, const char *address, uint16_t port, const char *key_path,
                          const char *cert_path, char *err, size_t errlen)
{
	if (api_tls_ctx_new(key_path, cert_path, &srv->tls, err, errlen) < 0)
		return -1;
	srv->tcp.fd = tcp_socket(address, port, err, errlen);
	if (srv->tcp.fd < 0)
		return -1;
	api_accept(&srv->tcp);
	return 0;
}

void api_server_init(struct api_server *srv, struct reactor *r, api_answer_fn *answer, void *arg)
{
	*srv = (struct api_server){ .r = r, .answer = answer, .arg = arg };
	srv->local = (struct api_listener){ .srv = srv, .fd = -1 };
	srv->tcp = (struct api_listener){ .srv = srv, .fd = -1, .tcp = true };
}

void api_server_close(struct api_server *srv)
{
	srv->closing = true;
	listener_stop(&srv->local);
	listener_stop(&srv->tcp);
	for (struct api_conn *c = srv->conns; c; c = c->next)
		conn_close(c);
	while (!server_idle(srv))
		if (reactor_run(srv->r) < 0)
			break;
	if (srv->local.fd >= 0) {
		close(srv->local.fd);
		unlink(srv->path);
	}
	if (srv->tcp.fd >= 0)
		close(srv->tcp.fd);
	api_tls_ctx_free(srv->tls);
}

