/* twinsand: the iSCSI target daemon.
 *
 * Quick export mode serves files as LUNs of one target from the command line:
 *   twinsand --portal 127.0.0.1:3260 --target iqn.2026-11.org.twinsan:demo --lun FILE
 * and the normal mode what a configuration file describes (docs/config.md):
 *   twinsand --config /etc/twinsan/twinsand.conf
 * It runs in the foreground, logs to stderr and stops cleanly on SIGTERM or SIGINT. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "common/fileio.h"
#include "common/log.h"
#include "common/reactor.h"
#include "common/util.h"
#include "ha/device.h"
#include "ha/peer.h"
#include "ha/witness.h"
#include "iscsi/portal.h"
#include "iscsi/server.h"
#include "iscsi/target.h"
#include "mgmt/api.h"
#include "mgmt/api_ha.h"
#include "mgmt/apply.h"
#include "mgmt/config.h"
#include "mgmt/metrics_server.h"
#include "scsi/scsi.h"
#include "store/store.h"

#define MAX_PORTALS 16
#define MAX_LUNS 64
#define REACTOR_ENTRIES 1024
#define UUID_XATTR "user.twinsan.uuid"
#define SIDECAR_SUFFIX ".twinsan"
#define PR_STATE_SUFFIX ".twinsan-pr"
#define TWINSAND_VERSION "0.1.0"
#define NODE_ID_FILE "node-id"
#define SHUTDOWN_TICK_MS 10
#define FLUSH_WAIT_MS 10000
#define DRAIN_WAIT_MS 3000
/* The two nodes of an HA pair present different SCSI target ports: the primary's in
 * target port group 1 numbered from 1, the secondary's in group 2 numbered from 0x8001. */
#define SECONDARY_PORT_BASE 0x8000

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

/* An HA device the daemon serves: its store is one of the LUNs' stores. */
struct ha_entry {
	char name[CONFIG_NAME_MAX];
	struct ha_device *device;
	struct store *store;       /* the device as a store: a LUN's */
	struct ha_peer *peer;
	struct scsi_lu *lu;        /* serving the device */
	/* Its ALUA target port groups: this node's ports, the partner's, and their groups. */
	uint16_t group, partner_group;
	uint16_t ports[SCSI_GROUP_PORTS_MAX], partner_ports[SCSI_GROUP_PORTS_MAX];
	unsigned n_ports;
	struct witness_client *witness; /* with a configured witness */
	struct ha_arbiter arbiter;      /* the witness's vote, for failover = majority */
	bool witness_stopped;
	bool closing;              /* its status is no longer asked for */
	struct mgmt_api *const *api; /* the daemon's; NULL once closed */
};

struct flush_req {
	struct store_io io;
	struct daemon_state *d;
};

/* What runs, to be torn down in reverse. */
struct daemon_state {
	struct reactor *reactor;
	struct iscsi_registry *registry;
	struct iscsi_server *server;
	struct store *stores[MAX_LUNS];
	struct scsi_lu *lus[MAX_LUNS];
	size_t nluns;
	/* Where each LU is served: its target and LUN, for changes through the API. */
	struct scsi_target *lu_targets[MAX_LUNS];
	uint64_t lu_numbers[MAX_LUNS];
	struct ha_entry has[MAX_LUNS];
	size_t nhas;
	/* Shutdown: the loop turns until a condition holds (or a deadline passes); flushes
	 * that outlive their wait complete into flush_reqs, never into a dead stack frame. */
	struct flush_req flush_reqs[MAX_LUNS];
	unsigned flushing;
	bool (*shutdown_done)(const struct daemon_state *d);
	uint64_t shutdown_deadline_ms;
	struct mgmt_api *api;
	struct metrics_server *metrics; /* knows every LU and HA device; serves only if asked */
	char state_dir[CONFIG_PATH_MAX]; /* the API's secret, key and certificate */
	char metrics_listen[CONFIG_ADDRESS_MAX + 8]; /* from the configuration; "": none */
	/* Configuration mode: the managed configuration's changes, and the node id (0 until an
	 * HA device needs one). */
	struct mgmt_apply *apply;
	uint64_t node;
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

/* ---- stable device identity ---- */

static int parse_uuid_hex(const char *s, uint8_t uuid[16])
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		uuid[i] = (uint8_t)v;
	}
	return 0;
}

/* Makes a fresh extended attribute durable. */
static int fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = fd >= 0 && fsync(fd) == 0 ? 0 : -1;

	if (fd >= 0)
		close(fd);
	return rc;
}

