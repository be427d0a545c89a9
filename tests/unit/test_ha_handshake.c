/* HA link handshake: two nodes with one secret end with matching per-direction keys that
 * carry tagged frames; a wrong secret, a reflected challenge or proof, another device, a
 * version without overlap, a message out of turn are refused on both sides with a reason
 * that never shows the secret. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ha/handshake.h"

#define WIRE_MAX 4096

/* A deterministic RNG: a counter spread over the buffer, distinct per node. */
static int counter_rng(void *ctx, uint8_t *buf, size_t len)
{
	uint8_t *seed = ctx;

	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(*seed + i * 13);
	(*seed)++;
	return 0;
}

static int broken_rng(void *ctx, uint8_t *buf, size_t len)
{
	return -1;
}

struct node {
	struct handshake_config cfg;
	uint8_t seed;
	struct handshake *hs;
	struct proto_tx *tx;
	struct proto_rx *rx;
	enum handshake_result result;
};

static void node_init(struct node *n, uint64_t id, uint8_t role, const char *secret)
{
	const char *why;

	memset(n, 0, sizeof(*n));
	n->seed = (uint8_t)id;
	n->cfg = (struct handshake_config){
		.secret = (const uint8_t *)secret, .secret_len = strlen(secret), .node_id = id,
		.device_uuid = {0xde, 0xad, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0xbe, 0xef},
		.role = role, .link_kind = PROTO_LINK_SYNC, .rng = counter_rng, .rng_ctx = &n->seed,
	};
	n->hs = handshake_new(&n->cfg, &why);
	assert_non_null(n->hs);
	n->tx = proto_tx_new();
	n->rx = proto_rx_new(WIRE_MAX);
}

static void node_free(struct node *n)
{
	handshake_free(n->hs);
	proto_tx_free(n->tx);
	proto_rx_free(n->rx);
}

/* Frames `m` from `from` into `wire` (appending at *len). */
static void send_msg(struct node *from, const struct proto_msg *m, uint8_t *wire, size_t *len)
{
	struct proto_frame f;

	assert_int_equal(proto_encode(from->tx, m, &f), 0);
	*len += proto_frame_flatten(&f, wire + *len, WIRE_MAX * 4 - *len);
}

static void use_keys(struct node *n)
{
	uint8_t tx_key[PROTO_KEY_LEN], rx_key[PROTO_KEY_LEN];

	handshake_keys(n->hs, tx_key, rx_key);
	assert_memory_not_equal(tx_key, rx_key, PROTO_KEY_LEN);
	assert_int_equal(proto_tx_set_key(n->tx, tx_key, handshake_version(n->hs)), 0);
	assert_int_equal(proto_rx_set_key(n->rx, rx_key, handshake_version(n->hs)), 0);
}

/* Delivers every whole frame of `wire` to `to`, queueing its replies on `back`. */
static void deliver(struct node *to, uint8_t *wire, size_t *len, uint8_t *back, size_t *back_len)
{
	size_t off = 0;

	while (off < *len && to->result == HANDSHAKE_CONTINUE) {
		struct proto_msg in, reply;
		size_t used;
		bool has_reply;
		enum proto_error e = proto_rx_feed(to->rx, wire + off, *len - off, &used, &in);

		off += used;
		if (e != PROTO_OK) {
			assert_int_equal(e, PROTO_NEED_MORE);
			break;
		}
		to->result = handshake_input(to->hs, &in, &reply, &has_reply);
		if (has_reply)
			send_msg(to, &reply, back, back_len);
		if (to->result == HANDSHAKE_DONE)
			use_keys(to);
	}
	*len = 0;
}

/* Runs both handshakes over byte streams until neither has anything to say. */
static void run_pair(struct node *a, struct node *b)
{
	static uint8_t ab[WIRE_MAX * 4], ba[WIRE_MAX * 4];
	size_t ab_len = 0, ba_len = 0;
	struct proto_msg hello;

	handshake_hello(a->hs, &hello);
	send_msg(a, &hello, ab, &ab_len);
	handshake_hello(b->hs, &hello);
	send_msg(b, &hello, ba, &ba_len);
	for (int round = 0; round < 10 && (ab_len > 0 || ba_len > 0); round++) {
		size_t ab_now = ab_len;
		static uint8_t ab_copy[WIRE_MAX * 4];

		/* Both directions travel at once: B's replies go out after A's bytes arrived. */
		memcpy(ab_copy, ab, ab_len);
		ab_len = 0;
		deliver(a, ba, &ba_len, ab, &ab_len);
		deliver(b, ab_copy, &ab_now, ba, &ba_len);
	}
}

