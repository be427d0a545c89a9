#!/bin/bash
# A node holding a grant stops serving alone when the witness goes silent (frozen with
# SIGSTOP, its connection still open): the renewals go unanswered and the node's client
# reports the lapse.  Thawed, the witness still holds the record for that node.
. "$(dirname "$0")/../lib/witness.sh"
needs_client
DEV=11111111-2222-3333-4444-555555555555

witness_start --lease-ms 500
client "$CLIENT" 127.0.0.1:$PORT "$SECRET" a hold $DEV >"$SCRATCH/hold" 2>&1 &
HOLDER=$!
for _ in $(seq 100); do grep -q granted "$SCRATCH/hold" && break; sleep 0.1; done
grep -q granted "$SCRATCH/hold" || fail "never granted: $(cat "$SCRATCH/hold")"
kill -STOP "$DAEMON_PID"
wait $HOLDER && _st=0 || _st=$?
kill -CONT "$DAEMON_PID"
[ $_st = 0 ] || fail "the holder's client exited with $_st: $(cat "$SCRATCH/hold")"
grep -q lapsed "$SCRATCH/hold" || fail "the lapse was not reported: $(cat "$SCRATCH/hold")"
"$TWINSAND" --list --state-dir "$SCRATCH/state" | grep -q "^$DEV holder 000000000000000a" ||
	fail "the record is gone after the lapse"
daemon_stop
