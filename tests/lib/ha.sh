# An HA pair on loopback for the system tests (tests/system/ha-*.sh source it after
# twinsand.sh): node A on 127.0.0.1 (primary), node B on 127.0.0.2 (secondary), each with
# its own configuration, state dir, replica, iSCSI portal and log, one sync and one
# heartbeat link between them, and one HA device HA1 served as LUN 0 of target "ha".
#
#   ha_setup SIZE [KEY=VALUE...]  write both configurations (extra [ha HA1] keys for both)
#   ha_start A|B                  start a node, wait for its "ready" line (its management
#                                 API on $SCRATCH/A|B/api.sock)
#   ha_stop A|B                   SIGTERM; fails unless it exits cleanly, sanitizers quiet
#   ha_kill A|B                   kill -9
#   ha_wait_state A|B STATE       poll the node's log until HA1's last state is STATE
#   ha_url A|B                    the iSCSI URL of the device through that node
#   ha_log A|B                    the node's current log
#   ha_replica A|B                the node's replica file
#   ha_replicas_equal             cmp of the two replicas
#   ha_pair_up                    start both, wait until both are synchronized
#   ha_io A|B COMMAND...         qemu-io commands through a node (true if all passed)
#   ha_io_retry A|B COMMAND...   the same, retried while the node answers NOT READY
#   ha_status A|B                 'twinctl device status HA1 --json' through the node's API
#
#   HA_WITNESS=yes ha_setup ...   failover = majority with a witness on 127.0.0.3:
#   ha_witness_start, ha_witness_kill
#
# Ports: four consecutive free ones in HA_PORTS (default 3410-3449), the same numbers
# on both addresses: the portal, the sync link, the heartbeat link, the witness.
HA_ADDR_A=127.0.0.1
HA_ADDR_B=127.0.0.2
HA_IQN=iqn.2026-11.org.twinsan:ha
HA_ADDR_WITNESS=127.0.0.3
HA_PID_A=""
HA_PID_B=""
HA_PID_W=""
HA_LOG_A=""
HA_LOG_B=""
HA_STARTS=0
# How long a node may take to reach a state (a clear sync of a small device included).
HA_STATE_TIMEOUT=${HA_STATE_TIMEOUT:-40}

_ha_cleanup()
{
	_harc=$?
	set +e
	for _p in "$HA_PID_A" "$HA_PID_B" "$HA_PID_W"; do
		[ -n "$_p" ] && kill -KILL "$_p" 2>/dev/null && wait "$_p" 2>/dev/null
	done
	if [ $_harc = 1 ]; then
		for _l in "$HA_LOG_A" "$HA_LOG_B"; do
			[ -n "$_l" ] && [ -s "$_l" ] && { echo "--- last lines of $_l:" >&2; tail -n 25 "$_l" >&2; }
		done
	fi
	(exit $_harc)
	_cleanup
}
trap _ha_cleanup EXIT

_ha_addr() { [ "$1" = A ] && echo $HA_ADDR_A || echo $HA_ADDR_B; }
_ha_other() { [ "$1" = A ] && echo $HA_ADDR_B || echo $HA_ADDR_A; }
ha_log() { [ "$1" = A ] && echo "$HA_LOG_A" || echo "$HA_LOG_B"; }
ha_replica() { echo "$SCRATCH/$1/ha1.img"; }
ha_url() { echo "iscsi://$(_ha_addr "$1"):$HA_PORT/$HA_IQN/0"; }

# Four consecutive ports free on every address.
_ha_ports()
{
	set -- ${HA_PORTS:-3410 3449}
	_n=$(( $2 - $1 - 2 ))
	_off=$(( ($$ * 4) % _n ))
	for _i in $(seq 0 $(( _n - 1 ))); do
		_p=$(( $1 + (_off + _i) % _n ))
		# Only listeners count: the daemons bind with SO_REUSEADDR, so the TIME-WAIT
		# connections that earlier tests leave on these ports do not stand in the way.
		if ! ss -Htln "( sport = :$_p or sport = :$((_p + 1)) or sport = :$((_p + 2)) or sport = :$((_p + 3)) )" |
			grep -q .; then
			echo "$_p"
			return 0
		fi
	done
	fail "no four free ports in ${HA_PORTS:-3410 3449}"
}

