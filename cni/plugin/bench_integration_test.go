//go:build integration

package plugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
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
	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb"
)

// BenchmarkCNI measures, against the package's private OVS-DPDK, the plugin
// binary's ADD and DEL beside two baselines doing the same port:
//
//   - the floor: OVS's own C client, `ovsdb-client transact`, sending the
//     plugin's own ADD transaction (recorded from the plugin binary: insert
//     Interface and Port, wait until OVS can run vhost-user ports on a
//     netdev bridge, mutate Bridge.ports) and its
//     DEL transaction (recorded likewise: read the attachment's ports,
//     detach the port under its derived UUID): one exec, one round trip each;
//   - the seed plugin's `ovs-vsctl add-port` / `del-port`.
//
// All three run interleaved, in a rotating order, so they see the same
// machine load. Then 20 and 100 parallel ADDs and DELs of the plugin and of
// the floor (wall time; every call must succeed and nothing may be left).
// Run it with -benchtime 1x (make bench-cni): every figure comes from its own
// loops, not from b.N.
func BenchmarkCNI(b *testing.B) {
	const (
		seqRuns = 60  // sequential attachments per method
		parReps = 15  // repetitions of each parallel burst (median reported; bursts vary a lot)
		nAtts   = 100 // the largest parallel burst
	)
	parCounts := []int{20, 100}
	for i := 0; i < b.N; i++ {
		root, short := nodeFilesystems(b)
		f := newFixtureAt(b, root, short)
		atts := make([]att, nAtts)
		for j := range atts {
			atts[j] = att{fmt.Sprintf("bench%03d", j), "net1", fmt.Sprintf("bench-pod-%03d", j)}
			f.newPod(atts[j].uid)
		}
		x := newExecer(b, f)
		// Warm up the page cache and each path once.
		if _, err := f.add("1.1.0", atts[0]); err != nil {
			b.Fatal(err)
		}
		if err := f.del("1.1.0", atts[0]); err != nil {
			b.Fatal(err)
		}
		x.mustRun("ADD", atts[0])
		x.mustRun("DEL", atts[0])
		fl := newFloor(b, f, x, atts)
		fl.add(atts[0])
		fl.del(atts[0])

		// Sequential: plugin by direct exec (as a runtime execs it), the
		// floor, ovs-vsctl, and the plugin through libcni (which adds
		// libcni's own work and the plugin's debug log, for the in-process
		// figures), one attachment at a time, order rotating.
		var add, del, fAdd, fDel, vAdd, vDel, lAdd, lDel []time.Duration
		for j, a := range atts[:seqRuns] {
			steps := []func(){
				func() {
					add = append(add, x.mustRun("ADD", a))
					del = append(del, x.mustRun("DEL", a))
				},
				func() {
					t0 := time.Now()
					fl.add(a)
					t1 := time.Now()
					fl.del(a)
					fAdd, fDel = append(fAdd, t1.Sub(t0)), append(fDel, time.Since(t1))
				},
				func() {
					p := f.paths(a)
					name := ovsdb.PortName(p.ID)
					t0 := time.Now()
					if _, err := ovs.Vsctl(context.Background(), "add-port", f.bridge, name, "--", "set", "Interface", name,
						"type=dpdkvhostuserclient", "options:vhost-server-path="+p.OVSSocket); err != nil {
						b.Fatal(err)
					}
					t1 := time.Now()
					if _, err := ovs.Vsctl(context.Background(), "del-port", name); err != nil {
						b.Fatal(err)
					}
					vAdd, vDel = append(vAdd, t1.Sub(t0)), append(vDel, time.Since(t1))
				},
				func() {
					t0 := time.Now()
					if _, err := f.add("1.1.0", a); err != nil {
						b.Fatalf("ADD: %v", err)
					}
					t1 := time.Now()
					if err := f.del("1.1.0", a); err != nil {
						b.Fatalf("DEL: %v", err)
					}
					lAdd, lDel = append(lAdd, t1.Sub(t0)), append(lDel, time.Since(t1))
				},
			}
			for k := range steps {
				steps[(j+k)%len(steps)]()
			}
		}
		if n := len(f.portNames()); n != 0 {
			b.Fatalf("%d ports left after the sequential runs", n)
		}
		inAdd, inDel := inProcessTimes(b, filepath.Join(f.root, "vhostuser.log"))

		// Parallel bursts: N ADDs at once, then N DELs at once; the plugin
		// and the floor alternate, each burst parReps times.
		// Per burst also where the CPU went (commands, ovsdb-server,
		// ovs-vswitchd): on two cores a burst is CPU-bound, so its wall
		// time is about the sum of these over the core count.
		type walls struct {
			add, del, fAdd, fDel     []time.Duration
			addC, delC, fAddC, fDelC []burstCPU
		}
		par := map[int]*walls{}
		for _, n := range parCounts {
			w := &walls{}
			par[n] = w
			set := atts[:n]
			for r := 0; r < parReps; r++ {
				w.add = append(w.add, parallel(b, set, &w.addC, func(a att) error { _, err := x.run("ADD", a); return err }))
				f.assertAllAttached(set)
				if got := f.ourPorts(); got != n {
					b.Fatalf("%d of our ports after %d parallel ADDs", got, n)
				}
				w.del = append(w.del, parallel(b, set, &w.delC, func(a att) error { _, err := x.run("DEL", a); return err }))
				f.assertAllDetached(set)
				if left := f.portNames(); len(left) != 0 || len(f.shortEntries()) != 0 {
					b.Fatalf("left after %d parallel DELs: ports %v, short links %v", n, left, f.shortEntries())
				}

				w.fAdd = append(w.fAdd, parallel(b, set, &w.fAddC, func(a att) error { _, err := fl.tryAdd(a); return err }))
				if got := len(f.portNames()); got != n {
					b.Fatalf("%d ports after %d parallel floor ADDs", got, n)
				}
				w.fDel = append(w.fDel, parallel(b, set, &w.fDelC, func(a att) error { _, err := fl.tryDel(a); return err }))
				if left := f.portNames(); len(left) != 0 {
					b.Fatalf("left after %d parallel floor DELs: %v", n, left)
				}
			}
		}

		// CPU time (user+sys from the children's rusage) per command: unlike
		// wall time it hardly depends on how loaded the machine is.
		var cpuAdd, cpuDel, cpuFAdd, cpuFDel time.Duration
		const cpuRuns = 20
		for _, a := range atts[:cpuRuns] {
			cpuAdd += cpu(x.rusage("ADD", a))
			cpuDel += cpu(x.rusage("DEL", a))
			cpuFAdd += cpu(fl.add(a))
			cpuFDel += cpu(fl.del(a))
		}
		cpuAdd, cpuDel, cpuFAdd, cpuFDel = cpuAdd/cpuRuns, cpuDel/cpuRuns, cpuFAdd/cpuRuns, cpuFDel/cpuRuns

		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		ours, floor, vsctl := median(add)+median(del), median(fAdd)+median(fDel), median(vAdd)+median(vDel)
		b.ReportMetric(ms(median(add)), "add-p50-ms")
		b.ReportMetric(ms(p90(add)), "add-p90-ms")
		b.ReportMetric(ms(median(del)), "del-p50-ms")
		b.ReportMetric(ms(p90(del)), "del-p90-ms")
		b.ReportMetric(ms(median(fAdd)), "floor-add-p50-ms")
		b.ReportMetric(ms(median(fDel)), "floor-del-p50-ms")
		b.ReportMetric(float64(ours)/float64(floor), "adddel/floor")
		b.ReportMetric(float64(ours)/float64(vsctl), "adddel/vsctl")
		for _, n := range parCounts {
			b.ReportMetric(ms(median(par[n].add)), fmt.Sprintf("par%d-add-ms", n))
			b.ReportMetric(ms(median(par[n].del)), fmt.Sprintf("par%d-del-ms", n))
			b.ReportMetric(ms(median(par[n].fAdd)), fmt.Sprintf("floor-par%d-add-ms", n))
			b.ReportMetric(ms(median(par[n].fDel)), fmt.Sprintf("floor-par%d-del-ms", n))
		}
		b.ReportMetric(ms(cpuAdd+cpuDel), "adddel-cpu-ms")
		b.ReportMetric(ms(cpuFAdd+cpuFDel), "floor-adddel-cpu-ms")

		row := func(name string, d []time.Duration) {
			fmt.Printf("%-44s %8.2fms %8.2fms\n", name, ms(median(d)), ms(p90(d)))
		}
		fmt.Printf("\nvhostuser CNI benchmark: real OVS-DPDK, %d sequential attachments per method, interleaved\n", seqRuns)
		fmt.Printf("(wall times on a shared machine: other load moves them; compare within one run)\n")
		fmt.Printf("(node file systems: kubelet root on journaled ext4, short socket dir on tmpfs; plugin execs without a log file, the default)\n")
		fmt.Printf("%-44s %10s %10s\n", "", "median", "p90")
		row("plugin ADD (exec, no log file)", add)
		row("plugin DEL (exec, no log file)", del)
		row("floor ADD: ovsdb-client transact, same ops", fAdd)
		row("floor DEL: ovsdb-client transact, same ops", fDel)
		row("ovs-vsctl add-port + set Interface", vAdd)
		row("ovs-vsctl del-port", vDel)
		row("plugin ADD via libcni (debug log)", lAdd)
		row("plugin DEL via libcni (debug log)", lDel)
		row("  of which inside the plugin, ADD", inAdd)
		row("  of which inside the plugin, DEL", inDel)
		fmt.Printf("%-44s %8.2fms; / floor %.2fms = %.2f (target <= 1.00); / ovs-vsctl %.2fms = %.2f\n",
			"ADD+DEL median, plugin", ms(ours), ms(floor), float64(ours)/float64(floor), ms(vsctl), float64(ours)/float64(vsctl))
		fmt.Printf("\nparallel bursts, wall time (median of %d; every call succeeded, nothing left)\n", parReps)
		fmt.Printf("%-10s %12s %12s %7s %12s %12s %7s\n", "", "plugin ADD", "floor ADD", "ratio", "plugin DEL", "floor DEL", "ratio")
		for _, n := range parCounts {
			w := par[n]
			fmt.Printf("%-10s %10.1fms %10.1fms %7.2f %10.1fms %10.1fms %7.2f\n", fmt.Sprintf("%d at once", n),
				ms(median(w.add)), ms(median(w.fAdd)), float64(median(w.add))/float64(median(w.fAdd)),
				ms(median(w.del)), ms(median(w.fDel)), float64(median(w.del))/float64(median(w.fDel)))
		}
		fmt.Printf("(target for 100 at once: ratio <= 1.00; p90 of the walls: plugin ADD %.1fms, floor ADD %.1fms, plugin DEL %.1fms, floor DEL %.1fms)\n",
			ms(p90(par[nAtts].add)), ms(p90(par[nAtts].fAdd)), ms(p90(par[nAtts].del)), ms(p90(par[nAtts].fDel)))
		fmt.Printf("CPU per %d-burst (median): the commands, ovsdb-server, ovs-vswitchd\n", nAtts)
		w := par[nAtts]
		for _, r := range []struct {
			name string
			c    []burstCPU
		}{{"plugin ADD", w.addC}, {"floor ADD", w.fAddC}, {"plugin DEL", w.delC}, {"floor DEL", w.fDelC}} {
			fmt.Printf("  %-10s %s\n", r.name, medianCPU(r.c))
		}
		fmt.Printf("%-44s ADD %.2fms DEL %.2fms; floor ADD %.2fms DEL %.2fms (mean of %d)\n", "CPU user+sys per command",
			ms(cpuAdd), ms(cpuDel), ms(cpuFAdd), ms(cpuFDel), cpuRuns)
	}
}

