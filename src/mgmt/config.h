/* The daemon's configuration file (INI, see docs/config.md): what twinsand serves, as
 * plain data.  Parsing is strict (unknown sections and keys are errors) and every error
 * names file:line and what to do; building server objects from a config is the daemon's
 * job. */
#ifndef TWINSAN_MGMT_CONFIG_H
#define TWINSAN_MGMT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"
#include "ha/device.h"
#include "ha/handshake.h"
#include "iscsi/target.h"

#define CONFIG_NAME_MAX 128     /* section names: portal and target names */
#define CONFIG_ADDRESS_MAX 64   /* numeric IPv4 or IPv6 address */
#define CONFIG_PATH_MAX 4096
#define CONFIG_SERIAL_MAX 64
#define CONFIG_WITNESS_MAX 4    /* addresses of one witness */

/* Prefix of target names generated from an alias: "<prefix><alias>". */
#define CONFIG_IQN_PREFIX "iqn.2026-11.org.twinsan:"

struct config_portal {
	char name[CONFIG_NAME_MAX];
	char address[CONFIG_ADDRESS_MAX];
	uint16_t port;
	uint16_t tpgt;
	unsigned line;              /* of the section header, for later diagnostics */
};

struct config_target {
	char name[CONFIG_NAME_MAX];   /* as written in [target NAME] */
	char iqn[ISCSI_NAME_MAX];
	char alias[ISCSI_NAME_MAX];   /* TargetAlias; "" when none */
	size_t *portals;              /* indices into config.portals; none: every portal */
	size_t n_portals;
	char (*initiators)[ISCSI_NAME_MAX]; /* allowed initiators; none: everyone */
	size_t n_initiators;
	struct iscsi_target_auth auth;
	/* Secrets named by *-secret-file keys; config_load() reads them into auth. */
	char chap_secret_file[CONFIG_PATH_MAX];
	char mutual_secret_file[CONFIG_PATH_MAX];
	unsigned line;
	bool managed;                 /* from the managed configuration (made through the API) */
};

/* A numeric address and port: "127.0.0.1:3401" or "[::1]:3401". */
struct config_endpoint {
	char address[CONFIG_ADDRESS_MAX];
	uint16_t port;
};

/* One sync or heartbeat link: the secondary listens on `local`, the primary dials
 * `partner` from `local`'s address. */
struct config_ha_link {
	struct config_endpoint local, partner;
	unsigned line;
};

struct config_ha {
	char name[CONFIG_NAME_MAX];   /* the alias, as written in [ha NAME] */
	uint8_t uuid[16];             /* the device identity, the same on both nodes */
	char path[CONFIG_PATH_MAX];   /* this node's replica */
	uint64_t size;                /* create the file with this size if missing; 0: must exist */
	bool direct;
	char meta_path[CONFIG_PATH_MAX]; /* default <state-dir>/ha-<alias>.meta */
	enum ha_role role;
	enum ha_initial_sync initial_sync;
	enum ha_failover failover;
	uint32_t extent_size;         /* 0: the device's default */
	unsigned ping_interval_ms;    /* 0: the device's default */
	unsigned timeout_ms;          /* 0: the device's default */
	/* The link secret; secret_file is read into it by config_load(). */
	uint8_t secret[HANDSHAKE_SECRET_MAX];
	size_t secret_len;
	char secret_file[CONFIG_PATH_MAX];
	/* The witness of failover = majority (also kept for a later switch to it): its
	 * addresses, several for several networks to one witness. */
	struct config_endpoint witness[CONFIG_WITNESS_MAX];
	unsigned n_witness;
	char witness_secret_file[CONFIG_PATH_MAX];
	uint8_t witness_secret[HANDSHAKE_SECRET_MAX]; /* read by config_load() */
	size_t witness_secret_len;
	struct config_ha_link sync[HA_MAX_LINKS];
	unsigned n_sync;
	struct config_ha_link heartbeat[HA_MAX_LINKS];
	unsigned n_heartbeat;
	unsigned line;
	bool managed;
};

struct config_lun {
	size_t target;                /* index into config.targets */
	uint64_t lun;
	bool uses_ha;                 /* serves config.has[ha] instead of a path */
	size_t ha;
	char path[CONFIG_PATH_MAX];
	uint64_t size;                /* create the file with this size if missing; 0: must exist */
	bool direct;
	uint32_t block_size;
	char serial[CONFIG_SERIAL_MAX]; /* "" when not set */
	bool has_uuid;
	uint8_t uuid[16];
	unsigned line;
	bool managed;
};

struct config {
	enum log_level log_level;
	char state_dir[CONFIG_PATH_MAX];
	unsigned queue_depth;
	uint64_t node_id;             /* 0: not set (the daemon keeps one in the state dir) */
	/* The managed configuration: what the management API created, read after the main
	 * file as if appended to it; default <state-dir>/managed.conf. */
	char managed_config[CONFIG_PATH_MAX];
	char metrics_listen[CONFIG_ADDRESS_MAX + 8]; /* the Prometheus endpoint, ADDR:PORT; "": none */
	struct config_portal *portals;
	size_t n_portals;
	struct config_target *targets;
	size_t n_targets;
	struct config_lun *luns;
	size_t n_luns;
	struct config_ha *has;
	size_t n_has;
};

/* Defaults of the [daemon] section. */
#define CONFIG_DEFAULT_STATE_DIR "/var/lib/twinsan"
#define CONFIG_DEFAULT_QUEUE_DEPTH 1024
#define CONFIG_DEFAULT_PORT 3260

/* Parses len bytes of configuration text; file names it in messages.  Secret files are
 * not read.  Returns 0, or -1 with a "file:line: problem; remedy" message in err. */
int config_parse(const char *text, size_t len, const char *file, struct config **out,
                 char *err, size_t errlen);

/* Reads and parses the file at path, then reads the secret files it names.  Warns when
 * secrets are readable by everyone. */
int config_load(const char *path, struct config **out, char *err, size_t errlen);

/* config_load() with managed_text (len bytes) in place of the managed configuration file:
 * how a change through the API is validated before it is applied and written. */
int config_load_with(const char *path, const char *managed_text, size_t len, struct config **out,
                     char *err, size_t errlen);

/* Parses main text and managed text as one configuration; messages name the file and
 * line each came from.  The managed part may hold [target], [ha] and [lun] sections
 * only, and its targets may be without LUNs.  Secret files are not read. */
int config_parse_managed(const char *text, size_t len, const char *file, const char *managed_text,
                         size_t managed_len, const char *managed_file, struct config **out, char *err,
                         size_t errlen);

/* A size as the configuration writes it ("4096", "1G"); 0, or -1 if it is none. */
int config_size(const char *s, uint64_t *out);

/* The managed sections of cfg as configuration text (malloc'd; NULL when out of memory):
 * what config_parse_managed() reads back into the same objects. */
char *config_format(const struct config *cfg);

void config_free(struct config *cfg);

#endif