# ha_write_config NODE PRIORITY SECRET_FILE [KEY=VALUE...]
ha_write_config()
{
	_node=$1 _prio=$2 _secret=$3
	shift 3
	_me=$(_ha_addr "$_node") _peer=$(_ha_other "$_node")
	mkdir -p "$SCRATCH/$_node/state"
	{
		cat <<CONF
[daemon]
state-dir = $SCRATCH/$_node/state

[portal lo]
address = $_me
port = $HA_PORT

[ha HA1]
uuid = $HA_UUID
path = $(ha_replica "$_node")
size = $HA_SIZE
priority = $_prio
initial-sync = clear
secret-file = $_secret
sync = $_me:$HA_SYNC_PORT $_peer:$HA_SYNC_PORT
heartbeat = $_me:$HA_HB_PORT $_peer:$HA_HB_PORT
CONF
		if [ "${HA_WITNESS:-}" = yes ]; then
			echo "failover = majority"
			echo "witness = $HA_ADDR_WITNESS:$HA_WITNESS_PORT"
			echo "witness-secret-file = $SCRATCH/witness.secret"
		fi
		for _kv in "$@"; do
			echo "${_kv%%=*} = ${_kv#*=}"
		done
		cat <<CONF

[target ha]
[lun ha:0]
ha = HA1
CONF
	} >"$SCRATCH/$_node/twinsand.conf"
	chmod 600 "$SCRATCH/$_node/twinsand.conf"
}

# ha_new_secret FILE: a fresh random secret, mode 600.
ha_new_secret()
{
	head -c 24 /dev/urandom | base64 >"$1"
	chmod 600 "$1"
}

ha_setup()
{
	[ "$TEST_TARGET" = twinsand ] || skip "HA is twinsand's own"
	[ -x "$TWINSAND" ] || fail "$TWINSAND is not built (make BUILD=san)"
	HA_SIZE=$1
	shift
	HA_PORT=$(_ha_ports)
	HA_SYNC_PORT=$((HA_PORT + 1))
	HA_HB_PORT=$((HA_PORT + 2))
	HA_WITNESS_PORT=$((HA_PORT + 3))
	HA_UUID=$(cat /proc/sys/kernel/random/uuid)
	mkdir -p "$SCRATCH/A" "$SCRATCH/B"
	ha_new_secret "$SCRATCH/ha1.secret"
	ha_new_secret "$SCRATCH/witness.secret"
	ha_write_config A primary "$SCRATCH/ha1.secret" "$@"
	ha_write_config B secondary "$SCRATCH/ha1.secret" "$@"
}

ha_start()
{
	HA_STARTS=$((HA_STARTS + 1))
	_log=$SCRATCH/$1/daemon.$HA_STARTS.log
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
		"$TWINSAND" --config "$SCRATCH/$1/twinsand.conf" --api-socket "$SCRATCH/$1/api.sock" >"$_log" 2>&1 &
	_pid=$!
	if [ "$1" = A ]; then HA_PID_A=$_pid HA_LOG_A=$_log; else HA_PID_B=$_pid HA_LOG_B=$_log; fi
	_tries=0
	until grep -qs ready "$_log"; do
		kill -0 "$_pid" 2>/dev/null || {
			wait "$_pid" && _st=0 || _st=$?
			fail "node $1 exited (status $_st) before it was ready: $(tail -n 5 "$_log")"
		}
		_tries=$((_tries + 1))
		[ $_tries -lt 300 ] || fail "node $1 was not ready within 30 s"
		sleep 0.1
	done
}

_ha_pid() { [ "$1" = A ] && echo "$HA_PID_A" || echo "$HA_PID_B"; }
_ha_forget() { if [ "$1" = A ]; then HA_PID_A=""; else HA_PID_B=""; fi; }

ha_kill()
{
	_pid=$(_ha_pid "$1")
	[ -n "$_pid" ] || return 0
	kill -KILL "$_pid" 2>/dev/null
	wait "$_pid" 2>/dev/null || true
	_ha_forget "$1"
}

ha_stop()
{
	_pid=$(_ha_pid "$1")
	[ -n "$_pid" ] || return 0
	kill -TERM "$_pid"
	_tries=0
	while kill -0 "$_pid" 2>/dev/null; do
		_tries=$((_tries + 1))
		[ $_tries -lt 150 ] || fail "node $1 did not stop within 15 s of SIGTERM"
		sleep 0.1
	done
	wait "$_pid" && _st=0 || _st=$?
	_ha_forget "$1"
	_sanitizer_report "$(ha_log "$1")" && fail "node $1: the sanitizers reported errors (see its log)"
	[ $_st = 0 ] || fail "node $1 exited with status $_st after SIGTERM"
	return 0
}

