#!/bin/bash
# SIGHUP (sent by terminals and some service managers) neither kills twinsand nor stops it:
# it is logged and ignored, and the daemon goes on serving, then stops cleanly on SIGTERM.
. "$(dirname "$0")/../lib/twinsand.sh"
requires iscsi-inq
needs_twinsand

serve_disk hup 16M
kill -HUP "$DAEMON_PID"
sleep 0.5
kill -0 "$DAEMON_PID" 2>/dev/null || fail "twinsand died of SIGHUP"
grep -q "SIGHUP" "$DAEMON_LOG" || fail "SIGHUP was not logged"
client iscsi-inq "$URL" >/dev/null || fail "twinsand stopped serving after SIGHUP"
daemon_stop
