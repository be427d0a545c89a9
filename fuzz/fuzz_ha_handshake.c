/* Fuzzes the HA link handshake: node A talks to an honest node B with the same secret,
 * while the input decides, step by step, whether A next receives B's genuine message,
 * that message with a byte changed, or a message made up from the input.  A must never
 * crash, must answer a failure with GOODBYE at most once, and may only reach DONE with
 * keys that match B's. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "ha/handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define QUEUE_MAX 8

struct queue {
	struct proto_msg msgs[QUEUE_MAX];
	int head, tail;
};

static void push(struct queue *q, const struct proto_msg *m)
{
	if (q->tail < QUEUE_MAX)
		q->msgs[q->tail++] = *m;
}

static int fixed_rng(void *ctx, uint8_t *buf, size_t len)
{
	uint8_t *seed = ctx;

	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(*seed * 31 + i);
	(*seed)++;
	return 0;
}

static struct handshake *make(uint64_t id, uint8_t role, uint8_t *seed)
{
	struct handshake_config cfg = {
		.secret = (const uint8_t *)"fuzz secret", .secret_len = 11, .node_id = id,
		.device_uuid = {1, 2, 3}, .role = role, .link_kind = PROTO_LINK_SYNC, .rng = fixed_rng, .rng_ctx = seed,
	};
	const char *why;
	struct handshake *hs = handshake_new(&cfg, &why);

	if (hs == NULL)
		abort();
	return hs;
}

/* A message of a valid type whose first bytes come from the input (pointer fields are
 * never read by the handshake). */
static size_t made_up(const uint8_t *data, size_t size, struct proto_msg *m)
{
	size_t n;

	memset(m, 0, sizeof(*m));
	if (size < 1)
		return 0;
	m->type = (enum proto_type)(1 + data[0] % (PROTO_TYPE_END - 1));
	n = size - 1 < sizeof(struct proto_auth) ? size - 1 : sizeof(struct proto_auth);
	memcpy(&m->u, data + 1, n);
	return 1 + n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t seed_a = 1, seed_b = 100;
	struct handshake *a = make(0xa, PROTO_ROLE_PRIMARY, &seed_a), *b = make(0xb, PROTO_ROLE_SECONDARY, &seed_b);
	struct queue to_a = {0}, to_b = {0};
	enum handshake_result ra = HANDSHAKE_CONTINUE, rb = HANDSHAKE_CONTINUE;
	struct proto_msg m, reply;
	bool has_reply;
	int goodbyes = 0;
	size_t off = 0;

	log_set_level(LOG_LEVEL_ERR);
	handshake_hello(a, &m);
	push(&to_b, &m);
	handshake_hello(b, &m);
	push(&to_a, &m);
	while (off < size) {
		uint8_t op = data[off++];

		/* B hears everything A says, honestly. */
		while (to_b.head < to_b.tail && rb == HANDSHAKE_CONTINUE) {
			rb = handshake_input(b, &to_b.msgs[to_b.head++], &reply, &has_reply);
			if (has_reply)
				push(&to_a, &reply);
		}
		switch (op % 3) {
		case 0:
			if (to_a.head == to_a.tail)
				continue;
			m = to_a.msgs[to_a.head++];
			break;
		case 1:
			if (to_a.head == to_a.tail || off + 2 > size)
				continue;
			m = to_a.msgs[to_a.head++];
			((uint8_t *)&m.u)[data[off] % sizeof(struct proto_auth)] ^= data[off + 1] | 1;
			off += 2;
			break;
		default:
			off += made_up(data + off, size - off, &m);
			break;
		}
		ra = handshake_input(a, &m, &reply, &has_reply);
		if (has_reply) {
			if (reply.type == PROTO_GOODBYE && ++goodbyes > 1)
				abort();
			push(&to_b, &reply);
		}
		if (ra == HANDSHAKE_FAILED && handshake_reason(a)[0] == '\0')
			abort();
	}
	if (ra == HANDSHAKE_DONE && rb == HANDSHAKE_DONE) {
		uint8_t atx[PROTO_KEY_LEN], arx[PROTO_KEY_LEN], btx[PROTO_KEY_LEN], brx[PROTO_KEY_LEN];

		handshake_keys(a, atx, arx);
		handshake_keys(b, btx, brx);
		if (memcmp(atx, brx, PROTO_KEY_LEN) != 0 || memcmp(arx, btx, PROTO_KEY_LEN) != 0)
			abort();
	}
	handshake_free(a);
	handshake_free(b);
	return 0;
}
