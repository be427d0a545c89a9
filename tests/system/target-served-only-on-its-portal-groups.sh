#!/bin/bash
# A target that lists portals is served only on their portal groups: discovery gives only
# those addresses, and a login through another portal group is refused as "not found";
# a target that lists none is served everywhere.  A list that splits a portal group is a
# configuration error naming file and line.
. "$(dirname "$0")/../lib/twinsand.sh"
requires iscsi-ls iscsi-inq
needs_twinsand

PORT=$(free_port)
PORT2=$((PORT + 1))
write_conf()
{
	cat >"$SCRATCH/twinsand.conf" <<CONF
[daemon]
state-dir = $SCRATCH/state

[portal front]
address = 127.0.0.1
port = $PORT
tpgt = 1
[portal back]
address = 127.0.0.1
port = $PORT2
tpgt = $1

[target frontonly]
portals = front

[lun frontonly:0]
path = $SCRATCH/a.img
size = 16M

[target everywhere]

[lun everywhere:0]
path = $SCRATCH/b.img
size = 16M
CONF
}
mkdir "$SCRATCH/state"
FRONT=iqn.2026-11.org.twinsan:frontonly
EVERY=iqn.2026-11.org.twinsan:everywhere

write_conf 2
daemon_start --config "$SCRATCH/twinsand.conf"

client iscsi-ls "iscsi://127.0.0.1:$PORT2" >"$SCRATCH/ls" 2>&1 || fail "discovery failed: $(cat "$SCRATCH/ls")"
grep -q "Target:$FRONT Portal:127.0.0.1:$PORT,1" "$SCRATCH/ls" || fail "frontonly not listed on its portal: $(cat "$SCRATCH/ls")"
grep -q "Target:$FRONT Portal:127.0.0.1:$PORT2" "$SCRATCH/ls" && fail "frontonly listed on the back portal: $(cat "$SCRATCH/ls")"
grep -q "Target:$EVERY Portal:127.0.0.1:$PORT2,2" "$SCRATCH/ls" || fail "everywhere not listed on the back portal: $(cat "$SCRATCH/ls")"

client iscsi-inq "iscsi://127.0.0.1:$PORT/$FRONT/0" >/dev/null || fail "frontonly refused on its own portal"
client iscsi-inq "iscsi://127.0.0.1:$PORT2/$EVERY/0" >/dev/null || fail "everywhere refused on the back portal"
client iscsi-inq "iscsi://127.0.0.1:$PORT2/$FRONT/0" >"$SCRATCH/inq" 2>&1 && fail "frontonly served on the back portal"
grep -qi "not found\|Target not found\|515" "$SCRATCH/inq" || fail "expected 'target not found', got: $(cat "$SCRATCH/inq")"
daemon_stop

# Both portals in portal group 1, but the target lists only one of them.
write_conf 1
"$TWINSAND" --config "$SCRATCH/twinsand.conf" >"$SCRATCH/bad.log" 2>&1 && fail "a split portal group was accepted"
grep -q "twinsand.conf:[0-9]*: \[target frontonly\] portals: portal back" "$SCRATCH/bad.log" ||
	fail "no file:line message for a split portal group: $(cat "$SCRATCH/bad.log")"
