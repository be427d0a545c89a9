/* Connections and sessions end to end without TCP: a socketpair carries raw PDUs between
 * the test and a real connection running on a reactor with a logical unit on /dev/shm. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/log.h"
#include "common/reactor.h"
#include "iscsi/conn.h"
#include "iscsi/server.h"
#include "iscsi/session.h"
#include "iscsi/target.h"
#include "scsi/scsi.h"
#include "store/store.h"

#define TARGET "iqn.2026-11.org.twinsan:unit"
#define INITIATOR "iqn.2026-11.org.twinsan:tester"

struct harness {
	struct reactor *r;
	struct iscsi_registry *reg;
	struct store *store;
	struct scsi_lu *lu;
	struct iscsi_conn_env env;
	char path[64];
};

struct rx {
	uint8_t bhs[ISCSI_BHS_LEN];
	uint8_t data[8192];
	uint32_t len;
};

static void stop_tick(void *arg) { reactor_stop(arg); }

/* Runs the reactor for a few milliseconds. */
static void pump(struct harness *h)
{
	for (int i = 0; i < 3; i++)
		reactor_run(h->r);
}

static int setup(void **state)
{
	struct harness *h = calloc(1, sizeof(*h));
	struct iscsi_server_params params;
	struct scsi_transport_ops ops;
	struct iscsi_target *t;
	struct store_params sp = { .create_size = 16 << 20 };
	struct scsi_lu_params lp = { .vendor = "TWINSAN", .product = "unit", .revision = "0001",
	                             .block_size = 512, .write_cache = true };
	char err[128];

	log_set_level(getenv("TEST_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERR);
	snprintf(h->path, sizeof(h->path), "/dev/shm/twinsan-test-session-%d", (int)getpid());
	unlink(h->path);
	sp.path = h->path;
	assert_int_equal(reactor_new(64, &h->r), 0);
	assert_int_equal(reactor_add_ticker(h->r, 2, stop_tick, h->r), 0);
	assert_int_equal(iscsi_registry_new(&h->reg), 0);
	t = iscsi_target_add(h->reg, TARGET, "");
	assert_non_null(t);
	assert_int_equal(store_open(&sp, &h->store, err, sizeof(err)), 0);
	assert_int_equal(scsi_lu_new(&lp, h->store, &h->lu, err, sizeof(err)), 0);
	assert_int_equal(scsi_target_add_lu(iscsi_target_scsi(t), 0, h->lu), 0);
	assert_int_equal(iscsi_registry_add_portal(h->reg, "127.0.0.1", 3260, 1), 0);
	iscsi_server_default_params(&params);
	h->env = (struct iscsi_conn_env){
		.reactor = h->r, .registry = h->reg, .limits = params.limits,
		.login_timeout_ms = 10000, .nop_interval_ms = 60000, .nop_timeout_ms = 60000,
	};
	assert_int_equal(sessions_new(&h->env.sessions), 0);
	sessions_transport_ops(h->env.sessions, &ops);
	scsi_target_set_transport(iscsi_target_scsi(t), &ops);
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	struct harness *h = *state;

	sessions_close_all(h->env.sessions, "test over");
	for (struct iscsi_conn *c = h->env.conns; c; c = c->next)
		conn_close(c, "test over");
	for (int i = 0; i < 100 && h->env.conns; i++)
		pump(h);
	assert_null(h->env.conns);
	sessions_free(h->env.sessions);
	iscsi_registry_free(h->reg);
	scsi_lu_free(h->lu);
	store_close(h->store);
	reactor_free(h->r);
	unlink(h->path);
	free(h);
	return 0;
}

/* A new connection; returns the test's end of the socketpair. */
static int connect_one(struct harness *h)
{
	int sv[2];
	struct iscsi_conn *conn;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(conn_new(&h->env, sv[0], 1, &conn), 0);
	return sv[1];
}

static void send_pdu(int fd, const uint8_t *bhs, const void *data, uint32_t len)
{
	uint8_t buf[ISCSI_BHS_LEN + 8192 + 4] = { 0 };
	uint32_t padded = ISCSI_PAD(len);

	memcpy(buf, bhs, ISCSI_BHS_LEN);
	pdu_set_data_seg_len(buf, len);
	if (len)
		memcpy(buf + ISCSI_BHS_LEN, data, len);
	assert_int_equal(write(fd, buf, ISCSI_BHS_LEN + padded), (ssize_t)(ISCSI_BHS_LEN + padded));
}

static bool read_all(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv(fd, (uint8_t *)buf + got, len - got, got ? 0 : MSG_DONTWAIT);

		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

/* 1: a PDU arrived, 0: nothing (yet), -1: the connection was closed. */
static int recv_pdu(struct harness *h, int fd, struct rx *rx)
{
	ssize_t n;

	pump(h);
	n = recv(fd, rx->bhs, 1, MSG_DONTWAIT | MSG_PEEK);
	if (n < 0)
		return 0;
	if (n == 0)
		return -1;
	assert_true(read_all(fd, rx->bhs, ISCSI_BHS_LEN));
	rx->len = pdu_data_seg_len(rx->bhs);
	assert_true(rx->len <= sizeof(rx->data));
	if (rx->len)
		assert_true(read_all(fd, rx->data, ISCSI_PAD(rx->len)));
	return 1;
}

static void expect_pdu(struct harness *h, int fd, struct rx *rx, uint8_t opcode)
{
	int ret = 0;

	for (int i = 0; i < 50 && ret == 0; i++)
		ret = recv_pdu(h, fd, rx);
	assert_int_equal(ret, 1);
	assert_int_equal(rx->bhs[0] & ISCSI_BHS_OPCODE_MASK, opcode);
}

static void expect_closed(struct harness *h, int fd)
{
	struct rx rx;
	int ret = 0;

	for (int i = 0; i < 50 && ret == 0; i++)
		ret = recv_pdu(h, fd, &rx);
	assert_int_equal(ret, -1);
}

static size_t add_key(char *buf, size_t off, const char *pair)
{
	size_t n = strlen(pair) + 1;

	memcpy(buf + off, pair, n);
	return off + n;
}

/* Logs in with the given operational keys (NULL-terminated list, may be NULL), to a new
 * session (tsih 0) or an existing one; returns the session's TSIH. */
static uint16_t login_to(struct harness *h, int fd, uint8_t isid_tail, bool discovery,
                         const char *const *extra, uint16_t tsih, uint16_t cid)
{
	uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_LOGIN_REQ | ISCSI_BHS_IMMEDIATE };
	char keys[1024];
	size_t n = 0;
	struct rx rx;

	n = add_key(keys, n, "InitiatorName=" INITIATOR);
	n = add_key(keys, n, discovery ? "SessionType=Discovery" : "SessionType=Normal");
	if (!discovery)
		n = add_key(keys, n, "TargetName=" TARGET);
	n = add_key(keys, n, "AuthMethod=None");
	for (; extra && *extra; extra++)
		n = add_key(keys, n, *extra);
	/* From the security stage straight on to full feature phase. */
	bhs[1] = ISCSI_FLAG_LOGIN_TRANSIT | ISCSI_STAGE_FULL_FEATURE;
	bhs[8] = 0x80;
	bhs[13] = isid_tail;
	put_be16(bhs + 14, tsih);
	put_be32(bhs + BHS_ITT, 0x1000u + isid_tail);
	put_be16(bhs + 20, cid);
	put_be32(bhs + BHS_CMDSN, 1);
	send_pdu(fd, bhs, keys, (uint32_t)n);
	expect_pdu(h, fd, &rx, ISCSI_OP_LOGIN_RSP);
	assert_int_equal(rx.bhs[36], 0); /* status class */
	assert_int_equal(rx.bhs[1] & ISCSI_FLAG_LOGIN_NSG_MASK, ISCSI_STAGE_FULL_FEATURE);
	return get_be16(rx.bhs + 14);
}

static void login(struct harness *h, int fd, uint8_t isid_tail, bool discovery, const char *const *extra)
{
	login_to(h, fd, isid_tail, discovery, extra, 0, 0);
}

static void scsi_cmd(int fd, uint32_t itt, uint32_t cmd_sn, uint8_t flags, uint32_t edtl, const uint8_t *cdb,
                     size_t cdb_len, const void *data, uint32_t len)
{
	uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_SCSI_CMD, ISCSI_FLAG_FINAL | flags };

	put_be32(bhs + BHS_ITT, itt);
	put_be32(bhs + BHS_TTT, edtl);
	put_be32(bhs + BHS_CMDSN, cmd_sn);
	memcpy(bhs + 32, cdb, cdb_len);
	send_pdu(fd, bhs, data, len);
}

static const uint8_t tur[6];
static const char *const r2t_only[] = { "InitialR2T=Yes", "ImmediateData=No", NULL };

static void commands_run_in_cmdsn_order(void **state)
{
	struct harness *h = *state;
	int fd = connect_one(h);
	struct rx rx;

	login(h, fd, 1, false, NULL);
	scsi_cmd(fd, 12, 2, 0, 0, tur, sizeof(tur), NULL, 0);
	scsi_cmd(fd, 11, 1, 0, 0, tur, sizeof(tur), NULL, 0);
	expect_pdu(h, fd, &rx, ISCSI_OP_SCSI_RSP);
	assert_int_equal(get_be32(rx.bhs + BHS_ITT), 11);
	expect_pdu(h, fd, &rx, ISCSI_OP_SCSI_RSP);
	assert_int_equal(get_be32(rx.bhs + BHS_ITT), 12);
	assert_int_equal(get_be32(rx.bhs + 28), 3); /* ExpCmdSN */
	close(fd);
}

static void cmdsn_outside_the_window_is_dropped(void **state)
{
	struct harness *h = *state;
	int fd = connect_one(h);
	struct rx rx;

	login(h, fd, 2, false, NULL);
	scsi_cmd(fd, 20, 1 + 1000, 0, 0, tur, sizeof(tur), NULL, 0);
	assert_int_equal(recv_pdu(h, fd, &rx), 0);
	scsi_cmd(fd, 21, 1, 0, 0, tur, sizeof(tur), NULL, 0);
	expect_pdu(h, fd, &rx, ISCSI_OP_SCSI_RSP);
	assert_int_equal(get_be32(rx.bhs + BHS_ITT), 21);
	close(fd);
}

static void session_reinstatement_closes_the_old_connection(void **state)
{
	struct harness *h = *state;
	int a = connect_one(h), b = connect_one(h);

	login(h, a, 3, false, NULL);
	login(h, b, 3, false, NULL);
	expect_closed(h, a);
	close(a);
	close(b);
}

static void discovery_session_rejects_scsi_commands(void **state)
{
	struct harness *h = *state;
	int fd = connect_one(h);
	struct rx rx;

	login(h, fd, 4, true, NULL);
	scsi_cmd(fd, 40, 1, 0, 0, tur, sizeof(tur), NULL, 0);
	expect_pdu(h, fd, &rx, ISCSI_OP_REJECT);
	assert_int_equal(rx.bhs[2], ISCSI_REJECT_PROTOCOL_ERROR);
	close(fd);
}

static void send_targets_lists_the_target_and_portal(void **state)
{
	struct harness *h = *state;
	int fd = connect_one(h);
	uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_TEXT_REQ, ISCSI_FLAG_FINAL };
	static const char req[] = "SendTargets=All";
	struct rx rx;

	login(h, fd, 5, true, NULL);
	put_be32(bhs + BHS_ITT, 50);
	put_be32(bhs + BHS_TTT, ISCSI_RSVD_TAG);
	put_be32(bhs + BHS_CMDSN, 1);
	send_pdu(fd, bhs, req, sizeof(req));
	expect_pdu(h, fd, &rx, ISCSI_OP_TEXT_RSP);
	assert_int_equal(rx.bhs[1] & ISCSI_FLAG_FINAL, ISCSI_FLAG_FINAL);
	assert_non_null(memmem(rx.data, rx.len, "TargetName=" TARGET, strlen("TargetName=" TARGET)));
	assert_non_null(memmem(rx.data, rx.len, "TargetAddress=127.0.0.1:3260,1", 30));
	close(fd);
}