/* One tagged WRITE each way must arrive intact. */
static void assert_link_works(struct node *a, struct node *b)
{
	struct node *ends[2][2] = {{a, b}, {b, a}};
	uint8_t payload[512];

	memset(payload, 0x42, sizeof(payload));
	for (int i = 0; i < 2; i++) {
		struct proto_msg m = {.type = PROTO_WRITE}, out;
		uint8_t wire[WIRE_MAX];
		size_t len = 0, used;

		m.u.write = (struct proto_write){1, 0, sizeof(payload), PROTO_WRITE_FUA, payload};
		send_msg(ends[i][0], &m, wire, &len);
		assert_int_equal(proto_rx_feed(ends[i][1]->rx, wire, len, &used, &out), PROTO_OK);
		assert_memory_equal(out.u.write.data, payload, sizeof(payload));
	}
}

static void test_equal_secrets_authenticate_and_key_the_link(void **state)
{
	struct node a, b;

	node_init(&a, 0xa1, PROTO_ROLE_PRIMARY, "correct horse battery staple");
	node_init(&b, 0xb2, PROTO_ROLE_SECONDARY, "correct horse battery staple");
	run_pair(&a, &b);
	assert_int_equal(a.result, HANDSHAKE_DONE);
	assert_int_equal(b.result, HANDSHAKE_DONE);
	assert_int_equal(handshake_version(a.hs), PROTO_VERSION_MAX);
	assert_int_equal(handshake_peer(a.hs)->node_id, 0xb2);
	assert_int_equal(handshake_peer(b.hs)->node_id, 0xa1);
	assert_link_works(&a, &b);
	node_free(&a);
	node_free(&b);
}

static void test_different_secrets_refused_on_both_sides(void **state)
{
	struct node a, b;

	node_init(&a, 0xa1, PROTO_ROLE_PRIMARY, "secret-one");
	node_init(&b, 0xb2, PROTO_ROLE_SECONDARY, "secret-two");
	run_pair(&a, &b);
	assert_int_equal(a.result, HANDSHAKE_FAILED);
	assert_int_equal(b.result, HANDSHAKE_FAILED);
	assert_non_null(strstr(handshake_reason(a.hs), "secret"));
	assert_null(strstr(handshake_reason(a.hs), "secret-one"));
	assert_null(strstr(handshake_reason(b.hs), "secret-two"));
	node_free(&a);
	node_free(&b);
}

/* Starts `a` as if a peer HELLO from node `peer_id` had come; returns a's nonce. */
static void past_hello(struct node *a, uint64_t peer_id, uint8_t nonce[PROTO_NONCE_LEN])
{
	struct proto_msg hello, reply;
	bool has_reply;

	handshake_hello(a->hs, &hello);
	hello.u.hello.node_id = peer_id;
	hello.u.hello.role = PROTO_ROLE_SECONDARY;
	assert_int_equal(handshake_input(a->hs, &hello, &reply, &has_reply), HANDSHAKE_CONTINUE);
	assert_true(has_reply);
	assert_int_equal(reply.type, PROTO_AUTH);
	assert_int_equal(reply.u.auth.kind, PROTO_AUTH_NONCE);
	memcpy(nonce, reply.u.auth.value, PROTO_NONCE_LEN);
}

static void assert_refused(struct node *a, const struct proto_msg *in, uint32_t bye)
{
	struct proto_msg reply;
	bool has_reply;

	assert_int_equal(handshake_input(a->hs, in, &reply, &has_reply), HANDSHAKE_FAILED);
	assert_true(has_reply);
	assert_int_equal(reply.type, PROTO_GOODBYE);
	assert_int_equal(reply.u.goodbye.reason, bye);
	/* Failed stays failed, silently. */
	assert_int_equal(handshake_input(a->hs, in, &reply, &has_reply), HANDSHAKE_FAILED);
	assert_false(has_reply);
}