/* Writes the sidecar crash-safely: a torn file would give the disk a new identity. */
static int write_sidecar(const char *sidecar, const uint8_t uuid[16])
{
	char tmp[4200], hex[40];
	int fd, rc;

	for (unsigned i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", uuid[i]);
	hex[32] = '\n';
	snprintf(tmp, sizeof(tmp), "%s.tmp", sidecar);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	rc = file_pwrite_all(fd, hex, 33, 0) == 0 && fsync(fd) == 0 ? 0 : -1;
	close(fd);
	if (rc == 0)
		rc = rename(tmp, sidecar);
	if (rc != 0)
		unlink(tmp);
	return rc;
}

/* The LU's uuid lives with its backing file: in a user xattr, or where the file system has
 * none (tmpfs without user xattrs, block devices), in a sidecar file next to it. */
static int device_uuid(const char *path, uint8_t uuid[16])
{
	char sidecar[4096], hex[40];
	struct stat st;
	FILE *f;

	if (getxattr(path, UUID_XATTR, uuid, 16) == 16)
		return 0;
	snprintf(sidecar, sizeof(sidecar), "%s%s", path, SIDECAR_SUFFIX);
	if (stat(path, &st) == 0 && S_ISBLK(st.st_mode))
		log_warn("%s: the device identity is kept in %s, which may not survive a reboot; "
		         "give the LUN a uuid in the configuration file", path, sidecar);
	f = fopen(sidecar, "r");
	if (f) {
		bool ok = fgets(hex, sizeof(hex), f) && strlen(hex) >= 32 && parse_uuid_hex(hex, uuid) == 0;

		fclose(f);
		if (ok)
			return 0;
		log_warn("%s: unreadable device identity, making a new one", sidecar);
	}
	if (getrandom(uuid, 16, 0) != 16)
		return -1;
	uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40); /* RFC 4122 version 4 */
	uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);
	if (setxattr(path, UUID_XATTR, uuid, 16, 0) == 0)
		return fsync_path(path);
	return write_sidecar(sidecar, uuid);
}

/* ---- building and tearing down ---- */

/* One LUN as either mode describes it. */
struct lun_spec {
	struct store *store;       /* already open (an HA device), else opened from path */
	const char *path;
	uint64_t lun;
	uint64_t create_size;
	bool direct;
	uint32_t block_size;
	const char *serial;        /* NULL: derived from the uuid */
	const uint8_t *uuid;       /* NULL: the one kept with the backing file */
	const char *state_path;    /* persistent reservations */
	const char *target;        /* its target's name, for the management API */
	const char *ha;            /* the HA device serving it, or NULL */
};

static int add_lun(struct daemon_state *d, struct scsi_target *scsi, const struct lun_spec *ls)
{
	char err[256];
	size_t i = d->nluns;
	struct store_params sp = {
		.path = ls->path, .create_size = ls->create_size, .direct = ls->direct,
	};
	struct scsi_lu_params lp = {
		.serial = ls->serial,
		.vendor = "TWINSAN",
		.product = "twinsan disk",
		.revision = "0001",
		.block_size = ls->block_size,
		.write_cache = true,
		.state_path = ls->state_path,
	};

	if (i == MAX_LUNS) {
		log_err("LUN %llu: at most %d LUNs", (unsigned long long)ls->lun, MAX_LUNS);
		store_close(ls->store);
		return -1;
	}
	if (ls->store)
		d->stores[i] = ls->store;
	else if (store_open(&sp, &d->stores[i], err, sizeof(err)) < 0) {
		log_err("LUN %llu: %s", (unsigned long long)ls->lun, err);
		return -1;
	}
	if (ls->uuid)
		memcpy(lp.uuid, ls->uuid, sizeof(lp.uuid));
	else if (device_uuid(ls->path, lp.uuid) < 0) {
		log_err("LUN %llu: cannot store a device identity for %s: %s",
		        (unsigned long long)ls->lun, ls->path, strerror(errno));
		goto fail;
	}
	if (scsi_lu_new(&lp, d->stores[i], &d->lus[i], err, sizeof(err)) < 0) {
		log_err("LUN %llu: %s", (unsigned long long)ls->lun, err);
		goto fail;
	}
	if (scsi_target_add_lu(scsi, ls->lun, d->lus[i]) < 0) {
		log_err("LUN %llu: cannot add it to the target", (unsigned long long)ls->lun);
		goto fail;
	}
	d->lu_targets[i] = scsi;
	d->lu_numbers[i] = ls->lun;
	d->nluns = i + 1;
	if (mgmt_api_add_lun(d->api, ls->target, ls->lun, ls->path, d->stores[i], ls->ha) < 0 ||
	    metrics_server_add_lun(d->metrics, ls->target, ls->lun, ls->ha, d->lus[i]) < 0) {
		log_err("out of memory");
		return -1;
	}
	return 0;
fail:
	/* A LUN added while serving must leave its slot free; an HA device's store is closed
	 * with its device at teardown. */
	scsi_lu_free(d->lus[i]);
	d->lus[i] = NULL;
	if (!ls->store) {
		store_close(d->stores[i]);
		d->stores[i] = NULL;
	}
	return -1;
}

