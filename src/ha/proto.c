/* Sync-link framing and messages: one table row per message type, whose decoder is also
 * the encoder's validator, so what we send is exactly what we accept. */
#include "ha/proto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/util.h"

/* Header field offsets. */
enum {
	HDR_MAGIC = 0, HDR_VERSION = 4, HDR_TYPE = 5, HDR_FLAGS = 6, HDR_SEQ = 8,
	HDR_LENGTH = 16, HDR_PAYLOAD_CRC = 20, HDR_RESERVED = 24, HDR_CRC = 28,
};

/* ---- tags ------------------------------------------------------------------------ */

/* One of the two kinds of tag, or none before the keys are set.  GMAC goes through the
 * cipher API rather than EVP_MAC: the latter looks its parameters up by name on every
 * frame, which cost more than the GHASH itself for 4 KiB frames. */
struct proto_mac {
	EVP_MAC_CTX *hmac;   /* protocol 1: HMAC-SHA256 */
	EVP_CIPHER_CTX *gcm; /* protocol 2 on: AES-256-GCM as GMAC */
};

static bool mac_keyed(const struct proto_mac *m)
{
	return m->hmac != NULL || m->gcm != NULL;
}

static void mac_free(struct proto_mac *m)
{
	EVP_MAC_CTX_free(m->hmac);
	EVP_CIPHER_CTX_free(m->gcm);
	m->hmac = NULL;
	m->gcm = NULL;
}

static int mac_set_key(struct proto_mac *m, const uint8_t key[PROTO_KEY_LEN], unsigned version)
{
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC *mac;

	mac_free(m);
	if (version < PROTO_VERSION_MIN || version > PROTO_VERSION_MAX)
		return -1;
	if (version >= PROTO_VERSION_GMAC) {
		if ((m->gcm = EVP_CIPHER_CTX_new()) != NULL &&
		    EVP_EncryptInit_ex(m->gcm, EVP_aes_256_gcm(), NULL, key, NULL) == 1)
			return 0;
	} else if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) != NULL) {
		m->hmac = EVP_MAC_CTX_new(mac);
		EVP_MAC_free(mac);
		if (m->hmac != NULL && EVP_MAC_init(m->hmac, key, PROTO_KEY_LEN, params) == 1)
			return 0;
	}
	mac_free(m);
	return -1;
}

/* GMAC over a and b: AES-GCM with both as additional data and nothing to encrypt. */
static int gmac_tag(EVP_CIPHER_CTX *c, uint64_t seq, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                    uint8_t tag[PROTO_TAG_LEN])
{
	uint8_t iv[12] = {0}, none[16];
	int n;

	put_be64(iv + 4, seq);
	return EVP_EncryptInit_ex(c, NULL, NULL, NULL, iv) == 1 && EVP_EncryptUpdate(c, NULL, &n, a, (int)alen) == 1 &&
	               (blen == 0 || EVP_EncryptUpdate(c, NULL, &n, b, (int)blen) == 1) &&
	               EVP_EncryptFinal_ex(c, none, &n) == 1 &&
	               EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, PROTO_TAG_LEN, tag) == 1
	           ? 0
	           : -1;
}

/* The tag over two pieces (header and fixed part, then the rest) of frame `seq`.  GMAC's
 * nonce is the sequence number: each direction has its own key for one session, and a
 * sequence number is used once in a direction, so no nonce repeats under a key. */
static int mac_tag(struct proto_mac *m, uint64_t seq, const uint8_t *a, size_t alen, const uint8_t *b,
                   size_t blen, uint8_t tag[PROTO_TAG_LEN])
{
	uint8_t full[EVP_MAX_MD_SIZE];
	size_t n = 0;

	if (m->gcm != NULL)
		return gmac_tag(m->gcm, seq, a, alen, b, blen, tag);
	/* A NULL key re-initialises with the key already set. */
	if (EVP_MAC_init(m->hmac, NULL, 0, NULL) != 1 || EVP_MAC_update(m->hmac, a, alen) != 1 ||
	    (blen > 0 && EVP_MAC_update(m->hmac, b, blen) != 1) ||
	    EVP_MAC_final(m->hmac, full, &n, sizeof(full)) != 1 || n < PROTO_TAG_LEN)
		return -1;
	memcpy(tag, full, PROTO_TAG_LEN);
	return 0;
}

