/* faultproxy: TCP forwarding on loopback with faults commanded at runtime, for the
 * fault suite's sync and heartbeat links.
 *
 * Each route listens on one address and forwards every connection to a target address
 * (optionally from a given source address, so the target sees the partner it expects).
 * Commands, one a line on the control FIFO, apply to every route whose name starts with
 * the pattern ("all" matches every route):
 *   down PATTERN      partition: nothing is forwarded any more and new connections are
 *                     held unanswered, and neither side learns of it (like a cut cable:
 *                     only the endpoints' own timeouts notice)
 *   refuse PATTERN    every connection is reset, and new ones too (a node whose
 *                     address answers with RST: the fast way to fail an iSCSI path)
 *   up PATTERN        the partition heals; held data and connections move on
 *   reset PATTERN     every connection of the route is reset now (both ends see it)
 *   delay PATTERN MS  data is forwarded MS milliseconds after it arrived (0: at once)
 * Each command is acknowledged with a line "ok CMD PATTERN" on stdout.
 *
 * Why a proxy rather than network namespaces with veth links: it needs no root, leaves no
 * kernel state behind when a run is killed, and can also delay and reset links, which
 * this kernel (no netem) cannot do in namespaces. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#define MAX_ROUTES 16
#define MAX_PAIRS 128
#define CHUNK 16384
#define QUEUE_LIMIT (256 * 1024) /* per direction: stop reading beyond it */

static uint64_t clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct route {
	char name[32];
	struct sockaddr_in listen, target, source;
	bool has_source;
	int lfd;
	bool down, refuse;
	unsigned delay_ms;
};

struct chunk {
	struct chunk *next;
	uint64_t due_ms;
	size_t len, off;
	char data[CHUNK];
};

/* One direction of a forwarded connection: what was read from `from` waits for `to`. */
struct flow {
	struct chunk *head, *tail;
	size_t queued;
	bool eof;      /* `from` has closed; shut `to` down once the queue is empty */
	bool shut;
};

struct pair {
	struct route *route;
	int fd[2];       /* 0: the dialer (accepted), 1: the target (dialed) */
	bool connecting; /* fd[1]'s connect is under way */
	struct flow flow[2]; /* flow[i]: from fd[i] to fd[1 - i] */
};

struct proxy {
	struct route routes[MAX_ROUTES];
	unsigned n_routes;
	struct pair *pairs[MAX_PAIRS];
	int control;
	char line[256];
	size_t line_len;
};

static int parse_addr(const char *text, struct sockaddr_in *sa, bool want_port)
{
	char host[64];
	const char *colon = strrchr(text, ':');
	size_t hl = want_port ? (colon ? (size_t)(colon - text) : 0) : strlen(text);
	if (hl == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, text, hl);
	host[hl] = '\0';
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return -1;
	if (want_port) {
		char *end;
		unsigned long port = strtoul(colon + 1, &end, 10);
		if (*end != '\0' || port == 0 || port > 65535)
			return -1;
		sa->sin_port = htons((uint16_t)port);
	}
	return 0;
}

/* NAME,LISTEN_IP:PORT,TARGET_IP:PORT[,SOURCE_IP] */
static int parse_route(const char *spec, struct route *r)
{
	char buf[256], *f[4] = { 0 };
	unsigned n = 0;
	if (strlen(spec) >= sizeof(buf))
		return -1;
	strcpy(buf, spec);
	for (char *s = buf, *tok; n < 4 && (tok = strsep(&s, ",")); n++)
		f[n] = tok;
	if (n < 3 || strlen(f[0]) == 0 || strlen(f[0]) >= sizeof(r->name))
		return -1;
	strcpy(r->name, f[0]);
	if (parse_addr(f[1], &r->listen, true) < 0 || parse_addr(f[2], &r->target, true) < 0)
		return -1;
	r->has_source = n == 4;
	return r->has_source ? parse_addr(f[3], &r->source, false) : 0;
}

