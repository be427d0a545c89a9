/* Feeds arbitrary request lines to the management API (parser, method table, parameter
 * checks, handlers on a stand-in device): every line must get one well-formed response
 * line, never a crash, hang or leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mgmt/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *dev_status(void *dev) { return json_pack("{s:s}", "name", "HA1"); }
static int dev_resolve(void *dev, bool keep_local, char *err, size_t errlen) { return 0; }
static int dev_set_failover(void *dev, const char *s, char *err, size_t errlen) { return 0; }
static int dev_verify(void *dev, char *err, size_t errlen)
{
	strcpy(err, "refused");
	return -1;
}

static const struct mgmt_device_ops dev_ops = {
	.status = dev_status,
	.resolve_split_brain = dev_resolve,
	.set_failover = dev_set_failover,
	.verify = dev_verify,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mgmt_api_params p = { .version = "fuzz" };
	struct mgmt_api *api;
	char *out;
	json_t *resp;

	/* Requests never touch the reactor: only the socket does. */
	if (mgmt_api_new(NULL, &p, &api) < 0 || mgmt_api_add_device(api, "HA1", &dev_ops, NULL) < 0)
		__builtin_trap();
	out = mgmt_api_execute(api, (const char *)data, size);
	if (!out)
		__builtin_trap();
	resp = json_loads(out, 0, NULL);
	if (!json_is_object(resp) || out[strlen(out) - 1] != '\n' || strchr(out, '\n') != out + strlen(out) - 1 ||
	    !json_object_get(resp, "result") == !json_object_get(resp, "error"))
		__builtin_trap();
	json_decref(resp);
	free(out);
	mgmt_api_free(api);
	return 0;
}
