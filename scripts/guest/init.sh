#!/bin/busybox sh
# /init of vale's test guest (put into the initramfs by scripts/guest/prepare.ts).
#
# Mounts proc/sys/dev, loads the NIC drivers listed in /etc/vale-modules (in
# dependency order), configures eth0, eth1, ... from the kernel command line,
# runs /test.sh (appended per boot by tests/helpers/guest.ts), prints its exit
# status on the serial console and powers the machine off.
#
# Kernel command line:
#   vale.ip=A/LEN[,A/LEN...]   addresses of eth0, eth1, ... ("-" leaves one unset)
#   vale.mtu=N[,N...]          MTUs of eth0, eth1, ...
#   vale.name=NAME             the hostname (shown in the markers)
#
# Markers on the console (each on a line of its own):
#   VALE-GUEST <name> ready          network configured, /test.sh starts
#   VALE-GUEST <name> exit <status>  /test.sh ended with <status>
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
for w in $(cat /proc/cmdline); do
  case "$w" in
  vale.ip=*) ips="${w#vale.ip=}" ;;
  vale.mtu=*) mtus="${w#vale.mtu=}" ;;
  vale.name=*) name="${w#vale.name=}" ;;
  esac
done
hostname "$name"

fail() {
  echo "VALE-GUEST $name error $*"
  echo "VALE-GUEST $name exit 255"
  poweroff -f
  sleep 5
}

for m in $(cat /etc/vale-modules); do
  insmod "/lib/modules/$m" || fail "insmod $m"
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
if [ -f /test.sh ]; then
  cd /tmp && sh /test.sh
  rc=$?
fi
echo "VALE-GUEST $name exit $rc"
poweroff -f
sleep 5
