/* HA sync-link framing: every message type survives a round trip, without tags and with
 * either kind (HMAC-SHA256 in protocol 1, GMAC from 2 on); every kind of corruption is
 * caught with its own error; the streaming decoder copes
 * with bytes one at a time; bulk data is not copied. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/util.h"
#include "ha/proto.h"

#define FRAME_MAX (PROTO_HEADER_LEN + PROTO_MAX_PAYLOAD + PROTO_TAG_LEN)

static const uint8_t key_a[PROTO_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
static const uint8_t key_b[PROTO_KEY_LEN] = {9, 9, 9};
static uint8_t data[4096];
static uint8_t digests[8];

/* One valid message of each type. */
static struct proto_msg sample(enum proto_type type)
{
	struct proto_msg m = {.type = type};

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 1);
	put_be32(digests, 0xdeadbeef);
	put_be32(digests + 4, 0x01234567);
	switch (type) {
	case PROTO_HELLO:
		m.u.hello = (struct proto_hello){1, 3, PROTO_ROLE_SECONDARY, PROTO_LINK_SYNC, 0x1122334455667788ull,
		                                 {0xaa, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xbb}};
		break;
	case PROTO_AUTH:
		m.u.auth.kind = PROTO_AUTH_PROOF;
		memset(m.u.auth.value, 0x5a, sizeof(m.u.auth.value));
		break;
	case PROTO_GENERATIONS:
		m.u.generations.gen = (struct generation){11, 22, {33, 44}, GENERATION_INCONSISTENT};
		m.u.generations.sync_state = PROTO_SYNC_TARGET;
		m.u.generations.initial_sync = 3;
		m.u.generations.failover = 2;
		m.u.generations.flags = PROTO_GEN_SERVING;
		m.u.generations.device_size = 1ull << 40;
		m.u.generations.extent_size = 1u << 22;
		break;
	case PROTO_BITMAP:
	case PROTO_BITMAP_KNOWN:
		m.u.bitmap = (struct proto_bitmap){4096, 100, data};
		break;
	case PROTO_WRITE:
		m.u.write = (struct proto_write){77, 1ull << 33, sizeof(data), PROTO_WRITE_FUA, data};
		break;
	case PROTO_RESYNC_DATA:
		m.u.write = (struct proto_write){78, 512, 1024, 0, data};
		break;
	case PROTO_WRITE_ACK:
	case PROTO_FLUSH_ACK:
		m.u.ack = (struct proto_ack){79, PROTO_STATUS_IO_ERROR, 0};
		break;
	case PROTO_FLUSH:
		m.u.flush.request_id = 80;
		break;
	case PROTO_RESYNC_READ:
		m.u.range = (struct proto_range){81, 8192, 65536, 0};
		break;
	case PROTO_VERIFY:
		m.u.range = (struct proto_range){82, 8192, 65536, 4096};
		break;
	case PROTO_VERIFY_DIGEST:
		m.u.digest = (struct proto_verify_digest){83, 8192, 4096, 2, digests};
		break;
	case PROTO_DIGEST_READ:
		m.u.range = (struct proto_range){84, 1ull << 20, 1u << 20, 65536};
		break;
	case PROTO_DIGEST_DATA:
		/* two SHA-256 digests: the data buffer stands in for them */
		m.u.digest = (struct proto_verify_digest){85, 1ull << 20, 65536, 2, data};
		break;
	case PROTO_PING:
		m.u.ping = (struct proto_ping){123456, 0};
		break;
	case PROTO_PONG:
		m.u.ping = (struct proto_ping){123999, 123456};
		break;
	case PROTO_STATE:
		m.u.state = (struct proto_state){PROTO_STATE_SCSI, 1, PROTO_REASON_SYNCING, 10, data};
		break;
	case PROTO_GOODBYE:
		m.u.goodbye.reason = PROTO_BYE_AUTH;
		break;
	case PROTO_COMPARE_AND_WRITE:
		m.u.caw = (struct proto_compare_and_write){84, 1ull << 30, sizeof(data) / 2, PROTO_WRITE_FUA, data};
		break;
	case PROTO_COMPARE_AND_WRITE_ACK:
		m.u.ack = (struct proto_ack){85, PROTO_STATUS_MISCOMPARE, 1000};
		break;
	default:
		fail();
	}
	return m;
}

