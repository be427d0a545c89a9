#!/bin/bash
# twinctl validate --json prints one JSON document that parses, and it says what the human
# output says: the same checks in the same order with the same result and reason, the same
# summary counts, the exit code it exits with, and each path's disk identity.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/twinctl.sh"
requires jq
needs_twinsand
[ -x "$TWINCTL" ] || fail "$TWINCTL is not built (make BUILD=san)"
TEST_PORTS=${TEST_PORTS:-3550 3559}

PORT=$(free_port)
IQN=iqn.2026-11.org.twinsan.test:validate-json
daemon_start --portal 127.0.0.1:$PORT --portal 127.0.0.2:$PORT --target $IQN --lun "$SCRATCH/disk.img" --size 16M
URLS=(iscsi://127.0.0.1:$PORT/$IQN/0 iscsi://127.0.0.2:$PORT/$IQN/0)

client "$TWINCTL" validate "${URLS[@]}" --samples 20 >"$SCRATCH/human" 2>"$SCRATCH/err" && hrc=0 || hrc=$?
client "$TWINCTL" --json validate "${URLS[@]}" --samples 20 >"$SCRATCH/json" 2>>"$SCRATCH/err" && jrc=0 || jrc=$?
[ "$hrc" = "$jrc" ] || fail "human output exited $hrc, --json $jrc"
[ "$(wc -l <"$SCRATCH/json")" = 1 ] || fail "--json printed $(wc -l <"$SCRATCH/json") lines, not one document"
jq -e . "$SCRATCH/json" >/dev/null || fail "--json does not parse: $(cat "$SCRATCH/json")"
[ "$(jq -r .exit_code "$SCRATCH/json")" = "$jrc" ] || fail "exit_code $(jq .exit_code "$SCRATCH/json"), exited $jrc"
[ "$(jq -r .version "$SCRATCH/json")" = 1 ] || fail "no version 1"

# Each check line of the human output, "RESULT  NAME  REASON", from the JSON; figures
# (latencies, reads in flight aborted) differ between the two runs, numbers are not compared.
jq -r '.tests[] | "\(.result | ascii_upcase)  \(.name) \(.reason)"' "$SCRATCH/json" >"$SCRATCH/from-json"
grep -E '^(PASS|FAIL|SKIP)  ' "$SCRATCH/human" | sed -E 's/^(....  [a-z-]+) +/\1 /' >"$SCRATCH/from-human"
cut_latency() { sed -E 's/[0-9]+/N/g' "$1"; }
diff <(cut_latency "$SCRATCH/from-human") <(cut_latency "$SCRATCH/from-json") >"$SCRATCH/diff" ||
	fail "the JSON's checks differ from the human output: $(cat "$SCRATCH/diff")"
[ "$(jq '.tests | length' "$SCRATCH/json")" = 13 ] || fail "the JSON has $(jq '.tests | length' "$SCRATCH/json") checks"
jq -e '.tests | all(.proves | length > 10)' "$SCRATCH/json" >/dev/null || fail "a check does not say what it proves"

summary=$(jq -r '"\(.summary.passed) passed, \(.summary.failed) failed, \(.summary.skipped) skipped"' "$SCRATCH/json")
grep -q "^$summary: " "$SCRATCH/human" || fail "human summary '$(tail -n 1 "$SCRATCH/human")', JSON says $summary"

# The paths: both, with the one disk the human output names.
[ "$(jq '.paths | length' "$SCRATCH/json")" = 2 ] || fail "the JSON lists $(jq '.paths | length' "$SCRATCH/json") paths"
disk=$(jq -r '.paths[0].disk' "$SCRATCH/json")
[ "$(jq -r '.paths[1].disk' "$SCRATCH/json")" = "$disk" ] || fail "the two paths' disks differ in the JSON"
grep -q "^PASS  paths  *one disk, $disk " "$SCRATCH/human" || fail "human output does not name disk $disk"
[ "$(jq -r '.paths[0].capacity_bytes' "$SCRATCH/json")" = $((16 << 20)) ] || fail "capacity in the JSON"
jq -e '.tests[] | select(.name == "latency-read") | .details.paths | length == 2 and all(.median_us <= .p99_us)' \
	"$SCRATCH/json" >/dev/null || fail "latency figures missing from the JSON"
daemon_check
daemon_stop
