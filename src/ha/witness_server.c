/* The witness's decisions (see witness_server.h for the rules and why they are safe),
 * over connections from witness_conn.c and records from witness_state.c. */
#include "ha/witness_server.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "ha/witness_conn.h"
#include "iscsi/portal.h"

#define DRAIN_POLL_MS 20
/* Connections at once: beyond this, strangers could exhaust our file descriptors. */
#define MAX_CONNECTIONS 1024

/* One connected node; freed when its connection is gone. */
struct node {
	struct witness_server *srv;
	struct witness_conn *c; /* NULL once lost or closed */
	struct node *prev, *next;
	bool up;
};

/* The lease of a device's holder, in memory only: after a restart a holder simply has
 * none until it claims again. */
struct lease {
	uint8_t uuid[16];
	uint64_t until_ms;
	bool lapsed;
};

struct witness_server {
	struct reactor *r;
	struct iscsi_portal *portal;
	struct witness_state *state;
	uint8_t secret[WITNESS_SECRET_MAX];
	size_t secret_len;
	unsigned lease_ms, idle_ms;
	struct node *nodes;
	size_t n_nodes, n_up;
	bool full_logged;
	struct lease *leases;
	size_t n_leases, cap_leases;
	struct reactor_timer tick;
	bool stopping;
	void (*done)(void *arg);
	void *done_arg;
};

static struct lease *find_lease(struct witness_server *s, const uint8_t uuid[16])
{
	for (size_t i = 0; i < s->n_leases; i++)
		if (memcmp(s->leases[i].uuid, uuid, 16) == 0)
			return &s->leases[i];
	return NULL;
}

static void drop_lease(struct witness_server *s, const uint8_t uuid[16])
{
	struct lease *l = find_lease(s, uuid);

	if (l != NULL)
		*l = s->leases[--s->n_leases];
}

/* Starts or extends the holder's lease; false only when out of memory. */
static bool extend_lease(struct witness_server *s, const uint8_t uuid[16])
{
	struct lease *l = find_lease(s, uuid);

	if (l == NULL) {
		if (s->n_leases == s->cap_leases) {
			size_t cap = s->cap_leases ? 2 * s->cap_leases : 16;
			struct lease *nl = realloc(s->leases, cap * sizeof(*nl));

			if (nl == NULL)
				return false;
			s->leases = nl;
			s->cap_leases = cap;
		}
		l = &s->leases[s->n_leases++];
		memcpy(l->uuid, uuid, 16);
	}
	l->until_ms = now_ms() + s->lease_ms;
	l->lapsed = false;
	return true;
}

static void answer(struct node *n, const struct witness_msg *req, uint8_t type, uint32_t reason, uint64_t holder)
{
	struct witness_msg a = {.type = type, .request = req->request, .reason = reason, .holder = holder,
	                        .lease_ms = n->srv->lease_ms};

	memcpy(a.uuid, req->uuid, sizeof(a.uuid));
	witness_conn_send(n->c, &a);
}

static void refuse(struct node *n, const struct witness_msg *req, uint32_t reason, uint64_t holder)
{
	char dev[WITNESS_UUID_STR];

	witness_uuid_format(req->uuid, dev);
	if (holder != 0)
		log_info("device %s: %s from node %016" PRIx64 " refused: %s (node %016" PRIx64 ")", dev,
		         witness_msg_name(req->type), witness_conn_node(n->c), witness_refusal_name(reason), holder);
	else
		log_info("device %s: %s from node %016" PRIx64 " refused: %s", dev, witness_msg_name(req->type),
		         witness_conn_node(n->c), witness_refusal_name(reason));
	answer(n, req, WITNESS_REFUSE, reason, holder);
}

static void on_claim(struct node *n, const struct witness_msg *m)
{
	struct witness_server *s = n->srv;
	uint64_t node = witness_conn_node(n->c);
	const struct witness_record *held = witness_state_find(s->state, m->uuid);
	struct witness_record rec = {.holder = node, .gen_current = m->gen_current, .gen_bitmap = m->gen_bitmap};
	char dev[WITNESS_UUID_STR];

	witness_uuid_format(m->uuid, dev);
	memcpy(rec.uuid, m->uuid, sizeof(rec.uuid));
	if (m->node_id != node) {
		refuse(n, m, WITNESS_REFUSE_NODE, 0);
		return;
	}
	if (held != NULL && held->holder != node) {
		refuse(n, m, WITNESS_REFUSE_HELD, held->holder);
		return;
	}
	/* Durable before the GRANT leaves: a restarted witness must remember this holder. */
	if ((held == NULL || memcmp(held, &rec, sizeof(rec)) != 0) && witness_state_put(s->state, &rec) != 0) {
		log_err("device %s: cannot persist the holder record: %s", dev, strerror(errno));
		refuse(n, m, WITNESS_REFUSE_STORAGE, 0);
		return;
	}
	if (!extend_lease(s, m->uuid)) {
		refuse(n, m, WITNESS_REFUSE_STORAGE, 0);
		return;
	}
	log_info("device %s: granted to node %016" PRIx64 " (generation %016" PRIx64 "/%016" PRIx64
	         ", lease %u ms)%s", dev, node, m->gen_current, m->gen_bitmap, s->lease_ms,
	         held != NULL ? ", its holder already" : "");
	answer(n, m, WITNESS_GRANT, 0, 0);
}