static size_t encode(struct proto_tx *tx, const struct proto_msg *m, uint8_t *buf)
{
	struct proto_frame f;
	size_t n;

	assert_int_equal(proto_encode(tx, m, &f), 0);
	n = proto_frame_flatten(&f, buf, FRAME_MAX);
	assert_true(n > 0);
	return n;
}

/* Feeds a whole buffer; returns the first non-NEED_MORE result (or NEED_MORE). */
static enum proto_error feed_all(struct proto_rx *rx, const uint8_t *buf, size_t len, struct proto_msg *m)
{
	size_t used;
	enum proto_error e = proto_rx_feed(rx, buf, len, &used, m);

	if (e == PROTO_OK)
		assert_int_equal(used, len);
	return e;
}

/* Two messages are equal when a fresh encoder frames them into the same bytes. */
static void assert_same_message(const struct proto_msg *a, const struct proto_msg *b)
{
	struct proto_tx *ta = proto_tx_new(), *tb = proto_tx_new();
	struct proto_frame fa, fb;

	assert_int_equal(a->type, b->type);
	assert_int_equal(proto_encode(ta, a, &fa), 0);
	assert_int_equal(proto_encode(tb, b, &fb), 0);
	assert_int_equal(fa.head_len, fb.head_len);
	assert_memory_equal(fa.head, fb.head, fa.head_len);
	assert_int_equal(fa.data_len, fb.data_len);
	if (fa.data_len > 0)
		assert_memory_equal(fa.data, fb.data, fa.data_len);
	proto_tx_free(ta);
	proto_tx_free(tb);
}

/* version 0: no tags. */
static void round_trip_all(unsigned version)
{
	struct proto_tx *tx = proto_tx_new();
	struct proto_rx *rx = proto_rx_new(PROTO_MAX_PAYLOAD);
	uint8_t *buf = malloc(FRAME_MAX);

	if (version != 0) {
		assert_int_equal(proto_tx_set_key(tx, key_a, version), 0);
		assert_int_equal(proto_rx_set_key(rx, key_a, version), 0);
	}
	for (int t = PROTO_HELLO; t < PROTO_TYPE_END; t++) {
		struct proto_msg in = sample(t), out;
		size_t n = encode(tx, &in, buf);

		assert_int_equal(feed_all(rx, buf, n, &out), PROTO_OK);
		assert_same_message(&in, &out);
		if (t == PROTO_VERIFY_DIGEST) {
			assert_int_equal(proto_digest_at(&out.u.digest, 0), 0xdeadbeef);
			assert_int_equal(proto_digest_at(&out.u.digest, 1), 0x01234567);
			assert_int_equal(proto_digest_at(&out.u.digest, 2), 0);
		}
	}
	free(buf);
	proto_rx_free(rx);
	proto_tx_free(tx);
}

static void test_every_message_type_round_trips_plain(void **state) { round_trip_all(0); }
static void test_every_message_type_round_trips_with_hmac(void **state) { round_trip_all(1); }
static void test_every_message_type_round_trips_with_gmac(void **state) { round_trip_all(PROTO_VERSION_GMAC); }

/* Encodes one WRITE with the tags of protocol `version`, then lets `mutate` spoil it;
 * returns the decoder's verdict. */
static enum proto_error corrupted_in(unsigned version, void (*mutate)(uint8_t *buf, size_t *len), bool rx_keyed)
{
	struct proto_tx *tx = proto_tx_new();
	struct proto_rx *rx = proto_rx_new(PROTO_MAX_PAYLOAD);
	struct proto_msg m = sample(PROTO_WRITE), out;
	uint8_t *buf = malloc(FRAME_MAX);
	size_t n;
	enum proto_error e;

	proto_tx_set_key(tx, key_a, version);
	if (rx_keyed)
		proto_rx_set_key(rx, key_a, version);
	n = encode(tx, &m, buf);
	mutate(buf, &n);
	e = feed_all(rx, buf, n, &out);
	if (e != PROTO_OK && e != PROTO_NEED_MORE) {
		size_t used;

		assert_true(strlen(proto_rx_error(rx)) > 0);
		/* The decoder stays stopped. */
		assert_int_equal(proto_rx_feed(rx, buf, n, &used, &out), PROTO_ERR_FAILED);
	}
	free(buf);
	proto_rx_free(rx);
	proto_tx_free(tx);
	return e;
}

