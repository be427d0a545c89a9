#!/bin/bash
# twinwitness starts, says ready, serves a node, ignores SIGHUP, and stops cleanly on
# SIGTERM (exit 0, no sanitizer report).
. "$(dirname "$0")/../lib/witness.sh"
needs_client

witness_start
grep -q "ready, listening on 127.0.0.1:$PORT" "$DAEMON_LOG" || fail "no ready line naming the address"
client "$CLIENT" 127.0.0.1:$PORT "$SECRET" a claim 11111111-2222-3333-4444-555555555555 \
	>"$SCRATCH/out" || fail "the client failed: $(cat "$SCRATCH/out")"
grep -q '^GRANT' "$SCRATCH/out" || fail "no GRANT: $(cat "$SCRATCH/out")"
kill -HUP "$DAEMON_PID"
sleep 0.3
daemon_check
grep -q SIGHUP "$DAEMON_LOG" || fail "SIGHUP was not logged"
daemon_stop
grep -q "stopped" "$DAEMON_LOG" || fail "no 'stopped' line"
