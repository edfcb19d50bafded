#!/bin/bash
# The floor under the CPU-ratio targets: the minimal batched C prober of
# ../shared/probe-bench (icmp-flood.c, built into /tmp) and fping at the bench's
# 1 000- and 10 000-monitor probe rates, one after the other in the kit's lab
# (namespaces pb-prober and pb-hosts, targets in 198.18.0.0/16). Run as root
# from anywhere; about 2.5 minutes; removes the lab at the end.
set -u
S=$(cd "$(dirname "$0")/../../shared/probe-bench" && pwd)
gcc -O2 -Wall -pthread -o /tmp/icmp-flood $S/icmp-flood.c || exit 1
$S/netns-hosts-teardown.sh >/dev/null 2>&1
MODE=anyip $S/netns-hosts.sh 10000 >/dev/null
T=/tmp/pb-state/targets.txt
head -1000 $T > /tmp/pb-t1k.txt
run() { echo "load1=$(cut -d' ' -f1 /proc/loadavg) $*"; ip netns exec pb-prober /tmp/icmp-flood "$@"; }
run -f /tmp/pb-t1k.txt -d 20 -r 300 -b 3
run -f /tmp/pb-t1k.txt -d 20 -r 300 -b 15
run -f $T -d 20 -r 3000 -b 30
for f in /tmp/pb-t1k.txt:1000 $T:10000; do
  file=${f%%:*}; n=${f##*:}
  i=$(python3 -c "print(round(min(1, 500/(0.3*$n)),3))")
  echo "fping N=$n"
  /usr/bin/time -f "user=%U sys=%S wall=%e" ip netns exec pb-prober fping -C 6 -p 3333 -i $i -q -f $file 2>&1 >/dev/null | tail -1
done
$S/netns-hosts-teardown.sh >/dev/null 2>&1