/* Protocol 1: header and payload CRCs and an HMAC tag. */
static enum proto_error corrupted(void (*mutate)(uint8_t *buf, size_t *len), bool rx_keyed)
{
	return corrupted_in(1, mutate, rx_keyed);
}

static void reseal_header(uint8_t *buf) { put_be32(buf + 28, crc32c(buf, 28)); }

static void flip_header_length(uint8_t *b, size_t *n) { b[17] ^= 0x01; }
static void flip_header_seq(uint8_t *b, size_t *n) { b[12] ^= 0x80; }
static void flip_payload(uint8_t *b, size_t *n) { b[PROTO_HEADER_LEN + 100] ^= 0x04; }
static void flip_tag(uint8_t *b, size_t *n) { b[*n - 1] ^= 0x10; }
static void truncate_last(uint8_t *b, size_t *n) { (*n)--; }
static void bad_magic(uint8_t *b, size_t *n) { b[0] = 'X'; }
static void bad_version(uint8_t *b, size_t *n) { b[4] = 2; reseal_header(b); }
static void bad_type(uint8_t *b, size_t *n) { b[5] = 200; reseal_header(b); }
static void oversize(uint8_t *b, size_t *n) { put_be32(b + 16, PROTO_MAX_PAYLOAD + 1); reseal_header(b); *n = 32; }
static void strip_tag(uint8_t *b, size_t *n) { b[7] = 0; reseal_header(b); *n -= PROTO_TAG_LEN; }

/* A payload change with both CRCs recomputed, as a forger would: only the tag catches it. */
static void forge_payload(uint8_t *b, size_t *n)
{
	uint32_t len = get_be32(b + 16);

	b[PROTO_HEADER_LEN + 100] ^= 0x04;
	put_be32(b + 20, crc32c(b + PROTO_HEADER_LEN, len));
	reseal_header(b);
}

/* An unknown WRITE flag with valid CRCs and tag is a field error. */
static void unknown_flag_unkeyed(uint8_t *b, size_t *n)
{
	b[7] = 0;
	b[PROTO_HEADER_LEN + 23] |= 0x80;
	*n -= PROTO_TAG_LEN;
	put_be32(b + 20, crc32c(b + PROTO_HEADER_LEN, get_be32(b + 16)));
	reseal_header(b);
}

static void test_header_bit_flip_is_a_header_crc_error(void **state)
{
	assert_int_equal(corrupted(flip_header_length, true), PROTO_ERR_HEADER_CRC);
	assert_int_equal(corrupted(flip_header_seq, true), PROTO_ERR_HEADER_CRC);
}

static void test_payload_bit_flip_is_a_payload_crc_error(void **state)
{
	assert_int_equal(corrupted(flip_payload, true), PROTO_ERR_PAYLOAD_CRC);
}

static void test_tag_bit_flip_is_a_mac_error(void **state)
{
	assert_int_equal(corrupted(flip_tag, true), PROTO_ERR_MAC);
}

static void test_forged_payload_with_fixed_crcs_is_a_mac_error(void **state)
{
	assert_int_equal(corrupted(forge_payload, true), PROTO_ERR_MAC);
}

static void test_truncated_frame_is_never_delivered(void **state)
{
	assert_int_equal(corrupted(truncate_last, true), PROTO_NEED_MORE);
}

static void test_wrong_magic_version_type_refused(void **state)
{
	assert_int_equal(corrupted(bad_magic, true), PROTO_ERR_MAGIC);
	assert_int_equal(corrupted(bad_version, true), PROTO_ERR_VERSION);
	assert_int_equal(corrupted(bad_type, true), PROTO_ERR_TYPE);
}

static void test_oversize_length_refused_from_the_header_alone(void **state)
{
	assert_int_equal(corrupted(oversize, true), PROTO_ERR_OVERSIZE);
}

static void test_mac_mode_cannot_be_stripped_or_imposed(void **state)
{
	assert_int_equal(corrupted(strip_tag, true), PROTO_ERR_MAC_MODE);
	/* A tagged frame to a receiver without keys. */
	assert_int_equal(corrupted(flip_payload, false), PROTO_ERR_MAC_MODE);
}

static void test_bad_field_with_valid_crcs_refused(void **state)
{
	assert_int_equal(corrupted(unknown_flag_unkeyed, false), PROTO_ERR_FIELD);
}

