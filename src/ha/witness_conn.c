/* A node-witness connection on the reactor: one RECV and one SEND in flight at most and
 * a cancellable timer; freed from the loop once both operations have completed. */
#include "ha/witness_conn.h"

#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "iscsi/portal.h"

#define CONN_RECV_BUF 4096
#define CONN_SEND_BUF 32768 /* a peer that lets this fill up is not reading: dropped */

enum conn_state {
	CONN_HELLO,      /* witness: waiting for HELLO */
	CONN_CHALLENGE,  /* node: waiting for CHALLENGE */
	CONN_PROOF,      /* both: waiting for the peer's PROOF */
	CONN_UP,
	CONN_FINISHING,  /* sending what is queued (a BYE), then closing */
	CONN_CLOSED,
};

struct witness_conn {
	struct reactor *r;
	int fd;
	enum conn_state state;
	const struct witness_conn_ops *ops;
	void *arg;
	enum witness_side side;
	struct witness_proto *wp;
	struct witness_auth auth;
	uint8_t secret[WITNESS_SECRET_MAX];
	struct reactor_op recv_op, send_op;
	struct reactor_timer timer;
	unsigned in_flight;
	bool sending, freeing, notify_lost, stuck;
	bool proven;            /* the handshake succeeded (the node id is then trustworthy) */
	uint64_t last_rx_ms;
	unsigned ping_interval_ms, timeout_ms, tick_ms;
	size_t out_len, out_sent; /* out[out_sent..out_len) is queued */
	char peer[80];
	char reason[192];
	uint8_t in[CONN_RECV_BUF];
	uint8_t out[CONN_SEND_BUF];
};

static void conn_free(struct reactor_op *op, int res)
{
	struct witness_conn *c = container_of(op, struct witness_conn, recv_op);
	void (*gone)(void *arg) = c->ops->gone;
	void *arg = c->arg;

	witness_proto_free(c->wp);
	close(c->fd);
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
	if (gone != NULL)
		gone(arg);
}

static void maybe_free(struct witness_conn *c)
{
	if (c->state != CONN_CLOSED || c->in_flight > 0 || c->freeing)
		return;
	c->freeing = true;
	reactor_defer(c->r, &c->recv_op, conn_free);
}

static void die(struct witness_conn *c, const char *why)
{
	if (c->state == CONN_CLOSED)
		return;
	if (why != c->reason)
		str_copy(c->reason, sizeof(c->reason), why);
	c->state = CONN_CLOSED;
	reactor_timer_cancel(c->r, &c->timer);
	/* Completes the RECV and SEND in flight; the socket is closed after them. */
	shutdown(c->fd, SHUT_RDWR);
	if (c->notify_lost)
		c->ops->lost(c->arg, c, c->reason);
	maybe_free(c);
}

static void on_sent(struct reactor_op *op, int res);

static void kick_send(struct witness_conn *c)
{
	if (c->sending || c->out_sent == c->out_len || c->state == CONN_CLOSED)
		return;
	io_uring_prep_send(reactor_sqe(c->r, &c->send_op, on_sent), c->fd, c->out + c->out_sent,
	                   c->out_len - c->out_sent, MSG_NOSIGNAL);
	c->sending = true;
	c->in_flight++;
}

static void finish(struct witness_conn *c, const char *why)
{
	if (c->state == CONN_CLOSED || c->state == CONN_FINISHING)
		return;
	str_copy(c->reason, sizeof(c->reason), why);
	c->state = CONN_FINISHING;
	if (c->out_sent == c->out_len)
		die(c, c->reason);
}

static void on_sent(struct reactor_op *op, int res)
{
	struct witness_conn *c = container_of(op, struct witness_conn, send_op);
	char why[96];

	c->in_flight--;
	c->sending = false;
	if (c->state == CONN_CLOSED) {
		maybe_free(c);
		return;
	}
	if (res <= 0) {
		snprintf(why, sizeof(why), "send failed: %s", res < 0 ? strerror(-res) : "nothing sent");
		die(c, why);
		return;
	}
	c->out_sent += (size_t)res;
	if (c->out_sent == c->out_len) {
		c->out_sent = c->out_len = 0;
		if (c->state == CONN_FINISHING) {
			die(c, c->reason);
			return;
		}
	}
	kick_send(c);
}

