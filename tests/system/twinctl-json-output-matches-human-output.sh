#!/bin/bash
# --json on status, target list, device list and server list prints one JSON object that
# parses, and its values are the ones the human output shows.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/twinctl.sh"
needs_api
requires jq
TEST_PORTS="3500 3519"

api_serve_disk json 48M

expect_exit 0 --json status
jq -e . "$SCRATCH/out" >"$SCRATCH/status.json" || fail "status --json does not parse: $(cat "$SCRATCH/out")"
[ "$(wc -l <"$SCRATCH/out")" = 1 ] || fail "status --json is not one line"
expect_exit 0 status
human=$(cat "$SCRATCH/out")
version=$(jq -r .server.version "$SCRATCH/status.json")
targets=$(jq -r .server.targets "$SCRATCH/status.json")
api=$(jq -r .server.api_version "$SCRATCH/status.json")
grep -qx "version:  $version (API $api)" <<<"$human" || fail "human version differs from JSON $version: $human"
grep -qx "targets:  $targets" <<<"$human" || fail "human target count differs from JSON $targets: $human"
[ "$targets" = 1 ] || fail "JSON counts $targets targets, not 1"
grep -qx "node id:  $(jq -r .server.node_id "$SCRATCH/status.json")" <<<"$human" || fail "human node id differs: $human"
[ "$(jq -r .server.pid "$SCRATCH/status.json")" = "$DAEMON_PID" ] || fail "JSON pid is not the daemon's"

# Global options may also follow the command.
expect_exit 0 target list --json
jq -e . "$SCRATCH/out" >"$SCRATCH/targets.json" || fail "target list --json does not parse"
expect_exit 0 target list
human=$(cat "$SCRATCH/out")
[ "$(jq -r '.targets[0].name' "$SCRATCH/targets.json")" = "$IQN" ] || fail "JSON target name is not $IQN"
[ "$(jq -r '.targets[0].luns[0].size' "$SCRATCH/targets.json")" = $((48 << 20)) ] || fail "JSON LUN size is not 48 MiB"
[ "$(jq -r '.targets[0].luns[0].backing' "$SCRATCH/targets.json")" = "$SCRATCH/disk.img" ] || fail "JSON LUN backing"
grep -qE "^  lun 0 +48\.0 MiB +$(jq -r '.targets[0].luns[0].access' "$SCRATCH/targets.json") " <<<"$human" ||
	fail "human LUN line does not match the JSON: $human"
[ "$(jq -r '.portals[0]' "$SCRATCH/targets.json")" = "127.0.0.1:$PORT,1" ] || fail "JSON portal"
grep -qx "portals: $(jq -r '.portals[0]' "$SCRATCH/targets.json")" <<<"$human" || fail "human portals differ: $human"

expect_exit 0 --json device list
[ "$(jq -r '.devices | length' "$SCRATCH/out")" = 0 ] || fail "JSON lists devices: $(cat "$SCRATCH/out")"

HOME=$SCRATCH/home XDG_CONFIG_HOME= expect_exit 0 server add here "unix:$API_SOCKET"
HOME=$SCRATCH/home XDG_CONFIG_HOME= expect_exit 0 --json server list
[ "$(jq -r '.servers[0].name + " " + .servers[0].address' "$SCRATCH/out")" = "here unix:$API_SOCKET" ] ||
	fail "server list --json: $(cat "$SCRATCH/out")"
daemon_stop
exit 0