static void on_renew(struct node *n, const struct witness_msg *m)
{
	const struct witness_record *held = witness_state_find(n->srv->state, m->uuid);

	if (held == NULL || held->holder != witness_conn_node(n->c)) {
		refuse(n, m, WITNESS_REFUSE_NOT_HOLDER, held ? held->holder : 0);
		return;
	}
	if (!extend_lease(n->srv, m->uuid)) {
		refuse(n, m, WITNESS_REFUSE_STORAGE, 0);
		return;
	}
	answer(n, m, WITNESS_GRANT, 0, 0);
}

static void on_release(struct node *n, const struct witness_msg *m)
{
	struct witness_server *s = n->srv;
	const struct witness_record *held = witness_state_find(s->state, m->uuid);
	char dev[WITNESS_UUID_STR];

	witness_uuid_format(m->uuid, dev);
	if (held != NULL && held->holder != witness_conn_node(n->c)) {
		refuse(n, m, WITNESS_REFUSE_NOT_HOLDER, held->holder);
		return;
	}
	/* Releasing what nobody holds is done already (a repeated RELEASE after a reconnect). */
	if (held != NULL) {
		if (witness_state_forget(s->state, m->uuid) != 0) {
			log_err("device %s: cannot remove the holder record: %s", dev, strerror(errno));
			refuse(n, m, WITNESS_REFUSE_STORAGE, 0);
			return;
		}
		drop_lease(s, m->uuid);
		log_info("device %s: released by node %016" PRIx64, dev, witness_conn_node(n->c));
	}
	answer(n, m, WITNESS_RELEASED, 0, 0);
}

static void node_message(void *arg, struct witness_conn *c, const struct witness_msg *m)
{
	struct node *n = arg;

	switch (m->type) {
	case WITNESS_CLAIM: on_claim(n, m); break;
	case WITNESS_RENEW: on_renew(n, m); break;
	case WITNESS_RELEASE: on_release(n, m); break;
	default:
		log_warn("witness: node %016" PRIx64 " at %s sent %s, which only the witness sends; dropping it",
		         witness_conn_node(c), witness_conn_peer(c), witness_msg_name(m->type));
		n->up = false;
		n->srv->n_up--;
		n->c = NULL;
		witness_conn_close(c);
	}
}

static void node_up(void *arg, struct witness_conn *c)
{
	struct node *n = arg;

	n->up = true;
	n->srv->n_up++;
	log_info("witness: node %016" PRIx64 " connected from %s", witness_conn_node(c), witness_conn_peer(c));
}

static void node_lost(void *arg, struct witness_conn *c, const char *why)
{
	struct node *n = arg;

	if (n->up) {
		n->srv->n_up--;
		log_info("witness: node %016" PRIx64 " at %s disconnected: %s", witness_conn_node(c),
		         witness_conn_peer(c), why);
	} else {
		/* Garbage, a wrong secret, or a silent peer: refused before it proved anything. */
		log_warn("witness: connection from %s refused: %s", witness_conn_peer(c), why);
	}
	n->up = false;
	n->c = NULL;
}

static void node_gone(void *arg)
{
	struct node *n = arg;
	struct witness_server *s = n->srv;

	if (n->prev != NULL)
		n->prev->next = n->next;
	else
		s->nodes = n->next;
	if (n->next != NULL)
		n->next->prev = n->prev;
	s->n_nodes--;
	free(n);
}

static const struct witness_conn_ops node_ops = {
	.up = node_up, .message = node_message, .lost = node_lost, .gone = node_gone,
};