static int queue_msg(struct witness_conn *c, const struct witness_msg *m)
{
	uint8_t frame[WITNESS_PROTO_FRAME_MAX];
	size_t n;

	if (c->state == CONN_CLOSED)
		return -1;
	n = witness_proto_encode(c->wp, m, frame);
	if (n == 0)
		return -1;
	if (!c->sending && c->out_sent > 0) {
		memmove(c->out, c->out + c->out_sent, c->out_len - c->out_sent);
		c->out_len -= c->out_sent;
		c->out_sent = 0;
	}
	if (c->out_len + n > sizeof(c->out)) {
		/* Not die(): that would call `lost` inside the owner's send.  The RECV in
		 * flight completes and ends the connection from the loop. */
		c->stuck = true;
		shutdown(c->fd, SHUT_RDWR);
		return -1;
	}
	memcpy(c->out + c->out_len, frame, n);
	c->out_len += n;
	kick_send(c);
	return 0;
}

static void say_bye(struct witness_conn *c, uint32_t reason, const char *why)
{
	struct witness_msg bye = {.type = WITNESS_BYE, .reason = reason};

	queue_msg(c, &bye);
	finish(c, why);
}

static void went_up(struct witness_conn *c)
{
	c->state = CONN_UP;
	c->proven = true;
	c->ops->up(c->arg, c);
}

/* Installs the session key of the frames `sender` sends: our send key or our receive key.
 * False (the connection is dead) if it cannot be computed. */
static bool install_key(struct witness_conn *c, enum witness_side sender)
{
	uint8_t key[WITNESS_PROTO_KEY_LEN];

	if (witness_proto_key(&c->auth, sender, key) != 0) {
		die(c, "cannot compute the session keys");
		return false;
	}
	if (sender == c->side)
		witness_proto_set_tx_key(c->wp, key);
	else
		witness_proto_set_rx_key(c->wp, key);
	OPENSSL_cleanse(key, sizeof(key));
	return true;
}

/* The witness side: HELLO, then the node's PROOF. */
static void witness_handshake(struct witness_conn *c, const struct witness_msg *m)
{
	struct witness_msg reply = {0};
	char why[128];

	if (c->state == CONN_HELLO && m->type == WITNESS_HELLO) {
		uint8_t v = MIN(m->version_max, WITNESS_PROTO_VERSION_MAX);

		if (v < MAX(m->version_min, WITNESS_PROTO_VERSION_MIN)) {
			snprintf(why, sizeof(why), "node speaks versions %u..%u, this witness %u..%u", m->version_min,
			         m->version_max, WITNESS_PROTO_VERSION_MIN, WITNESS_PROTO_VERSION_MAX);
			say_bye(c, WITNESS_BYE_VERSION, why);
			return;
		}
		c->auth.version = v;
		c->auth.node_id = m->node_id;
		memcpy(c->auth.node_nonce, m->nonce, WITNESS_PROTO_NONCE_LEN);
		reply.type = WITNESS_CHALLENGE;
		reply.version = v;
		memcpy(reply.nonce, c->auth.witness_nonce, WITNESS_PROTO_NONCE_LEN);
		c->state = CONN_PROOF;
		queue_msg(c, &reply);
		return;
	}
	if (c->state == CONN_PROOF && m->type == WITNESS_PROOF) {
		if (!witness_proto_proof_ok(&c->auth, WITNESS_SIDE_NODE, m->proof)) {
			snprintf(why, sizeof(why), "node %016llx failed to prove the secret (wrong secret?)",
			         (unsigned long long)c->auth.node_id);
			say_bye(c, WITNESS_BYE_AUTH, why);
			return;
		}
		reply.type = WITNESS_PROOF;
		if (witness_proto_proof(&c->auth, WITNESS_SIDE_WITNESS, reply.proof) != 0) {
			die(c, "cannot compute the proof");
			return;
		}
		if (!install_key(c, WITNESS_SIDE_NODE))
			return;
		queue_msg(c, &reply); /* the last frame sent untagged */
		if (install_key(c, WITNESS_SIDE_WITNESS))
			went_up(c);
		return;
	}
	snprintf(why, sizeof(why), "%s during the handshake", witness_msg_name(m->type));
	say_bye(c, WITNESS_BYE_PROTOCOL, why);
}

