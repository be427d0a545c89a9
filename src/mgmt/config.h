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
#include "iscsi/target.h"

#define CONFIG_NAME_MAX 128     /* section names: portal and target names */
#define CONFIG_ADDRESS_MAX 64   /* numeric IPv4 or IPv6 address */
#define CONFIG_PATH_MAX 4096
#define CONFIG_SERIAL_MAX 64

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
};

struct config_lun {
	size_t target;                /* index into config.targets */
	uint64_t lun;
	char path[CONFIG_PATH_MAX];
	uint64_t size;                /* create the file with this size if missing; 0: must exist */
	bool direct;
	uint32_t block_size;
	char serial[CONFIG_SERIAL_MAX]; /* "" when not set */
	bool has_uuid;
	uint8_t uuid[16];
	unsigned line;
};

struct config {
	enum log_level log_level;
	char state_dir[CONFIG_PATH_MAX];
	unsigned queue_depth;
	struct config_portal *portals;
	size_t n_portals;
	struct config_target *targets;
	size_t n_targets;
	struct config_lun *luns;
	size_t n_luns;
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

void config_free(struct config *cfg);

#endif
