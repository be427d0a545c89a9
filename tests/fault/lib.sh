# The fault suite's pieces, sourced by tests/fault/run: the nodes under test, the link
# proxy, the workload and the faults.  Node 1 ("A", the primary) listens on 127.0.0.1,
# node 2 ("B") on 127.0.0.2.  Their sync and heartbeat links go through faultproxy:
# A reaches B at 127.0.0.3 and B reaches A at 127.0.0.4, and the proxy dials each node
# from the address that node expects its partner at.  The workload's iSCSI paths go
# through the proxy too (127.0.0.5 for A, 127.0.0.6 for B), so a path can be failed.
#
# FAULT_MODE=single runs one node alone (quick mode), with only node faults: the way the
# suite was brought up before the HA device existed, and a check of the workload itself.

FAULT_BUILD=${FAULT_BUILD:-release}
BIN=$TOP/build/$FAULT_BUILD
TWINSAND=${TWINSAND:-$BIN/twinsand}
TWINLOAD=$BIN/tests/twinload
FAULTPROXY=$BIN/tests/faultproxy
TWINCTL=${TWINCTL:-$BIN/twinctl}
# For a sanitizer build of the tools.
export LSAN_OPTIONS=suppressions=$TOP/tests/fault/lsan.supp
IQN=iqn.2026-11.org.twinsan.test:fault
SIZE_MB=64
NODE_ADDR=(- 127.0.0.1 127.0.0.2)
NODE_NAME=(- A B)
SEEN_AS=(- 127.0.0.4 127.0.0.3) # how the partner reaches node N through the proxy
PATH_ADDR=(- 127.0.0.5 127.0.0.6)
NODE_PID=(- "" "")

note() { echo "  $(date +%T) $*"; }

# spawn CMD... &: the background child drops the driver's traps and becomes CMD (same
# pid, so $! is CMD's), leaving the driver's cleanup to the driver.
spawn() { trap - EXIT INT TERM HUP; exec "$@"; }

# Three consecutive ports of 3460-3499 nobody listens on: portal, sync, heartbeat.
pick_ports()
{
	local base p busy
	for base in $(seq 3460 3 3496); do
		busy=0
		for p in $base $((base + 1)) $((base + 2)); do
			ss -Htln "sport = :$p" | grep -q . && busy=1
		done
		[ $busy = 0 ] && { PORT=$base; SYNC_PORT=$((base + 1)); HB_PORT=$((base + 2)); return 0; }
	done
	echo "fault: no three free ports in 3460-3499" >&2
	return 1
}

# ---- storage: A's replica on a small tmpfs (full disk), B's on a loop device (slow disk),
# opened with O_DIRECT so that the throttle meets every write, not only the page cache's
# writeback.

# Sets REPLICA[N] and, where the machine allows it, DISK_MOUNT[1] and LOOP_DEV[2].
setup_storage()
{
	mkdir -p "$S/node1" "$S/node2"
	REPLICA=(- "$S/node1/disk/replica.img" "$S/node2/replica.img")
	DISK_MOUNT=(- "" "")
	LOOP_DEV=(- "" "")
	mkdir -p "$S/node1/disk"
	if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=$((SIZE_MB + 8))m twinsan-fault "$S/node1/disk" 2>/dev/null; then
		DISK_MOUNT[1]=$S/node1/disk
	fi
	if [ "$FAULT_MODE" = ha ] && [ "$(id -u)" = 0 ]; then
		truncate -s ${SIZE_MB}M "$S/node2/loop.img"
		if LOOP_DEV[2]=$(losetup -f --show "$S/node2/loop.img" 2>/dev/null); then
			REPLICA[2]=${LOOP_DEV[2]}
		fi
	fi
}

teardown_storage()
{
	[ -n "${LOOP_DEV[2]:-}" ] && { slow_disk_off; losetup -d "${LOOP_DEV[2]}"; }
	[ -n "${DISK_MOUNT[1]:-}" ] && umount "${DISK_MOUNT[1]}"
	return 0
}

# ---- configuration of the pair

setup_pair()
{
	local uuid
	uuid=$(cat /proc/sys/kernel/random/uuid)
	(umask 077; openssl rand -hex 24 >"$S/ha.secret")
	for n in 1 2; do
		local prio=primary partner=2
		[ $n = 2 ] && prio=secondary partner=1
		mkdir -p "$S/node$n/state"
		cat >"$S/node$n/twinsand.conf" <<-EOF
		[daemon]
		node-id = $n
		state-dir = $S/node$n/state
		[portal p]
		address = ${NODE_ADDR[$n]}
		port = $PORT
		[target $IQN]
		[ha HA1]
		uuid = $uuid
		path = ${REPLICA[$n]}
		size = ${SIZE_MB}M
		meta = $S/node$n/state/HA1.meta
		direct = $([ $n = 2 ] && [ -n "${LOOP_DEV[2]}" ] && echo yes || echo no)
		priority = $prio
		initial-sync = clear
		failover = heartbeat
		secret-file = $S/ha.secret
		sync = ${NODE_ADDR[$n]}:$SYNC_PORT ${SEEN_AS[$partner]}:$SYNC_PORT
		heartbeat = ${NODE_ADDR[$n]}:$HB_PORT ${SEEN_AS[$partner]}:$HB_PORT
		[lun $IQN:0]
		ha = HA1
		EOF
	done
}

