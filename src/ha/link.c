/* A sync/heartbeat link on the reactor: one RECV and one SEND in flight at most, and a
 * cancellable heartbeat timer; the link is freed from the loop once both I/Os completed. */
#include "ha/link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

#define LINK_RECV_BUF (256u << 10) /* a quarter of the largest frame a call */
/* Frames gathered into one SEND: many small WRITE_ACKs or WRITEs cost one system call. */
#define LINK_SEND_IOV 64

struct link_tx {
	struct link_tx *next;
	size_t len, sent;
	uint8_t buf[];
};

enum link_state {
	LINK_HANDSHAKE,
	LINK_UP,
	LINK_FINISHING, /* sending what is queued (a GOODBYE), then closing */
	LINK_CLOSED,
};

struct link {
	struct reactor *r;
	int fd;
	enum link_state state;
	const struct link_ops *ops;
	void *arg;
	struct handshake *hs;
	struct proto_tx *tx;
	struct proto_rx *rx;
	struct reactor_op recv_op, send_op, kick_op;
	struct iovec siov[LINK_SEND_IOV];
	struct msghdr smsg;
	bool kick_pending;
	struct reactor_timer tick;
	unsigned in_flight;
	bool sending, freeing, notify_lost;
	bool peer_shutdown; /* the peer said GOODBYE(shutdown) */
	struct link_tx *txq_head, *txq_tail;
	size_t queued;      /* bytes in txq not yet sent */
	uint64_t last_rx_ms, rtt_ms;
	uint64_t started_ms, peer_seen_ms, answer_given_ms; /* link_peer_seen_ms() */
	unsigned ping_interval_ms, timeout_ms;
	char peer[64];      /* address:port, for the log */
	char reason[192];
	uint8_t rbuf[LINK_RECV_BUF];
};

static void link_free(struct reactor_op *op, int res)
{
	struct link *l = container_of(op, struct link, recv_op);

	while (l->txq_head != NULL) {
		struct link_tx *t = l->txq_head;

		l->txq_head = t->next;
		free(t);
	}
	handshake_free(l->hs);
	proto_tx_free(l->tx);
	proto_rx_free(l->rx);
	close(l->fd);
	free(l);
}

static void maybe_free(struct link *l)
{
	if (l->state != LINK_CLOSED || l->in_flight > 0 || l->freeing)
		return;
	l->freeing = true;
	reactor_defer(l->r, &l->recv_op, link_free);
}

/* Ends the link now; `lost` is told if the owner did not ask for it. */
static void die(struct link *l, const char *why)
{
	if (l->state == LINK_CLOSED)
		return;
	if (why != l->reason)
		str_copy(l->reason, sizeof(l->reason), why);
	l->state = LINK_CLOSED;
	reactor_timer_cancel(l->r, &l->tick);
	/* Completes the RECV and SEND in flight; the socket is closed when they are done. */
	shutdown(l->fd, SHUT_RDWR);
	if (l->notify_lost) {
		log_warn("ha link %s (node %016llx) lost: %s", l->peer,
		         (unsigned long long)handshake_peer(l->hs)->node_id, l->reason);
		l->ops->lost(l->arg, l, l->reason);
	} else {
		log_info("ha link %s (node %016llx) closed: %s", l->peer,
		         (unsigned long long)handshake_peer(l->hs)->node_id, l->reason);
	}
	maybe_free(l);
}

static void on_sent(struct reactor_op *op, int res);

static void kick_send(struct link *l)
{
	struct link_tx *t = l->txq_head;
	int n = 0;

	if (l->sending || t == NULL || l->state == LINK_CLOSED)
		return;
	for (; t != NULL && n < LINK_SEND_IOV; t = t->next, n++)
		l->siov[n] = (struct iovec){t->buf + t->sent, t->len - t->sent};
	l->smsg = (struct msghdr){.msg_iov = l->siov, .msg_iovlen = (size_t)n};
	io_uring_prep_sendmsg(reactor_sqe(l->r, &l->send_op, on_sent), l->fd, &l->smsg, MSG_NOSIGNAL);
	l->sending = true;
	l->in_flight++;
}

static void on_kick(struct reactor_op *op, int res)
{
	struct link *l = container_of(op, struct link, kick_op);

	l->in_flight--;
	l->kick_pending = false;
	if (l->state == LINK_CLOSED)
		maybe_free(l);
	else
		kick_send(l);
}

/* Sends from the loop, once the callbacks running now have queued all they will. */
static void kick_soon(struct link *l)
{
	if (l->kick_pending || l->sending || l->state == LINK_CLOSED)
		return;
	l->kick_pending = true;
	l->in_flight++;
	reactor_defer(l->r, &l->kick_op, on_kick);
}

/* Sends what is queued, then dies with `why`. */
static void finish(struct link *l, const char *why)
{
	if (l->state == LINK_CLOSED || l->state == LINK_FINISHING)
		return;
	str_copy(l->reason, sizeof(l->reason), why);
	l->state = LINK_FINISHING;
	if (l->txq_head == NULL)
		die(l, l->reason);
}

