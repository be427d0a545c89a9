# Shared by tests/system/twinctl-*.sh (sourced after twinsand.sh): the twinctl under test
# and a daemon whose management API listens on a socket in the scratch directory.
#
#   needs_api                 skip unless twinsand has the management API
#   api_serve_disk NAME SIZE  serve_disk with the API on $API_SOCKET
#   ctl ARGS...               twinctl against $API_SOCKET: stdout in $SCRATCH/out, stderr in
#                             $SCRATCH/err, returns twinctl's exit status
#   expect_exit N ARGS...     ctl, failing the test unless it exits with N
#   api_serve_config          a daemon with a configuration file and the API (see below)
#   api_node_start DIR ADDRESS  the same daemon in DIR, one node of a pair (see below)
#   ha_api_nodes              make ha_start (tests/lib/ha.sh) start nodes with their API on
#                             $SCRATCH/A/api.sock and $SCRATCH/B/api.sock
#
# Environment: TWINCTL, the program to test (default: the sanitizer build).
TWINCTL=${TWINCTL:-$TOP/build/san/twinctl}
API_SOCKET=$SCRATCH/run/api.sock

needs_api()
{
	needs_twinsand
	[ -x "$TWINCTL" ] || fail "$TWINCTL is not built (make BUILD=san)"
	[ -x "$TWINSAND" ] || fail "$TWINSAND is not built (make BUILD=san)"
	"$TWINSAND" --help 2>&1 | grep -q -- --api-socket || skip "this twinsand has no management API (--api-socket) yet"
}

api_serve_disk() { serve_disk "$@" --api-socket "$API_SOCKET"; }

ctl()
{
	_sock=${CTL_SOCKET:-$API_SOCKET}
	TWINCTL_SERVER=unix:$_sock client "$TWINCTL" "$@" >"$SCRATCH/out" 2>"$SCRATCH/err"
}

expect_exit()
{
	_want=$1
	shift
	ctl "$@" && _got=0 || _got=$?
	[ "$_got" = "$_want" ] ||
		fail "twinctl $* exited $_got, not $_want; stdout: $(cat "$SCRATCH/out"); stderr: $(cat "$SCRATCH/err")"
	return 0
}

# The nodes get --api-socket next to their configuration: a wrapper execs the daemon, so
# its pid is the daemon's.
ha_api_nodes()
{
	cat >"$SCRATCH/twinsand-api" <<WRAP
#!/bin/sh
# usage as twinsand --config FILE
exec "$TWINSAND" "\$@" --api-socket "\$(dirname "\$2")/api.sock"
WRAP
	chmod +x "$SCRATCH/twinsand-api"
	TWINSAND=$SCRATCH/twinsand-api
}

# api_serve_config: a daemon in configuration mode for the create/delete commands: portal
# "lo" on 127.0.0.1:$PORT, target "base" with an 8M LUN in the main file
# $SCRATCH/twinsand.conf, state in $SCRATCH/state, managed configuration at $MANAGED, the
# API on $API_SOCKET.
api_serve_config()
{
	PORT=$(free_port)
	MANAGED=$SCRATCH/state/managed.conf
	API_SOCKET=$SCRATCH/api.sock
	api_node_start "$SCRATCH" 127.0.0.1
}

# api_node_start DIR ADDRESS [OPTIONS...]: the same daemon in DIR (one node of a pair made
# through twinctl): DIR/twinsand.conf, DIR/state, its API on DIR/api.sock, its portal on
# ADDRESS:$PORT (set PORT first); sets DAEMON_PID.
api_node_start()
{
	mkdir -p "$1/state"
	cat >"$1/twinsand.conf" <<CONF
# the administrator's own comment
[daemon]
state-dir = $1/state
[portal lo]
address = $2
port = $PORT
[target base]
[lun base:0]
path = $1/base.img
size = 8M
CONF
	daemon_start --config "$1/twinsand.conf" --api-socket "$1/api.sock" "${@:3}"
}

# api_pair_start: the two nodes of a pair made through twinctl, B on 127.0.0.2 and A on
# 127.0.0.1 (api_node_start, one free PORT); sets PID_A and PID_B and kills both on exit,
# whichever the test stopped itself.  on A|B EXIT-CODE ARGS...: twinctl through that node.
api_pair_start()
{
	PORT=$(free_port)
	trap '_rc=$?; set +e; kill -KILL $PID_A $PID_B 2>/dev/null; (exit $_rc); _cleanup' EXIT
	api_node_start "$SCRATCH/B" 127.0.0.2
	PID_B=$DAEMON_PID
	api_node_start "$SCRATCH/A" 127.0.0.1
	PID_A=$DAEMON_PID
}
on() { _node=$1; shift; CTL_SOCKET=$SCRATCH/$_node/api.sock expect_exit "$@"; }
