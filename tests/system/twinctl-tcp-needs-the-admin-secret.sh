#!/bin/bash
# The API's TCP listener: the first start makes a random admin secret, key and
# certificate readable only by their owner; twinctl with a copy of the secret is served
# over TLS, a wrong secret is refused (exit 3) and logged, no secret at all is a usage
# error (2); a restart keeps the secret and the certificate; a saved server pins the
# certificate it showed first and refuses another until it is saved again.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/twinctl.sh"
needs_api
"$TWINSAND" --help 2>&1 | grep -q -- --api-listen || skip "this twinsand has no --api-listen yet"

# The portal and the API listener from halves of the range, so they never collide.
PORT=$(TEST_PORTS="3500 3509" free_port)
API_PORT=$(TEST_PORTS="3510 3519" free_port)
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

# A saved server keeps the certificate it showed first (trust on first use).
export HOME=$SCRATCH/home XDG_CONFIG_HOME=
mkdir -p "$HOME"
saved() { TWINCTL_SERVER= client "$TWINCTL" --server node "$@" >"$SCRATCH/out" 2>"$SCRATCH/err"; }
# The secret file is remembered by its absolute name.
(cd "$SCRATCH" && TWINCTL_SERVER=unix:$API_SOCKET "$TWINCTL" server add node "127.0.0.1:$API_PORT" \
	--secret-file copy.secret >/dev/null) || fail "server add with a secret file"
saved status || fail "saved server: $(cat "$SCRATCH/err")"
grep -q "node: trusting its certificate sha256:" "$SCRATCH/err" || fail "first use: $(cat "$SCRATCH/err")"
pin=$(openssl x509 -in "$STATE/api.crt" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f)
grep -qx "node 127.0.0.1:$API_PORT sha256:$pin secret-file:$SCRATCH/copy.secret" "$HOME/.config/twinsan/servers" ||
	fail "the pin saved is not the certificate's: $(cat "$HOME/.config/twinsan/servers")"
saved status || fail "saved server, pinned: $(cat "$SCRATCH/err")"
[ -s "$SCRATCH/err" ] && fail "second use said: $(cat "$SCRATCH/err")"

daemon_stop
daemon_start --config "$SCRATCH/twinsand.conf" --api-socket "$API_SOCKET" --api-listen "127.0.0.1:$API_PORT"
cmp -s "$STATE/admin.secret" "$SCRATCH/copy.secret" || fail "the restart changed the admin secret"
cmp -s "$STATE/api.crt" "$SCRATCH/first.crt" || fail "the restart changed the certificate"
remote --secret-file "$SCRATCH/copy.secret" status || fail "after a restart: $(cat "$SCRATCH/err")"
saved status || fail "saved server after a restart: $(cat "$SCRATCH/err")"

# A new certificate is refused until the server is saved again.
daemon_stop
rm "$STATE/api.key" "$STATE/api.crt"
daemon_start --config "$SCRATCH/twinsand.conf" --api-socket "$API_SOCKET" --api-listen "127.0.0.1:$API_PORT"
saved status && rc=0 || rc=$?
[ $rc = 3 ] || fail "a changed certificate: exit $rc, not 3"
grep -q "not the saved sha256:$pin" "$SCRATCH/err" || fail "a changed certificate: $(cat "$SCRATCH/err")"
expect_exit 0 server add node "127.0.0.1:$API_PORT" --secret-file "$SCRATCH/copy.secret"
saved status || fail "saved again: $(cat "$SCRATCH/err")"
daemon_stop
exit 0
