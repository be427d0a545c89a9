/* The witness wire protocol: every message survives encode and decode, the header layout
 * byte for byte, every malformed, forged, replayed or untagged frame is refused with a
 * reason, the encoder refuses what the decoder would, and the handshake hashes bind the
 * secret, both nonces, the version and the side. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/util.h"
#include "ha/witness_proto.h"

static const uint8_t key_a[WITNESS_PROTO_KEY_LEN] = {1, 2, 3};
static const uint8_t key_b[WITNESS_PROTO_KEY_LEN] = {3, 2, 1};

/* A valid message of each type, its fields distinct so a swapped field shows. */
static struct witness_msg sample(unsigned type)
{
	struct witness_msg m = {
		.type = (uint8_t)type, .version_min = 1, .version_max = 3, .version = 1,
		.node_id = 0x1122334455667788ull, .request = 42, .gen_current = 0xc0ffee, .gen_bitmap = 0xbead,
		.lease_ms = 3000, .holder = 0x99, .stamp = 123456789,
		.reason = type == WITNESS_BYE ? WITNESS_BYE_AUTH : WITNESS_REFUSE_HELD,
	};

	for (unsigned i = 0; i < WITNESS_PROTO_NONCE_LEN; i++) {
		m.nonce[i] = (uint8_t)(i + 1);
		m.proof[i] = (uint8_t)(0x80 + i);
	}
	for (unsigned i = 0; i < WITNESS_PROTO_UUID_LEN; i++)
		m.uuid[i] = (uint8_t)(0x40 + i);
	return m;
}

/* Feeds a whole buffer; returns the last result and the message if one completed. */
static enum witness_proto_result feed_all(struct witness_proto *rx, const uint8_t *buf, size_t len,
                                          struct witness_msg *m)
{
	size_t used;
	enum witness_proto_result e = witness_proto_feed(rx, buf, len, &used, m);

	if (e == WITNESS_PROTO_MSG)
		assert_int_equal(used, len);
	return e;
}

/* Only the type's own fields travel; compares those. */
static void assert_same_fields(const struct witness_msg *a, const struct witness_msg *b)
{
	uint8_t fa[WITNESS_PROTO_FRAME_MAX], fb[WITNESS_PROTO_FRAME_MAX];
	struct witness_proto *x = witness_proto_new(), *y = witness_proto_new();
	size_t na = witness_proto_encode(x, a, fa), nb = witness_proto_encode(y, b, fb);

	assert_int_equal(na, nb);
	assert_memory_equal(fa, fb, na);
	witness_proto_free(x);
	witness_proto_free(y);
}

static void test_every_type_round_trips_byte_at_a_time(void **state)
{
	for (unsigned keyed = 0; keyed < 2; keyed++) {
		struct witness_proto *tx = witness_proto_new(), *rx = witness_proto_new();

		if (keyed) {
			witness_proto_set_tx_key(tx, key_a);
			witness_proto_set_rx_key(rx, key_a);
		}
		for (unsigned t = 1; t < WITNESS_MSG_END; t++) {
			struct witness_msg in = sample(t), out;
			uint8_t frame[WITNESS_PROTO_FRAME_MAX];
			size_t n = witness_proto_encode(tx, &in, frame), used;
			enum witness_proto_result e = WITNESS_PROTO_MORE;

			assert_int_equal(n, WITNESS_PROTO_HEADER_LEN + witness_proto_payload_len(t) +
			                    (keyed ? WITNESS_PROTO_TAG_LEN : 0));
			for (size_t i = 0; i < n; i++) {
				e = witness_proto_feed(rx, frame + i, 1, &used, &out);
				assert_int_equal(used, 1);
				assert_int_equal(e, i + 1 < n ? WITNESS_PROTO_MORE : WITNESS_PROTO_MSG);
			}
			assert_int_equal(out.type, t);
			assert_same_fields(&in, &out);
		}
		witness_proto_free(tx);
		witness_proto_free(rx);
	}
}

