/* Initiator ports and iSCSI TransportIDs (SPC-4 §7.6.4.6). */
#include "scsi/pr_port.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"

#define TID_PROTOCOL_ISCSI 0x5
#define TID_FORMAT_NAME 0x0      /* iSCSI name only: every port of that initiator */
#define TID_FORMAT_PORT 0x1      /* iSCSI name, ",i,0x", ISID */
#define TID_HEADER_LEN 4
#define TID_MIN_ADDITIONAL 20    /* SPC-4: the additional length is at least 20 */
#define TID_PORT_SEPARATOR ",i,0x"

void pr_port_from_itn(struct pr_port *port, const struct scsi_itn *itn)
{
	memset(port, 0, sizeof(*port));
	str_copy(port->name, sizeof(port->name), itn->initiator_name);
	memcpy(port->isid, itn->isid, sizeof(port->isid));
}

/* iSCSI names are case-insensitive once normalised (RFC 3722). */
static bool same_name(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

bool pr_port_matches(const struct pr_port *port, const struct scsi_itn *itn)
{
	return same_name(port->name, itn->initiator_name) &&
	       (port->any_isid || memcmp(port->isid, itn->isid, sizeof(port->isid)) == 0);
}

bool pr_port_overlaps(const struct pr_port *a, const struct pr_port *b)
{
	return same_name(a->name, b->name) &&
	       (a->any_isid || b->any_isid || memcmp(a->isid, b->isid, sizeof(a->isid)) == 0);
}

bool pr_isid_parse(const char *hex, size_t len, uint8_t isid[6])
{
	char digits[PR_ISID_HEX_LEN + 1];

	if (len == 0 || len > PR_ISID_HEX_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isxdigit((unsigned char)hex[i]))
			return false;
	memcpy(digits, hex, len);
	digits[len] = '\0';
	uint64_t v = strtoull(digits, NULL, 16);
	for (int i = 5; i >= 0; i--, v >>= 8)
		isid[i] = (uint8_t)v;
	return true;
}

void pr_isid_format(const uint8_t isid[6], char out[PR_ISID_HEX_LEN + 1])
{
	for (int i = 0; i < 6; i++)
		snprintf(out + 2 * i, 3, "%02x", isid[i]);
}

size_t pr_tid_parse(const uint8_t *buf, size_t len, struct pr_port *out)
{
	if (len < TID_HEADER_LEN)
		return 0;
	unsigned format = buf[0] >> 6, protocol = buf[0] & 0xf;
	size_t additional = get_be16(buf + 2);
	if (protocol != TID_PROTOCOL_ISCSI || (format != TID_FORMAT_NAME && format != TID_FORMAT_PORT) ||
	    additional == 0 || additional % 4 != 0 || additional > len - TID_HEADER_LEN)
		return 0;

	const char *text = (const char *)buf + TID_HEADER_LEN;
	const char *nul = memchr(text, '\0', additional);
	if (!nul)
		return 0;
	size_t text_len = (size_t)(nul - text);
	size_t name_len = text_len;

	memset(out, 0, sizeof(*out));
	if (format == TID_FORMAT_PORT) {
		const char *sep = memchr(text, ',', text_len);
		size_t sep_len = strlen(TID_PORT_SEPARATOR);
		if (!sep || (size_t)(nul - sep) < sep_len || strncasecmp(sep, TID_PORT_SEPARATOR, sep_len) != 0)
			return 0;
		name_len = (size_t)(sep - text);
		const char *hex = sep + sep_len;
		if (!pr_isid_parse(hex, (size_t)(nul - hex), out->isid))
			return 0;
	} else {
		out->any_isid = true;
	}
	if (name_len == 0 || name_len >= sizeof(out->name) || memchr(text, ',', name_len))
		return 0;
	memcpy(out->name, text, name_len);
	return TID_HEADER_LEN + additional;
}

static size_t tid_text_len(const struct pr_port *port)
{
	size_t n = strlen(port->name);
	if (!port->any_isid)
		n += strlen(TID_PORT_SEPARATOR) + PR_ISID_HEX_LEN;
	return n + 1; /* NUL */
}

size_t pr_tid_len(const struct pr_port *port)
{
	size_t additional = (tid_text_len(port) + 3) & ~(size_t)3;
	return TID_HEADER_LEN + MAX(additional, (size_t)TID_MIN_ADDITIONAL);
}

void pr_tid_encode(const struct pr_port *port, uint8_t *out)
{
	size_t len = pr_tid_len(port);
	char isid[PR_ISID_HEX_LEN + 1];

	memset(out, 0, len);
	out[0] = (uint8_t)((port->any_isid ? TID_FORMAT_NAME : TID_FORMAT_PORT) << 6 | TID_PROTOCOL_ISCSI);
	put_be16(out + 2, (uint16_t)(len - TID_HEADER_LEN));
	char *text = (char *)out + TID_HEADER_LEN;
	size_t name_len = strlen(port->name);
	memcpy(text, port->name, name_len);
	if (!port->any_isid) {
		pr_isid_format(port->isid, isid);
		memcpy(text + name_len, TID_PORT_SEPARATOR, strlen(TID_PORT_SEPARATOR));
		memcpy(text + name_len + strlen(TID_PORT_SEPARATOR), isid, PR_ISID_HEX_LEN);
	}
}
