/* twinwitness: the witness of the node-majority failover strategy, a small daemon on a
 * third host (see ha/witness_server.h for its rules, docs/witness.md for its use).
 *
 *   twinwitness --listen ADDR:PORT --secret-file FILE [--state-dir DIR] [--lease-ms MS]
 *               [--log-level L]
 *   twinwitness --list [--state-dir DIR]
 *   twinwitness --forget UUID [--state-dir DIR]     (while the witness is stopped)
 *
 * It runs in the foreground, logs to stderr and stops cleanly on SIGTERM or SIGINT. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "common/log.h"
#include "common/reactor.h"
#include "common/stop_signal.h"
#include "common/util.h"
#include "ha/witness_proto.h"
#include "ha/witness_server.h"
#include "ha/witness_state.h"

#define DEFAULT_STATE_DIR "/var/lib/twinwitness"

struct options {
	const char *listen, *secret_file, *state_dir, *forget;
	unsigned lease_ms;
	bool list;
};

/* The running daemon. */
struct witness_daemon {
	struct reactor *r;
	struct witness_server *srv;
	struct stop_signal *signals;
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: twinwitness --listen ADDR:PORT --secret-file FILE [--state-dir DIR] [--lease-ms MS]\n"
	        "                   [--log-level error|warning|info|debug]\n"
	        "       twinwitness --list [--state-dir DIR]\n"
	        "       twinwitness --forget UUID [--state-dir DIR]\n"
	        "  --listen       address nodes connect to, IPv6 as [::1]:PORT\n"
	        "  --secret-file  file holding the secret shared with the nodes (required; no default)\n"
	        "  --state-dir    where holder records are kept (default " DEFAULT_STATE_DIR ")\n"
	        "  --lease-ms     lease granted to a holder (default %u)\n"
	        "  --list         print the holder records and exit\n"
	        "  --forget       remove the holder record of device UUID (operator override for a holder\n"
	        "                 lost forever); only while the witness is stopped\n",
	        WITNESS_DEFAULT_LEASE_MS);
}

static int parse_args(int argc, char **argv, struct options *o)
{
	enum { OPT_LISTEN = 1000, OPT_SECRET, OPT_STATE, OPT_LEASE, OPT_LOG, OPT_LIST, OPT_FORGET };
	static const struct option options[] = {
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"secret-file", required_argument, NULL, OPT_SECRET},
		{"state-dir", required_argument, NULL, OPT_STATE},
		{"lease-ms", required_argument, NULL, OPT_LEASE},
		{"log-level", required_argument, NULL, OPT_LOG},
		{"list", no_argument, NULL, OPT_LIST},
		{"forget", required_argument, NULL, OPT_FORGET},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	enum log_level level;
	char *end;
	unsigned long v;
	int c;

	o->state_dir = DEFAULT_STATE_DIR;
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case OPT_LISTEN: o->listen = optarg; break;
		case OPT_SECRET: o->secret_file = optarg; break;
		case OPT_STATE: o->state_dir = optarg; break;
		case OPT_LIST: o->list = true; break;
		case OPT_FORGET: o->forget = optarg; break;
		case OPT_LEASE:
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || v == 0 || v > WITNESS_LEASE_MAX_MS) {
				fprintf(stderr, "twinwitness: bad --lease-ms '%s' (1..%u)\n", optarg, WITNESS_LEASE_MAX_MS);
				return -1;
			}
			o->lease_ms = (unsigned)v;
			break;
		case OPT_LOG:
			if (log_parse_level(optarg, &level) < 0) {
				fprintf(stderr, "twinwitness: bad --log-level '%s'\n", optarg);
				return -1;
			}
			log_set_level(level);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc || (o->list && o->forget) || ((o->list || o->forget) && (o->listen || o->secret_file))) {
		usage(stderr);
		return -1;
	}
	if (!o->list && !o->forget && (!o->listen || !o->secret_file)) {
		fprintf(stderr, "twinwitness: --listen and --secret-file are required (there is no default secret)\n");
		return -1;
	}
	return 0;
}

