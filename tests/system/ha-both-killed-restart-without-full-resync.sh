#!/bin/bash
# A blackout of both nodes (kill -9 of both while writes went on) does not force a full
# resync: after both restart they are synchronized again having moved only the few
# extents that may have been in flight, and the data written before is there.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/ha.sh"
requires qemu-io

SIZE_MIB=64
ha_setup ${SIZE_MIB}M extent-size=1M
ha_pair_up
ha_io A "write -P 0x1d 3M 2M" || fail "write through A: $(cat "$SCRATCH/io.out")"
ha_io B "write -P 0x2e 9M 1M" || fail "write through B: $(cat "$SCRATCH/io.out")"
ha_kill A
ha_kill B

ha_pair_up
# Each node's tally counts only this run (the logs are new).
moved=0
for n in A B; do
	t=$(grep -o 'resync tally sent [0-9]* received [0-9]*' "$(ha_log $n)" | tail -n 1 |
	    awk '{ print $4 + $6 }')
	moved=$(( moved + ${t:-0} ))
done
echo "resync after the blackout: $moved bytes (device $SIZE_MIB MiB)"
# Both nodes count a transfer (one sends, one receives): a full resync would be 2 x size.
[ "$moved" -le $(( 2 * 8 * 1024 * 1024 )) ] || fail "resync after the blackout moved $moved bytes"
ha_io B "read -P 0x1d 3M 2M" "read -P 0x2e 9M 1M" ||
	fail "data written before the blackout is lost: $(cat "$SCRATCH/io.out")"
ha_stop B
ha_stop A
ha_replicas_equal || fail "the replicas differ: $(cmp "$(ha_replica A)" "$(ha_replica B)")"
