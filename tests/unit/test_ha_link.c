/* HA links over TCP on 127.0.0.1:3340: two nodes with one secret authenticate and carry
 * a WRITE and its ack, also with a partner of protocol 1; heartbeats keep an idle link alive; a wrong secret, a peer
 * speaking garbage, a silent peer and a peer saying goodbye each lose the link, once,
 * with a reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/reactor.h"
#include "ha/link.h"

#define TEST_PORT 3340

struct side {
	struct link *l;
	bool up;
	int lost;
	char why[192];
	int writes, acks;
	uint8_t seed;
	uint8_t version_max; /* 0: this build's newest */
};

struct world {
	struct reactor *r;
	struct side a, b;
	bool stop_on_ack;
};

static struct world w;
static uint8_t payload[8192];

static int counter_rng(void *ctx, uint8_t *buf, size_t len)
{
	uint8_t *seed = ctx;

	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(*seed * 17 + i);
	(*seed)++;
	return 0;
}

static void on_up(void *arg, struct link *l)
{
	struct side *s = arg;

	s->up = true;
	if (w.a.up && w.b.up && w.stop_on_ack) {
		struct proto_msg m = {.type = PROTO_WRITE};

		m.u.write = (struct proto_write){42, 1 << 20, sizeof(payload), PROTO_WRITE_FUA, payload};
		assert_int_equal(link_send(w.a.l, &m), 0);
		/* Queued until the reactor sends it: the owner sees it for flow control. */
		assert_true(link_queued_bytes(w.a.l) >= sizeof(payload));
	}
}

static void on_message(void *arg, struct link *l, const struct proto_msg *m)
{
	struct side *s = arg;

	if (m->type == PROTO_WRITE) {
		struct proto_msg ack = {.type = PROTO_WRITE_ACK, .u.ack = {m->u.write.request_id, PROTO_STATUS_OK}};

		assert_int_equal(m->u.write.length, sizeof(payload));
		assert_memory_equal(m->u.write.data, payload, sizeof(payload));
		s->writes++;
		assert_int_equal(link_send(l, &ack), 0);
	} else if (m->type == PROTO_WRITE_ACK) {
		assert_int_equal(m->u.ack.request_id, 42);
		s->acks++;
		reactor_stop(w.r);
	}
}

static void on_lost(void *arg, struct link *l, const char *why)
{
	struct side *s = arg;

	s->lost++;
	snprintf(s->why, sizeof(s->why), "%s", why);
	s->l = NULL;
	if ((w.a.lost || w.a.l == NULL) && (w.b.lost || w.b.l == NULL))
		reactor_stop(w.r);
}

static const struct link_ops ops = {on_up, on_message, on_lost};

static void stop_tick(void *arg)
{
	reactor_stop(arg);
}

/* Runs the reactor until a callback stops it or `ms` pass. */
static void run_for(unsigned ms)
{
	assert_int_equal(reactor_add_ticker(w.r, ms, stop_tick, w.r), 0);
	assert_int_equal(reactor_run(w.r), 0);
	reactor_remove_ticker(w.r, stop_tick, w.r);
}

/* A connected TCP pair over loopback: *client and *server. */
static void tcp_pair(int *client, int *server)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(TEST_PORT)};
	int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(lfd >= 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	*client = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(*client, (struct sockaddr *)&sa, sizeof(sa)), 0);
	*server = accept(lfd, NULL, NULL);
	assert_true(*server >= 0);
	close(lfd);
}

static struct link *start(struct side *s, int fd, uint64_t id, uint8_t role, const char *secret)
{
	struct link_config cfg = {
		.hs = {.secret = (const uint8_t *)secret, .secret_len = strlen(secret), .node_id = id,
		       .device_uuid = {7, 7, 7}, .role = role, .link_kind = PROTO_LINK_SYNC,
		       .rng = counter_rng, .rng_ctx = &s->seed, .version_max = s->version_max},
		.max_payload = PROTO_MAX_PAYLOAD, .ping_interval_ms = 20, .timeout_ms = 300,
	};
	const char *why;

	s->seed = (uint8_t)id;
	s->l = link_start(w.r, fd, &cfg, &ops, s, &why);
	assert_non_null(s->l);
	return s->l;
}

static int setup(void **state)
{
	memset(&w, 0, sizeof(w));
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 3);
	return reactor_new(64, &w.r);
}

static int teardown(void **state)
{
	/* Closes what is left and lets the links free themselves. */
	if (w.a.l != NULL)
		link_close(w.a.l, "test over");
	if (w.b.l != NULL)
		link_close(w.b.l, "test over");
	w.a.l = w.b.l = NULL;
	run_for(50);
	reactor_free(w.r);
	return 0;
}

static void start_pair(const char *secret_a, const char *secret_b)
{
	int c, s;

	tcp_pair(&c, &s);
	start(&w.a, c, 0xa, PROTO_ROLE_PRIMARY, secret_a);
	start(&w.b, s, 0xb, PROTO_ROLE_SECONDARY, secret_b);
}

/* Both sides come up, A's WRITE reaches B and B's ack reaches A. */
static void carry_a_write_and_its_ack(void)
{
	w.stop_on_ack = true;
	start_pair("link secret", "link secret");
	run_for(2000);
	assert_true(w.a.up && w.b.up);
	assert_int_equal(w.b.writes, 1);
	assert_int_equal(w.a.acks, 1);
	assert_int_equal(w.a.lost + w.b.lost, 0);
}