# The proxy's routes: the links both ways, and the workload's two iSCSI paths.
start_proxy()
{
	mkfifo "$S/proxy.ctl"
	local routes=() link port
	if [ "$FAULT_MODE" = ha ]; then
		for link in sync:$SYNC_PORT hb:$HB_PORT; do
			port=${link#*:}
			routes+=("${link%%:*}-ab,${SEEN_AS[2]}:$port,${NODE_ADDR[2]}:$port,${SEEN_AS[1]}"
			         "${link%%:*}-ba,${SEEN_AS[1]}:$port,${NODE_ADDR[1]}:$port,${SEEN_AS[2]}")
		done
	fi
	routes+=("path-a,${PATH_ADDR[1]}:$PORT,${NODE_ADDR[1]}:$PORT")
	[ "$FAULT_MODE" = ha ] && routes+=("path-b,${PATH_ADDR[2]}:$PORT,${NODE_ADDR[2]}:$PORT")
	spawn "$FAULTPROXY" --control "$S/proxy.ctl" "${routes[@]}" >"$S/proxy.log" 2>&1 &
	PROXY_PID=$!
	exec {PROXY_CTL}>"$S/proxy.ctl"
	local i
	for i in $(seq 50); do
		grep -q '^ready' "$S/proxy.log" && return 0
		sleep 0.1
	done
	echo "fault: faultproxy did not start" >&2
	cat "$S/proxy.log" >&2
	return 1
}

# proxy CMD PATTERN [MS]: a command, waiting for its acknowledgement.
proxy()
{
	local acks
	acks=$(grep -c '^ok' "$S/proxy.log")
	echo "$*" >&$PROXY_CTL
	local i
	for i in $(seq 50); do
		[ "$(grep -c '^ok' "$S/proxy.log")" -gt "$acks" ] && return 0
		sleep 0.1
	done
	echo "fault: faultproxy did not acknowledge '$*'" >&2
	return 1
}

# ---- nodes

node_url() { echo "iscsi://${NODE_ADDR[$1]}:$PORT/$IQN/0"; }
path_url() { echo "iscsi://${PATH_ADDR[$1]}:$PORT/$IQN/0"; }

# node_start N: starts node N and waits for its "ready" line (appending to its log).
node_start()
{
	local n=$1 log=$S/node$1/daemon.log ready i
	touch "$log"
	ready=$(grep -c ready "$log" || true)
	echo "---- start $(date +%T.%N)" >>"$log"
	if [ "$FAULT_MODE" = ha ]; then
		local api=()
		"$TWINSAND" --help 2>&1 | grep -q -- --api-socket && api=(--api-socket "$S/node$n/api.sock")
		spawn "$TWINSAND" --config "$S/node$n/twinsand.conf" "${api[@]}" >>"$log" 2>&1 &
	else
		spawn "$TWINSAND" --portal "${NODE_ADDR[$n]}:$PORT" --target "$IQN" --lun "${REPLICA[$n]}" \
			--size ${SIZE_MB}M >>"$log" 2>&1 &
	fi
	NODE_PID[$n]=$!
	for i in $(seq 300); do
		[ "$(grep -c ready "$log" || true)" -gt "$ready" ] && return 0
		kill -0 "${NODE_PID[$n]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "fault: node ${NODE_NAME[$n]} did not start; its log ends:" >&2
	tail -n 20 "$log" >&2
	NODE_PID[$n]=""
	return 1
}

node_kill()
{
	local pid=${NODE_PID[$1]}
	[ -n "$pid" ] || return 0
	kill -KILL "$pid" 2>/dev/null
	{ wait "$pid"; } 2>/dev/null
	NODE_PID[$1]=""
	echo "---- killed $(date +%T.%N)" >>"$S/node$1/daemon.log"
}

# node_stop N: SIGTERM; false unless it exits with status 0 within 20 s.
node_stop()
{
	local pid=${NODE_PID[$1]} i st
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 200); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		node_kill "$1"
		return 1
	fi
	wait "$pid" && st=0 || st=$?
	NODE_PID[$1]=""
	[ "$st" = 0 ]
}

node_alive() { [ -n "${NODE_PID[$1]}" ] && kill -0 "${NODE_PID[$1]}" 2>/dev/null; }

# ---- the workload

