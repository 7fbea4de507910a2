//go:build integration

package server

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/internal/hooks/v1alpha3"
)

// BenchmarkOnDefineDomain measures one OnDefineDomain round trip through the
// real socket of the built binary, for a KubeVirt domain and a VMI with 1 and
// with 8 vhostuser interfaces. Reports median and p90 per call.
func BenchmarkOnDefineDomain(b *testing.B) {
	for _, n := range []int{1, 8} {
		b.Run(fmt.Sprintf("ifaces=%d", n), func(b *testing.B) {
			p := startBinary(b)
			c := v1alpha3.NewCallbacksClient(p.conn)
			var names []string
			for i := range n {
				names = append(names, fmt.Sprintf("dpdk%d", i))
			}
			req := &v1alpha3.OnDefineDomainParams{DomainXML: testDomain(b), Vmi: testVMI(b, names...)}
			ctx := context.Background()
			for range 20 { // warm up connection and caches
				if _, err := c.OnDefineDomain(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				if _, err := c.OnDefineDomain(ctx, req); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
			b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "p90-ms")
		})
	}
}

// BenchmarkSidecarMemory reports the sidecar's resident memory when idle and
// after 1000 OnDefineDomain calls (8 interfaces each), and the binary size.
// It measures one sidecar process whatever b.N is: the figures are per process.
func BenchmarkSidecarMemory(b *testing.B) {
	p := startBinary(b)
	time.Sleep(200 * time.Millisecond)
	idle, _ := procStatusKiB(b, p.cmd.Process.Pid)
	c := v1alpha3.NewCallbacksClient(p.conn)
	req := &v1alpha3.OnDefineDomainParams{DomainXML: testDomain(b), Vmi: testVMI(b, "d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7")}
	for range 1000 {
		if _, err := c.OnDefineDomain(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	after, hwm := procStatusKiB(b, p.cmd.Process.Pid)
	fi, err := os.Stat(sidecarBinary(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(idle)/1024, "rss-idle-MiB")
	b.ReportMetric(float64(after)/1024, "rss-1000calls-MiB")
	b.ReportMetric(float64(hwm)/1024, "hwm-MiB")
	b.ReportMetric(float64(fi.Size())/(1<<20), "binary-MiB")
}

// procStatusKiB returns VmRSS and VmHWM of pid in KiB.
func procStatusKiB(tb testing.TB, pid int) (rss, hwm int) {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "VmRSS:":
			rss = v
		case "VmHWM:":
			hwm = v
		}
	}
	if rss == 0 || hwm == 0 {
		tb.Fatalf("no VmRSS/VmHWM in /proc/%d/status", pid)
	}
	return rss, hwm
}
