//go:build integration

package server

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	kvv1 "kubevirt.io/api/core/v1"

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

// BenchmarkSidecarMemory reports the sidecar's resident memory, the median
// over memProcs processes: idle after start, after memCalls OnDefineDomain
// calls as virt-launcher makes them (Info, then the calls, one at a time) with
// a KubeVirt-like domain and VMI (realisticCall), and the peak (VmHWM) over
// that life, which the binding's computeResourceOverhead is set from. Plus the
// binary size. The figures are per process whatever b.N is.
func BenchmarkSidecarMemory(b *testing.B) {
	const memProcs, memCalls = 5, 1000
	req := realisticCall(b, 8)
	var idle, after, hwm []int
	for range memProcs {
		p := startBinary(b)
		time.Sleep(200 * time.Millisecond)
		i, _ := procStatusKiB(b, p.cmd.Process.Pid)
		c := v1alpha3.NewCallbacksClient(p.conn)
		for range memCalls {
			if _, err := c.OnDefineDomain(context.Background(), req); err != nil {
				b.Fatal(err)
			}
		}
		a, h := procStatusKiB(b, p.cmd.Process.Pid)
		idle, after, hwm = append(idle, i), append(after, a), append(hwm, h)
		p.conn.Close()
		_ = p.cmd.Process.Kill()
		<-p.exited
		p.exited <- nil // for startBinary's cleanup
	}
	fi, err := os.Stat(sidecarBinary(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(medianMiB(idle), "rss-idle-MiB")
	b.ReportMetric(medianMiB(after), "rss-1000calls-MiB")
	b.ReportMetric(medianMiB(hwm), "hwm-MiB")
	b.ReportMetric(float64(fi.Size())/(1<<20), "binary-MiB")
}

// realisticCall is an OnDefineDomain as virt-launcher sends it for a running
// VMI with n vhostuser interfaces: KubeVirt's kitchen-sink domain and the full
// running VMI of package domain's tests, printed by KubeVirt's types.
func realisticCall(tb testing.TB, n int) *v1alpha3.OnDefineDomainParams {
	tb.Helper()
	dom, err := os.ReadFile("../domain/testdata/domain-kitchen-sink.xml")
	if err != nil {
		tb.Fatal(err)
	}
	j, err := os.ReadFile("../domain/testdata/vmi-running.json")
	if err != nil {
		tb.Fatal(err)
	}
	v := &kvv1.VirtualMachineInstance{}
	if err := json.Unmarshal(j, v); err != nil {
		tb.Fatal(err)
	}
	for i := 2; i < n; i++ { // the VMI has dpdk0 and dpdk1
		name := fmt.Sprintf("dpdk%d", i)
		v.Spec.Domain.Devices.Interfaces = append(v.Spec.Domain.Devices.Interfaces, kvv1.Interface{Name: name, Binding: &kvv1.PluginBinding{Name: "vhostuser"}})
		v.Spec.Networks = append(v.Spec.Networks, kvv1.Network{Name: name, NetworkSource: kvv1.NetworkSource{Multus: &kvv1.MultusNetwork{NetworkName: "ovs-dpdk-net"}}})
	}
	if j, err = json.Marshal(v); err != nil {
		tb.Fatal(err)
	}
	return &v1alpha3.OnDefineDomainParams{DomainXML: dom, Vmi: j}
}

func medianMiB(kib []int) float64 {
	s := slices.Clone(kib)
	slices.Sort(s)
	return float64(s[len(s)/2]) / 1024
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