LOAD_PID=""
# load_start SEED: twinload through every path (round robin), until load_stop.
load_start()
{
	local urls=(--url "$(path_url 1)")
	[ "$FAULT_MODE" = ha ] && urls+=(--url "$(path_url 2)")
	spawn "$TWINLOAD" write "${urls[@]}" --log "$S/twinload.log" --seed "$1" --rate "${FAULT_RATE:-1000}" \
		--depth 16 --retry-seconds 30 ${FAULT_READ_BACK:+--read-back} >>"$S/twinload.out" 2>&1 &
	LOAD_PID=$!
}

# load_stop: stops the workload; its exit status: 0, 1 if writes failed for good or a read
# back found stale data, 2 or more if it broke.
load_stop()
{
	local st
	[ -n "$LOAD_PID" ] || return 0
	kill -TERM "$LOAD_PID" 2>/dev/null
	wait "$LOAD_PID" && st=0 || st=$?
	LOAD_PID=""
	return "$st"
}

# load_verify N [--accept]: reads every logged block through node N; prints the verify line.
load_verify() { timeout -k 5 120 "$TWINLOAD" verify --url "$(node_url "$1")" --log "$S/twinload.log" --retry-seconds 30 "${@:2}"; }

# ---- disk faults

# A full disk on A: a file takes every free byte of its tmpfs (written until ENOSPC, as
# the daemon takes space too meanwhile).
full_disk_on()
{
	dd if=/dev/zero of="${DISK_MOUNT[1]}/filler" bs=64k 2>/dev/null
	dd if=/dev/zero of="${DISK_MOUNT[1]}/filler" bs=4k oflag=append conv=notrunc 2>/dev/null
	return 0
}
full_disk_off() { rm -f "${DISK_MOUNT[1]}/filler"; }

# A slow disk on B: the blkio controller (cgroup v1 here) throttles its loop device.
BLKIO=/sys/fs/cgroup/blkio
slow_disk_on()
{
	local dev
	dev=$(lsblk -dno MAJ:MIN "${LOOP_DEV[2]}" | tr -d ' ')
	echo "$dev ${1:-100}" >"$BLKIO/blkio.throttle.write_iops_device"
	echo "$dev ${1:-100}" >"$BLKIO/blkio.throttle.read_iops_device"
}
slow_disk_off()
{
	local dev
	[ -n "${LOOP_DEV[2]}" ] || return 0
	dev=$(lsblk -dno MAJ:MIN "${LOOP_DEV[2]}" | tr -d ' ')
	echo "$dev 0" >"$BLKIO/blkio.throttle.write_iops_device" 2>/dev/null
	echo "$dev 0" >"$BLKIO/blkio.throttle.read_iops_device" 2>/dev/null
	return 0
}
can_slow_disk() { [ -n "${LOOP_DEV[2]}" ] && [ -w "$BLKIO/blkio.throttle.write_iops_device" ]; }
can_full_disk() { [ -n "${DISK_MOUNT[1]}" ]; }

# ---- what the nodes say (their logs; lines of the current run of the daemon only)

# node_state N: HA1's last state on node N since its last start ("synchronized",
# "not synchronized: partner lost", ...), empty if none yet.
node_state()
{
	awk '/^---- start/ { s = "" } /HA1: state / { s = $0; sub(/.*HA1: state /, "", s) } END { print s }' \
		"$S/node$1/daemon.log"
}

# The state may go on with what the node does ("synchronized; serving").
pair_synced() { [[ "$(node_state 1)" =~ ^synchronized($|;) && "$(node_state 2)" =~ ^synchronized($|;) ]]; }
pair_split() { [[ "$(node_state 1)" == *"split brain"* && "$(node_state 2)" == *"split brain"* ]]; }

# The node of a split brain that still serves (it kept taking the writes), if one does.
split_brain_server()
{
	local n
	for n in 1 2; do
		[ "$(grep -o 'HA1: not synchronized, split brain ([a-z ]*)' "$S/node$n/daemon.log" | tail -n 1)" = \
		  "HA1: not synchronized, split brain (serving)" ] && { echo $n; return 0; }
	done
	return 1
}

# resolve_split_brain N: the operator keeps node N's data (twinctl on node N).
resolve_split_brain()
{
	[ -S "$S/node$1/api.sock" ] || { echo "no management API to resolve it with"; return 1; }
	TWINCTL_SERVER=unix:$S/node$1/api.sock timeout 30 "$TWINCTL" device resolve-split-brain HA1 --keep local
}

# cycle_mark: remembers where the logs stand, for cycle_log.
cycle_mark() { for n in 1 2; do LOG_MARK[$n]=$(cat "$S/node$n/daemon.log" 2>/dev/null | wc -l); done; }
# cycle_log N: node N's log lines since cycle_mark.
cycle_log() { tail -n +"$((LOG_MARK[$1] + 1))" "$S/node$1/daemon.log"; }
