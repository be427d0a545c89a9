/* The HA connection manager over loopback, against a stand-in device that records the
 * sockets it is given: the primary reaches every listening link of the secondary, keeps
 * retrying while the partner is absent, and dials again when a link drops. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "ha/peer.h"

/* The opaque device, as far as the manager can see it: one socket per link slot. */
struct ha_device {
	int fd[3][HA_MAX_LINKS]; /* by proto_link_kind */
	unsigned added;
};

void ha_device_add_link(struct ha_device *d, int fd, enum proto_link_kind kind, unsigned index)
{
	if (d->fd[kind][index] >= 0)
		close(d->fd[kind][index]);
	d->fd[kind][index] = fd;
	d->added++;
}

bool ha_device_link_connected(const struct ha_device *d, enum proto_link_kind kind, unsigned index)
{
	return d->fd[kind][index] >= 0;
}

static void device_init(struct ha_device *d)
{
	memset(d, 0, sizeof(*d));
	for (unsigned k = 0; k < 3; k++)
		for (unsigned i = 0; i < HA_MAX_LINKS; i++)
			d->fd[k][i] = -1;
}

static void device_drop(struct ha_device *d, enum proto_link_kind kind, unsigned index)
{
	close(d->fd[kind][index]);
	d->fd[kind][index] = -1;
}

static void device_close(struct ha_device *d)
{
	for (unsigned k = 0; k < 3; k++)
		for (unsigned i = 0; i < HA_MAX_LINKS; i++)
			if (d->fd[k][i] >= 0)
				device_drop(d, k, i);
}

/* A port nobody listens on now. */
static uint16_t free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

struct fixture {
	struct reactor *r;
	struct ha_device primary, secondary;
	struct ha_peer_link links[2];
	struct ha_peer *dialer, *listener;
	unsigned want_added;       /* stop once both devices were given this many sockets */
	uint64_t deadline_ms;
	struct reactor_timer late_start;
};

static void watch(void *arg)
{
	struct fixture *f = arg;

	if ((f->primary.added >= f->want_added && f->secondary.added >= f->want_added) ||
	    now_ms() > f->deadline_ms)
		reactor_stop(f->r);
}

static void run_until(struct fixture *f, unsigned added)
{
	f->want_added = added;
	f->deadline_ms = now_ms() + 10000;
	assert_int_equal(reactor_run(f->r), 0);
	assert_true(f->primary.added >= added);
	assert_true(f->secondary.added >= added);
}

static void start(struct fixture *f, struct ha_device *d, enum ha_role role, struct ha_peer **out)
{
	struct ha_peer_params params = {
		.name = "HA1", .device = d, .role = role, .links = f->links, .n_links = 2,
	};
	char err[256];

	if (ha_peer_start(f->r, &params, out, err, sizeof(err)) < 0)
		fail_msg("%s", err);
}

static void late_start(struct reactor_timer *t)
{
	struct fixture *f = container_of(t, struct fixture, late_start);

	start(f, &f->secondary, HA_ROLE_SECONDARY, &f->listener);
}

static int setup(void **state)
{
	static struct fixture f;
	uint16_t sync_port = free_port(), hb_port = free_port();

	memset(&f, 0, sizeof(f));
	if (reactor_new(64, &f.r) < 0)
		return -1;
	device_init(&f.primary);
	device_init(&f.secondary);
	/* One loopback address for both ends: the secondary's ports tell the links apart. */
	f.links[0] = (struct ha_peer_link){ PROTO_LINK_SYNC, 0, "127.0.0.1", sync_port, "127.0.0.1", sync_port };
	f.links[1] = (struct ha_peer_link){ PROTO_LINK_HEARTBEAT, 0, "127.0.0.1", hb_port, "127.0.0.1", hb_port };
	reactor_add_ticker(f.r, 10, watch, &f);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ha_peer_stop(f->dialer);
	ha_peer_stop(f->listener);
	ha_peer_free(f->dialer);
	ha_peer_free(f->listener);
	device_close(&f->primary);
	device_close(&f->secondary);
	reactor_free(f->r);
	return 0;
}

