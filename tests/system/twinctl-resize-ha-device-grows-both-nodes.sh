#!/bin/bash
# twinctl device resize NAME --size N --partner SERVER grows an HA device on both nodes
# while it is in use: READ CAPACITY shows the new size through each node, both nodes'
# logical units take the new capacity (CAPACITY DATA HAS CHANGED), the new region reads as zeros
# through both nodes and data written there through one node reads back through the
# other; the device stays synchronized, both managed configurations keep the size and a
# restart of each node agrees.  Shrinking is refused and changes nothing; an HA device
# without --partner is a usage error.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/twinctl.sh"
requires qemu-io iscsi-readcapacity16 python3
needs_api
TEST_PORTS="3620 3639"

api_pair_start
url() { echo "iscsi://$1:$PORT/iqn.2026-11.org.twinsan:ha1/0"; }

# wait_synchronized A|B
wait_synchronized()
{
	tries=0
	until CTL_SOCKET=$SCRATCH/$1/api.sock ctl --json device status ha1 &&
		grep -q '"state": *"synchronized"' "$SCRATCH/out" && grep -q '"partner_connected": *true' "$SCRATCH/out"; do
		tries=$((tries + 1))
		[ $tries -lt 300 ] || fail "ha1 on $1 is not synchronized: $(cat "$SCRATCH/out" "$SCRATCH/err")"
		sleep 0.1
	done
}

on A 0 device create ha1 --ha --partner "unix:$SCRATCH/B/api.sock" \
	--path "$SCRATCH/A/ha1.img" --partner-path "$SCRATCH/B/ha1.img" --size 16M --priority primary \
	--initial-sync clear --sync 127.0.0.1:$((PORT + 1)) 127.0.0.2:$((PORT + 1))
wait_synchronized A
wait_synchronized B
client qemu-io -f raw -c 'write -P 0x5c 15M 1M' "$(url 127.0.0.1)" >"$SCRATCH/io" 2>&1 || fail "write: $(cat "$SCRATCH/io")"

on A 2 device resize ha1 --size 32M
grep -q 'give its partner with --partner' "$SCRATCH/err" || fail "resize without --partner said: $(cat "$SCRATCH/err")"
on A 1 device resize ha1 --size 8M --partner "unix:$SCRATCH/B/api.sock"
grep -q 'shrinking would cut off data' "$SCRATCH/err" || fail "shrinking said: $(cat "$SCRATCH/err")"
[ "$(stat -c %s "$SCRATCH/A/ha1.img")" = $((16 << 20)) ] || fail "a refused shrink changed A's replica"

on A 0 device resize ha1 --size 32M --partner "unix:$SCRATCH/B/api.sock"
grep -q "^ha1: resized to 33554432 bytes on this node and on unix:$SCRATCH/B/api.sock" "$SCRATCH/out" ||
	fail "device resize said: $(cat "$SCRATCH/out")"
# Each node's LU took the new capacity, which raises CAPACITY DATA HAS CHANGED for every nexus.
[ "$(grep -c 'scsi: capacity now 65536 blocks' "$DAEMON_LOG")" = 2 ] || fail "not both nodes took the new capacity"
for n in 127.0.0.1 127.0.0.2; do
	client iscsi-readcapacity16 "$(url $n)" >"$SCRATCH/cap" || fail "READ CAPACITY through $n failed"
	grep -q 'Total size:33554432' "$SCRATCH/cap" || fail "READ CAPACITY through $n: $(cat "$SCRATCH/cap")"
done
for n in A B; do
	[ "$(stat -c %s "$SCRATCH/$n/ha1.img")" = $((32 << 20)) ] || fail "$n's replica did not grow"
	grep -q '^size = 32M$\|^size = 33554432$' "$SCRATCH/$n/state/managed.conf" ||
		fail "$n's managed configuration keeps another size: $(cat "$SCRATCH/$n/state/managed.conf")"
	on $n 0 --json device status ha1
	grep -q '"size": *33554432' "$SCRATCH/out" && grep -q '"state": *"synchronized"' "$SCRATCH/out" ||
		fail "$n after the resize: $(cat "$SCRATCH/out")"
done
client qemu-io -f raw -c 'read -P 0 16M 16M' -c 'read -P 0x5c 15M 1M' "$(url 127.0.0.2)" >"$SCRATCH/io" 2>&1 ||
	fail "the new region through B: $(cat "$SCRATCH/io")"
client qemu-io -f raw -c 'write -P 0x6d 30M 2M' "$(url 127.0.0.2)" >"$SCRATCH/io" 2>&1 || fail "writing the new region through B: $(cat "$SCRATCH/io")"
client qemu-io -f raw -c 'read -P 0x6d 30M 2M' "$(url 127.0.0.1)" >"$SCRATCH/io" 2>&1 || fail "reading it through A: $(cat "$SCRATCH/io")"

# Each node restarted comes back with the new size and meets the other.
DAEMON_PID=$PID_B daemon_stop
api_node_start "$SCRATCH/B" 127.0.0.2
PID_B=$DAEMON_PID
wait_synchronized B
DAEMON_PID=$PID_A daemon_stop
api_node_start "$SCRATCH/A" 127.0.0.1
PID_A=$DAEMON_PID
wait_synchronized A
client qemu-io -f raw -c 'read -P 0x6d 30M 2M' "$(url 127.0.0.1)" >"$SCRATCH/io" 2>&1 || fail "after the restarts: $(cat "$SCRATCH/io")"
DAEMON_PID=$PID_A daemon_stop
DAEMON_PID=$PID_B daemon_stop
exit 0
