#!/bin/bash
# A node killed with -9 while its partner goes on serving comes back and receives only
# what changed meanwhile: after N MiB written alone, the resync moves at most 1.1 x N
# (rounded up to whole extents), and the replicas end bit-identical.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/ha.sh"
requires qemu-io

N_MIB=6
ha_setup 64M extent-size=1M
ha_pair_up

# The resync tally A has reported so far (bytes sent, cumulative since it started).
tally() { grep -o 'resync tally sent [0-9]*' "$(ha_log A)" | tail -n 1 | grep -o '[0-9]*$' || echo 0; }
before=$(tally)

ha_kill B
# Until A notices its partner is gone and goes on alone, it may answer NOT READY.
ha_io_retry A "write -P 0x6b 5M ${N_MIB}M"

ha_start B
ha_wait_state B synchronized
ha_wait_state A synchronized
after=$(tally)
moved=$(( after - before ))
# 5M..5M+N: whole extents, so N MiB exactly.
limit=$(( N_MIB * 1024 * 1024 * 11 / 10 ))
echo "resync tally: $moved bytes moved for $N_MIB MiB written (limit $limit)"
[ "$moved" -gt 0 ] || fail "no resync tally reported (before $before, after $after)"
[ "$moved" -le "$limit" ] || fail "resync moved $moved bytes for $N_MIB MiB written"
# The restarted node's status says the same: all it received since its start.
received=$(ha_status B | grep -o '"received_bytes":[0-9]*' | cut -d: -f2)
[ "$received" = "$moved" ] || fail "B's status says it received '$received' bytes, A's log says $moved were sent"
ha_io B "read -P 0x6b 5M ${N_MIB}M" || fail "B lacks what was written while it was down: $(cat "$SCRATCH/io.out")"
ha_stop B
ha_stop A
ha_replicas_equal || fail "the replicas differ after the resync: $(cmp "$(ha_replica A)" "$(ha_replica B)")"
