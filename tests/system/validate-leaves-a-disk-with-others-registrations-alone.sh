#!/bin/bash
# A disk holding another initiator's registration and reservation (a cluster may be using
# it) is left alone: twinctl validate skips every reservation check saying why and fails
# none (identity and latency-write skip too: one path, no --write); afterwards the
# registration and the reservation are still there, untouched.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/twinctl.sh"
. "$TOP/tests/lib/pdu.sh"
requires od timeout
needs_twinsand
[ -x "$TWINCTL" ] || fail "$TWINCTL is not built (make BUILD=san)"
TEST_PORTS=${TEST_PORTS:-3570 3579}

serve_disk validate-busy 16M
KEY="11 22 33 44 55 66 77 88"

# pr ITT CDB [DATA]: a PERSISTENT RESERVE command that must end GOOD; Data-In in PDU_DATA.
pr()
{
	local data
	if [ -n "${3:-}" ]; then
		pdu_scsi a1 "$1" 24 "$2" "$3"
	else
		pdu_scsi c1 "$1" 256 "$2"
	fi
	pdu_recv || fail "no answer to CDB $2"
	data=("${PDU_DATA[@]}")
	if [ "$(pdu_opcode)" = $((0x25)) ] && [ $(( 0x${PDU_BHS[1]} & 1 )) = 0 ]; then
		pdu_recv || fail "no SCSI Response to CDB $2"
	fi
	[ "${PDU_BHS[3]}" = 00 ] || fail "CDB $2 ended with status 0x${PDU_BHS[3]}"
	PDU_DATA=("${data[@]}")
}

pdu_connect 127.0.0.1 "$PORT"
pdu_login iqn.2026-11.org.twinsan.test:cluster-node "$IQN"
pdu_clear_unit_attention 1
# REGISTER, then RESERVE write exclusive, registrants only (type 5).
pr 2 "5f 00 00 00 00 00 00 00 18 00 00 00 00 00 00 00" "$(printf '00 %.0s' {1..8}) $KEY $(printf '00 %.0s' {1..8})"
pr 3 "5f 01 05 00 00 00 00 00 18 00 00 00 00 00 00 00" "$KEY $(printf '00 %.0s' {1..16})"

client "$TWINCTL" validate "$URL" >"$SCRATCH/out" 2>"$SCRATCH/err" && rc=0 || rc=$?
[ $rc = 0 ] || fail "validate exited $rc: $(cat "$SCRATCH/out" "$SCRATCH/err")"
for check in pr-register pr-reserve pr-conflict pr-preempt pr-preempt-abort pr-release pr-clear arbitration; do
	grep -qE "^SKIP  $check +the disk holds 1 registration of other initiators: a cluster may be using it" \
		"$SCRATCH/out" || fail "$check was not skipped: $(grep -E " $check " "$SCRATCH/out")"
done
grep -qE '^[0-9]+ passed, 0 failed, 10 skipped: no check failed; the skipped ones say why' "$SCRATCH/out" ||
	fail "summary line: $(tail -n 1 "$SCRATCH/out")"

pr 4 "5e 00 00 00 00 00 00 01 00 00 00 00 00 00 00 00"
[ "${PDU_DATA[*]:4:12}" = "00 00 00 08 $KEY" ] || fail "the registration changed: ${PDU_DATA[*]:0:16}"
pr 5 "5e 01 00 00 00 00 00 01 00 00 00 00 00 00 00 00"
[ "${PDU_DATA[*]:4:12}" = "00 00 00 10 $KEY" ] || fail "the reservation changed: ${PDU_DATA[*]:0:24}"
[ "${PDU_DATA[21]}" = 05 ] || fail "the reservation's type changed to 0x${PDU_DATA[21]}"
pdu_close
daemon_check
daemon_stop
