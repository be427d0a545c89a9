/* Witness protocol framing: each message type is a fixed layout of typed fields, so one
 * encoder, one decoder and one validator serve every type (see witness_proto.h). */
#include "ha/witness_proto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/util.h"

/* Field codes of the layouts below, each with its wire size in field_size(). */
#define F_VRANGE 'v'  /* version_min, version_max */
#define F_VERSION 'V'
#define F_NODE 'n'
#define F_NONCE 'N'
#define F_PROOF 'P'
#define F_REQUEST 'q'
#define F_UUID 'u'
#define F_GEN 'g'     /* gen_current, gen_bitmap */
#define F_LEASE 'l'
#define F_REASON 'r'
#define F_HOLDER 'h'
#define F_STAMP 's'

static const char *const layouts[WITNESS_MSG_END] = {
	[WITNESS_HELLO] = "vnN",      [WITNESS_CHALLENGE] = "VN", [WITNESS_PROOF] = "P",
	[WITNESS_CLAIM] = "qung",     [WITNESS_GRANT] = "qul",    [WITNESS_REFUSE] = "qurh",
	[WITNESS_RENEW] = "qu",       [WITNESS_RELEASE] = "qu",   [WITNESS_RELEASED] = "qu",
	[WITNESS_PING] = "s",         [WITNESS_PONG] = "s",       [WITNESS_BYE] = "r",
};

static const char *const msg_names[WITNESS_MSG_END] = {
	[WITNESS_HELLO] = "HELLO",    [WITNESS_CHALLENGE] = "CHALLENGE", [WITNESS_PROOF] = "PROOF",
	[WITNESS_CLAIM] = "CLAIM",    [WITNESS_GRANT] = "GRANT",         [WITNESS_REFUSE] = "REFUSE",
	[WITNESS_RENEW] = "RENEW",    [WITNESS_RELEASE] = "RELEASE",     [WITNESS_RELEASED] = "RELEASED",
	[WITNESS_PING] = "PING",      [WITNESS_PONG] = "PONG",           [WITNESS_BYE] = "BYE",
};

static const char *name_of(const char *const *names, unsigned count, unsigned v)
{
	return v > 0 && v < count ? names[v] : "unknown";
}

const char *witness_msg_name(unsigned type)
{
	return name_of(msg_names, WITNESS_MSG_END, type);
}

static const char *const refusal_names[WITNESS_REFUSE_END] = {
	[WITNESS_REFUSE_HELD] = "held by another node",
	[WITNESS_REFUSE_NOT_HOLDER] = "not the holder",
	[WITNESS_REFUSE_NODE] = "node id differs from the authenticated one",
	[WITNESS_REFUSE_STORAGE] = "the witness cannot persist the record",
};

static const char *const bye_names[WITNESS_BYE_END] = {
	[WITNESS_BYE_SHUTDOWN] = "shutdown",
	[WITNESS_BYE_AUTH] = "authentication failed (wrong secret?)",
	[WITNESS_BYE_VERSION] = "no common protocol version",
	[WITNESS_BYE_PROTOCOL] = "protocol error",
};

const char *witness_refusal_name(unsigned reason)
{
	return name_of(refusal_names, WITNESS_REFUSE_END, reason);
}

const char *witness_bye_name(unsigned reason)
{
	return name_of(bye_names, WITNESS_BYE_END, reason);
}

static size_t field_size(char f)
{
	switch (f) {
	case F_VRANGE: return 2;
	case F_VERSION: return 1;
	case F_LEASE: case F_REASON: return 4;
	case F_NODE: case F_REQUEST: case F_HOLDER: case F_STAMP: return 8;
	case F_UUID: case F_GEN: return 16;
	default: return WITNESS_PROTO_NONCE_LEN; /* F_NONCE, F_PROOF */
	}
}

size_t witness_proto_payload_len(unsigned type)
{
	size_t n = 0;

	if (type == 0 || type >= WITNESS_MSG_END)
		return 0;
	for (const char *f = layouts[type]; *f; f++)
		n += field_size(*f);
	return n;
}