static void test_two_frames_in_one_buffer_come_out_one_by_one(void **state)
{
	struct witness_proto *tx = witness_proto_new(), *rx = witness_proto_new();
	struct witness_msg a = sample(WITNESS_RENEW), b = sample(WITNESS_PING), out;
	uint8_t buf[2 * WITNESS_PROTO_FRAME_MAX];
	size_t na = witness_proto_encode(tx, &a, buf), nb, used;

	nb = witness_proto_encode(tx, &b, buf + na);
	assert_int_equal(witness_proto_feed(rx, buf, na + nb, &used, &out), WITNESS_PROTO_MSG);
	assert_int_equal(used, na);
	assert_int_equal(out.type, WITNESS_RENEW);
	assert_int_equal(witness_proto_feed(rx, buf + used, na + nb - used, &used, &out), WITNESS_PROTO_MSG);
	assert_int_equal(used, nb);
	assert_int_equal(out.type, WITNESS_PING);
	witness_proto_free(tx);
	witness_proto_free(rx);
}

static void test_header_layout_byte_for_byte(void **state)
{
	struct witness_proto *tx = witness_proto_new();
	struct witness_msg m = {.type = WITNESS_PING, .stamp = 0x0102030405060708ull};
	uint8_t f[WITNESS_PROTO_FRAME_MAX], crc_in[28];
	static const uint8_t head[20] = {'T', 'W', 'W', 'I', 1, WITNESS_PING, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};

	witness_proto_encode(tx, &m, f);
	assert_int_equal(witness_proto_encode(tx, &m, f), 32); /* the second frame: sequence 1 */
	assert_memory_equal(f, head, sizeof(head));
	assert_memory_equal(f + 24, "\1\2\3\4\5\6\7\10", 8);
	memcpy(crc_in, f, 20);
	memcpy(crc_in + 20, f + 24, 8);
	assert_int_equal(get_be32(f + 20), crc32c(crc_in, sizeof(crc_in)));
	witness_proto_set_tx_key(tx, key_a);
	assert_int_equal(witness_proto_encode(tx, &m, f), 32 + WITNESS_PROTO_TAG_LEN);
	assert_int_equal(get_be16(f + 16), WITNESS_PROTO_FLAG_MAC);
	witness_proto_free(tx);
}

/* Encodes `m` unkeyed, lets `patch` change the frame, refreshes the CRC, feeds it to a new
 * receiver and expects an error whose text contains `what`. */
static void assert_refused(const struct witness_msg *m, void (*patch)(uint8_t *f), bool fix_crc, const char *what)
{
	struct witness_proto *tx = witness_proto_new(), *rx = witness_proto_new();
	uint8_t f[WITNESS_PROTO_FRAME_MAX], crc_in[WITNESS_PROTO_FRAME_MAX];
	size_t n = witness_proto_encode(tx, m, f), plen = witness_proto_payload_len(m->type);
	struct witness_msg out;

	assert_true(n > 0);
	patch(f);
	if (fix_crc) {
		memcpy(crc_in, f, 20);
		memcpy(crc_in + 20, f + 24, plen);
		put_be32(f + 20, crc32c(crc_in, 20 + plen));
	}
	assert_int_equal(feed_all(rx, f, n, &out), WITNESS_PROTO_ERROR);
	if (strstr(witness_proto_error(rx), what) == NULL)
		fail_msg("error '%s' does not mention '%s'", witness_proto_error(rx), what);
	/* Sticky: a good frame after an error is refused too. */
	n = witness_proto_encode(tx, m, f);
	assert_int_equal(feed_all(rx, f, n, &out), WITNESS_PROTO_ERROR);
	witness_proto_free(tx);
	witness_proto_free(rx);
}

static void bad_magic(uint8_t *f) { f[0] = 'X'; }
static void bad_version(uint8_t *f) { f[4] = 2; }
static void bad_type(uint8_t *f) { f[5] = WITNESS_MSG_END; }
static void type_zero(uint8_t *f) { f[5] = 0; }
static void bad_length(uint8_t *f) { f[7] = 7; }
static void bad_flags(uint8_t *f) { f[17] = 4; }
static void bad_reserved(uint8_t *f) { f[19] = 1; }
static void mac_flag(uint8_t *f) { f[17] = WITNESS_PROTO_FLAG_MAC; }
static void flip_payload(uint8_t *f) { f[24] ^= 0x10; }
static void bad_sequence(uint8_t *f) { f[15] = 5; }
static void zero_node(uint8_t *f) { memset(f + 24 + 24, 0, 8); }      /* CLAIM: request, uuid, node */
static void zero_uuid(uint8_t *f) { memset(f + 24 + 8, 0, 16); }      /* after the request */
static void huge_lease(uint8_t *f) { put_be32(f + 24 + 24, WITNESS_LEASE_MAX_MS + 1); }
static void bad_refusal(uint8_t *f) { put_be32(f + 24 + 24, WITNESS_REFUSE_END); }
static void bad_bye(uint8_t *f) { put_be32(f + 24, 0); }
static void bad_range(uint8_t *f) { f[24] = 3; f[25] = 2; }

