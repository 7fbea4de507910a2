//go:build integration

package plugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/cni/config"
)

// BenchmarkCNI measures, against the package's private OVS-DPDK: ADD and DEL
// latency of the plugin binary driven through libcni, the same port created
// and deleted with ovs-vsctl as the seed plugin does it, 50 parallel ADDs and
// DELs, and the peak RSS of one ADD. Run it with -benchtime 1x (make bench-cni):
// every figure comes from its own loop of benchRuns, not from b.N.
func BenchmarkCNI(b *testing.B) {
	const benchRuns = 60
	for i := 0; i < b.N; i++ {
		f := newFixture(b)
		atts := make([]att, benchRuns)
		for j := range atts {
			atts[j] = att{fmt.Sprintf("bench%03d", j), "net1", fmt.Sprintf("bench-pod-%03d", j)}
			f.newPod(atts[j].uid)
		}
		// Warm up page cache and the OVSDB connection path once.
		if _, err := f.add("1.1.0", atts[0]); err != nil {
			b.Fatal(err)
		}
		if err := f.del("1.1.0", atts[0]); err != nil {
			b.Fatal(err)
		}

		// Plugin and baseline interleaved, so both see the same machine load.
		var add, del, badd, bdel []time.Duration
		for _, a := range atts {
			t0 := time.Now()
			if _, err := f.add("1.1.0", a); err != nil {
				b.Fatalf("ADD: %v", err)
			}
			t1 := time.Now()
			if err := f.del("1.1.0", a); err != nil {
				b.Fatalf("DEL: %v", err)
			}
			add, del = append(add, t1.Sub(t0)), append(del, time.Since(t1))

			// Baseline: the seed plugin's ovs-vsctl calls for the same port.
			p := f.paths(a)
			name := config.PortName(p.ID)
			t0 = time.Now()
			if _, err := ovs.Vsctl(context.Background(), "add-port", f.bridge, name, "--", "set", "Interface", name,
				"type=dpdkvhostuserclient", "options:vhost-server-path="+p.OVSSocket); err != nil {
				b.Fatal(err)
			}
			t1 = time.Now()
			if _, err := ovs.Vsctl(context.Background(), "del-port", name); err != nil {
				b.Fatal(err)
			}
			badd, bdel = append(badd, t1.Sub(t0)), append(bdel, time.Since(t1))
		}
		inAdd, inDel := inProcessTimes(b, filepath.Join(f.root, "vhostuser.log"))

		// 50 parallel ADDs, then 50 parallel DELs.
		par := atts[:50]
		parallel := func(op func(att) error) time.Duration {
			var wg sync.WaitGroup
			var mu sync.Mutex
			var firstErr error
			t0 := time.Now()
			for _, a := range par {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := op(a); err != nil {
						mu.Lock()
						firstErr = err
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			d := time.Since(t0)
			if firstErr != nil {
				b.Fatal(firstErr)
			}
			return d
		}
		parAdd := parallel(func(a att) error { _, err := f.add("1.1.0", a); return err })
		if n := len(f.portNames()); n != len(par) {
			b.Fatalf("%d ports after parallel ADDs", n)
		}
		parDel := parallel(func(a att) error { return f.del("1.1.0", a) })

		addRSS, delRSS := rssOfOneRun(b, f, atts[1])

		// CPU time (user+sys from the children's rusage) per command: unlike
		// wall time it hardly depends on how loaded the machine is.
		var cpuAdd, cpuDel, cpuVAdd, cpuVDel time.Duration
		const cpuRuns = 20
		for _, a := range atts[:cpuRuns] {
			ra, rd := pluginRusage(b, f, a)
			cpuAdd += cpu(ra)
			cpuDel += cpu(rd)
			p := f.paths(a)
			name := config.PortName(p.ID)
			cpuVAdd += cpu(vsctlRusage(b, "add-port", f.bridge, name, "--", "set", "Interface", name,
				"type=dpdkvhostuserclient", "options:vhost-server-path="+p.OVSSocket))
			cpuVDel += cpu(vsctlRusage(b, "del-port", name))
		}
		cpuAdd, cpuDel, cpuVAdd, cpuVDel = cpuAdd/cpuRuns, cpuDel/cpuRuns, cpuVAdd/cpuRuns, cpuVDel/cpuRuns

		ours := median(add) + median(del)
		base := median(badd) + median(bdel)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(ms(median(add)), "add-p50-ms")
		b.ReportMetric(ms(p90(add)), "add-p90-ms")
		b.ReportMetric(ms(median(del)), "del-p50-ms")
		b.ReportMetric(ms(p90(del)), "del-p90-ms")
		b.ReportMetric(ms(median(inAdd)), "add-inproc-p50-ms")
		b.ReportMetric(ms(median(badd)), "vsctl-add-p50-ms")
		b.ReportMetric(ms(median(bdel)), "vsctl-del-p50-ms")
		b.ReportMetric(float64(ours)/float64(base), "adddel-ratio")
		b.ReportMetric(ms(parAdd), "par50-add-ms")
		b.ReportMetric(ms(parDel), "par50-del-ms")
		b.ReportMetric(float64(addRSS)/1024, "add-maxrss-MiB")
		b.ReportMetric(ms(cpuAdd+cpuDel), "adddel-cpu-ms")
		b.ReportMetric(ms(cpuVAdd+cpuVDel), "vsctl-adddel-cpu-ms")

		fmt.Printf("\nvhostuser CNI benchmark (%d sequential runs each, real OVS-DPDK, libcni)\n", benchRuns)
		fmt.Printf("%-34s %10s %10s\n", "", "median", "p90")
		fmt.Printf("%-34s %8.2fms %8.2fms\n", "plugin ADD (libcni)", ms(median(add)), ms(p90(add)))
		fmt.Printf("%-34s %8.2fms %8.2fms\n", "plugin DEL (libcni)", ms(median(del)), ms(p90(del)))
		fmt.Printf("%-34s %8.2fms %8.2fms\n", "  of which inside the plugin, ADD", ms(median(inAdd)), ms(p90(inAdd)))
		fmt.Printf("%-34s %8.2fms %8.2fms\n", "  of which inside the plugin, DEL", ms(median(inDel)), ms(p90(inDel)))
		fmt.Printf("%-34s %8.2fms %8.2fms\n", "baseline ovs-vsctl add-port+set", ms(median(badd)), ms(p90(badd)))
		fmt.Printf("%-34s %8.2fms %8.2fms\n", "baseline ovs-vsctl del-port", ms(median(bdel)), ms(p90(bdel)))
		fmt.Printf("%-34s %8.2fms vs %.2fms: ratio %.2f (target <= 0.50)\n", "ADD+DEL median, plugin vs baseline", ms(ours), ms(base), float64(ours)/float64(base))
		fmt.Printf("%-34s %8.2fms\n", "50 parallel ADDs, wall", ms(parAdd))
		fmt.Printf("%-34s %8.2fms\n", "50 parallel DELs, wall", ms(parDel))
		fmt.Printf("%-34s %8.1fMiB (DEL %.1fMiB)\n", "peak RSS of one ADD", float64(addRSS)/1024, float64(delRSS)/1024)
		fmt.Printf("%-34s ADD %.2fms DEL %.2fms; ovs-vsctl add %.2fms del %.2fms (mean of %d)\n", "CPU user+sys per command",
			ms(cpuAdd), ms(cpuDel), ms(cpuVAdd), ms(cpuVDel), cpuRuns)
	}
}

// rssOfOneRun execs the plugin binary directly, as a runtime does, and reads
// the child's peak RSS (KiB) from its rusage.
func rssOfOneRun(b *testing.B, f *fixture, a att) (addKiB, delKiB int64) {
	ra, rd := pluginRusage(b, f, a)
	return ra.Maxrss, rd.Maxrss
}

func cpu(r *syscall.Rusage) time.Duration {
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}

func vsctlRusage(b *testing.B, args ...string) *syscall.Rusage {
	c := exec.Command("ovs-vsctl", append([]string{"--db=" + ovs.Endpoint(), "--timeout=30"}, args...)...)
	c.Env = ovs.Env()
	if out, err := c.CombinedOutput(); err != nil {
		b.Fatalf("ovs-vsctl %v: %v: %s", args, err, out)
	}
	return c.ProcessState.SysUsage().(*syscall.Rusage)
}

// pluginRusage runs one ADD and one DEL of the binary and returns their rusage.
func pluginRusage(b *testing.B, f *fixture, a att) (add, del *syscall.Rusage) {
	conf := f.confList("1.1.0").Plugins[0].Bytes
	var m map[string]any
	if err := json.Unmarshal(conf, &m); err != nil {
		b.Fatal(err)
	}
	m["name"], m["cniVersion"] = f.network, "1.1.0"
	stdin, _ := json.Marshal(m)
	run := func(cmd string) *syscall.Rusage {
		c := exec.Command(filepath.Join(pluginDir, "vhostuser"))
		c.Env = append(os.Environ(), "CNI_COMMAND="+cmd, "CNI_CONTAINERID="+a.containerID, "CNI_NETNS=/var/run/netns/x",
			"CNI_IFNAME="+a.ifName, "CNI_PATH="+pluginDir,
			"CNI_ARGS=K8S_POD_NAMESPACE=default;K8S_POD_NAME=bench;K8S_POD_UID="+a.uid)
		c.Stdin = bytes.NewReader(stdin)
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		if err := c.Run(); err != nil {
			b.Fatalf("%s: %v: %s", cmd, err, out.String())
		}
		return c.ProcessState.SysUsage().(*syscall.Rusage)
	}
	return run("ADD"), run("DEL")
}

func median(d []time.Duration) time.Duration { return quantile(d, 0.5) }
func p90(d []time.Duration) time.Duration    { return quantile(d, 0.9) }

func quantile(d []time.Duration, q float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(q*float64(len(s)-1)+0.5)]
}

// inProcessTimes reads the plugin's own "took" figures from its log: the
// part of the latency spent after the process started.
func inProcessTimes(b *testing.B, logFile string) (add, del []time.Duration) {
	data, err := os.ReadFile(logFile)
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		i := strings.Index(line, " took=")
		if i < 0 {
			continue
		}
		d, err := time.ParseDuration(strings.Fields(line[i+len(" took="):])[0])
		if err != nil {
			continue
		}
		switch {
		case strings.Contains(line, `msg="ADD done"`):
			add = append(add, d)
		case strings.Contains(line, `msg="DEL done"`):
			del = append(del, d)
		}
	}
	if len(add) == 0 || len(del) == 0 {
		b.Fatalf("no ADD/DEL timings in %s", logFile)
	}
	return add, del
}
