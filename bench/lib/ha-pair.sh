# The HA benchmarks' common setup (sourced by bench/ha and bench/ha-cpu): a plain LUN and
# an HA pair on loopback, node A (127.0.0.1, primary) and node B (127.0.0.2, secondary),
# on written 1 GiB tmpfs files, replicas declared identical (initial-sync = none).
#
# The caller sets TOP, TWINSAND, TWINLOAD, HA_EXTRA, PLAIN_PORT HA_PORT SYNC_PORT HB_PORT
# and the first port it may not use (LAST_PORT), then calls pair_setup FILES... (the
# files to write, relative to $DIR: plain.img A/ha1.img B/ha1.img ...) and starts the
# daemons with start / start_node.  Everything is removed on exit.
IQN=iqn.2026-11.org.twinsan:bench
HA_IQN=iqn.2026-11.org.twinsan:bench-ha
ADDR_A=127.0.0.1
ADDR_B=127.0.0.2
SIZE_MIB=1024
declare -A PID=() LOG=()
STARTS=0

pair_cleanup()
{
	set +e
	for n in "${!PID[@]}"; do
		kill -KILL "${PID[$n]}" 2>/dev/null && wait "${PID[$n]}" 2>/dev/null
	done
	# Copies for a look afterwards; the replicas go.
	cp "$DIR"/*.log "$OUT"/ 2>/dev/null
	rm -rf "$DIR"
}

# Also from a $(...) subshell: the main shell is told to stop and clean up.
die() { echo "bench: $*" >&2; kill -TERM $$; exit 1; }

# write_config NODE PRIORITY MY-ADDRESS PARTNER-ADDRESS
write_config()
{
	local kv
	mkdir -p "$DIR/$1/state"
	{
		cat <<-CONF
		[daemon]
		state-dir = $DIR/$1/state

		[portal lo]
		address = $3
		port = $HA_PORT

		[ha HA1]
		uuid = $UUID
		path = $DIR/$1/ha1.img
		priority = $2
		initial-sync = none
		secret-file = $DIR/ha1.secret
		sync = $3:$SYNC_PORT $4:$SYNC_PORT
		heartbeat = $3:$HB_PORT $4:$HB_PORT
		CONF
		for kv in $HA_EXTRA; do echo "${kv%%=*} = ${kv#*=}"; done
		printf '\n[target %s]\n[lun %s:0]\nha = HA1\n' $HA_IQN $HA_IQN
	} >"$DIR/$1/twinsand.conf"
}

# pair_setup FILES...: checks the tools and ports, makes $DIR with private copies of the
# programs, the written files and both nodes' configurations.
pair_setup()
{
	local f
	[ -x "$TWINSAND" ] || { echo "bench: build $TWINSAND first (make)" >&2; exit 1; }
	[ -x "$TWINLOAD" ] || { echo "bench: build $TWINLOAD first (make fault-tools)" >&2; exit 1; }
	if ss -Htln "( sport >= :$PLAIN_PORT and sport <= :$LAST_PORT )" | grep -q .; then
		echo "bench: ports $PLAIN_PORT-$LAST_PORT are in use (another benchmark?)" >&2
		exit 1
	fi
	mkdir -p "$OUT"
	DIR=$(mktemp -d /dev/shm/twinsan-bench-ha.XXXXXX)
	trap pair_cleanup EXIT
	trap 'exit 1' INT TERM HUP
	# Private copies: a rebuild by someone else during the run must not change the programs.
	mkdir -p "$DIR/bin"
	cp "$TWINSAND" "$DIR/bin/twinsand"
	cp "$TWINLOAD" "$DIR/bin/twinload"
	TWINSAND=$DIR/bin/twinsand TWINLOAD=$DIR/bin/twinload
	# Written files, not sparse ones: writing into tmpfs holes would cost page allocation.
	echo "bench: preparing $# files of ${SIZE_MIB} MiB in $DIR"
	for f in "$@"; do
		mkdir -p "$DIR/$(dirname "$f")"
		dd if=/dev/zero of="$DIR/$f" bs=1M count=$SIZE_MIB status=none
	done
	UUID=$(cat /proc/sys/kernel/random/uuid)
	(umask 077 && head -c 24 /dev/urandom | base64 >"$DIR/ha1.secret")
	write_config A primary $ADDR_A $ADDR_B
	write_config B secondary $ADDR_B $ADDR_A
	declare -gA URL=(
		[plain]=iscsi://$ADDR_A:$PLAIN_PORT/$IQN/0
		[A]=iscsi://$ADDR_A:$HA_PORT/$HA_IQN/0
		[B]=iscsi://$ADDR_B:$HA_PORT/$HA_IQN/0
	)
}

# Each log line gets the time it was written: resync times are read from the logs.
stamp() { while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done; }

# start NAME TWINSAND-ARGS...: a new log per start; waits for "ready".
start()
{
	local name=$1 tries=0
	shift
	STARTS=$((STARTS + 1))
	LOG[$name]=$DIR/$name.$STARTS.log
	"$TWINSAND" "$@" > >(stamp >"${LOG[$name]}") 2>&1 &
	PID[$name]=$!
	until grep -q ready "${LOG[$name]}" 2>/dev/null; do
		kill -0 "${PID[$name]}" 2>/dev/null || die "$name exited before it was ready: $(tail -n 5 "${LOG[$name]}")"
		tries=$((tries + 1))
		[ $tries -lt 300 ] || die "$name was not ready within 30 s"
		sleep 0.1
	done
}
start_node() { start "$1" --config "$DIR/$1/twinsand.conf"; }
start_plain() { start plain --portal $ADDR_A:$PLAIN_PORT --target $IQN --lun "$DIR/plain.img"; }

kill_node()
{
	kill -KILL "${PID[$1]}"
	wait "${PID[$1]}" 2>/dev/null || true
	unset "PID[$1]"
}

# stamped_state NODE [FROM-LINE]: "TIME STATE" of HA1's last state line in the node's log
# (from that line on).
stamped_state()
{
	tail -n +"${2:-1}" "${LOG[$1]}" | sed -n 's/^\([0-9.]*\) .*HA1: state \(.*\)$/\1 \2/p' | tail -n 1
}

# wait_state NODE STATE [FROM-LINE]: prints the time the node logged it.
wait_state()
{
	local deadline=$((SECONDS + 120)) s
	until s=$(stamped_state "$1" "${3:-1}") && [ "${s#* }" = "$2" ]; do
		[ $SECONDS -lt $deadline ] || die "node $1 not '$2' within 120 s (last: '${s#* }')"
		kill -0 "${PID[$1]}" 2>/dev/null || die "node $1 died: $(tail -n 5 "${LOG[$1]}")"
		sleep 0.05
	done
	echo "${s%% *}"
}

# The pair, both synchronized.
start_pair()
{
	start_node A
	start_node B
	wait_state A synchronized >/dev/null
	wait_state B synchronized >/dev/null
}