static void nop_out_is_echoed(void **state)
{
	struct harness *h = *state;
	int fd = connect_one(h);
	uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_NOP_OUT | ISCSI_BHS_IMMEDIATE, ISCSI_FLAG_FINAL };
	struct rx rx;

	login(h, fd, 6, false, NULL);
	put_be32(bhs + BHS_ITT, 60);
	put_be32(bhs + BHS_TTT, ISCSI_RSVD_TAG);
	put_be32(bhs + BHS_CMDSN, 1);
	send_pdu(fd, bhs, "ping!", 5);
	expect_pdu(h, fd, &rx, ISCSI_OP_NOP_IN);
	assert_int_equal(get_be32(rx.bhs + BHS_ITT), 60);
	assert_int_equal(rx.len, 5);
	assert_memory_equal(rx.data, "ping!", 5);
	close(fd);
}

static void oversized_pdu_gets_a_reject_then_the_connection_closes(void **state)
{
	struct harness *h = *state;
	int fd = connect_one(h);
	uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_NOP_OUT, ISCSI_FLAG_FINAL };
	struct rx rx;

	login(h, fd, 7, false, NULL);
	pdu_set_data_seg_len(bhs, 1u << 20);
	assert_int_equal(write(fd, bhs, sizeof(bhs)), (ssize_t)sizeof(bhs));
	expect_pdu(h, fd, &rx, ISCSI_OP_REJECT);
	assert_int_equal(rx.bhs[2], ISCSI_REJECT_PROTOCOL_ERROR);
	expect_closed(h, fd);
	close(fd);
}

