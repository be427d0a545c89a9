#!/bin/bash
# COMPARE AND WRITE is atomic across the two nodes of a synchronized pair, as a cluster's
# disk lock needs: two initiators, one through each node, increment one counter with
# read + COMPARE AND WRITE at the same time (tests/tools/caw-counter); no increment is
# lost, so the counter ends at the sum of both, on both replicas.  (With each node
# comparing against its own replica, an increment through one node could land between
# the other's compare and write, and both would win.)
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/ha.sh"
CAW_COUNTER=${CAW_COUNTER:-$(dirname "$TWINSAND")/tests/caw-counter}
[ -x "$CAW_COUNTER" ] || fail "$CAW_COUNTER is not built (make BUILD=san units)"

COUNT=300
LBA=4096
ha_setup 16M
ha_pair_up

client "$CAW_COUNTER" iqn.2026-11.org.twinsan.test:counter-a "$(ha_url A)" $LBA $COUNT >"$SCRATCH/a.out" 2>&1 &
pid_a=$!
client "$CAW_COUNTER" iqn.2026-11.org.twinsan.test:counter-b "$(ha_url B)" $LBA $COUNT >"$SCRATCH/b.out" 2>&1 &
pid_b=$!
wait $pid_a || fail "through A: $(cat "$SCRATCH/a.out")"
wait $pid_b || fail "through B: $(cat "$SCRATCH/b.out")"
cat "$SCRATCH/a.out" "$SCRATCH/b.out"
# Both raced for real: each had to compare again after the other won at least once.
grep -q ' 0 miscompares' "$SCRATCH/a.out" "$SCRATCH/b.out" &&
	echo "note: one side never miscompared; the race was not exercised this time"

ha_check A B
ha_stop B
ha_stop A
ha_replicas_equal || fail "the replicas differ: $(cmp "$(ha_replica A)" "$(ha_replica B)")"
counter=$(od -An -tx1 -j $((LBA * 512)) -N 8 "$(ha_replica A)" | tr -d ' \n')
[ $((16#$counter)) = $((2 * COUNT)) ] ||
	fail "the counter is $((16#$counter)), not $((2 * COUNT)): increments were lost"