static int open_core(struct daemon_state *d, unsigned queue_depth, uint64_t node)
{
	struct mgmt_api_params ap = { .version = TWINSAND_VERSION, .node_id = node };

	if (reactor_new(queue_depth, &d->reactor) < 0 || iscsi_registry_new(&d->registry) < 0 ||
	    mgmt_api_new(d->reactor, &ap, &d->api) < 0 ||
	    metrics_server_new(d->reactor, TWINSAND_VERSION, &d->metrics) < 0) {
		log_err("out of memory or io_uring unavailable");
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
		struct lun_spec ls = {
			.path = spec->luns[i], .lun = i, .create_size = spec->size,
			.direct = spec->direct, .block_size = 512, .state_path = state_path,
			.target = spec->target,
		};

		snprintf(state_path, sizeof(state_path), "%s%s", spec->luns[i], PR_STATE_SUFFIX);
		if (add_lun(d, iscsi_target_scsi(target), &ls) < 0)
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

/* ---- HA devices (configuration file mode) ---- */

/* This node's id towards HA partners: configured, or made once and kept in the state dir
 * (crash-safely: a torn file would make the node a stranger to its partner). */
static int load_node_id(const struct config *cfg, uint64_t *out)
{
	char path[CONFIG_PATH_MAX + 16], tmp[CONFIG_PATH_MAX + 32], text[32];
	unsigned long long v;
	ssize_t n;
	int fd, rc;

	if (cfg->node_id) {
		*out = cfg->node_id;
		return 0;
	}
	snprintf(path, sizeof(path), "%s/" NODE_ID_FILE, cfg->state_dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, text, sizeof(text) - 1);
		close(fd);
		text[n > 0 ? n : 0] = '\0';
		if (sscanf(text, "%llu", &v) == 1 && v != 0) {
			*out = v;
			return 0;
		}
		log_err("%s: not a node id; delete it to make a new one, or set node-id in [daemon]", path);
		return -1;
	}
	do {
		if (getrandom(out, sizeof(*out), 0) != sizeof(*out)) {
			log_err("cannot make a node id: %s", strerror(errno));
			return -1;
		}
	} while (*out == 0);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	n = snprintf(text, sizeof(text), "%llu\n", (unsigned long long)*out);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	rc = fd >= 0 && file_pwrite_all(fd, text, (size_t)n, 0) == 0 && fsync(fd) == 0 ? 0 : -1;
	if (fd >= 0)
		close(fd);
	if (rc == 0)
		rc = rename(tmp, path);
	if (rc != 0) {
		log_err("%s: cannot keep the node id: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	log_info("this node's id is %llu (kept in %s)", (unsigned long long)*out, path);
	return 0;
}

/* Logs an event of an HA device; a state change with the state the tests and operators
 * look for ("HA1: state synchronized", "...; not serving (unavailable)" while this node
 * may not serve), a finished resync with the tally. */
static void ha_event_log(const struct ha_entry *e, struct ha_device *dev, enum ha_event ev, const char *detail)
{
	struct ha_device_status st;

	if (!e->closing && (ev == HA_EVENT_STATE || ev == HA_EVENT_SYNC_FINISHED)) {
		ha_device_status(dev, &st);
		if (ev == HA_EVENT_STATE)
			log_info("%s: state %s%s%s%s", e->name, ha_sync_state_name(st.state),
			         st.reason != HA_REASON_NONE ? ": " : "",
			         st.reason != HA_REASON_NONE ? ha_sync_reason_name(st.reason) : "",
			         st.access == STORE_ACCESS_OK ? ""
			         : st.access == STORE_ACCESS_TRANSITIONING ? "; not serving (transitioning)"
			                                                   : "; not serving (unavailable)");
		else
			log_info("%s: %s: %s; resync tally sent %llu received %llu bytes", e->name,
			         ha_event_name(ev), detail ? detail : "", (unsigned long long)st.resync_sent_bytes,
			         (unsigned long long)st.resync_received_bytes);
		return;
	}
	log_info("%s: %s%s%s", e->name, ha_event_name(ev), detail && *detail ? ": " : "", detail ? detail : "");
}

/* Every event of an HA device: logged, and the ALUA states re-read (initiators are told
 * when one changed). */
static void ha_event(void *arg, struct ha_device *dev, enum ha_event ev, const char *detail)
{
	const struct ha_entry *e = arg;

	ha_event_log(e, dev, ev, detail);
	if (*e->api && !e->closing)
		mgmt_api_publish_ha_event(*e->api, dev, ev, detail);
	if (e->lu != NULL && !e->closing)
		scsi_lu_port_groups_changed(e->lu);
}

static enum scsi_alua_state alua_state_of(enum store_access a)
{
	return a == STORE_ACCESS_OK             ? SCSI_ALUA_ACTIVE_OPTIMIZED
	       : a == STORE_ACCESS_TRANSITIONING ? SCSI_ALUA_TRANSITIONING
	                                         : SCSI_ALUA_UNAVAILABLE;
}

/* The two port groups of an HA LUN (both active/optimized while in sync: active-active):
 * this node's as its replica allows, the partner's as far as this node knows it. */
static void ha_port_groups(void *ctx, struct scsi_port_groups *out)
{
	const struct ha_entry *e = ctx;
	struct scsi_port_group *mine = &out->groups[0], *theirs = &out->groups[1];
	struct ha_device_status st;

	ha_device_status(e->device, &st);
	out->n_groups = 2;
	out->local = e->group;
	mine->id = e->group;
	mine->state = alua_state_of(st.access);
	theirs->id = e->partner_group;
	if (!st.partner_connected || st.state == HA_SYNC_NOT_SYNCHRONIZED)
		theirs->state = SCSI_ALUA_UNAVAILABLE;
	else if (st.state == HA_SYNC_SYNCHRONIZING && st.sync_source)
		theirs->state = SCSI_ALUA_TRANSITIONING;
	else
		theirs->state = SCSI_ALUA_ACTIVE_OPTIMIZED;
	mine->n_ports = theirs->n_ports = e->n_ports;
	memcpy(mine->ports, e->ports, sizeof(e->ports));
	memcpy(theirs->ports, e->partner_ports, sizeof(e->partner_ports));
}

/* The connection manager's view of the configured links. */
static int start_peer(struct daemon_state *d, const struct config_ha *ha, struct ha_entry *e, char *err,
                      size_t errlen)
{
	struct ha_peer_link links[2 * HA_MAX_LINKS];
	struct ha_peer_params pp = {
		.name = ha->name, .device = e->device, .role = ha->role, .links = links,
	};

	for (unsigned i = 0; i < ha->n_sync + ha->n_heartbeat; i++) {
		bool sync = i < ha->n_sync;
		const struct config_ha_link *l = sync ? &ha->sync[i] : &ha->heartbeat[i - ha->n_sync];

		links[pp.n_links++] = (struct ha_peer_link){
			.kind = sync ? PROTO_LINK_SYNC : PROTO_LINK_HEARTBEAT,
			.index = sync ? i : i - ha->n_sync,
			.local_address = l->local.address, .local_port = l->local.port,
			.partner_address = l->partner.address, .partner_port = l->partner.port,
		};
	}
	return ha_peer_start(d->reactor, &pp, &e->peer, err, errlen);
}

/* The client of the device's witness: its vote decides failover = majority. */
static int start_witness(struct daemon_state *d, const struct config_ha *ha, struct ha_entry *e, uint64_t node,
                         char *err, size_t errlen)
{
	char addresses[CONFIG_WITNESS_MAX][CONFIG_ADDRESS_MAX + 16];
	struct witness_client_params wp = {
		.secret = ha->witness_secret, .secret_len = ha->witness_secret_len, .node_id = node,
	};

	for (unsigned i = 0; i < ha->n_witness && i < WITNESS_MAX_ADDRESSES; i++) {
		const struct config_endpoint *w = &ha->witness[i];

		snprintf(addresses[i], sizeof(addresses[i]), strchr(w->address, ':') ? "[%s]:%u" : "%s:%u",
		         w->address, w->port);
		wp.addresses[wp.n_addresses++] = addresses[i];
	}
	if (witness_client_new(d->reactor, &wp, &e->witness, err, errlen) < 0)
		return -1;
	e->arbiter = witness_arbiter(e->witness);
	return 0;
}

/* Opens the replica, the HA device on it and its links; the device's store, or NULL
 * (logged).  Serving waits for the partner or the failover strategy, not for sync. */
static struct store *open_ha(struct daemon_state *d, const struct config_ha *ha, uint64_t node,
                             const char *path)
{
	struct store_params sp = { .path = ha->path, .create_size = ha->size, .direct = ha->direct };
	struct ha_entry *e = &d->has[d->nhas];
	struct ha_device_params hp = {
		.name = ha->name, .meta_path = ha->meta_path, .role = ha->role, .node_id = node,
		.initial_sync = ha->initial_sync, .failover = ha->failover, .extent_size = ha->extent_size,
		.secret = ha->secret, .secret_len = ha->secret_len, .n_sync_links = ha->n_sync,
		.n_heartbeat_links = ha->n_heartbeat, .ping_interval_ms = ha->ping_interval_ms,
		.timeout_ms = ha->timeout_ms, .event = ha_event, .arg = e,
	};
	bool had_replica = access(ha->path, F_OK) == 0, had_meta = access(ha->meta_path, F_OK) == 0;
	char err[512];

	if (d->nhas == MAX_LUNS) {
		log_err("%s:%u: [ha %s] at most %d HA devices", path, ha->line, ha->name, MAX_LUNS);
		return NULL;
	}
	memcpy(hp.uuid, ha->uuid, sizeof(hp.uuid));
	str_copy(e->name, sizeof(e->name), ha->name);
	e->api = &d->api;
	d->nhas++;
	if (ha->n_witness > 0 && start_witness(d, ha, e, node, err, sizeof(err)) < 0) {
		log_err("%s:%u: [ha %s] witness: %s", path, ha->line, ha->name, err);
		goto fail;
	}
	hp.arbiter = e->witness ? &e->arbiter : NULL;
	if (store_open(&sp, &hp.backing, err, sizeof(err)) < 0) {
		log_err("%s:%u: [ha %s] %s", path, ha->line, ha->name, err);
		goto fail;
	}
	/* Both replicas must have the configured size; an old file must not quietly win. */
	if (ha->size && store_size(hp.backing) != ha->size) {
		log_err("%s:%u: [ha %s] %s holds %llu bytes, not the configured size %llu; resize it or "
		        "correct size", path, ha->line, ha->name, ha->path,
		        (unsigned long long)store_size(hp.backing), (unsigned long long)ha->size);
		store_close(hp.backing);
		goto fail;
	}
	if (ha_device_open(d->reactor, &hp, &e->device, err, sizeof(err)) < 0) {
		log_err("%s:%u: [ha %s] %s", path, ha->line, ha->name, err);
		goto fail;
	}
	/* The links before the API learns of the device: a device closed again must not
	 * stay listed. */
	if (start_peer(d, ha, e, err, sizeof(err)) < 0) {
		log_err("%s:%u: %s", path, ha->line, err);
		store_close(ha_device_store(e->device));
		e->device = NULL;
		goto fail;
	}
	e->store = ha_device_store(e->device);
	if (mgmt_api_add_ha_device(d->api, e->device, e->witness ? &e->arbiter : NULL) < 0 ||
	    metrics_server_add_ha_device(d->metrics, e->device) < 0) {
		log_err("out of memory");
		return NULL;
	}
	return e->store;
fail:
	/* What this attempt made goes again: a device made through the API that failed must
	 * leave nothing behind, and a retry gives it a new identity the old metadata would
	 * contradict.  An entry with a witness client is left to the teardown, which stops it. */
	if (!had_replica)
		unlink(ha->path);
	if (!had_meta)
		unlink(ha->meta_path);
	if (!e->witness) {
		memset(e, 0, sizeof(*e));
		d->nhas--;
	}
	return NULL;
}

static void stop_peers(struct daemon_state *d)
{
	for (size_t i = 0; i < d->nhas; i++)
		ha_peer_stop(d->has[i].peer);
}

/* ---- configuration file mode ---- */

static bool portal_listed(const struct config_target *t, size_t portal)
{
	for (size_t j = 0; j < t->n_portals; j++)
		if (t->portals[j] == portal)
			return true;
	return false;
}

/* iSCSI serves a target on portal groups, not single portals: the portals a target lists
 * must be whole groups, or it would be reachable on a portal it does not list. */
static int bind_portal_groups(struct iscsi_target *target, const struct config *cfg,
                              const struct config_target *t, const char *path)
{
	for (size_t j = 0; j < t->n_portals; j++) {
		const struct config_portal *p = &cfg->portals[t->portals[j]];

		if (iscsi_target_add_portal_group(target, p->tpgt) < 0) {
			log_err("out of memory");
			return -1;
		}
	}
	for (size_t k = 0; t->n_portals && k < cfg->n_portals; k++) {
		const struct config_portal *p = &cfg->portals[k];

		if (!portal_listed(t, k) && iscsi_target_serves_portal_group(target, p->tpgt)) {
			log_err("%s:%u: [target %s] portals: portal %s is in portal group %u with a listed "
			        "portal; list it too, or give it its own tpgt", path, t->line, t->name,
			        p->name, p->tpgt);
			return -1;
		}
	}
	return 0;
}

/* A target serving HA devices takes its ports' identity from the role of its first one,
 * so the two nodes present different ports of the same devices. */
static bool target_ha_role(const struct config *cfg, size_t target, enum ha_role *role)
{
	for (size_t i = 0; i < cfg->n_luns; i++) {
		if (cfg->luns[i].target == target && cfg->luns[i].uses_ha) {
			*role = cfg->has[cfg->luns[i].ha].role;
			return true;
		}
	}
	return false;
}

static void set_port_identity(struct iscsi_target *target, enum ha_role role)
{
	if (role == HA_ROLE_SECONDARY)
		iscsi_target_set_port_identity(target, SECONDARY_PORT_BASE, 2);
	else
		iscsi_target_set_port_identity(target, 0, 1);
}

/* The ports of one node's target for the HA LUN's port groups: one per portal group the
 * target is served on, numbered as iscsi_target_set_port_identity() says. */
static void ha_lun_ports(struct ha_entry *e, const struct config *cfg, const struct config_target *t,
                         enum ha_role role)
{
	uint16_t base = role == HA_ROLE_SECONDARY ? SECONDARY_PORT_BASE : 0;
	uint16_t partner_base = role == HA_ROLE_SECONDARY ? 0 : SECONDARY_PORT_BASE;

	e->group = role == HA_ROLE_SECONDARY ? 2 : 1;
	e->partner_group = role == HA_ROLE_SECONDARY ? 1 : 2;
	e->n_ports = 0;
	for (size_t k = 0; k < cfg->n_portals && e->n_ports < SCSI_GROUP_PORTS_MAX; k++) {
		uint16_t tpgt = cfg->portals[k].tpgt;
		bool seen = false;

		if (t->n_portals && !portal_listed(t, k))
			continue;
		for (unsigned j = 0; j < e->n_ports; j++)
			seen |= e->ports[j] == (uint16_t)(base + tpgt);
		if (seen)
			continue;
		e->ports[e->n_ports] = (uint16_t)(base + tpgt);
		e->partner_ports[e->n_ports++] = (uint16_t)(partner_base + tpgt);
	}
}

/* A LUN serving an HA device: its identity is the HA uuid (one disk to multipath on both
 * nodes) and its ALUA port groups are the two nodes'. */
static int add_ha_lun(struct daemon_state *d, const struct config *cfg, const struct config_lun *l,
                      struct lun_spec *ls, uint64_t node, const char *path)
{
	struct iscsi_target *target = iscsi_registry_find(d->registry, cfg->targets[l->target].iqn);
	struct ha_entry *e;
	enum ha_role role = HA_ROLE_PRIMARY;

	ls->uuid = cfg->has[l->ha].uuid;
	ls->path = cfg->has[l->ha].name;
	ls->ha = cfg->has[l->ha].name;
	ls->store = open_ha(d, &cfg->has[l->ha], node, path);
	if (ls->store == NULL || add_lun(d, iscsi_target_scsi(target), ls) < 0)
		return -1;
	e = &d->has[d->nhas - 1];
	target_ha_role(cfg, l->target, &role);
	ha_lun_ports(e, cfg, &cfg->targets[l->target], role);
	e->lu = d->lus[d->nluns - 1];
	scsi_lu_set_port_groups(e->lu, ha_port_groups, e);
	return 0;
}

/* Builds target i of cfg; path names the file it came from in messages. */
static int build_target(struct daemon_state *d, const struct config *cfg, size_t i, const char *path)
{
	const struct config_target *t = &cfg->targets[i];
	struct iscsi_target *target;
	enum ha_role role;

	target = iscsi_target_add(d->registry, t->iqn, t->alias);
	if (!target) {
		log_err("%s:%u: cannot add target %s", path, t->line, t->iqn);
		return -1;
	}
	if (bind_portal_groups(target, cfg, t, path) < 0)
		return -1;
	for (size_t j = 0; j < t->n_initiators; j++) {
		if (iscsi_target_allow_initiator(target, t->initiators[j]) < 0) {
			log_err("out of memory");
			return -1;
		}
	}
	if (t->auth.chap_required)
		iscsi_target_set_auth(target, &t->auth);
	if (target_ha_role(cfg, i, &role))
		set_port_identity(target, role);
	return 0;
}

/* Builds LUN i of cfg into its target, already built. */
static int build_lun(struct daemon_state *d, const struct config *cfg, size_t i, const char *path)
{
	char state_path[CONFIG_PATH_MAX + ISCSI_NAME_MAX + 32];
	const struct config_lun *l = &cfg->luns[i];
	const char *iqn = cfg->targets[l->target].iqn;
	struct lun_spec ls = {
		.path = l->path, .lun = l->lun, .create_size = l->size, .direct = l->direct,
		.block_size = l->block_size, .serial = l->serial[0] ? l->serial : NULL,
		.uuid = l->has_uuid ? l->uuid : NULL, .state_path = state_path, .target = iqn,
	};

	snprintf(state_path, sizeof(state_path), "%s/%s:%llu.pr", cfg->state_dir, iqn,
	         (unsigned long long)l->lun);
	return l->uses_ha ? add_ha_lun(d, cfg, l, &ls, d->node, path)
	                  : add_lun(d, iscsi_target_scsi(iscsi_registry_find(d->registry, iqn)), &ls);
}

static int config_targets(struct daemon_state *d, const struct config *cfg, const char *path)
{
	for (size_t i = 0; i < cfg->n_targets; i++)
		if (build_target(d, cfg, i, cfg->targets[i].managed ? cfg->managed_config : path) < 0)
			return -1;
	for (size_t i = 0; i < cfg->n_luns; i++)
		if (build_lun(d, cfg, i, cfg->luns[i].managed ? cfg->managed_config : path) < 0)
			return -1;
	return 0;
}

/* ---- changes through the management API ---- */

/* A target made while serving: built as at startup, then served. */
static int live_add_target(void *arg, const struct config *cfg, size_t i, char *err, size_t errlen)
{
	struct daemon_state *d = arg;

	if (build_target(d, cfg, i, cfg->managed_config) < 0) {
		snprintf(err, errlen, "cannot build target %s (the daemon's log says why)", cfg->targets[i].iqn);
		return -1;
	}
	iscsi_server_serve(d->server, iscsi_target_scsi(iscsi_registry_find(d->registry, cfg->targets[i].iqn)));
	return 0;
}

static int live_add_lun(void *arg, const struct config *cfg, size_t i, char *err, size_t errlen)
{
	struct daemon_state *d = arg;
	const struct config_lun *l = &cfg->luns[i];

	if ((l->uses_ha && d->node == 0 && load_node_id(cfg, &d->node) < 0) ||
	    build_lun(d, cfg, i, cfg->managed_config) < 0) {
		snprintf(err, errlen, "cannot serve LUN %llu of %s (the daemon's log says why)",
		         (unsigned long long)l->lun, cfg->targets[l->target].iqn);
		return -1;
	}
	return 0;
}

/* A plain LUN grown: its file, then the LU's capacity, which tells every initiator
 * (CAPACITY DATA HAS CHANGED). */
static int live_grow_lun(void *arg, const struct config *cfg, size_t i, char *err, size_t errlen)
{
	struct daemon_state *d = arg;
	const struct config_lun *l = &cfg->luns[i];
	struct scsi_target *scsi = iscsi_target_scsi(iscsi_registry_find(d->registry, cfg->targets[l->target].iqn));
	int rc;

	for (size_t k = 0; k < d->nluns; k++) {
		if (d->lu_targets[k] != scsi || d->lu_numbers[k] != l->lun || !d->stores[k])
			continue;
		rc = store_grow(d->stores[k], l->size);
		if (rc < 0) {
			snprintf(err, errlen, "%s: %s", l->path,
			         rc == -EINVAL ? "it is bigger now; shrinking would cut off data, so it is refused"
			         : rc == -ENOTSUP ? "a block device keeps its own size; grow the device itself"
			                          : strerror(-rc));
			return -1;
		}
		scsi_lu_capacity_changed(d->lus[k]);
		return 0;
	}
	snprintf(err, errlen, "LUN %llu of %s is not served (deleted, waiting for a restart)",
	         (unsigned long long)l->lun, cfg->targets[l->target].iqn);
	return -1;
}

static const struct mgmt_apply_ops live_ops = {
	.add_target = live_add_target, .add_lun = live_add_lun, .grow_lun = live_grow_lun,
};

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
	else if ((cfg->n_has == 0 || load_node_id(cfg, &d->node) == 0) && open_core(d, cfg->queue_depth, d->node) == 0 &&
	         config_targets(d, cfg, path) == 0 && start_server(d) == 0 && config_portals(d, cfg) == 0)
		ret = 0;
	/* The running configuration is the base of every change through the API. */
	if (ret == 0 && mgmt_apply_new(path, cfg, &live_ops, d, &d->apply) == 0) {
		mgmt_api_set_apply(d->api, d->apply);
		return 0;
	}
	if (ret == 0)
		log_err("out of memory");
	config_free(cfg);
	return -1;
}

static void flushed(struct store_io *io, int err)
{
	struct daemon_state *d = container_of(io, struct flush_req, io)->d;

	if (err)
		log_err("flushing a store at shutdown: %s", strerror(-err));
	if (--d->flushing == 0)
		reactor_stop(d->reactor);
}

static bool nothing_flushing(const struct daemon_state *d) { return d->flushing == 0; }

static bool ha_closed(const struct daemon_state *d)
{
	for (size_t i = 0; i < d->nhas; i++)
		if (d->has[i].witness && !d->has[i].witness_stopped)
			return false;
	return reactor_idle(d->reactor);
}

static void witness_stopped(void *arg) { ((struct ha_entry *)arg)->witness_stopped = true; }

static void shutdown_tick(void *arg)
{
	struct daemon_state *d = arg;

	if (d->shutdown_done(d) || now_ms() > d->shutdown_deadline_ms)
		reactor_stop(d->reactor);
}

/* Turns the loop until done(d) or ms have passed; false on the deadline.  Other tickers
 * (the stopped server's) may stop the loop early, so it is run again. */
static bool run_until(struct daemon_state *d, bool (*done)(const struct daemon_state *d), unsigned ms)
{
	d->shutdown_done = done;
	d->shutdown_deadline_ms = now_ms() + ms;
	if (reactor_add_ticker(d->reactor, SHUTDOWN_TICK_MS, shutdown_tick, d) < 0)
		return done(d);
	while (!done(d) && now_ms() <= d->shutdown_deadline_ms)
		reactor_run(d->reactor);
	reactor_remove_ticker(d->reactor, shutdown_tick, d);
	return done(d);
}

/* Makes every completed write durable before exit. */
static void flush_stores(struct daemon_state *d)
{
	for (size_t i = 0; i < d->nluns; i++) {
		/* An HA replica this node may not serve took no writes through it. */
		if (store_access(d->stores[i]) == STORE_ACCESS_UNAVAILABLE)
			continue;
		d->flush_reqs[i] = (struct flush_req){ .io.done = flushed, .d = d };
		d->flushing++;
		store_flush(d->stores[i], d->reactor, &d->flush_reqs[i].io);
	}
	if (!run_until(d, nothing_flushing, FLUSH_WAIT_MS))
		log_warn("stores still flushing after %u s; closing them", FLUSH_WAIT_MS / 1000);
}

/* HA devices close while the loop still turns: they say goodbye on their links, which
 * free themselves once their I/O has completed; then their witness clients stop. */
static void close_ha_devices(struct daemon_state *d)
{
	if (d->nhas == 0)
		return;
	for (size_t i = 0; i < MAX_LUNS; i++) {
		for (size_t j = 0; j < d->nhas; j++) {
			if (d->stores[i] != NULL && d->stores[i] == d->has[j].store) {
				d->has[j].closing = true;
				scsi_lu_free(d->lus[i]);
				store_close(d->stores[i]);
				d->lus[i] = NULL;
				d->stores[i] = NULL;
			}
		}
	}
	for (size_t j = 0; j < d->nhas; j++)
		if (d->has[j].witness)
			witness_client_stop(d->has[j].witness, witness_stopped, &d->has[j]);
	if (!run_until(d, ha_closed, DRAIN_WAIT_MS))
		log_warn("HA links still closing after %u s", DRAIN_WAIT_MS / 1000);
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
}

static void teardown(struct daemon_state *d)
{
	stop_api(d); /* what a failed start left */
	stop_metrics(d);
	iscsi_server_free(d->server);
	iscsi_registry_free(d->registry);
	/* The links' managers before the devices they feed; store_close() closes a device. */
	for (size_t i = 0; i < d->nhas; i++)
		ha_peer_free(d->has[i].peer);
	/* Also what a failed start left half built. */
	for (size_t i = 0; i < MAX_LUNS; i++) {
		scsi_lu_free(d->lus[i]);
		store_close(d->stores[i]);
	}
	/* A closing device releases its claim through its witness client. */
	for (size_t i = 0; i < d->nhas; i++)
		witness_client_free(d->has[i].witness);
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
		printf("twinsand: ready, serving");
		for (size_t i = 0; i < iscsi_registry_count(d.registry); i++)
			printf("%s %s", i ? "," : "", iscsi_target_name(iscsi_registry_at(d.registry, i)));
		printf(" with %zu LUN(s)\n", d.nluns);
		fflush(stdout);
		sd_notify(0, "READY=1");
		ret = iscsi_server_run(d.server) < 0;
		sd_notify(0, "STOPPING=1");
		stop_api(&d);
		stop_metrics(&d);
		stop_peers(&d);
		flush_stores(&d);
		close_ha_devices(&d);
		log_info("stopped");
	}
	teardown(&d);
	return ret;
}