static void write_with_r2t_reads_back(void **state)
{
	struct harness *h = *state;
	int fd = connect_one(h);
	const uint8_t write10[10] = { 0x2a, 0, 0, 0, 0, 8, 0, 0, 1, 0 };
	const uint8_t read10[10] = { 0x28, 0, 0, 0, 0, 8, 0, 0, 1, 0 };
	uint8_t block[512], bhs[ISCSI_BHS_LEN] = { ISCSI_OP_DATA_OUT, ISCSI_FLAG_FINAL };
	struct rx rx;

	memset(block, 0x5a, sizeof(block));
	login(h, fd, 8, false, r2t_only);
	scsi_cmd(fd, 80, 1, 0, 0, tur, sizeof(tur), NULL, 0); /* takes the power-on unit attention */
	expect_pdu(h, fd, &rx, ISCSI_OP_SCSI_RSP);
	scsi_cmd(fd, 81, 2, ISCSI_FLAG_CMD_WRITE, 512, write10, sizeof(write10), NULL, 0);
	expect_pdu(h, fd, &rx, ISCSI_OP_R2T);
	assert_int_equal(get_be32(rx.bhs + 40), 0);   /* buffer offset */
	assert_int_equal(get_be32(rx.bhs + 44), 512); /* desired length */
	put_be32(bhs + BHS_ITT, 81);
	put_be32(bhs + BHS_TTT, get_be32(rx.bhs + BHS_TTT));
	send_pdu(fd, bhs, block, sizeof(block));
	expect_pdu(h, fd, &rx, ISCSI_OP_SCSI_RSP);
	assert_int_equal(rx.bhs[3], SCSI_STATUS_GOOD);
	scsi_cmd(fd, 82, 3, ISCSI_FLAG_CMD_READ, 512, read10, sizeof(read10), NULL, 0);
	expect_pdu(h, fd, &rx, ISCSI_OP_DATA_IN);
	assert_int_equal(rx.bhs[1] & ISCSI_FLAG_DATA_STATUS, ISCSI_FLAG_DATA_STATUS);
	assert_int_equal(rx.len, 512);
	assert_memory_equal(rx.data, block, 512);
	close(fd);
}

