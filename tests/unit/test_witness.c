/* The witness and its clients on one reactor over TCP 127.0.0.1:3450: the first claim is
 * granted and the other node refused; the holder's re-claim is granted; after a release
 * the other node is; the holder hears its lease lapse when the witness goes away; renewals
 * keep a lease alive and a refused renewal ends it; a wrong secret, garbage, an unknown
 * version and a claim before the proof are refused; the holder record survives a witness
 * restart, so the other node is still refused; a damaged record stops the witness until
 * the operator removes it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/reactor.h"
#include "common/util.h"
#include "ha/witness.h"
#include "ha/witness_proto.h"
#include "ha/witness_server.h"
#include "ha/witness_state.h"

#define TEST_PORT 3450
#define TEST_ADDR "127.0.0.1:3450"
#define LEASE_MS 300
#define GIVE_UP_MS 10000 /* a scenario that takes this long has failed: it hangs */

static const uint8_t secret[] = "witness test secret";
static const uint8_t dev[16] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

struct node {
	struct witness_client *cl;
	struct ha_arbiter arb;
	uint64_t id;
	int granted, refused; /* verdicts heard */
	bool stopped;
};

struct world {
	struct reactor *r;
	char dir[64];
	struct witness_state *state;
	struct witness_server *srv;
	bool srv_stopped;
	struct node a, b;
	struct reactor_timer poll;
	bool (*until)(struct world *w);
	uint64_t started_ms;
	bool gave_up;
};

static void verdict(void *arg, bool granted)
{
	struct node *n = arg;

	if (granted)
		n->granted++;
	else
		n->refused++;
}

static void on_poll(struct reactor_timer *t)
{
	struct world *w = container_of(t, struct world, poll);

	if (w->until(w)) {
		reactor_stop(w->r);
		return;
	}
	if (now_ms() - w->started_ms > GIVE_UP_MS) {
		w->gave_up = true;
		reactor_stop(w->r);
		return;
	}
	reactor_timer_start(w->r, &w->poll, 5, on_poll);
}

/* Runs the loop until `until` holds; fails the test if it never does. */
static void run_until(struct world *w, bool (*until)(struct world *w))
{
	w->until = until;
	w->started_ms = now_ms();
	w->gave_up = false;
	reactor_timer_start(w->r, &w->poll, 5, on_poll);
	assert_int_equal(reactor_run(w->r), 0);
	reactor_timer_cancel(w->r, &w->poll);
	assert_false(w->gave_up);
}

