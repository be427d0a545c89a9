#include "mgmt/api_tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define CERT_DAYS 3650

struct api_tls_ctx {
	SSL_CTX *ssl;
};

struct api_tls {
	SSL *ssl;
	BIO *rbio, *wbio; /* owned by ssl */
};

static void tls_error(char *err, size_t errlen, const char *what, const char *path)
{
	char ossl[160] = "";

	ERR_error_string_n(ERR_get_error(), ossl, sizeof(ossl));
	snprintf(err, errlen, "%s %s: %s", what, path, ossl[0] ? ossl : strerror(errno));
	ERR_clear_error();
}

/* Opens path for a new secret file: only the owner may read it. */
static FILE *create_private(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

	if (fd >= 0 && !f)
		close(fd);
	return f;
}

/* Closes f after making its contents durable; -1 if anything failed. */
static int close_durable(FILE *f, int ok)
{
	ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
	return fclose(f) == 0 && ok ? 0 : -1;
}

static X509 *self_signed(EVP_PKEY *key)
{
	X509 *x = X509_new();
	X509_NAME *name;
	uint64_t serial;

	if (!x || RAND_bytes((unsigned char *)&serial, sizeof(serial)) != 1 || !X509_set_version(x, 2) ||
	    !ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), (serial & INT64_MAX) | 1) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), (long)CERT_DAYS * 24 * 3600) || !X509_set_pubkey(x, key) ||
	    !(name = X509_get_subject_name(x)) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"twinsand", -1, -1, 0) ||
	    !X509_set_issuer_name(x, name) || !X509_sign(x, key, EVP_sha256())) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* First start: a P-256 key and a self-signed certificate for it. */
static int make_identity(const char *key_path, const char *cert_path, char *err, size_t errlen)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = key ? self_signed(key) : NULL;
	FILE *f;
	int rc = -1;

	if (!cert) {
		tls_error(err, errlen, "cannot make a key and certificate for", cert_path);
	} else if (!(f = create_private(key_path))) {
		tls_error(err, errlen, "cannot create", key_path);
	} else if (close_durable(f, PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)) < 0) {
		tls_error(err, errlen, "cannot write", key_path);
		unlink(key_path);
	} else if (!(f = create_private(cert_path)) || close_durable(f, PEM_write_X509(f, cert)) < 0) {
		tls_error(err, errlen, "cannot write", cert_path);
		unlink(cert_path);
		unlink(key_path);
	} else {
		rc = 0;
	}
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}

int api_tls_ctx_new(const char *key_path, const char *cert_path, struct api_tls_ctx **out, char *err, size_t errlen)
{
	struct api_tls_ctx *ctx;

	if (access(key_path, F_OK) < 0 && access(cert_path, F_OK) < 0 &&
	    make_identity(key_path, cert_path, err, errlen) < 0)
		return -1;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx || !(ctx->ssl = SSL_CTX_new(TLS_server_method()))) {
		free(ctx);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* TLS 1.3 only: its exporter is what the login proof is bound to. */
	SSL_CTX_set_min_proto_version(ctx->ssl, TLS1_3_VERSION);
	if (SSL_CTX_use_certificate_file(ctx->ssl, cert_path, SSL_FILETYPE_PEM) != 1) {
		tls_error(err, errlen, "cannot load the certificate", cert_path);
	} else if (SSL_CTX_use_PrivateKey_file(ctx->ssl, key_path, SSL_FILETYPE_PEM) != 1 ||
	           SSL_CTX_check_private_key(ctx->ssl) != 1) {
		tls_error(err, errlen, "cannot load the key (or it does not match the certificate)", key_path);
	} else {
		*out = ctx;
		return 0;
	}
	api_tls_ctx_free(ctx);
	return -1;
}

void api_tls_ctx_free(struct api_tls_ctx *ctx)
{
	if (!ctx)
		return;
	SSL_CTX_free(ctx->ssl);
	free(ctx);
}

struct api_tls *api_tls_new(struct api_tls_ctx *ctx)
{
	struct api_tls *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->ssl = SSL_new(ctx->ssl);
	t->rbio = BIO_new(BIO_s_mem());
	t->wbio = BIO_new(BIO_s_mem());
	if (!t->ssl || !t->rbio || !t->wbio) {
		BIO_free(t->rbio);
		BIO_free(t->wbio);
		SSL_free(t->ssl);
		free(t);
		return NULL;
	}
	SSL_set_bio(t->ssl, t->rbio, t->wbio);
	SSL_set_accept_state(t->ssl);
	return t;
}

void api_tls_free(struct api_tls *t)
{
	if (!t)
		return;
	SSL_free(t->ssl);
	free(t);
}

/* Advances the handshake; -1 when it failed. */
static int handshake(struct api_tls *t)
{
	int rc;

	if (SSL_is_init_finished(t->ssl))
		return 0;
	rc = SSL_do_handshake(t->ssl);
	if (rc == 1)
		return 0;
	rc = SSL_get_error(t->ssl, rc);
	ERR_clear_error();
	return rc == SSL_ERROR_WANT_READ || rc == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

int api_tls_feed(struct api_tls *t, const void *buf, size_t len)
{
	if (len > INT32_MAX || BIO_write(t->rbio, buf, (int)len) != (int)len)
		return -1;
	return handshake(t);
}

ssize_t api_tls_read(struct api_tls *t, void *buf, size_t cap)
{
	size_t n = 0;
	int rc;

	if (!SSL_is_init_finished(t->ssl) || !cap)
		return 0;
	if (SSL_read_ex(t->ssl, buf, cap, &n) == 1)
		return (ssize_t)n;
	rc = SSL_get_error(t->ssl, 0);
	ERR_clear_error();
	return rc == SSL_ERROR_WANT_READ || rc == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

int api_tls_write(struct api_tls *t, const void *buf, size_t len)
{
	size_t n = 0;
	int ok = SSL_write_ex(t->ssl, buf, len, &n) == 1 && n == len;

	ERR_clear_error();
	return ok ? 0 : -1;
}

size_t api_tls_take_output(struct api_tls *t, char **out)
{
	size_t len = (size_t)BIO_ctrl_pending(t->wbio);

	*out = NULL;
	if (!len || !(*out = malloc(len)))
		return 0;
	if (BIO_read(t->wbio, *out, (int)len) != (int)len) {
		free(*out);
		*out = NULL;
		return 0;
	}
	return len;
}

int api_tls_binding(struct api_tls *t, uint8_t out[API_TLS_BINDING_LEN])
{
	if (!SSL_is_init_finished(t->ssl) ||
	    SSL_export_keying_material(t->ssl, out, API_TLS_BINDING_LEN, API_TLS_EXPORTER_LABEL,
	                               strlen(API_TLS_EXPORTER_LABEL), NULL, 0, 0) != 1)
		return -1;
	return 0;
}