var burstSeq int

// parallel runs op for every attachment at once and returns the wall time;
// it appends where the CPU went to cpus.
func parallel(b *testing.B, set []att, cpus *[]burstCPU, op func(att) error) time.Duration {
	// Start from a settled ovs-vswitchd: a change made by ovs-vsctl returns
	// once ovs-vswitchd has applied every change so far (next_cfg, cur_cfg),
	// so the last burst's reconfiguration is not counted in this one (it
	// was, as 10-80 ms of ovs-vswitchd CPU that moved between the plugin's
	// bursts and the floor's).
	burstSeq++
	if _, err := ovs.Vsctl(context.Background(), "set", "Open_vSwitch", ".", fmt.Sprintf("external_ids:vhostuser-bench-burst=%d", burstSeq)); err != nil {
		b.Fatalf("settle ovs-vswitchd: %v", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(set))
	s0 := snapCPU()
	t0 := time.Now()
	for i, a := range set {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = op(a)
		}()
	}
	wg.Wait()
	d := time.Since(t0)
	*cpus = append(*cpus, s0.to(snapCPU()))
	for i, err := range errs {
		if err != nil {
			b.Fatalf("%s: %v", set[i].containerID, err)
		}
	}
	return d
}

// execer runs the plugin binary directly, as a container runtime does, with
// the configuration libcni would pass, at the default log level and with no
// log file (the installer's default).
type execer struct {
	b        *testing.B
	f        *fixture
	stdin    []byte
	nodeFile string // the node configuration, without a log file
}

