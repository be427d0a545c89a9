#!/bin/bash
# The witness grants a device to the first node and refuses it to the other, also after
# a restart of the witness (the holder record is on disk); `--list` shows the holder;
# `--forget` refuses while the witness runs and, once it is stopped, clears the record so
# the other node is granted.  A RELEASE by the holder clears it too.
. "$(dirname "$0")/../lib/witness.sh"
needs_client
DEV=11111111-2222-3333-4444-555555555555
DEV2=66666666-7777-8888-9999-aaaaaaaaaaaa

# ask NODE VERB UUID [VERB UUID...]: prints the witness's answers, one a line.
ask() { _n=$1; shift; client "$CLIENT" 127.0.0.1:$PORT "$SECRET" "$_n" "$@" | grep -v '^up$'; }

witness_start
[ "$(ask a claim $DEV)" = "GRANT 3000" ] || fail "the first claim was not granted"
ask b claim $DEV | grep -q "^REFUSE held by another node" || fail "the second node was granted too"
[ "$(ask a claim $DEV2 release $DEV2)" = "$(printf 'GRANT 3000\nRELEASED')" ] || fail "claim then release failed"
daemon_stop

witness_start
grep -q "1 device(s) held" "$DAEMON_LOG" || fail "the restarted witness does not hold the record"
ask b claim $DEV | grep -q "^REFUSE held by another node" || fail "the other node was granted after a restart"
[ "$(ask a claim $DEV)" = "GRANT 3000" ] || fail "the holder was refused after a restart"
"$TWINSAND" --forget $DEV --state-dir "$SCRATCH/state" >"$SCRATCH/out" 2>&1 && fail "--forget worked on a running witness"
grep -q "stop the witness first" "$SCRATCH/out" || fail "--forget does not say why: $(cat "$SCRATCH/out")"
"$TWINSAND" --list --state-dir "$SCRATCH/state" >"$SCRATCH/list" 2>&1 || fail "--list failed: $(cat "$SCRATCH/list")"
grep -q "^$DEV holder 000000000000000a" "$SCRATCH/list" || fail "--list: $(cat "$SCRATCH/list")"
daemon_stop

"$TWINSAND" --forget $DEV --state-dir "$SCRATCH/state" >"$SCRATCH/out" 2>&1 || fail "--forget failed: $(cat "$SCRATCH/out")"
_sanitizer_report "$SCRATCH/out" && fail "sanitizer report: $(cat "$SCRATCH/out")"
witness_start
[ "$(ask b claim $DEV)" = "GRANT 3000" ] || fail "the other node was refused after --forget"
daemon_stop
