#!/bin/bash
# Two initiators with sessions at the same time each write their own half of the disk
# (queue depth 16) and each reads back its own data and the other's.
. "$(dirname "$0")/../lib/twinsand.sh"
requires qemu-io

serve_disk two 64M

# Each qemu-io names itself with its own initiator name through -o driver options.
io()
{
	client qemu-io --image-opts \
		"driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=$IQN,lun=$LUN,initiator-name=$1" \
		"${@:2}"
}
io iqn.2026-11.org.twinsan.test:host-a -c "aio_write -P 0x11 0 16M" -c "aio_write -P 0x12 16M 16M" \
	-c aio_flush >"$SCRATCH/a" 2>&1 &
A=$!
io iqn.2026-11.org.twinsan.test:host-b -c "aio_write -P 0x21 32M 16M" -c "aio_write -P 0x22 48M 16M" \
	-c aio_flush >"$SCRATCH/b" 2>&1 &
B=$!
wait $A || fail "initiator A failed: $(cat "$SCRATCH/a")"
wait $B || fail "initiator B failed: $(cat "$SCRATCH/b")"

io iqn.2026-11.org.twinsan.test:host-a -c "read -P 0x21 32M 16M" -c "read -P 0x12 16M 16M" \
	>"$SCRATCH/ra" 2>&1 &
A=$!
io iqn.2026-11.org.twinsan.test:host-b -c "read -P 0x11 0 16M" -c "read -P 0x22 48M 16M" \
	>"$SCRATCH/rb" 2>&1 &
B=$!
wait $A || fail "initiator A could not read: $(cat "$SCRATCH/ra")"
wait $B || fail "initiator B could not read: $(cat "$SCRATCH/rb")"
cat "$SCRATCH/a" "$SCRATCH/b" "$SCRATCH/ra" "$SCRATCH/rb" | grep -q 'verification failed\|error' &&
	fail "wrong data: $(cat "$SCRATCH/ra" "$SCRATCH/rb")"
daemon_stop