func newExecer(b *testing.B, f *fixture) *execer {
	var m map[string]any
	if err := json.Unmarshal(f.confList("1.1.0").Plugins[0].Bytes, &m); err != nil {
		b.Fatal(err)
	}
	delete(m, "logLevel")
	m["name"], m["cniVersion"] = f.network, "1.1.0"
	stdin, err := json.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	// The installer's default node configuration has no log file: the
	// fixture's has one (for the libcni runs' in-process times), so the
	// execer points the plugin at a copy without it.
	node, err := os.ReadFile(filepath.Join(f.root, "node.json"))
	if err != nil {
		b.Fatal(err)
	}
	var n map[string]any
	if err := json.Unmarshal(node, &n); err != nil {
		b.Fatal(err)
	}
	delete(n, "logFile")
	if node, err = json.Marshal(n); err != nil {
		b.Fatal(err)
	}
	nodeFile := filepath.Join(f.root, "node-nolog.json")
	if err := os.WriteFile(nodeFile, node, 0o644); err != nil {
		b.Fatal(err)
	}
	return &execer{b: b, f: f, stdin: stdin, nodeFile: nodeFile}
}

func (x *execer) cmd(command string, a att) (*exec.Cmd, *bytes.Buffer) {
	c := exec.Command(filepath.Join(pluginDir, "vhostuser"))
	c.Env = append(os.Environ(), "CNI_COMMAND="+command, "CNI_CONTAINERID="+a.containerID,
		"CNI_NETNS=/var/run/netns/"+a.containerID, "CNI_IFNAME="+a.ifName, "CNI_PATH="+pluginDir,
		"CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=virt-launcher-"+a.containerID+";K8S_POD_UID="+a.uid,
		config.EnvNodeConfig+"="+x.nodeFile)
	c.Stdin = bytes.NewReader(x.stdin)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	return c, &out
}