static void route_listen(struct route *r)
{
	r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(r->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (r->lfd < 0 || bind(r->lfd, (struct sockaddr *)&r->listen, sizeof(r->listen)) < 0 ||
	    listen(r->lfd, 16) < 0) {
		fprintf(stderr, "faultproxy: route %s: cannot listen: %s\n", r->name, strerror(errno));
		exit(1);
	}
}

static void flow_clear(struct flow *f)
{
	while (f->head) {
		struct chunk *c = f->head;
		f->head = c->next;
		free(c);
	}
	*f = (struct flow){ 0 };
}

/* Closes both ends; with rst, a reset rather than an orderly close. */
static void pair_close(struct proxy *px, unsigned i, bool rst)
{
	struct pair *p = px->pairs[i];
	for (int k = 0; k < 2; k++) {
		if (p->fd[k] < 0)
			continue;
		if (rst) {
			struct linger lg = { .l_onoff = 1, .l_linger = 0 };
			setsockopt(p->fd[k], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		close(p->fd[k]);
		flow_clear(&p->flow[k]);
	}
	free(p);
	px->pairs[i] = NULL;
}

static void pair_dial(struct pair *p)
{
	struct route *r = p->route;
	p->fd[1] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd[1] < 0)
		return;
	if (r->has_source)
		bind(p->fd[1], (struct sockaddr *)&r->source, sizeof(r->source));
	if (connect(p->fd[1], (struct sockaddr *)&r->target, sizeof(r->target)) == 0 || errno == EINPROGRESS)
		p->connecting = true;
	else {
		close(p->fd[1]);
		p->fd[1] = -1;
	}
}

static void route_accept(struct proxy *px, struct route *r)
{
	int fd = accept4(r->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (r->refuse) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd);
		return;
	}
	unsigned i;
	for (i = 0; i < MAX_PAIRS && px->pairs[i]; i++)
		;
	struct pair *p = i < MAX_PAIRS ? calloc(1, sizeof(*p)) : NULL;
	if (!p) {
		close(fd);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	p->route = r;
	p->fd[0] = fd;
	p->fd[1] = -1;
	px->pairs[i] = p;
	/* While the route is down the dialer's connection is held: it hangs, as a SYN into a
	 * cut cable would. */
	if (!r->down)
		pair_dial(p);
}

/* Reads what fd[k] has into flow[k]; false if the pair must go. */
static bool flow_read(struct pair *p, int k, uint64_t now)
{
	struct flow *f = &p->flow[k];
	struct chunk *c = malloc(sizeof(*c));
	if (!c)
		return false;
	ssize_t n = read(p->fd[k], c->data, CHUNK);
	if (n <= 0) {
		free(c);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return true;
		if (n < 0)
			return false;
		f->eof = true;
		return true;
	}
	c->next = NULL;
	c->due_ms = now + p->route->delay_ms;
	c->len = (size_t)n;
	c->off = 0;
	if (f->tail)
		f->tail->next = c;
	else
		f->head = c;
	f->tail = c;
	f->queued += (size_t)n;
	return true;
}

/* Writes the due part of flow[k] to the other end; false if the pair must go. */
static bool flow_write(struct pair *p, int k, uint64_t now)
{
	struct flow *f = &p->flow[k];
	int to = p->fd[1 - k];
	while (f->head && f->head->due_ms <= now) {
		struct chunk *c = f->head;
		ssize_t n = write(to, c->data + c->off, c->len - c->off);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		c->off += (size_t)n;
		f->queued -= (size_t)n;
		if (c->off < c->len)
			return true;
		f->head = c->next;
		if (!f->head)
			f->tail = NULL;
		free(c);
	}
	if (!f->head && f->eof && !f->shut) {
		shutdown(to, SHUT_WR);
		f->shut = true;
	}
	return true;
}

/* The earliest time a delayed chunk becomes due, for poll's timeout. */
static uint64_t next_due(const struct proxy *px)
{
	uint64_t due = UINT64_MAX;
	for (unsigned i = 0; i < MAX_PAIRS; i++) {
		const struct pair *p = px->pairs[i];
		if (!p || p->route->down)
			continue;
		for (int k = 0; k < 2; k++)
			if (p->flow[k].head && p->flow[k].head->due_ms < due)
				due = p->flow[k].head->due_ms;
	}
	return due;
}

static bool route_matches(const struct route *r, const char *pattern)
{
	return strcmp(pattern, "all") == 0 || strncmp(r->name, pattern, strlen(pattern)) == 0;
}

static void command(struct proxy *px, char *line)
{
	char cmd[16], pattern[32];
	unsigned ms = 0;
	int n = sscanf(line, "%15s %31s %u", cmd, pattern, &ms);
	bool down = strcmp(cmd, "down") == 0, up = strcmp(cmd, "up") == 0, reset = strcmp(cmd, "reset") == 0;
	bool delay = strcmp(cmd, "delay") == 0, refuse = strcmp(cmd, "refuse") == 0;
	if (n < 2 || !(down || up || reset || delay || refuse) || (delay && n != 3)) {
		printf("error: '%s': want down|up|reset|refuse PATTERN or delay PATTERN MS\n", line);
		fflush(stdout);
		return;
	}
	unsigned matched = 0;
	for (unsigned i = 0; i < px->n_routes; i++) {
		struct route *r = &px->routes[i];
		if (!route_matches(r, pattern))
			continue;
		matched++;
		if (down || up)
			r->down = down;
		if (refuse || up)
			r->refuse = refuse;
		if (delay)
			r->delay_ms = ms;
		for (unsigned j = 0; j < MAX_PAIRS; j++) {
			struct pair *p = px->pairs[j];
			if (!p || p->route != r)
				continue;
			if (reset || refuse)
				pair_close(px, j, true);
			else if (up && p->fd[1] < 0)
				pair_dial(p); /* held while the route was down */
		}
	}
	printf("ok %s %s (%u routes)\n", cmd, pattern, matched);
	fflush(stdout);
}

static void read_control(struct proxy *px)
{
	char buf[256];
	ssize_t n = read(px->control, buf, sizeof(buf));
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			px->line[px->line_len] = '\0';
			if (px->line_len)
				command(px, px->line);
			px->line_len = 0;
		} else if (px->line_len < sizeof(px->line) - 1) {
			px->line[px->line_len++] = buf[i];
		}
	}
}