static void on_sent(struct reactor_op *op, int res)
{
	struct link *l = container_of(op, struct link, send_op);
	struct link_tx *t;
	char why[96];

	l->in_flight--;
	l->sending = false;
	if (l->state == LINK_CLOSED) {
		maybe_free(l);
		return;
	}
	if (res <= 0) {
		snprintf(why, sizeof(why), "send failed: %s", res < 0 ? strerror(-res) : "nothing sent");
		die(l, why);
		return;
	}
	l->queued -= (size_t)res;
	for (size_t left = (size_t)res; left > 0 && (t = l->txq_head) != NULL;) {
		size_t n = MIN(left, t->len - t->sent);

		t->sent += n;
		left -= n;
		if (t->sent == t->len) {
			l->txq_head = t->next;
			if (l->txq_head == NULL)
				l->txq_tail = NULL;
			free(t);
		}
	}
	if (l->txq_head == NULL && l->state == LINK_FINISHING)
		die(l, l->reason);
	else
		kick_send(l);
}

static int queue_msg(struct link *l, const struct proto_msg *m)
{
	struct proto_frame f;
	struct link_tx *t;

	if (proto_encode(l->tx, m, &f) != 0)
		return -1;
	t = malloc(sizeof(*t) + f.head_len + f.data_len + f.tag_len);
	if (t == NULL) {
		die(l, "out of memory");
		return -1;
	}
	t->next = NULL;
	t->sent = 0;
	t->len = proto_frame_flatten(&f, t->buf, f.head_len + f.data_len + f.tag_len);
	l->queued += t->len;
	if (l->txq_tail != NULL)
		l->txq_tail->next = t;
	else
		l->txq_head = t;
	l->txq_tail = t;
	kick_soon(l);
	return 0;
}

static void say_goodbye(struct link *l, uint32_t reason, const char *why)
{
	struct proto_msg bye = {.type = PROTO_GOODBYE, .u.goodbye.reason = reason};

	queue_msg(l, &bye);
	finish(l, why);
}

static void on_handshake_msg(struct link *l, const struct proto_msg *m)
{
	struct proto_msg reply;
	bool has_reply;
	enum handshake_result res = handshake_input(l->hs, m, &reply, &has_reply);
	uint8_t tx_key[PROTO_KEY_LEN], rx_key[PROTO_KEY_LEN];

	if (has_reply)
		queue_msg(l, &reply);
	if (res == HANDSHAKE_FAILED) {
		finish(l, handshake_reason(l->hs));
		return;
	}
	if (res != HANDSHAKE_DONE)
		return;
	handshake_keys(l->hs, tx_key, rx_key);
	if (proto_tx_set_key(l->tx, tx_key, handshake_version(l->hs)) != 0 ||
	    proto_rx_set_key(l->rx, rx_key, handshake_version(l->hs)) != 0) {
		die(l, "cannot set the session keys");
		return;
	}
	OPENSSL_cleanse(tx_key, sizeof(tx_key));
	OPENSSL_cleanse(rx_key, sizeof(rx_key));
	l->state = LINK_UP;
	l->peer_seen_ms = l->started_ms;
	l->answer_given_ms = now_ms();
	log_info("ha link %s (node %016llx) authenticated, protocol version %u", l->peer,
	         (unsigned long long)handshake_peer(l->hs)->node_id, handshake_version(l->hs));
	l->ops->up(l->arg, l);
}

static void on_up_msg(struct link *l, const struct proto_msg *m)
{
	char why[96];

	switch (m->type) {
	case PROTO_PING: {
		struct proto_msg pong = {.type = PROTO_PONG};

		pong.u.ping.sent_ms = now_ms();
		pong.u.ping.echo_ms = m->u.ping.sent_ms;
		queue_msg(l, &pong);
		l->answer_given_ms = pong.u.ping.sent_ms;
		break;
	}
	case PROTO_PONG:
		/* Our own clock comes back: only a value we could have sent counts. */
		if (m->u.ping.echo_ms <= now_ms()) {
			l->rtt_ms = now_ms() - m->u.ping.echo_ms;
			l->peer_seen_ms = MAX(l->peer_seen_ms, m->u.ping.echo_ms);
		}
		break;
	case PROTO_GOODBYE:
		l->peer_shutdown = m->u.goodbye.reason == PROTO_BYE_SHUTDOWN;
		snprintf(why, sizeof(why), "peer said goodbye: %s", proto_goodbye_name(m->u.goodbye.reason));
		die(l, why);
		break;
	case PROTO_HELLO:
	case PROTO_AUTH:
		snprintf(why, sizeof(why), "%s after the handshake", proto_type_name(m->type));
		say_goodbye(l, PROTO_BYE_PROTOCOL, why);
		break;
	default:
		l->ops->message(l->arg, l, m);
	}
}

static void on_received(struct reactor_op *op, int res);

