#!/bin/bash
# twinctl validate against tgt (the reference target, started on its own ports with two
# portals, stopped on exit) reports what tgt lacks as failures, not passes: no ALUA (TPGS 0
# in INQUIRY) and no PREEMPT AND ABORT; what tgt does support (one disk on both paths, one
# identity, register, reserve, conflicts, clear) passes; the exit status is 1.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/twinctl.sh"
requires tgtd tgtadm
[ -x "$TWINCTL" ] || fail "$TWINCTL is not built (make BUILD=san)"
TEST_PORTS=${TEST_PORTS:-3540 3549}

PORT=$(free_port)
IQN=iqn.2026-11.org.twinsan.test:tgt-validate
tgt_start "$SCRATCH/tgt.log" --portal 127.0.0.1:$PORT --portal 127.0.0.2:$PORT --target $IQN \
	--lun "$SCRATCH/disk.img" --size 16M
URL1=iscsi://127.0.0.1:$PORT/$IQN/$TGT_LUN
URL2=iscsi://127.0.0.2:$PORT/$IQN/$TGT_LUN

client "$TWINCTL" validate "$URL1" "$URL2" >"$SCRATCH/out" 2>"$SCRATCH/err" && rc=0 || rc=$?
[ $rc = 1 ] || fail "validate against tgt exited $rc, not 1: $(cat "$SCRATCH/out" "$SCRATCH/err")"
verdict() { grep -E "^[A-Z]{4}  $1 " "$SCRATCH/out" | cut -c1-4; }
[ "$(verdict alua)" = FAIL ] || fail "ALUA is not reported as failed: $(cat "$SCRATCH/out")"
grep -E '^FAIL  alua .*does not support ALUA \(INQUIRY TPGS is 0\)' "$SCRATCH/out" >/dev/null ||
	fail "the ALUA failure does not say why: $(grep alua "$SCRATCH/out")"
[ "$(verdict pr-preempt-abort)" = FAIL ] || fail "PREEMPT AND ABORT is not reported as failed: $(cat "$SCRATCH/out")"
grep -E '^FAIL  pr-preempt-abort .*PREEMPT AND ABORT.*ILLEGAL' "$SCRATCH/out" >/dev/null ||
	fail "the PREEMPT AND ABORT failure does not say why: $(grep abort "$SCRATCH/out")"
for check in paths identity pr-register pr-reserve pr-conflict pr-clear latency-read; do
	[ "$(verdict $check)" = PASS ] || fail "$check did not pass against tgt: $(grep -E " $check " "$SCRATCH/out")"
done
[ "$(verdict latency-write)" = SKIP ] || fail "latency-write ran without --write"
grep -qE '^[0-9]+ passed, [1-9][0-9]* failed, 1 skipped: NOT a valid shared disk' "$SCRATCH/out" ||
	fail "summary line: $(tail -n 1 "$SCRATCH/out")"
tgt_stop
exit 0
