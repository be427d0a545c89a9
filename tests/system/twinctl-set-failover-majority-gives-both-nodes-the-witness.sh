#!/bin/bash
# twinctl device set NAME failover=majority --witness ADDR:PORT --witness-secret-file F
# --partner SERVER gives an HA device made by twinctl its witness on both nodes, live: both
# managed configurations keep the strategy and the witness, both nodes report majority,
# and when B dies A goes on only once the witness granted it the device.  Majority without
# a witness is refused and changes nothing; a restart keeps the witness.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/twinctl.sh"
requires python3
needs_api
TEST_PORTS="3600 3619"

PORT=$(free_port)
WPORT=$((PORT + 4))
trap '_rc=$?; set +e; kill -KILL $PID_A $PID_B $PID_W 2>/dev/null; (exit $_rc); _cleanup' EXIT
printf 'witness secret for the test\n' >"$SCRATCH/witness.secret"
chmod 600 "$SCRATCH/witness.secret"
WITNESS=${TWINWITNESS:-$(dirname "$TWINSAND")/twinwitness}
"$WITNESS" --listen 127.0.0.3:$WPORT --secret-file "$SCRATCH/witness.secret" --state-dir "$SCRATCH/witness" \
	>"$SCRATCH/witness.log" 2>&1 &
PID_W=$!
api_node_start "$SCRATCH/B" 127.0.0.2
PID_B=$DAEMON_PID
api_node_start "$SCRATCH/A" 127.0.0.1
PID_A=$DAEMON_PID
tries=0
until grep -q ready "$SCRATCH/witness.log"; do
	tries=$((tries + 1))
	[ $tries -lt 300 ] && kill -0 $PID_W 2>/dev/null || fail "the witness did not start: $(cat "$SCRATCH/witness.log")"
	sleep 0.1
done

on A 0 device create ha1 --ha --partner "unix:$SCRATCH/B/api.sock" \
	--path "$SCRATCH/A/ha1.img" --partner-path "$SCRATCH/B/ha1.img" --size 16M --priority primary \
	--initial-sync clear --failover heartbeat --sync 127.0.0.1:$((PORT + 1)) 127.0.0.2:$((PORT + 1))

cp "$SCRATCH/A/state/managed.conf" "$SCRATCH/A.before"
on A 1 device set ha1 failover=majority
grep -q 'majority without a witness' "$SCRATCH/err" || fail "majority without a witness said: $(cat "$SCRATCH/err")"
cmp -s "$SCRATCH/A/state/managed.conf" "$SCRATCH/A.before" || fail "a refused change changed A's managed configuration"
on A 2 device set ha1 failover=majority --witness 127.0.0.3:$WPORT
grep -q 'go together' "$SCRATCH/err" || fail "--witness without its secret said: $(cat "$SCRATCH/err")"

on A 0 device set ha1 failover=majority --witness 127.0.0.3:$WPORT --witness-secret-file "$SCRATCH/witness.secret" \
	--partner "unix:$SCRATCH/B/api.sock"
grep -q "^ha1: failover strategy is now majority on this node and on unix:$SCRATCH/B/api.sock$" "$SCRATCH/out" ||
	fail "device set said: $(cat "$SCRATCH/out")"
for n in A B; do
	grep -q '^failover = majority$' "$SCRATCH/$n/state/managed.conf" &&
		grep -q "^witness = 127.0.0.3:$WPORT$" "$SCRATCH/$n/state/managed.conf" ||
		fail "$n's managed configuration lacks the strategy or the witness: $(cat "$SCRATCH/$n/state/managed.conf")"
	on $n 0 --json device status ha1
	grep -q '"failover": *"majority"' "$SCRATCH/out" || fail "$n does not report majority: $(cat "$SCRATCH/out")"
done
grep -q 'witness secret for the test' "$DAEMON_LOG" "$SCRATCH/out" && fail "the witness secret was logged"

# A restart of A keeps the witness; then B dies and A serves on with the witness's vote.
DAEMON_PID=$PID_A daemon_stop
api_node_start "$SCRATCH/A" 127.0.0.1
PID_A=$DAEMON_PID
on A 0 --json device status ha1
grep -q '"failover": *"majority"' "$SCRATCH/out" || fail "A forgot majority over a restart: $(cat "$SCRATCH/out")"
tries=0
until CTL_SOCKET=$SCRATCH/A/api.sock ctl --json device status ha1 && grep -q '"partner_connected": *true' "$SCRATCH/out" &&
	grep -q '"state": *"synchronized"' "$SCRATCH/out"; do
	tries=$((tries + 1))
	[ $tries -lt 300 ] || fail "A did not meet B again: $(cat "$SCRATCH/out")"
	sleep 0.1
done
kill -KILL $PID_B
wait $PID_B 2>/dev/null || true
PID_B=""
tries=0
until grep -q "the witness granted this node's claim" "$DAEMON_LOG"; do
	tries=$((tries + 1))
	[ $tries -lt 300 ] || fail "A was not granted the device by the witness: $(tail -n 20 "$DAEMON_LOG")"
	sleep 0.1
done
DAEMON_PID=$PID_A daemon_stop
kill $PID_W
wait $PID_W || fail "the witness did not stop cleanly: $(tail -n 5 "$SCRATCH/witness.log")"
PID_W=""
exit 0
