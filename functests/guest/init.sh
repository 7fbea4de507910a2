#!/bin/busybox sh
# Init of the test guest: load virtio-net, configure eth0 from the kernel command
# line, then ping the peer forever and report every result on the serial console
# so the host can follow the dataplane by reading the console log. The markers
# and line formats are documented in the package documentation (guest.go).
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null

ip= peer= name=guest interval=
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    vhu.ip=*) ip="${arg#vhu.ip=}" ;;
    vhu.peer=*) peer="${arg#vhu.peer=}" ;;
    vhu.name=*) name="${arg#vhu.name=}" ;;
    vhu.interval=*) interval="${arg#vhu.interval=}" ;;
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

# ping_run RUN: one continuous busybox ping of $peer every $interval seconds
# (vhu.interval, guest.CmdlineInterval). Every reply is printed with busybox's
# own seq=N, which counts the requests sent, answered or not; a lost request
# prints nothing until the next reply, which is preceded by a VHU-PING-LOST line
# naming the missing seqs. busybox's seq is 16 bits: the comparison is modulo
# 65536, and a reply older than the last one (late or duplicate) is not a gap.
ping_run() {
  echo "VHU-PING-START run=$1 interval=$interval peer=$peer"
  ping -i "$interval" "$peer" 2>&1 | {
    last=
    while read -r line; do
      case "$line" in
        *" bytes from "*" seq="*)
          s="${line#* seq=}"; s="${s%% *}"
          if [ -n "$last" ]; then
            d=$(( (s - last + 65536) % 65536 ))
            if [ "$d" -gt 1 ] && [ "$d" -lt 32768 ]; then
              echo "VHU-PING-LOST run=$1 count=$((d - 1)) after=$last before=$s"
            fi
            if [ "$d" -ge 1 ] && [ "$d" -lt 32768 ]; then last=$s; fi
          else
            last=$s
          fi
          echo "VHU-PING-OK run=$1 $line" ;;
        ""|PING*) ;;
        *) echo "VHU-PING-FAIL run=$1 $line" ;;
      esac
    done
  }
}

if [ -n "$interval" ]; then
  # busybox ping exits when sendto fails (no route to the peer...): start it
  # again; the new process counts from seq=0, hence the run number.
  run=0
  while true; do
    run=$((run+1))
    ping_run "$run"
    echo "VHU-PING-FAIL run=$run ping exited"
    sleep 1
  done
fi

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
