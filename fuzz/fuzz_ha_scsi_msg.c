/* Fuzzes the decoder of the HA SCSI state channel's messages (ha/scsi_msg.h): it must
 * never crash, pointers it returns stay inside the input, and what it accepts encodes
 * back to the very same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ha/scsi_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const uint8_t *p, uint32_t n, const uint8_t *data, size_t size)
{
	if (n && (p < data || p + n > data + size))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scsi_msg m;
	uint8_t *buf;
	size_t len;
	char err[256];

	if (scsi_msg_decode(data, size, &m, err, sizeof(err)) != 0)
		return 0;
	inside(m.state, m.state_len, data, size);
	inside(m.data_out, m.data_out_len, data, size);
	if (scsi_msg_encode(&m, &buf, &len) != 0)
		abort();
	if (len != size || memcmp(buf, data, size) != 0)
		abort();
	free(buf);
	return 0;
}