static void read_with_short_edtl_reports_overflow(void **state)
{
	struct harness *h = *state;
	int fd = connect_one(h);
	const uint8_t read10[10] = { 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
	struct rx rx;

	login(h, fd, 9, false, NULL);
	scsi_cmd(fd, 90, 1, 0, 0, tur, sizeof(tur), NULL, 0);
	expect_pdu(h, fd, &rx, ISCSI_OP_SCSI_RSP);
	scsi_cmd(fd, 91, 2, ISCSI_FLAG_CMD_READ, 200, read10, sizeof(read10), NULL, 0);
	expect_pdu(h, fd, &rx, ISCSI_OP_DATA_IN);
	assert_int_equal(rx.len, 200);
	assert_int_equal(rx.bhs[1] & (ISCSI_FLAG_DATA_STATUS | ISCSI_FLAG_DATA_OVERFLOW),
	                 ISCSI_FLAG_DATA_STATUS | ISCSI_FLAG_DATA_OVERFLOW);
	assert_int_equal(get_be32(rx.bhs + 44), 312);
	close(fd);
}

static void abort_task_waiting_for_data_completes_without_a_response(void **state)
{
	struct harness *h = *state;
	int fd = connect_one(h);
	const uint8_t write10[10] = { 0x2a, 0, 0, 0, 0, 8, 0, 0, 1, 0 };
	uint8_t tmf[ISCSI_BHS_LEN] = { ISCSI_OP_TMF_REQ | ISCSI_BHS_IMMEDIATE, ISCSI_FLAG_FINAL | ISCSI_TMF_ABORT_TASK };
	struct rx rx;

	login(h, fd, 10, false, r2t_only);
	scsi_cmd(fd, 100, 1, ISCSI_FLAG_CMD_WRITE, 512, write10, sizeof(write10), NULL, 0);
	expect_pdu(h, fd, &rx, ISCSI_OP_R2T);
	put_be32(tmf + BHS_ITT, 101);
	put_be32(tmf + 20, 100); /* referenced task tag */
	put_be32(tmf + BHS_CMDSN, 2);
	put_be32(tmf + 32, 1);   /* RefCmdSN */
	send_pdu(fd, tmf, NULL, 0);
	expect_pdu(h, fd, &rx, ISCSI_OP_TMF_RSP);
	assert_int_equal(rx.bhs[2], ISCSI_TMF_RSP_COMPLETE);
	assert_int_equal(recv_pdu(h, fd, &rx), 0);
	close(fd);
}

static void logout_answers_then_closes(void **state)
{
	struct harness *h = *state;
	int fd = connect_one(h);
	uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_LOGOUT_REQ | ISCSI_BHS_IMMEDIATE, ISCSI_FLAG_FINAL };
	struct rx rx;

	login(h, fd, 11, false, NULL);
	put_be32(bhs + BHS_ITT, 110);
	put_be32(bhs + BHS_CMDSN, 1);
	send_pdu(fd, bhs, NULL, 0);
	expect_pdu(h, fd, &rx, ISCSI_OP_LOGOUT_RSP);
	assert_int_equal(rx.bhs[2], 0);
	expect_closed(h, fd);
	close(fd);
}

