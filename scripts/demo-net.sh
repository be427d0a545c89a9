# shellcheck shell=bash
# The demo's networks (sourced by scripts/demo.sh).  Like the seed's lab, the two storage
# nodes and the witness are separate hosts: each gets its own network namespace, and they
# are joined by three networks:
#
#   iSCSI      172.30.100.0/24  a bridge in the root namespace (this host, the initiator,
#                               is .254): node 1 .1, node 2 .2, the witness .3
#   sync       172.30.101.0/24  a direct link node 1 .1 <-> node 2 .2 (the data)
#   heartbeat  10.10.10.0/24    a direct link node 1 .1 <-> node 2 .2 (liveness only)
#
# Without namespaces (not root, no `ip netns`, or the iSCSI subnet already routed here)
# everything runs on loopback instead: node 1 127.0.0.1, node 2 127.0.0.2, the witness
# 127.0.0.3, each link on its own port.  DEMO_NET=netns|loopback forces the choice.
#
#   demo_net_choose   sets DEMO_NET and the addresses (ISCSI_1, SYNC_1, HB_1, ..., WITNESS)
#   demo_net_up       creates the namespaces and links (netns only)
#   demo_net_down     removes them, also those a crashed run left behind
#   demo_on HOST      sets ON to the command prefix that runs a program on host node1,
#                     node2 or witness (a prefix that execs, so a background job's pid is
#                     the program's)
#   demo_net_show     prints the topology
NET_PREFIX=twinsan-demo
NET_BRIDGE=tsdemo-iscsi
NET_HOSTS="node1 node2 witness"
NET_ISCSI=172.30.100

# Why namespaces cannot be used here, or nothing when they can.
_net_obstacle()
{
	[ "$(id -u)" = 0 ] || { echo "not running as root"; return; }
	command -v ip >/dev/null || { echo "no ip command (iproute2)"; return; }
	if ip -4 route show match $NET_ISCSI.0/24 | grep -v '^default' | grep -q . ||
		ip -4 route show root $NET_ISCSI.0/24 | grep -q .; then
		echo "$NET_ISCSI.0/24 is already routed on this host"
		return
	fi
	ip netns add $NET_PREFIX-probe 2>/dev/null || { echo "cannot create a network namespace"; return; }
	if ! ip link add ${NET_BRIDGE}p type veth peer name probe netns $NET_PREFIX-probe 2>/dev/null; then
		ip netns del $NET_PREFIX-probe
		echo "cannot create veth links"
		return
	fi
	ip link del ${NET_BRIDGE}p
	ip netns del $NET_PREFIX-probe
}

demo_net_choose()
{
	_why=""
	case ${DEMO_NET:-auto} in
	auto)
		_why=$(_net_obstacle)
		if [ -z "$_why" ]; then DEMO_NET=netns; else DEMO_NET=loopback; fi
		;;
	netns | loopback) ;;
	*)
		echo "demo: DEMO_NET='$DEMO_NET': say netns or loopback" >&2
		return 2
		;;
	esac
	if [ "$DEMO_NET" = netns ]; then
		ISCSI_1=$NET_ISCSI.1 ISCSI_2=$NET_ISCSI.2 WITNESS=$NET_ISCSI.3 HOST=$NET_ISCSI.254
		SYNC_1=172.30.101.1 SYNC_2=172.30.101.2 HB_1=10.10.10.1 HB_2=10.10.10.2
		NET_WHY="network namespaces: each node and the witness is a separate host"
	else
		ISCSI_1=127.0.0.1 ISCSI_2=127.0.0.2 WITNESS=127.0.0.3 HOST=127.0.0.1
		SYNC_1=127.0.0.1 SYNC_2=127.0.0.2 HB_1=127.0.0.1 HB_2=127.0.0.2
		NET_WHY="loopback addresses${_why:+ (no network namespaces: $_why)}"
	fi
}

_net_link() # NAME-IN-A NS-A ADDR-A NAME-IN-B NS-B ADDR-B: a direct cable
{
	ip link add "$1" netns "$2" type veth peer name "$4" netns "$5"
	ip -n "$2" addr add "$3/24" dev "$1"
	ip -n "$5" addr add "$6/24" dev "$4"
	ip -n "$2" link set "$1" up
	ip -n "$5" link set "$4" up
}

demo_net_up()
{
	[ "$DEMO_NET" = netns ] || return 0
	for _h in $NET_HOSTS; do
		ip netns add "$NET_PREFIX-$_h"
		ip -n "$NET_PREFIX-$_h" link set lo up
	done
	ip link add $NET_BRIDGE type bridge forward_delay 0
	ip addr add "$HOST/24" dev $NET_BRIDGE
	ip link set $NET_BRIDGE up
	set -- node1 "$ISCSI_1" node2 "$ISCSI_2" witness "$WITNESS"
	while [ $# -gt 0 ]; do
		ip link add "tsdemo-$1" type veth peer name iscsi0 netns $NET_PREFIX-"$1"
		ip link set "tsdemo-$1" master $NET_BRIDGE up
		ip -n $NET_PREFIX-"$1" addr add "$2/24" dev iscsi0
		ip -n $NET_PREFIX-"$1" link set iscsi0 up
		shift 2
	done
	_net_link sync0 $NET_PREFIX-node1 "$SYNC_1" sync0 $NET_PREFIX-node2 "$SYNC_2"
	_net_link hb0 $NET_PREFIX-node1 "$HB_1" hb0 $NET_PREFIX-node2 "$HB_2"
}

# Idempotent: removes whatever of the demo's namespaces, links and bridge exists.  The
# links in this namespace go first and explicitly: a deleted namespace takes its links'
# peers along only later, and a demo started right after would find their names taken.
demo_net_down()
{
	command -v ip >/dev/null || return 0
	for _l in $NET_HOSTS; do _net_del_link "tsdemo-$_l"; done
	_net_del_link ${NET_BRIDGE}p
	_net_del_link $NET_BRIDGE
	for _h in $NET_HOSTS probe; do
		if [ -e "/run/netns/$NET_PREFIX-$_h" ]; then ip netns del "$NET_PREFIX-$_h"; fi
	done
}

_net_del_link() { if ip link show "$1" >/dev/null 2>&1; then ip link del "$1"; fi; }

# shellcheck disable=SC2034 # ON is for the caller
demo_on()
{
	if [ "$DEMO_NET" = netns ]; then ON=(ip netns exec "$NET_PREFIX-$1"); else ON=(); fi
}

demo_net_show()
{
	echo "Network: $NET_WHY"
	if [ "$DEMO_NET" = netns ]; then
		cat <<NET
  network     node 1          node 2          witness         this host
  iSCSI       $ISCSI_1    $ISCSI_2    $WITNESS    $HOST (bridge $NET_BRIDGE)
  sync        $SYNC_1    $SYNC_2    -               -
  heartbeat   $HB_1      $HB_2      -               -
  (namespaces $NET_PREFIX-node1, $NET_PREFIX-node2, $NET_PREFIX-witness)
NET
	else
		echo "  node 1 $ISCSI_1, node 2 $ISCSI_2, witness $WITNESS; each link on its own port"
	fi
}
