#!/bin/bash
# Active-active: what a client writes through one node of a synchronized pair it reads
# back through the other, in both directions, and both replicas hold it.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/ha.sh"
requires qemu-io

ha_setup 16M
ha_pair_up

# io NODE COMMANDS...: fails the test unless they all succeed through that node.
io() { ha_io "$@" || fail "through $1: $(cat "$SCRATCH/io.out")"; }

io A "write -P 0xa5 0 4M" "write -P 0x3c 12M 512"
io B "read -P 0xa5 0 4M" "read -P 0x3c 12M 512" "read -P 0 4M 8M"
io B "write -P 0x5a 4M 1M" "write -P 0xc3 1M 4k"
io A "read -P 0x5a 4M 1M" "read -P 0xc3 1M 4k" "read -P 0xa5 0 1M"
ha_check A B
ha_stop B
ha_stop A
ha_replicas_equal || fail "the replicas differ: $(cmp "$(ha_replica A)" "$(ha_replica B)")"