static void put_field(uint8_t *p, char f, const struct witness_msg *m)
{
	switch (f) {
	case F_VRANGE: p[0] = m->version_min; p[1] = m->version_max; break;
	case F_VERSION: p[0] = m->version; break;
	case F_NODE: put_be64(p, m->node_id); break;
	case F_NONCE: memcpy(p, m->nonce, sizeof(m->nonce)); break;
	case F_PROOF: memcpy(p, m->proof, sizeof(m->proof)); break;
	case F_REQUEST: put_be64(p, m->request); break;
	case F_UUID: memcpy(p, m->uuid, sizeof(m->uuid)); break;
	case F_GEN: put_be64(p, m->gen_current); put_be64(p + 8, m->gen_bitmap); break;
	case F_LEASE: put_be32(p, m->lease_ms); break;
	case F_REASON: put_be32(p, m->reason); break;
	case F_HOLDER: put_be64(p, m->holder); break;
	case F_STAMP: put_be64(p, m->stamp); break;
	}
}

static void get_field(const uint8_t *p, char f, struct witness_msg *m)
{
	switch (f) {
	case F_VRANGE: m->version_min = p[0]; m->version_max = p[1]; break;
	case F_VERSION: m->version = p[0]; break;
	case F_NODE: m->node_id = get_be64(p); break;
	case F_NONCE: memcpy(m->nonce, p, sizeof(m->nonce)); break;
	case F_PROOF: memcpy(m->proof, p, sizeof(m->proof)); break;
	case F_REQUEST: m->request = get_be64(p); break;
	case F_UUID: memcpy(m->uuid, p, sizeof(m->uuid)); break;
	case F_GEN: m->gen_current = get_be64(p); m->gen_bitmap = get_be64(p + 8); break;
	case F_LEASE: m->lease_ms = get_be32(p); break;
	case F_REASON: m->reason = get_be32(p); break;
	case F_HOLDER: m->holder = get_be64(p); break;
	case F_STAMP: m->stamp = get_be64(p); break;
	}
}

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* NULL if field `f` of `m` is valid, else what is wrong with it. */
static const char *field_fault(char f, const struct witness_msg *m)
{
	switch (f) {
	case F_VRANGE:
		return m->version_min == 0 || m->version_min > m->version_max ? "bad version range" : NULL;
	case F_VERSION:
		return m->version == 0 ? "version 0" : NULL;
	case F_NODE:
		return m->node_id == 0 ? "node id 0" : NULL;
	case F_NONCE:
		return all_zero(m->nonce, sizeof(m->nonce)) ? "all-zero nonce" : NULL;
	case F_UUID:
		return all_zero(m->uuid, sizeof(m->uuid)) ? "all-zero device uuid" : NULL;
	case F_LEASE:
		return m->lease_ms == 0 || m->lease_ms > WITNESS_LEASE_MAX_MS ? "lease out of range" : NULL;
	case F_REASON:
		if (m->type == WITNESS_BYE)
			return m->reason == 0 || m->reason >= WITNESS_BYE_END ? "unknown BYE reason" : NULL;
		return m->reason == 0 || m->reason >= WITNESS_REFUSE_END ? "unknown REFUSE reason" : NULL;
	default:
		return NULL; /* any value: proof, request, generations, holder, stamp */
	}
}

static const char *msg_fault(const struct witness_msg *m)
{
	if (m->type == 0 || m->type >= WITNESS_MSG_END)
		return "unknown message type";
	for (const char *f = layouts[m->type]; *f; f++) {
		const char *why = field_fault(*f, m);

		if (why != NULL)
			return why;
	}
	return NULL;
}

/* ---- one connection's framing state ---- */

struct witness_proto {
	uint64_t tx_seq, rx_seq;
	bool tx_keyed, rx_keyed, failed;
	uint8_t tx_key[WITNESS_PROTO_KEY_LEN], rx_key[WITNESS_PROTO_KEY_LEN];
	size_t have;       /* bytes of the current frame in buf */
	size_t frame_len;  /* its whole length once the header was judged, else 0 */
	uint8_t buf[WITNESS_PROTO_FRAME_MAX];
	char err[160];
};

struct witness_proto *witness_proto_new(void)
{
	return calloc(1, sizeof(struct witness_proto));
}

void witness_proto_free(struct witness_proto *wp)
{
	if (wp == NULL)
		return;
	OPENSSL_cleanse(wp, sizeof(*wp));
	free(wp);
}

void witness_proto_set_tx_key(struct witness_proto *wp, const uint8_t key[WITNESS_PROTO_KEY_LEN])
{
	memcpy(wp->tx_key, key, WITNESS_PROTO_KEY_LEN);
	wp->tx_keyed = true;
}

void witness_proto_set_rx_key(struct witness_proto *wp, const uint8_t key[WITNESS_PROTO_KEY_LEN])
{
	memcpy(wp->rx_key, key, WITNESS_PROTO_KEY_LEN);
	wp->rx_keyed = true;
}