/* Reads the secret: the whole file but for one trailing newline, 1..WITNESS_SECRET_MAX bytes. */
static int read_secret(const char *path, uint8_t *buf, size_t *len)
{
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		log_err("secret file %s: %s", path, strerror(errno));
		return -1;
	}
	n = read(fd, buf, WITNESS_SECRET_MAX + 2);
	if (fstat(fd, &st) == 0 && (st.st_mode & 077))
		log_warn("secret file %s is readable by others than its owner; chmod 600 it", path);
	close(fd);
	if (n < 0) {
		log_err("secret file %s: %s", path, strerror(errno));
		return -1;
	}
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n == 0 || n > WITNESS_SECRET_MAX) {
		log_err("secret file %s: the secret must be 1..%d bytes (it is %s)", path, WITNESS_SECRET_MAX,
		        n == 0 ? "empty" : "longer");
		return -1;
	}
	*len = (size_t)n;
	return 0;
}

static int list_records(const char *dir)
{
	struct witness_state *st;
	char err[512], id[WITNESS_UUID_STR];

	if (witness_state_open(dir, true, &st, err, sizeof(err)) != 0) {
		log_err("%s", err);
		return 1;
	}
	for (size_t i = 0; i < witness_state_count(st); i++) {
		const struct witness_record *rec = witness_state_at(st, i);

		witness_uuid_format(rec->uuid, id);
		printf("%s holder %016" PRIx64 " generation %016" PRIx64 " %016" PRIx64 "\n", id, rec->holder,
		       rec->gen_current, rec->gen_bitmap);
	}
	witness_state_close(st);
	return 0;
}

static int forget_record(const char *dir, const char *uuid_text)
{
	struct witness_state *st;
	const struct witness_record *rec;
	char err[512], holder[40] = "its holder";
	uint8_t uuid[16];

	if (witness_uuid_parse(uuid_text, uuid) != 0) {
		log_err("--forget '%s': not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", uuid_text);
		return 1;
	}
	/* Which node is forgotten, for the log; a damaged record is removed all the same. */
	if (witness_state_open(dir, true, &st, err, sizeof(err)) == 0) {
		rec = witness_state_find(st, uuid);
		if (rec != NULL)
			snprintf(holder, sizeof(holder), "holder node %016" PRIx64, rec->holder);
		witness_state_close(st);
	}
	if (witness_state_remove(dir, uuid, err, sizeof(err)) != 0) {
		log_err("%s%s", err, strstr(err, "in use") ? "; stop the witness first" : "");
		return 1;
	}
	log_warn("device %s: forgot %s; the next node to claim the device gets it", uuid_text, holder);
	return 0;
}

/* ---- the daemon ---- */

static void stopped(void *arg)
{
	reactor_stop(((struct witness_daemon *)arg)->r);
}

static void on_stop_signal(void *arg, const char *why)
{
	struct witness_daemon *d = arg;

	log_info("shutting down: %s", why);
	witness_server_stop(d->srv, stopped, d);
}

static int serve(const struct options *o)
{
	struct witness_daemon d = {0};
	struct witness_state *st = NULL;
	uint8_t secret[WITNESS_SECRET_MAX + 2];
	struct witness_server_params p = {.listen = o->listen, .secret = secret, .lease_ms = o->lease_ms};
	char err[512];
	int ret = 1, sig_err;

	if (read_secret(o->secret_file, secret, &p.secret_len) != 0)
		return 1;
	if (witness_state_open(o->state_dir, false, &st, err, sizeof(err)) != 0) {
		log_err("%s", err);
	} else if (reactor_new(256, &d.r) != 0) {
		log_err("io_uring unavailable or out of memory");
	} else if ((sig_err = stop_signal_new(d.r, "nothing to reload", on_stop_signal, &d, &d.signals)) != 0) {
		log_err("signalfd: %s", strerror(-sig_err));
	} else if ((p.state = st, witness_server_new(d.r, &p, &d.srv, err, sizeof(err))) != 0) {
		log_err("%s", err);
	} else {
		stop_signal_watch(d.signals);
		printf("twinwitness: ready, listening on %s, %zu device(s) held\n", o->listen, witness_state_count(st));
		fflush(stdout);
		sd_notify(0, "READY=1");
		ret = reactor_run(d.r) != 0;
		sd_notify(0, "STOPPING=1");
		log_info("stopped");
	}
	memset(secret, 0, sizeof(secret));
	witness_server_free(d.srv);
	stop_signal_free(d.signals);
	if (d.r != NULL)
		reactor_free(d.r);
	witness_state_close(st);
	return ret;
}

int main(int argc, char **argv)
{
	struct options o = {0};

	if (parse_args(argc, argv, &o) != 0)
		return 2;
	if (o.list)
		return list_records(o.state_dir);
	if (o.forget)
		return forget_record(o.state_dir, o.forget);
	return serve(&o);
}