static void answered_ping_keeps_the_connection(void **state)
{
	struct harness *h = *state;
	int fd = connect_one(h);
	struct iscsi_conn *conn = h->env.conns;
	uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_NOP_OUT | ISCSI_BHS_IMMEDIATE, ISCSI_FLAG_FINAL };
	struct rx rx;

	login(h, fd, 12, false, NULL);
	conn_tick(conn, now_ms() + h->env.nop_interval_ms + 1);
	expect_pdu(h, fd, &rx, ISCSI_OP_NOP_IN);
	assert_int_equal(get_be32(rx.bhs + BHS_ITT), ISCSI_RSVD_TAG);
	assert_int_not_equal(get_be32(rx.bhs + BHS_TTT), ISCSI_RSVD_TAG);
	put_be32(bhs + BHS_ITT, ISCSI_RSVD_TAG);
	put_be32(bhs + BHS_TTT, get_be32(rx.bhs + BHS_TTT));
	put_be32(bhs + BHS_CMDSN, 1);
	send_pdu(fd, bhs, NULL, 0);
	pump(h);
	assert_false(conn->ping_outstanding);
	assert_int_equal(recv_pdu(h, fd, &rx), 0);
	close(fd);
}

static void unanswered_ping_closes_the_connection(void **state)
{
	struct harness *h = *state;
	int fd = connect_one(h);
	struct iscsi_conn *conn = h->env.conns;
	uint64_t later = now_ms() + h->env.nop_interval_ms + 1;
	struct rx rx;

	login(h, fd, 13, false, NULL);
	conn_tick(conn, later);
	expect_pdu(h, fd, &rx, ISCSI_OP_NOP_IN);
	conn_tick(conn, later + h->env.nop_timeout_ms + 1);
	expect_closed(h, fd);
	close(fd);
}

