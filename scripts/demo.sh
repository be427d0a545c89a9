#!/bin/bash
# `make demo`: the seed's HA storage on one machine.  Two storage nodes (node 1 primary,
# node 2 secondary) and a witness, each a separate host in its own network namespace
# (or on loopback addresses without namespaces; see scripts/demo-net.sh), serve the seed's
# two HA devices, initial sync `clear`, each made with one `twinctl device create --ha` on
# node 1 that configures both nodes: Quorum (1 GiB, failover `heartbeat`) and VMStore
# (larger, failover `majority`: the witness votes).  The configuration files hold only
# each node's portal.
# The demo waits until both are synchronized, writes through one node and
# reads back through the other, kills node 2 and shows that only what changed meanwhile
# is copied back when it returns.  The pair is left running for you to try (docs/demo.md).
#
#   scripts/demo.sh [start]   stop a previous demo, then run it (what `make demo` does)
#   scripts/demo.sh stop      stop the daemons, remove the namespaces and every file
#
# DEMO_DIR (default /var/tmp/twinsan-demo) holds the replicas, configurations, secrets
# and logs; DEMO_NET=netns|loopback forces the network kind.  Ports 3580-3586 (and
# 3260 for iSCSI inside the namespaces).
set -Eeu
cd "$(dirname "$0")/.."
. scripts/demo-net.sh

DIR=${DEMO_DIR:-/var/tmp/twinsan-demo}
MARK=.twinsan-demo # only a directory holding this file is ever removed
API_PORT=3581 WITNESS_PORT=3582
QUORUM_SYNC=3583 QUORUM_HB=3584 VMSTORE_SYNC=3585 VMSTORE_HB=3586
CHAP_USER=demo
IQN=iqn.2026-11.org.twinsan
STARTED="" # set once daemons run: a failure then shows their logs and stops them

if [ -t 1 ]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; else BOLD="" PLAIN=""; fi
say() { printf '\n%s== %s%s\n' "$BOLD" "$*" "$PLAIN"; }
# Shows a command as a user would type it, then runs it.
step() { show "$@"; "$@"; }
show()
{
	local a line=""
	for a in "$@"; do
		case $a in *" "*) a="'$a'" ;; esac
		line+=" $a"
	done
	printf '%s$%s%s\n' "$BOLD" "$line" "$PLAIN"
}
# client CMD...: step for an iSCSI client, within a minute (a limit not shown: it is the
# demo's, not part of the command to type), and not reading the terminal (qemu-io stops
# on it when timeout puts it in the background).
client() { show "$@"; timeout 60 "$@" </dev/null; }
die() { echo "demo: FAILED: $*" >&2; exit 1; }

# ctl N ARGS...: twinctl against node N's API socket, shown as typed.
ctl() { step twinctl --server "unix:$DIR/node$1/api.sock" "${@:2}"; }
# watch N DEVICE: twinctl's progress bar until DEVICE is synchronized on node N, within
# two minutes (the time limit is not shown: it is the demo's, not the user's command).
watch()
{
	local cmd=(twinctl --server "unix:$DIR/node$1/api.sock" device status "$2" --watch)
	show "${cmd[@]}"
	timeout --foreground 120 "${cmd[@]}" || die "$2 not synchronized on node $1 within two minutes"
}
url() { echo "iscsi://$CHAP_USER@$(node_addr "$1"):$PORTAL/$(target "$1" "$2")/0"; }
node_addr() { if [ "$1" = 1 ]; then echo "$ISCSI_1"; else echo "$ISCSI_2"; fi; }
# Each device is LUN 0 of its own target, of the same name on both nodes.
target() { echo "$IQN:${2,,}"; }

# ---- stopping ----

