#!/bin/bash
# twinctl validate logs in to a target that requires mutual CHAP with the secrets read
# from files (--chap-user/--chap-secret-file, --mutual-chap-user/--mutual-chap-secret-file)
# and runs its checks; without CHAP, or with a wrong secret, the path cannot be reached
# (exit 3, saying so), and no secret is printed.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/twinctl.sh"
needs_twinsand
[ -x "$TWINCTL" ] || fail "$TWINCTL is not built (make BUILD=san)"
TEST_PORTS=${TEST_PORTS:-3590 3599}

serve_disk validate-chap 16M --chap alice:alice-secret-1234 --mutual-chap target1:target-secret-5678
echo alice-secret-1234 >"$SCRATCH/alice.secret"
echo target-secret-5678 >"$SCRATCH/target.secret"
echo not-the-secret-000 >"$SCRATCH/wrong.secret"
CHAP=(--chap-user alice --chap-secret-file "$SCRATCH/alice.secret")
MUTUAL=(--mutual-chap-user target1 --mutual-chap-secret-file "$SCRATCH/target.secret")

# run EXPECTED_STATUS ARGS...: validate the URL with ARGS.
run()
{
	local want=$1 rc
	shift
	client "$TWINCTL" validate "$URL" --samples 10 "$@" >"$SCRATCH/out" 2>"$SCRATCH/err" && rc=0 || rc=$?
	[ $rc = "$want" ] || fail "validate $* exited $rc, not $want: $(cat "$SCRATCH/out" "$SCRATCH/err")"
	! grep -q -- '-secret-\|not-the-secret' "$SCRATCH/out" "$SCRATCH/err" || fail "a secret was printed"
}

run 0 "${CHAP[@]}" "${MUTUAL[@]}"
grep -qE '^PASS  pr-preempt-abort ' "$SCRATCH/out" || fail "the checks did not run: $(cat "$SCRATCH/out")"
run 0 "${CHAP[@]}"
run 3
grep -q "path 1: cannot log in to $IQN at 127.0.0.1:$PORT" "$SCRATCH/err" || fail "no reason: $(cat "$SCRATCH/err")"
run 3 --chap-user alice --chap-secret-file "$SCRATCH/wrong.secret"
run 3 "${CHAP[@]}" --mutual-chap-user target1 --mutual-chap-secret-file "$SCRATCH/wrong.secret"
daemon_check
daemon_stop
