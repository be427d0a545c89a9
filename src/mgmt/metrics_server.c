/* The metrics endpoint on the reactor: libmicrohttpd in external epoll mode. */
#include "mgmt/metrics_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "mgmt/metrics.h"

#define MAX_CONNECTIONS 16
#define CONNECTION_TIMEOUT_S 10
#define MAX_TIMER_MS 1000 /* a connection's timeouts are checked at least this often */

struct lun_entry {
	char *target, *device;
	uint64_t lun;
	const struct scsi_lu *lu;
};

struct metrics_server {
	struct reactor *r;
	char *version;
	uint64_t started_ms;
	struct lun_entry *luns;
	size_t n_luns;
	const struct ha_device **devices;
	size_t n_devices;
	struct MHD_Daemon *mhd;
	int epoll_fd;
	struct reactor_op poll_op, cancel_op;
	struct reactor_timer timer;
	unsigned in_flight;   /* the poll and its cancellation */
	bool polling, stopping;
};

int metrics_server_new(struct reactor *r, const char *version, struct metrics_server **out)
{
	struct metrics_server *m = calloc(1, sizeof(*m));

	if (!m || !(m->version = strdup(version))) {
		free(m);
		return -1;
	}
	m->r = r;
	m->started_ms = now_ms();
	m->epoll_fd = -1;
	*out = m;
	return 0;
}

int metrics_server_add_lun(struct metrics_server *m, const char *target, uint64_t lun, const char *device,
                           const struct scsi_lu *lu)
{
	struct lun_entry *luns = realloc(m->luns, (m->n_luns + 1) * sizeof(*luns));
	struct lun_entry *e;

	if (!luns)
		return -1;
	m->luns = luns;
	e = &luns[m->n_luns];
	e->target = strdup(target);
	e->device = strdup(device ? device : "");
	if (!e->target || !e->device) {
		free(e->target);
		free(e->device);
		return -1;
	}
	e->lun = lun;
	e->lu = lu;
	m->n_luns++;
	return 0;
}

int metrics_server_add_ha_device(struct metrics_server *m, const struct ha_device *dev)
{
	const struct ha_device **devices = realloc(m->devices, (m->n_devices + 1) * sizeof(*devices));

	if (!devices)
		return -1;
	m->devices = devices;
	devices[m->n_devices++] = dev;
	return 0;
}

void metrics_server_remove_lun(struct metrics_server *m, const struct scsi_lu *lu)
{
	for (size_t i = 0; i < m->n_luns; i++) {
		if (m->luns[i].lu == lu) {
			free(m->luns[i].target);
			free(m->luns[i].device);
			memmove(m->luns + i, m->luns + i + 1, (m->n_luns - i - 1) * sizeof(*m->luns));
			m->n_luns--;
			return;
		}
	}
}

void metrics_server_remove_ha_device(struct metrics_server *m, const struct ha_device *dev)
{
	for (size_t i = 0; i < m->n_devices; i++) {
		if (m->devices[i] == dev) {
			memmove(m->devices + i, m->devices + i + 1, (m->n_devices - i - 1) * sizeof(*m->devices));
			m->n_devices--;
			return;
		}
	}
}

char *metrics_server_render(const struct metrics_server *m, size_t *len)
{
	struct metrics_lun *luns = calloc(m->n_luns + 1, sizeof(*luns));
	struct ha_device_status *devices = calloc(m->n_devices + 1, sizeof(*devices));
	struct metrics_snapshot s = {
		.version = m->version, .uptime_ms = now_ms() - m->started_ms,
		.luns = luns, .n_luns = m->n_luns, .devices = devices, .n_devices = m->n_devices,
	};
	char *text = NULL;
	FILE *f;

	if (!luns || !devices)
		goto out;
	for (size_t i = 0; i < m->n_luns; i++) {
		luns[i].target = m->luns[i].target;
		luns[i].lun = m->luns[i].lun;
		luns[i].device = m->luns[i].device;
		scsi_lu_stats(m->luns[i].lu, &luns[i].stats);
	}
	for (size_t i = 0; i < m->n_devices; i++)
		ha_device_status(m->devices[i], &devices[i]);
	f = open_memstream(&text, len);
	if (!f)
		goto out;
	metrics_render(f, &s);
	if (fclose(f) != 0) {
		free(text);
		text = NULL;
	}
out:
	free(luns);
	free(devices);
	return text;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, char *body, size_t len)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;

	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	                        code == MHD_HTTP_OK ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain");
	ret = MHD_queue_response(c, code, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size,
                              void **req_cls)
{
	const struct metrics_server *m = cls;
	char *body;
	size_t len;

	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 || strcmp(url, "/metrics") != 0) {
		body = strdup("not found: the metrics are at GET /metrics\n");
		return body ? reply(c, MHD_HTTP_NOT_FOUND, body, strlen(body)) : MHD_NO;
	}
	body = metrics_server_render(m, &len);
	return body ? reply(c, MHD_HTTP_OK, body, len) : MHD_NO;
}

