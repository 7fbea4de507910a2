//go:build integration

package plugin_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// burstCPU is where the CPU of a parallel burst went: the commands (the
// children's rusage, which the kernel samples at its tick: a sum over a
// hundred commands, not one), ovsdb-server and ovs-vswitchd (/proc), and
// the whole machine's busy and idle CPU time (/proc/stat).
type burstCPU struct {
	children, ovsdb, vswitchd, idle, busy time.Duration
}

func (c burstCPU) String() string {
	return fmt.Sprintf("commands %v, ovsdb-server %v, ovs-vswitchd %v; all CPUs busy %v, idle %v",
		c.children.Round(time.Millisecond), c.ovsdb.Round(time.Millisecond), c.vswitchd.Round(time.Millisecond),
		c.busy.Round(time.Millisecond), c.idle.Round(time.Millisecond))
}

type cpuSnap struct {
	children, ovsdb, vswitchd, idle, total time.Duration
}

// clkTck is USER_HZ, 100 on Linux x86.
const clkTck = 100

func ticks(n uint64) time.Duration { return time.Duration(n) * time.Second / clkTck }

func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return ticks(u + st)
}

func snapCPU() cpuSnap {
	var r syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &r)
	s := cpuSnap{children: cpu(&r), ovsdb: procCPU(ovs.Pid("ovsdb-server")), vswitchd: procCPU(ovs.Pid("ovs-vswitchd"))}
	b, _ := os.ReadFile("/proc/stat")
	line := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])[1:]
	var tot uint64
	for i, v := range line {
		n, _ := strconv.ParseUint(v, 10, 64)
		tot += n
		if i == 3 || i == 4 { // idle, iowait
			s.idle += ticks(n)
		}
	}
	s.total = ticks(tot)
	return s
}

func (a cpuSnap) to(b cpuSnap) burstCPU {
	return burstCPU{children: b.children - a.children, ovsdb: b.ovsdb - a.ovsdb, vswitchd: b.vswitchd - a.vswitchd,
		idle: b.idle - a.idle, busy: (b.total - b.idle) - (a.total - a.idle)}
}

// medianCPU is the per-field median of bursts.
func medianCPU(bursts []burstCPU) burstCPU {
	pick := func(f func(burstCPU) time.Duration) time.Duration {
		d := make([]time.Duration, len(bursts))
		for i, c := range bursts {
			d[i] = f(c)
		}
		return median(d)
	}
	return burstCPU{
		children: pick(func(c burstCPU) time.Duration { return c.children }),
		ovsdb:    pick(func(c burstCPU) time.Duration { return c.ovsdb }),
		vswitchd: pick(func(c burstCPU) time.Duration { return c.vswitchd }),
		busy:     pick(func(c burstCPU) time.Duration { return c.busy }),
		idle:     pick(func(c burstCPU) time.Duration { return c.idle }),
	}
}