/* Sends one frame under key_a `copies` times to a receiver keyed with `rx_key`, both at
 * protocol `version`; returns the verdict on the last copy. */
static enum proto_error send_keyed(unsigned version, const uint8_t *rx_key, int copies)
{
	struct proto_tx *tx = proto_tx_new();
	struct proto_rx *rx = proto_rx_new(4096);
	struct proto_msg m = sample(PROTO_PING), out;
	uint8_t buf[256];
	size_t n;
	enum proto_error e = PROTO_NEED_MORE;

	proto_tx_set_key(tx, key_a, version);
	proto_rx_set_key(rx, rx_key, version);
	n = encode(tx, &m, buf);
	for (int i = 0; i < copies; i++)
		e = feed_all(rx, buf, n, &out);
	proto_rx_free(rx);
	proto_tx_free(tx);
	return e;
}

static void test_replayed_frame_is_a_sequence_error(void **state)
{
	for (unsigned v = PROTO_VERSION_MIN; v <= PROTO_VERSION_MAX; v++) {
		assert_int_equal(send_keyed(v, key_a, 1), PROTO_OK);
		assert_int_equal(send_keyed(v, key_a, 2), PROTO_ERR_SEQUENCE);
	}
}

static void test_frame_under_the_other_directions_key_fails(void **state)
{
	for (unsigned v = PROTO_VERSION_MIN; v <= PROTO_VERSION_MAX; v++)
		assert_int_equal(send_keyed(v, key_b, 1), PROTO_ERR_MAC);
}

/* GMAC: no payload CRC (the tag covers the payload), so a flipped payload bit, or a
 * forger's recomputed CRC, is caught by the tag or refused from the header. */
static void test_gmac_frames_are_guarded_by_the_tag_alone(void **state)
{
	struct proto_tx *tx = proto_tx_new();
	struct proto_msg m = sample(PROTO_WRITE);
	struct proto_frame f;

	assert_int_equal(proto_tx_set_key(tx, key_a, PROTO_VERSION_GMAC), 0);
	assert_int_equal(proto_encode(tx, &m, &f), 0);
	assert_int_equal(get_be32(f.head + 20), 0);
	assert_int_equal(f.tag_len, PROTO_TAG_LEN);
	proto_tx_free(tx);
	assert_int_equal(corrupted_in(PROTO_VERSION_GMAC, flip_payload, true), PROTO_ERR_MAC);
	assert_int_equal(corrupted_in(PROTO_VERSION_GMAC, flip_tag, true), PROTO_ERR_MAC);
	assert_int_equal(corrupted_in(PROTO_VERSION_GMAC, flip_header_seq, true), PROTO_ERR_HEADER_CRC);
	assert_int_equal(corrupted_in(PROTO_VERSION_GMAC, forge_payload, true), PROTO_ERR_FIELD);
	assert_int_equal(corrupted_in(PROTO_VERSION_GMAC, strip_tag, true), PROTO_ERR_MAC_MODE);
}

/* The same frame content gets another tag under another sequence number (the nonce), and
 * another under the other protocol version's MAC. */
static void test_tags_differ_by_sequence_number_and_version(void **state)
{
	uint8_t tags[3][PROTO_TAG_LEN];

	for (int i = 0; i < 3; i++) {
		struct proto_tx *tx = proto_tx_new();
		struct proto_msg m = sample(PROTO_PING);
		struct proto_frame f;

		assert_int_equal(proto_tx_set_key(tx, key_a, i == 2 ? 1 : PROTO_VERSION_GMAC), 0);
		if (i == 1)
			assert_int_equal(proto_encode(tx, &m, &f), 0); /* uses sequence 0 */
		assert_int_equal(proto_encode(tx, &m, &f), 0);
		memcpy(tags[i], f.tag, PROTO_TAG_LEN);
		proto_tx_free(tx);
	}
	assert_memory_not_equal(tags[0], tags[1], PROTO_TAG_LEN);
	assert_memory_not_equal(tags[0], tags[2], PROTO_TAG_LEN);
}

static void test_unknown_version_gets_no_key(void **state)
{
	struct proto_tx *tx = proto_tx_new();
	struct proto_rx *rx = proto_rx_new(4096);

	assert_int_equal(proto_tx_set_key(tx, key_a, 0), -1);
	assert_int_equal(proto_rx_set_key(rx, key_a, PROTO_VERSION_MAX + 1), -1);
	proto_rx_free(rx);
	proto_tx_free(tx);
}

