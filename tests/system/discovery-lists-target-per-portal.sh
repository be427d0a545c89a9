#!/bin/bash
# A SendTargets discovery session on either of two portals (IPv4 and IPv6) lists the target
# with a TargetAddress for each portal, and each listed portal serves the LUN.
. "$(dirname "$0")/../lib/twinsand.sh"
requires iscsi-ls
[ -e /proc/net/if_inet6 ] || skip "no IPv6"

PORT4=$(free_port)
IQN=iqn.2026-11.org.twinsan.test:discovery
daemon_start --portal 127.0.0.1:$PORT4 --portal "[::1]:$((PORT4 + 1))" --target $IQN \
	--lun "$SCRATCH/disk.img" --size 64M
PORT6=$((PORT4 + 1))

for portal in 127.0.0.1:$PORT4 "[::1]:$PORT6"; do
	client iscsi-ls -s "iscsi://$portal" >"$SCRATCH/ls" 2>&1 || fail "discovery on $portal failed: $(cat "$SCRATCH/ls")"
	grep -q "^Target:$IQN Portal:127.0.0.1:$PORT4,[0-9]*$" "$SCRATCH/ls" ||
		[ "$TEST_TARGET" = tgt ] || fail "discovery on $portal omits the IPv4 portal: $(cat "$SCRATCH/ls")"
	grep -q "^Target:$IQN Portal:\[::1\]:$PORT6,[0-9]*$" "$SCRATCH/ls" ||
		[ "$TEST_TARGET" = tgt ] || fail "discovery on $portal omits the IPv6 portal: $(cat "$SCRATCH/ls")"
	# iscsi-ls -s logs in to every listed portal and lists its LUNs.
	[ "$(grep -c "^Lun:$LUN *Type:DIRECT_ACCESS" "$SCRATCH/ls")" -ge 1 ] ||
		fail "a listed portal did not serve the LUN: $(cat "$SCRATCH/ls")"
	grep -q "Failed\|failed" "$SCRATCH/ls" && fail "a listed portal refused: $(cat "$SCRATCH/ls")"
done
daemon_stop
