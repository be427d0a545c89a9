#!/bin/bash
# A configuration file with two portals, two targets (an alias and a full iSCSI name), an
# initiator allow list, CHAP from a secret file and three LUNs is served as written:
# discovery lists both targets (the vault only to allowed initiators), each LUN has its size and block size, the allow list and
# CHAP are enforced, and the configured serial number is reported.
. "$(dirname "$0")/../lib/twinsand.sh"
requires iscsi-ls iscsi-inq iscsi-readcapacity16 qemu-io
needs_twinsand

PORT=$(free_port)
PORT2=$((PORT + 1))
ME=iqn.2026-11.org.twinsan.test:allowed
printf 'vault-secret-123\n' >"$SCRATCH/vault.secret"
chmod 600 "$SCRATCH/vault.secret"
mkdir "$SCRATCH/state"
cat >"$SCRATCH/twinsand.conf" <<CONF
[daemon]
log-level = info
state-dir = $SCRATCH/state

[portal lo]
address = 127.0.0.1
port = $PORT
[portal lo-too]
address = 127.0.0.1
port = $PORT2

[target disks]
alias = test disks

[lun disks:0]
path = $SCRATCH/d0.img
size = 32M
serial = CONFIG-SERIAL-0

[lun disks:1]
path = $SCRATCH/d1.img
size = 16M
block-size = 4096

[target iqn.2026-11.org.twinsan.test:vault]
allow = $ME
chap-user = vault
chap-secret-file = $SCRATCH/vault.secret

[lun iqn.2026-11.org.twinsan.test:vault:0]
path = $SCRATCH/vault.img
size = 8M
CONF
chmod 600 "$SCRATCH/twinsand.conf"
daemon_start --config "$SCRATCH/twinsand.conf"
DISKS=iqn.2026-11.org.twinsan:disks
VAULT=iqn.2026-11.org.twinsan.test:vault

client iscsi-ls -i $ME "iscsi://127.0.0.1:$PORT2" >"$SCRATCH/ls" || fail "discovery failed"
for t in $DISKS $VAULT; do
	for p in $PORT $PORT2; do
		grep -q "^Target:$t Portal:127.0.0.1:$p," "$SCRATCH/ls" ||
			fail "discovery does not list $t at port $p: $(cat "$SCRATCH/ls")"
	done
done

# Discovery shows a target only to initiators it allows.
client iscsi-ls -i iqn.2026-11.org.twinsan.test:stranger "iscsi://127.0.0.1:$PORT" >"$SCRATCH/ls2" ||
	fail "discovery failed"
grep -q "$VAULT" "$SCRATCH/ls2" && fail "discovery shows the vault to a stranger"
grep -q "$DISKS" "$SCRATCH/ls2" || fail "discovery hides an open target"

client iscsi-readcapacity16 "iscsi://127.0.0.1:$PORT/$DISKS/0" >"$SCRATCH/cap0" || fail "LUN 0 capacity"
grep -q '^RETURNED LOGICAL BLOCK ADDRESS:65535$' "$SCRATCH/cap0" || fail "LUN 0 size: $(cat "$SCRATCH/cap0")"
client iscsi-readcapacity16 "iscsi://127.0.0.1:$PORT2/$DISKS/1" >"$SCRATCH/cap1" || fail "LUN 1 capacity"
grep -q '^RETURNED LOGICAL BLOCK ADDRESS:4095$' "$SCRATCH/cap1" || fail "LUN 1 size: $(cat "$SCRATCH/cap1")"
grep -q '^LOGICAL BLOCK LENGTH IN BYTES:4096$' "$SCRATCH/cap1" || fail "LUN 1 block size"
client iscsi-inq -e 1 -c 128 "iscsi://127.0.0.1:$PORT/$DISKS/0" | grep -q 'CONFIG-SERIAL-0' ||
	fail "configured serial number not reported"
client qemu-io -f raw -c "write -P 0x99 0 1M" -c "read -P 0x99 0 1M" \
	"iscsi://127.0.0.1:$PORT/$DISKS/1" >"$SCRATCH/io" 2>&1 || fail "I/O to LUN 1 failed"
grep -q 'verification failed' "$SCRATCH/io" && fail "LUN 1 data wrong"

VAULT_URL="iscsi://vault%vault-secret-123@127.0.0.1:$PORT/$VAULT/0"
client iscsi-inq -i $ME "$VAULT_URL" >/dev/null || fail "allowed initiator with CHAP refused"
client iscsi-inq -i $ME "iscsi://127.0.0.1:$PORT/$VAULT/0" >/dev/null 2>&1 &&
	fail "vault served without CHAP"
client iscsi-inq -i iqn.2026-11.org.twinsan.test:stranger "$VAULT_URL" >/dev/null 2>&1 &&
	fail "vault served to an initiator not on the allow list"
daemon_stop
