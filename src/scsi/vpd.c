/* Vital product data pages (SPC-4 §7.8, SBC-3 §6.5) answered by INQUIRY with EVPD=1. */
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "scsi/lu_state.h"
#include "scsi/sbc.h"
#include "scsi/spc.h"

#define VPD_MAX 512

/* The NAA designator is locally derived: NAA 6 followed by 124 bits of the uuid, so a
 * replication partner sharing the uuid presents the same identity. */
void lu_naa(const struct scsi_lu *lu, uint8_t naa[16])
{
	memcpy(naa, lu->uuid, 16);
	naa[0] = (uint8_t)(0x60 | (lu->uuid[0] & 0x0f));
}

/* Appends a designation descriptor; returns its length. */
static uint32_t designator(uint8_t *p, uint8_t code_set, uint8_t assoc_type, const void *id, uint32_t len)
{
	p[0] = code_set;
	p[1] = assoc_type;
	p[3] = (uint8_t)len;
	memcpy(p + 4, id, len);
	return 4 + len;
}

/* A SCSI name string: NUL-terminated, padded to a multiple of four. */
static uint32_t name_designator(uint8_t *p, uint8_t assoc_type, const char *name)
{
	uint32_t len = (uint32_t)strlen(name) + 1;

	len = (len + 3) & ~3u;
	memset(p + 4, 0, len);
	p[0] = 0x53; /* iSCSI protocol, UTF-8 */
	p[1] = assoc_type;
	p[3] = (uint8_t)len;
	memcpy(p + 4, name, strlen(name));
	return 4 + len;
}

static uint32_t page_device_id(const struct scsi_task *task, uint8_t *p)
{
	const struct scsi_lu *lu = task->lu;
	const struct scsi_itn *itn = task->itn;
	uint8_t naa[16], port[4] = { 0 }, group[4] = { 0 };
	char t10[8 + 32 + 1], name[SCSI_NAME_MAX + 16];
	uint32_t n = 0;

	lu_naa(lu, naa);
	n += designator(p + n, 0x01, 0x03, naa, sizeof(naa));
	memcpy(t10, lu->vendor, 8);
	for (unsigned i = 0; i < 16; i++)
		snprintf(t10 + 8 + 2 * i, 3, "%02x", lu->uuid[i]);
	n += designator(p + n, 0x02, 0x01, t10, sizeof(t10) - 1);
	/* Target port identity comes from the nexus the command arrived on. */
	put_be16(port + 2, itn->relative_port);
	n += designator(p + n, 0x51, 0x94, port, sizeof(port));
	put_be16(group + 2, itn->port_group);
	n += designator(p + n, 0x51, 0x95, group, sizeof(group));
	snprintf(name, sizeof(name), "%s,t,0x%04x", itn->target_name, itn->tpgt);
	n += name_designator(p + n, 0x98, name);
	n += name_designator(p + n, 0xa8, itn->target_name);
	return n;
}

static uint32_t page_block_limits(const struct scsi_lu *lu, uint8_t *p)
{
	uint32_t max_xfer = SBC_MAX_TRANSFER_BYTES >> lu->block_shift;
	uint32_t granularity = lu->block_size < 4096 ? 4096 >> lu->block_shift : 1;

	p[0] = 0x01; /* WSNZ: WRITE SAME needs a block count */
	p[1] = SBC_MAX_COMPARE_AND_WRITE(lu->block_shift);
	put_be16(p + 2, (uint16_t)granularity);
	put_be32(p + 4, max_xfer);
	put_be32(p + 8, (1u << 20) >> lu->block_shift); /* optimal: 1 MiB keeps readahead sane */
	put_be32(p + 12, max_xfer);
	if (lu->thin) {
		put_be32(p + 16, SBC_MAX_UNMAP_BLOCKS);
		put_be32(p + 20, SBC_MAX_UNMAP_DESCRIPTORS);
		put_be32(p + 24, granularity);
	}
	put_be64(p + 32, SBC_MAX_WRITE_SAME_BLOCKS);
	return 0x3c;
}

static uint32_t page_provisioning(const struct scsi_lu *lu, uint8_t *p)
{
	if (lu->thin) {
		p[1] = 0x80 | 0x40 | 0x20 | 0x04; /* LBPU, LBPWS, LBPWS10, LBPRZ */
		p[2] = 0x02;                      /* thin provisioned */
	}
	return 4;
}

static const uint8_t supported_pages[] = { 0x00, 0x80, 0x83, 0x86, 0x8f, 0xb0, 0xb1, 0xb2 };

void vpd_inquiry(struct scsi_task *task)
{
	const struct scsi_lu *lu = task->lu;
	uint8_t buf[VPD_MAX];
	uint8_t *body = buf + 4;
	uint32_t len;

	memset(buf, 0, sizeof(buf));
	buf[1] = task->cdb[2];
	switch (task->cdb[2]) {
	case 0x00:
		memcpy(body, supported_pages, sizeof(supported_pages));
		len = sizeof(supported_pages);
		break;
	case 0x80:
		len = (uint32_t)strlen(lu->serial);
		memcpy(body, lu->serial, len);
		break;
	case 0x83:
		len = page_device_id(task, body);
		break;
	case 0x86:
		body[1] = 0x07; /* HEADSUP, ORDSUP, SIMPSUP */
		body[2] = 0x01; /* V_SUP: a volatile cache SYNCHRONIZE CACHE flushes */
		body[3] = 0x01; /* LUICLR */
		len = 0x3c;
		break;
	case 0x8f:
		len = xcopy_vpd_page(body);
		break;
	case 0xb0:
		len = page_block_limits(lu, body);
		break;
	case 0xb1:
		put_be16(body, 0x0001); /* non-rotating medium */
		len = 0x3c;
		break;
	case 0xb2:
		len = page_provisioning(lu, body);
		break;
	default:
		lu_sense_field(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, true, 2, -1);
		lu_complete(task);
		return;
	}
	put_be16(buf + 2, (uint16_t)len);
	lu_reply(task, buf, 4 + len, get_be16(task->cdb + 3));
	lu_complete(task);
}