static void test_link_authenticates_and_carries_a_write_and_its_ack(void **state)
{
	carry_a_write_and_its_ack();
}

/* A partner of an older build (protocol 1, HMAC tags) is met at its version. */
static void test_older_peer_is_met_at_protocol_1(void **state)
{
	w.b.version_max = 1;
	carry_a_write_and_its_ack();
}

static void test_heartbeats_keep_an_idle_link_alive(void **state)
{
	start_pair("link secret", "link secret");
	run_for(800); /* well past the 300 ms timeout */
	assert_true(w.a.up && w.b.up);
	assert_int_equal(w.a.lost + w.b.lost, 0);
}

static void check_leases(void *arg)
{
	uint64_t seen_a = link_peer_seen_ms(w.a.l), seen_b = link_peer_seen_ms(w.b.l);

	(void)arg;
	if (!w.a.up || !w.b.up)
		return;
	/* What makes the read lease safe: a node never saw its peer later than the peer
	 * last answered it. */
	assert_true(seen_a > 0 && seen_b > 0);
	assert_true(seen_a <= link_answer_given_ms(w.b.l));
	assert_true(seen_b <= link_answer_given_ms(w.a.l));
}

/* Heartbeats renew what each side knows of the other: the times a read lease rests on. */
static void test_heartbeats_renew_the_read_lease_times(void **state)
{
	uint64_t first_seen;

	start_pair("link secret", "link secret");
	assert_int_equal(reactor_add_ticker(w.r, 5, check_leases, NULL), 0);
	run_for(500);
	assert_true(w.a.up && w.b.up);
	first_seen = link_peer_seen_ms(w.b.l);
	run_for(200); /* ten ping intervals */
	reactor_remove_ticker(w.r, check_leases, NULL);
	assert_true(link_peer_seen_ms(w.b.l) > first_seen);
	check_leases(NULL);
}

static void test_wrong_secret_loses_the_link_on_both_sides(void **state)
{
	start_pair("link secret", "another secret");
	run_for(2000);
	assert_false(w.a.up || w.b.up);
	assert_int_equal(w.a.lost, 1);
	assert_int_equal(w.b.lost, 1);
	assert_null(strstr(w.a.why, "link secret"));
	assert_true(strstr(w.a.why, "secret") != NULL || strstr(w.a.why, "goodbye") != NULL);
}

static void test_garbage_speaking_peer_refused(void **state)
{
	static const char garbage[] = "GET / HTTP/1.1\r\nHost: twinsan\r\n\r\n";
	int c, s;

	tcp_pair(&c, &s);
	start(&w.a, s, 0xa, PROTO_ROLE_PRIMARY, "link secret");
	assert_int_equal(write(c, garbage, sizeof(garbage) - 1), (ssize_t)sizeof(garbage) - 1);
	run_for(2000);
	assert_int_equal(w.a.lost, 1);
	assert_non_null(strstr(w.a.why, "bad magic"));
	close(c);
}

static void test_silent_peer_times_out(void **state)
{
	int c, s;

	tcp_pair(&c, &s);
	start(&w.a, s, 0xa, PROTO_ROLE_PRIMARY, "link secret");
	run_for(2000);
	assert_int_equal(w.a.lost, 1);
	assert_non_null(strstr(w.a.why, "during the handshake"));
	close(c);
}

static void test_peer_goodbye_loses_the_link(void **state)
{
	start_pair("link secret", "link secret");
	run_for(100);
	assert_true(w.a.up && w.b.up);
	link_close(w.b.l, "operator");
	w.b.l = NULL;
	run_for(2000);
	assert_int_equal(w.a.lost, 1);
	assert_int_equal(w.b.lost, 0);
	assert_non_null(strstr(w.a.why, "goodbye: shutdown"));
}

static void test_start_refuses_empty_secret_and_bad_heartbeat(void **state)
{
	struct link_config cfg = {
		.hs = {.secret = (const uint8_t *)"", .node_id = 1, .role = PROTO_ROLE_PRIMARY,
		       .link_kind = PROTO_LINK_SYNC, .rng = handshake_rng_openssl},
		.max_payload = 4096, .ping_interval_ms = 100, .timeout_ms = 1000,
	};
	const char *why;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_null(link_start(w.r, fd, &cfg, &ops, NULL, &why));
	assert_non_null(strstr(why, "secret"));
	assert_int_equal(fcntl(fd, F_GETFD), -1); /* the descriptor was closed */
	cfg.hs.secret = (const uint8_t *)"s";
	cfg.hs.secret_len = 1;
	cfg.timeout_ms = 100;
	assert_null(link_start(w.r, socket(AF_INET, SOCK_STREAM, 0), &cfg, &ops, NULL, &why));
	assert_non_null(strstr(why, "heartbeat"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_link_authenticates_and_carries_a_write_and_its_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_older_peer_is_met_at_protocol_1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_heartbeats_keep_an_idle_link_alive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_heartbeats_renew_the_read_lease_times, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_secret_loses_the_link_on_both_sides, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_speaking_peer_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_silent_peer_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_goodbye_loses_the_link, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_refuses_empty_secret_and_bad_heartbeat, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