static void start_server(struct world *w, const char *dir)
{
	char err[256];
	struct witness_server_params p = {
		.listen = TEST_ADDR, .secret = secret, .secret_len = sizeof(secret) - 1, .lease_ms = LEASE_MS,
		.idle_ms = 2000,
	};

	if (witness_state_open(dir, false, &w->state, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	p.state = w->state;
	if (witness_server_new(w->r, &p, &w->srv, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	w->srv_stopped = false;
}

static void start_node(struct world *w, struct node *n, uint64_t id, const uint8_t *key, size_t key_len)
{
	char err[256];
	struct witness_client_params p = {
		.addresses = {TEST_ADDR}, .n_addresses = 1, .secret = key, .secret_len = key_len, .node_id = id,
		.ping_interval_ms = 100, .timeout_ms = 1000, .claim_timeout_ms = 1000, .backoff_max_ms = 200,
	};

	memset(n, 0, sizeof(*n));
	n->id = id;
	if (witness_client_new(w->r, &p, &n->cl, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	n->arb = witness_arbiter(n->cl);
}

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));

	log_set_level(LOG_LEVEL_WARN);
	assert_int_equal(reactor_new(64, &w->r), 0);
	strcpy(w->dir, "/dev/shm/test_witness.XXXXXX");
	assert_non_null(mkdtemp(w->dir));
	start_server(w, w->dir);
	start_node(w, &w->a, 0xa, secret, sizeof(secret) - 1);
	start_node(w, &w->b, 0xb, secret, sizeof(secret) - 1);
	*state = w;
	return 0;
}

static void server_done(void *arg)
{
	((struct world *)arg)->srv_stopped = true;
}

static void node_done(void *arg)
{
	((struct node *)arg)->stopped = true;
}

static bool server_stopped(struct world *w) { return w->srv_stopped; }
static bool all_stopped(struct world *w) { return w->srv_stopped && w->a.stopped && w->b.stopped; }

static void stop_server(struct world *w)
{
	witness_server_stop(w->srv, server_done, w);
	run_until(w, server_stopped);
	witness_server_free(w->srv);
	w->srv = NULL;
	witness_state_close(w->state);
	w->state = NULL;
}

static int teardown(void **state)
{
	struct world *w = *state;
	char cmd[128];

	if (w->srv != NULL)
		witness_server_stop(w->srv, server_done, w);
	witness_client_stop(w->a.cl, node_done, &w->a);
	witness_client_stop(w->b.cl, node_done, &w->b);
	run_until(w, all_stopped);
	witness_server_free(w->srv);
	witness_state_close(w->state);
	witness_client_free(w->a.cl);
	witness_client_free(w->b.cl);
	reactor_free(w->r);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", w->dir);
	assert_int_equal(system(cmd), 0);
	free(w);
	return 0;
}

static void claim(struct node *n, uint64_t current)
{
	struct generation g = {.current = current};

	n->arb.claim(n->arb.ctx, dev, n->id, &g, verdict, n);
}

static bool a_heard(struct world *w) { return w->a.granted + w->a.refused > 0; }
static bool b_heard(struct world *w) { return w->b.granted + w->b.refused > 0; }
static bool a_heard_twice(struct world *w) { return w->a.granted + w->a.refused > 1; }
static bool a_refused(struct world *w) { return w->a.refused > 0; }
static bool a_granted_twice(struct world *w) { return w->a.granted > 1; }
static bool nobody_holds(struct world *w) { return witness_state_find(w->state, dev) == NULL; }

static uint64_t holder(struct world *w)
{
	const struct witness_record *rec = witness_state_find(w->state, dev);

	return rec != NULL ? rec->holder : 0;
}

static void test_first_claim_granted_the_other_node_refused(void **state)
{
	struct world *w = *state;

	claim(&w->a, 1);
	/* The verdict never comes from inside claim(). */
	assert_int_equal(w->a.granted + w->a.refused, 0);
	run_until(w, a_heard);
	assert_int_equal(w->a.granted, 1);
	assert_int_equal(holder(w), 0xa);
	claim(&w->b, 2);
	run_until(w, b_heard);
	assert_int_equal(w->b.granted, 0);
	assert_int_equal(w->b.refused, 1);
	assert_int_equal(holder(w), 0xa);
	assert_int_equal(w->a.refused, 0);
}

static void test_holder_claiming_again_is_granted(void **state)
{
	struct world *w = *state;

	claim(&w->a, 1);
	run_until(w, a_heard);
	claim(&w->a, 5); /* e.g. after a restart, with a new generation */
	run_until(w, a_heard_twice);
	assert_int_equal(w->a.granted, 2);
	assert_int_equal(w->a.refused, 0);
	assert_int_equal(witness_state_find(w->state, dev)->gen_current, 5);
}

static void test_release_lets_the_other_node_be_granted(void **state)
{
	struct world *w = *state;

	claim(&w->a, 1);
	run_until(w, a_heard);
	w->a.arb.release(w->a.arb.ctx, dev);
	run_until(w, nobody_holds);
	claim(&w->b, 2);
	run_until(w, b_heard);
	assert_int_equal(w->b.granted, 1);
	assert_int_equal(holder(w), 0xb);
	/* The released claim says nothing more, and its lease is no longer renewed. */
	assert_int_equal(w->a.granted, 1);
	assert_int_equal(w->a.refused, 0);
}

static void test_holder_hears_its_lease_lapse_when_the_witness_is_gone(void **state)
{
	struct world *w = *state;

	claim(&w->a, 1);
	run_until(w, a_heard);
	assert_int_equal(w->a.granted, 1);
	stop_server(w);
	run_until(w, a_refused);
	assert_int_equal(w->a.refused, 1);
	assert_false(witness_client_connected(w->a.cl));
}

static void test_a_refused_renewal_ends_the_grant(void **state)
{
	struct world *w = *state;

	claim(&w->a, 1);
	run_until(w, a_heard);
	/* The record vanishes under the holder (as an operator's --forget would do). */
	assert_int_equal(witness_state_forget(w->state, dev), 0);
	run_until(w, a_refused);
	assert_int_equal(w->a.granted, 1);
	assert_int_equal(w->a.refused, 1);
}

static bool long_enough(struct world *w) { return now_ms() - w->started_ms >= 6 * LEASE_MS; }

static void test_renewals_keep_the_lease(void **state)
{
	struct world *w = *state;

	claim(&w->a, 1);
	run_until(w, a_heard);
	run_until(w, long_enough);
	assert_int_equal(w->a.granted, 1);
	assert_int_equal(w->a.refused, 0);
}

static bool a_stopped(struct world *w) { return w->a.stopped; }

static void test_wrong_secret_is_refused(void **state)
{
	static const uint8_t wrong[] = "not the secret";
	struct world *w = *state;

	witness_client_stop(w->a.cl, node_done, &w->a);
	run_until(w, a_stopped);
	witness_client_free(w->a.cl);
	start_node(w, &w->a, 0xa, wrong, sizeof(wrong) - 1);
	claim(&w->a, 1);
	run_until(w, a_heard);
	assert_int_equal(w->a.granted, 0);
	assert_int_equal(w->a.refused, 1);
	assert_false(witness_client_connected(w->a.cl));
	assert_int_equal(witness_server_nodes(w->srv), 1); /* node b only */
	assert_null(witness_state_find(w->state, dev));
}

static bool b_connected(struct world *w) { return witness_client_connected(w->b.cl); }

static int probe_fd;
static bool probe_closed(struct world *w)
{
	char buf[64];

	return recv(probe_fd, buf, sizeof(buf), MSG_DONTWAIT) == 0;
}

static void test_garbage_is_refused_and_others_are_served(void **state)
{
	struct world *w = *state;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(TEST_PORT)};
	static const char junk[] = "GET / HTTP/1.0\r\n\r\nxxxxxxxxxxxx";
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(write(fd, junk, sizeof(junk)), sizeof(junk));
	run_until(w, b_connected);
	claim(&w->b, 1);
	run_until(w, b_heard);
	assert_int_equal(w->b.granted, 1);
	/* The witness closes the connection that spoke garbage. */
	probe_fd = fd;
	run_until(w, probe_closed);
	close(fd);
}

static bool probe_readable(struct world *w)
{
	char c;

	return recv(probe_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) >= 0;
}

/* A hand-driven node: connects and sends `m` as its first frame. */
static int raw_node(struct witness_proto *wp, const struct witness_msg *m)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(TEST_PORT)};
	uint8_t f[WITNESS_PROTO_FRAME_MAX];
	size_t n = witness_proto_encode(wp, m, f);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(write(fd, f, n), (ssize_t)n);
	return fd;
}

