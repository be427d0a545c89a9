#!/bin/bash
# INQUIRY describes a direct-access disk, and the unit serial number (VPD 0x80) and device
# identifiers (VPD 0x83) read the same from two separate sessions and two initiators.
. "$(dirname "$0")/../lib/twinsand.sh"
requires iscsi-inq

serve_disk inquiry 64M

client iscsi-inq "$URL" >"$SCRATCH/std" || fail "standard INQUIRY failed"
grep -q '^Peripheral Device Type:DIRECT_ACCESS' "$SCRATCH/std" || fail "not a direct-access device"
grep -q '^Vendor:..*' "$SCRATCH/std" || fail "no vendor identification"

identity()
{
	client iscsi-inq -i "$1" -e 1 -c 128 "$URL" || fail "VPD 0x80 failed"
	client iscsi-inq -i "$1" -e 1 -c 131 "$URL" || fail "VPD 0x83 failed"
}
identity iqn.2026-11.org.twinsan.test:first >"$SCRATCH/id1"
identity iqn.2026-11.org.twinsan.test:second >"$SCRATCH/id2"
grep -q '^Unit Serial Number:\[ *[^] ]' "$SCRATCH/id1" || fail "empty unit serial number"
grep -q '^Designator Type:(3) NAA' "$SCRATCH/id1" || fail "no NAA designator in VPD 0x83"
cmp -s "$SCRATCH/id1" "$SCRATCH/id2" || fail "identity differs between sessions: $(diff "$SCRATCH/id1" "$SCRATCH/id2")"
daemon_stop