static void second_connection_joins_the_session_and_shares_cmdsn(void **state)
{
	struct harness *h = *state;
	static const char *const two[] = { "MaxConnections=2", NULL };
	int a = connect_one(h), b = connect_one(h);
	uint16_t tsih = login_to(h, a, 14, false, two, 0, 0);
	struct rx rx;

	assert_int_not_equal(tsih, 0);
	assert_int_equal(login_to(h, b, 14, false, two, tsih, 1), tsih);
	scsi_cmd(b, 140, 1, 0, 0, tur, sizeof(tur), NULL, 0);
	expect_pdu(h, b, &rx, ISCSI_OP_SCSI_RSP);
	scsi_cmd(a, 141, 2, 0, 0, tur, sizeof(tur), NULL, 0);
	expect_pdu(h, a, &rx, ISCSI_OP_SCSI_RSP);
	assert_int_equal(get_be32(rx.bhs + BHS_ITT), 141);
	assert_int_equal(get_be32(rx.bhs + 28), 3); /* ExpCmdSN counts both connections */
	close(a);
	close(b);
}

static void login_to_an_unknown_session_fails(void **state)
{
	struct harness *h = *state;
	int fd = connect_one(h);
	uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_LOGIN_REQ | ISCSI_BHS_IMMEDIATE,
	                               ISCSI_FLAG_LOGIN_TRANSIT | ISCSI_STAGE_FULL_FEATURE };
	static const char keys[] = "InitiatorName=" INITIATOR "\0SessionType=Normal\0TargetName=" TARGET
	                           "\0AuthMethod=None";
	struct rx rx;

	bhs[8] = 0x80;
	put_be16(bhs + 14, 0x7777);
	put_be32(bhs + BHS_CMDSN, 1);
	send_pdu(fd, bhs, keys, sizeof(keys));
	expect_pdu(h, fd, &rx, ISCSI_OP_LOGIN_RSP);
	assert_int_equal(get_be16(rx.bhs + 36), ISCSI_LOGIN_SESSION_DOES_NOT_EXIST);
	close(fd);
}

static void text_request(int fd, uint32_t itt, uint32_t ttt, uint32_t cmd_sn, const void *data, uint32_t len)
{
	uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_TEXT_REQ, ISCSI_FLAG_FINAL };

	put_be32(bhs + BHS_ITT, itt);
	put_be32(bhs + BHS_TTT, ttt);
	put_be32(bhs + BHS_CMDSN, cmd_sn);
	send_pdu(fd, bhs, data, len);
}