// run execs one command and returns its wall time, start to exit.
func (x *execer) run(command string, a att) (time.Duration, error) {
	c, out := x.cmd(command, a)
	t0 := time.Now()
	err := c.Run()
	d := time.Since(t0)
	if err != nil {
		return d, fmt.Errorf("%s: %w: %s", command, err, out.String())
	}
	return d, nil
}

func (x *execer) mustRun(command string, a att) time.Duration {
	d, err := x.run(command, a)
	if err != nil {
		x.b.Fatal(err)
	}
	return d
}

func (x *execer) rusage(command string, a att) *syscall.Rusage {
	c, out := x.cmd(command, a)
	if err := c.Run(); err != nil {
		x.b.Fatalf("%s: %v: %s", command, err, out.String())
	}
	return c.ProcessState.SysUsage().(*syscall.Rusage)
}

// floor sends the plugin's transactions with ovsdb-client, OVS's C client.
// The JSON is recorded before timing, from the plugin binary's own ADD and
// DEL of each attachment (same configuration, same CNI_ARGS, so the same
// external_ids), so the two do the same work.
type floor struct {
	b      *testing.B
	f      *fixture
	addTx  map[string]string // container id -> ADD transaction
	delTx  map[string]string // container id -> DEL transaction
	addOps int               // operations in one ADD transaction
	delOps int               // operations in one DEL transaction
}