static void service(struct metrics_server *m);

static void polled(struct reactor_op *op, int res)
{
	struct metrics_server *m = container_of(op, struct metrics_server, poll_op);

	m->polling = false;
	m->in_flight--;
	if (m->stopping) {
		if (m->in_flight == 0)
			reactor_stop(m->r);
		return;
	}
	service(m);
}

static void timed(struct reactor_timer *t)
{
	service(container_of(t, struct metrics_server, timer));
}

/* Lets MHD do what is ready, then waits for its epoll descriptor and its next timeout. */
static void service(struct metrics_server *m)
{
	MHD_UNSIGNED_LONG_LONG ms;

	MHD_run(m->mhd);
	if (!m->polling) {
		m->polling = true;
		m->in_flight++;
		io_uring_prep_poll_add(reactor_sqe(m->r, &m->poll_op, polled), m->epoll_fd, POLLIN);
	}
	if (MHD_get_timeout(m->mhd, &ms) == MHD_YES)
		reactor_timer_start(m->r, &m->timer, ms < MAX_TIMER_MS ? (unsigned)ms : MAX_TIMER_MS, timed);
	else
		reactor_timer_cancel(m->r, &m->timer);
}

int metrics_server_listen(struct metrics_server *m, const char *address, uint16_t port, char *err,
                          size_t errlen)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	const struct sockaddr *sa;
	unsigned flags = MHD_USE_EPOLL;
	const union MHD_DaemonInfo *info;

	if (inet_pton(AF_INET, address, &sin.sin_addr) == 1) {
		sa = (const struct sockaddr *)&sin;
	} else if (inet_pton(AF_INET6, address, &sin6.sin6_addr) == 1) {
		sa = (const struct sockaddr *)&sin6;
		flags |= MHD_USE_IPv6;
	} else {
		snprintf(err, errlen, "metrics: '%s' is not a numeric IPv4 or IPv6 address", address);
		return -1;
	}
	/* MHD reports a failed bind only as NULL; errno still says why. */
	errno = 0;
	m->mhd = MHD_start_daemon(flags, port, NULL, NULL, handle, m, MHD_OPTION_SOCK_ADDR, sa,
	                          MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
	                          MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S, MHD_OPTION_END);
	if (!m->mhd) {
		snprintf(err, errlen, "metrics: cannot listen on %s port %u: %s", address, port,
		         errno ? strerror(errno) : "libmicrohttpd failed to start");
		return -1;
	}
	info = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info) {
		snprintf(err, errlen, "metrics: libmicrohttpd has no epoll descriptor");
		MHD_stop_daemon(m->mhd);
		m->mhd = NULL;
		return -1;
	}
	m->epoll_fd = info->epoll_fd;
	service(m);
	return 0;
}

static void cancelled(struct reactor_op *op, int res)
{
	struct metrics_server *m = container_of(op, struct metrics_server, cancel_op);

	if (--m->in_flight == 0)
		reactor_stop(m->r);
}

void metrics_server_free(struct metrics_server *m)
{
	if (!m)
		return;
	m->stopping = true;
	reactor_timer_cancel(m->r, &m->timer);
	if (m->polling) {
		m->in_flight++;
		io_uring_prep_cancel64(reactor_sqe(m->r, &m->cancel_op, cancelled), (uint64_t)(uintptr_t)&m->poll_op, 0);
		while (m->in_flight > 0)
			if (reactor_run(m->r) < 0)
				break;
	}
	if (m->mhd)
		MHD_stop_daemon(m->mhd);
	for (size_t i = 0; i < m->n_luns; i++) {
		free(m->luns[i].target);
		free(m->luns[i].device);
	}
	free(m->luns);
	free(m->devices);
	free(m->version);
	free(m);
}
