/* PDU framing checks (RFC 7143 §11.2): what can be decided from the BHS alone, and the
 * digests. */
#include "iscsi/pdu.h"

#include <string.h>

#include "common/crc32c.h"

int pdu_check_header(const uint8_t *bhs, uint32_t max_data_seg_len)
{
	/* A data segment larger than we declared cannot be buffered; the stream position of
	 * the next PDU is still known, but RFC 7143 §7.8 lets us treat it as a protocol error. */
	if (pdu_data_seg_len(bhs) > max_data_seg_len)
		return ISCSI_REJECT_PROTOCOL_ERROR;
	/* Target opcodes and reserved opcode values never come from an initiator; the
	 * dispatcher rejects them, the framing is still trustworthy. */
	return 0;
}

uint32_t pdu_wire_len(const uint8_t *bhs, const struct pdu_framing *f)
{
	uint32_t data_len = pdu_data_seg_len(bhs);
	uint32_t len = ISCSI_BHS_LEN + pdu_ahs_len(bhs);

	if (f->header_digest)
		len += ISCSI_DIGEST_LEN;
	if (data_len) {
		len += ISCSI_PAD(data_len);
		if (f->data_digest)
			len += ISCSI_DIGEST_LEN;
	}
	return len;
}

int pdu_parse(const uint8_t *wire, const struct pdu_framing *f, struct iscsi_pdu *pdu)
{
	uint32_t ahs_len = pdu_ahs_len(wire);
	uint32_t hdr_len = ISCSI_BHS_LEN + ahs_len;
	const uint8_t *data = wire + hdr_len;

	if (f->header_digest) {
		if (crc32c(wire, hdr_len) != pdu_get_digest(wire + hdr_len))
			return ISCSI_REJECT_PROTOCOL_ERROR;
		data += ISCSI_DIGEST_LEN;
	}
	memcpy(pdu->bhs, wire, ISCSI_BHS_LEN);
	pdu->ahs = ahs_len ? wire + ISCSI_BHS_LEN : NULL;
	pdu->ahs_len = ahs_len;
	pdu->data_len = pdu_data_seg_len(wire);
	pdu->data = pdu->data_len ? data : NULL;
	if (pdu->data_len && f->data_digest &&
	    crc32c(data, ISCSI_PAD(pdu->data_len)) != pdu_get_digest(data + ISCSI_PAD(pdu->data_len)))
		return ISCSI_REJECT_DATA_DIGEST;
	return 0;
}
