#!/bin/bash
# An HA device is made on both nodes or on neither: when the partner is down, when it is
# reached over TCP with a wrong admin secret, or when it refuses the device (its replica is
# a LUN's file there), or when it fails to make it (its link port is taken), twinctl device
# create --ha fails naming the partner and neither node's managed configuration, files nor
# what it serves change.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/twinctl.sh"
requires python3
needs_api
TEST_PORTS="3550 3576"

PORT=$(free_port)
# The test stops only the last node started by itself; the other goes too, whatever happens.
trap '_rc=$?; set +e; kill -KILL $PID_A $PID_B $BUSY 2>/dev/null; (exit $_rc); _cleanup' EXIT
api_node_start "$SCRATCH/A" 127.0.0.1
PID_A=$DAEMON_PID

# create_ha EXIT PATTERN PARTNER [OPTIONS]: device create --ha on A exits EXIT saying PATTERN
# (B's replica: $PARTNER_PATH, default B/ha1.img) and leaves nothing on A.
create_ha()
{
	CTL_SOCKET=$SCRATCH/A/api.sock expect_exit "$1" device create ha1 --ha --partner "$3" "${@:4}" \
		--path "$SCRATCH/A/ha1.img" --partner-path "${PARTNER_PATH:-$SCRATCH/B/ha1.img}" --size 16M --priority primary \
		--initial-sync clear --sync 127.0.0.1:${SYNC_PORT:-$((PORT + 1))} 127.0.0.2:${SYNC_PORT:-$((PORT + 1))}
	grep -q -- "$2" "$SCRATCH/err" || fail "device create --ha said: $(cat "$SCRATCH/err"), not /$2/"
	[ -e "$SCRATCH/A/state/managed.conf" ] && fail "A kept something: $(cat "$SCRATCH/A/state/managed.conf")"
	[ -e "$SCRATCH/A/ha1.img" ] && fail "A made the replica file"
	CTL_SOCKET=$SCRATCH/A/api.sock expect_exit 0 device list
	grep -q '^no devices$' "$SCRATCH/out" || fail "A serves a device: $(cat "$SCRATCH/out")"
}

# The partner is down.
create_ha 3 "the partner unix:$SCRATCH/B/api.sock refused or cannot be reached; nothing was created" \
	"unix:$SCRATCH/B/api.sock"

# The partner is up but over TCP with another admin secret.
API_PORT=$((PORT + 3))
api_node_start "$SCRATCH/B" 127.0.0.2 --api-listen 127.0.0.2:$API_PORT
PID_B=$DAEMON_PID
printf 'not-the-admin-secret\n' >"$SCRATCH/wrong.secret"
chmod 600 "$SCRATCH/wrong.secret"
create_ha 3 "refused or cannot be reached; nothing was created" 127.0.0.2:$API_PORT \
	--partner-secret-file "$SCRATCH/wrong.secret"

# The partner refuses the device: the replica file asked for is a LUN's there.
CTL_SOCKET=$SCRATCH/B/api.sock expect_exit 0 target create other
cp "$SCRATCH/B/state/managed.conf" "$SCRATCH/B.before"
PARTNER_PATH=$SCRATCH/B/base.img create_ha 1 "is already the replica of \[ha ha1\]" "unix:$SCRATCH/B/api.sock"
cmp -s "$SCRATCH/B/state/managed.conf" "$SCRATCH/B.before" || fail "B's managed configuration changed"
CTL_SOCKET=$SCRATCH/B/api.sock expect_exit 0 device list
grep -q '^no devices$' "$SCRATCH/out" || fail "B serves a device: $(cat "$SCRATCH/out")"

# The partner cannot listen on its end of the sync link (the port is taken): it fails to
# make its side after the check, and leaves neither files nor a device behind.
BUSY_PORT=$((PORT + 2))
python3 -c "import socket, time
s = socket.socket(); s.bind(('127.0.0.2', $BUSY_PORT)); s.listen(1); open('$SCRATCH/busy', 'w').close()
time.sleep(60)" &
BUSY=$!
until [ -e "$SCRATCH/busy" ]; do
	kill -0 $BUSY 2>/dev/null || skip "port $BUSY_PORT on 127.0.0.2 is in use"
	sleep 0.1
done
SYNC_PORT=$BUSY_PORT create_ha 1 "the partner unix:$SCRATCH/B/api.sock failed to create its side; nothing was created" \
	"unix:$SCRATCH/B/api.sock"
grep -q "cannot listen: Address already in use" "$DAEMON_LOG" || fail "B did not log why it failed"
[ -e "$SCRATCH/B/ha1.img" ] || [ -e "$SCRATCH/B/state/ha-ha1.meta" ] && fail "B left the replica or metadata behind"
cmp -s "$SCRATCH/B/state/managed.conf" "$SCRATCH/B.before" || fail "B's managed configuration changed"
CTL_SOCKET=$SCRATCH/B/api.sock expect_exit 0 device list
grep -q '^no devices$' "$SCRATCH/out" || fail "B lists a device: $(cat "$SCRATCH/out")"
kill $BUSY

DAEMON_PID=$PID_A daemon_stop
DAEMON_PID=$PID_B daemon_stop
exit 0
