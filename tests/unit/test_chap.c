/* CHAP, the target's half: algorithm choice, fresh challenges, right and wrong secrets
 * and users with MD5 and SHA-256, hex and base64 responses, and mutual CHAP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iscsi/chap.h"
#include "iscsi/text.h"

static const struct iscsi_target_auth auth = {
	.chap_required = true,
	.initiator = {"alice", "alice-secret-12", 15},
	.mutual = true,
	.target = {"target1", "target-secret-1", 15},
};

/* What an initiator computes: H(id || secret || challenge). */
static size_t digest(int alg, uint8_t id, const char *secret, const uint8_t *challenge, size_t len,
                     uint8_t *out)
{
	const EVP_MD *md = alg == ISCSI_CHAP_MD5 ? EVP_md5() : alg == ISCSI_CHAP_SHA1 ? EVP_sha1()
	                   : alg == ISCSI_CHAP_SHA256 ? EVP_sha256() : EVP_sha3_256();
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned n = 0;

	assert_non_null(ctx);
	assert_int_equal(EVP_DigestInit_ex(ctx, md, NULL), 1);
	EVP_DigestUpdate(ctx, &id, 1);
	EVP_DigestUpdate(ctx, secret, strlen(secret));
	EVP_DigestUpdate(ctx, challenge, len);
	EVP_DigestFinal_ex(ctx, out, &n);
	EVP_MD_CTX_free(ctx);
	return n;
}

static void hex(const uint8_t *bytes, size_t len, char *out)
{
	strcpy(out, "0x");
	for (size_t i = 0; i < len; i++)
		sprintf(out + 2 + 2 * i, "%02X", bytes[i]);
}

static void base64(const uint8_t *bytes, size_t len, char *out)
{
	strcpy(out, "0b");
	EVP_EncodeBlock((unsigned char *)out + 2, bytes, (int)len);
}

struct exchange {
	struct iscsi_chap *chap;
	struct iscsi_text_buf buf;
	struct iscsi_text_list list;
	uint8_t id;
	uint8_t challenge[1024];
	size_t challenge_len;
};

/* Runs the target's first half: choice from offer, then the challenge. */
static void challenge(struct exchange *x, const char *offer, int want_alg)
{
	uint64_t id;
	int len;

	memset(x, 0, sizeof(*x));
	x->chap = iscsi_chap_new();
	assert_non_null(x->chap);
	assert_int_equal(iscsi_chap_select(x->chap, offer), 0);
	assert_int_equal(iscsi_chap_alg(x->chap), want_alg);
	iscsi_text_buf_init(&x->buf);
	assert_int_equal(iscsi_chap_challenge(x->chap, &x->buf), 0);
	assert_int_equal(iscsi_text_parse(x->buf.data, x->buf.len, &x->list), ISCSI_TEXT_OK);
	assert_int_equal(atoi(iscsi_text_find(&x->list, "CHAP_A")), want_alg);
	assert_int_equal(iscsi_text_number(iscsi_text_find(&x->list, "CHAP_I"), 255, &id), 0);
	x->id = (uint8_t)id;
	len = iscsi_text_binary(iscsi_text_find(&x->list, "CHAP_C"), x->challenge, sizeof(x->challenge));
	assert_true(len >= 16);
	x->challenge_len = (size_t)len;
}

static void finish(struct exchange *x)
{
	iscsi_text_list_free(&x->list);
	iscsi_text_buf_free(&x->buf);
	iscsi_chap_free(x->chap);
}

static void respond_and_verify(int alg, const char *offer)
{
	struct exchange x;
	uint8_t d[64];
	char r[256];
	size_t n;

	challenge(&x, offer, alg);
	n = digest(alg, x.id, "alice-secret-12", x.challenge, x.challenge_len, d);
	hex(d, n, r);
	assert_int_equal(iscsi_chap_verify(x.chap, &auth.initiator, "alice", r), 0);
	base64(d, n, r);
	assert_int_equal(iscsi_chap_verify(x.chap, &auth.initiator, "alice", r), 0);
	assert_int_equal(iscsi_chap_verify(x.chap, &auth.initiator, "bob", r), -1);

	n = digest(alg, x.id, "wrong-secret", x.challenge, x.challenge_len, d);
	hex(d, n, r);
	assert_int_equal(iscsi_chap_verify(x.chap, &auth.initiator, "alice", r), -1);
	n = digest(alg, (uint8_t)(x.id + 1), "alice-secret-12", x.challenge, x.challenge_len, d);
	hex(d, n, r);
	assert_int_equal(iscsi_chap_verify(x.chap, &auth.initiator, "alice", r), -1);
	r[strlen(r) - 2] = '\0'; /* one byte short */
	assert_int_equal(iscsi_chap_verify(x.chap, &auth.initiator, "alice", r), -1);
	assert_int_equal(iscsi_chap_verify(x.chap, &auth.initiator, "alice", "0xZZ"), -1);
	assert_int_equal(iscsi_chap_verify(x.chap, &auth.initiator, "alice", ""), -1);
	finish(&x);
}