static void test_reflected_hello_refused(void **state)
{
	struct node a;
	struct proto_msg own;

	node_init(&a, 0xa1, PROTO_ROLE_PRIMARY, "s3cret");
	handshake_hello(a.hs, &own);
	assert_refused(&a, &own, PROTO_BYE_CONFIG);
	node_free(&a);
}

static void test_reflected_challenge_refused(void **state)
{
	struct node a;
	struct proto_msg echo = {.type = PROTO_AUTH};

	node_init(&a, 0xa1, PROTO_ROLE_PRIMARY, "s3cret");
	past_hello(&a, 0xb2, echo.u.auth.value);
	echo.u.auth.kind = PROTO_AUTH_NONCE;
	assert_refused(&a, &echo, PROTO_BYE_AUTH);
	node_free(&a);
}

static void test_reflected_proof_refused(void **state)
{
	struct node a;
	struct proto_msg nonce = {.type = PROTO_AUTH}, reply;
	uint8_t a_nonce[PROTO_NONCE_LEN];
	bool has_reply;

	node_init(&a, 0xa1, PROTO_ROLE_PRIMARY, "s3cret");
	past_hello(&a, 0xb2, a_nonce);
	nonce.u.auth.kind = PROTO_AUTH_NONCE;
	memset(nonce.u.auth.value, 0x77, PROTO_NONCE_LEN);
	assert_int_equal(handshake_input(a.hs, &nonce, &reply, &has_reply), HANDSHAKE_CONTINUE);
	assert_true(has_reply);
	assert_int_equal(reply.u.auth.kind, PROTO_AUTH_PROOF);
	/* A's own proof sent back as B's: it does not prove B knows the secret. */
	assert_refused(&a, &reply, PROTO_BYE_AUTH);
	node_free(&a);
}

static void test_version_without_overlap_refused(void **state)
{
	struct node a;
	struct proto_msg hello;

	node_init(&a, 0xa1, PROTO_ROLE_PRIMARY, "s3cret");
	handshake_hello(a.hs, &hello);
	hello.u.hello.node_id = 0xb2;
	hello.u.hello.role = PROTO_ROLE_SECONDARY;
	hello.u.hello.version_min = PROTO_VERSION_MAX + 1;
	hello.u.hello.version_max = PROTO_VERSION_MAX + 3;
	assert_refused(&a, &hello, PROTO_BYE_VERSION);
	assert_non_null(strstr(handshake_reason(a.hs), "version"));
	node_free(&a);
}

static void test_other_device_or_same_role_refused(void **state)
{
	struct node a;
	struct proto_msg hello;

	node_init(&a, 0xa1, PROTO_ROLE_PRIMARY, "s3cret");
	handshake_hello(a.hs, &hello);
	hello.u.hello.node_id = 0xb2;
	assert_refused(&a, &hello, PROTO_BYE_CONFIG); /* both primary */
	node_free(&a);

	node_init(&a, 0xa1, PROTO_ROLE_PRIMARY, "s3cret");
	handshake_hello(a.hs, &hello);
	hello.u.hello.node_id = 0xb2;
	hello.u.hello.role = PROTO_ROLE_SECONDARY;
	hello.u.hello.device_uuid[3] ^= 1;
	assert_refused(&a, &hello, PROTO_BYE_CONFIG);
	node_free(&a);
}

static void test_message_out_of_turn_refused(void **state)
{
	struct node a;
	struct proto_msg write = {.type = PROTO_WRITE}, proof = {.type = PROTO_AUTH};
	uint8_t byte = 0;

	node_init(&a, 0xa1, PROTO_ROLE_PRIMARY, "s3cret");
	write.u.write = (struct proto_write){1, 0, 1, 0, &byte};
	assert_refused(&a, &write, PROTO_BYE_PROTOCOL);
	node_free(&a);

	/* A proof before the nonce. */
	node_init(&a, 0xa1, PROTO_ROLE_PRIMARY, "s3cret");
	past_hello(&a, 0xb2, proof.u.auth.value);
	proof.u.auth.kind = PROTO_AUTH_PROOF;
	assert_refused(&a, &proof, PROTO_BYE_PROTOCOL);
	node_free(&a);
}

