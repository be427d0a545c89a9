/* The witness client (see witness.h): connection slots that dial and redial, and claims
 * whose timers turn the witness's answers, or their absence, into verdicts. */
#include "ha/witness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "ha/witness_conn.h"
#include "ha/witness_state.h"

#define BACKOFF_MIN_MS 100
#define SENT_KEPT 4 /* requests of a claim whose send time is remembered */

/* One witness address: at most one connection, or one connect in flight. */
struct slot {
	struct witness_client *cl;
	struct sockaddr_storage sa;
	socklen_t salen;
	char name[80];
	int fd;                 /* while connecting */
	bool connecting, up, failing;
	struct witness_conn *conn;
	struct reactor_op connect_op, cancel_op;
	struct reactor_timer retry;
	unsigned backoff_ms;
};

enum claim_state { CLAIM_PENDING, CLAIM_GRANTED, CLAIM_RELEASING };

struct claim {
	struct witness_client *cl;
	struct claim *next;
	uint8_t uuid[16];
	uint64_t gen_current, gen_bitmap;
	enum claim_state state;
	void (*verdict)(void *arg, bool granted);
	void *arg;
	struct { uint64_t id, sent_ms; } sent[SENT_KEPT]; /* the latest requests */
	unsigned sent_next;
	unsigned lease_ms;
	uint64_t lease_until_ms;
	struct reactor_timer renew;    /* GRANTED: the next RENEW */
	struct reactor_timer deadline; /* PENDING: the claim timeout; GRANTED: the lease's end */
};

struct witness_client {
	struct reactor *r;
	struct slot slots[WITNESS_MAX_ADDRESSES];
	size_t n_slots;
	uint8_t secret[WITNESS_SECRET_MAX];
	size_t secret_len;
	uint64_t node_id, next_request;
	unsigned ping_interval_ms, timeout_ms, claim_timeout_ms, backoff_max_ms;
	struct claim *claims;
	unsigned busy;          /* connects in flight and connections not yet gone */
	bool stopping, done_queued;
	void (*done)(void *arg);
	void *done_arg;
	struct reactor_op done_op;
};

/* ---- claims ---- */

static void send_request(struct claim *k)
{
	static const uint8_t types[] = {[CLAIM_PENDING] = WITNESS_CLAIM, [CLAIM_GRANTED] = WITNESS_RENEW,
	                                [CLAIM_RELEASING] = WITNESS_RELEASE};
	struct witness_client *cl = k->cl;
	struct witness_msg m = {.type = types[k->state], .request = ++cl->next_request, .node_id = cl->node_id,
	                        .gen_current = k->gen_current, .gen_bitmap = k->gen_bitmap};

	memcpy(m.uuid, k->uuid, sizeof(m.uuid));
	k->sent[k->sent_next].id = m.request;
	k->sent[k->sent_next].sent_ms = now_ms();
	k->sent_next = (k->sent_next + 1) % SENT_KEPT;
	for (size_t i = 0; i < cl->n_slots; i++)
		if (cl->slots[i].up)
			witness_conn_send(cl->slots[i].conn, &m);
}

static struct claim *find_claim(struct witness_client *cl, const uint8_t uuid[16])
{
	for (struct claim *k = cl->claims; k != NULL; k = k->next)
		if (memcmp(k->uuid, uuid, 16) == 0)
			return k;
	return NULL;
}

static void unlink_claim(struct claim *k)
{
	struct claim **pp = &k->cl->claims;

	while (*pp != k)
		pp = &(*pp)->next;
	*pp = k->next;
	reactor_timer_cancel(k->cl->r, &k->renew);
	reactor_timer_cancel(k->cl->r, &k->deadline);
}

/* Ends the claim, then tells the device (which may claim again from the callback). */
static void end_claim(struct claim *k, bool say_false)
{
	void (*verdict)(void *arg, bool granted) = k->verdict;
	void *arg = k->arg;

	unlink_claim(k);
	free(k);
	if (say_false && verdict != NULL)
		verdict(arg, false);
}

static void log_claim(enum log_level level, const struct claim *k, const char *what)
{
	char dev[WITNESS_UUID_STR];

	witness_uuid_format(k->uuid, dev);
	log_msg(level, "witness: device %s: %s", dev, what);
}