/* The node side: CHALLENGE, then the witness's PROOF. */
static void node_handshake(struct witness_conn *c, const struct witness_msg *m)
{
	struct witness_msg reply = {0};
	char why[128];

	if (c->state == CONN_CHALLENGE && m->type == WITNESS_CHALLENGE) {
		if (m->version < WITNESS_PROTO_VERSION_MIN || m->version > WITNESS_PROTO_VERSION_MAX) {
			snprintf(why, sizeof(why), "the witness chose protocol version %u, not offered", m->version);
			say_bye(c, WITNESS_BYE_VERSION, why);
			return;
		}
		if (CRYPTO_memcmp(m->nonce, c->auth.node_nonce, WITNESS_PROTO_NONCE_LEN) == 0) {
			say_bye(c, WITNESS_BYE_PROTOCOL, "the witness echoed our nonce");
			return;
		}
		c->auth.version = m->version;
		memcpy(c->auth.witness_nonce, m->nonce, WITNESS_PROTO_NONCE_LEN);
		reply.type = WITNESS_PROOF;
		if (witness_proto_proof(&c->auth, WITNESS_SIDE_NODE, reply.proof) != 0) {
			die(c, "cannot compute the proof");
			return;
		}
		c->state = CONN_PROOF;
		queue_msg(c, &reply); /* the last frame sent untagged */
		install_key(c, WITNESS_SIDE_NODE);
		return;
	}
	if (c->state == CONN_PROOF && m->type == WITNESS_PROOF) {
		if (!witness_proto_proof_ok(&c->auth, WITNESS_SIDE_WITNESS, m->proof))
			say_bye(c, WITNESS_BYE_AUTH, "the witness failed to prove the secret (wrong secret?)");
		else if (install_key(c, WITNESS_SIDE_WITNESS))
			went_up(c);
		return;
	}
	snprintf(why, sizeof(why), "%s during the handshake", witness_msg_name(m->type));
	say_bye(c, WITNESS_BYE_PROTOCOL, why);
}

static void on_message(struct witness_conn *c, const struct witness_msg *m)
{
	char why[128];

	if (m->type == WITNESS_BYE) {
		snprintf(why, sizeof(why), "the peer said goodbye: %s", witness_bye_name(m->reason));
		die(c, why);
	} else if (c->state != CONN_UP) {
		if (c->side == WITNESS_SIDE_WITNESS)
			witness_handshake(c, m);
		else
			node_handshake(c, m);
	} else if (m->type == WITNESS_PING) {
		struct witness_msg pong = {.type = WITNESS_PONG, .stamp = m->stamp};

		queue_msg(c, &pong);
	} else if (m->type == WITNESS_PONG) {
		/* only a sign of life */
	} else if (m->type <= WITNESS_PROOF) {
		snprintf(why, sizeof(why), "%s after the handshake", witness_msg_name(m->type));
		say_bye(c, WITNESS_BYE_PROTOCOL, why);
	} else {
		c->ops->message(c->arg, c, m);
	}
}

static void on_received(struct reactor_op *op, int res);

static void arm_recv(struct witness_conn *c)
{
	io_uring_prep_recv(reactor_sqe(c->r, &c->recv_op, on_received), c->fd, c->in, sizeof(c->in), 0);
	c->in_flight++;
}

static bool live(const struct witness_conn *c)
{
	return c->state != CONN_CLOSED && c->state != CONN_FINISHING;
}

static void on_received(struct reactor_op *op, int res)
{
	struct witness_conn *c = container_of(op, struct witness_conn, recv_op);
	size_t off = 0;

	c->in_flight--;
	if (c->state == CONN_CLOSED) {
		maybe_free(c);
		return;
	}
	if (res <= 0 || c->stuck) {
		die(c, c->stuck ? "the peer does not read what is sent to it"
		       : res == 0 ? "connection closed by the peer" : strerror(-res));
		return;
	}
	c->last_rx_ms = now_ms();
	/* Frame by frame: a key set by one frame applies from the very next. */
	while (off < (size_t)res && live(c)) {
		struct witness_msg m;
		size_t used;
		enum witness_proto_result e = witness_proto_feed(c->wp, c->in + off, (size_t)res - off, &used, &m);

		off += used;
		if (e == WITNESS_PROTO_MORE)
			break;
		if (e == WITNESS_PROTO_ERROR)
			die(c, witness_proto_error(c->wp));
		else
			on_message(c, &m);
	}
	if (live(c))
		arm_recv(c);
}