static void test_malformed_headers_are_refused(void **state)
{
	struct witness_msg ping = sample(WITNESS_PING);

	assert_refused(&ping, bad_magic, false, "magic");
	assert_refused(&ping, bad_version, false, "frame version");
	assert_refused(&ping, bad_type, false, "unknown message type");
	assert_refused(&ping, type_zero, false, "unknown message type");
	assert_refused(&ping, bad_length, false, "payload");
	assert_refused(&ping, bad_flags, false, "flags");
	assert_refused(&ping, bad_reserved, false, "reserved");
	assert_refused(&ping, mac_flag, false, "with a tag");
	assert_refused(&ping, flip_payload, false, "CRC32C");
	assert_refused(&ping, bad_sequence, true, "sequence number 5, expected 0");
}

static void test_out_of_range_fields_are_refused_both_ways(void **state)
{
	struct {
		unsigned type;
		void (*patch)(uint8_t *f);
		const char *what;
	} cases[] = {
		{WITNESS_CLAIM, zero_node, "node id 0"},
		{WITNESS_CLAIM, zero_uuid, "all-zero device uuid"},
		{WITNESS_GRANT, huge_lease, "lease"},
		{WITNESS_REFUSE, bad_refusal, "REFUSE reason"},
		{WITNESS_BYE, bad_bye, "BYE reason"},
		{WITNESS_HELLO, bad_range, "version range"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct witness_msg m = sample(cases[i].type);

		assert_refused(&m, cases[i].patch, true, cases[i].what);
	}

	/* The encoder refuses the same values. */
	struct witness_proto *tx = witness_proto_new();
	uint8_t f[WITNESS_PROTO_FRAME_MAX];
	struct witness_msg m;

	for (unsigned i = 0; i < 6; i++) {
		switch (i) {
		case 0: m = sample(WITNESS_CLAIM); m.node_id = 0; break;
		case 1: m = sample(WITNESS_RENEW); memset(m.uuid, 0, sizeof(m.uuid)); break;
		case 2: m = sample(WITNESS_GRANT); m.lease_ms = 0; break;
		case 3: m = sample(WITNESS_HELLO); memset(m.nonce, 0, sizeof(m.nonce)); break;
		case 4: m = sample(WITNESS_CHALLENGE); m.version = 0; break;
		default: m = sample(WITNESS_PING); m.type = WITNESS_MSG_END; break;
		}
		assert_int_equal(witness_proto_encode(tx, &m, f), 0);
	}
	/* Nothing was consumed: the next valid frame is sequence 0. */
	m = sample(WITNESS_PING);
	assert_true(witness_proto_encode(tx, &m, f) > 0);
	assert_int_equal(get_be64(f + 8), 0);
	witness_proto_free(tx);
}

/* A fresh receiver with `key` refuses frame f with an error mentioning `what`. */
static void assert_keyed_refusal(const uint8_t key[WITNESS_PROTO_KEY_LEN], const uint8_t *f, size_t n,
                                 const char *what)
{
	struct witness_proto *rx = witness_proto_new();
	struct witness_msg out;

	witness_proto_set_rx_key(rx, key);
	assert_int_equal(feed_all(rx, f, n, &out), WITNESS_PROTO_ERROR);
	if (strstr(witness_proto_error(rx), what) == NULL)
		fail_msg("error '%s' does not mention '%s'", witness_proto_error(rx), what);
	witness_proto_free(rx);
}

static void test_keyed_frames_refuse_forgery_replay_and_stripping(void **state)
{
	struct witness_proto *tx = witness_proto_new(), *rx = witness_proto_new(), *plain = witness_proto_new();
	struct witness_msg m = sample(WITNESS_RENEW), out;
	uint8_t f[WITNESS_PROTO_FRAME_MAX], g[WITNESS_PROTO_FRAME_MAX];
	size_t n;

	witness_proto_set_tx_key(tx, key_a);
	witness_proto_set_rx_key(rx, key_a);
	n = witness_proto_encode(tx, &m, f);
	assert_int_equal(feed_all(rx, f, n, &out), WITNESS_PROTO_MSG);
	/* The same frame again: a replay. */
	assert_int_equal(feed_all(rx, f, n, &out), WITNESS_PROTO_ERROR);
	assert_non_null(strstr(witness_proto_error(rx), "replayed"));
	/* Another key (another secret, or the other direction's key). */
	assert_keyed_refusal(key_b, f, n, "tag");
	/* A changed tag. */
	f[n - 1] ^= 1;
	assert_keyed_refusal(key_a, f, n, "tag");
	/* An untagged frame to a keyed receiver: the flag cannot be stripped. */
	n = witness_proto_encode(plain, &m, g);
	assert_keyed_refusal(key_a, g, n, "without a tag");
	witness_proto_free(rx);
	witness_proto_free(tx);
	witness_proto_free(plain);
}

static void test_handshake_hashes_bind_every_input(void **state)
{
	static const uint8_t secret[] = "correct horse", other[] = "correct horsf";
	struct witness_auth a = {.secret = secret, .secret_len = sizeof(secret) - 1, .version = 1, .node_id = 7};
	struct witness_auth b;
	uint8_t p_node[32], p_witness[32], k_node[32], k_witness[32], p2[32];

	memset(a.node_nonce, 0xaa, sizeof(a.node_nonce));
	memset(a.witness_nonce, 0x55, sizeof(a.witness_nonce));
	assert_int_equal(witness_proto_proof(&a, WITNESS_SIDE_NODE, p_node), 0);
	assert_int_equal(witness_proto_proof(&a, WITNESS_SIDE_WITNESS, p_witness), 0);
	assert_int_equal(witness_proto_key(&a, WITNESS_SIDE_NODE, k_node), 0);
	assert_int_equal(witness_proto_key(&a, WITNESS_SIDE_WITNESS, k_witness), 0);
	assert_memory_not_equal(p_node, p_witness, 32);  /* no reflection */
	assert_memory_not_equal(k_node, k_witness, 32);  /* one key per direction */
	assert_memory_not_equal(p_node, k_node, 32);
	assert_true(witness_proto_proof_ok(&a, WITNESS_SIDE_NODE, p_node));
	assert_false(witness_proto_proof_ok(&a, WITNESS_SIDE_WITNESS, p_node));

	/* Any other secret, nonce, version or node id: not the proof. */
	for (unsigned i = 0; i < 5; i++) {
		b = a;
		switch (i) {
		case 0: b.secret = other; break;
		case 1: b.witness_nonce[31] ^= 1; break;
		case 2: b.node_nonce[0] ^= 1; break;
		case 3: b.version = 2; break;
		default: b.node_id = 8; break;
		}
		assert_false(witness_proto_proof_ok(&b, WITNESS_SIDE_NODE, p_node));
	}
	b = a;
	b.secret_len = 0; /* no empty secret */
	assert_int_equal(witness_proto_proof(&b, WITNESS_SIDE_NODE, p2), -1);
	assert_false(witness_proto_proof_ok(&b, WITNESS_SIDE_NODE, p_node));
}

static void test_names_cover_every_value(void **state)
{
	for (unsigned t = 1; t < WITNESS_MSG_END; t++)
		assert_string_not_equal(witness_msg_name(t), "unknown");
	for (unsigned r = 1; r < WITNESS_REFUSE_END; r++)
		assert_string_not_equal(witness_refusal_name(r), "unknown");
	for (unsigned r = 1; r < WITNESS_BYE_END; r++)
		assert_string_not_equal(witness_bye_name(r), "unknown");
	assert_string_equal(witness_msg_name(0), "unknown");
	assert_string_equal(witness_msg_name(WITNESS_MSG_END), "unknown");
	assert_int_equal(witness_proto_payload_len(0), 0);
	for (unsigned t = 1; t < WITNESS_MSG_END; t++)
		assert_true(witness_proto_payload_len(t) <= WITNESS_PROTO_PAYLOAD_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_type_round_trips_byte_at_a_time),
		cmocka_unit_test(test_two_frames_in_one_buffer_come_out_one_by_one),
		cmocka_unit_test(test_header_layout_byte_for_byte),
		cmocka_unit_test(test_malformed_headers_are_refused),
		cmocka_unit_test(test_out_of_range_fields_are_refused_both_ways),
		cmocka_unit_test(test_keyed_frames_refuse_forgery_replay_and_stripping),
		cmocka_unit_test(test_handshake_hashes_bind_every_input),
		cmocka_unit_test(test_names_cover_every_value),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
