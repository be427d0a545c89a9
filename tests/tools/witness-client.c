/* A node's side of the witness protocol for the system tests (tests/system/witness-*.sh):
 * connects, authenticates and sends requests one after the other, printing each answer.
 *
 *   witness-client ADDR:PORT SECRET_FILE NODE_ID (claim|renew|release UUID)...
 *
 * Prints "GRANT <lease ms>", "REFUSE <reason>" or "RELEASED" per request; exits 0 when
 * every request was answered, 3 if the connection was lost (the reason is printed as
 * "lost: ..."), 4 if nothing came within 10 s, 2 on bad arguments.
 *
 *   witness-client ADDR:PORT SECRET_FILE NODE_ID hold UUID
 *
 * Claims through the node's real client (ha/witness.h) and keeps the grant, printing
 * "granted" and, once the verdict turns false, "lapsed" (exit 0), or "refused" (exit 3)
 * if it was never granted. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/reactor.h"
#include "common/util.h"
#include "ha/witness.h"
#include "ha/witness_conn.h"
#include "ha/witness_state.h"

#define GIVE_UP_MS 10000

struct run {
	struct reactor *r;
	struct witness_conn *c;
	char **reqs; /* verb, uuid, verb, uuid... */
	int n_reqs, next;
	int status;
	struct reactor_timer give_up;
};

static void send_next(struct run *run)
{
	static const char *const verbs[] = {[WITNESS_CLAIM] = "claim", [WITNESS_RENEW] = "renew",
	                                    [WITNESS_RELEASE] = "release"};
	struct witness_msg m = {.request = (uint64_t)run->next + 1, .node_id = witness_conn_node(run->c)};
	const char *verb = run->reqs[2 * run->next];

	for (unsigned t = 0; t < ARRAY_SIZE(verbs); t++)
		if (verbs[t] != NULL && strcmp(verbs[t], verb) == 0)
			m.type = (uint8_t)t;
	witness_uuid_parse(run->reqs[2 * run->next + 1], m.uuid);
	witness_conn_send(run->c, &m);
}

static void finish(struct run *run, int status)
{
	run->status = status;
	reactor_timer_cancel(run->r, &run->give_up);
	if (run->c != NULL)
		witness_conn_close(run->c);
	run->c = NULL;
}

static void up(void *arg, struct witness_conn *c)
{
	struct run *run = arg;

	printf("up\n");
	if (run->n_reqs == 0)
		finish(run, 0);
	else
		send_next(run);
}

static void message(void *arg, struct witness_conn *c, const struct witness_msg *m)
{
	struct run *run = arg;

	if (m->type == WITNESS_GRANT)
		printf("GRANT %u\n", m->lease_ms);
	else if (m->type == WITNESS_REFUSE)
		printf("REFUSE %s%s\n", witness_refusal_name(m->reason), m->holder ? " (holder known)" : "");
	else
		printf("%s\n", witness_msg_name(m->type));
	fflush(stdout);
	if (++run->next == run->n_reqs)
		finish(run, 0);
	else
		send_next(run);
}

static void lost(void *arg, struct witness_conn *c, const char *why)
{
	struct run *run = arg;

	printf("lost: %s\n", why);
	run->c = NULL;
	finish(run, 3);
}

static void gone(void *arg)
{
	reactor_stop(((struct run *)arg)->r);
}

static void timed_out(struct reactor_timer *t)
{
	struct run *run = container_of(t, struct run, give_up);

	printf("no answer\n");
	finish(run, 4);
}

struct hold {
	struct reactor *r;
	struct witness_client *cl;
	bool granted;
	int status;
};

static void held_stopped(void *arg)
{
	reactor_stop(((struct hold *)arg)->r);
}

static void held(void *arg, bool granted)
{
	struct hold *h = arg;

	printf("%s\n", granted ? "granted" : h->granted ? "lapsed" : "refused");
	fflush(stdout);
	if (!granted) {
		h->status = h->granted ? 0 : 3;
		witness_client_stop(h->cl, held_stopped, h);
	}
	h->granted = granted;
}

static int hold_main(const char *address, const uint8_t *secret, size_t secret_len, uint64_t node,
                     const uint8_t uuid[16])
{
	struct witness_client_params p = {
		.addresses = {address}, .n_addresses = 1, .secret = secret, .secret_len = secret_len, .node_id = node,
		.ping_interval_ms = 200, .timeout_ms = 60000, .claim_timeout_ms = 5000,
	};
	struct hold h = {.status = 3};
	struct ha_arbiter arb;
	char err[256];

	if (reactor_new(32, &h.r) != 0 || witness_client_new(h.r, &p, &h.cl, err, sizeof(err)) != 0) {
		fprintf(stderr, "witness-client: %s\n", err);
		return 1;
	}
	arb = witness_arbiter(h.cl);
	arb.claim(arb.ctx, uuid, node, NULL, held, &h);
	reactor_run(h.r);
	witness_client_free(h.cl);
	reactor_free(h.r);
	return h.status;
}

int main(int argc, char **argv)
{
	static const struct witness_conn_ops ops = {.up = up, .message = message, .lost = lost, .gone = gone};
	struct witness_conn_config cfg = {.side = WITNESS_SIDE_NODE, .ping_interval_ms = 1000, .timeout_ms = 5000};
	struct run run = {.reqs = argv + 4, .n_reqs = (argc - 4) / 2};
	struct sockaddr_in sin = {.sin_family = AF_INET};
	uint8_t secret[WITNESS_SECRET_MAX + 1], uuid[16];
	char addr[64];
	uint16_t port;
	const char *why;
	FILE *f;
	int fd;

	if (argc < 4 || (argc - 4) % 2 != 0 || witness_conn_parse_address(argv[1], addr, sizeof(addr), &port) != 0 ||
	    inet_pton(AF_INET, addr, &sin.sin_addr) != 1 || (cfg.node_id = strtoull(argv[3], NULL, 16)) == 0) {
		fprintf(stderr, "usage: witness-client IPV4:PORT SECRET_FILE NODE_ID_HEX (claim|renew|release UUID)...\n");
		return 2;
	}
	for (int i = 0; i < run.n_reqs; i++)
		if (witness_uuid_parse(run.reqs[2 * i + 1], uuid) != 0) {
			fprintf(stderr, "witness-client: bad uuid '%s'\n", run.reqs[2 * i + 1]);
			return 2;
		}
	f = fopen(argv[2], "r");
	if (f == NULL || (cfg.secret_len = fread(secret, 1, sizeof(secret), f)) == 0) {
		fprintf(stderr, "witness-client: cannot read %s\n", argv[2]);
		return 2;
	}
	fclose(f);
	if (secret[cfg.secret_len - 1] == '\n')
		cfg.secret_len--;
	cfg.secret = secret;
	if (run.n_reqs == 1 && strcmp(run.reqs[0], "hold") == 0) {
		witness_uuid_parse(run.reqs[1], uuid);
		return hold_main(argv[1], secret, cfg.secret_len, cfg.node_id, uuid);
	}
	sin.sin_port = htons(port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		printf("lost: connect: %s\n", strerror(errno));
		return 3;
	}
	if (reactor_new(32, &run.r) != 0)
		return 1;
	run.c = witness_conn_start(run.r, fd, &cfg, &ops, &run, &why);
	if (run.c == NULL) {
		fprintf(stderr, "witness-client: %s\n", why);
		return 1;
	}
	reactor_timer_start(run.r, &run.give_up, GIVE_UP_MS, timed_out);
	reactor_run(run.r);
	reactor_free(run.r);
	return run.status;
}
