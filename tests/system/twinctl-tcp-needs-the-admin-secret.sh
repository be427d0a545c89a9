#!/bin/bash
# The API's TCP listener: the first start makes a random admin secret, key and
# certificate readable only by their owner; twinctl with a copy of the secret is served
# over TLS, a wrong secret is refused (exit 3) and logged, no secret at all is a usage
# error (2); a restart keeps the secret and the certificate.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/twinctl.sh"
needs_api
"$TWINSAND" --help 2>&1 | grep -q -- --api-listen || skip "this twinsand has no --api-listen yet"
TEST_PORTS="3500 3519"

PORT=$(free_port)
API_PORT=$(TEST_PORTS="$((PORT + 1)) 3519" free_port)
STATE=$SCRATCH/state
cat >"$SCRATCH/twinsand.conf" <<CONF
[daemon]
state-dir = $STATE

[portal lo]
address = 127.0.0.1
port = $PORT

[target tcp]
[lun tcp:0]
path = $SCRATCH/disk.img
size = 16M
CONF
daemon_start --config "$SCRATCH/twinsand.conf" --api-socket "$API_SOCKET" --api-listen "127.0.0.1:$API_PORT"

for f in admin.secret api.key api.crt; do
	[ "$(stat -c %a "$STATE/$f")" = 600 ] || fail "$STATE/$f is mode $(stat -c %a "$STATE/$f"), not 600"
done
[ "$(head -n 1 "$STATE/admin.secret" | tr -d '\n' | wc -c)" -ge 32 ] || fail "the admin secret is short"
install -m 600 "$STATE/admin.secret" "$SCRATCH/copy.secret"
cp "$STATE/api.crt" "$SCRATCH/first.crt"

remote() { TWINCTL_SERVER=127.0.0.1:$API_PORT client "$TWINCTL" "$@" >"$SCRATCH/out" 2>"$SCRATCH/err"; }

remote --secret-file "$SCRATCH/copy.secret" target list && rc=0 || rc=$?
[ $rc = 0 ] || fail "twinctl over TLS with the secret: exit $rc: $(cat "$SCRATCH/err")"
grep -q "^iqn.2026-11.org.twinsan:tcp " "$SCRATCH/out" || fail "target list over TLS: $(cat "$SCRATCH/out")"
grep -q "api: admin@127.0.0.1:[0-9]* logged in" "$DAEMON_LOG" || fail "the login was not logged"

echo "not-the-secret" >"$SCRATCH/wrong.secret"
chmod 600 "$SCRATCH/wrong.secret"
remote --secret-file "$SCRATCH/wrong.secret" status && rc=0 || rc=$?
[ $rc = 3 ] || fail "a wrong secret: exit $rc, not 3"
grep -q "wrong admin secret" "$SCRATCH/err" || fail "a wrong secret: $(cat "$SCRATCH/err")"
[ -s "$SCRATCH/out" ] && fail "a wrong secret got output: $(cat "$SCRATCH/out")"
grep -q "api: admin@127.0.0.1:[0-9]*: wrong admin secret" "$DAEMON_LOG" || fail "the wrong secret was not logged"

remote status && rc=0 || rc=$?
[ $rc = 2 ] || fail "no secret file: exit $rc, not 2"
grep -q -- "--secret-file FILE" "$SCRATCH/err" || fail "no secret file: $(cat "$SCRATCH/err")"

chmod 644 "$SCRATCH/wrong.secret"
remote --secret-file "$SCRATCH/wrong.secret" status && rc=0 || rc=$?
[ $rc = 1 ] || fail "a secret file others may read: exit $rc, not 1"
grep -q "chmod 600" "$SCRATCH/err" || fail "a secret file others may read: $(cat "$SCRATCH/err")"

daemon_stop
daemon_start --config "$SCRATCH/twinsand.conf" --api-socket "$API_SOCKET" --api-listen "127.0.0.1:$API_PORT"
cmp -s "$STATE/admin.secret" "$SCRATCH/copy.secret" || fail "the restart changed the admin secret"
cmp -s "$STATE/api.crt" "$SCRATCH/first.crt" || fail "the restart changed the certificate"
remote --secret-file "$SCRATCH/copy.secret" status || fail "after a restart: $(cat "$SCRATCH/err")"
daemon_stop
exit 0
