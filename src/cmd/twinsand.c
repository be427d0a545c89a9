/* twinsand: the iSCSI target daemon.
 *
 * Quick export mode serves files as LUNs of one target from the command line:
 *   twinsand --portal 127.0.0.1:3260 --target iqn.2026-11.org.twinsan:demo --lun FILE
 * and the normal mode what a configuration file describes (docs/config.md):
 *   twinsand --config /etc/twinsan/twinsand.conf
 * It runs in the foreground, logs to stderr and stops cleanly on SIGTERM or SIGINT. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "common/log.h"
#include "common/reactor.h"
#include "common/util.h"
#include "iscsi/portal.h"
#include "iscsi/server.h"
#include "iscsi/target.h"
#include "mgmt/api.h"
#include "mgmt/apply.h"
#include "mgmt/build.h"
#include "mgmt/config.h"
#include "mgmt/identity.h"
#include "mgmt/metrics_server.h"

#define MAX_PORTALS 16
#define MAX_LUNS 64
#define REACTOR_ENTRIES 1024
#define PR_STATE_SUFFIX ".twinsan-pr"
#define TWINSAND_VERSION "0.1.0"

/* What the command line asks for: a configuration file, or one quick export. */
struct export_spec {
	const char *config;
	const char *portals[MAX_PORTALS];
	size_t nportals;
	const char *target;
	const char *luns[MAX_LUNS];
	size_t nluns;
	uint64_t size;
	bool direct;
	const char *chap;          /* USER:SECRET */
	const char *mutual_chap;
	bool log_level_set;        /* --log-level wins over the configuration file's */
	const char *api_socket;    /* the management API's socket; NULL: the default */
	const char *api_listen;    /* its TCP listener, ADDR:PORT; NULL: none */
	const char *metrics_listen; /* the Prometheus endpoint, ADDR:PORT; NULL: none */
};


/* What runs, to be torn down in reverse. */
struct daemon_state {
	struct reactor *reactor;
	struct iscsi_registry *registry;
	struct iscsi_server *server;
	struct mgmt_build *build;  /* the targets, LUNs and HA devices */
	struct mgmt_api *api;
	struct metrics_server *metrics; /* knows every LU and HA device; serves only if asked */
	char state_dir[CONFIG_PATH_MAX]; /* the API's secret, key and certificate */
	char metrics_listen[CONFIG_ADDRESS_MAX + 8]; /* from the configuration; "": none */
	/* Configuration mode: the managed configuration's changes. */
	struct mgmt_apply *apply;
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: twinsand --config FILE [--log-level error|warning|info|debug]\n"
	        "       twinsand --portal ADDR:PORT [--portal ...] --target IQN --lun FILE [--lun ...]\n"
	        "                [--size SIZE] [--direct] [--chap USER:SECRET]\n"
	        "                [--mutual-chap USER:SECRET] [--log-level error|warning|info|debug]\n"
	        "  --config     serve what this configuration file describes (docs/config.md)\n"
	        "  --api-socket the management API's Unix socket (twinctl --server unix:PATH); default\n"
	        "               " MGMT_API_DEFAULT_SOCKET " with --config, none without\n"
	        "  --api-listen ADDR:PORT: the management API over TCP with TLS; the admin secret,\n"
	        "               key and certificate are made in the state directory at first start\n"
	        "  --metrics-listen ADDR:PORT: serve Prometheus metrics at http://ADDR:PORT/metrics\n"
	        "  --portal     listen address, IPv6 as [::1]:3260 (repeatable)\n"
	        "  --target     iSCSI name of the target\n"
	        "  --lun        backing file or block device, LUN 0, 1, ... in order (repeatable)\n"
	        "  --size       create missing files sparse with this size (K, M, G, T suffixes)\n"
	        "  --direct     bypass the page cache (O_DIRECT)\n"
	        "  --chap       require CHAP from initiators with this user and secret\n"
	        "  --mutual-chap  the target's own credentials for mutual CHAP\n");
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'T': case 't': shift = 40; break;
	case 'G': case 'g': shift = 30; break;
	case 'M': case 'm': shift = 20; break;
	case 'K': case 'k': shift = 10; break;
	case '\0': break;
	default: return -1;
	}
	if (*end && end[1] && strcmp(end + 1, "iB") && strcmp(end + 1, "B"))
		return -1;
	if (v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return *out ? 0 : -1;
}

