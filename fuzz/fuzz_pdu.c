/* Fuzzes the connection's byte stream: PDU framing and header checks, login, and every
 * full-feature handler (commands, Data-Out, R2Ts, TMF, Text, NOP, Logout) against a real
 * logical unit on /dev/shm.  Each input is what one initiator sends on one connection;
 * replies go to a socketpair nobody reads. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/reactor.h"
#include "iscsi/conn.h"
#include "iscsi/server.h"
#include "iscsi/session.h"
#include "iscsi/target.h"
#include "scsi/scsi.h"
#include "store/store.h"

struct fuzz_world {
	struct reactor *r;
	struct iscsi_registry *reg;
	struct iscsi_conn_env env;
};

static struct fuzz_world *world;

static void stop_tick(void *arg) { reactor_stop(arg); }

static void die(const char *what)
{
	fprintf(stderr, "fuzz_pdu: %s\n", what);
	exit(1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct iscsi_server_params params;
	struct scsi_transport_ops ops;
	struct store_params sp = { .create_size = 1 << 20 };
	struct scsi_lu_params lp = { .vendor = "TWINSAN", .product = "fuzz", .revision = "0001",
	                             .block_size = 512, .write_cache = true };
	struct iscsi_target *t;
	struct store *store;
	struct scsi_lu *lu;
	char path[64], err[128];

	log_set_level(LOG_LEVEL_ERR);
	world = calloc(1, sizeof(*world));
	snprintf(path, sizeof(path), "/dev/shm/twinsan-fuzz-pdu-%d", (int)getpid());
	unlink(path);
	sp.path = path;
	if (!world || reactor_new(256, &world->r) < 0 || reactor_add_ticker(world->r, 1, stop_tick, world->r) < 0 ||
	    iscsi_registry_new(&world->reg) < 0)
		die("setup");
	t = iscsi_target_add(world->reg, "iqn.2026-11.org.twinsan:fuzz", "");
	if (!t || store_open(&sp, &store, err, sizeof(err)) < 0 ||
	    scsi_lu_new(&lp, store, &lu, err, sizeof(err)) < 0 || scsi_target_add_lu(iscsi_target_scsi(t), 0, lu) < 0 ||
	    iscsi_registry_add_portal(world->reg, "127.0.0.1", 3260, 1) < 0)
		die("logical unit");
	unlink(path); /* the open store keeps it */
	iscsi_server_default_params(&params);
	world->env = (struct iscsi_conn_env){
		.reactor = world->r, .registry = world->reg, .limits = params.limits,
		.login_timeout_ms = 1000, .nop_interval_ms = 1000, .nop_timeout_ms = 1000,
	};
	if (sessions_new(&world->env.sessions) < 0)
		die("sessions");
	sessions_transport_ops(world->env.sessions, &ops);
	scsi_target_set_transport(iscsi_target_scsi(t), &ops);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iscsi_conn *conn;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair");
	if (conn_new(&world->env, sv[0], 1, &conn) < 0)
		die("conn_new");
	/* Two pieces, so a PDU split across receives is exercised too. */
	conn_receive_bytes(conn, data, (uint32_t)(size / 2));
	conn_receive_bytes(conn, data + size / 2, (uint32_t)(size - size / 2));
	reactor_run(world->r); /* lets commands complete and responses go out */
	close(sv[1]);
	sessions_close_all(world->env.sessions, "input done");
	for (struct iscsi_conn *c = world->env.conns; c; c = c->next)
		conn_close(c, "input done");
	for (int i = 0; i < 1000 && world->env.conns; i++)
		reactor_run(world->r);
	if (world->env.conns)
		die("a connection did not go away");
	return 0;
}
