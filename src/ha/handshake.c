/* Link opening: HELLO, nonces, proofs, keys (see handshake.h for the why of each). */
#include "ha/handshake.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

enum hs_state { HS_WAIT_HELLO, HS_WAIT_NONCE, HS_WAIT_PROOF, HS_DONE, HS_FAILED };

struct handshake {
	enum hs_state state;
	struct proto_hello self, peer;
	uint8_t version;
	uint8_t nonce[PROTO_NONCE_LEN], peer_nonce[PROTO_NONCE_LEN];
	uint8_t tx_key[PROTO_KEY_LEN], rx_key[PROTO_KEY_LEN];
	handshake_rng_fn *rng;
	void *rng_ctx;
	char reason[160];
	size_t secret_len;
	uint8_t *secret;
};

static const char proof_label[] = "twinsan-ha proof v1";
static const char key_label[] = "twinsan-ha session key v1";

int handshake_rng_openssl(void *ctx, uint8_t *buf, size_t len)
{
	return len <= INT32_MAX && RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

struct handshake *handshake_new(const struct handshake_config *cfg, const char **why)
{
	struct handshake *hs;

	*why = NULL;
	if (cfg->secret == NULL || cfg->secret_len == 0)
		*why = "an HA link needs a shared secret (there is no default)";
	else if (cfg->secret_len > HANDSHAKE_SECRET_MAX)
		*why = "shared secret too long";
	else if (cfg->node_id == 0)
		*why = "node id 0";
	else if (cfg->role != PROTO_ROLE_PRIMARY && cfg->role != PROTO_ROLE_SECONDARY)
		*why = "role";
	else if (cfg->link_kind != PROTO_LINK_SYNC && cfg->link_kind != PROTO_LINK_HEARTBEAT)
		*why = "link kind";
	else if (cfg->rng == NULL)
		*why = "no random source";
	else if (cfg->version_min > cfg->version_max || cfg->version_min > PROTO_VERSION_MAX ||
	         (cfg->version_max != 0 && cfg->version_max < PROTO_VERSION_MIN))
		*why = "version range";
	if (*why != NULL)
		return NULL;

	hs = calloc(1, sizeof(*hs));
	if (hs == NULL || (hs->secret = malloc(cfg->secret_len)) == NULL) {
		free(hs);
		*why = "out of memory";
		return NULL;
	}
	memcpy(hs->secret, cfg->secret, cfg->secret_len);
	hs->secret_len = cfg->secret_len;
	hs->self.version_min = (uint8_t)MAX(cfg->version_min, PROTO_VERSION_MIN);
	hs->self.version_max = cfg->version_max != 0 ? (uint8_t)MIN(cfg->version_max, PROTO_VERSION_MAX)
	                                             : PROTO_VERSION_MAX;
	hs->self.role = cfg->role;
	hs->self.link_kind = cfg->link_kind;
	hs->self.node_id = cfg->node_id;
	memcpy(hs->self.device_uuid, cfg->device_uuid, PROTO_UUID_LEN);
	hs->rng = cfg->rng;
	hs->rng_ctx = cfg->rng_ctx;
	hs->state = HS_WAIT_HELLO;
	return hs;
}

void handshake_free(struct handshake *hs)
{
	if (hs == NULL)
		return;
	OPENSSL_cleanse(hs->secret, hs->secret_len);
	free(hs->secret);
	OPENSSL_cleanse(hs, sizeof(*hs));
	free(hs);
}

void handshake_hello(const struct handshake *hs, struct proto_msg *out)
{
	memset(out, 0, sizeof(*out));
	out->type = PROTO_HELLO;
	out->u.hello = hs->self;
}

/* HMAC-SHA256(secret, label || version || first nonce || second nonce || first id ||
 * second id [|| device uuid || role]) — the proof when `with_device`, else a key. */
static int derive(const struct handshake *hs, const char *label, const uint8_t *first_nonce,
                  const uint8_t *second_nonce, uint64_t first_id, uint64_t second_id, int prover_role,
                  uint8_t out[PROTO_KEY_LEN])
{
	uint8_t msg[64 + 1 + 2 * PROTO_NONCE_LEN + 16 + PROTO_UUID_LEN + 1];
	size_t n = strlen(label);
	unsigned out_len = 0;

	memcpy(msg, label, n);
	msg[n++] = hs->version;
	memcpy(msg + n, first_nonce, PROTO_NONCE_LEN);
	n += PROTO_NONCE_LEN;
	memcpy(msg + n, second_nonce, PROTO_NONCE_LEN);
	n += PROTO_NONCE_LEN;
	put_be64(msg + n, first_id);
	put_be64(msg + n + 8, second_id);
	n += 16;
	if (prover_role != 0) {
		memcpy(msg + n, hs->self.device_uuid, PROTO_UUID_LEN);
		n += PROTO_UUID_LEN;
		msg[n++] = (uint8_t)prover_role;
	}
	if (HMAC(EVP_sha256(), hs->secret, (int)hs->secret_len, msg, n, out, &out_len) == NULL ||
	    out_len != PROTO_KEY_LEN)
		return -1;
	return 0;
}

static enum handshake_result fail(struct handshake *hs, unsigned bye, struct proto_msg *reply, bool *has_reply,
                                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static enum handshake_result fail(struct handshake *hs, unsigned bye, struct proto_msg *reply, bool *has_reply,
                                  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(hs->reason, sizeof(hs->reason), fmt, ap);
	va_end(ap);
	hs->state = HS_FAILED;
	OPENSSL_cleanse(hs->tx_key, sizeof(hs->tx_key));
	OPENSSL_cleanse(hs->rx_key, sizeof(hs->rx_key));
	if (bye != 0) {
		memset(reply, 0, sizeof(*reply));
		reply->type = PROTO_GOODBYE;
		reply->u.goodbye.reason = bye;
		*has_reply = true;
	}
	return HANDSHAKE_FAILED;
}

#define FAIL(bye, ...) fail(hs, bye, reply, has_reply, __VA_ARGS__)

static enum handshake_result on_hello(struct handshake *hs, const struct proto_hello *h, struct proto_msg *reply,
                                      bool *has_reply)
{
	hs->peer = *h;
	if (memcmp(h->device_uuid, hs->self.device_uuid, PROTO_UUID_LEN) != 0)
		return FAIL(PROTO_BYE_CONFIG, "peer serves another device");
	if (h->node_id == hs->self.node_id)
		return FAIL(PROTO_BYE_CONFIG, "peer has our node id (a reflected connection?)");
	if (h->role == hs->self.role)
		return FAIL(PROTO_BYE_CONFIG, "both nodes have the same priority");
	if (h->link_kind != hs->self.link_kind)
		return FAIL(PROTO_BYE_CONFIG, "link kinds differ");
	if (h->version_max < hs->self.version_min || h->version_min > hs->self.version_max)
		return FAIL(PROTO_BYE_VERSION, "no common protocol version (peer %u..%u, we %u..%u)",
		            h->version_min, h->version_max, hs->self.version_min, hs->self.version_max);
	hs->version = MIN(h->version_max, hs->self.version_max);
	if (hs->rng(hs->rng_ctx, hs->nonce, PROTO_NONCE_LEN) != 0)
		return FAIL(PROTO_BYE_SHUTDOWN, "no random bytes for a nonce");
	memset(reply, 0, sizeof(*reply));
	reply->type = PROTO_AUTH;
	reply->u.auth.kind = PROTO_AUTH_NONCE;
	memcpy(reply->u.auth.value, hs->nonce, PROTO_NONCE_LEN);
	*has_reply = true;
	hs->state = HS_WAIT_NONCE;
	return HANDSHAKE_CONTINUE;
}

static enum handshake_result on_nonce(struct handshake *hs, const uint8_t *nonce, struct proto_msg *reply,
                                      bool *has_reply)
{
	if (CRYPTO_memcmp(nonce, hs->nonce, PROTO_NONCE_LEN) == 0)
		return FAIL(PROTO_BYE_AUTH, "peer echoed our challenge (reflection)");
	memcpy(hs->peer_nonce, nonce, PROTO_NONCE_LEN);
	memset(reply, 0, sizeof(*reply));
	reply->type = PROTO_AUTH;
	reply->u.auth.kind = PROTO_AUTH_PROOF;
	if (derive(hs, proof_label, hs->nonce, hs->peer_nonce, hs->self.node_id, hs->peer.node_id, hs->self.role,
	           reply->u.auth.value) != 0)
		return FAIL(PROTO_BYE_SHUTDOWN, "HMAC failed");
	*has_reply = true;
	hs->state = HS_WAIT_PROOF;
	return HANDSHAKE_CONTINUE;
}

static enum handshake_result on_proof(struct handshake *hs, const uint8_t *proof, struct proto_msg *reply,
                                      bool *has_reply)
{
	uint8_t expect[PROTO_KEY_LEN];
	int ok;

	if (derive(hs, proof_label, hs->peer_nonce, hs->nonce, hs->peer.node_id, hs->self.node_id, hs->peer.role,
	           expect) != 0)
		return FAIL(PROTO_BYE_SHUTDOWN, "HMAC failed");
	ok = CRYPTO_memcmp(expect, proof, PROTO_KEY_LEN) == 0;
	OPENSSL_cleanse(expect, sizeof(expect));
	if (!ok)
		return FAIL(PROTO_BYE_AUTH, "wrong proof: a different shared secret, or a forged or reflected proof");
	if (derive(hs, key_label, hs->nonce, hs->peer_nonce, hs->self.node_id, hs->peer.node_id, 0, hs->tx_key) != 0 ||
	    derive(hs, key_label, hs->peer_nonce, hs->nonce, hs->peer.node_id, hs->self.node_id, 0, hs->rx_key) != 0)
		return FAIL(PROTO_BYE_SHUTDOWN, "key derivation failed");
	hs->state = HS_DONE;
	return HANDSHAKE_DONE;
}

enum handshake_result handshake_input(struct handshake *hs, const struct proto_msg *in, struct proto_msg *reply,
                                      bool *has_reply)
{
	static const struct {
		enum proto_type type;
		uint8_t auth_kind;
		const char *what;
	} expected[] = {
		[HS_WAIT_HELLO] = {PROTO_HELLO, 0, "HELLO"},
		[HS_WAIT_NONCE] = {PROTO_AUTH, PROTO_AUTH_NONCE, "AUTH nonce"},
		[HS_WAIT_PROOF] = {PROTO_AUTH, PROTO_AUTH_PROOF, "AUTH proof"},
	};

	*has_reply = false;
	if (hs->state == HS_FAILED)
		return HANDSHAKE_FAILED;
	if (in->type == PROTO_GOODBYE)
		return FAIL(0, "peer said goodbye: %s", proto_goodbye_name(in->u.goodbye.reason));
	if (hs->state == HS_DONE)
		return FAIL(PROTO_BYE_PROTOCOL, "%s after the handshake ended", proto_type_name(in->type));
	if (in->type != expected[hs->state].type ||
	    (in->type == PROTO_AUTH && in->u.auth.kind != expected[hs->state].auth_kind))
		return FAIL(PROTO_BYE_PROTOCOL, "%s%s while waiting for %s", proto_type_name(in->type),
		            in->type != PROTO_AUTH ? "" : in->u.auth.kind == PROTO_AUTH_NONCE ? " nonce" : " proof",
		            expected[hs->state].what);
	switch (hs->state) {
	case HS_WAIT_HELLO:
		return on_hello(hs, &in->u.hello, reply, has_reply);
	case HS_WAIT_NONCE:
		return on_nonce(hs, in->u.auth.value, reply, has_reply);
	default:
		return on_proof(hs, in->u.auth.value, reply, has_reply);
	}
}

void handshake_abort(struct handshake *hs, const char *why)
{
	struct proto_msg unused;
	bool no_reply = false;

	if (hs->state != HS_FAILED)
		fail(hs, 0, &unused, &no_reply, "%s", why);
}

const char *handshake_reason(const struct handshake *hs)
{
	return hs->reason;
}

void handshake_keys(const struct handshake *hs, uint8_t tx_key[PROTO_KEY_LEN], uint8_t rx_key[PROTO_KEY_LEN])
{
	memcpy(tx_key, hs->tx_key, PROTO_KEY_LEN);
	memcpy(rx_key, hs->rx_key, PROTO_KEY_LEN);
}

uint8_t handshake_version(const struct handshake *hs)
{
	return hs->version;
}

const struct proto_hello *handshake_peer(const struct handshake *hs)
{
	return &hs->peer;
}