/* ---- messages --------------------------------------------------------------------- */

/* Decoders return NULL or the name of the bad field; `var` holds the variable part. */
typedef const char *msg_decode_fn(struct proto_msg *m, const uint8_t *p, const uint8_t *var, uint32_t var_len);
/* Encoders write the fixed part and return the variable part. */
typedef uint32_t msg_encode_fn(const struct proto_msg *m, uint8_t *p, const uint8_t **var);

static bool is_pow2_between(uint32_t v, uint32_t lo, uint32_t hi)
{
	return v >= lo && v <= hi && (v & (v - 1)) == 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

/* A byte range of a device or bitmap: 1..PROTO_MAX_DATA bytes that do not wrap. */
static bool range_ok(uint64_t offset, uint32_t length)
{
	return length > 0 && length <= PROTO_MAX_DATA && offset <= UINT64_MAX - length;
}

static uint32_t enc_hello(const struct proto_msg *m, uint8_t *p, const uint8_t **var)
{
	const struct proto_hello *h = &m->u.hello;

	p[0] = h->version_min;
	p[1] = h->version_max;
	p[2] = h->role;
	p[3] = h->link_kind;
	put_be32(p + 4, 0);
	put_be64(p + 8, h->node_id);
	memcpy(p + 16, h->device_uuid, PROTO_UUID_LEN);
	return 0;
}

static const char *dec_hello(struct proto_msg *m, const uint8_t *p, const uint8_t *var, uint32_t var_len)
{
	struct proto_hello *h = &m->u.hello;

	h->version_min = p[0];
	h->version_max = p[1];
	h->role = p[2];
	h->link_kind = p[3];
	h->node_id = get_be64(p + 8);
	memcpy(h->device_uuid, p + 16, PROTO_UUID_LEN);
	if (h->version_min == 0 || h->version_min > h->version_max)
		return "version range";
	if (h->role != PROTO_ROLE_PRIMARY && h->role != PROTO_ROLE_SECONDARY)
		return "role";
	if (h->link_kind != PROTO_LINK_SYNC && h->link_kind != PROTO_LINK_HEARTBEAT)
		return "link kind";
	if (get_be32(p + 4) != 0)
		return "reserved";
	if (h->node_id == 0)
		return "node id";
	if (all_zero(h->device_uuid, PROTO_UUID_LEN))
		return "device uuid";
	return NULL;
}

static uint32_t enc_auth(const struct proto_msg *m, uint8_t *p, const uint8_t **var)
{
	p[0] = m->u.auth.kind;
	p[1] = p[2] = p[3] = 0;
	memcpy(p + 4, m->u.auth.value, PROTO_NONCE_LEN);
	return 0;
}

static const char *dec_auth(struct proto_msg *m, const uint8_t *p, const uint8_t *var, uint32_t var_len)
{
	m->u.auth.kind = p[0];
	memcpy(m->u.auth.value, p + 4, PROTO_NONCE_LEN);
	if (p[0] != PROTO_AUTH_NONCE && p[0] != PROTO_AUTH_PROOF)
		return "auth kind";
	if ((p[1] | p[2] | p[3]) != 0)
		return "reserved";
	return NULL;
}

static uint32_t enc_generations(const struct proto_msg *m, uint8_t *p, const uint8_t **var)
{
	const struct proto_generations *g = &m->u.generations;

	generation_encode(&g->gen, p);
	p[40] = g->sync_state;
	p[41] = g->initial_sync;
	p[42] = g->failover;
	p[43] = g->flags;
	put_be32(p + 44, g->extent_size);
	put_be64(p + 48, g->device_size);
	return 0;
}

static const char *dec_generations(struct proto_msg *m, const uint8_t *p, const uint8_t *var, uint32_t var_len)
{
	struct proto_generations *g = &m->u.generations;

	if (generation_decode(p, &g->gen) != 0)
		return "generation flags";
	g->sync_state = p[40];
	g->initial_sync = p[41];
	g->failover = p[42];
	g->flags = p[43];
	g->extent_size = get_be32(p + 44);
	g->device_size = get_be64(p + 48);
	if (g->sync_state < PROTO_SYNC_IN_SYNC || g->sync_state > PROTO_SYNC_ALONE)
		return "sync state";
	if (g->initial_sync < 1 || g->initial_sync > 3)
		return "initial sync mode";
	if (g->failover < 1 || g->failover > 2)
		return "failover strategy";
	if ((g->flags & ~PROTO_GEN_FLAGS_KNOWN) != 0)
		return "generations flags";
	if (!is_pow2_between(g->extent_size, 4096, 1u << 30))
		return "extent size";
	if (g->device_size == 0)
		return "device size";
	return NULL;
}

static uint32_t enc_bitmap(const struct proto_msg *m, uint8_t *p, const uint8_t **var)
{
	put_be64(p, m->u.bitmap.offset);
	put_be32(p + 8, m->u.bitmap.length);
	put_be32(p + 12, 0);
	*var = m->u.bitmap.bytes;
	return m->u.bitmap.length;
}

static const char *dec_bitmap(struct proto_msg *m, const uint8_t *p, const uint8_t *var, uint32_t var_len)
{
	struct proto_bitmap *b = &m->u.bitmap;

	b->offset = get_be64(p);
	b->length = get_be32(p + 8);
	b->bytes = var;
	if (!range_ok(b->offset, b->length) || b->length != var_len)
		return "bitmap range";
	if (get_be32(p + 12) != 0)
		return "reserved";
	return NULL;
}

static uint32_t enc_write(const struct proto_msg *m, uint8_t *p, const uint8_t **var)
{
	const struct proto_write *w = &m->u.write;

	put_be64(p, w->request_id);
	put_be64(p + 8, w->offset);
	put_be32(p + 16, w->length);
	put_be32(p + 20, w->flags);
	if (m->type == PROTO_WRITE && (w->flags & PROTO_WRITE_DISCARD))
		return 0;
	*var = w->data;
	return w->length;
}

static const char *dec_write(struct proto_msg *m, const uint8_t *p, const uint8_t *var, uint32_t var_len)
{
	struct proto_write *w = &m->u.write;

	w->request_id = get_be64(p);
	w->offset = get_be64(p + 8);
	w->length = get_be32(p + 16);
	w->flags = get_be32(p + 20);
	w->data = var;
	if (m->type == PROTO_WRITE && (w->flags & PROTO_WRITE_DISCARD)) {
		if (w->length == 0 || w->length > PROTO_MAX_DISCARD || w->offset > UINT64_MAX - w->length ||
		    var_len != 0)
			return "discard range";
	} else if (!range_ok(w->offset, w->length) || w->length != var_len) {
		return "data range";
	}
	if ((w->flags & ~(m->type == PROTO_WRITE ? PROTO_WRITE_FLAGS_KNOWN : 0u)) != 0)
		return "write flags";
	return NULL;
}

static uint32_t enc_ack(const struct proto_msg *m, uint8_t *p, const uint8_t **var)
{
	put_be64(p, m->u.ack.request_id);
	put_be32(p + 8, m->u.ack.status);
	put_be32(p + 12, m->u.ack.miscompare);
	return 0;
}

static const char *dec_ack(struct proto_msg *m, const uint8_t *p, const uint8_t *var, uint32_t var_len)
{
	bool caw = m->type == PROTO_COMPARE_AND_WRITE_ACK;

	m->u.ack.request_id = get_be64(p);
	m->u.ack.status = get_be32(p + 8);
	m->u.ack.miscompare = get_be32(p + 12);
	if (m->u.ack.status >= PROTO_STATUS_END || (!caw && m->u.ack.status == PROTO_STATUS_MISCOMPARE))
		return "status";
	if (m->u.ack.status == PROTO_STATUS_MISCOMPARE ? m->u.ack.miscompare >= PROTO_MAX_COMPARE
	                                                : m->u.ack.miscompare != 0)
		return caw ? "miscompare offset" : "reserved";
	return NULL;
}

static uint32_t enc_caw(const struct proto_msg *m, uint8_t *p, const uint8_t **var)
{
	const struct proto_compare_and_write *c = &m->u.caw;

	put_be64(p, c->request_id);
	put_be64(p + 8, c->offset);
	put_be32(p + 16, c->length);
	put_be32(p + 20, c->flags);
	*var = c->data;
	/* A length too large to encode is refused by the decoder through the length check. */
	return c->length <= PROTO_MAX_COMPARE ? 2 * c->length : 0;
}

static const char *dec_caw(struct proto_msg *m, const uint8_t *p, const uint8_t *var, uint32_t var_len)
{
	struct proto_compare_and_write *c = &m->u.caw;

	c->request_id = get_be64(p);
	c->offset = get_be64(p + 8);
	c->length = get_be32(p + 16);
	c->flags = get_be32(p + 20);
	c->data = var;
	if (c->length > PROTO_MAX_COMPARE || !range_ok(c->offset, c->length) || var_len != 2 * c->length)
		return "compare range";
	if ((c->flags & ~PROTO_WRITE_FUA) != 0)
		return "compare and write flags";
	return NULL;
}

static uint32_t enc_flush(const struct proto_msg *m, uint8_t *p, const uint8_t **var)
{
	put_be64(p, m->u.flush.request_id);
	return 0;
}

static const char *dec_flush(struct proto_msg *m, const uint8_t *p, const uint8_t *var, uint32_t var_len)
{
	m->u.flush.request_id = get_be64(p);
	return NULL;
}

static uint32_t enc_range(const struct proto_msg *m, uint8_t *p, const uint8_t **var)
{
	const struct proto_range *r = &m->u.range;

	put_be64(p, r->request_id);
	put_be64(p + 8, r->offset);
	put_be32(p + 16, r->length);
	put_be32(p + 20, r->block_size);
	return 0;
}

static const char *dec_range(struct proto_msg *m, const uint8_t *p, const uint8_t *var, uint32_t var_len)
{
	struct proto_range *r = &m->u.range;

	r->request_id = get_be64(p);
	r->offset = get_be64(p + 8);
	r->length = get_be32(p + 16);
	r->block_size = get_be32(p + 20);
	if (!range_ok(r->offset, r->length))
		return "range";
	if (m->type == PROTO_RESYNC_READ)
		return r->block_size == 0 ? NULL : "block size";
	if (!is_pow2_between(r->block_size, 512, PROTO_MAX_DATA) || r->length % r->block_size != 0)
		return "block size";
	return NULL;
}

static uint32_t digest_len(enum proto_type t)
{
	return t == PROTO_DIGEST_DATA ? PROTO_STRONG_DIGEST_LEN : 4;
}

static uint32_t enc_digest(const struct proto_msg *m, uint8_t *p, const uint8_t **var)
{
	const struct proto_verify_digest *d = &m->u.digest;
	uint32_t each = digest_len(m->type);

	put_be64(p, d->request_id);
	put_be64(p + 8, d->offset);
	put_be32(p + 16, d->block_size);
	put_be32(p + 20, d->count);
	*var = d->digests;
	/* A count too large to encode is refused by the decoder through the length check. */
	return d->count <= PROTO_MAX_DATA / each ? d->count * each : 0;
}

static const char *dec_digest(struct proto_msg *m, const uint8_t *p, const uint8_t *var, uint32_t var_len)
{
	struct proto_verify_digest *d = &m->u.digest;

	d->request_id = get_be64(p);
	d->offset = get_be64(p + 8);
	d->block_size = get_be32(p + 16);
	d->count = get_be32(p + 20);
	d->digests = var;
	if (!is_pow2_between(d->block_size, 512, PROTO_MAX_DATA))
		return "block size";
	if (d->count == 0 || d->count > PROTO_MAX_DATA / digest_len(m->type) || var_len != d->count * digest_len(m->type))
		return "digest count";
	if (d->offset > UINT64_MAX - (uint64_t)d->count * d->block_size)
		return "range";
	return NULL;
}

uint32_t proto_digest_at(const struct proto_verify_digest *d, uint32_t i)
{
	return i < d->count ? get_be32(d->digests + 4 * (size_t)i) : 0;
}

static uint32_t enc_ping(const struct proto_msg *m, uint8_t *p, const uint8_t **var)
{
	put_be64(p, m->u.ping.sent_ms);
	put_be64(p + 8, m->u.ping.echo_ms);
	return 0;
}

static const char *dec_ping(struct proto_msg *m, const uint8_t *p, const uint8_t *var, uint32_t var_len)
{
	m->u.ping.sent_ms = get_be64(p);
	m->u.ping.echo_ms = get_be64(p + 8);
	return m->type == PROTO_PING && m->u.ping.echo_ms != 0 ? "echo" : NULL;
}

static uint32_t enc_state(const struct proto_msg *m, uint8_t *p, const uint8_t **var)
{
	const struct proto_state *s = &m->u.state;

	put_be16(p, s->kind);
	p[2] = s->serving;
	p[3] = s->reason;
	put_be32(p + 4, s->length);
	*var = s->body;
	return s->length;
}

static const char *dec_state(struct proto_msg *m, const uint8_t *p, const uint8_t *var, uint32_t var_len)
{
	struct proto_state *s = &m->u.state;

	s->kind = get_be16(p);
	s->serving = p[2];
	s->reason = p[3];
	s->length = get_be32(p + 4);
	s->body = var;
	if (s->kind != PROTO_STATE_NODE && s->kind != PROTO_STATE_SCSI)
		return "state kind";
	if (s->serving > 1)
		return "serving";
	if (s->reason >= PROTO_REASON_END)
		return "reason";
	if (s->length != var_len || (s->kind == PROTO_STATE_NODE && s->length != 0))
		return "body length";
	return NULL;
}

static uint32_t enc_goodbye(const struct proto_msg *m, uint8_t *p, const uint8_t **var)
{
	put_be32(p, m->u.goodbye.reason);
	put_be32(p + 4, 0);
	return 0;
}

static const char *dec_goodbye(struct proto_msg *m, const uint8_t *p, const uint8_t *var, uint32_t var_len)
{
	m->u.goodbye.reason = get_be32(p);
	if (m->u.goodbye.reason == 0 || m->u.goodbye.reason >= PROTO_BYE_END)
		return "goodbye reason";
	if (get_be32(p + 4) != 0)
		return "reserved";
	return NULL;
}

struct msg_desc {
	const char *name;
	uint32_t fixed_len;
	bool has_var; /* a variable part may follow the fixed one */
	msg_encode_fn *encode;
	msg_decode_fn *decode;
};

static const struct msg_desc msg_table[PROTO_TYPE_END] = {
	[PROTO_HELLO] = {"HELLO", 32, false, enc_hello, dec_hello},
	[PROTO_AUTH] = {"AUTH", 4 + PROTO_NONCE_LEN, false, enc_auth, dec_auth},
	[PROTO_GENERATIONS] = {"GENERATIONS", 56, false, enc_generations, dec_generations},
	[PROTO_BITMAP] = {"BITMAP", 16, true, enc_bitmap, dec_bitmap},
	[PROTO_WRITE] = {"WRITE", 24, true, enc_write, dec_write},
	[PROTO_WRITE_ACK] = {"WRITE_ACK", 16, false, enc_ack, dec_ack},
	[PROTO_FLUSH] = {"FLUSH", 8, false, enc_flush, dec_flush},
	[PROTO_FLUSH_ACK] = {"FLUSH_ACK", 16, false, enc_ack, dec_ack},
	[PROTO_RESYNC_READ] = {"RESYNC_READ", 24, false, enc_range, dec_range},
	[PROTO_RESYNC_DATA] = {"RESYNC_DATA", 24, true, enc_write, dec_write},
	[PROTO_VERIFY] = {"VERIFY", 24, false, enc_range, dec_range},
	[PROTO_VERIFY_DIGEST] = {"VERIFY_DIGEST", 24, true, enc_digest, dec_digest},
	[PROTO_PING] = {"PING", 16, false, enc_ping, dec_ping},
	[PROTO_PONG] = {"PONG", 16, false, enc_ping, dec_ping},
	[PROTO_STATE] = {"STATE", 8, true, enc_state, dec_state},
	[PROTO_GOODBYE] = {"GOODBYE", 8, false, enc_goodbye, dec_goodbye},
	[PROTO_COMPARE_AND_WRITE] = {"COMPARE_AND_WRITE", 24, true, enc_caw, dec_caw},
	[PROTO_COMPARE_AND_WRITE_ACK] = {"COMPARE_AND_WRITE_ACK", 16, false, enc_ack, dec_ack},
	[PROTO_BITMAP_KNOWN] = {"BITMAP_KNOWN", 16, true, enc_bitmap, dec_bitmap},
	[PROTO_DIGEST_READ] = {"DIGEST_READ", 24, false, enc_range, dec_range},
	[PROTO_DIGEST_DATA] = {"DIGEST_DATA", 24, true, enc_digest, dec_digest},
};

static const struct msg_desc *msg_desc(unsigned type)
{
	return type < PROTO_TYPE_END && msg_table[type].name != NULL ? &msg_table[type] : NULL;
}

const char *proto_type_name(unsigned type)
{
	const struct msg_desc *d = msg_desc(type);

	return d != NULL ? d->name : "unknown";
}

const char *proto_goodbye_name(unsigned reason)
{
	static const char *const names[PROTO_BYE_END] = {
		[PROTO_BYE_SHUTDOWN] = "shutdown",
		[PROTO_BYE_VERSION] = "no common protocol version",
		[PROTO_BYE_AUTH] = "authentication failed",
		[PROTO_BYE_PROTOCOL] = "protocol error",
		[PROTO_BYE_CONFIG] = "configuration mismatch",
	};

	return reason < PROTO_BYE_END && names[reason] != NULL ? names[reason] : "unknown";
}

const char *proto_error_name(enum proto_error e)
{
	static const char *const names[] = {
		[PROTO_OK] = "ok",
		[PROTO_NEED_MORE] = "need more",
		[PROTO_ERR_MAGIC] = "bad magic",
		[PROTO_ERR_VERSION] = "unsupported frame version",
		[PROTO_ERR_HEADER_CRC] = "bad header CRC",
		[PROTO_ERR_PAYLOAD_CRC] = "bad payload CRC",
		[PROTO_ERR_MAC] = "bad MAC",
		[PROTO_ERR_MAC_MODE] = "MAC mode mismatch",
		[PROTO_ERR_OVERSIZE] = "oversize payload",
		[PROTO_ERR_TYPE] = "unknown message type",
		[PROTO_ERR_FIELD] = "bad field",
		[PROTO_ERR_SEQUENCE] = "bad sequence number",
		[PROTO_ERR_FAILED] = "decoder stopped by an earlier error",
	};

	return (unsigned)e < ARRAY_SIZE(names) ? names[e] : "unknown";
}

/* ---- send side -------------------------------------------------------------------- */

struct proto_tx {
	uint64_t seq;
	struct proto_mac mac;
};

struct proto_tx *proto_tx_new(void)
{
	return calloc(1, sizeof(struct proto_tx));
}

void proto_tx_free(struct proto_tx *tx)
{
	if (tx == NULL)
		return;
	mac_free(&tx->mac);
	free(tx);
}

int proto_tx_set_key(struct proto_tx *tx, const uint8_t key[PROTO_KEY_LEN], unsigned version)
{
	return mac_set_key(&tx->mac, key, version);
}

int proto_encode(struct proto_tx *tx, const struct proto_msg *msg, struct proto_frame *out)
{
	const struct msg_desc *d = msg_desc(msg->type);
	uint8_t *h = out->head;
	const uint8_t *var = NULL;
	struct proto_msg check = {.type = msg->type};
	uint32_t var_len, crc;

	if (d == NULL)
		return -1;
	memset(h, 0, PROTO_HEAD_MAX);
	var_len = d->encode(msg, h + PROTO_HEADER_LEN, &var);
	if ((var_len > 0 && var == NULL) || (!d->has_var && var_len != 0) ||
	    d->decode(&check, h + PROTO_HEADER_LEN, var, var_len) != NULL)
		return -1;

	put_be32(h + HDR_MAGIC, PROTO_MAGIC);
	h[HDR_VERSION] = PROTO_FRAME_VERSION;
	h[HDR_TYPE] = (uint8_t)msg->type;
	put_be16(h + HDR_FLAGS, mac_keyed(&tx->mac) ? PROTO_FLAG_MAC : 0);
	put_be64(h + HDR_SEQ, tx->seq);
	put_be32(h + HDR_LENGTH, d->fixed_len + var_len);
	if (tx->mac.gcm == NULL) {
		crc = crc32c_update(CRC32C_INIT, h + PROTO_HEADER_LEN, d->fixed_len);
		put_be32(h + HDR_PAYLOAD_CRC, crc32c_final(var_len > 0 ? crc32c_update(crc, var, var_len) : crc));
	}
	put_be32(h + HDR_CRC, crc32c(h, HDR_CRC));

	out->head_len = PROTO_HEADER_LEN + d->fixed_len;
	out->data = var;
	out->data_len = var_len;
	out->tag_len = 0;
	if (mac_keyed(&tx->mac)) {
		if (mac_tag(&tx->mac, tx->seq, h, out->head_len, var, var_len, out->tag) != 0)
			return -1;
		out->tag_len = PROTO_TAG_LEN;
	}
	tx->seq++;
	return 0;
}

size_t proto_frame_flatten(const struct proto_frame *f, uint8_t *buf, size_t cap)
{
	size_t n = f->head_len + f->data_len + f->tag_len;

	if (n > cap)
		return 0;
	memcpy(buf, f->head, f->head_len);
	if (f->data_len > 0)
		memcpy(buf + f->head_len, f->data, f->data_len);
	memcpy(buf + f->head_len + f->data_len, f->tag, f->tag_len);
	return n;
}

/* ---- receive side ----------------------------------------------------------------- */

struct proto_rx {
	uint32_t max_payload;
	size_t have;        /* bytes of the current frame in buf */
	size_t need;        /* its full size once the header is judged, else the header's */
	uint64_t seq;       /* the next expected */
	bool failed;
	struct proto_mac mac;
	char error[160];
	size_t cap;         /* of buf: grows to the largest frame seen, not to the limit */
	uint8_t *buf;
};

struct proto_rx *proto_rx_new(uint32_t max_payload)
{
	struct proto_rx *rx = calloc(1, sizeof(*rx));

	if (rx == NULL)
		return NULL;
	rx->max_payload = MIN(max_payload, (uint32_t)PROTO_MAX_PAYLOAD);
	rx->need = PROTO_HEADER_LEN;
	rx->cap = PROTO_HEAD_MAX + PROTO_TAG_LEN;
	rx->buf = malloc(rx->cap);
	if (rx->buf == NULL) {
		free(rx);
		return NULL;
	}
	return rx;
}

void proto_rx_free(struct proto_rx *rx)
{
	if (rx == NULL)
		return;
	mac_free(&rx->mac);
	free(rx->buf);
	free(rx);
}

int proto_rx_set_key(struct proto_rx *rx, const uint8_t key[PROTO_KEY_LEN], unsigned version)
{
	return mac_set_key(&rx->mac, key, version);
}

const char *proto_rx_error(const struct proto_rx *rx)
{
	return rx->error;
}

static enum proto_error rx_fail(struct proto_rx *rx, enum proto_error e, const char *detail)
{
	rx->failed = true;
	snprintf(rx->error, sizeof(rx->error), "%s (%s, frame %llu)", proto_error_name(e), detail,
	         (unsigned long long)rx->seq);
	return e;
}

/* Judges a complete header and sets the frame's full size. */
static enum proto_error rx_header(struct proto_rx *rx)
{
	const uint8_t *h = rx->buf;
	uint16_t flags = get_be16(h + HDR_FLAGS);
	uint32_t len = get_be32(h + HDR_LENGTH);
	const struct msg_desc *d;
	char detail[64];

	if (get_be32(h + HDR_MAGIC) != PROTO_MAGIC)
		return rx_fail(rx, PROTO_ERR_MAGIC, "not a twinsan HA peer");
	if (h[HDR_VERSION] != PROTO_FRAME_VERSION) {
		snprintf(detail, sizeof(detail), "version %u", h[HDR_VERSION]);
		return rx_fail(rx, PROTO_ERR_VERSION, detail);
	}
	if (get_be32(h + HDR_CRC) != crc32c(h, HDR_CRC))
		return rx_fail(rx, PROTO_ERR_HEADER_CRC, "header");
	if ((flags & ~PROTO_FLAG_MAC) != 0 || get_be32(h + HDR_RESERVED) != 0)
		return rx_fail(rx, PROTO_ERR_FIELD, "header flags or reserved");
	if (((flags & PROTO_FLAG_MAC) != 0) != mac_keyed(&rx->mac))
		return rx_fail(rx, PROTO_ERR_MAC_MODE, mac_keyed(&rx->mac) ? "tag missing" : "tag before keys");
	if (rx->mac.gcm != NULL && get_be32(h + HDR_PAYLOAD_CRC) != 0)
		return rx_fail(rx, PROTO_ERR_FIELD, "payload CRC under GMAC");
	d = msg_desc(h[HDR_TYPE]);
	if (d == NULL) {
		snprintf(detail, sizeof(detail), "type %u", h[HDR_TYPE]);
		return rx_fail(rx, PROTO_ERR_TYPE, detail);
	}
	if (len > rx->max_payload) {
		snprintf(detail, sizeof(detail), "%s of %u bytes", d->name, len);
		return rx_fail(rx, PROTO_ERR_OVERSIZE, detail);
	}
	rx->need = PROTO_HEADER_LEN + (size_t)len + (mac_keyed(&rx->mac) ? PROTO_TAG_LEN : 0);
	if (rx->need > rx->cap) {
		uint8_t *bigger = realloc(rx->buf, rx->need);

		if (bigger == NULL)
			return rx_fail(rx, PROTO_ERR_OVERSIZE, "no memory for the frame");
		rx->buf = bigger;
		rx->cap = rx->need;
	}
	return PROTO_NEED_MORE;
}

/* Checks and decodes a complete frame. */
static enum proto_error rx_frame(struct proto_rx *rx, struct proto_msg *msg)
{
	const uint8_t *h = rx->buf, *payload = rx->buf + PROTO_HEADER_LEN;
	uint32_t len = get_be32(h + HDR_LENGTH);
	const struct msg_desc *d = msg_desc(h[HDR_TYPE]);
	const char *bad;
	char detail[64];

	if (rx->mac.gcm == NULL && get_be32(h + HDR_PAYLOAD_CRC) != crc32c(payload, len))
		return rx_fail(rx, PROTO_ERR_PAYLOAD_CRC, d->name);
	if (mac_keyed(&rx->mac)) {
		uint8_t tag[PROTO_TAG_LEN];

		/* The sender's sequence number as the nonce: a replay verifies, then fails the
		 * sequence check below with its own error. */
		if (mac_tag(&rx->mac, get_be64(h + HDR_SEQ), h, PROTO_HEADER_LEN + (size_t)len, NULL, 0, tag) != 0 ||
		    CRYPTO_memcmp(tag, payload + len, PROTO_TAG_LEN) != 0)
			return rx_fail(rx, PROTO_ERR_MAC, d->name);
	}
	if (get_be64(h + HDR_SEQ) != rx->seq) {
		snprintf(detail, sizeof(detail), "got %llu", (unsigned long long)get_be64(h + HDR_SEQ));
		return rx_fail(rx, PROTO_ERR_SEQUENCE, detail);
	}
	if (len < d->fixed_len || (!d->has_var && len != d->fixed_len)) {
		snprintf(detail, sizeof(detail), "%s payload of %u bytes", d->name, len);
		return rx_fail(rx, PROTO_ERR_FIELD, detail);
	}
	memset(msg, 0, sizeof(*msg));
	msg->type = h[HDR_TYPE];
	bad = d->decode(msg, payload, payload + d->fixed_len, len - d->fixed_len);
	if (bad != NULL) {
		snprintf(detail, sizeof(detail), "%s %s", d->name, bad);
		return rx_fail(rx, PROTO_ERR_FIELD, detail);
	}
	rx->seq++;
	rx->have = 0;
	rx->need = PROTO_HEADER_LEN;
	return PROTO_OK;
}

enum proto_error proto_rx_feed(struct proto_rx *rx, const uint8_t *buf, size_t len, size_t *used,
                               struct proto_msg *msg)
{
	*used = 0;
	if (rx->failed)
		return PROTO_ERR_FAILED;
	for (;;) {
		size_t n = MIN(rx->need - rx->have, len - *used);
		bool header_just_done;

		if (n > 0)
			memcpy(rx->buf + rx->have, buf + *used, n);
		*used += n;
		header_just_done = rx->have < PROTO_HEADER_LEN && rx->have + n == PROTO_HEADER_LEN;
		rx->have += n;
		if (rx->have < rx->need)
			return PROTO_NEED_MORE;
		if (header_just_done) {
			enum proto_error e = rx_header(rx);

			if (e != PROTO_NEED_MORE)
				return e;
			if (rx->have < rx->need)
				continue;
		}
		return rx_frame(rx, msg);
	}
}
