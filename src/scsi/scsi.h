/* The SCSI layer's face to transports (SAM-5 model): a SCSI target device holds logical
 * units by LUN; a transport hands it tasks received on an I_T nexus and gets each task
 * back, completed, through task->done.
 *
 * The transport owns the task memory (it embeds struct scsi_task in its own command) and
 * gathers all Data-Out before execution.  The SCSI layer allocates Data-In itself; the
 * transport sends min(data_in_len, expected_len) bytes and reports the residual.
 *
 * Everything here runs on one reactor thread (see docs/design.md). */
#ifndef TWINSAN_SCSI_SCSI_H
#define TWINSAN_SCSI_SCSI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/reactor.h"
#include "store/store.h"

#define SCSI_MAX_CDB 32
#define SCSI_SENSE_MAX 252
#define SCSI_NAME_MAX 224 /* iSCSI names: RFC 7143 caps them at 223 bytes */

enum scsi_status {
	SCSI_STATUS_GOOD = 0x00,
	SCSI_STATUS_CHECK_CONDITION = 0x02,
	SCSI_STATUS_CONDITION_MET = 0x04,
	SCSI_STATUS_BUSY = 0x08,
	SCSI_STATUS_RESERVATION_CONFLICT = 0x18,
	SCSI_STATUS_TASK_SET_FULL = 0x28,
	SCSI_STATUS_ACA_ACTIVE = 0x30,
	SCSI_STATUS_TASK_ABORTED = 0x40,
};

enum scsi_task_attr { SCSI_ATTR_SIMPLE, SCSI_ATTR_ORDERED, SCSI_ATTR_HEAD_OF_QUEUE, SCSI_ATTR_ACA };

/* An I_T nexus as the logical unit sees it.  The transport fills it at login and keeps it
 * alive (and unchanged) while any task on it exists. */
struct scsi_itn {
	char initiator_name[SCSI_NAME_MAX]; /* iSCSI name of the initiator */
	uint8_t isid[6];                    /* initiator port = name + ",i,0x" + ISID */
	char target_name[SCSI_NAME_MAX];    /* iSCSI name of the target */
	uint16_t tpgt;                      /* target portal group tag: the target port */
	uint16_t relative_port;             /* relative target port identifier (>= 1) */
	uint16_t port_group;                /* target port group (ALUA) */
	uint64_t id;                        /* unique for the life of the process */
};

struct scsi_lu;
struct scsi_target;

/* One command.  "in" fields are set by the transport before scsi_target_execute(); "out"
 * fields by the SCSI layer before done() runs; "private" fields belong to the SCSI layer. */
struct scsi_task {
	/* in */
	const struct scsi_itn *itn;
	uint64_t lun;                 /* LUN as the SCSI layer numbers it (flat, 0..16383) */
	uint32_t tag;                 /* task tag (iSCSI ITT), unique per nexus while active */
	enum scsi_task_attr attr;
	uint8_t cdb[SCSI_MAX_CDB];
	uint8_t cdb_len;
	uint32_t expected_len;        /* the transport's expected data transfer length */
	bool read_dir, write_dir;     /* transport direction flags (iSCSI R and W bits) */
	uint8_t *data_out;            /* all Data-Out, gathered by the transport */
	uint32_t data_out_len;
	struct reactor *reactor;
	void (*done)(struct scsi_task *task);

	/* out */
	uint8_t status;
	uint8_t sense_len;
	uint8_t sense[SCSI_SENSE_MAX];
	uint8_t *data_in;             /* freed by scsi_task_release() */
	uint32_t data_in_len;
	uint32_t data_out_wanted;     /* Data-Out bytes the CDB asks for (SPDTL), against which
	                                 the transport reports a write's residual */
	uint8_t *state;               /* a command run for the HA partner (scsi_lu_execute_
	                                 shipped()): the state it left, for the partner; freed
	                                 by scsi_task_release() */
	uint32_t state_len;

	/* private */
	struct scsi_lu *lu;
	const void *desc;             /* opcode descriptor */
	struct scsi_task *next_active, *prev_active; /* logical unit's task set */
	struct scsi_task *next_waiting;              /* waiting for an LBA range or the task set */
	struct store_io io;
	uint64_t lba;
	uint32_t nblocks;
	uint32_t step;                /* progress of multi-step commands */
	uint8_t *scratch;             /* command-private buffer (COMPARE AND WRITE, VERIFY, XCOPY) */
	uint32_t scratch_len;
	bool aborted;
	bool holds_range;             /* holds an LBA range lock */
	bool enabled;                 /* has entered the enabled state (task attributes) */
	bool shipped_in;              /* run here for the HA partner's nexus */
	bool publish;                 /* changed the shared state: the partner learns it first */
	uint64_t start_ns;            /* entered the logical unit (monotonic), for its latency */
};