/* Runs the loop until the witness answered on fd; decodes one frame. */
static void raw_read(struct world *w, int fd, struct witness_proto *wp, struct witness_msg *m)
{
	uint8_t buf[WITNESS_PROTO_FRAME_MAX];
	size_t used;
	ssize_t n;

	probe_fd = fd;
	run_until(w, probe_readable);
	n = recv(fd, buf, sizeof(buf), 0);
	assert_true(n > 0);
	assert_int_equal(witness_proto_feed(wp, buf, (size_t)n, &used, m), WITNESS_PROTO_MSG);
}

static void test_handshake_shortcuts_are_refused(void **state)
{
	struct world *w = *state;
	struct witness_proto *tx = witness_proto_new(), *rx = witness_proto_new();
	struct witness_msg hello = {.type = WITNESS_HELLO, .version_min = 2, .version_max = 9, .node_id = 0xc};
	struct witness_msg claim_msg = {.type = WITNESS_CLAIM, .request = 1, .node_id = 0xc}, in;
	uint8_t f[WITNESS_PROTO_FRAME_MAX];
	size_t n;
	int fd;

	memset(hello.nonce, 0x5a, sizeof(hello.nonce));
	memcpy(claim_msg.uuid, dev, sizeof(dev));
	/* Only versions this witness does not speak: BYE(version). */
	fd = raw_node(tx, &hello);
	raw_read(w, fd, rx, &in);
	assert_int_equal(in.type, WITNESS_BYE);
	assert_int_equal(in.reason, WITNESS_BYE_VERSION);
	close(fd);
	witness_proto_free(tx);
	witness_proto_free(rx);

	/* A CLAIM instead of the PROOF: BYE(protocol), nothing recorded. */
	tx = witness_proto_new();
	rx = witness_proto_new();
	hello.version_min = hello.version_max = 1;
	fd = raw_node(tx, &hello);
	raw_read(w, fd, rx, &in);
	assert_int_equal(in.type, WITNESS_CHALLENGE);
	n = witness_proto_encode(tx, &claim_msg, f);
	assert_int_equal(write(fd, f, n), (ssize_t)n);
	probe_fd = fd;
	run_until(w, probe_readable);
	assert_int_equal(recv(fd, f, sizeof(f), 0) > 0, 1); /* the BYE */
	run_until(w, probe_closed);
	assert_null(witness_state_find(w->state, dev));
	close(fd);
	witness_proto_free(tx);
	witness_proto_free(rx);
}