static void on_tick(struct reactor_timer *t)
{
	struct witness_conn *c = container_of(t, struct witness_conn, timer);
	uint64_t silent = now_ms() - c->last_rx_ms;
	char why[96];

	if (silent > c->timeout_ms) {
		snprintf(why, sizeof(why), "nothing heard for %llu ms%s", (unsigned long long)silent,
		         c->state == CONN_UP ? "" : " during the handshake");
		die(c, why);
		return;
	}
	if (c->state == CONN_UP && c->ping_interval_ms > 0) {
		struct witness_msg ping = {.type = WITNESS_PING, .stamp = now_ms()};

		queue_msg(c, &ping);
	}
	if (c->state != CONN_CLOSED)
		reactor_timer_start(c->r, &c->timer, c->tick_ms, on_tick);
}

static void name_peer(struct witness_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[NI_MAXHOST], serv[NI_MAXSERV];

	if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) != 0 ||
	    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), serv, sizeof(serv),
	                NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		str_copy(c->peer, sizeof(c->peer), "?");
	else
		snprintf(c->peer, sizeof(c->peer), ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
}

struct witness_conn *witness_conn_start(struct reactor *r, int fd, const struct witness_conn_config *cfg,
                                        const struct witness_conn_ops *ops, void *arg, const char **why)
{
	struct witness_conn *c = NULL;
	uint8_t *own_nonce;

	*why = NULL;
	if (cfg->secret_len == 0 || cfg->secret_len > WITNESS_SECRET_MAX)
		*why = "the secret must be 1..1024 bytes";
	else if (cfg->side == WITNESS_SIDE_NODE && (cfg->node_id == 0 || cfg->ping_interval_ms == 0))
		*why = "a node needs an id and a ping interval";
	else if (cfg->timeout_ms <= cfg->ping_interval_ms)
		*why = "the timeout must exceed the ping interval";
	else if ((c = calloc(1, sizeof(*c))) == NULL || (c->wp = witness_proto_new()) == NULL)
		*why = "out of memory";
	if (*why == NULL) {
		own_nonce = cfg->side == WITNESS_SIDE_NODE ? c->auth.node_nonce : c->auth.witness_nonce;
		if (RAND_bytes(own_nonce, WITNESS_PROTO_NONCE_LEN) != 1)
			*why = "no randomness for the nonce";
	}
	if (*why != NULL) {
		if (c != NULL)
			witness_proto_free(c->wp);
		free(c);
		close(fd);
		return NULL;
	}
	c->r = r;
	c->fd = fd;
	c->ops = ops;
	c->arg = arg;
	c->side = cfg->side;
	c->notify_lost = true;
	memcpy(c->secret, cfg->secret, cfg->secret_len);
	c->auth.secret = c->secret;
	c->auth.secret_len = cfg->secret_len;
	c->ping_interval_ms = cfg->ping_interval_ms;
	c->timeout_ms = cfg->timeout_ms;
	c->tick_ms = cfg->ping_interval_ms ? cfg->ping_interval_ms : MAX(cfg->timeout_ms / 4, 1u);
	c->last_rx_ms = now_ms();
	name_peer(c);
	if (cfg->side == WITNESS_SIDE_NODE) {
		struct witness_msg hello = {
			.type = WITNESS_HELLO, .version_min = WITNESS_PROTO_VERSION_MIN,
			.version_max = WITNESS_PROTO_VERSION_MAX, .node_id = cfg->node_id,
		};

		c->auth.node_id = cfg->node_id;
		memcpy(hello.nonce, c->auth.node_nonce, WITNESS_PROTO_NONCE_LEN);
		c->state = CONN_CHALLENGE;
		queue_msg(c, &hello);
	} else {
		c->state = CONN_HELLO;
	}
	arm_recv(c);
	reactor_timer_start(r, &c->timer, c->tick_ms, on_tick);
	return c;
}

int witness_conn_send(struct witness_conn *c, const struct witness_msg *m)
{
	if (c->state != CONN_UP || m->type <= WITNESS_PROOF)
		return -1;
	return queue_msg(c, m);
}

void witness_conn_close(struct witness_conn *c)
{
	c->notify_lost = false;
	if (c->state == CONN_UP)
		say_bye(c, WITNESS_BYE_SHUTDOWN, "closed");
	else
		die(c, "closed");
}

uint64_t witness_conn_node(const struct witness_conn *c)
{
	return c->proven ? c->auth.node_id : 0;
}

int witness_conn_parse_address(const char *spec, char *addr, size_t addrlen, uint16_t *port)
{
	const char *bracket = strrchr(spec, ']');

	if (strchr(bracket != NULL ? bracket : spec, ':') == NULL)
		return -1;
	return portal_parse(spec, addr, addrlen, port);
}

const char *witness_conn_peer(const struct witness_conn *c)
{
	return c->peer;
}
