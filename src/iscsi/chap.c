#include "iscsi/chap.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

#define CHAP_DIGEST_MAX 32
#define CHAP_CHALLENGE_MAX 1024 /* RFC 7143 §12.1.3 caps binary CHAP values at 1024 bytes */

struct iscsi_chap {
	const struct chap_alg_desc *alg;
	uint8_t id;
	uint8_t challenge[CHAP_CHALLENGE_MAX];
	size_t challenge_len;
};

struct chap_alg_desc {
	enum iscsi_chap_alg code;
	const char *name;
	const EVP_MD *(*md)(void);
	size_t digest_len;        /* also our challenge length: as long as the digest */
};

static const struct chap_alg_desc algorithms[] = {
	{ISCSI_CHAP_MD5, "MD5", EVP_md5, 16},
	{ISCSI_CHAP_SHA1, "SHA-1", EVP_sha1, 20},
	{ISCSI_CHAP_SHA256, "SHA-256", EVP_sha256, 32},
	{ISCSI_CHAP_SHA3_256, "SHA3-256", EVP_sha3_256, 32},
};

struct iscsi_chap *iscsi_chap_new(void) { return calloc(1, sizeof(struct iscsi_chap)); }

void iscsi_chap_free(struct iscsi_chap *chap)
{
	if (chap != NULL)
		OPENSSL_cleanse(chap, sizeof(*chap));
	free(chap);
}

int iscsi_chap_select(struct iscsi_chap *chap, const char *offer)
{
	const char *item;
	size_t n;

	/* RFC 7143 §6.2.1: the first value of the offer that the responder supports. */
	while (iscsi_text_next_item(&offer, &item, &n)) {
		char number[8];
		uint64_t code;

		if (n == 0 || n >= sizeof(number))
			continue;
		memcpy(number, item, n);
		number[n] = '\0';
		if (iscsi_text_number(number, 255, &code) != 0)
			continue;
		for (size_t i = 0; i < ARRAY_SIZE(algorithms); i++) {
			if (algorithms[i].code == code) {
				chap->alg = &algorithms[i];
				return 0;
			}
		}
	}
	return -1;
}

enum iscsi_chap_alg iscsi_chap_alg(const struct iscsi_chap *chap) { return chap->alg->code; }

int iscsi_chap_challenge(struct iscsi_chap *chap, struct iscsi_text_buf *reply)
{
	chap->challenge_len = chap->alg->digest_len;
	if (RAND_bytes(&chap->id, 1) != 1 ||
	    RAND_bytes(chap->challenge, (int)chap->challenge_len) != 1) {
		log_err("login: CHAP: no random bytes for a challenge");
		return -1;
	}
	iscsi_text_addf(reply, "CHAP_A", "%d", (int)chap->alg->code);
	iscsi_text_addf(reply, "CHAP_I", "%u", chap->id);
	iscsi_text_add_hex(reply, "CHAP_C", chap->challenge, chap->challenge_len);
	return 0;
}

/* H(identifier || secret || challenge), RFC 1994 §4.1. */
static int chap_digest(const struct chap_alg_desc *alg, uint8_t id, const struct iscsi_chap_creds *creds,
                       const uint8_t *challenge, size_t challenge_len, uint8_t *out)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned len = 0;
	int ok;

	if (ctx == NULL)
		return -1;
	ok = EVP_DigestInit_ex(ctx, alg->md(), NULL) == 1 && EVP_DigestUpdate(ctx, &id, 1) == 1 &&
	     EVP_DigestUpdate(ctx, creds->secret, creds->secret_len) == 1 &&
	     EVP_DigestUpdate(ctx, challenge, challenge_len) == 1 && EVP_DigestFinal_ex(ctx, out, &len) == 1 &&
	     len == alg->digest_len;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		log_err("login: CHAP: %s digest unavailable", alg->name);
	return ok ? 0 : -1;
}

int iscsi_chap_verify(const struct iscsi_chap *chap, const struct iscsi_chap_creds *creds,
                      const char *name, const char *response)
{
	uint8_t got[CHAP_DIGEST_MAX + 1], want[CHAP_DIGEST_MAX];
	int len;

	if (chap->alg == NULL || chap->challenge_len == 0) {
		log_warn("login: CHAP response before a challenge");
		return -1;
	}
	if (creds->user[0] == '\0' || strcmp(name, creds->user) != 0) {
		log_warn("login: CHAP: unknown user \"%.64s\"", name);
		return -1;
	}
	len = iscsi_text_binary(response, got, sizeof(got));
	if (len != (int)chap->alg->digest_len) {
		log_warn("login: CHAP: malformed response from user \"%.64s\"", name);
		return -1;
	}
	if (chap_digest(chap->alg, chap->id, creds, chap->challenge, chap->challenge_len, want) != 0)
		return -1;
	if (CRYPTO_memcmp(got, want, chap->alg->digest_len) != 0) {
		log_warn("login: CHAP: wrong secret for user \"%.64s\"", name);
		return -1;
	}
	return 0;
}

int iscsi_chap_answer(const struct iscsi_chap *chap, const struct iscsi_target_auth *auth,
                      const char *id, const char *challenge, struct iscsi_text_buf *reply)
{
	uint8_t theirs[CHAP_CHALLENGE_MAX], digest[CHAP_DIGEST_MAX];
	uint64_t their_id;
	int len;

	if (!auth->mutual || auth->target.user[0] == '\0') {
		log_warn("login: CHAP: initiator asks for mutual CHAP, which is not configured");
		return -1;
	}
	if (auth->target.secret_len == auth->initiator.secret_len &&
	    CRYPTO_memcmp(auth->target.secret, auth->initiator.secret, auth->target.secret_len) == 0) {
		log_err("login: CHAP: the target secret equals the initiator secret; refusing mutual CHAP");
		return -1;
	}
	len = iscsi_text_binary(challenge, theirs, sizeof(theirs));
	if (iscsi_text_number(id, 255, &their_id) != 0 || len <= 0) {
		log_warn("login: CHAP: malformed mutual challenge");
		return -1;
	}
	/* A reflected challenge would let an attacker make us compute its answer. */
	if ((size_t)len == chap->challenge_len && memcmp(theirs, chap->challenge, (size_t)len) == 0) {
		log_warn("login: CHAP: initiator reflected our challenge");
		return -1;
	}
	if (chap_digest(chap->alg, (uint8_t)their_id, &auth->target, theirs, (size_t)len, digest) != 0)
		return -1;
	iscsi_text_add(reply, "CHAP_N", auth->target.user);
	iscsi_text_add_hex(reply, "CHAP_R", digest, chap->alg->digest_len);
	OPENSSL_cleanse(digest, sizeof(digest));
	return 0;
}