func newFloor(b *testing.B, f *fixture, x *execer, atts []att) *floor {
	fl := &floor{b: b, f: f, addTx: map[string]string{}, delTx: map[string]string{}}
	rec := newRecorder(b)
	rx := *x
	rx.nodeFile = rec.nodeConfig(x.nodeFile)
	for _, a := range atts {
		rx.mustRun("ADD", a)
		fl.addTx[a.containerID], fl.addOps = rec.onlyTransaction("ADD", a)
		rx.mustRun("DEL", a)
		fl.delTx[a.containerID], fl.delOps = rec.onlyTransaction("DEL", a)
	}
	if n := len(f.portNames()); n != 0 {
		b.Fatalf("%d ports left after recording the floor's transactions", n)
	}
	// Settle ovs-vswitchd (see parallel): the recording's reconfiguration is
	// not counted in the first timed runs.
	if _, err := ovs.Vsctl(context.Background(), "set", "Open_vSwitch", ".", "external_ids:vhostuser-bench-burst=0"); err != nil {
		b.Fatalf("settle ovs-vswitchd: %v", err)
	}
	return fl
}

// recorder is a unix socket in front of the package's ovsdb-server that
// relays each connection and keeps the params of every "transact" call:
// the transaction exactly as the plugin sent it, the argument of
// `ovsdb-client transact`.
type recorder struct {
	b    *testing.B
	dir  string
	path string
	mu   sync.Mutex
	txns []json.RawMessage
}

func newRecorder(b *testing.B) *recorder {
	// Not under b.TempDir(): a unix socket path has a length limit.
	dir, err := os.MkdirTemp("", "vhu-rec-")
	if err != nil {
		b.Fatal(err)
	}
	r := &recorder{b: b, dir: dir, path: filepath.Join(dir, "db.sock")}
	ln, err := net.Listen("unix", r.path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ln.Close()
		os.RemoveAll(dir)
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.relay(c)
		}
	}()
	return r
}

func (r *recorder) relay(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("unix", strings.TrimPrefix(ovs.Endpoint(), "unix:"))
	if err != nil {
		return // the plugin's call fails, and the recording with it
	}
	defer server.Close()
	go func() { _, _ = io.Copy(client, server) }()
	dec := json.NewDecoder(client)
	for {
		var msg json.RawMessage
		if err := dec.Decode(&msg); err != nil {
			return
		}
		var call struct {
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		}
		// Kept before it is relayed: the plugin has its reply only after.
		if json.Unmarshal(msg, &call) == nil && call.Method == "transact" {
			r.mu.Lock()
			r.txns = append(r.txns, call.Params)
			r.mu.Unlock()
		}
		if _, err := server.Write(msg); err != nil {
			return
		}
	}
}

