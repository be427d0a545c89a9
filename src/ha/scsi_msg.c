/* Encoding and checked decoding of the SCSI state channel's messages. */
#include "ha/scsi_msg.h"

#include <stdio.h>
#include <string.h>

#include "common/bytebuf.h"

static void put_nexus(struct wbuf *w, const struct scsi_itn *itn)
{
	wbuf_name(w, itn->initiator_name, SCSI_NAME_MAX);
	wbuf_bytes(w, itn->isid, sizeof(itn->isid));
	wbuf_name(w, itn->target_name, SCSI_NAME_MAX);
	wbuf_u16(w, itn->tpgt);
	wbuf_u16(w, itn->relative_port);
	wbuf_u16(w, itn->port_group);
}

static void get_nexus(struct rbuf *r, struct scsi_itn *itn)
{
	const uint8_t *isid;

	memset(itn, 0, sizeof(*itn));
	rbuf_name(r, itn->initiator_name, sizeof(itn->initiator_name), "initiator name");
	isid = rbuf_take(r, sizeof(itn->isid), "isid");
	if (isid)
		memcpy(itn->isid, isid, sizeof(itn->isid));
	rbuf_name(r, itn->target_name, sizeof(itn->target_name), "target name");
	itn->tpgt = rbuf_u16(r, "tpgt");
	itn->relative_port = rbuf_u16(r, "relative port");
	itn->port_group = rbuf_u16(r, "port group");
	if (itn->relative_port == 0)
		rbuf_fail(r, "relative port");
}

static void put_state(struct wbuf *w, const uint8_t *state, uint32_t len)
{
	wbuf_u32(w, len);
	wbuf_bytes(w, state, len);
}

static void get_state(struct rbuf *r, struct scsi_msg *m)
{
	m->state_len = rbuf_u32(r, "state length");
	m->state = rbuf_take(r, m->state_len, "state");
}

int scsi_msg_encode(const struct scsi_msg *m, uint8_t **out, size_t *len)
{
	struct wbuf w = { 0 };

	wbuf_u8(&w, (uint8_t)m->kind);
	wbuf_u8(&w, 0);
	wbuf_u16(&w, 0);
	wbuf_u64(&w, m->id);
	switch (m->kind) {
	case SCSI_MSG_MEET:
		wbuf_u8(&w, m->rank);
		put_state(&w, m->state, m->state_len);
		break;
	case SCSI_MSG_EXEC:
		put_nexus(&w, &m->itn);
		wbuf_u8(&w, m->attr);
		wbuf_u8(&w, m->cdb_len);
		wbuf_bytes(&w, m->cdb, m->cdb_len);
		wbuf_u32(&w, m->data_out_len);
		wbuf_bytes(&w, m->data_out, m->data_out_len);
		break;
	case SCSI_MSG_EXEC_REPLY:
		wbuf_u8(&w, m->status);
		wbuf_u8(&w, m->sense_len);
		wbuf_bytes(&w, m->sense, m->sense_len);
		put_state(&w, m->state, m->state_len);
		break;
	case SCSI_MSG_STATE:
		put_state(&w, m->state, m->state_len);
		break;
	case SCSI_MSG_NEXUS_LOST:
		put_nexus(&w, &m->itn);
		break;
	default:
		break;
	}
	if (w.failed) {
		wbuf_free(&w);
		return -1;
	}
	*out = w.p;
	*len = w.len;
	return 0;
}

int scsi_msg_decode(const uint8_t *buf, size_t len, struct scsi_msg *m, char *err, size_t errlen)
{
	struct rbuf r = { buf, len, 0, NULL };
	const uint8_t *p;

	memset(m, 0, sizeof(*m));
	m->kind = rbuf_u8(&r, "kind");
	if (m->kind < SCSI_MSG_MEET || m->kind >= SCSI_MSG_KIND_END)
		rbuf_fail(&r, "kind");
	if (rbuf_u8(&r, "reserved byte") != 0 || rbuf_u16(&r, "reserved bytes") != 0)
		rbuf_fail(&r, "reserved bytes");
	m->id = rbuf_u64(&r, "request id");
	switch (r.why ? SCSI_MSG_KIND_END : m->kind) {
	case SCSI_MSG_MEET:
		m->rank = rbuf_u8(&r, "rank");
		if (m->rank > SCSI_RANK_CHANGED)
			rbuf_fail(&r, "rank");
		get_state(&r, m);
		break;
	case SCSI_MSG_EXEC:
		get_nexus(&r, &m->itn);
		m->attr = rbuf_u8(&r, "task attribute");
		if (m->attr > SCSI_ATTR_ACA)
			rbuf_fail(&r, "task attribute");
		m->cdb_len = rbuf_u8(&r, "CDB length");
		if (m->cdb_len == 0 || m->cdb_len > SCSI_MAX_CDB)
			rbuf_fail(&r, "CDB length");
		p = rbuf_take(&r, m->cdb_len, "CDB");
		if (p)
			memcpy(m->cdb, p, m->cdb_len);
		m->data_out_len = rbuf_u32(&r, "Data-Out length");
		m->data_out = rbuf_take(&r, m->data_out_len, "Data-Out");
		break;
	case SCSI_MSG_EXEC_REPLY:
		m->status = rbuf_u8(&r, "status");
		m->sense_len = rbuf_u8(&r, "sense length");
		if (m->sense_len > SCSI_SENSE_MAX)
			rbuf_fail(&r, "sense length");
		p = rbuf_take(&r, m->sense_len, "sense");
		if (p)
			memcpy(m->sense, p, m->sense_len);
		get_state(&r, m);
		break;
	case SCSI_MSG_STATE:
		get_state(&r, m);
		break;
	case SCSI_MSG_NEXUS_LOST:
		get_nexus(&r, &m->itn);
		break;
	default:
		break;
	}
	if (r.off != r.len)
		rbuf_fail(&r, "trailing bytes");
	if (r.why) {
		snprintf(err, errlen, "SCSI state message: bad %s at byte %zu", r.why, r.off);
		return -1;
	}
	return 0;
}