static void long_send_targets_answer_continues_with_ttt(void **state)
{
	struct harness *h = *state;
	int fd = connect_one(h);
	static const char req[] = "SendTargets=All";
	uint32_t total = 0, pieces = 0, cmd_sn = 1;
	struct rx rx;

	for (uint16_t port = 4000; port < 4400; port++)
		assert_int_equal(iscsi_registry_add_portal(h->reg, "192.0.2.1", port, 1), 0);
	login(h, fd, 16, true, NULL);
	text_request(fd, 160, ISCSI_RSVD_TAG, cmd_sn++, req, sizeof(req));
	for (;;) {
		expect_pdu(h, fd, &rx, ISCSI_OP_TEXT_RSP);
		assert_true(rx.len <= 8192); /* the initiator's MaxRecvDataSegmentLength */
		total += rx.len;
		pieces++;
		if (rx.bhs[1] & ISCSI_FLAG_FINAL) {
			assert_int_equal(get_be32(rx.bhs + BHS_TTT), ISCSI_RSVD_TAG);
			break;
		}
		assert_int_equal(rx.bhs[1] & ISCSI_FLAG_TEXT_CONTINUE, ISCSI_FLAG_TEXT_CONTINUE);
		text_request(fd, 160, get_be32(rx.bhs + BHS_TTT), cmd_sn++, NULL, 0);
	}
	assert_true(pieces > 1);
	assert_true(total > 400 * 20);
	close(fd);
}

static void login_with_a_cid_in_use_replaces_that_connection(void **state)
{
	struct harness *h = *state;
	static const char *const two[] = { "MaxConnections=2", NULL };
	int a = connect_one(h), b = connect_one(h);
	uint16_t tsih = login_to(h, a, 17, false, two, 0, 5);
	struct rx rx;

	assert_int_equal(login_to(h, b, 17, false, two, tsih, 5), tsih);
	expect_closed(h, a);
	scsi_cmd(b, 170, 1, 0, 0, tur, sizeof(tur), NULL, 0);
	expect_pdu(h, b, &rx, ISCSI_OP_SCSI_RSP);
	close(a);
	close(b);
}

static void unknown_opcode_is_rejected_and_the_connection_stays(void **state)
{
	struct harness *h = *state;
	int fd = connect_one(h);
	uint8_t bhs[ISCSI_BHS_LEN] = { 0x1c, ISCSI_FLAG_FINAL };
	struct rx rx;

	login(h, fd, 18, false, NULL);
	put_be32(bhs + BHS_ITT, 180);
	send_pdu(fd, bhs, NULL, 0);
	expect_pdu(h, fd, &rx, ISCSI_OP_REJECT);
	assert_int_equal(rx.bhs[2], ISCSI_REJECT_CMD_NOT_SUPPORTED);
	assert_int_equal(rx.len, ISCSI_BHS_LEN);
	assert_int_equal(rx.data[0], 0x1c);
	scsi_cmd(fd, 181, 1, 0, 0, tur, sizeof(tur), NULL, 0);
	expect_pdu(h, fd, &rx, ISCSI_OP_SCSI_RSP);
	close(fd);
}

static void tmf(int fd, uint32_t itt, uint8_t function, uint32_t cmd_sn)
{
	uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_TMF_REQ | ISCSI_BHS_IMMEDIATE, ISCSI_FLAG_FINAL | function };

	put_be32(bhs + BHS_ITT, itt);
	put_be32(bhs + 20, ISCSI_RSVD_TAG);
	put_be32(bhs + BHS_CMDSN, cmd_sn);
	send_pdu(fd, bhs, NULL, 0);
}

static void lun_reset_answers_complete_and_raises_a_unit_attention(void **state)
{
	struct harness *h = *state;
	int fd = connect_one(h);
	struct rx rx;

	login(h, fd, 19, false, NULL);
	scsi_cmd(fd, 190, 1, 0, 0, tur, sizeof(tur), NULL, 0); /* power-on unit attention */
	expect_pdu(h, fd, &rx, ISCSI_OP_SCSI_RSP);
	tmf(fd, 191, ISCSI_TMF_LUN_RESET, 2);
	expect_pdu(h, fd, &rx, ISCSI_OP_TMF_RSP);
	assert_int_equal(rx.bhs[2], ISCSI_TMF_RSP_COMPLETE);
	assert_int_equal(get_be32(rx.bhs + BHS_ITT), 191);
	scsi_cmd(fd, 192, 2, 0, 0, tur, sizeof(tur), NULL, 0);
	expect_pdu(h, fd, &rx, ISCSI_OP_SCSI_RSP);
	assert_int_equal(rx.bhs[3], SCSI_STATUS_CHECK_CONDITION);
	close(fd);
}