static void md5(void **state) { respond_and_verify(ISCSI_CHAP_MD5, "5"); }
static void sha1(void **state) { respond_and_verify(ISCSI_CHAP_SHA1, "6"); }
static void sha256(void **state) { respond_and_verify(ISCSI_CHAP_SHA256, "7"); }
static void sha3_256(void **state) { respond_and_verify(ISCSI_CHAP_SHA3_256, "8"); }

/* The initiator's order wins; unknown algorithms are skipped. */
static void algorithm_choice(void **state)
{
	struct iscsi_chap *chap = iscsi_chap_new();

	assert_int_equal(iscsi_chap_select(chap, "5,6,7,8"), 0);
	assert_int_equal(iscsi_chap_alg(chap), ISCSI_CHAP_MD5);
	assert_int_equal(iscsi_chap_select(chap, "1,99,7,5"), 0);
	assert_int_equal(iscsi_chap_alg(chap), ISCSI_CHAP_SHA256);
	assert_int_equal(iscsi_chap_select(chap, "56"), -1);
	assert_int_equal(iscsi_chap_select(chap, ""), -1);
	assert_int_equal(iscsi_chap_select(chap, ",,"), -1);
	assert_int_equal(iscsi_chap_select(chap, "5x"), -1);
	iscsi_chap_free(chap);
}

/* Two challenges are never the same. */
static void fresh_challenges(void **state)
{
	struct exchange a, b;

	challenge(&a, "7", ISCSI_CHAP_SHA256);
	challenge(&b, "7", ISCSI_CHAP_SHA256);
	assert_int_equal(a.challenge_len, 32);
	assert_memory_not_equal(a.challenge, b.challenge, a.challenge_len);
	finish(&a);
	finish(&b);
}

static void mutual(void **state)
{
	struct exchange x;
	struct iscsi_text_buf out;
	struct iscsi_text_list list;
	uint8_t theirs[32], want[64], got[64];
	char c[128];
	struct iscsi_target_auth one_way = auth, same_secret = auth;
	size_t n;

	memset(theirs, 0x5a, sizeof(theirs));
	hex(theirs, sizeof(theirs), c);
	challenge(&x, "5", ISCSI_CHAP_MD5);
	iscsi_text_buf_init(&out);
	assert_int_equal(iscsi_chap_answer(x.chap, &auth, "77", c, &out), 0);
	assert_int_equal(iscsi_text_parse(out.data, out.len, &list), ISCSI_TEXT_OK);
	assert_string_equal(iscsi_text_find(&list, "CHAP_N"), "target1");
	n = digest(ISCSI_CHAP_MD5, 77, "target-secret-1", theirs, sizeof(theirs), want);
	assert_int_equal(iscsi_text_binary(iscsi_text_find(&list, "CHAP_R"), got, sizeof(got)), (int)n);
	assert_memory_equal(got, want, n);
	iscsi_text_list_free(&list);

	/* Our own challenge reflected back, malformed values, no target credentials, shared secret. */
	iscsi_text_buf_reset(&out);
	hex(x.challenge, x.challenge_len, c);
	assert_int_equal(iscsi_chap_answer(x.chap, &auth, "1", c, &out), -1);
	assert_int_equal(iscsi_chap_answer(x.chap, &auth, "256", "0x1234", &out), -1);
	assert_int_equal(iscsi_chap_answer(x.chap, &auth, "1", "1234", &out), -1);
	one_way.mutual = false;
	assert_int_equal(iscsi_chap_answer(x.chap, &one_way, "1", "0x1234", &out), -1);
	same_secret.target = auth.initiator;
	strcpy(same_secret.target.user, "target1");
	assert_int_equal(iscsi_chap_answer(x.chap, &same_secret, "1", "0x1234", &out), -1);
	assert_int_equal(out.len, 0);
	iscsi_text_buf_free(&out);
	finish(&x);
}

/* A response before any challenge proves nothing. */
static void no_challenge(void **state)
{
	struct iscsi_chap *chap = iscsi_chap_new();

	assert_int_equal(iscsi_chap_verify(chap, &auth.initiator, "alice", "0x00112233445566778899aabbccddeeff"), -1);
	iscsi_chap_free(chap);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(md5),
		cmocka_unit_test(sha1),
		cmocka_unit_test(sha256),
		cmocka_unit_test(sha3_256),
		cmocka_unit_test(algorithm_choice),
		cmocka_unit_test(fresh_challenges),
		cmocka_unit_test(mutual),
		cmocka_unit_test(no_challenge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