static void test_small_receiver_limit_refuses_big_write(void **state)
{
	struct proto_tx *tx = proto_tx_new();
	struct proto_rx *rx = proto_rx_new(1024);
	struct proto_msg m = sample(PROTO_WRITE), out;
	uint8_t *buf = malloc(FRAME_MAX);
	size_t n = encode(tx, &m, buf), used;

	/* Refused as soon as the header is in, without waiting for 4 KiB. */
	assert_int_equal(proto_rx_feed(rx, buf, PROTO_HEADER_LEN, &used, &out), PROTO_ERR_OVERSIZE);
	assert_true(n > PROTO_HEADER_LEN);
	free(buf);
	proto_rx_free(rx);
	proto_tx_free(tx);
}

static void test_encoder_refuses_invalid_messages(void **state)
{
	struct proto_tx *tx = proto_tx_new();
	struct proto_frame f;
	struct proto_msg m;

	m = sample(PROTO_WRITE);
	m.u.write.length = 0;
	assert_int_equal(proto_encode(tx, &m, &f), -1);
	m = sample(PROTO_WRITE);
	m.u.write.offset = UINT64_MAX - 10;
	assert_int_equal(proto_encode(tx, &m, &f), -1);
	m = sample(PROTO_WRITE);
	m.u.write.length = PROTO_MAX_DATA + 1;
	assert_int_equal(proto_encode(tx, &m, &f), -1);
	m = sample(PROTO_RESYNC_DATA);
	m.u.write.flags = PROTO_WRITE_FUA;
	assert_int_equal(proto_encode(tx, &m, &f), -1);
	m = sample(PROTO_HELLO);
	m.u.hello.node_id = 0;
	assert_int_equal(proto_encode(tx, &m, &f), -1);
	m = sample(PROTO_HELLO);
	m.u.hello.version_min = 4;
	assert_int_equal(proto_encode(tx, &m, &f), -1);
	m = sample(PROTO_GENERATIONS);
	m.u.generations.extent_size = 5000;
	assert_int_equal(proto_encode(tx, &m, &f), -1);
	m = sample(PROTO_GENERATIONS);
	m.u.generations.initial_sync = 4;
	assert_int_equal(proto_encode(tx, &m, &f), -1);
	m = sample(PROTO_GENERATIONS);
	m.u.generations.failover = 0;
	assert_int_equal(proto_encode(tx, &m, &f), -1);
	m = sample(PROTO_GENERATIONS);
	m.u.generations.flags = 0x80;
	assert_int_equal(proto_encode(tx, &m, &f), -1);
	m = sample(PROTO_WRITE);
	m.u.write.flags = PROTO_WRITE_DISCARD;
	m.u.write.length = PROTO_MAX_DISCARD + 1;
	assert_int_equal(proto_encode(tx, &m, &f), -1);
	m = sample(PROTO_VERIFY);
	m.u.range.length = 4097;
	assert_int_equal(proto_encode(tx, &m, &f), -1);
	m = sample(PROTO_VERIFY_DIGEST);
	m.u.digest.count = UINT32_MAX;
	assert_int_equal(proto_encode(tx, &m, &f), -1);
	m = sample(PROTO_DIGEST_DATA); /* 32-byte digests: fewer fit in a frame */
	m.u.digest.count = PROTO_MAX_DATA / PROTO_STRONG_DIGEST_LEN + 1;
	assert_int_equal(proto_encode(tx, &m, &f), -1);
	m = sample(PROTO_DIGEST_READ);
	m.u.range.block_size = 0;
	assert_int_equal(proto_encode(tx, &m, &f), -1);
	m = sample(PROTO_STATE);
	m.u.state.kind = PROTO_STATE_NODE; /* a node state has no body */
	assert_int_equal(proto_encode(tx, &m, &f), -1);
	m = sample(PROTO_GOODBYE);
	m.u.goodbye.reason = 0;
	assert_int_equal(proto_encode(tx, &m, &f), -1);
	m = sample(PROTO_COMPARE_AND_WRITE);
	m.u.caw.length = PROTO_MAX_COMPARE + 1; /* both halves must fit one message */
	assert_int_equal(proto_encode(tx, &m, &f), -1);
	m = sample(PROTO_COMPARE_AND_WRITE);
	m.u.caw.flags = PROTO_WRITE_DISCARD;
	assert_int_equal(proto_encode(tx, &m, &f), -1);
	m = sample(PROTO_COMPARE_AND_WRITE_ACK);
	m.u.ack.miscompare = PROTO_MAX_COMPARE;
	assert_int_equal(proto_encode(tx, &m, &f), -1);
	m = sample(PROTO_COMPARE_AND_WRITE_ACK);
	m.u.ack.status = PROTO_STATUS_OK; /* an offset only with a miscompare */
	assert_int_equal(proto_encode(tx, &m, &f), -1);
	m = sample(PROTO_COMPARE_AND_WRITE_ACK);
	m.type = PROTO_WRITE_ACK; /* a plain write never miscompares */
	assert_int_equal(proto_encode(tx, &m, &f), -1);
	m.type = PROTO_TYPE_END;
	assert_int_equal(proto_encode(tx, &m, &f), -1);
	/* Nothing was consumed: the next valid frame is sequence 0. */
	m = sample(PROTO_PING);
	assert_int_equal(proto_encode(tx, &m, &f), 0);
	assert_int_equal(get_be64(f.head + 8), 0);
	proto_tx_free(tx);
}