static void on_deadline(struct reactor_timer *t)
{
	struct claim *k = container_of(t, struct claim, deadline);
	char why[128];

	if (k->state == CLAIM_PENDING)
		snprintf(why, sizeof(why), "no answer to the claim within %u ms: not serving alone",
		         k->cl->claim_timeout_ms);
	else
		snprintf(why, sizeof(why), "lease lapsed: no renewal confirmed within %u ms: not serving alone",
		         k->lease_ms);
	log_claim(LOG_LEVEL_WARN, k, why);
	end_claim(k, true);
}

static void on_renew(struct reactor_timer *t)
{
	struct claim *k = container_of(t, struct claim, renew);

	send_request(k);
	reactor_timer_start(k->cl->r, &k->renew, MAX(k->lease_ms / 3, 1u), on_renew);
}

/* The lease a GRANT to request `sent_ms` confirms; false if it ended already. */
static bool extend(struct claim *k, uint64_t sent_ms, unsigned lease_ms)
{
	uint64_t now = now_ms(), until = sent_ms + lease_ms;

	if (until <= now)
		return false;
	k->lease_ms = lease_ms;
	if (until > k->lease_until_ms)
		k->lease_until_ms = until;
	reactor_timer_start(k->cl->r, &k->deadline, (unsigned)(k->lease_until_ms - now), on_deadline);
	return true;
}

static void on_answer(struct witness_client *cl, const struct witness_msg *m)
{
	struct claim *k = find_claim(cl, m->uuid);
	uint64_t sent_ms = 0;
	char why[160];

	for (unsigned i = 0; k != NULL && m->request != 0 && i < SENT_KEPT && sent_ms == 0; i++)
		if (k->sent[i].id == m->request)
			sent_ms = k->sent[i].sent_ms;
	if (sent_ms == 0)
		return; /* an answer to a claim replaced or ended since, or a repeat */
	for (unsigned i = 0; i < SENT_KEPT; i++)
		if (k->sent[i].id <= m->request)
			k->sent[i].id = 0; /* answered, or older than the answer: never counted again */
	if (m->type == WITNESS_GRANT && k->state == CLAIM_PENDING) {
		if (!extend(k, sent_ms, m->lease_ms))
			return; /* granted too late to use; the claim timeout decides */
		k->state = CLAIM_GRANTED;
		reactor_timer_start(cl->r, &k->renew, MAX(m->lease_ms / 3, 1u), on_renew);
		snprintf(why, sizeof(why), "granted (lease %u ms)", m->lease_ms);
		log_claim(LOG_LEVEL_INFO, k, why);
		k->verdict(k->arg, true);
	} else if (m->type == WITNESS_GRANT && k->state == CLAIM_GRANTED) {
		extend(k, sent_ms, m->lease_ms);
	} else if (m->type == WITNESS_REFUSE) {
		if (m->holder != 0)
			snprintf(why, sizeof(why), "%s refused: %s (node %016" PRIx64 ")",
			         k->state == CLAIM_RELEASING ? "release" : "claim", witness_refusal_name(m->reason), m->holder);
		else
			snprintf(why, sizeof(why), "%s refused: %s", k->state == CLAIM_RELEASING ? "release" : "claim",
			         witness_refusal_name(m->reason));
		log_claim(LOG_LEVEL_WARN, k, why);
		end_claim(k, k->state != CLAIM_RELEASING);
	} else if (m->type == WITNESS_RELEASED && k->state == CLAIM_RELEASING) {
		log_claim(LOG_LEVEL_INFO, k, "released");
		end_claim(k, false);
	}
}

static struct claim *new_claim(struct witness_client *cl, const uint8_t uuid[16])
{
	struct claim *k = find_claim(cl, uuid);

	if (k != NULL)
		end_claim(k, false); /* replaced: its verdict is never called */
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return NULL;
	k->cl = cl;
	memcpy(k->uuid, uuid, 16);
	k->next = cl->claims;
	cl->claims = k;
	return k;
}

static void arbiter_claim(void *ctx, const uint8_t uuid[16], uint64_t node_id, const struct generation *gen,
                          void (*verdict)(void *arg, bool granted), void *arg)
{
	struct witness_client *cl = ctx;
	struct claim *k = cl->stopping ? NULL : new_claim(cl, uuid);

	if (node_id != cl->node_id)
		log_warn("witness: a claim for node %016" PRIx64 " on the client of node %016" PRIx64
		         "; the witness will refuse it", node_id, cl->node_id);
	if (k == NULL) {
		/* No verdict: a device without a grant does not serve alone, which is safe. */
		log_err("witness: cannot claim a device: %s", cl->stopping ? "the client is stopping" : "out of memory");
		return;
	}
	k->gen_current = gen != NULL ? gen->current : 0;
	k->gen_bitmap = gen != NULL ? gen->bitmap : 0;
	k->verdict = verdict;
	k->arg = arg;
	k->state = CLAIM_PENDING;
	reactor_timer_start(cl->r, &k->deadline, cl->claim_timeout_ms, on_deadline);
	send_request(k);
}