static void primary_reaches_every_link(void **state)
{
	struct fixture *f = *state;

	start(f, &f->secondary, HA_ROLE_SECONDARY, &f->listener);
	start(f, &f->primary, HA_ROLE_PRIMARY, &f->dialer);
	run_until(f, 2);
	assert_true(ha_device_link_connected(&f->primary, PROTO_LINK_SYNC, 0));
	assert_true(ha_device_link_connected(&f->primary, PROTO_LINK_HEARTBEAT, 0));
	assert_true(ha_device_link_connected(&f->secondary, PROTO_LINK_SYNC, 0));
	assert_true(ha_device_link_connected(&f->secondary, PROTO_LINK_HEARTBEAT, 0));
}

static void primary_retries_until_partner_listens(void **state)
{
	struct fixture *f = *state;

	start(f, &f->primary, HA_ROLE_PRIMARY, &f->dialer);
	/* Refused at first: the partner starts listening only after a few attempts. */
	reactor_timer_start(f->r, &f->late_start, 700, late_start);
	run_until(f, 2);
	assert_true(ha_device_link_connected(&f->secondary, PROTO_LINK_SYNC, 0));
}

static void dropped_link_is_dialed_again(void **state)
{
	struct fixture *f = *state;

	start(f, &f->secondary, HA_ROLE_SECONDARY, &f->listener);
	start(f, &f->primary, HA_ROLE_PRIMARY, &f->dialer);
	run_until(f, 2);
	device_drop(&f->primary, PROTO_LINK_SYNC, 0);
	run_until(f, 3);
	assert_true(ha_device_link_connected(&f->primary, PROTO_LINK_SYNC, 0));
	/* The secondary was handed the new socket for the same slot. */
	assert_int_equal(f->secondary.added, 3);
}

static void ipv6_links_work(void **state)
{
	struct fixture *f = *state;

	f->links[0].local_address = f->links[0].partner_address = "::1";
	f->links[1].local_address = f->links[1].partner_address = "::1";
	start(f, &f->secondary, HA_ROLE_SECONDARY, &f->listener);
	start(f, &f->primary, HA_ROLE_PRIMARY, &f->dialer);
	run_until(f, 2);
	assert_true(ha_device_link_connected(&f->secondary, PROTO_LINK_HEARTBEAT, 0));
}

static void busy_listen_address_is_reported(void **state)
{
	struct fixture *f = *state;
	struct ha_peer *second = NULL;
	struct ha_peer_params params = {
		.name = "HA1", .device = &f->secondary, .role = HA_ROLE_SECONDARY, .links = f->links, .n_links = 2,
	};
	char err[256];

	start(f, &f->secondary, HA_ROLE_SECONDARY, &f->listener);
	assert_int_equal(ha_peer_start(f->r, &params, &second, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "HA1: sync link 0 on 127.0.0.1:"));
	assert_non_null(strstr(err, "cannot listen: Address already in use"));
}

static void bad_addresses_are_refused(void **state)
{
	struct fixture *f = *state;
	struct ha_peer *p = NULL;
	struct ha_peer_link bad = { PROTO_LINK_SYNC, 0, "127.0.0.1", 1, "::1", 1 };
	struct ha_peer_params params = {
		.name = "HA1", .device = &f->primary, .role = HA_ROLE_PRIMARY, .links = &bad, .n_links = 1,
	};
	char err[256];

	assert_int_equal(ha_peer_start(f->r, &params, &p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "HA1: sync link 0: bad addresses"));
	params.n_links = 0;
	assert_int_equal(ha_peer_start(f->r, &params, &p, err, sizeof(err)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(primary_reaches_every_link, setup, teardown),
		cmocka_unit_test_setup_teardown(primary_retries_until_partner_listens, setup, teardown),
		cmocka_unit_test_setup_teardown(dropped_link_is_dialed_again, setup, teardown),
		cmocka_unit_test_setup_teardown(ipv6_links_work, setup, teardown),
		cmocka_unit_test_setup_teardown(busy_listen_address_is_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_addresses_are_refused, setup, teardown),
	};

	log_set_level(LOG_LEVEL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
