#!/bin/bash
# On a real HA pair: device status --watch ends once HA1 is synchronized; device list,
# device status and their --json agree on the state; the failover strategy changes on
# the live device (majority refused without a witness); verify --wait finds identical
# replicas; resolving a split brain that is not there fails with a reason; twinctl events
# reports the partner's loss.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/ha.sh"
. "$TOP/tests/lib/twinctl.sh"
needs_api
requires jq
ha_api_nodes
HA_PORTS="3500 3519"

ha_setup 8M
ha_start A
ha_start B
CTL_SOCKET=$SCRATCH/A/api.sock
export CTL_SOCKET

expect_exit 0 device status HA1 --watch
tail -n 1 "$SCRATCH/out" | grep -qx "HA1 synchronized" || fail "--watch did not end synchronized: $(cat "$SCRATCH/out")"
ha_wait_state B synchronized

expect_exit 0 device list
grep -qE '^HA1 +primary +synchronized +ok +connected ' "$SCRATCH/out" || fail "device list: $(cat "$SCRATCH/out")"
CTL_SOCKET=$SCRATCH/B/api.sock expect_exit 0 device list
grep -qE '^HA1 +secondary +synchronized +ok +connected ' "$SCRATCH/out" || fail "device list on B: $(cat "$SCRATCH/out")"

expect_exit 0 --json device status HA1
jq -e . "$SCRATCH/out" >"$SCRATCH/st.json" || fail "device status --json does not parse"
expect_exit 0 device status HA1
for f in state access failover role; do
	v=$(jq -r ".$f" "$SCRATCH/st.json")
	grep -qE "^$f: +$v" "$SCRATCH/out" || fail "human $f differs from JSON '$v': $(cat "$SCRATCH/out")"
done
[ "$(jq -r .size "$SCRATCH/st.json")" = $((8 << 20)) ] || fail "JSON size"
[ "$(jq -r '.links | length' "$SCRATCH/st.json")" = 2 ] || fail "JSON links: $(jq -c .links "$SCRATCH/st.json")"
grep -qE '^size: +8\.0 MiB$' "$SCRATCH/out" || fail "human size: $(cat "$SCRATCH/out")"

expect_exit 0 device set HA1 failover=heartbeat
expect_exit 1 device set HA1 failover=majority
grep -q "witness" "$SCRATCH/err" || fail "majority without a witness: $(cat "$SCRATCH/err")"

expect_exit 0 device verify HA1 --wait
grep -q "HA1: verify finished: the replicas are identical" "$SCRATCH/out" || fail "verify: $(cat "$SCRATCH/out")"

expect_exit 1 device resolve-split-brain HA1 --keep local
[ -s "$SCRATCH/err" ] || fail "resolving no split brain gave no reason"

# Events: the partner's loss reaches a subscriber.
TWINCTL_SERVER=unix:$CTL_SOCKET "$TWINCTL" events >"$SCRATCH/events" 2>"$SCRATCH/events.err" &
EVENTS_PID=$!
_tries=0
until grep -q "api: uid [0-9]* subscribed to events" "$(ha_log A)"; do
	_tries=$((_tries + 1))
	[ $_tries -lt 100 ] || fail "twinctl events did not subscribe: $(cat "$SCRATCH/events.err")"
	sleep 0.1
done
ha_stop B
_tries=0
until grep -q '"event":"partner_lost"' "$SCRATCH/events"; do
	_tries=$((_tries + 1))
	[ $_tries -lt 100 ] || fail "no partner_lost event: $(cat "$SCRATCH/events" "$SCRATCH/events.err")"
	sleep 0.1
done
jq -s -e 'map(select(.event == "partner_lost")) | length > 0 and all(.device == "HA1" and (.time | type) == "number")' \
	"$SCRATCH/events" >/dev/null || fail "partner_lost event fields: $(cat "$SCRATCH/events")"
ha_stop A
wait $EVENTS_PID && rc=0 || rc=$?
[ $rc = 3 ] || fail "twinctl events exited $rc when the daemon stopped, not 3"
exit 0