static void arbiter_release(void *ctx, const uint8_t uuid[16])
{
	struct witness_client *cl = ctx;
	struct claim *k = cl->stopping ? NULL : new_claim(cl, uuid);

	if (k == NULL)
		return;
	k->state = CLAIM_RELEASING;
	send_request(k);
}

struct ha_arbiter witness_arbiter(struct witness_client *c)
{
	return (struct ha_arbiter){.claim = arbiter_claim, .release = arbiter_release, .ctx = c};
}

/* ---- connections ---- */

static void maybe_done(struct witness_client *cl);
static void dial(struct slot *s);

static void on_retry(struct reactor_timer *t)
{
	dial(container_of(t, struct slot, retry));
}

static void redial_later(struct slot *s)
{
	if (s->cl->stopping)
		return;
	reactor_timer_start(s->cl->r, &s->retry, s->backoff_ms, on_retry);
	s->backoff_ms = MIN(2 * s->backoff_ms, s->cl->backoff_max_ms);
}

static void slot_up(void *arg, struct witness_conn *c)
{
	struct slot *s = arg;

	s->up = true;
	s->failing = false;
	s->backoff_ms = BACKOFF_MIN_MS;
	log_info("witness %s: connected and authenticated", s->name);
	for (struct claim *k = s->cl->claims; k != NULL; k = k->next)
		send_request(k);
}

static void slot_message(void *arg, struct witness_conn *c, const struct witness_msg *m)
{
	struct slot *s = arg;

	if (m->type == WITNESS_GRANT || m->type == WITNESS_REFUSE || m->type == WITNESS_RELEASED) {
		on_answer(s->cl, m);
		return;
	}
	log_warn("witness %s: sent %s, which only nodes send; reconnecting", s->name, witness_msg_name(m->type));
	s->up = false;
	s->conn = NULL;
	witness_conn_close(c);
	redial_later(s);
}

static void slot_lost(void *arg, struct witness_conn *c, const char *why)
{
	struct slot *s = arg;

	/* A refusal (wrong secret) or a lost witness is worth a warning, once per outage. */
	if (s->up || !s->failing)
		log_warn("witness %s: %s: %s", s->name, s->up ? "connection lost" : "connection refused", why);
	s->failing = true;
	s->up = false;
	s->conn = NULL;
	redial_later(s);
}

static void slot_gone(void *arg)
{
	struct slot *s = arg;

	s->cl->busy--;
	maybe_done(s->cl);
}

static const struct witness_conn_ops slot_ops = {
	.up = slot_up, .message = slot_message, .lost = slot_lost, .gone = slot_gone,
};

static void on_connected(struct reactor_op *op, int res)
{
	struct slot *s = container_of(op, struct slot, connect_op);
	struct witness_client *cl = s->cl;
	struct witness_conn_config cfg = {
		.side = WITNESS_SIDE_NODE, .secret = cl->secret, .secret_len = cl->secret_len, .node_id = cl->node_id,
		.ping_interval_ms = cl->ping_interval_ms, .timeout_ms = cl->timeout_ms,
	};
	const char *why;
	int one = 1;

	s->connecting = false;
	if (res < 0 || cl->stopping) {
		close(s->fd);
		if (res < 0 && !s->failing && !cl->stopping)
			log_warn("witness %s: cannot connect: %s", s->name, strerror(-res));
		s->failing = res < 0 || s->failing;
		cl->busy--;
		redial_later(s);
		maybe_done(cl);
		return;
	}
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->conn = witness_conn_start(cl->r, s->fd, &cfg, &slot_ops, s, &why);
	if (s->conn == NULL) {
		log_err("witness %s: %s", s->name, why);
		cl->busy--;
		redial_later(s);
	}
	/* else the connection keeps `busy` until it is gone */
}

static void dial(struct slot *s)
{
	struct witness_client *cl = s->cl;

	s->fd = socket(s->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		log_err("witness %s: socket: %s", s->name, strerror(errno));
		redial_later(s);
		return;
	}
	io_uring_prep_connect(reactor_sqe(cl->r, &s->connect_op, on_connected), s->fd, (struct sockaddr *)&s->sa,
	                      s->salen);
	s->connecting = true;
	cl->busy++;
}