static void test_discard_carries_no_data_and_may_exceed_the_data_limit(void **state)
{
	struct proto_tx *tx = proto_tx_new();
	struct proto_rx *rx = proto_rx_new(PROTO_MAX_PAYLOAD);
	struct proto_msg m = sample(PROTO_WRITE), got;
	struct proto_frame f;
	uint8_t buf[PROTO_HEAD_MAX];
	size_t n, used;

	m.u.write.flags = PROTO_WRITE_DISCARD;
	m.u.write.length = PROTO_MAX_DISCARD;
	assert_int_equal(proto_encode(tx, &m, &f), 0);
	assert_int_equal(f.data_len, 0);
	n = proto_frame_flatten(&f, buf, sizeof(buf));
	assert_int_equal(proto_rx_feed(rx, buf, n, &used, &got), PROTO_OK);
	assert_int_equal(got.u.write.length, PROTO_MAX_DISCARD);
	assert_int_equal(got.u.write.flags, PROTO_WRITE_DISCARD);
	proto_tx_free(tx);
	proto_rx_free(rx);
}

static void test_byte_at_a_time_stream_of_many_frames(void **state)
{
	struct proto_tx *tx = proto_tx_new();
	struct proto_rx *rx = proto_rx_new(PROTO_MAX_PAYLOAD);
	uint8_t *stream = malloc(65536);
	size_t len = 0, used;
	int got = 0;

	proto_tx_set_key(tx, key_a, PROTO_VERSION_MAX);
	proto_rx_set_key(rx, key_a, PROTO_VERSION_MAX);
	for (int t = PROTO_HELLO; t < PROTO_TYPE_END; t++) {
		struct proto_msg m = sample(t);

		len += encode(tx, &m, stream + len);
	}
	for (size_t i = 0; i < len; i++) {
		struct proto_msg out;
		enum proto_error e = proto_rx_feed(rx, stream + i, 1, &used, &out);

		assert_int_equal(used, 1);
		if (e == PROTO_OK) {
			struct proto_msg in = sample(PROTO_HELLO + got);

			assert_same_message(&in, &out);
			got++;
		} else {
			assert_int_equal(e, PROTO_NEED_MORE);
		}
	}
	assert_int_equal(got, PROTO_TYPE_END - PROTO_HELLO);
	free(stream);
	proto_rx_free(rx);
	proto_tx_free(tx);
}

static void test_feed_stops_at_each_frame_end(void **state)
{
	struct proto_tx *tx = proto_tx_new();
	struct proto_rx *rx = proto_rx_new(8192);
	struct proto_msg a = sample(PROTO_PING), b = sample(PROTO_WRITE), out;
	uint8_t *buf = malloc(16384);
	size_t n1 = encode(tx, &a, buf), n2 = encode(tx, &b, buf + n1), used;

	assert_int_equal(proto_rx_feed(rx, buf, n1 + n2, &used, &out), PROTO_OK);
	assert_int_equal(used, n1);
	assert_int_equal(out.type, PROTO_PING);
	assert_int_equal(proto_rx_feed(rx, buf + n1, n2, &used, &out), PROTO_OK);
	assert_int_equal(used, n2);
	/* Zero copy: the data lies in the receiver's buffer, not the sender's. */
	assert_true(out.u.write.data < buf || out.u.write.data >= buf + 16384);
	assert_memory_equal(out.u.write.data, data, sizeof(data));
	free(buf);
	proto_rx_free(rx);
	proto_tx_free(tx);
}

