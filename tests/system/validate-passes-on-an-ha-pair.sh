#!/bin/bash
# twinctl validate, given one path through each node of a synchronized HA pair, passes
# every check: one disk with one identity through both nodes, each node's port group
# active/optimized, the persistent reservation checks with node 1's initiator on node A
# and node 2's on node B (a registration or reservation made through one node is enforced
# on the other), arbitration, and latency (writes included, restored) through both; both
# replicas are still equal afterwards.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/ha.sh"
. "$TOP/tests/lib/twinctl.sh"
[ -x "$TWINCTL" ] || fail "$TWINCTL is not built (make BUILD=san)"

ha_setup 16M
ha_pair_up

client "$TWINCTL" validate "$(ha_url A)" "$(ha_url B)" --write --samples 50 >"$SCRATCH/out" 2>"$SCRATCH/err" &&
	rc=0 || rc=$?
[ $rc = 0 ] || fail "validate exited $rc: $(cat "$SCRATCH/out" "$SCRATCH/err")"
grep -qx '13 passed, 0 failed, 0 skipped: a valid shared disk for a failover cluster' "$SCRATCH/out" ||
	fail "summary line: $(tail -n 1 "$SCRATCH/out")"
grep -qE "^PASS  alua .*$HA_ADDR_A:$HA_PORT: group 1 active/optimized, $HA_ADDR_B:$HA_PORT: group 2 active/optimized" \
	"$SCRATCH/out" || fail "each node's group is not reported: $(grep alua "$SCRATCH/out")"
ha_check A
ha_check B
ha_stop A
ha_stop B
ha_replicas_equal || fail "the replicas differ after validate"