/* HMAC-SHA256(key, data) cut to the tag length. */
static bool make_tag(const uint8_t key[WITNESS_PROTO_KEY_LEN], const uint8_t *data, size_t len,
                     uint8_t tag[WITNESS_PROTO_TAG_LEN])
{
	uint8_t full[EVP_MAX_MD_SIZE];
	unsigned n = 0;

	if (HMAC(EVP_sha256(), key, WITNESS_PROTO_KEY_LEN, data, len, full, &n) == NULL || n < WITNESS_PROTO_TAG_LEN)
		return false;
	memcpy(tag, full, WITNESS_PROTO_TAG_LEN);
	return true;
}

/* The CRC of a frame: header bytes 0..19, then the payload. */
static uint32_t frame_crc(const uint8_t *frame, size_t payload_len)
{
	uint32_t crc = crc32c_update(CRC32C_INIT, frame, 20);

	return crc32c_final(crc32c_update(crc, frame + WITNESS_PROTO_HEADER_LEN, payload_len));
}

size_t witness_proto_encode(struct witness_proto *wp, const struct witness_msg *m,
                            uint8_t out[WITNESS_PROTO_FRAME_MAX])
{
	size_t plen, off = WITNESS_PROTO_HEADER_LEN;

	if (msg_fault(m) != NULL)
		return 0;
	plen = witness_proto_payload_len(m->type);
	memset(out, 0, WITNESS_PROTO_HEADER_LEN);
	put_be32(out, WITNESS_PROTO_MAGIC);
	out[4] = WITNESS_PROTO_FRAME_VERSION;
	out[5] = m->type;
	put_be16(out + 6, (uint16_t)plen);
	put_be64(out + 8, wp->tx_seq);
	put_be16(out + 16, wp->tx_keyed ? WITNESS_PROTO_FLAG_MAC : 0);
	for (const char *f = layouts[m->type]; *f; f++) {
		put_field(out + off, *f, m);
		off += field_size(*f);
	}
	put_be32(out + 20, frame_crc(out, plen));
	if (wp->tx_keyed) {
		if (!make_tag(wp->tx_key, out, off, out + off))
			return 0;
		off += WITNESS_PROTO_TAG_LEN;
	}
	wp->tx_seq++;
	return off;
}

