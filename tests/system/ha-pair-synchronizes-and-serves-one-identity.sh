#!/bin/bash
# Two nodes with the same HA device meet, the initial 'clear' sync makes both replicas
# zero and synchronized, and both nodes present one disk: the same unit serial number
# (VPD 0x80), device identifiers (VPD 0x83) and capacity.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/ha.sh"
requires iscsi-inq iscsi-readcapacity16

ha_setup 16M
# Something on B's replica that the clear sync must wipe.
head -c 1M /dev/urandom >"$(ha_replica B)"
truncate -s 16M "$(ha_replica B)"
ha_pair_up
cmp -s -n $((16 << 20)) "$(ha_replica A)" /dev/zero || fail "A's replica is not zero after a clear sync"
ha_replicas_equal || fail "replicas differ after the initial sync"

# The disk's identity through one node: serial number, the logical unit's designators
# (the target port ones name each node's own port) and capacity.
identity()
{
	client iscsi-inq -e 1 -c 128 "$1" || fail "VPD 0x80 through $1"
	client iscsi-inq -e 1 -c 131 "$1" >"$SCRATCH/vpd83" || fail "VPD 0x83 through $1"
	awk '/^DEVICE DESIGNATOR/ { lu = 0 } /^Association:\(0\) LOGICAL_UNIT/ { lu = 1 }
	     lu && /^Designator/' "$SCRATCH/vpd83"
	client iscsi-readcapacity16 "$1" || fail "READ CAPACITY through $1"
}
identity "$(ha_url A)" >"$SCRATCH/id.A"
identity "$(ha_url B)" >"$SCRATCH/id.B"
grep -q '^Unit Serial Number:\[ *[^] ]' "$SCRATCH/id.A" || fail "empty unit serial number: $(cat "$SCRATCH/id.A")"
grep -q '^Designator Type:(3) NAA' "$SCRATCH/id.A" || fail "no NAA designator: $(cat "$SCRATCH/id.A")"
grep -q '^RETURNED LOGICAL BLOCK ADDRESS:32767$' "$SCRATCH/id.A" || fail "capacity: $(cat "$SCRATCH/id.A")"
cmp -s "$SCRATCH/id.A" "$SCRATCH/id.B" || fail "the nodes present different disks: $(diff "$SCRATCH/id.A" "$SCRATCH/id.B")"
ha_stop B
ha_stop A