/* The layout on the wire is a contract between two builds: a PING, byte for byte. */
static void test_wire_layout_of_a_ping(void **state)
{
	static const uint8_t expect_head[PROTO_HEADER_LEN + 16] = {
		'T', 'W', 'H', 'A', 1, PROTO_PING, 0, 0,  /* magic, version, type, flags */
		0, 0, 0, 0, 0, 0, 0, 0,                     /* sequence 0 */
		0, 0, 0, 16,                                /* payload length */
		0, 0, 0, 0,                                 /* payload CRC, checked below */
		0, 0, 0, 0,                                 /* reserved */
		0, 0, 0, 0,                                 /* header CRC, checked below */
		0, 0, 0, 0, 0, 0, 0x30, 0x39,               /* sent_ms 12345 */
		0, 0, 0, 0, 0, 0, 0, 0,                     /* echo_ms */
	};
	struct proto_tx *tx = proto_tx_new();
	struct proto_msg m = {.type = PROTO_PING, .u.ping.sent_ms = 12345};
	struct proto_frame f;
	uint8_t masked[sizeof(expect_head)];

	assert_int_equal(proto_encode(tx, &m, &f), 0);
	assert_int_equal(f.head_len, sizeof(expect_head));
	assert_int_equal(f.data_len + f.tag_len, 0);
	assert_int_equal(get_be32(f.head + 20), crc32c(f.head + PROTO_HEADER_LEN, 16));
	assert_int_equal(get_be32(f.head + 28), crc32c(f.head, 28));
	memcpy(masked, f.head, sizeof(masked));
	memset(masked + 20, 0, 4);
	memset(masked + 28, 0, 4);
	assert_memory_equal(masked, expect_head, sizeof(expect_head));
	proto_tx_free(tx);
}

static void test_names_for_the_log(void **state)
{
	assert_string_equal(proto_type_name(PROTO_WRITE), "WRITE");
	assert_string_equal(proto_type_name(0), "unknown");
	assert_string_equal(proto_error_name(PROTO_ERR_MAC), "bad MAC");
	assert_string_equal(proto_goodbye_name(PROTO_BYE_AUTH), "authentication failed");
	assert_string_equal(proto_goodbye_name(99), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_message_type_round_trips_plain),
		cmocka_unit_test(test_discard_carries_no_data_and_may_exceed_the_data_limit),
		cmocka_unit_test(test_every_message_type_round_trips_with_hmac),
		cmocka_unit_test(test_every_message_type_round_trips_with_gmac),
		cmocka_unit_test(test_gmac_frames_are_guarded_by_the_tag_alone),
		cmocka_unit_test(test_tags_differ_by_sequence_number_and_version),
		cmocka_unit_test(test_unknown_version_gets_no_key),
		cmocka_unit_test(test_header_bit_flip_is_a_header_crc_error),
		cmocka_unit_test(test_payload_bit_flip_is_a_payload_crc_error),
		cmocka_unit_test(test_tag_bit_flip_is_a_mac_error),
		cmocka_unit_test(test_forged_payload_with_fixed_crcs_is_a_mac_error),
		cmocka_unit_test(test_truncated_frame_is_never_delivered),
		cmocka_unit_test(test_wrong_magic_version_type_refused),
		cmocka_unit_test(test_oversize_length_refused_from_the_header_alone),
		cmocka_unit_test(test_mac_mode_cannot_be_stripped_or_imposed),
		cmocka_unit_test(test_bad_field_with_valid_crcs_refused),
		cmocka_unit_test(test_replayed_frame_is_a_sequence_error),
		cmocka_unit_test(test_frame_under_the_other_directions_key_fails),
		cmocka_unit_test(test_small_receiver_limit_refuses_big_write),
		cmocka_unit_test(test_encoder_refuses_invalid_messages),
		cmocka_unit_test(test_byte_at_a_time_stream_of_many_frames),
		cmocka_unit_test(test_feed_stops_at_each_frame_end),
		cmocka_unit_test(test_wire_layout_of_a_ping),
		cmocka_unit_test(test_names_for_the_log),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