static enum witness_proto_result fail(struct witness_proto *wp, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static enum witness_proto_result fail(struct witness_proto *wp, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(wp->err, sizeof(wp->err), fmt, ap);
	va_end(ap);
	wp->failed = true;
	return WITNESS_PROTO_ERROR;
}

/* Judges a complete header before any payload is buffered; sets frame_len. */
static enum witness_proto_result judge_header(struct witness_proto *wp)
{
	const uint8_t *h = wp->buf;
	unsigned type = h[5], flags = get_be16(h + 16);
	size_t plen = get_be16(h + 6);

	if (get_be32(h) != WITNESS_PROTO_MAGIC)
		return fail(wp, "not a witness protocol frame (bad magic %08x)", get_be32(h));
	if (h[4] != WITNESS_PROTO_FRAME_VERSION)
		return fail(wp, "unsupported frame version %u", h[4]);
	if (type == 0 || type >= WITNESS_MSG_END)
		return fail(wp, "unknown message type %u", type);
	if (plen != witness_proto_payload_len(type))
		return fail(wp, "%s with a %zu-byte payload (expected %zu)", witness_msg_name(type), plen,
		            witness_proto_payload_len(type));
	if ((flags & ~WITNESS_PROTO_FLAG_MAC) != 0 || get_be16(h + 18) != 0)
		return fail(wp, "unknown flags %04x or reserved bits set", flags);
	/* The receiver's key, not the sender's flag, decides whether a tag must be there. */
	if (!!(flags & WITNESS_PROTO_FLAG_MAC) != wp->rx_keyed)
		return fail(wp, "%s %s a tag", witness_msg_name(type), wp->rx_keyed ? "without" : "with");
	wp->frame_len = WITNESS_PROTO_HEADER_LEN + plen + (wp->rx_keyed ? WITNESS_PROTO_TAG_LEN : 0);
	return WITNESS_PROTO_MORE;
}

/* Checks and decodes the complete frame in buf. */
static enum witness_proto_result finish_frame(struct witness_proto *wp, struct witness_msg *m)
{
	const uint8_t *h = wp->buf;
	size_t plen = get_be16(h + 6), off = WITNESS_PROTO_HEADER_LEN;
	uint64_t seq = get_be64(h + 8);
	const char *why;

	if (frame_crc(h, plen) != get_be32(h + 20))
		return fail(wp, "%s: CRC32C mismatch", witness_msg_name(h[5]));
	if (wp->rx_keyed) {
		uint8_t tag[WITNESS_PROTO_TAG_LEN];

		if (!make_tag(wp->rx_key, h, off + plen, tag) ||
		    CRYPTO_memcmp(tag, h + off + plen, WITNESS_PROTO_TAG_LEN) != 0)
			return fail(wp, "%s: bad message tag (forged or corrupted)", witness_msg_name(h[5]));
	}
	if (seq != wp->rx_seq)
		return fail(wp, "%s: sequence number %llu, expected %llu (replayed or lost frame)",
		            witness_msg_name(h[5]), (unsigned long long)seq, (unsigned long long)wp->rx_seq);
	memset(m, 0, sizeof(*m));
	m->type = h[5];
	for (const char *f = layouts[m->type]; *f; f++) {
		get_field(h + off, *f, m);
		off += field_size(*f);
	}
	why = msg_fault(m);
	if (why != NULL)
		return fail(wp, "%s: %s", witness_msg_name(m->type), why);
	wp->rx_seq++;
	wp->have = 0;
	wp->frame_len = 0;
	return WITNESS_PROTO_MSG;
}

enum witness_proto_result witness_proto_feed(struct witness_proto *wp, const uint8_t *buf, size_t len,
                                             size_t *used, struct witness_msg *m)
{
	size_t off = 0;

	*used = 0;
	if (wp->failed)
		return WITNESS_PROTO_ERROR;
	for (;;) {
		size_t want = wp->frame_len ? wp->frame_len : WITNESS_PROTO_HEADER_LEN;
		size_t n = MIN(want - wp->have, len - off);

		memcpy(wp->buf + wp->have, buf + off, n);
		wp->have += n;
		off += n;
		*used = off;
		if (wp->have < want)
			return WITNESS_PROTO_MORE;
		if (wp->frame_len)
			return finish_frame(wp, m);
		if (judge_header(wp) == WITNESS_PROTO_ERROR)
			return WITNESS_PROTO_ERROR;
	}
}

const char *witness_proto_error(const struct witness_proto *wp)
{
	return wp->err;
}

/* ---- handshake hashes ---- */

/* HMAC-SHA256(secret, label || version || node nonce || witness nonce || node id). */
static int keyed_hash(const struct witness_auth *a, const char *label, uint8_t out[WITNESS_PROTO_KEY_LEN])
{
	uint8_t msg[48 + 1 + 2 * WITNESS_PROTO_NONCE_LEN + 8];
	size_t n = strlen(label);
	unsigned out_len = 0;

	if (a->secret_len == 0 || a->secret_len > WITNESS_SECRET_MAX || n > 48)
		return -1;
	memcpy(msg, label, n);
	msg[n++] = a->version;
	memcpy(msg + n, a->node_nonce, WITNESS_PROTO_NONCE_LEN);
	n += WITNESS_PROTO_NONCE_LEN;
	memcpy(msg + n, a->witness_nonce, WITNESS_PROTO_NONCE_LEN);
	n += WITNESS_PROTO_NONCE_LEN;
	put_be64(msg + n, a->node_id);
	n += 8;
	if (HMAC(EVP_sha256(), a->secret, (int)a->secret_len, msg, n, out, &out_len) == NULL ||
	    out_len != WITNESS_PROTO_KEY_LEN)
		return -1;
	return 0;
}

int witness_proto_proof(const struct witness_auth *a, enum witness_side prover, uint8_t out[WITNESS_PROTO_KEY_LEN])
{
	return keyed_hash(a, prover == WITNESS_SIDE_NODE ? "twinsan witness proof: node"
	                                                 : "twinsan witness proof: witness", out);
}

bool witness_proto_proof_ok(const struct witness_auth *a, enum witness_side prover,
                            const uint8_t proof[WITNESS_PROTO_KEY_LEN])
{
	uint8_t want[WITNESS_PROTO_KEY_LEN];
	bool ok = witness_proto_proof(a, prover, want) == 0 && CRYPTO_memcmp(want, proof, sizeof(want)) == 0;

	OPENSSL_cleanse(want, sizeof(want));
	return ok;
}

int witness_proto_key(const struct witness_auth *a, enum witness_side sender, uint8_t out[WITNESS_PROTO_KEY_LEN])
{
	return keyed_hash(a, sender == WITNESS_SIDE_NODE ? "twinsan witness key: node to witness"
	                                                 : "twinsan witness key: witness to node", out);
}
