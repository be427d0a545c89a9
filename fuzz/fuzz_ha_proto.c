/* Fuzzes the HA sync-link streaming decoder with arbitrary bytes, cut into arbitrary
 * pieces, with and without a session key (of either protocol version's MAC).  Every message it accepts must re-encode to the
 * very payload it came from: the decoder accepts nothing the encoder would refuse. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "ha/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An untagged frame that ended just before `end` (within `start`..): re-encoding the
 * decoded message must give back its payload, byte for byte. */
static void check_round_trip(const struct proto_msg *m, const uint8_t *start, const uint8_t *end)
{
	struct proto_tx *tx = proto_tx_new();
	struct proto_frame f;
	size_t fixed, len;

	if (tx == NULL || proto_encode(tx, m, &f) != 0)
		abort();
	fixed = f.head_len - PROTO_HEADER_LEN;
	len = fixed + f.data_len;
	if ((size_t)(end - start) < PROTO_HEADER_LEN + len || memcmp(f.head + PROTO_HEADER_LEN, end - len, fixed) != 0 ||
	    (f.data_len > 0 && memcmp(f.data, end - f.data_len, f.data_len) != 0))
		abort();
	proto_tx_free(tx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[PROTO_KEY_LEN] = {7};
	struct proto_rx *rx;
	size_t chunk, off = 1;

	if (size < 1)
		return 0;
	log_set_level(LOG_LEVEL_ERR);
	rx = proto_rx_new((data[0] & 0x10) ? 512 : PROTO_MAX_PAYLOAD);
	if (rx == NULL)
		return 0;
	if (data[0] & 1)
		proto_rx_set_key(rx, key, (data[0] & 0x20) ? PROTO_VERSION_MIN : PROTO_VERSION_MAX);
	chunk = 1u << ((data[0] >> 1) & 7); /* 1..128 bytes a call */
	while (off < size) {
		struct proto_msg m;
		size_t used, n = size - off < chunk ? size - off : chunk;
		enum proto_error e = proto_rx_feed(rx, data + off, n, &used, &m);

		if (used > n)
			abort();
		if (e == PROTO_OK && !(data[0] & 1)) {
			check_round_trip(&m, data + 1, data + off + used);
		} else if (e != PROTO_OK && e != PROTO_NEED_MORE) {
			if (proto_rx_error(rx)[0] == '\0')
				abort();
			break;
		}
		off += used;
	}
	proto_rx_free(rx);
	return 0;
}