// nodeConfig writes a copy of the node configuration nodeFile that points
// the plugin at the recorder, and returns its path.
func (r *recorder) nodeConfig(nodeFile string) string {
	data, err := os.ReadFile(nodeFile)
	if err != nil {
		r.b.Fatal(err)
	}
	var n map[string]any
	if err := json.Unmarshal(data, &n); err != nil {
		r.b.Fatal(err)
	}
	n["ovsdbSocket"] = "unix:" + r.path
	if data, err = json.Marshal(n); err != nil {
		r.b.Fatal(err)
	}
	path := filepath.Join(r.dir, "node.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		r.b.Fatal(err)
	}
	return path
}

// onlyTransaction returns the one transaction recorded since the last call
// and its number of operations. More than one means the command did not
// take its one-round-trip path, and the floor would not do its work.
func (r *recorder) onlyTransaction(command string, a att) (string, int) {
	r.mu.Lock()
	txns := r.txns
	r.txns = nil
	r.mu.Unlock()
	if len(txns) != 1 {
		r.b.Fatalf("%s of %s sent %d transactions, want 1", command, a.containerID, len(txns))
	}
	var params []json.RawMessage
	if err := json.Unmarshal(txns[0], &params); err != nil || len(params) < 2 {
		r.b.Fatalf("%s of %s: transact params %s: %v", command, a.containerID, txns[0], err)
	}
	return string(txns[0]), len(params) - 1
}

func ovsdbClient(tx string) *exec.Cmd {
	c := exec.Command("ovsdb-client", "transact", ovs.Endpoint(), tx)
	c.Env = ovs.Env()
	return c
}

// results checks ovsdb-client's reply and returns result i's "uuid", if any.
func results(out []byte, nops, i int) (string, error) {
	var res []map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		return "", fmt.Errorf("ovsdb-client output %q: %w", out, err)
	}
	if len(res) != nops {
		return "", fmt.Errorf("ovsdb-client: %d results for %d operations: %s", len(res), nops, out)
	}
	for _, r := range res {
		if e, ok := r["error"]; ok && e != nil {
			return "", fmt.Errorf("ovsdb-client transaction failed: %s", out)
		}
	}
	if u, ok := res[i]["uuid"].([]any); ok && len(u) == 2 {
		s, _ := u[1].(string)
		return s, nil
	}
	return "", nil
}

// transact sends tx with ovsdb-client, checks its nops results and returns
// result i's "uuid" and the command's rusage.
func (fl *floor) transact(tx string, nops, i int) (string, *syscall.Rusage, error) {
	c := ovsdbClient(tx)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		return "", nil, fmt.Errorf("ovsdb-client transact: %w: %s", err, stderr.String())
	}
	u, err := results(out, nops, i)
	return u, c.ProcessState.SysUsage().(*syscall.Rusage), err
}

// tryAdd sends the ADD transaction; the port must come back under the
// attachment's derived UUID, as the plugin's does.
func (fl *floor) tryAdd(a att) (*syscall.Rusage, error) {
	u, r, err := fl.transact(fl.addTx[a.containerID], fl.addOps, 1)
	if want := ovsdb.PortUUID(a.containerID, a.ifName); err == nil && u != want {
		err = fmt.Errorf("ovsdb-client: port UUID %q, want %s", u, want)
	}
	return r, err
}

func (fl *floor) tryDel(a att) (*syscall.Rusage, error) {
	_, r, err := fl.transact(fl.delTx[a.containerID], fl.delOps, 0)
	return r, err
}

func (fl *floor) add(a att) *syscall.Rusage {
	r, err := fl.tryAdd(a)
	if err != nil {
		fl.b.Fatal(err)
	}
	return r
}

func (fl *floor) del(a att) *syscall.Rusage {
	r, err := fl.tryDel(a)
	if err != nil {
		fl.b.Fatal(err)
	}
	return r
}

func cpu(r *syscall.Rusage) time.Duration {
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
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
