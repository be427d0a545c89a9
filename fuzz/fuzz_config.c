/* Feeds arbitrary bytes to the configuration parser: it must accept or refuse them with
 * a message, never crash, hang or leak. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mgmt/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg = NULL;
	char err[512];

	if (config_parse((const char *)data, size, "fuzz.conf", &cfg, err, sizeof(err)) == 0)
		config_free(cfg);
	else if (strncmp(err, "fuzz.conf:", 10) != 0)
		__builtin_trap();
	return 0;
}
