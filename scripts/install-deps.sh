#!/bin/sh
# Installs every Debian package twinsan needs to build, test, fuzz, benchmark and demo.
# Idempotent: does nothing when all packages are already present.
set -eu

PACKAGES="
build-essential pkg-config
liburing-dev libisal-dev libssl-dev libjansson-dev libinih-dev
libmicrohttpd-dev libsystemd-dev libcmocka-dev
clang libclang-rt-14-dev
libiscsi-bin libiscsi-dev qemu-utils qemu-block-extra
tgt iproute2 procps psmisc util-linux
"

missing=""
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages:$missing; run as root to install them" >&2
	exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
