#!/bin/bash
# COMPARE AND WRITE through both nodes of a synchronized pair behaves as on one disk:
# libiscsi's CompareAndWrite suite through the secondary (whose COMPARE AND WRITEs the
# primary compares and writes: success, miscompare with its sense, unwritten blocks) and
# its MultipathIO races of COMPARE AND WRITEs through both nodes at once, with no failure;
# the replicas are identical afterwards.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/ha.sh"
requires iscsi-test-cu

ha_setup 16M
ha_pair_up

# B first: the single-path tests run through the secondary.
client iscsi-test-cu --dataloss \
	-t ALL.CompareAndWrite,ALL.MultipathIO.CompareAndWrite,ALL.MultipathIO.CompareAndWriteAsync \
	"$(ha_url B)" "$(ha_url A)" >"$SCRATCH/cu.log" 2>&1 || true
awk -f "$TOP/tests/lib/cu-verdicts.awk" "$SCRATCH/cu.log" >"$SCRATCH/verdicts.tsv"
grep -q . "$SCRATCH/verdicts.tsv" || fail "iscsi-test-cu ran no test: $(tail -n 5 "$SCRATCH/cu.log")"
! grep -P '\tfail\t' "$SCRATCH/verdicts.tsv" || fail "COMPARE AND WRITE tests failed (above)"
for t in MultipathIO.CompareAndWriteAsync CompareAndWrite.Miscompare; do
	grep -qP "^${t%%.*}\t${t#*.}\tpass" "$SCRATCH/verdicts.tsv" || fail "$t did not pass"
done
# The secondary forwarded them: the primary logged no protocol fault and both still serve.
ha_check A B
ha_stop B
ha_stop A
ha_replicas_equal || fail "the replicas differ: $(cmp "$(ha_replica A)" "$(ha_replica B)")"
