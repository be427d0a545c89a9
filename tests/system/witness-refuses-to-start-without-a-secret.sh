#!/bin/bash
# There is no default secret: twinwitness refuses to start without --secret-file, with an
# empty secret file or an unreadable one, saying why, and never opens its port.
. "$(dirname "$0")/../lib/witness.sh"

PORT=$(free_port)
: >"$SCRATCH/empty"
# expect_refusal WHAT PATTERN ARGS...: the witness exits nonzero at once, logging PATTERN.
expect_refusal()
{
	_what=$1 _pattern=$2
	shift 2
	timeout 20 "$TWINSAND" --listen 127.0.0.1:$PORT --state-dir "$SCRATCH/state" "$@" >"$SCRATCH/out" 2>&1 &&
		fail "started $_what"
	grep -qi "$_pattern" "$SCRATCH/out" || fail "$_what: the message does not say why: $(cat "$SCRATCH/out")"
	grep -q ready "$SCRATCH/out" && fail "$_what: said ready"
	_sanitizer_report "$SCRATCH/out" && fail "$_what: sanitizer report: $(cat "$SCRATCH/out")"
	return 0
}
expect_refusal "without --secret-file" "secret-file are required"
expect_refusal "with an empty secret" "empty" --secret-file "$SCRATCH/empty"
expect_refusal "with a missing secret file" "No such file" --secret-file "$SCRATCH/missing"
ss -Htln "sport = :$PORT" | grep -q . && fail "port $PORT is open"
exit 0
