#!/bin/bash
# Bad command lines exit 2 with a message naming what is wrong (and send nothing); an
# unknown device is an operation failure (1); no daemon at the socket is exit 3.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/twinctl.sh"
needs_api
TEST_PORTS="3500 3519"

# bad ARGS... -- TEXT: exit 2 and stderr containing TEXT.
bad()
{
	_args=()
	while [ "$1" != -- ]; do _args+=("$1"); shift; done
	expect_exit 2 "${_args[@]}"
	grep -qF -- "$2" "$SCRATCH/err" || fail "twinctl ${_args[*]}: stderr lacks '$2': $(cat "$SCRATCH/err")"
}

api_serve_disk args 16M
bad -- "usage: twinctl"
bad frobnicate -- "unknown command 'frobnicate'"
bad device -- "unknown command 'device'"
bad device status -- "missing NAME"
bad device status HA1 extra -- "unexpected argument 'extra'"
bad device status HA1 --wacth -- "unknown option '--wacth'"
bad device status HA1 --watch=yes -- "--watch takes no value"
bad device resolve-split-brain HA1 -- "--keep local|partner is required"
bad device resolve-split-brain HA1 --keep -- "--keep needs a value"
bad device resolve-split-brain HA1 --keep mine -- "--keep 'mine': say local or partner"
bad device set HA1 speed=fast -- "unknown setting 'speed=fast'"
bad device set HA1 failover=coin -- "failover 'coin': say heartbeat or majority"
bad --server -- "--server needs a value"
bad --server 'host:port' status -- "neither unix:PATH nor HOST:PORT"
bad --server unknown-saved status -- "no saved server named 'unknown-saved'"
bad server add 'a b' unix:/x -- "bad name 'a b'"
bad server add lab unix:relative -- "unix:/ABSOLUTE/PATH"

# Help is not an error.
expect_exit 0 --help
grep -q "exit status: 0 done, 1 the operation failed, 2 usage error, 3 the server cannot be reached" "$SCRATCH/out" ||
	fail "--help does not document the exit codes"
expect_exit 0 device verify --help
grep -q "usage: twinctl .*device verify NAME \[--wait\]" "$SCRATCH/out" || fail "per-command help: $(cat "$SCRATCH/out")"

expect_exit 1 device status HA9
grep -q 'no device named "HA9"' "$SCRATCH/err" || fail "unknown device: $(cat "$SCRATCH/err")"
expect_exit 1 device verify HA9

CTL_SOCKET=$SCRATCH/nothing.sock expect_exit 3 status
grep -q "cannot reach twinsand at $SCRATCH/nothing.sock" "$SCRATCH/err" || fail "unreachable: $(cat "$SCRATCH/err")"
HOME=$SCRATCH/home XDG_CONFIG_HOME= expect_exit 1 server remove never-saved
grep -q "no saved server named 'never-saved'" "$SCRATCH/err" || fail "server remove: $(cat "$SCRATCH/err")"

daemon_check
daemon_stop
exit 0
