/* The administrator secret of the management API's TCP listener, and the login proof.
 *
 * The secret is a file readable only by its owner: the daemon makes a random one at first
 * start (nobody can log in until root reads it or replaces it with their own), twinctl
 * reads the same file.  A client logs in by proving it knows the secret for this TLS
 * session: HMAC-SHA256(secret, the session's exporter value), so the secret never
 * travels and a proof is worthless on any other connection. */
#ifndef TWINSAN_MGMT_API_AUTH_H
#define TWINSAN_MGMT_API_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define API_SECRET_MAX 256
#define API_PROOF_HEX 64

/* Reads the secret (the file's first line) into secret; with create, a missing file is
 * made first with a random secret (mode 0600, durably).  Refuses a file that others may
 * read.  -1 with err naming the file and what to do. */
int api_secret_load(const char *path, bool create, char secret[API_SECRET_MAX], char *err, size_t errlen);

/* The proof for a session's channel binding, as lowercase hex. */
void api_login_proof(const char *secret, const uint8_t *binding, size_t binding_len, char proof[API_PROOF_HEX + 1]);
/* True if proof is the right one (compared in constant time). */
bool api_login_check(const char *secret, const uint8_t *binding, size_t binding_len, const char *proof);

#endif
