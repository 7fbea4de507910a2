#!/bin/busybox sh
# Init of the test guest: load virtio-net, configure eth0 from the kernel command
# line, then ping the peer forever and report every result on the serial console
# so the host can follow the dataplane by reading the console log.
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null

ip= peer= name=guest
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    vhu.ip=*) ip="${arg#vhu.ip=}" ;;
    vhu.peer=*) peer="${arg#vhu.peer=}" ;;
    vhu.name=*) name="${arg#vhu.name=}" ;;
  esac
done

# virtio_net is a module in Debian's kernel; dependencies first.
for m in __MODULES__; do
  insmod "/lib/modules/$m.ko" || echo "VHU-ERROR insmod $m"
done

i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
ip link set lo up
ip addr add "$ip" dev eth0 || echo "VHU-ERROR ip addr add $ip"
ip link set eth0 up || echo "VHU-ERROR link up"
echo "VHU-READY name=$name ip=$ip peer=$peer mac=$(cat /sys/class/net/eth0/address)"

seq=0
while true; do
  seq=$((seq+1))
  out=$(ping -c 1 -W 2 "$peer" 2>&1 | grep 'bytes from')
  if [ -n "$out" ]; then
    echo "VHU-PING-OK seq=$seq $out"
  else
    echo "VHU-PING-FAIL seq=$seq"
  fi
  sleep 1
done
