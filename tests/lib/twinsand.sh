# Shared by the system tests (tests/system/*.sh source it): a scratch directory removed
# on exit, skip/fail helpers, a free port, and a daemon under test that is started, waited
# for, and stopped with a check that the sanitizers found nothing.
#
# Exit codes follow automake: 0 pass, 1 fail, 77 skip.
#
# Environment:
#   TWINSAND     the daemon to test (default: the sanitizer build, build/san/twinsand)
#   TEST_TARGET  "twinsand" (default) or "tgt": run the scenario against tgtd instead, to
#                tell a wrong test from a wrong daemon.  Scenarios that need twinsand's own
#                features call needs_twinsand.
#   TEST_PORTS   first and last TCP port the tests may use (default "3280 3309")
#   KEEP_SCRATCH set to keep the scratch directory (logs) after the test
set -eu

TOP=$(cd "$(dirname "$0")/../.." && pwd)
TWINSAND=${TWINSAND:-$TOP/build/san/twinsand}
TEST_TARGET=${TEST_TARGET:-twinsand}
TEST_NAME=$(basename "$0" .sh)
# Client commands must finish within this many seconds, or the test fails.
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-60}

. "$TOP/tests/lib/tgt.sh"

# Scratch space on tmpfs: LUN files there make the tests fast.
SCRATCH=$(mktemp -d /dev/shm/twinsan-"$TEST_NAME".XXXXXX)
DAEMON_PID=""
DAEMON_LOG=""
LUN=0

_cleanup()
{
	_rc=$?
	set +e
	if [ -n "$DAEMON_PID" ]; then
		kill -KILL "$DAEMON_PID" 2>/dev/null
		wait "$DAEMON_PID" 2>/dev/null
	fi
	tgt_stop
	if [ $_rc = 1 ] && [ -n "$DAEMON_LOG" ] && [ -s "$DAEMON_LOG" ]; then
		echo "--- last lines of $DAEMON_LOG:" >&2
		tail -n 30 "$DAEMON_LOG" >&2
	fi
	[ -n "${KEEP_SCRATCH:-}" ] || rm -rf "$SCRATCH"
	exit $_rc
}
trap _cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() { echo "FAIL: $TEST_NAME: $*" >&2; exit 1; }
skip() { echo "SKIP: $TEST_NAME: $*" >&2; exit 77; }

requires()
{
	for _c in "$@"; do
		command -v "$_c" >/dev/null 2>&1 || skip "$_c is not installed"
	done
}

needs_twinsand() { [ "$TEST_TARGET" = twinsand ] || skip "tests twinsand's own behaviour"; }

# Runs a client command with a time limit; its output goes to stdout.
client() { timeout -k 5 "$CLIENT_TIMEOUT" "$@"; }

# Prints a TCP port of TEST_PORTS nobody listens on, starting at a random one so that
# concurrent runs rarely collide.
free_port()
{
	set -- ${TEST_PORTS:-3280 3309}
	_n=$(( $2 - $1 + 1 ))
	_off=$(( $$ % _n ))
	for _i in $(seq 0 $(( _n - 1 ))); do
		_p=$(( $1 + (_off + _i) % _n ))
		if ! ss -Htln "sport = :$_p" | grep -q .; then
			echo "$_p"
			return 0
		fi
	done
	fail "no free port in ${TEST_PORTS:-3280 3309}"
}

# True if the log has a sanitizer report.
_sanitizer_report() { grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$1"; }

# daemon_start [twinsand options...]: starts the daemon and waits for its "ready" line.
# Each start appends to one log, $SCRATCH/daemon.log.
daemon_start()
{
	DAEMON_LOG=$SCRATCH/daemon.log
	if [ "$TEST_TARGET" = tgt ]; then
		tgt_start "$DAEMON_LOG" "$@"
		DAEMON_PID=""
		LUN=$TGT_LUN
		return 0
	fi
	[ -x "$TWINSAND" ] || fail "$TWINSAND is not built (make BUILD=san)"
	touch "$DAEMON_LOG"
	_ready=$(grep -c ready "$DAEMON_LOG" || true)
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
		"$TWINSAND" "$@" >>"$DAEMON_LOG" 2>&1 &
	DAEMON_PID=$!
	LUN=0
	_tries=0
	until [ "$(grep -c ready "$DAEMON_LOG" || true)" -gt "$_ready" ]; do
		kill -0 "$DAEMON_PID" 2>/dev/null || {
			wait "$DAEMON_PID" && _st=0 || _st=$?
			DAEMON_PID=""
			fail "twinsand exited (status $_st) before it was ready"
		}
		_tries=$((_tries + 1))
		[ $_tries -lt 300 ] || fail "twinsand was not ready within 30 s"
		sleep 0.1
	done
}

# serve_disk NAME SIZE [OPTIONS...]: the usual scenario's daemon: target
# iqn.2026-11.org.twinsan.test:NAME on 127.0.0.1 with $SCRATCH/disk.img of SIZE as its LUN;
# sets PORT, IQN and URL.
serve_disk()
{
	PORT=$(free_port)
	IQN=iqn.2026-11.org.twinsan.test:$1
	daemon_start --portal 127.0.0.1:$PORT --target $IQN --lun "$SCRATCH/disk.img" --size "$2" "${@:3}"
	URL=iscsi://127.0.0.1:$PORT/$IQN/$LUN
}

# Stops the daemon with SIGTERM; fails the test unless it exits cleanly within 10 s with
# no sanitizer report.
daemon_stop()
{
	if [ "$TEST_TARGET" = tgt ]; then
		tgt_stop
		return 0
	fi
	[ -n "$DAEMON_PID" ] || return 0
	kill -TERM "$DAEMON_PID"
	_tries=0
	while kill -0 "$DAEMON_PID" 2>/dev/null; do
		_tries=$((_tries + 1))
		[ $_tries -lt 100 ] || fail "twinsand did not stop within 10 s of SIGTERM"
		sleep 0.1
	done
	wait "$DAEMON_PID" && _st=0 || _st=$?
	DAEMON_PID=""
	_sanitizer_report "$DAEMON_LOG" && fail "the sanitizers reported errors (see the log)"
	[ $_st = 0 ] || fail "twinsand exited with status $_st after SIGTERM"
	return 0
}

# Fails the test if the running daemon has logged a sanitizer report or has died.
daemon_check()
{
	[ "$TEST_TARGET" = tgt ] && return 0
	_sanitizer_report "$DAEMON_LOG" && fail "the sanitizers reported errors (see the log)"
	kill -0 "$DAEMON_PID" 2>/dev/null || fail "twinsand died"
	return 0
}
