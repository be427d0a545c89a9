#!/bin/bash
# A portal whose port is taken stops the daemon at start with a message naming the
# address, instead of serving without it.
. "$(dirname "$0")/../lib/twinsand.sh"
needs_twinsand
[ -x "$TWINSAND" ] || fail "$TWINSAND is not built"

serve_disk busy 16M

timeout 20 "$TWINSAND" --portal 127.0.0.1:$PORT --target $IQN --lun "$SCRATCH/other.img" \
	--size 16M >"$SCRATCH/second" 2>&1 && fail "a second daemon started on a busy port"
grep -q "127.0.0.1:$PORT" "$SCRATCH/second" || fail "the message does not name the portal: $(cat "$SCRATCH/second")"
grep -qi "in use" "$SCRATCH/second" || fail "the message does not say why: $(cat "$SCRATCH/second")"
_sanitizer_report "$SCRATCH/second" && fail "sanitizer report: $(cat "$SCRATCH/second")"
daemon_stop