static int parse_args(int argc, char **argv, struct export_spec *spec)
{
	enum { OPT_MUTUAL = 1000, OPT_LOG_LEVEL, OPT_DIRECT, OPT_CONFIG, OPT_API_SOCKET, OPT_API_LISTEN,
	       OPT_METRICS_LISTEN };
	static const struct option options[] = {
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "api-socket", required_argument, NULL, OPT_API_SOCKET },
		{ "api-listen", required_argument, NULL, OPT_API_LISTEN },
		{ "metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN },
		{ "portal", required_argument, NULL, 'p' },
		{ "target", required_argument, NULL, 't' },
		{ "lun", required_argument, NULL, 'l' },
		{ "size", required_argument, NULL, 's' },
		{ "chap", required_argument, NULL, 'c' },
		{ "mutual-chap", required_argument, NULL, OPT_MUTUAL },
		{ "direct", no_argument, NULL, OPT_DIRECT },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum log_level level;
	int c;

	while ((c = getopt_long(argc, argv, "p:t:l:s:c:h", options, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (spec->nportals == MAX_PORTALS) {
				fprintf(stderr, "twinsand: at most %d portals\n", MAX_PORTALS);
				return -1;
			}
			spec->portals[spec->nportals++] = optarg;
			break;
		case 't':
			spec->target = optarg;
			break;
		case 'l':
			if (spec->nluns == MAX_LUNS) {
				fprintf(stderr, "twinsand: at most %d LUNs\n", MAX_LUNS);
				return -1;
			}
			spec->luns[spec->nluns++] = optarg;
			break;
		case 's':
			if (parse_size(optarg, &spec->size) < 0) {
				fprintf(stderr, "twinsand: bad --size '%s' (e.g. 1G, 512M)\n", optarg);
				return -1;
			}
			break;
		case 'c':
			spec->chap = optarg;
			break;
		case OPT_MUTUAL:
			spec->mutual_chap = optarg;
			break;
		case OPT_DIRECT:
			spec->direct = true;
			break;
		case OPT_CONFIG:
			spec->config = optarg;
			break;
		case OPT_API_SOCKET:
			spec->api_socket = optarg;
			break;
		case OPT_API_LISTEN:
			spec->api_listen = optarg;
			break;
		case OPT_METRICS_LISTEN:
			spec->metrics_listen = optarg;
			break;
		case OPT_LOG_LEVEL:
			if (log_parse_level(optarg, &level) < 0) {
				fprintf(stderr, "twinsand: bad --log-level '%s'\n", optarg);
				return -1;
			}
			log_set_level(level);
			spec->log_level_set = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (spec->config ? optind < argc || spec->nportals || spec->target || spec->nluns
	                 : optind < argc || !spec->nportals || !spec->target || !spec->nluns) {
		usage(stderr);
		return -1;
	}
	return 0;
}

static int parse_creds(const char *opt, const char *s, struct iscsi_chap_creds *creds)
{
	const char *colon = strchr(s, ':');

	if (!colon || colon == s || !colon[1] || (size_t)(colon - s) >= sizeof(creds->user) ||
	    strlen(colon + 1) >= sizeof(creds->secret)) {
		fprintf(stderr, "twinsand: %s wants USER:SECRET\n", opt);
		return -1;
	}
	memcpy(creds->user, s, (size_t)(colon - s));
	creds->user[colon - s] = '\0';
	str_copy(creds->secret, sizeof(creds->secret), colon + 1);
	creds->secret_len = strlen(creds->secret);
	return 0;
}


static int open_core(struct daemon_state *d, unsigned queue_depth, uint64_t node)
{
	struct mgmt_api_params ap = { .version = TWINSAND_VERSION, .node_id = node };
	struct mgmt_build_params bp = { .node = node };

	if (reactor_new(queue_depth, &d->reactor) < 0 || iscsi_registry_new(&d->registry) < 0 ||
	    mgmt_api_new(d->reactor, &ap, &d->api) < 0 ||
	    metrics_server_new(d->reactor, TWINSAND_VERSION, &d->metrics) < 0) {
		log_err("out of memory or io_uring unavailable");
		return -1;
	}
	bp.reactor = d->reactor;
	bp.registry = d->registry;
	bp.api = d->api;
	bp.metrics = d->metrics;
	if (mgmt_build_new(&bp, &d->build) < 0) {
		log_err("out of memory");
		return -1;
	}
	mgmt_api_set_registry(d->api, d->registry);
	return 0;
}

/* Starts the iSCSI server for every target built so far. */
static int start_server(struct daemon_state *d)
{
	struct iscsi_server_params params;

	iscsi_server_default_params(&params);
	if (iscsi_server_new(d->reactor, d->registry, &params, &d->server) < 0) {
		log_err("cannot start the server: %s", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < iscsi_registry_count(d->registry); i++)
		iscsi_server_serve(d->server, iscsi_target_scsi(iscsi_registry_at(d->registry, i)));
	mgmt_build_set_server(d->build, d->server);
	mgmt_api_set_server(d->api, d->server);
	return 0;
}

static int add_portal(struct daemon_state *d, const char *portal, uint16_t tpgt)
{
	char err[256];

	if (iscsi_server_add_portal(d->server, portal, tpgt, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return -1;
	}
	return 0;
}

static int build_quick(struct daemon_state *d, const struct export_spec *spec)
{
	struct iscsi_target *target;
	struct iscsi_target_auth auth = { 0 };
	char state_path[4096];

	str_copy(d->state_dir, sizeof(d->state_dir), CONFIG_DEFAULT_STATE_DIR);
	if (spec->chap) {
		auth.chap_required = true;
		if (parse_creds("--chap", spec->chap, &auth.initiator) < 0)
			return -1;
	}
	if (spec->mutual_chap) {
		if (!spec->chap) {
			fprintf(stderr, "twinsand: --mutual-chap needs --chap\n");
			return -1;
		}
		auth.mutual = true;
		if (parse_creds("--mutual-chap", spec->mutual_chap, &auth.target) < 0)
			return -1;
	}
	if (open_core(d, REACTOR_ENTRIES, 0) < 0)
		return -1;
	target = iscsi_target_add(d->registry, spec->target, "");
	if (!target) {
		log_err("cannot add target '%s'", spec->target);
		return -1;
	}
	for (size_t i = 0; i < spec->nluns; i++) {
		struct mgmt_build_file f = {
			.target = spec->target, .path = spec->luns[i], .lun = i, .create_size = spec->size,
			.direct = spec->direct, .block_size = 512, .state_path = state_path,
		};

		snprintf(state_path, sizeof(state_path), "%s%s", spec->luns[i], PR_STATE_SUFFIX);
		if (mgmt_build_add_file_lun(d->build, &f) < 0)
			return -1;
	}
	if (spec->chap)
		iscsi_target_set_auth(target, &auth);
	if (start_server(d) < 0)
		return -1;
	for (size_t i = 0; i < spec->nportals; i++)
		if (add_portal(d, spec->portals[i], 1) < 0)
			return -1;
	return 0;
}


/* ---- configuration file mode ---- */

static int config_portals(struct daemon_state *d, const struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_portals; i++) {
		const struct config_portal *p = &cfg->portals[i];
		char portal[CONFIG_ADDRESS_MAX + 16];

		snprintf(portal, sizeof(portal), strchr(p->address, ':') ? "[%s]:%u" : "%s:%u",
		         p->address, p->port);
		if (add_portal(d, portal, p->tpgt) < 0)
			return -1;
	}
	return 0;
}

static int build_config(struct daemon_state *d, const char *path, bool keep_log_level)
{
	struct config *cfg;
	char err[512];
	uint64_t node = 0;
	int ret = -1;

	if (config_load(path, &cfg, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return -1;
	}
	str_copy(d->state_dir, sizeof(d->state_dir), cfg->state_dir);
	str_copy(d->metrics_listen, sizeof(d->metrics_listen), cfg->metrics_listen);
	if (!keep_log_level)
		log_set_level(cfg->log_level);
	if (mkdir(cfg->state_dir, 0700) < 0 && errno != EEXIST)
		log_err("state-dir %s: %s", cfg->state_dir, strerror(errno));
	else if ((cfg->n_has == 0 || identity_node_id(cfg, &node) == 0) && open_core(d, cfg->queue_depth, node) == 0 &&
	         mgmt_build_config(d->build, cfg, path) == 0 && start_server(d) == 0 && config_portals(d, cfg) == 0)
		ret = 0;
	/* The running configuration is the base of every change through the API. */
	if (ret == 0 && mgmt_apply_new(path, cfg, mgmt_build_apply_ops(), d->build, &d->apply) == 0) {
		mgmt_api_set_apply(d->api, d->apply);
		return 0;
	}
	if (ret == 0)
		log_err("out of memory");
	config_free(cfg);
	return -1;
}


/* The API's TCP listener; its secret, key and certificate live in the state directory. */
static int start_api_tcp(struct daemon_state *d, const char *listen)
{
	char address[CONFIG_ADDRESS_MAX], secret[CONFIG_PATH_MAX + 16], key[CONFIG_PATH_MAX + 16],
	        cert[CONFIG_PATH_MAX + 16], err[512];
	struct mgmt_api_tcp_params p = { .address = address, .secret_path = secret, .key_path = key, .cert_path = cert };

	if (portal_parse(listen, address, sizeof(address), &p.port) < 0) {
		log_err("--api-listen '%s': want ADDRESS:PORT ([IPv6]:PORT)", listen);
		return -1;
	}
	if (mkdir(d->state_dir, 0700) < 0 && errno != EEXIST) {
		log_err("state-dir %s: %s", d->state_dir, strerror(errno));
		return -1;
	}
	snprintf(secret, sizeof(secret), "%s/admin.secret", d->state_dir);
	snprintf(key, sizeof(key), "%s/api.key", d->state_dir);
	snprintf(cert, sizeof(cert), "%s/api.crt", d->state_dir);
	if (mgmt_api_listen_tcp(d->api, &p, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return -1;
	}
	return 0;
}

/* The management API: on --api-socket, else in configuration mode on the default socket,
 * which a second daemon on the host then does without (with a warning). */
static int start_api(struct daemon_state *d, const struct export_spec *spec)
{
	char err[512];

	if (spec->api_listen && start_api_tcp(d, spec->api_listen) < 0)
		return -1;
	if (!spec->api_socket && !spec->config)
		return 0;
	if (mgmt_api_listen(d->api, spec->api_socket ? spec->api_socket : MGMT_API_DEFAULT_SOCKET, err,
	                    sizeof(err)) == 0)
		return 0;
	if (spec->api_socket) {
		log_err("%s", err);
		return -1;
	}
	log_warn("%s; running without the management API", err);
	return 0;
}

/* The Prometheus endpoint, on --metrics-listen or the configuration's metrics-listen. */
static int start_metrics(struct daemon_state *d, const char *listen)
{
	char address[CONFIG_ADDRESS_MAX], err[512];
	uint16_t port;

	if (!listen)
		listen = d->metrics_listen;
	if (!listen[0])
		return 0;
	if (portal_parse(listen, address, sizeof(address), &port) < 0) {
		log_err("metrics-listen '%s': want ADDRESS:PORT ([IPv6]:PORT)", listen);
		return -1;
	}
	if (metrics_server_listen(d->metrics, address, port, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return -1;
	}
	return 0;
}

/* Before the devices close: it asks them for their status. */
static void stop_metrics(struct daemon_state *d)
{
	metrics_server_free(d->metrics);
	d->metrics = NULL;
}

/* Ends the API's connections and closes its socket (it runs the loop until they are
 * gone): first thing at shutdown, so no command races the teardown. */
static void stop_api(struct daemon_state *d)
{
	mgmt_api_free(d->api);
	d->api = NULL;
	mgmt_apply_free(d->apply);
	d->apply = NULL;
	if (d->build)
		mgmt_build_forget_api(d->build);
}

static void teardown(struct daemon_state *d)
{
	stop_api(d); /* what a failed start left */
	stop_metrics(d);
	iscsi_server_free(d->server);
	iscsi_registry_free(d->registry);
	mgmt_build_free(d->build);
	reactor_free(d->reactor);
}

int main(int argc, char **argv)
{
	struct export_spec spec = { 0 };
	struct daemon_state d = { 0 };
	int ret = 1;

	if (parse_args(argc, argv, &spec) < 0)
		return 2;
	/* Data buffers of up to 32 MiB come and go with every command.  Served from the heap
	 * and kept there, they are reused warm; glibc's defaults would map and unmap the large
	 * ones each time, and the page faults of a fresh mapping cost more than the copy. */
	mallopt(M_MMAP_THRESHOLD, 64 << 20);
	mallopt(M_TRIM_THRESHOLD, 128 << 20);
	if ((spec.config ? build_config(&d, spec.config, spec.log_level_set) : build_quick(&d, &spec)) == 0 &&
	    start_api(&d, &spec) == 0 && start_metrics(&d, spec.metrics_listen) == 0) {
		/* A daemon may start with portals only: twinctl makes its targets. */
		printf("twinsand: ready, serving");
		for (size_t i = 0; i < iscsi_registry_count(d.registry); i++)
			printf("%s %s", i ? "," : "", iscsi_target_name(iscsi_registry_at(d.registry, i)));
		printf(iscsi_registry_count(d.registry) ? " with %zu LUN(s)\n" : " no targets yet (%zu LUNs)\n",
		       mgmt_build_lun_count(d.build));
		fflush(stdout);
		sd_notify(0, "READY=1");
		ret = iscsi_server_run(d.server) < 0;
		sd_notify(0, "STOPPING=1");
		stop_api(&d);
		stop_metrics(&d);
		mgmt_build_stop_peers(d.build);
		mgmt_build_flush(d.build);
		mgmt_build_close_ha(d.build);
		log_info("stopped");
	}
	teardown(&d);
	return ret;
}