static void accepted(void *ctx, int fd, uint16_t tpgt)
{
	struct witness_server *s = ctx;
	struct witness_conn_config cfg = {
		.side = WITNESS_SIDE_WITNESS, .secret = s->secret, .secret_len = s->secret_len, .timeout_ms = s->idle_ms,
	};
	struct node *n;
	const char *why;

	if (!s->stopping && s->n_nodes >= MAX_CONNECTIONS && !s->full_logged) {
		log_warn("witness: %d connections at once; refusing more until some end", MAX_CONNECTIONS);
		s->full_logged = true;
	}
	if (s->stopping || s->n_nodes >= MAX_CONNECTIONS || (n = calloc(1, sizeof(*n))) == NULL) {
		close(fd);
		return;
	}
	s->full_logged = false;
	s->n_nodes++;
	n->srv = s;
	n->next = s->nodes;
	if (n->next != NULL)
		n->next->prev = n;
	s->nodes = n;
	n->c = witness_conn_start(s->r, fd, &cfg, &node_ops, n, &why);
	if (n->c == NULL) {
		log_err("witness: cannot serve a connection: %s", why);
		node_gone(n);
	}
}

/* Logs each lease that lapsed, once; the record stays (see witness_server.h). */
static void on_tick(struct reactor_timer *t)
{
	struct witness_server *s = container_of(t, struct witness_server, tick);
	uint64_t now = now_ms();

	if (s->stopping) {
		if (s->nodes == NULL && portal_idle(s->portal)) {
			s->done(s->done_arg);
			return;
		}
	} else {
		for (size_t i = 0; i < s->n_leases; i++) {
			struct lease *l = &s->leases[i];
			const struct witness_record *rec = witness_state_find(s->state, l->uuid);
			char dev[WITNESS_UUID_STR];

			if (l->lapsed || now < l->until_ms || rec == NULL)
				continue;
			l->lapsed = true;
			witness_uuid_format(l->uuid, dev);
			log_warn("device %s: the lease of node %016" PRIx64 " lapsed; it stays the holder until it "
			         "releases the device", dev, rec->holder);
		}
	}
	reactor_timer_start(s->r, &s->tick, s->stopping ? DRAIN_POLL_MS : MAX(s->lease_ms / 4, 10u), on_tick);
}

int witness_server_new(struct reactor *r, const struct witness_server_params *p, struct witness_server **out,
                       char *err, size_t errlen)
{
	struct witness_server *s;
	char addr[64];
	uint16_t port;

	*out = NULL;
	if (p->secret_len == 0 || p->secret_len > WITNESS_SECRET_MAX) {
		snprintf(err, errlen, "the shared secret must be 1..%d bytes", WITNESS_SECRET_MAX);
		return -1;
	}
	if (witness_conn_parse_address(p->listen, addr, sizeof(addr), &port) != 0) {
		snprintf(err, errlen, "listen address '%s' is not ADDR:PORT", p->listen);
		return -1;
	}
	if (p->lease_ms > WITNESS_LEASE_MAX_MS) {
		snprintf(err, errlen, "a lease is at most %u ms", WITNESS_LEASE_MAX_MS);
		return -1;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->r = r;
	s->state = p->state;
	memcpy(s->secret, p->secret, p->secret_len);
	s->secret_len = p->secret_len;
	s->lease_ms = p->lease_ms ? p->lease_ms : WITNESS_DEFAULT_LEASE_MS;
	s->idle_ms = p->idle_ms ? p->idle_ms : WITNESS_DEFAULT_IDLE_MS;
	if (portal_open(r, addr, port, 1, accepted, s, &s->portal, err, errlen) != 0) {
		free(s);
		return -1;
	}
	reactor_timer_start(r, &s->tick, MAX(s->lease_ms / 4, 10u), on_tick);
	*out = s;
	return 0;
}

void witness_server_stop(struct witness_server *s, void (*done)(void *arg), void *arg)
{
	s->stopping = true;
	s->done = done;
	s->done_arg = arg;
	portal_shutdown(s->portal);
	for (struct node *n = s->nodes; n != NULL; n = n->next) {
		if (n->c == NULL)
			continue;
		if (n->up)
			s->n_up--;
		n->up = false;
		witness_conn_close(n->c);
		n->c = NULL;
	}
	reactor_timer_start(s->r, &s->tick, DRAIN_POLL_MS, on_tick);
}

void witness_server_free(struct witness_server *s)
{
	if (s == NULL)
		return;
	reactor_timer_cancel(s->r, &s->tick);
	portal_free(s->portal);
	OPENSSL_cleanse(s->secret, sizeof(s->secret));
	free(s->leases);
	free(s);
}

size_t witness_server_nodes(const struct witness_server *s)
{
	return s->n_up;
}