# stop_pid FILE: SIGTERM the daemon FILE names if it is one of ours, and wait for it.
stop_pid()
{
	local pid
	[ -f "$1" ] || return 0
	pid=$(cat "$1")
	# A stale pid file must not make us kill someone else's process.
	{ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF "$DIR/" || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
	echo "demo: $pid did not stop within 15 s of SIGTERM; killing it" >&2
	kill -KILL "$pid" 2>/dev/null || true
}

demo_stop()
{
	if [ -d "$DIR" ] && [ ! -e "$DIR/$MARK" ]; then
		die "$DIR exists but is not a demo directory; remove it or choose another DEMO_DIR"
	fi
	for p in node2 node1 witness; do stop_pid "$DIR/$p/pid"; done
	demo_net_down
	rm -rf "$DIR"
}

# On failure: what the daemons said last, then everything stopped (the logs are kept).
on_exit()
{
	local rc=$?
	[ $rc != 0 ] && [ -n "$STARTED" ] || return $rc
	set +e
	for p in node1 node2 witness; do
		[ -s "$DIR/$p/log" ] || continue
		echo "--- last lines of $DIR/$p/log:" >&2
		tail -n 15 "$DIR/$p/log" >&2
	done
	for p in node2 node1 witness; do stop_pid "$DIR/$p/pid"; done
	demo_net_down
	rm -f "$DIR"/node?/*.img
	echo "demo: stopped; logs kept in $DIR (scripts/demo.sh stop removes them)" >&2
	exit $rc
}

# ---- setting up ----

# Random secrets, mode 600: no default credentials, not even in a demo.
make_secrets()
{
	mkdir -m 700 "$DIR/secrets"
	for s in chap witness; do
		(umask 077 && od -An -N18 -tx1 /dev/urandom | tr -d ' \n' >"$DIR/secrets/$s.secret")
	done
}

# Picks VMSTORE_SIZE so that both nodes' replicas fit on DIR's file system even when full.
choose_sizes()
{
	local avail gib=$((1024 * 1024 * 1024))
	avail=$(df --output=avail -B1 "$DIR" | tail -n 1)
	for VMSTORE_SIZE in 4 2 1; do
		[ "$avail" -lt $(( (2 * (1 + VMSTORE_SIZE) + 1) * gib )) ] || break
		VMSTORE_SIZE=0
	done
	[ "$VMSTORE_SIZE" != 0 ] || die "$DIR has $((avail / gib)) GiB free; the demo needs 5 GiB (DEMO_DIR picks another place)"
	echo "Replicas: sparse files in $DIR: Quorum 1 GiB and VMStore $VMSTORE_SIZE GiB on each node" \
		"($((avail / gib)) GiB free there)"
}

# Node N's configuration file: its state directory and portal; the targets and HA devices
# are made with twinctl and kept in the node's managed configuration.
write_config() # N
{
	mkdir -p "$DIR/node$1/state"
	{
		echo "# twinsand on demo node $1 (written by scripts/demo.sh)"
		printf '[daemon]\nstate-dir = %s\n\n[portal iscsi]\naddress = %s\nport = %s\n' \
			"$DIR/node$1/state" "$(node_addr "$1")" "$PORTAL"
	} >"$DIR/node$1/twinsand.conf"
	chmod 600 "$DIR/node$1/twinsand.conf"
}

# create_ha DEVICE SIZE SYNC_PORT HB_PORT FAILOVER [OPTIONS...]: one twinctl command on node
# 1 makes DEVICE (LUN 0 of target device-in-lower-case, made on both nodes first) on both.
create_ha()
{
	local lower=${1,,} n
	for n in 1 2; do
		ctl $n target create "$lower" --chap-user $CHAP_USER --chap-secret-file "$DIR/secrets/chap.secret"
	done
	ctl 1 device create "$1" --ha --partner "$ISCSI_2:$API_PORT" \
		--partner-secret-file "$DIR/node2/state/admin.secret" --target "$lower" \
		--path "$DIR/node1/$lower.img" --partner-path "$DIR/node2/$lower.img" --size "$2" \
		--priority primary --initial-sync clear --failover "$5" \
		--sync "$SYNC_1:$3" "$SYNC_2:$3" --heartbeat "$HB_1:$4" "$HB_2:$4" "${@:6}"
}

# start HOST READY-PATTERN PROGRAM ARGS...: a daemon in its own session (it outlives the
# demo), its log in DIR/HOST/log and pid in DIR/HOST/pid; waits for its ready line.
start()
{
	local host=$1 ready=$2 pid seen
	shift 2
	mkdir -p "$DIR/$host"
	echo "--- started by scripts/demo.sh at $(date -u +%T)" >>"$DIR/$host/log"
	seen=$(wc -l <"$DIR/$host/log")
	demo_on "$host"
	"${ON[@]}" setsid "$@" </dev/null >>"$DIR/$host/log" 2>&1 &
	pid=$!
	echo $pid >"$DIR/$host/pid"
	STARTED=yes
	for _ in $(seq 300); do
		tail -n +"$seen" "$DIR/$host/log" | grep -q "$ready" && return 0
		kill -0 $pid 2>/dev/null || die "$host exited before it was ready"
		sleep 0.1
	done
	die "$host was not ready within 30 s"
}

start_node() # N
{
	start "node$1" ready twinsand --config "$DIR/node$1/twinsand.conf" \
		--api-socket "$DIR/node$1/api.sock" --api-listen "$(node_addr "$1"):$API_PORT"
}

# The loopback addresses are shared with everything else on this host.
check_ports()
{
	local p
	[ "$DEMO_NET" = loopback ] || return 0
	for p in $PORTAL $API_PORT $WITNESS_PORT $QUORUM_SYNC $QUORUM_HB $VMSTORE_SYNC $VMSTORE_HB; do
		if ss -Htan "( sport = :$p )" | grep -qE "127\.0\.0\.[123]:$p "; then
			die "port $p is in use on loopback; stop what uses it, or free ports 3580-3586"
		fi
	done
}

# ---- checking ----

# device_is N DEVICE STATE: whether node N reports DEVICE in STATE (from --json).
device_is()
{
	twinctl --server "unix:$DIR/node$1/api.sock" --json device status "$2" 2>/dev/null |
		grep -q "\"state\":\"$3\""
}

# qemu_io N DEVICE COMMAND...: qemu-io commands through node N; fails if any failed.
qemu_io()
{
	local n=$1 dev=$2 args=() c out
	shift 2
	for c in "$@"; do args+=(-c "$c"); done
	out=$(client qemu-io -f raw "${args[@]}" "$(url "$n" "$dev")" 2>&1) || { echo "$out"; return 1; }
	echo "$out"
	! grep -qiE 'verification failed|error' <<<"$out"
}

# The same, retried while the node is not serving yet (taking over from a lost partner).
qemu_io_retry()
{
	for _ in $(seq 30); do
		qemu_io "$@" >"$DIR/io.out" 2>&1 && { cat "$DIR/io.out"; return 0; }
		sleep 1
	done
	cat "$DIR/io.out"
	die "no I/O through node $1 for 30 s"
}

# The logical unit's designators in VPD page 0x83 (T10 vendor id, NAA): the target's
# and the target ports' designators differ by node, as multipath needs them to.
lu_identity()
{
	timeout 60 iscsi-inq -e 1 -c 131 "$(url "$1" "$2")" </dev/null |
		LC_ALL=C awk 'BEGIN { RS = "DEVICE DESIGNATOR #" } /Association:\(0\) LOGICAL_UNIT/'
}

# node_hex N: node N's id as the witness prints it.
node_hex() { printf '%016x' "$(cat "$DIR/node$1/state/node-id")"; }

# held_by ID: how many devices the witness holds for node ID (any node if empty).
held_by() { twinwitness --list --state-dir "$DIR/witness/state" | grep -c "holder $1" || true; }

# ---- the demo ----

demo_start()
{
	demo_stop
	for t in twinsand twinwitness twinctl; do
		[ -x build/release/$t ] || die "build/release/$t is missing; run 'make demo', which builds it"
	done
	for t in qemu-io iscsi-inq iscsi-ls ss; do
		command -v $t >/dev/null || die "$t is not installed; 'make deps' installs it"
	done
	demo_net_choose
	if [ "$DEMO_NET" = netns ]; then PORTAL=3260; else PORTAL=3580; fi
	check_ports
	mkdir -p "$DIR"
	touch "$DIR/$MARK"
	trap on_exit EXIT
	trap 'exit 1' INT TERM HUP
	trap 'die "the step above failed (scripts/demo.sh line $LINENO: $BASH_COMMAND)"' ERR
	# Copies: a rebuild of the tree while the pair runs must not change what node 2 restarts.
	mkdir "$DIR/bin"
	cp build/release/twinsand build/release/twinwitness build/release/twinctl "$DIR/bin/"
	PATH=$DIR/bin:$PATH

	say "Two storage nodes and a witness"
	demo_net_show
	demo_net_up
	choose_sizes
	make_secrets
	export LIBISCSI_CHAP_PASSWORD
	LIBISCSI_CHAP_PASSWORD=$(cat "$DIR/secrets/chap.secret")
	write_config 1
	write_config 2
	echo "Secrets (random, new every run): $DIR/secrets/ (CHAP, witness); the HA link secrets"
	echo "are made by twinctl and kept only in the nodes' managed configurations"

	start witness ready twinwitness --listen "$WITNESS:$WITNESS_PORT" \
		--secret-file "$DIR/secrets/witness.secret" --state-dir "$DIR/witness/state"
	echo "witness  listening on $WITNESS:$WITNESS_PORT      (log $DIR/witness/log)"
	start_node 1
	echo "node 1   iSCSI on $ISCSI_1:$PORTAL, primary    (log $DIR/node1/log)"
	start_node 2
	echo "node 2   iSCSI on $ISCSI_2:$PORTAL, secondary  (log $DIR/node2/log)"

	say "Quorum and VMStore made with twinctl: one command on node 1 configures both nodes"
	create_ha Quorum 1G $QUORUM_SYNC $QUORUM_HB heartbeat
	create_ha VMStore "${VMSTORE_SIZE}G" $VMSTORE_SYNC $VMSTORE_HB majority \
		--witness "$WITNESS:$WITNESS_PORT" --witness-secret-file "$DIR/secrets/witness.secret"
	echo "VMStore in node 1's managed configuration ($DIR/node1/state/managed.conf), secrets left out:"
	awk '/^\[/ { show = ($0 == "[ha VMStore]") } show && NF && !/secret/ { print "    " $0 }' \
		"$DIR/node1/state/managed.conf"

	say "Initial synchronization (clear: both replicas zeroed, then in sync)"
	watch 1 Quorum
	watch 1 VMStore
	for _ in $(seq 100); do
		device_is 2 Quorum synchronized && device_is 2 VMStore synchronized && break
		sleep 0.2
	done
	ctl 2 status
	for d in Quorum VMStore; do
		if ! device_is 1 $d synchronized || ! device_is 2 $d synchronized; then
			die "$d is not synchronized on both nodes"
		fi
	done

	say "The management API over TCP (TLS, the node's random admin secret)"
	step twinctl --server "$ISCSI_1:$API_PORT" --secret-file "$DIR/node1/state/admin.secret" device list

	say "One disk, two paths: both nodes present the same identity"
	echo "(the CHAP secret is in \$LIBISCSI_CHAP_PASSWORD, read from $DIR/secrets/chap.secret)"
	client iscsi-ls "iscsi://$CHAP_USER@$ISCSI_1:$PORTAL"
	client iscsi-ls "iscsi://$CHAP_USER@$ISCSI_2:$PORTAL"
	local id1 id2
	for d in Quorum VMStore; do
		id1=$(lu_identity 1 $d) id2=$(lu_identity 2 $d)
		if [ -z "$id1" ] || [ "$id1" != "$id2" ]; then
			die "$d: node 1 and node 2 report different identities"
		fi
	done
	client iscsi-inq -e 1 -c 128 "$(url 1 VMStore)"
	client iscsi-inq -e 1 -c 128 "$(url 2 VMStore)"
	for n in 1 2; do
		echo "VPD page 0x83, T10 vendor id, through node $n: $(lu_identity $n VMStore |
			grep -ao 'Designator:\[TWINSAN[^]]*' | cut -d'[' -f2)"
	done
	echo "All logical unit designators of page 0x83 (T10 vendor id, NAA) are the same through"
	echo "both nodes, for Quorum and for VMStore: multipath sees one disk with two paths."

	say "Write through one node, read back through the other"
	qemu_io 1 VMStore "write -P 0x5a 0 16M"
	qemu_io 2 VMStore "read -P 0x5a 0 16M"
	qemu_io 2 VMStore "write -P 0xa5 16M 16M"
	qemu_io 1 VMStore "read -P 0xa5 16M 16M" "read -P 0x5a 0 16M"
	qemu_io 2 Quorum "write -P 0x11 0 1M"
	qemu_io 1 Quorum "read -P 0x11 0 1M"

	say "Node 2 dies; node 1 goes on alone (with the witness's vote for VMStore)"
	local pid2
	pid2=$(cat "$DIR/node2/pid")
	step kill -KILL "$pid2"
	{ wait "$pid2"; } 2>/dev/null || true
	qemu_io_retry 1 VMStore "write -P 0x77 64M 8M"
	qemu_io_retry 1 Quorum "write -P 0x22 1M 1M"
	ctl 1 device status VMStore
	for _ in $(seq 50); do [ "$(held_by "$(node_hex 1)")" = 1 ] && break; sleep 0.2; done
	step twinwitness --list --state-dir "$DIR/witness/state"
	[ "$(held_by "$(node_hex 1)")" = 1 ] || die "the witness does not hold VMStore for node 1"
	echo "The witness granted VMStore to node 1 (node id $(node_hex 1)): node 2's replica is"
	echo "outdated, so node 2 could not serve it alone now.  Quorum (failover heartbeat) goes on"
	echo "alone on node 1 because no link to node 2 answers."

	say "Node 2 returns: only the changed extents are copied"
	start_node 2
	watch 1 VMStore
	for _ in $(seq 100); do device_is 2 VMStore synchronized && break; sleep 0.2; done
	device_is 2 VMStore synchronized || die "VMStore is not synchronized on node 2 after its return"
	echo "Node 1's status and log now:"
	twinctl --server "unix:$DIR/node1/api.sock" device status VMStore | grep -E '^(size|resync tally):' | sed 's/^/    /'
	grep -E 'VMStore: resync finished' "$DIR/node1/log" | tail -n 1 | sed 's/^/    /'
	echo "That is what node 1 wrote alone, plus extents written just before the failure (their"
	echo "marks are cleared lazily, once both replicas have the writes); not the whole device."
	qemu_io 2 VMStore "read -P 0x77 64M 8M" "read -P 0x5a 0 16M"
	for _ in $(seq 100); do device_is 2 Quorum synchronized && break; sleep 0.2; done
	qemu_io 2 Quorum "read -P 0x22 1M 1M"
	for _ in $(seq 50); do [ "$(held_by "")" = 0 ] && break; sleep 0.2; done
	step twinwitness --list --state-dir "$DIR/witness/state"
	if [ "$(held_by "")" = 0 ]; then
		echo "(nothing held: back in sync, node 1 released VMStore)"
	fi

	say "Both nodes"
	ctl 1 device list
	ctl 2 device list
	ctl 2 device status VMStore
	for n in 1 2; do
		for d in Quorum VMStore; do
			device_is $n $d synchronized || die "$d is not synchronized on node $n"
		done
	done
	print_howto | tee "$DIR/HOWTO"
}

# A failure to try by hand, where the networks are real links.
try_failure()
{
	[ "$DEMO_NET" = netns ] || return 0
	cat <<TRY

Cut the sync network (node 1 goes on alone, node 2 answers NOT READY), then mend it
(node 2 gets back what changed meanwhile):
    ip -n $NET_PREFIX-node1 link set sync0 down
    ip -n $NET_PREFIX-node1 link set sync0 up
TRY
}

print_howto()
{
	cat <<HOWTO

The HA pair is running.  (This text is also in $DIR/HOWTO.)

Connect an initiator to both nodes (one disk, two paths; CHAP user '$CHAP_USER', secret
in $DIR/secrets/chap.secret):
    $(url 1 Quorum)     $(url 2 Quorum)
    $(url 1 VMStore)    $(url 2 VMStore)
  e.g.  LIBISCSI_CHAP_PASSWORD=\$(cat $DIR/secrets/chap.secret) iscsi-inq $(url 1 VMStore)
  With open-iscsi and multipath: discover both portals, set CHAP (node.session.auth.*),
  log in to both; multipath shows one disk per device with two paths.

Manage the nodes:
    build/release/twinctl --server unix:$DIR/node1/api.sock status
    build/release/twinctl --server unix:$DIR/node2/api.sock device status VMStore
    build/release/twinctl --server $ISCSI_1:$API_PORT --secret-file $DIR/node1/state/admin.secret events
    build/release/twinwitness --list --state-dir $DIR/witness/state
  Logs: $DIR/{node1,node2,witness}/log; daemons' pids: $DIR/{node1,node2,witness}/pid
$(try_failure)

Stop and clean up (the daemons, the demo's network, every file in $DIR):
    scripts/demo.sh stop
HOWTO
}

case ${1:-start} in
start) demo_start ;;
stop)
	demo_stop
	echo "demo: stopped; nothing left in $DIR or in the network"
	;;
*)
	echo "usage: scripts/demo.sh [start|stop]" >&2
	exit 2
	;;
esac
