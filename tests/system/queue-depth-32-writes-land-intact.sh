#!/bin/bash
# 32 concurrent writes at a time (qemu-img bench), in 16 KiB and unaligned 1 MiB + 512
# strides, all land intact: every byte reads back with its pattern and nothing between
# them is touched.
. "$(dirname "$0")/../lib/twinsand.sh"
requires qemu-img qemu-io

serve_disk qd32 128M

client qemu-img bench -f raw -w -c 4096 -d 32 -s 16k --pattern=0x3a "$URL" >"$SCRATCH/b1" 2>&1 ||
	fail "qemu-img bench failed: $(cat "$SCRATCH/b1")"
# Second pass: 512-byte records at 1 MiB + 512 strides from 64 MiB on, wrapping nowhere.
client qemu-img bench -f raw -w -c 60 -d 32 -s 512 -S $((1048576 + 512)) -o 64M --pattern=0xc5 \
	"$URL" >"$SCRATCH/b2" 2>&1 || fail "qemu-img bench (strided) failed: $(cat "$SCRATCH/b2")"

cmds=(-c "read -P 0x3a 0 64M")
for i in 0 1 2 59; do
	off=$((64 * 1048576 + i * (1048576 + 512)))
	cmds+=(-c "read -P 0xc5 $off 512" -c "read -P 0 $((off + 512)) 1048576")
done
client qemu-io -f raw "${cmds[@]}" "$URL" >"$SCRATCH/io" 2>&1 || fail "read back failed: $(cat "$SCRATCH/io")"
grep -q 'verification failed' "$SCRATCH/io" && fail "data wrong: $(grep -m3 'verification failed' "$SCRATCH/io")"
daemon_stop