static void target_cold_reset_answers_then_drops_every_connection(void **state)
{
	struct harness *h = *state;
	int a = connect_one(h), b = connect_one(h);
	struct rx rx;

	login(h, a, 20, false, NULL);
	login(h, b, 21, false, NULL);
	tmf(a, 200, ISCSI_TMF_TARGET_COLD_RESET, 1);
	expect_pdu(h, a, &rx, ISCSI_OP_TMF_RSP);
	assert_int_equal(rx.bhs[2], ISCSI_TMF_RSP_COMPLETE);
	expect_closed(h, a);
	expect_closed(h, b);
	close(a);
	close(b);
}

static void task_reassign_is_not_supported_at_erl0(void **state)
{
	struct harness *h = *state;
	int fd = connect_one(h);
	struct rx rx;

	login(h, fd, 22, false, NULL);
	tmf(fd, 220, ISCSI_TMF_TASK_REASSIGN, 1);
	expect_pdu(h, fd, &rx, ISCSI_OP_TMF_RSP);
	assert_int_equal(rx.bhs[2], ISCSI_TMF_RSP_NO_REASSIGN);
	close(fd);
}

static void oversized_login_pdu_closes_the_connection(void **state)
{
	struct harness *h = *state;
	int fd = connect_one(h);
	uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_LOGIN_REQ | ISCSI_BHS_IMMEDIATE, ISCSI_FLAG_LOGIN_TRANSIT | 1 };

	pdu_set_data_seg_len(bhs, 8193); /* more than login allows before negotiation */
	assert_int_equal(write(fd, bhs, sizeof(bhs)), (ssize_t)sizeof(bhs));
	expect_closed(h, fd);
	close(fd);
}

static void text_keys_in_full_feature_phase_are_answered(void **state)
{
	struct harness *h = *state;
	int fd = connect_one(h);
	static const char req[] = "MaxRecvDataSegmentLength=4096\0X-com.example.Thing=1\0InitialR2T=No";
	struct rx rx;

	login(h, fd, 23, false, NULL);
	text_request(fd, 230, ISCSI_RSVD_TAG, 1, req, sizeof(req));
	expect_pdu(h, fd, &rx, ISCSI_OP_TEXT_RSP);
	assert_non_null(memmem(rx.data, rx.len, "X-com.example.Thing=NotUnderstood", 33));
	assert_non_null(memmem(rx.data, rx.len, "InitialR2T=Reject", 17));
	assert_int_equal(h->env.conns->params.max_send_data_segment_length, 4096);
	close(fd);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(commands_run_in_cmdsn_order),
		T(cmdsn_outside_the_window_is_dropped),
		T(session_reinstatement_closes_the_old_connection),
		T(discovery_session_rejects_scsi_commands),
		T(send_targets_lists_the_target_and_portal),
		T(nop_out_is_echoed),
		T(oversized_pdu_gets_a_reject_then_the_connection_closes),
		T(write_with_r2t_reads_back),
		T(read_with_short_edtl_reports_overflow),
		T(abort_task_waiting_for_data_completes_without_a_response),
		T(logout_answers_then_closes),
		T(answered_ping_keeps_the_connection),
		T(unanswered_ping_closes_the_connection),
		T(second_connection_joins_the_session_and_shares_cmdsn),
		T(login_to_an_unknown_session_fails),
		T(long_send_targets_answer_continues_with_ttt),
		T(login_with_a_cid_in_use_replaces_that_connection),
		T(unknown_opcode_is_rejected_and_the_connection_stays),
		T(lun_reset_answers_complete_and_raises_a_unit_attention),
		T(target_cold_reset_answers_then_drops_every_connection),
		T(task_reassign_is_not_supported_at_erl0),
		T(oversized_login_pdu_closes_the_connection),
		T(text_keys_in_full_feature_phase_are_answered),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
