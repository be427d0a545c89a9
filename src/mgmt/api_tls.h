/* TLS for the management API's TCP listener, over memory buffers: the reactor moves the
 * bytes (io_uring RECV/SEND), OpenSSL only transforms them.
 *
 * The node's certificate is self-signed and made at first start; authentication does not
 * rest on it but on the administrator secret (mgmt/api_auth.h), proved bound to this TLS
 * session, so a man in the middle can neither learn nor replay it. */
#ifndef TWINSAN_MGMT_API_TLS_H
#define TWINSAN_MGMT_API_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define API_TLS_EXPORTER_LABEL "EXPORTER-twinsan-admin-login"
#define API_TLS_BINDING_LEN 32

struct api_tls_ctx;
struct api_tls;

/* Loads the key and certificate at key_path and cert_path, creating both (mode 0600) if
 * neither exists.  -1 with err naming the file and the fault. */
int api_tls_ctx_new(const char *key_path, const char *cert_path, struct api_tls_ctx **out, char *err, size_t errlen);
void api_tls_ctx_free(struct api_tls_ctx *ctx);

/* A server side session; NULL when out of memory. */
struct api_tls *api_tls_new(struct api_tls_ctx *ctx);
void api_tls_free(struct api_tls *t);

/* Takes ciphertext received from the peer; -1 if the peer speaks something else than TLS. */
int api_tls_feed(struct api_tls *t, const void *buf, size_t len);
/* Plaintext the peer sent: bytes copied to buf (0: none yet), -1 on a TLS error or close. */
ssize_t api_tls_read(struct api_tls *t, void *buf, size_t cap);
/* Encrypts plaintext for the peer; -1 on error. */
int api_tls_write(struct api_tls *t, const void *buf, size_t len);
/* Ciphertext to send (handshake or records), malloc'd in *out; 0 when there is none. */
size_t api_tls_take_output(struct api_tls *t, char **out);
/* The session's channel binding (RFC 5705 exporter); -1 before the handshake finished. */
int api_tls_binding(struct api_tls *t, uint8_t out[API_TLS_BINDING_LEN]);

#endif