/* Releases what the SCSI layer attached to a completed task (its Data-In). */
void scsi_task_release(struct scsi_task *task);

/* Logical unit parameters.  Identity (uuid, serial) is stable across restarts and is
 * what a future replication partner will share, so multipath sees one disk. */
struct scsi_lu_params {
	uint8_t uuid[16];
	const char *serial;        /* unit serial number (VPD 0x80); derived from uuid if NULL */
	const char *vendor;        /* INQUIRY T10 vendor id, 8 chars */
	const char *product;       /* 16 chars */
	const char *revision;      /* 4 chars */
	uint32_t block_size;       /* logical block size: 512 or 4096 */
	bool write_cache;          /* WCE default; SYNCHRONIZE CACHE and FUA still make data durable */
	const char *state_path;    /* file for APTPL persistent reservations; NULL: not persisted */
};

int scsi_lu_new(const struct scsi_lu_params *params, struct store *store, struct scsi_lu **out,
                char *err, size_t errlen);
void scsi_lu_free(struct scsi_lu *lu);
/* The store's size changed (it was grown or shrunk underneath): the logical unit takes the
 * new capacity and tells every nexus with CAPACITY DATA HAS CHANGED. */
void scsi_lu_capacity_changed(struct scsi_lu *lu);

/* Asymmetric logical unit access (ALUA, SPC-4 §5.15), implicit only: the target port
 * groups of a logical unit and their states.  A plain logical unit has one group, the
 * port group of its nexuses (1 unless the transport set another), holding the ports they
 * came through, active/optimized while its store may serve (else transitioning or
 * unavailable, as store_access() says).  A replicated one is given
 * a provider, which lists one group per node: the daemon knows them from the HA device. */
enum scsi_alua_state {
	SCSI_ALUA_ACTIVE_OPTIMIZED = 0x0,
	SCSI_ALUA_ACTIVE_NON_OPTIMIZED = 0x1,
	SCSI_ALUA_STANDBY = 0x2,
	SCSI_ALUA_UNAVAILABLE = 0x3,
	SCSI_ALUA_TRANSITIONING = 0xf,
};

#define SCSI_PORT_GROUPS_MAX 4
#define SCSI_GROUP_PORTS_MAX 16

struct scsi_port_group {
	uint16_t id;                          /* target port group, nonzero */
	enum scsi_alua_state state;
	unsigned n_ports;
	uint16_t ports[SCSI_GROUP_PORTS_MAX]; /* relative target port ids in the group */
};

struct scsi_port_groups {
	unsigned n_groups;
	struct scsi_port_group groups[SCSI_PORT_GROUPS_MAX];
	uint16_t local;            /* this node's group: its state gates a nexus whose port
	                              group is not listed */
	uint8_t transition_s;      /* implicit transition time, seconds; 0: 60 */
};

/* Fills *out (zeroed by the caller) with the logical unit's groups as they are now. */
typedef void (*scsi_port_groups_fn)(void *ctx, struct scsi_port_groups *out);

/* Gives the logical unit its port groups' provider (NULL: the plain one group) and reads
 * it at once. */
void scsi_lu_set_port_groups(struct scsi_lu *lu, scsi_port_groups_fn fn, void *ctx);
/* Some group's state may have changed (HA state change, partner lost or back): re-reads
 * the provider, and if a state did change tells every nexus with ASYMMETRIC ACCESS STATE
 * CHANGED.  A change of store_access() is noticed without this call. */
void scsi_lu_port_groups_changed(struct scsi_lu *lu);

/* Replicated SCSI state (the logical unit of an HA device, served by two nodes): the
 * persistent reservations, RESERVE(6), mode parameters and the unit attentions and
 * aborts their changes cause are one state for both nodes.  A provider (the HA layer)
 * carries it; the SCSI layer decides what to ship and applies what arrives.
 *
 * Reads stay local: every node holds the whole state and gates commands with it.  A
 * command that changes it (the opcode table marks them) runs on the owner only: on any
 * other node it is shipped there with its nexus, and the owner's answer brings the new
 * state.  On the owner, the command completes once the partner has the new state (or is
 * gone).  LUN RESET and the loss of a RESERVE(6) holder's nexus are replayed on the
 * partner. */
struct scsi_state_peer_ops {
	/* True while this node executes state-changing commands. */
	bool (*owner)(void *ctx);
	/* Runs task on the owner; the provider sets status and sense and calls
	 * scsi_task_shipped() (from the loop), also when the partner is lost. */
	void (*ship)(void *ctx, struct scsi_task *task);
	/* The state after task changed it (len bytes, copied), to send to the partner; the
	 * provider calls scsi_task_published(task) once the partner installed it or is gone. */
	void (*publish)(void *ctx, struct scsi_task *task, const uint8_t *state, size_t len);
	/* This node reset the logical unit (LUN RESET): the partner does too. */
	void (*reset)(void *ctx);
	/* The nexus holding RESERVE(6) ended here: the partner releases it too. */
	void (*nexus_lost)(void *ctx, const struct scsi_itn *itn);
};
/* Gives the logical unit its state provider (ops NULL: the state is this node's alone). */
void scsi_lu_set_state_peer(struct scsi_lu *lu, const struct scsi_state_peer_ops *ops, void *ctx);
/* Owner side: runs a command the partner shipped (task->itn is the partner's nexus, the
 * provider's to keep alive); done() finds the new state in task->state. */
