#!/bin/bash
# twinctl validate given a portal (iscsi://HOST:PORT) instead of paths asks it which
# targets it offers and where (SendTargets), and validates the disk on every portal found:
# one twinsand serving a target on two portals gives two paths, and all checks pass.  A
# portal offering two targets makes it ask which one (exit 2, naming both); --target
# chooses, --lun picks the LUN.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/twinctl.sh"
needs_twinsand
[ -x "$TWINCTL" ] || fail "$TWINCTL is not built (make BUILD=san)"
TEST_PORTS=${TEST_PORTS:-3580 3589}

PORT=$(free_port)
mkdir -p "$SCRATCH/state"
cat >"$SCRATCH/twinsand.conf" <<CONF
[daemon]
state-dir = $SCRATCH/state
[portal a]
address = 127.0.0.1
port = $PORT
[portal b]
address = 127.0.0.2
port = $PORT
[target one]
[lun one:0]
path = $SCRATCH/one-0.img
size = 8M
[lun one:1]
path = $SCRATCH/one-1.img
size = 16M
[target two]
[lun two:0]
path = $SCRATCH/two.img
size = 8M
CONF
daemon_start --config "$SCRATCH/twinsand.conf"

client "$TWINCTL" validate iscsi://127.0.0.1:$PORT >"$SCRATCH/out" 2>"$SCRATCH/err" && rc=0 || rc=$?
[ $rc = 2 ] || fail "a portal offering two targets exited $rc, not 2: $(cat "$SCRATCH/out" "$SCRATCH/err")"
grep -q "the portals offer several targets (iqn.2026-11.org.twinsan:one, iqn.2026-11.org.twinsan:two): choose one with --target" \
	"$SCRATCH/err" || fail "the targets are not named: $(cat "$SCRATCH/err")"

client "$TWINCTL" validate iscsi://127.0.0.1:$PORT --target iqn.2026-11.org.twinsan:one --lun 1 --samples 20 \
	>"$SCRATCH/out" 2>"$SCRATCH/err" && rc=0 || rc=$?
[ $rc = 0 ] || fail "validate of the discovered paths exited $rc: $(cat "$SCRATCH/out" "$SCRATCH/err")"
grep -q "^Validating 2 paths to iqn.2026-11.org.twinsan:one, LUN 1," "$SCRATCH/out" || fail "$(head -n 1 "$SCRATCH/out")"
grep -qE "^PASS  paths +one disk, .*16\.0 MiB.* on 2 paths: 127\.0\.0\.1:$PORT, 127\.0\.0\.2:$PORT$" "$SCRATCH/out" ||
	fail "the discovered paths: $(grep paths "$SCRATCH/out")"
grep -qE '^12 passed, 0 failed, 1 skipped: ' "$SCRATCH/out" || fail "summary line: $(tail -n 1 "$SCRATCH/out")"
daemon_check
daemon_stop
