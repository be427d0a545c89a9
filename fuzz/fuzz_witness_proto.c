/* Fuzzes the witness protocol's streaming decoder with arbitrary bytes, cut into
 * arbitrary pieces, with and without a session key.  Every message it accepts must
 * re-encode to the very payload it came from (the decoder accepts nothing the encoder
 * refuses), and every refusal must say why. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ha/witness_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_payload(const struct witness_msg *m, const uint8_t *frame_end, size_t tag_len)
{
	struct witness_proto *tx = witness_proto_new();
	uint8_t f[WITNESS_PROTO_FRAME_MAX];
	size_t plen = witness_proto_payload_len(m->type);

	if (tx == NULL || witness_proto_encode(tx, m, f) != WITNESS_PROTO_HEADER_LEN + plen ||
	    memcmp(f + WITNESS_PROTO_HEADER_LEN, frame_end - tag_len - plen, plen) != 0)
		abort();
	witness_proto_free(tx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[WITNESS_PROTO_KEY_LEN] = {9, 8, 7};
	struct witness_proto *rx;
	size_t chunk, off = 1, tag_len;

	if (size < 1 || (rx = witness_proto_new()) == NULL)
		return 0;
	if (data[0] & 1)
		witness_proto_set_rx_key(rx, key);
	tag_len = (data[0] & 1) ? WITNESS_PROTO_TAG_LEN : 0;
	chunk = 1u << ((data[0] >> 1) & 7); /* 1..128 bytes a call */
	while (off < size) {
		struct witness_msg m;
		size_t used, n = size - off < chunk ? size - off : chunk;
		enum witness_proto_result e = witness_proto_feed(rx, data + off, n, &used, &m);

		if (used > n)
			abort();
		off += used;
		if (e == WITNESS_PROTO_MSG) {
			check_payload(&m, data + off, tag_len);
		} else if (e == WITNESS_PROTO_ERROR) {
			if (witness_proto_error(rx)[0] == '\0')
				abort();
			break;
		}
	}
	witness_proto_free(rx);
	return 0;
}
