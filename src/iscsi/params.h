/* Negotiated iSCSI operational parameters (RFC 7143 §13): the outcome of login that the
 * full-feature phase runs with.  Session-wide and connection-only values are kept apart
 * because a session outlives its connections. */
#ifndef TWINSAN_ISCSI_PARAMS_H
#define TWINSAN_ISCSI_PARAMS_H

#include <stdbool.h>
#include <stdint.h>

#include "iscsi/target.h"

enum iscsi_session_type { ISCSI_SESSION_NORMAL, ISCSI_SESSION_DISCOVERY };

struct iscsi_session_params {
	enum iscsi_session_type type;
	char initiator_name[ISCSI_NAME_MAX];
	char initiator_alias[ISCSI_NAME_MAX];
	char target_name[ISCSI_NAME_MAX];      /* empty for discovery */
	uint8_t isid[6];
	uint16_t tsih;
	uint16_t tpgt;
	uint32_t max_connections;
	bool initial_r2t;
	bool immediate_data;
	uint32_t max_burst_length;
	uint32_t first_burst_length;
	uint32_t default_time2wait;
	uint32_t default_time2retain;
	uint32_t max_outstanding_r2t;
	bool data_pdu_in_order;
	bool data_sequence_in_order;
	uint32_t error_recovery_level;
	bool task_reporting_response_fence;   /* TaskReporting=ResponseFence or FastAbort */
	bool task_reporting_fast_abort;
	uint32_t protocol_level;              /* iSCSIProtocolLevel */
};

struct iscsi_conn_params {
	bool header_digest;                   /* CRC32C on headers */
	bool data_digest;                     /* CRC32C on data segments */
	uint32_t max_recv_data_segment_length; /* largest data segment we accept (we declared it) */
	uint32_t max_send_data_segment_length; /* largest the initiator accepts (it declared it) */
	uint16_t cid;
};

#endif
