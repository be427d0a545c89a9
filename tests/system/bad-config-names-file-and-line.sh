#!/bin/bash
# A configuration file with a mistake stops the daemon before it serves anything, with a
# message naming the file and line and what to do; a missing file is named too.
. "$(dirname "$0")/../lib/twinsand.sh"
needs_twinsand
[ -x "$TWINSAND" ] || fail "$TWINSAND is not built"

PORT=$(free_port)
CONF=$SCRATCH/twinsand.conf

# expect_refusal LINE_MESSAGE: twinsand must exit non-zero at once and print it.
expect_refusal()
{
	timeout 20 "$TWINSAND" --config "$CONF" >"$SCRATCH/out" 2>&1 && fail "bad config accepted"
	grep -qF "$1" "$SCRATCH/out" || fail "expected \"$1\", got: $(cat "$SCRATCH/out")"
	_sanitizer_report "$SCRATCH/out" && fail "sanitizer report: $(cat "$SCRATCH/out")"
	ss -Htln "sport = :$PORT" | grep -q . && fail "something listens on $PORT"
	return 0
}

cat >"$CONF" <<CONF
[portal lo]
address = 127.0.0.1
port = $PORT
[target t]
[lun t:0]
path = $SCRATCH/t.img
sise = 1G
CONF
expect_refusal "$CONF:7: unknown key 'sise' in [lun]; valid keys: path, size,"

cat >"$CONF" <<CONF
[portal lo]
address = 127.0.0.1
port = $PORT
[lun t:0]
path = $SCRATCH/t.img
CONF
expect_refusal "$CONF:4: [lun t:0] names no target defined above it; add [target t] before it"

cat >"$CONF" <<CONF
[portal lo]
address = 127.0.0.1
port = 70000
CONF
expect_refusal "$CONF:3: port '70000' is not a number from 1 to 65535"

rm -f "$CONF"
expect_refusal "$CONF: No such file or directory"