static void arm_recv(struct link *l)
{
	io_uring_prep_recv(reactor_sqe(l->r, &l->recv_op, on_received), l->fd, l->rbuf, sizeof(l->rbuf), 0);
	l->in_flight++;
}

static void on_received(struct reactor_op *op, int res)
{
	struct link *l = container_of(op, struct link, recv_op);
	size_t off = 0;

	l->in_flight--;
	if (l->state == LINK_CLOSED) {
		maybe_free(l);
		return;
	}
	if (res <= 0) {
		die(l, res == 0 ? "connection closed by the peer" : strerror(-res));
		return;
	}
	l->last_rx_ms = now_ms();
	/* Frame by frame, so keys set by the handshake apply from the very next frame. */
	while (off < (size_t)res && (l->state == LINK_HANDSHAKE || l->state == LINK_UP)) {
		struct proto_msg m;
		size_t used;
		enum proto_error e = proto_rx_feed(l->rx, l->rbuf + off, (size_t)res - off, &used, &m);

		off += used;
		if (e == PROTO_NEED_MORE)
			break;
		if (e != PROTO_OK)
			die(l, proto_rx_error(l->rx));
		else if (l->state == LINK_HANDSHAKE)
			on_handshake_msg(l, &m);
		else
			on_up_msg(l, &m);
	}
	if (l->state == LINK_HANDSHAKE || l->state == LINK_UP)
		arm_recv(l);
}

static void on_tick(struct reactor_timer *t)
{
	struct link *l = container_of(t, struct link, tick);
	uint64_t now = now_ms();
	char why[96];

	if (now - l->last_rx_ms > l->timeout_ms) {
		snprintf(why, sizeof(why), "nothing heard for %llu ms%s", (unsigned long long)(now - l->last_rx_ms),
		         l->state == LINK_HANDSHAKE ? " during the handshake" : "");
		die(l, why);
		return;
	}
	if (l->state == LINK_UP) {
		struct proto_msg ping = {.type = PROTO_PING, .u.ping.sent_ms = now};

		queue_msg(l, &ping);
	}
	if (l->state != LINK_CLOSED)
		reactor_timer_start(l->r, &l->tick, l->ping_interval_ms, on_tick);
}

static void peer_name(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;

			inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
			port = ntohs(sin->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;

			inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
			port = ntohs(sin6->sin6_port);
		}
	}
	snprintf(out, len, "%s:%u", host, port);
}

struct link *link_start(struct reactor *r, int fd, const struct link_config *cfg, const struct link_ops *ops,
                        void *arg, const char **why)
{
	struct link *l = NULL;
	struct proto_msg hello;

	*why = NULL;
	if (cfg->ping_interval_ms == 0 || cfg->timeout_ms <= cfg->ping_interval_ms)
		*why = "heartbeat timeout must exceed the ping interval";
	else if ((l = calloc(1, sizeof(*l))) == NULL)
		*why = "out of memory";
	else if ((l->hs = handshake_new(&cfg->hs, why)) == NULL || (l->tx = proto_tx_new()) == NULL ||
	         (l->rx = proto_rx_new(cfg->max_payload)) == NULL)
		*why = *why != NULL ? *why : "out of memory";
	if (*why != NULL) {
		if (l != NULL) {
			handshake_free(l->hs);
			proto_tx_free(l->tx);
			free(l);
		}
		close(fd);
		return NULL;
	}
	peer_name(fd, l->peer, sizeof(l->peer));
	l->r = r;
	l->fd = fd;
	l->ops = ops;
	l->arg = arg;
	l->notify_lost = true;
	l->state = LINK_HANDSHAKE;
	l->ping_interval_ms = cfg->ping_interval_ms;
	l->timeout_ms = cfg->timeout_ms;
	l->last_rx_ms = l->started_ms = now_ms();
	handshake_hello(l->hs, &hello);
	queue_msg(l, &hello);
	arm_recv(l);
	reactor_timer_start(r, &l->tick, l->ping_interval_ms, on_tick);
	return l;
}

int link_send(struct link *l, const struct proto_msg *m)
{
	if (l->state != LINK_UP || m->type == PROTO_HELLO || m->type == PROTO_AUTH)
		return -1;
	return queue_msg(l, m);
}

void link_close(struct link *l, const char *why)
{
	l->notify_lost = false;
	if (l->state == LINK_UP)
		say_goodbye(l, PROTO_BYE_SHUTDOWN, why);
	else
		die(l, why);
}

size_t link_queued_bytes(const struct link *l)
{
	return l->queued;
}

uint8_t link_version(const struct link *l)
{
	return handshake_version(l->hs);
}

uint64_t link_rtt_ms(const struct link *l)
{
	return l->rtt_ms;
}

uint64_t link_peer_seen_ms(const struct link *l)
{
	return l->peer_seen_ms;
}

uint64_t link_answer_given_ms(const struct link *l)
{
	return l->answer_given_ms;
}

bool link_peer_shut_down(const struct link *l)
{
	return l->peer_shutdown;
}
