#!/bin/bash
# HA configuration mistakes stop the daemon before it serves or dials anything, with a
# message naming the file, the line and what to do.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/ha.sh"

ha_setup 16M
CONF=$SCRATCH/A/twinsand.conf
GOOD=$SCRATCH/good.conf
cp "$CONF" "$GOOD"

# expect_refusal MESSAGE: node A's configuration must be refused with it.
expect_refusal()
{
	timeout 20 "$TWINSAND" --config "$CONF" --api-socket "$SCRATCH/api.sock" >"$SCRATCH/out" 2>&1 &&
		fail "bad config accepted"
	grep -qF "$1" "$SCRATCH/out" || fail "expected \"$1\", got: $(cat "$SCRATCH/out")"
	_sanitizer_report "$SCRATCH/out" && fail "sanitizer report: $(cat "$SCRATCH/out")"
	ss -Htln "( sport = :$HA_PORT or sport = :$HA_SYNC_PORT or sport = :$HA_HB_PORT )" | grep -q . &&
		fail "something listens on the node's ports"
	ss -Htn state syn-sent state established "( dport = :$HA_SYNC_PORT or dport = :$HA_HB_PORT )" |
		grep -q . && fail "something dials the partner"
	return 0
}
# edit SED-SCRIPT: the good configuration changed; prints the line number of the match.
edit() { sed "$1" "$GOOD" >"$CONF"; }
line_of() { grep -n "$1" "$CONF" | head -n 1 | cut -d: -f1; }
ha_line=$(grep -n '^\[ha HA1\]' "$GOOD" | cut -d: -f1)

edit 's/^ha = HA1/ha = HA2/'
expect_refusal "$CONF:$(line_of '^ha = HA2'): ha 'HA2' names no [ha HA2] section above this LUN"

edit 's/^priority = primary/priority = first/'
expect_refusal "$CONF:$(line_of '^priority'): priority 'first' is unknown; use primary on one node and secondary"

edit '/^secret-file/d'
expect_refusal "$CONF:$ha_line: [ha HA1] has no secret; add 'secret-file = "

edit "s/^sync = .*/sync = 127.0.0.1:$HA_SYNC_PORT/"
expect_refusal "$CONF:$(line_of '^sync'): sync '127.0.0.1:$HA_SYNC_PORT' must be 'LOCAL-ADDRESS:PORT PARTNER-ADDRESS:PORT'"

edit "s/^heartbeat = .*/heartbeat = 127.0.0.1:$HA_SYNC_PORT 127.0.0.2:$HA_HB_PORT/"
expect_refusal "$CONF:$(line_of '^heartbeat'): [ha HA1] link local end uses the same address as the link of line $(line_of '^sync')"

edit 's/^initial-sync = clear/failover = majority\ninitial-sync = clear/'
expect_refusal "$CONF:$ha_line: [ha HA1] has failover = majority without a witness"

edit "s|^secret-file = .*|secret-file = $SCRATCH/absent.secret|"
expect_refusal "$CONF:$ha_line: [ha HA1] secret file $SCRATCH/absent.secret: No such file or directory"

edit 's/^ha = HA1/ha = HA1\npath = \/srv\/x.img/'
expect_refusal "$CONF:$(line_of '^\[lun ha:0\]'): [lun ha:0] has both ha and path"

# Found when the daemon opens what the file describes, still named by the section.
cp "$GOOD" "$CONF"
truncate -s 8M "$(ha_replica A)"
expect_refusal "$CONF:$ha_line: [ha HA1] $(ha_replica A) holds 8388608 bytes, not the configured size 16777216"
rm -f "$(ha_replica A)"

# The secondary cannot listen on a link address another program holds.
requires python3
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.2", int(sys.argv[1]))); s.listen(1); print("ok", flush=True); time.sleep(20)' \
	"$HA_SYNC_PORT" >"$SCRATCH/holder" 2>&1 &
holder=$!
until grep -q ok "$SCRATCH/holder"; do kill -0 $holder 2>/dev/null || fail "cannot hold the port"; sleep 0.1; done
timeout 20 "$TWINSAND" --config "$SCRATCH/B/twinsand.conf" --api-socket "$SCRATCH/api.sock" >"$SCRATCH/out" 2>&1 &&
	fail "B started on a busy port"
kill $holder
grep -qF "$SCRATCH/B/twinsand.conf:$ha_line: HA1: sync link 0 on 127.0.0.2:$HA_SYNC_PORT: cannot listen: Address already in use" \
	"$SCRATCH/out" || fail "busy link address: $(cat "$SCRATCH/out")"
_sanitizer_report "$SCRATCH/out" && fail "sanitizer report: $(cat "$SCRATCH/out")"
exit 0
