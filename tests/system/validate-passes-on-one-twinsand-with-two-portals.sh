#!/bin/bash
# twinctl validate, run against one twinsand serving one LUN on two portals (two paths to
# one disk), passes every check: one disk with one identity on both paths, ALUA, the
# persistent reservation checks between two initiators over the two paths (PREEMPT AND
# ABORT included), arbitration, and read and (with --write) write latency; and it leaves
# the disk as it found it: no registration, and the data it wrote restored.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/twinctl.sh"
. "$TOP/tests/lib/pdu.sh"
requires cmp od timeout
needs_twinsand
[ -x "$TWINCTL" ] || fail "$TWINCTL is not built (make BUILD=san)"
TEST_PORTS=${TEST_PORTS:-3530 3539}

PORT=$(free_port)
IQN=iqn.2026-11.org.twinsan.test:validate
head -c 16M /dev/urandom >"$SCRATCH/disk.img"
cp "$SCRATCH/disk.img" "$SCRATCH/before.img"
daemon_start --portal 127.0.0.1:$PORT --portal 127.0.0.2:$PORT --target $IQN --lun "$SCRATCH/disk.img"
URL1=iscsi://127.0.0.1:$PORT/$IQN/0
URL2=iscsi://127.0.0.2:$PORT/$IQN/0

client "$TWINCTL" validate "$URL1" "$URL2" --write --samples 50 >"$SCRATCH/out" 2>"$SCRATCH/err" && rc=0 || rc=$?
[ $rc = 0 ] || fail "validate exited $rc: $(cat "$SCRATCH/out" "$SCRATCH/err")"
for check in paths identity alua pr-register pr-reserve pr-conflict pr-preempt pr-preempt-abort pr-release \
	pr-clear arbitration latency-read latency-write; do
	grep -qE "^PASS  $check " "$SCRATCH/out" || fail "check $check did not pass: $(cat "$SCRATCH/out")"
done
grep -qx '13 passed, 0 failed, 0 skipped: a valid shared disk for a failover cluster' "$SCRATCH/out" ||
	fail "summary line: $(tail -n 1 "$SCRATCH/out")"
grep -q "on 2 paths: 127.0.0.1:$PORT, 127.0.0.2:$PORT" "$SCRATCH/out" || fail "paths not listed: $(cat "$SCRATCH/out")"

# Nothing is left behind: a new session's READ KEYS and READ RESERVATION list nothing,
# and the disk holds exactly the data it held before.
pdu_connect 127.0.0.1 "$PORT"
pdu_login iqn.2026-11.org.twinsan.test:observer "$IQN"
pdu_clear_unit_attention 1
for sa in 00 01; do
	pdu_scsi c1 $((2 + 10#$sa)) 256 "5e $sa 00 00 00 00 00 01 00 00 00 00 00 00 00 00"
	pdu_recv || fail "no answer to PERSISTENT RESERVE IN $sa"
	[ "$(pdu_opcode)" = $((0x25)) ] || fail "PERSISTENT RESERVE IN $sa answered with opcode 0x${PDU_BHS[0]}"
	[ "${PDU_DATA[*]:4:4}" = "00 00 00 00" ] || fail "validate left registrations or a reservation: ${PDU_DATA[*]}"
	[ $(( 0x${PDU_BHS[1]} & 1 )) = 1 ] || pdu_recv || fail "no SCSI Response"
done
pdu_close
daemon_stop
cmp -s "$SCRATCH/disk.img" "$SCRATCH/before.img" || fail "the disk's data changed"
exit 0
