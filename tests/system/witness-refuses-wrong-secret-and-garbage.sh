#!/bin/bash
# A node with the wrong secret is refused (told "authentication failed", logged by the
# witness) and gets nothing; a peer speaking garbage is refused and logged; a node with
# the right secret is then still served.
. "$(dirname "$0")/../lib/witness.sh"
needs_client
DEV=11111111-2222-3333-4444-555555555555

printf 'the wrong secret\n' >"$SCRATCH/wrong"
chmod 600 "$SCRATCH/wrong"
witness_start

client "$CLIENT" 127.0.0.1:$PORT "$SCRATCH/wrong" a claim $DEV >"$SCRATCH/out" && fail "wrong secret accepted"
grep -q "authentication failed" "$SCRATCH/out" || fail "the node was not told why: $(cat "$SCRATCH/out")"
grep -q GRANT "$SCRATCH/out" && fail "granted with the wrong secret"
grep -q "failed to prove the secret" "$DAEMON_LOG" || fail "the witness did not log the wrong secret"

exec 3<>/dev/tcp/127.0.0.1/$PORT
printf 'GET / HTTP/1.0\r\nHost: x\r\n\r\n' >&3
timeout 10 cat <&3 >/dev/null || fail "the witness did not close the connection that spoke garbage"
exec 3<&-
grep -q "refused: not a witness protocol frame" "$DAEMON_LOG" || fail "garbage was not logged"

daemon_check
client "$CLIENT" 127.0.0.1:$PORT "$SECRET" a claim $DEV >"$SCRATCH/out" ||
	fail "the right secret failed: $(cat "$SCRATCH/out")"
grep -q '^GRANT' "$SCRATCH/out" || fail "no GRANT: $(cat "$SCRATCH/out")"
daemon_stop