static int parse_address(struct slot *s, const char *spec, char *err, size_t errlen)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&s->sa;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&s->sa;
	char addr[64];
	uint16_t port;

	if (witness_conn_parse_address(spec, addr, sizeof(addr), &port) != 0) {
		snprintf(err, errlen, "witness address '%s' is not ADDR:PORT", spec);
		return -1;
	}
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		s->salen = sizeof(*s4);
	} else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		s->salen = sizeof(*s6);
	} else {
		snprintf(err, errlen, "witness address '%s' is neither IPv4 nor IPv6", addr);
		return -1;
	}
	str_copy(s->name, sizeof(s->name), spec);
	return 0;
}

int witness_client_new(struct reactor *r, const struct witness_client_params *p, struct witness_client **out,
                       char *err, size_t errlen)
{
	struct witness_client *cl;

	*out = NULL;
	if (p->n_addresses == 0 || p->n_addresses > WITNESS_MAX_ADDRESSES || p->node_id == 0 ||
	    p->secret_len == 0 || p->secret_len > WITNESS_SECRET_MAX) {
		snprintf(err, errlen, "the witness client needs 1..%d addresses, a node id and a secret of 1..%d bytes",
		         WITNESS_MAX_ADDRESSES, WITNESS_SECRET_MAX);
		return -1;
	}
	cl = calloc(1, sizeof(*cl));
	if (cl == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	cl->r = r;
	memcpy(cl->secret, p->secret, p->secret_len);
	cl->secret_len = p->secret_len;
	cl->node_id = p->node_id;
	cl->ping_interval_ms = p->ping_interval_ms ? p->ping_interval_ms : 1000;
	cl->timeout_ms = p->timeout_ms ? p->timeout_ms : 5000;
	cl->claim_timeout_ms = p->claim_timeout_ms ? p->claim_timeout_ms : 5000;
	cl->backoff_max_ms = MAX(p->backoff_max_ms ? p->backoff_max_ms : 5000, BACKOFF_MIN_MS);
	if (cl->timeout_ms <= cl->ping_interval_ms) {
		snprintf(err, errlen, "the witness timeout must exceed the ping interval");
		free(cl);
		return -1;
	}
	for (size_t i = 0; i < p->n_addresses; i++) {
		if (parse_address(&cl->slots[i], p->addresses[i], err, errlen) != 0) {
			free(cl);
			return -1;
		}
		cl->slots[i].cl = cl;
		cl->slots[i].backoff_ms = BACKOFF_MIN_MS;
	}
	cl->n_slots = p->n_addresses;
	for (size_t i = 0; i < cl->n_slots; i++)
		dial(&cl->slots[i]);
	*out = cl;
	return 0;
}

bool witness_client_connected(const struct witness_client *c)
{
	for (size_t i = 0; i < c->n_slots; i++)
		if (c->slots[i].up)
			return true;
	return false;
}

static void call_done(struct reactor_op *op, int res)
{
	struct witness_client *cl = container_of(op, struct witness_client, done_op);

	cl->done(cl->done_arg);
}

static void maybe_done(struct witness_client *cl)
{
	if (!cl->stopping || cl->busy > 0 || cl->done_queued)
		return;
	cl->done_queued = true;
	reactor_defer(cl->r, &cl->done_op, call_done);
}

static void cancelled(struct reactor_op *op, int res)
{
	/* The connect it cancelled completes on its own. */
}

void witness_client_stop(struct witness_client *c, void (*done)(void *arg), void *arg)
{
	c->stopping = true;
	c->done = done;
	c->done_arg = arg;
	while (c->claims != NULL)
		end_claim(c->claims, false);
	for (size_t i = 0; i < c->n_slots; i++) {
		struct slot *s = &c->slots[i];

		reactor_timer_cancel(c->r, &s->retry);
		if (s->connecting)
			io_uring_prep_cancel(reactor_sqe(c->r, &s->cancel_op, cancelled), &s->connect_op, 0);
		if (s->conn != NULL)
			witness_conn_close(s->conn);
		s->conn = NULL;
		s->up = false;
	}
	maybe_done(c);
}

void witness_client_free(struct witness_client *c)
{
	if (c == NULL)
		return;
	while (c->claims != NULL)
		end_claim(c->claims, false);
	for (size_t i = 0; i < c->n_slots; i++)
		reactor_timer_cancel(c->r, &c->slots[i].retry);
	OPENSSL_cleanse(c->secret, sizeof(c->secret));
	free(c);
}
