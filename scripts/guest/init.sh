#!/bin/busybox sh
# /init of vale's test guest (put into the initramfs by scripts/guest/prepare.ts).
#
# Mounts proc/sys/dev, loads the NIC drivers listed in /etc/vale-modules (in
# dependency order; more modules for `modprobe` are in /lib/modules/<release>), configures eth0, eth1, ... from the kernel command line,
# runs /test.sh (appended per boot by tests/helpers/guest.ts), prints its exit
# status on the serial console and powers the machine off.
#
# Kernel command line:
#   vale.ip=A/LEN[,A/LEN...]   addresses of eth0, eth1, ... ("-" leaves one unset)
#   vale.mtu=N[,N...]          MTUs of eth0, eth1, ...
#   vale.name=NAME             the hostname (shown in the markers)
#   vale.shell=1               after /test.sh, run commands sent on the console
#   vale.modules=M[,M...]      also load these modules (those the image has for modprobe)
#
# Markers on the console (each on a line of its own):
#   VALE-GUEST <name> ready          network configured, /test.sh starts
#   VALE-GUEST <name> shell          (vale.shell=1) waiting for commands
#   VALE-GUEST <name> start <id>     a command from the host starts
#   VALE-GUEST <name> done <id> <st> ... and ended with status <st>
#   VALE-GUEST <name> exit <status>  /test.sh (or the host's `exit`) ended with <status>
#   VALE-GUEST <name> error <text>   init itself failed (then exit 255 follows)
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /tmp /run
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/ TERM=dumb
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run

name=guest
ips=""
mtus=""
shell=0
mods=""
for w in $(cat /proc/cmdline); do
  case "$w" in
  vale.ip=*) ips="${w#vale.ip=}" ;;
  vale.mtu=*) mtus="${w#vale.mtu=}" ;;
  vale.name=*) name="${w#vale.name=}" ;;
  vale.shell=1) shell=1 ;;
  vale.modules=*) mods="${w#vale.modules=}" ;;
  esac
done
hostname "$name"

fail() {
  echo "VALE-GUEST $name error $*"
  echo "VALE-GUEST $name exit 255"
  poweroff -f
  sleep 5
}

kdir="/lib/modules/$(uname -r)"
for m in $(cat /etc/vale-modules); do
  insmod "$kdir/$m" || fail "insmod $m"
done
for m in $(echo "$mods" | tr , ' '); do
  modprobe "$m" || fail "modprobe $m"
done

ip link set lo up
i=0
n=$(echo "$ips" | tr , '\n' | grep -c .)
m=$(echo "$mtus" | tr , '\n' | grep -c .)
[ "$m" -gt "$n" ] && n=$m
while [ "$i" -lt "$n" ]; do
  dev=eth$i
  # the driver probes during insmod; wait a little in case it is asynchronous
  t=0
  while [ ! -e "/sys/class/net/$dev" ] && [ "$t" -lt 50 ]; do
    sleep 0.1
    t=$((t + 1))
  done
  [ -e "/sys/class/net/$dev" ] || fail "no interface $dev"
  a=$(echo "$ips" | cut -d, -f$((i + 1)))
  mtu=$(echo "$mtus" | cut -d, -f$((i + 1)))
  [ -n "$mtu" ] && [ "$mtu" != "-" ] && { ip link set "$dev" mtu "$mtu" || fail "mtu $mtu on $dev"; }
  ip link set "$dev" up || fail "link up $dev"
  [ -n "$a" ] && [ "$a" != "-" ] && { ip addr add "$a" dev "$dev" || fail "address $a on $dev"; }
  i=$((i + 1))
done

echo "VALE-GUEST $name ready"
rc=0
cd /tmp
if [ -f /test.sh ]; then
  sh /test.sh
  rc=$?
fi
if [ "$shell" = 1 ]; then
  # commands from the host on the serial console, one per line:
  #   run ID BASE64-SCRIPT   runs the script: "start ID" ... "done ID STATUS"
  #   exit STATUS            ends the guest
  stty -echo 2>/dev/null
  echo "VALE-GUEST $name shell"
  while read -r op id data; do
    case "$op" in
    run)
      echo "$data" | base64 -d >"/tmp/.run$id" 2>/dev/null
      echo "VALE-GUEST $name start $id"
      sh "/tmp/.run$id" </dev/null
      echo "VALE-GUEST $name done $id $?"
      rm -f "/tmp/.run$id"
      ;;
    exit)
      rc=$id
      break
      ;;
    esac
  done
fi
echo "VALE-GUEST $name exit $rc"
poweroff -f
sleep 5
