//go:build integration

package main_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// BenchmarkAgent200Ports measures the built agent binary against the
// package's private OVS-DPDK with 200 ports of ours on br0 (issue 17's
// targets: RSS at most 40 MiB, a scrape at most 20 ms; figures, never
// asserted):
//
//   - the 200 dpdkvhostuserclient ports are created as the plugin marks
//     them, in a few ovs-vsctl transactions, before the agent starts (its
//     initial sync of 200 ports is part of its peak);
//   - the agent (-api none) must serve every port's info and drop series
//     (OVS has filled in their statistics) within portsTimeout, else the
//     benchmark fails. No QEMU serves the sockets, so the ports stay
//     disconnected: OVS has no traffic counters, MTU or queues for them and
//     the agent serves none (see the collector's TestCollectDisconnectedPort);
//     agent/metrics' BenchmarkScrape200 covers connected ports in process;
//   - then scrapes (50) timed scrapes of /metrics, one after another, as
//     Prometheus makes them (Accept-Encoding: gzip): each the whole GET, the
//     read of the body and its decompression. Each must hold the 200 ports'
//     info series.
//
// Reported: the scrapes' median and max, the agent's VmHWM (peak) and VmRSS
// after them and VmRSS before them, the body's size plain and gzipped and
// its number of samples.
// ns/op is the total of the timed scrapes. Run it with -benchtime 1x (make
// bench-agent): the figures come from one setup whatever b.N is.
func BenchmarkAgent200Ports(b *testing.B) {
	const (
		nPorts       = 200
		batch        = 50 // ports per ovs-vsctl transaction
		scrapes      = 50
		portsTimeout = 2 * time.Minute
	)
	atts := make([]attachment, nPorts)
	names := make(map[string]bool, nPorts)
	for i := range atts {
		pod := fmt.Sprintf("virt-launcher-vm%03d-%05d", i, 10000+i)
		ifName := socketpath.PodInterfaceName("vhu-net")
		a := attachment{namespace: "vms", pod: pod, ifName: ifName, network: "vhu-net"}
		// The plugin's port name: its attachment ID of pod UID and ifname
		// (marks puts the pod UID "uid-"+pod).
		a.port = ovsdb.PortName(socketpath.AttachmentID(socketpath.Attachment{PodUID: "uid-" + pod, IfName: ifName}))
		atts[i], names[a.port] = a, true
	}
	ctx := context.Background()
	b.Cleanup(func() {
		args := []string{"--if-exists", "del-port", atts[0].port}
		for _, a := range atts[1:] {
			args = append(args, "--", "--if-exists", "del-port", a.port)
		}
		if out, err := ovs.Vsctl(ctx, args...); err != nil {
			b.Errorf("delete the %d ports: %v %s", nPorts, err, out)
		}
	})
	t0 := time.Now()
	for i := 0; i < nPorts; i += batch {
		var args []string
		for _, a := range atts[i:min(i+batch, nPorts)] {
			if args != nil {
				args = append(args, "--")
			}
			args = append(args, addPortArgs(a, ovsdb.Owner)...)
		}
		if out, err := ovs.Vsctl(ctx, args...); err != nil {
			b.Fatalf("add ports %d-%d: %v %s\n%s", i, min(i+batch, nPorts)-1, err, out, ovs.LogTail("ovs-vswitchd", 20))
		}
	}
	created := time.Since(t0)

	t0 = time.Now()
	ag := startAgent(b)
	waitForPorts(b, ag, names, portsTimeout)
	synced := time.Since(t0)
	ready := procStatusKiB(b, ag.pid)

	binMiB := 0.0
	if fi, err := os.Stat(agentBin); err == nil {
		binMiB = float64(fi.Size()) / (1 << 20)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	url := "http://" + ag.addr + "/metrics"
	lat := make([]time.Duration, 0, scrapes)
	var body []byte
	var wire int
	b.ResetTimer()
	for i := range scrapes {
		t := time.Now()
		plain, gz, err := timedScrape(c, url)
		d := time.Since(t)
		if err != nil {
			b.Fatalf("scrape %d: %v", i, err)
		}
		if n := bytes.Count(plain, []byte("\nvhostuser_port_info{")); n != nPorts {
			b.Fatalf("scrape %d: %d vhostuser_port_info series, want %d", i, n, nPorts)
		}
		lat = append(lat, d)
		body, wire = plain, gz
	}
	b.StopTimer()
	mem := procStatusKiB(b, ag.pid)

	// The last body in full: every port's series still there.
	p := expfmt.NewTextParser(model.LegacyValidation)
	last, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		b.Fatalf("parse the last scrape: %v", err)
	}
	if missing := missingPorts(last, names); len(missing) > 0 {
		b.Fatalf("the last scrape lacks %d ports' series, e.g. %s", len(missing), missing[0])
	}

	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	med, maxLat := ms(lat[len(lat)/2]), ms(lat[len(lat)-1])
	b.ReportMetric(med, "scrape-ms-median")
	b.ReportMetric(maxLat, "scrape-ms-max")
	b.ReportMetric(mem["VmHWM"]/1024, "hwm-MiB")
	b.ReportMetric(mem["VmRSS"]/1024, "rss-MiB")
	b.ReportMetric(ready["VmRSS"]/1024, "rss-ready-MiB")
	b.ReportMetric(float64(len(body)), "body-bytes")
	b.ReportMetric(float64(wire), "gzip-bytes")
	b.ReportMetric(float64(samples(body)), "samples")
	b.Logf("agent, %d ports: scrape median %.2f ms max %.2f ms (%d scrapes, %d B, %d B gzipped, %d samples); "+
		"VmHWM %.1f MiB, VmRSS %.1f MiB = anon %.1f + file %.1f (%.1f MiB before the scrapes; Go heap in use %.1f MiB, "+
		"Go runtime total from the OS %.1f MiB; binary %.1f MiB); ports created in %v, all served %v after the agent's start",
		nPorts, med, maxLat, scrapes, len(body), wire, samples(body), mem["VmHWM"]/1024, mem["VmRSS"]/1024,
		mem["RssAnon"]/1024, mem["RssFile"]/1024, ready["VmRSS"]/1024,
		gauge(last, "go_memstats_heap_inuse_bytes", nil)/(1<<20), gauge(last, "go_memstats_sys_bytes", nil)/(1<<20),
		binMiB,
		created.Round(time.Millisecond), synced.Round(time.Millisecond))
}

