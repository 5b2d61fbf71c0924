#!/bin/sh
# Installs what the peer rows of the side-by-side benchmark need
# (bench/side_by_side.ts), from Debian packages. Idempotent: installs only
# what is missing and runs `apt-get update` at most once.
#
#   scripts/install-peers.sh            # trafgen, dpdk-testpmd, iproute2, taskset, cc
#   scripts/install-peers.sh --ovs      # also Open vSwitch (the optional OVS row)
#   scripts/install-peers.sh --check    # only report what is there
#   scripts/install-peers.sh --no-ovs-dpdk  # leave out Open vSwitch with DPDK (below)
#
# Open vSwitch with DPDK (the OVS-DPDK vhost-user row) is not installed: its
# Debian packages are unpacked into build/peers/ovs-dpdk/ by
# scripts/peers/ovs_dpdk.ts (≈ 5 MB to download; a no-op when current; needs
# deno). A failure there is not fatal: the row is then skipped, saying why.
#
# Package → program (checked with `dpkg -L`):
#   netsniff-ng  → /usr/sbin/trafgen     (Linux rows' sender; bench/c/tx_ring is the fallback)
#   dpdk-dev     → /usr/bin/dpdk-testpmd (the `dpdk` package does NOT ship it) and the memif PMD
#   iproute2     → ip, bridge            (namespaces, veths, the Linux bridge)
#   util-linux   → taskset               (pinning)
#   gcc, libc6-dev → cc                  (bench/c peer programs)
#   procps       → sysctl                (IPv6 off inside the test namespaces)
# Sizes on Debian 12: dpdk-dev ≈ 25 MB to download, netsniff-ng ≈ 4 MB, openvswitch-switch ≈ 5 MB.
set -eu

with_ovs=0
with_ovs_dpdk=1
check_only=0
for a in "$@"; do
  case "$a" in
  --ovs) with_ovs=1 ;;
  --no-ovs-dpdk) with_ovs_dpdk=0 ;;
  --check) check_only=1 ;;
  -h | --help)
    sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "install-peers: unknown option $a (try --help)" >&2
    exit 2
    ;;
  esac
done

# "package:program" pairs; the program proves the package is usable.
wanted="netsniff-ng:trafgen dpdk-dev:dpdk-testpmd iproute2:ip iproute2:bridge util-linux:taskset gcc:cc libc6-dev: procps:sysctl"
if [ "$with_ovs" = 1 ]; then
  wanted="$wanted openvswitch-switch:ovs-vswitchd"
fi

have_prog() {
  PATH="$PATH:/usr/sbin:/sbin" command -v "$1" >/dev/null 2>&1
}

have_pkg() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# Open vSwitch with DPDK, unpacked into build/ (scripts/peers/ovs_dpdk.ts);
# with --check only reported. Sets ovs_dpdk_missing=1 when it is not there.
ovs_dpdk_missing=0
prepare_ovs_dpdk() {
  if [ "$with_ovs_dpdk" != 1 ]; then return 0; fi
  root=$(cd "$(dirname "$0")/.." && pwd)
  deno="$root/node_modules/.bin/deno"
  [ -x "$deno" ] || deno=$(command -v deno || true)
  if [ -z "$deno" ]; then
    echo "install-peers: no deno here: run deno run -A scripts/peers/ovs_dpdk.ts for the OVS-DPDK row" >&2
    ovs_dpdk_missing=1
    return 0
  fi
  if [ "$check_only" = 1 ]; then
    DENO_NO_PACKAGE_JSON=1 "$deno" run -A "$root/scripts/peers/ovs_dpdk.ts" --check || ovs_dpdk_missing=1
    return 0
  fi
  if [ "$(id -u)" = 0 ] && ! apt-cache show openvswitch-switch-dpdk >/dev/null 2>&1; then
    echo "install-peers: apt-get update (apt knows no openvswitch-switch-dpdk)"
    apt-get update -qq || true
  fi
  if ! DENO_NO_PACKAGE_JSON=1 "$deno" run -A "$root/scripts/peers/ovs_dpdk.ts"; then
    echo "install-peers: Open vSwitch with DPDK could not be prepared (the OVS-DPDK row will be skipped)" >&2
    ovs_dpdk_missing=1
  fi
}

missing=""
report() {
  missing=""
  for pair in $wanted; do
    pkg=${pair%%:*}
    prog=${pair#*:}
    if have_pkg "$pkg" && { [ -z "$prog" ] || have_prog "$prog"; }; then
      ver=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null)
      printf '  installed  %-20s %s\n' "$pkg" "${prog:+($prog) }$ver"
    else
      printf '  missing    %-20s %s\n' "$pkg" "${prog:+($prog)}"
      case " $missing " in
      *" $pkg "*) ;;
      *) missing="$missing $pkg" ;;
      esac
    fi
  done
}

echo "peers of the side-by-side benchmark:"
report
if [ -z "$missing" ]; then
  echo "install-peers: everything is installed."
  prepare_ovs_dpdk
  if [ "$check_only" = 1 ] && [ "$ovs_dpdk_missing" = 1 ]; then exit 1; fi
  exit 0
fi
if [ "$check_only" = 1 ]; then
  echo "install-peers: missing:$missing"
  prepare_ovs_dpdk
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-peers: no apt-get here (not Debian/Ubuntu); install by hand:$missing" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-peers: installing needs root. Run:" >&2
  echo "  sudo $0 $*" >&2
  echo "or: sudo apt-get install -y$missing" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Update the package lists once, and only when a package is not known yet.
need_update=0
for pkg in $missing; do
  if ! apt-cache show "$pkg" >/dev/null 2>&1; then need_update=1; fi
done
if [ "$need_update" = 1 ] || [ -z "$(ls /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial)" ]; then
  echo "install-peers: apt-get update"
  apt-get update -qq
fi
echo "install-peers: apt-get install$missing"
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing
if [ "$with_ovs" = 1 ] && have_pkg openvswitch-switch; then
  # The benchmark starts its own private ovsdb-server/ovs-vswitchd; the
  # packaged service is not needed and would otherwise keep running.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active -q openvswitch-switch 2>/dev/null; then
    echo "install-peers: note: the openvswitch-switch service is running (systemctl stop openvswitch-switch)"
  fi
fi

echo "after installing:"
report
if [ -n "$missing" ]; then
  echo "install-peers: still missing:$missing" >&2
  exit 1
fi
prepare_ovs_dpdk
echo "install-peers: done."