void scsi_lu_execute_shipped(struct scsi_lu *lu, struct scsi_task *task);
/* The outcome of a shipped task is in (status, sense): installs `state` (NULL: none, the
 * command did not run) and completes the task. */
void scsi_task_shipped(struct scsi_task *task, const uint8_t *state, size_t len);
/* A shipped task that may or may not have run on the owner, which is gone: it fails
 * with a status the initiator retries (NOT READY, asymmetric access state transition). */
void scsi_task_ship_failed(struct scsi_task *task);
/* The partner has the state a task published (or is gone): the task completes. */
void scsi_task_published(struct scsi_task *task);
/* The whole state, without effects (malloc'd), for a partner being met; -1 when out of
 * memory. */
int scsi_lu_state_export(struct scsi_lu *lu, uint8_t **out, size_t *len);
/* Installs the partner's state and applies the effects it carries; -1 (logged) if it is
 * malformed, nothing changed then. */
int scsi_lu_state_install(struct scsi_lu *lu, const uint8_t *state, size_t len);
/* The partner reset the logical unit, or lost the nexus holding RESERVE(6). */
void scsi_lu_partner_reset(struct scsi_lu *lu);
void scsi_lu_partner_nexus_lost(struct scsi_lu *lu, const struct scsi_itn *itn);

/* A target device: the logical units an I_T nexus can reach, by LUN. */
int scsi_target_new(struct scsi_target **out);
void scsi_target_free(struct scsi_target *t); /* does not free the logical units */
int scsi_target_add_lu(struct scsi_target *t, uint64_t lun, struct scsi_lu *lu);
/* Takes LUN lun out of the target: commands to it get LOGICAL UNIT NOT SUPPORTED and the
 * other logical units report REPORTED LUNS DATA CHANGED.  The logical unit stays the
 * caller's, to free once no task of it is left; -1 if there is no such LUN. */
int scsi_target_remove_lu(struct scsi_target *t, uint64_t lun);

/* Hooks the transport gives a target so the SCSI layer can act on other nexuses' tasks
 * (PREEMPT AND ABORT, CLEAR TASK SET, LUN RESET). */
struct scsi_transport_ops {
	/* Aborts every task on lu from nexuses for which match(itn, arg) is true, except
	 * `except`; the transport completes nothing for them afterwards. */
	void (*abort_tasks)(void *ctx, struct scsi_lu *lu,
	                    bool (*match)(const struct scsi_itn *itn, void *arg), void *arg,
	                    const struct scsi_task *except);
	void *ctx;
};
void scsi_target_set_transport(struct scsi_target *t, const struct scsi_transport_ops *ops);

/* Executes a task; task->done runs when it completes, possibly before this returns. */
void scsi_target_execute(struct scsi_target *t, struct scsi_task *task);

/* ABORT TASK for a task the SCSI layer holds: it completes through done() with status
 * TASK ABORTED once nothing of it is in flight; the transport sends no response for it. */
void scsi_task_abort(struct scsi_task *task);

/* Task management functions (SAM-5 7.x), answered synchronously with a TMF response code;
 * the transport aborts its own queued work for the affected tasks. */
enum scsi_tmf_response {
	SCSI_TMF_COMPLETE = 0,
	SCSI_TMF_NO_SUCH_LUN = 1,
	SCSI_TMF_REJECTED = 5,
};
enum scsi_tmf_response scsi_target_lun_reset(struct scsi_target *t, const struct scsi_itn *itn,
                                             uint64_t lun);
enum scsi_tmf_response scsi_target_reset(struct scsi_target *t, const struct scsi_itn *itn);
/* CLEAR TASK SET and ABORT TASK SET establish unit attentions / clear state as SAM says. */
enum scsi_tmf_response scsi_target_abort_task_set(struct scsi_target *t, const struct scsi_itn *itn,
                                                  uint64_t lun);
enum scsi_tmf_response scsi_target_clear_task_set(struct scsi_target *t, const struct scsi_itn *itn,
                                                  uint64_t lun);

/* An I_T nexus ended (logout, connection loss): releases what SPC ties to the nexus
 * (RESERVE(6), PREVENT MEDIUM REMOVAL) and forgets its pending unit attentions. */
void scsi_target_nexus_lost(struct scsi_target *t, const struct scsi_itn *itn);

#endif
