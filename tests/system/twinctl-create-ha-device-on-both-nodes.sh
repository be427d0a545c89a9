#!/bin/bash
# twinctl device create --ha, given to node A only, makes the HA device on both nodes (one
# uuid, the links swapped, the other priority on B), and the pair synchronizes and serves
# what is written through A via B, also after B restarts.  The generated link secret is
# never printed or logged.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/twinctl.sh"
requires qemu-io
needs_api
TEST_PORTS="3550 3576"

api_pair_start

CTL_SOCKET=$SCRATCH/A/api.sock expect_exit 0 device create ha1 --ha --partner "unix:$SCRATCH/B/api.sock" \
	--path "$SCRATCH/A/ha1.img" --partner-path "$SCRATCH/B/ha1.img" --size 16M --priority primary \
	--initial-sync clear --sync 127.0.0.1:$((PORT + 1)) 127.0.0.2:$((PORT + 1)) \
	--heartbeat 127.0.0.1:$((PORT + 2)) 127.0.0.2:$((PORT + 2))
grep -q "^ha1: created on this node and on unix:$SCRATCH/B/api.sock" "$SCRATCH/out" ||
	fail "device create --ha said: $(cat "$SCRATCH/out")"
uuid=$(sed -n 's/^uuid = //p' "$SCRATCH/A/state/managed.conf")
[ -n "$uuid" ] && [ "$uuid" = "$(sed -n 's/^uuid = //p' "$SCRATCH/B/state/managed.conf")" ] ||
	fail "the two nodes' HA devices differ in uuid: $(cat "$SCRATCH/A/state/managed.conf" "$SCRATCH/B/state/managed.conf")"
grep -q '^priority = secondary$' "$SCRATCH/B/state/managed.conf" || fail "B is not the secondary"
grep -q "^sync = 127.0.0.2:$((PORT + 1)) 127.0.0.1:$((PORT + 1))$" "$SCRATCH/B/state/managed.conf" ||
	fail "B's sync link is not the swapped one: $(cat "$SCRATCH/B/state/managed.conf")"
secret=$(sed -n 's/^secret = //p' "$SCRATCH/A/state/managed.conf")
[ ${#secret} -ge 32 ] || fail "no generated link secret in A's managed configuration"
grep -qF "$secret" "$SCRATCH/out" "$SCRATCH/err" "$DAEMON_LOG" && fail "the link secret was printed or logged"

# wait_synchronized A|B: until the node reports ha1 synchronized with its partner and serves it.
wait_synchronized()
{
	tries=0
	until CTL_SOCKET=$SCRATCH/$1/api.sock ctl --json device status ha1 &&
		grep -q '"state": *"synchronized"' "$SCRATCH/out" && grep -q '"access": *"ok"' "$SCRATCH/out" &&
		grep -q '"partner_connected": *true' "$SCRATCH/out"; do
		tries=$((tries + 1))
		[ $tries -lt 300 ] || fail "ha1 on $1 is not synchronized: $(cat "$SCRATCH/out" "$SCRATCH/err")"
		sleep 0.1
	done
}
wait_synchronized A
wait_synchronized B
client qemu-io -f raw -c 'write -P 0x3c 0 128k' "iscsi://127.0.0.1:$PORT/iqn.2026-11.org.twinsan:ha1/0" \
	>"$SCRATCH/io" 2>&1 || fail "writing through A failed: $(cat "$SCRATCH/io")"
client qemu-io -f raw -c 'read -P 0x3c 0 128k' "iscsi://127.0.0.2:$PORT/iqn.2026-11.org.twinsan:ha1/0" \
	>"$SCRATCH/io" 2>&1 || fail "reading through B failed: $(cat "$SCRATCH/io")"

# B restarted comes back with the device from its managed configuration, meets A again
# and serves the data.
DAEMON_PID=$PID_B daemon_stop
api_node_start "$SCRATCH/B" 127.0.0.2
PID_B=$DAEMON_PID
wait_synchronized B
client qemu-io -f raw -c 'read -P 0x3c 0 128k' "iscsi://127.0.0.2:$PORT/iqn.2026-11.org.twinsan:ha1/0" \
	>"$SCRATCH/io" 2>&1 || fail "reading through B after its restart failed: $(cat "$SCRATCH/io")"

DAEMON_PID=$PID_A daemon_stop
DAEMON_PID=$PID_B daemon_stop
exit 0
