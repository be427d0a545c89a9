#!/bin/bash
# Heartbeat failover: when the primary dies (sync and heartbeat links go silent at once),
# the secondary goes on alone and serves; the primary, restarted, gets back what was
# written meanwhile and both serve it again.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/ha.sh"
requires qemu-io

ha_setup 16M
ha_pair_up
ha_kill A
ha_io_retry B "write -P 0x5e 2M 2M" "read -P 0x5e 2M 2M"
ha_start A
ha_wait_state A synchronized
ha_wait_state B synchronized
ha_io A "read -P 0x5e 2M 2M" || fail "A lacks what B wrote alone: $(cat "$SCRATCH/io.out")"
ha_check A B
ha_stop A
ha_stop B
ha_replicas_equal || fail "the replicas differ: $(cmp "$(ha_replica A)" "$(ha_replica B)")"