static void test_holder_survives_a_witness_restart(void **state)
{
	struct world *w = *state;

	claim(&w->a, 1);
	run_until(w, a_heard);
	w->a.arb.release(w->a.arb.ctx, (const uint8_t[16]){1}); /* another device: no effect */
	stop_server(w);
	run_until(w, a_refused); /* the lease lapsed with the witness gone */
	start_server(w, w->dir);
	assert_int_equal(holder(w), 0xa);
	claim(&w->b, 2);
	run_until(w, b_heard);
	assert_int_equal(w->b.refused, 1);
	claim(&w->a, 1);
	run_until(w, a_granted_twice);
}

static void test_state_refuses_a_second_user_and_damage(void **state)
{
	struct world *w = *state;
	struct witness_state *other;
	char err[256], path[128];
	char id[WITNESS_UUID_STR];
	FILE *f;

	assert_int_equal(witness_state_open(w->dir, false, &other, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "in use"));
	claim(&w->a, 1);
	run_until(w, a_heard);
	/* Listing (read-only) works while the witness runs. */
	assert_int_equal(witness_state_open(w->dir, true, &other, err, sizeof(err)), 0);
	assert_int_equal(witness_state_count(other), 1);
	assert_int_equal(witness_state_at(other, 0)->holder, 0xa);
	assert_int_equal(witness_state_forget(other, dev), -1);
	witness_state_close(other);
	/* The override is refused while the witness runs. */
	assert_int_equal(witness_state_remove(w->dir, dev, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "in use"));
	stop_server(w);
	witness_uuid_format(dev, id);
	snprintf(path, sizeof(path), "%s/%s.holder", w->dir, id);
	f = fopen(path, "r+");
	assert_non_null(f);
	fseek(f, 40, SEEK_SET);
	fputc('9', f); /* the holder's id changes: the CRC no longer matches */
	fclose(f);
	assert_int_equal(witness_state_open(w->dir, false, &other, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "damaged"));
	/* The operator's override removes even a damaged record; the witness starts empty. */
	assert_int_equal(witness_state_remove(w->dir, dev, err, sizeof(err)), 0);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(witness_state_remove(w->dir, dev, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no such record"));
	start_server(w, w->dir);
	assert_int_equal(witness_state_count(w->state), 0);
}

static void test_uuid_text_round_trips(void **state)
{
	uint8_t back[16];
	char id[WITNESS_UUID_STR];

	witness_uuid_format(dev, id);
	assert_string_equal(id, "deadbeef-0102-0304-0506-0708090a0b0c");
	assert_int_equal(witness_uuid_parse(id, back), 0);
	assert_memory_equal(back, dev, 16);
	assert_int_equal(witness_uuid_parse("DEADBEEF-0102-0304-0506-0708090A0B0C", back), 0);
	assert_int_equal(witness_uuid_parse("deadbeef0102030405060708090a0b0c", back), -1);
	assert_int_equal(witness_uuid_parse("deadbeef-0102-0304-0506-0708090a0b0c0", back), -1);
	assert_int_equal(witness_uuid_parse("deadbeef-0102-0304-0506-0708090a0b0", back), -1);
	assert_int_equal(witness_uuid_parse("deadbeef-0102-0304-0506-0708090a0b0g", back), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_first_claim_granted_the_other_node_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_holder_claiming_again_is_granted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_lets_the_other_node_be_granted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_holder_hears_its_lease_lapse_when_the_witness_is_gone, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_renewals_keep_the_lease, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_refused_renewal_ends_the_grant, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_secret_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_is_refused_and_others_are_served, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handshake_shortcuts_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_holder_survives_a_witness_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_refuses_a_second_user_and_damage, setup, teardown),
		cmocka_unit_test(test_uuid_text_round_trips),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
