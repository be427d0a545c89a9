# Shared by the witness system tests (tests/system/witness-*.sh): the daemon under test is
# twinwitness (TWINWITNESS, default the sanitizer build) on ports 3451-3459, driven by
# the test client tests/tools/witness-client.c ($CLIENT); SECRET is a secret file.
# The helpers of twinsand.sh (daemon_start, daemon_stop, fail...) apply to it.
TWINSAND=${TWINWITNESS:-$(cd "$(dirname "$0")/../.." && pwd)/build/san/twinwitness}
TEST_PORTS="3451 3459" # the witness tests own 3450-3459 (3450: tests/unit/test_witness.c)
. "$(dirname "$0")/../lib/twinsand.sh"
needs_twinsand
[ -x "$TWINSAND" ] || fail "$TWINSAND is not built (make BUILD=san)"
CLIENT=$TOP/build/san/tests/witness-client
SECRET=$SCRATCH/secret
printf 'system test secret\n' >"$SECRET"
chmod 600 "$SECRET"

# witness_start [options...]: twinwitness on a free port ($PORT) with $SECRET and a state
# directory in the scratch space.
witness_start()
{
	PORT=${PORT:-$(free_port)}
	daemon_start --listen 127.0.0.1:$PORT --secret-file "$SECRET" --state-dir "$SCRATCH/state" "$@"
}

# needs_client: fails unless the test client is built.
needs_client() { [ -x "$CLIENT" ] || fail "$CLIENT is not built (make BUILD=san units)"; }
