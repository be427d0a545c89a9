#include "mgmt/api_auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "common/fileio.h"

#define NEW_SECRET_BYTES 32

static int create_secret(const char *path, char *err, size_t errlen)
{
	uint8_t raw[NEW_SECRET_BYTES];
	char hex[2 * NEW_SECRET_BYTES + 2];
	int fd, rc;

	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		snprintf(err, errlen, "%s: no random numbers for a new secret", path);
		return -1;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	hex[2 * NEW_SECRET_BYTES] = '\n';
	OPENSSL_cleanse(raw, sizeof(raw));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	rc = fd >= 0 && file_pwrite_all(fd, hex, 2 * NEW_SECRET_BYTES + 1, 0) == 0 && fsync(fd) == 0 ? 0 : -1;
	if (rc < 0)
		snprintf(err, errlen, "cannot create the admin secret %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	if (rc < 0 && fd >= 0)
		unlink(path);
	OPENSSL_cleanse(hex, sizeof(hex));
	return rc;
}

int api_secret_load(const char *path, bool create, char secret[API_SECRET_MAX], char *err, size_t errlen)
{
	struct stat st;
	FILE *f;
	size_t len;

	if (create && access(path, F_OK) < 0 && errno == ENOENT && create_secret(path, err, errlen) < 0)
		return -1;
	f = fopen(path, "re");
	if (!f) {
		snprintf(err, errlen, "admin secret %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077)) {
		fclose(f);
		snprintf(err, errlen, "admin secret %s may be read by others; chmod 600 it (and choose a new secret)", path);
		return -1;
	}
	if (!fgets(secret, API_SECRET_MAX, f))
		secret[0] = '\0';
	fclose(f);
	len = strcspn(secret, "\r\n");
	secret[len] = '\0';
	if (!len) {
		snprintf(err, errlen, "admin secret %s is empty; put a long random secret on its first line", path);
		return -1;
	}
	return 0;
}

void api_login_proof(const char *secret, const uint8_t *binding, size_t binding_len, char proof[API_PROOF_HEX + 1])
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned len = 0;

	HMAC(EVP_sha256(), secret, (int)strlen(secret), binding, binding_len, mac, &len);
	for (unsigned i = 0; i < len && i < API_PROOF_HEX / 2; i++)
		snprintf(proof + 2 * i, 3, "%02x", mac[i]);
	proof[API_PROOF_HEX] = '\0';
	OPENSSL_cleanse(mac, sizeof(mac));
}

bool api_login_check(const char *secret, const uint8_t *binding, size_t binding_len, const char *proof)
{
	char want[API_PROOF_HEX + 1];
	bool ok;

	if (strlen(proof) != API_PROOF_HEX)
		return false;
	api_login_proof(secret, binding, binding_len, want);
	ok = CRYPTO_memcmp(want, proof, API_PROOF_HEX) == 0;
	OPENSSL_cleanse(want, sizeof(want));
	return ok;
}