/* The events a pair waits for: nothing at all while its route is down. */
static void pair_events(const struct pair *p, short ev[2])
{
	ev[0] = ev[1] = 0;
	if (p->route->down)
		return;
	if (p->connecting) {
		ev[1] = POLLOUT;
		return;
	}
	for (int k = 0; k < 2; k++) {
		if (!p->flow[k].eof && p->flow[k].queued < QUEUE_LIMIT)
			ev[k] |= POLLIN;
		if (p->flow[k].head)
			ev[1 - k] |= POLLOUT;
	}
}

/* Serves one pair after poll; false if it must go. */
static bool pair_serve(struct pair *p, const short rev[2], uint64_t now)
{
	if (p->route->down)
		return true;
	if (p->fd[1] < 0)
		return false; /* the dial failed at once */
	if (p->connecting) {
		if (!rev[1])
			return true;
		int err = 0;
		socklen_t len = sizeof(err);
		getsockopt(p->fd[1], SOL_SOCKET, SO_ERROR, &err, &len);
		if (err)
			return false; /* the target is not there: the dialer sees its connection close */
		p->connecting = false;
		int one = 1;
		setsockopt(p->fd[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		return true;
	}
	for (int k = 0; k < 2; k++) {
		if ((rev[k] & (POLLIN | POLLHUP | POLLERR)) && !flow_read(p, k, now))
			return false;
	}
	for (int k = 0; k < 2; k++)
		if (!flow_write(p, k, now))
			return false;
	return !(p->flow[0].shut && p->flow[1].shut);
}

static void serve(struct proxy *px)
{
	enum { MAXFD = 1 + MAX_ROUTES + 2 * MAX_PAIRS };
	for (;;) {
		struct pollfd pfd[MAXFD];
		unsigned n = 0, pair_at[MAX_PAIRS];
		pfd[n++] = (struct pollfd){ .fd = px->control, .events = POLLIN };
		for (unsigned i = 0; i < px->n_routes; i++)
			pfd[n++] = (struct pollfd){ .fd = px->routes[i].lfd, .events = POLLIN };
		for (unsigned i = 0; i < MAX_PAIRS; i++) {
			struct pair *p = px->pairs[i];
			if (!p)
				continue;
			short ev[2];
			pair_events(p, ev);
			pair_at[i] = n;
			for (int k = 0; k < 2; k++)
				pfd[n++] = (struct pollfd){ .fd = ev[k] ? p->fd[k] : -1, .events = ev[k] };
		}
		uint64_t now = clock_ms(), due = next_due(px);
		int timeout = due == UINT64_MAX ? 1000 : due <= now ? 0 : (int)(due - now);
		if (poll(pfd, n, timeout) < 0 && errno != EINTR) {
			perror("faultproxy: poll");
			exit(1);
		}
		now = clock_ms();
		/* Pairs first, then new connections and commands, so the poll slots still
		 * match the pairs they were made for. */
		for (unsigned i = 0; i < MAX_PAIRS; i++) {
			struct pair *p = px->pairs[i];
			if (!p)
				continue;
			short rev[2] = { pfd[pair_at[i]].revents, pfd[pair_at[i] + 1].revents };
			if (!pair_serve(p, rev, now))
				pair_close(px, i, false);
		}
		for (unsigned i = 0; i < px->n_routes; i++)
			if (pfd[1 + i].revents)
				route_accept(px, &px->routes[i]);
		if (pfd[0].revents)
			read_control(px);
	}
}

int main(int argc, char **argv)
{
	struct proxy *px = calloc(1, sizeof(*px));
	if (!px || argc < 4 || strcmp(argv[1], "--control") != 0) {
		fputs("usage: faultproxy --control FIFO ROUTE...\n"
		      "  ROUTE: NAME,LISTEN_IP:PORT,TARGET_IP:PORT[,SOURCE_IP]\n"
		      "  commands on FIFO: down|up|reset|refuse PATTERN, delay PATTERN MS\n",
		      stderr);
		return 2;
	}
	/* Opened read-write so that the FIFO never reports end of file between writers. */
	px->control = open(argv[2], O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (px->control < 0) {
		fprintf(stderr, "faultproxy: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	for (int i = 3; i < argc; i++) {
		if (px->n_routes == MAX_ROUTES || parse_route(argv[i], &px->routes[px->n_routes]) < 0) {
			fprintf(stderr, "faultproxy: bad route '%s' (NAME,LISTEN_IP:PORT,TARGET_IP:PORT[,SOURCE_IP])\n",
			        argv[i]);
			return 2;
		}
		route_listen(&px->routes[px->n_routes++]);
	}
	signal(SIGPIPE, SIG_IGN);
	printf("ready\n");
	fflush(stdout);
	serve(px);
}