# Fails if a running node died or its sanitizers spoke.
ha_check()
{
	for _n in "$@"; do
		_sanitizer_report "$(ha_log "$_n")" && fail "node $_n: the sanitizers reported errors"
		kill -0 "$(_ha_pid "$_n")" 2>/dev/null || fail "node $_n died"
	done
	return 0
}

# The last state HA1 reported on a node ("synchronized", "not synchronized: ...").
ha_state() { grep -o 'HA1: state .*' "$(ha_log "$1")" | tail -n 1 | sed 's/^HA1: state //'; }

ha_wait_state()
{
	_deadline=$(( $(date +%s) + HA_STATE_TIMEOUT ))
	until [ "$(ha_state "$1")" = "$2" ]; do
		[ "$(date +%s)" -lt $_deadline ] ||
			fail "node $1 not '$2' within $HA_STATE_TIMEOUT s (last state: '$(ha_state "$1")')"
		ha_check "$1"
		sleep 0.2
	done
}

ha_replicas_equal() { cmp -s "$(ha_replica A)" "$(ha_replica B)"; }

# Starts both nodes and waits until both say HA1 is synchronized.
ha_pair_up()
{
	ha_start A
	ha_start B
	ha_wait_state A synchronized
	ha_wait_state B synchronized
}

# ha_io NODE COMMAND...: qemu-io commands through that node; true if every one ran and
# every pattern matched.  The output is in $SCRATCH/io.out.
ha_io()
{
	_node=$1
	shift
	_args=()
	for _c in "$@"; do _args+=(-c "$_c"); done
	client qemu-io -f raw "${_args[@]}" "$(ha_url "$_node")" >"$SCRATCH/io.out" 2>&1 &&
		! grep -qiE 'verification failed|error' "$SCRATCH/io.out"
}

# ha_io_retry NODE COMMAND...: ha_io until it succeeds, for a node that may answer NOT
# READY a while (taking over from a lost partner); fails after 30 s.
ha_io_retry()
{
	_deadline=$(( $(date +%s) + 30 ))
	until ha_io "$@"; do
		[ "$(date +%s)" -lt $_deadline ] || fail "no I/O through $1 for 30 s: $(cat "$SCRATCH/io.out")"
		ha_check "$1"
		sleep 0.5
	done
}

# The witness of HA_WITNESS=yes, on a third loopback address; its log appends to
# $SCRATCH/witness.log.
ha_witness_start()
{
	_witness=${TWINWITNESS:-$(dirname "$TWINSAND")/twinwitness}
	[ -x "$_witness" ] || fail "$_witness is not built"
	mkdir -p "$SCRATCH/witness"
	_start=$(grep -c ready "$SCRATCH/witness.log" 2>/dev/null || true)
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} "$_witness" --listen "$HA_ADDR_WITNESS:$HA_WITNESS_PORT" \
		--secret-file "$SCRATCH/witness.secret" --state-dir "$SCRATCH/witness" >>"$SCRATCH/witness.log" 2>&1 &
	HA_PID_W=$!
	_tries=0
	until [ "$(grep -c ready "$SCRATCH/witness.log" || true)" -gt "${_start:-0}" ]; do
		kill -0 "$HA_PID_W" 2>/dev/null || fail "the witness exited: $(tail -n 5 "$SCRATCH/witness.log")"
		_tries=$((_tries + 1))
		[ $_tries -lt 300 ] || fail "the witness was not ready within 30 s"
		sleep 0.1
	done
}

ha_witness_kill()
{
	[ -n "$HA_PID_W" ] || return 0
	kill -KILL "$HA_PID_W" 2>/dev/null
	wait "$HA_PID_W" 2>/dev/null || true
	HA_PID_W=""
}

# ha_wait_log A|B PATTERN: polls the node's log for an extended regular expression.
ha_wait_log()
{
	_deadline=$(( $(date +%s) + HA_STATE_TIMEOUT ))
	until grep -qE "$2" "$(ha_log "$1")"; do
		[ "$(date +%s)" -lt $_deadline ] || fail "node $1 did not log /$2/ within $HA_STATE_TIMEOUT s"
		ha_check "$1"
		sleep 0.2
	done
}

ha_status()
{
	client "$(dirname "$TWINSAND")/twinctl" --server "unix:$SCRATCH/$1/api.sock" --json device status HA1 ||
		fail "twinctl device status through $1 failed"
}