static void test_peer_goodbye_fails_without_reply(void **state)
{
	struct node a;
	struct proto_msg bye = {.type = PROTO_GOODBYE}, reply;
	bool has_reply;

	node_init(&a, 0xa1, PROTO_ROLE_PRIMARY, "s3cret");
	bye.u.goodbye.reason = PROTO_BYE_AUTH;
	assert_int_equal(handshake_input(a.hs, &bye, &reply, &has_reply), HANDSHAKE_FAILED);
	assert_false(has_reply);
	assert_non_null(strstr(handshake_reason(a.hs), "authentication failed"));
	node_free(&a);
}

static void test_abort_and_rng_failure_fail(void **state)
{
	struct node a;
	struct proto_msg hello, reply;
	bool has_reply;

	node_init(&a, 0xa1, PROTO_ROLE_PRIMARY, "s3cret");
	handshake_abort(a.hs, "connection reset");
	assert_string_equal(handshake_reason(a.hs), "connection reset");
	node_free(&a);

	node_init(&a, 0xa1, PROTO_ROLE_PRIMARY, "s3cret");
	handshake_free(a.hs);
	a.cfg.rng = broken_rng;
	a.hs = handshake_new(&a.cfg, &(const char *){NULL});
	handshake_hello(a.hs, &hello);
	hello.u.hello.node_id = 0xb2;
	hello.u.hello.role = PROTO_ROLE_SECONDARY;
	assert_int_equal(handshake_input(a.hs, &hello, &reply, &has_reply), HANDSHAKE_FAILED);
	node_free(&a);
}

static void test_setup_refuses_empty_secret_and_bad_identity(void **state)
{
	struct handshake_config cfg = {
		.secret = (const uint8_t *)"x", .secret_len = 0, .node_id = 1, .role = PROTO_ROLE_PRIMARY,
		.link_kind = PROTO_LINK_SYNC, .rng = handshake_rng_openssl,
	};
	const char *why;

	assert_null(handshake_new(&cfg, &why));
	assert_non_null(strstr(why, "secret"));
	cfg.secret_len = 1;
	cfg.node_id = 0;
	assert_null(handshake_new(&cfg, &why));
	cfg.node_id = 1;
	cfg.role = 3;
	assert_null(handshake_new(&cfg, &why));
	cfg.role = PROTO_ROLE_PRIMARY;
	cfg.version_min = PROTO_VERSION_MAX + 1;
	cfg.version_max = PROTO_VERSION_MAX + 1;
	assert_null(handshake_new(&cfg, &why));
	cfg.version_min = cfg.version_max = 0;
	cfg.secret_len = HANDSHAKE_SECRET_MAX + 1;
	assert_null(handshake_new(&cfg, &why));
	cfg.secret_len = 1;
	handshake_free(handshake_new(&cfg, &why));
	assert_null(why);
}

static void test_openssl_rng_fills_buffers(void **state)
{
	uint8_t a[32] = {0}, b[32] = {0};

	assert_int_equal(handshake_rng_openssl(NULL, a, sizeof(a)), 0);
	assert_int_equal(handshake_rng_openssl(NULL, b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, sizeof(a));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_equal_secrets_authenticate_and_key_the_link),
		cmocka_unit_test(test_different_secrets_refused_on_both_sides),
		cmocka_unit_test(test_reflected_hello_refused),
		cmocka_unit_test(test_reflected_challenge_refused),
		cmocka_unit_test(test_reflected_proof_refused),
		cmocka_unit_test(test_version_without_overlap_refused),
		cmocka_unit_test(test_other_device_or_same_role_refused),
		cmocka_unit_test(test_message_out_of_turn_refused),
		cmocka_unit_test(test_peer_goodbye_fails_without_reply),
		cmocka_unit_test(test_abort_and_rng_failure_fail),
		cmocka_unit_test(test_setup_refuses_empty_secret_and_bad_identity),
		cmocka_unit_test(test_openssl_rng_fills_buffers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