// timedScrape GETs url as Prometheus does (gzip accepted) and returns the
// decompressed body and the size of what came over the wire.
func timedScrape(c *http.Client, url string) (plain []byte, wire int, err error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	// Set by hand, so the transport leaves the body compressed.
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := c.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("%s: %s", resp.Status, raw)
	}
	if resp.Header.Get("Content-Encoding") != "gzip" {
		return raw, len(raw), nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, 0, err
	}
	plain, err = io.ReadAll(zr)
	return plain, len(raw), err
}

// waitForPorts scrapes until every port of names has its info and drop
// series and vhostuser_agent_ports counts them all; it fails the
// benchmark, saying how far the agent got, after timeout.
func waitForPorts(b *testing.B, ag *agent, names map[string]bool, timeout time.Duration) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for {
		mfs := ag.scrape(b)
		missing := missingPorts(mfs, names)
		ports := gauge(mfs, "vhostuser_agent_ports", nil)
		if len(missing) == 0 && ports == float64(len(names)) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("after %v the agent serves %d of the %d ports fully (vhostuser_agent_ports %v, "+
				"vhostuser_agent_ovsdb_connected %v); missing e.g. %s",
				timeout, len(names)-len(missing), len(names), ports,
				gauge(mfs, "vhostuser_agent_ovsdb_connected", nil), strings.Join(missing[:min(3, len(missing))], "; "))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// missingPorts says, for each port of names that lacks its info series or
// its drop series (which come with OVS's first statistics), which.
func missingPorts(mfs map[string]*dto.MetricFamily, names map[string]bool) []string {
	have := map[string]map[string]bool{}
	for _, fam := range []string{"vhostuser_port_info", "vhostuser_port_ovs_drops_total"} {
		have[fam] = map[string]bool{}
		if mf := mfs[fam]; mf != nil {
			for _, m := range mf.Metric {
				have[fam][labelMap(m)["port"]] = true
			}
		}
	}
	var out []string
	for name := range names {
		var lacks []string
		for fam, ports := range have {
			if !ports[name] {
				lacks = append(lacks, fam)
			}
		}
		if len(lacks) > 0 {
			slices.Sort(lacks)
			out = append(out, name+" lacks "+strings.Join(lacks, ", "))
		}
	}
	slices.Sort(out)
	return out
}

// procStatusKiB returns the memory fields of /proc/<pid>/status (VmRSS,
// VmHWM, RssAnon, RssFile...) in KiB, by their name without the colon.
func procStatusKiB(tb testing.TB, pid int) map[string]float64 {
	tb.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	m := map[string]float64{}
	for _, line := range strings.Split(string(st), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[2] == "kB" {
			v, _ := strconv.Atoi(f[1])
			m[strings.TrimSuffix(f[0], ":")] = float64(v)
		}
	}
	if m["VmRSS"] == 0 || m["VmHWM"] == 0 {
		tb.Fatalf("no VmRSS/VmHWM in /proc/%d/status:\n%s", pid, st)
	}
	return m
}

// samples counts the sample lines of a text exposition.
func samples(body []byte) int {
	n := 0
	for _, line := range bytes.Split(body, []byte("\n")) {
		if len(line) > 0 && line[0] != '#' {
			n++
		}
	}
	return n
}
