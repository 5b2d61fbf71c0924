#!/bin/sh
# Installs what the kernel-interface tests need (tests/kernel_*_test.ts),
# from Debian packages. Idempotent: installs only what is missing and runs
# `apt-get update` only when a package is unknown to apt. Without root it
# only prints what is missing and the command to install it.
#
#   scripts/install-deps.sh            # install what is missing
#   scripts/install-deps.sh --qemu     # also QEMU, and the test guest (scripts/guest/prepare.ts)
#   scripts/install-deps.sh --check    # only report (exit 1 if something is missing)
#
# Package → program:
#   iproute2      → ip        namespaces, veth pairs, TAP devices, links
#   iputils-ping  → ping      ping between namespaces through the switch
#   iperf3        → iperf3    the TCP transfer between namespaces
#   ethtool       → ethtool   offloads on the peers of AF_PACKET ports
#   tcpdump       → tcpdump   pcap interop tests (tcpdump -r), debugging
#   tshark        → tshark    pcap interop tests (checksums, pcapng)
#   procps        → sysctl    IPv6 off inside the test namespaces
#   kmod          → modprobe  loading tun / veth when they are modules
#   util-linux    → setpriv   the "without privileges" case
#   tcpreplay     → tcpreplay injection through the libpcap interposer (tests/pcap_interposer_test.ts)
#   libpcap-dev   → pcap-config  <pcap/pcap.h> for that test's libpcap program (tests/pcap/)
#   dpdk-dev      → dpdk-testpmd  virtio-user front-ends of tests/vhost_user_test.ts, bench rows
#   qemu-system-x86 → qemu-system-x86_64  (--qemu only; ~40 MB)
#
# Exit status: 0 when everything is there or was installed, and also when it
# cannot install (not root, no apt-get: the tests then skip, saying why);
# 1 when an install failed; with --check, 1 when something is missing.
set -eu

check_only=0
with_qemu=0
for a in "$@"; do
  case "$a" in
  --check) check_only=1 ;;
  --qemu) with_qemu=1 ;;
  -h | --help)
    sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "install-deps: unknown option $a (try --help)" >&2
    exit 2
    ;;
  esac
done

wanted="iproute2:ip iputils-ping:ping iperf3:iperf3 ethtool:ethtool tcpdump:tcpdump tshark:tshark procps:sysctl kmod:modprobe util-linux:setpriv tcpreplay:tcpreplay libpcap-dev:pcap-config dpdk-dev:dpdk-testpmd"
if [ "$with_qemu" = 1 ]; then
  wanted="$wanted qemu-system-x86:qemu-system-x86_64"
fi

have_prog() {
  PATH="$PATH:/usr/sbin:/sbin" command -v "$1" >/dev/null 2>&1
}

have_pkg() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# --qemu: the test guest (a no-op when built for the current package versions);
# a failure is not fatal: tests/guest_test.ts then says why it skips
prepare_guest() {
  if [ "$with_qemu" != 1 ] || [ "$check_only" = 1 ]; then return 0; fi
  root=$(cd "$(dirname "$0")/.." && pwd)
  deno="$root/node_modules/.bin/deno"
  [ -x "$deno" ] || deno=$(command -v deno || true)
  if [ -z "$deno" ]; then
    echo "install-deps: no deno here: the test guest is built when a test first needs it"
    return 0
  fi
  if [ "$(id -u)" = 0 ] && ! apt-cache depends linux-image-cloud-amd64 >/dev/null 2>&1; then
    apt-get update -qq || true
  fi
  DENO_NO_PACKAGE_JSON=1 "$deno" run -A "$root/scripts/guest/prepare.ts" ||
    echo "install-deps: the test guest could not be built (tests/guest_test.ts will skip)" >&2
}

missing=""
report() {
  missing=""
  for pair in $wanted; do
    pkg=${pair%%:*}
    prog=${pair#*:}
    if have_prog "$prog" || have_pkg "$pkg"; then
      printf '  installed  %-14s (%s)\n' "$pkg" "$prog"
    else
      printf '  missing    %-14s (%s)\n' "$pkg" "$prog"
      missing="$missing $pkg"
    fi
  done
}

echo "kernel-interface test dependencies:"
report
if [ -z "$missing" ]; then
  echo "install-deps: everything is installed."
  prepare_guest
  exit 0
fi
if [ "$check_only" = 1 ]; then
  echo "install-deps: missing:$missing"
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: no apt-get here (not Debian/Ubuntu); install by hand:$missing" >&2
  echo "install-deps: the tests that need them will be skipped" >&2
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: installing needs root. Run:" >&2
  echo "  sudo $0 $*" >&2
  echo "or: sudo apt-get install -y$missing" >&2
  echo "install-deps: the tests that need them will be skipped" >&2
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
need_update=0
for pkg in $missing; do
  if ! apt-cache show "$pkg" >/dev/null 2>&1; then need_update=1; fi
done
# another apt may be running (other setup scripts): wait for its lock, bounded
apt_wait() {
  i=0
  while fuser /var/lib/dpkg/lock-frontend /var/lib/apt/lists/lock >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -gt 300 ]; then
      echo "install-deps: apt is busy (another install running for 5 min)" >&2
      return 1
    fi
    [ "$i" = 1 ] && echo "install-deps: waiting for another apt to finish..."
    sleep 1
  done
}
if command -v fuser >/dev/null 2>&1; then apt_wait; fi
if [ "$need_update" = 1 ]; then
  echo "install-deps: apt-get update"
  apt-get update -qq
fi
echo "install-deps: apt-get install$missing"
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 $missing

echo "after installing:"
report
if [ -n "$missing" ]; then
  echo "install-deps: still missing:$missing" >&2
  exit 1
fi
echo "install-deps: done."
prepare_guest
