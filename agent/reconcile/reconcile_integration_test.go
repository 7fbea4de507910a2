//go:build integration

package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubevirt-vhostuser/vhostuser/agent/ovsstate"
	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb"
	"github.com/kubevirt-vhostuser/vhostuser/internal/ovsenv"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

var ovs *ovsenv.OVS

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "FAIL: the integration tests need root (ovsenv's network namespace)")
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	// ovsdb-server alone: the reconciler reads and deletes rows, and no
	// datapath is needed for that (and no PMD thread burns a core).
	var err error
	ovs, err = ovsenv.StartWithBridge(ctx, ovsenv.Options{Name: "vhurec", NoVswitchd: true}, "br0")
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: start OVS:", err)
		return 1
	}
	defer ovs.Stop()
	return m.Run()
}

// fakePods is the API side, switchable by the test.
type fakePods struct {
	mu      sync.Mutex
	synced  bool
	cached  map[string]bool
	live    map[string]bool
	liveErr error
	lives   int
}

func (f *fakePods) Synced() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.synced }
func (f *fakePods) Cached(uid string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cached[uid]
}
func (f *fakePods) Live(context.Context) (map[string]bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lives++
	if f.liveErr != nil {
		return nil, f.liveErr
	}
	m := map[string]bool{}
	for k, v := range f.live {
		m[k] = v
	}
	return m, nil
}

func (f *fakePods) set(fn func(*fakePods)) { f.mu.Lock(); fn(f); f.mu.Unlock() }

type notes struct {
	mu sync.Mutex
	rm []Removal
}

func (n *notes) Removed(r Removal) { n.mu.Lock(); n.rm = append(n.rm, r); n.mu.Unlock() }
func (n *notes) all() []Removal {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Removal(nil), n.rm...)
}

type attachment struct {
	uid, ifName, port string
	paths             socketpath.Paths
}

const (
	liveUID = "11111111-1111-4111-8111-111111111111"
	goneUID = "22222222-2222-4222-8222-222222222222"
	ifName  = "pod0123456789a"
)

// fixture makes a kubelet root with the pod volume trees and short links of
// the live and the gone pod, their ports with our marks, and a foreign port
// (no owner mark) carrying the gone pod's UID and ifname.
func fixture(t *testing.T) (socketpath.Layout, attachment, attachment, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "vhr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l := socketpath.Layout{KubeletRoot: filepath.Join(dir, "kubelet"), Volume: socketpath.DefaultVolume, ShortDir: filepath.Join(dir, "s")}
	mk := func(uid string) attachment {
		p, err := l.For(socketpath.Attachment{PodUID: uid, IfName: ifName})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(p.HostDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(l.ShortDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p.HostDir, p.ShortLink); err != nil {
			t.Fatal(err)
		}
		a := attachment{uid: uid, ifName: ifName, port: ovsdb.PortName(p.ID), paths: p}
		addPort(t, a.port, map[string]string{ovsdb.KeyOwner: ovsdb.Owner, ovsdb.KeyPodUID: uid, ovsdb.KeyIfName: ifName,
			ovsdb.KeyNamespace: "ns", ovsdb.KeyPodName: "virt-launcher-" + uid[:4], ovsdb.KeyContainerID: "c" + uid[:8]})
		return a
	}
	live, gone := mk(liveUID), mk(goneUID)
	foreign := "foreign0"
	addPort(t, foreign, map[string]string{ovsdb.KeyPodUID: goneUID, ovsdb.KeyIfName: ifName})
	return l, live, gone, foreign
}

func addPort(t *testing.T, name string, marks map[string]string) {
	t.Helper()
	var ids []string
	for k, v := range marks {
		ids = append(ids, fmt.Sprintf("external_ids:%q=%q", k, v))
	}
	// The marks go on both rows, as the plugin writes them.
	args := append([]string{"--no-wait", "add-port", "br0", name, "--", "set", "Interface", name,
		"type=dpdkvhostuserclient", "options:vhost-server-path=" + filepath.Join(ovs.Dir, name+".sock")}, ids...)
	args = append(append(args, "--", "set", "Port", name), ids...)
	if out, err := ovs.Vsctl(context.Background(), args...); err != nil {
		t.Fatalf("add port %s: %v %s", name, err, out)
	}
	t.Cleanup(func() { _, _ = ovs.Vsctl(context.Background(), "--no-wait", "--if-exists", "del-port", name) })
}

func ports(t *testing.T) map[string]bool {
	t.Helper()
	out, err := ovs.Vsctl(context.Background(), "list-ports", "br0")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, p := range strings.Fields(out) {
		m[p] = true
	}
	return m
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// running starts a monitor and a reconciler (Grace 2 s, Interval 500 ms);
// both stop when the test ends.
func running(t *testing.T, l socketpath.Layout, pods Pods, n Notifier) *Reconciler {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	state := ovsstate.NewState()
	mon := &ovsstate.Monitor{Endpoint: ovs.Endpoint(), State: state, Log: log}
	wg.Add(2)
	go func() { defer wg.Done(); _ = mon.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !state.Health().Connected {
		if time.Now().After(deadline) {
			t.Fatal("monitor did not connect")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := New(Config{Layout: l, Endpoint: ovs.Endpoint(), Grace: 2 * time.Second, Interval: 500 * time.Millisecond, Log: log, Notify: n}, state, pods)
	go func() { defer wg.Done(); r.Run(ctx) }()
	return r
}

func checkAllKept(t *testing.T, live, gone attachment, foreign string) {
	t.Helper()
	ps := ports(t)
	for _, p := range []string{live.port, gone.port, foreign} {
		if !ps[p] {
			t.Errorf("port %s was removed", p)
		}
	}
	for _, a := range []attachment{live, gone} {
		if !exists(a.paths.ShortLink) || !exists(a.paths.HostDir) {
			t.Errorf("link or socket directory of pod %s was removed", a.uid)
		}
	}
}

// TestNothingRemovedWhileUntrusted: with the informer not synced, and then
// with the API unreachable at the second look, several grace periods pass
// and nothing is removed.
func TestNothingRemovedWhileUntrusted(t *testing.T) {
	l, live, gone, foreign := fixture(t)
	pods := &fakePods{synced: false, cached: map[string]bool{liveUID: true}, live: map[string]bool{liveUID: true}}
	var n notes
	running(t, l, pods, &n)
	time.Sleep(5 * time.Second) // 2.5 grace periods
	checkAllKept(t, live, gone, foreign)
	pods.set(func(f *fakePods) {
		if f.lives != 0 {
			t.Errorf("Live called %d times while not synced", f.lives)
		}
	})

	pods.set(func(f *fakePods) { f.synced = true; f.liveErr = errors.New("apiserver unreachable") })
	time.Sleep(5 * time.Second)
	checkAllKept(t, live, gone, foreign)
	pods.set(func(f *fakePods) {
		if f.lives == 0 {
			t.Error("the second look never ran: the test proves nothing")
		}
	})
	if rm := n.all(); len(rm) != 0 {
		t.Errorf("removals reported: %+v", rm)
	}
}

// TestRemovesGonePod: the gone pod's port, short link and socket directory
// go within a bound after the pod leaves the cache and the API; the live
// pod's and the foreign port (no owner mark, same pod UID and ifname) stay.
func TestRemovesGonePod(t *testing.T) {
	l, live, gone, foreign := fixture(t)
	pods := &fakePods{synced: true, cached: map[string]bool{liveUID: true, goneUID: true}, live: map[string]bool{liveUID: true, goneUID: true}}
	// A temporary link name a killed ADD left an hour ago, and a dangling
	// link (its pod's volume is gone).
	temp := filepath.Join(l.ShortDir, "."+strings.Repeat("a", socketpath.IDLen)+".0123456789ab")
	if err := os.Symlink(live.paths.HostDir, temp); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	ts := []unix.Timespec{unix.NsecToTimespec(old.UnixNano()), unix.NsecToTimespec(old.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, temp, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(l.ShortDir, strings.Repeat("b", socketpath.IDLen))
	if err := os.Symlink(filepath.Join(l.KubeletRoot, "pods", "44444444-4444-4444-8444-444444444444", "volumes", "kubernetes.io~empty-dir", l.Volume, socketpath.SocketsDir, ifName), dangling); err != nil {
		t.Fatal(err)
	}
	var n notes
	r := running(t, l, pods, &n)
	time.Sleep(time.Second)
	if exists(temp) || exists(dangling) {
		t.Errorf("after 1 s: old temporary link left %v, dangling link left %v", exists(temp), exists(dangling))
	}
	start := time.Now()
	pods.set(func(f *fakePods) { delete(f.cached, goneUID); delete(f.live, goneUID) })
	const bound = 10 * time.Second
	for ports(t)[gone.port] {
		if time.Since(start) > bound {
			t.Fatalf("gone pod's port %s still there after %v", gone.port, bound)
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(start)
	t.Logf("pod gone -> port removed: %v (grace 2s, interval 500ms)", took.Round(time.Millisecond))
	if took < 2*time.Second {
		t.Errorf("removed after %v, before the 2 s grace", took)
	}
	time.Sleep(200 * time.Millisecond)
	if exists(gone.paths.ShortLink) || exists(gone.paths.HostDir) {
		t.Errorf("gone pod's link (%v) or socket directory (%v) left", exists(gone.paths.ShortLink), exists(gone.paths.HostDir))
	}
	ps := ports(t)
	if !ps[live.port] || !ps[foreign] {
		t.Errorf("live port kept %v, foreign port kept %v", ps[live.port], ps[foreign])
	}
	if !exists(live.paths.ShortLink) || !exists(live.paths.HostDir) {
		t.Error("live pod's link or socket directory removed")
	}
	kinds := map[string]bool{}
	for _, rm := range n.all() {
		if rm.Err != nil {
			t.Errorf("removal failed: %+v", rm)
		}
		if rm.PodUID != goneUID && rm.Name != temp && rm.Name != dangling {
			t.Errorf("removal of another pod: %+v", rm)
		}
		if rm.Kind == KindPort && (rm.Namespace != "ns" || rm.IfName != ifName || rm.Name != gone.port) {
			t.Errorf("port removal lacks the marks: %+v", rm)
		}
		kinds[rm.Kind] = true
	}
	for _, k := range []string{KindPort, KindLink, KindSocketDir, KindTempLink} {
		if !kinds[k] {
			t.Errorf("no %s removal reported: %+v", k, n.all())
		}
	}
	r.mu.Lock()
	t.Logf("passes %d, errors %d, removed %v", r.passes, r.errors, r.removed)
	r.mu.Unlock()
}

// TestExecutorRechecksMarks drives the executor directly, bypassing the
// planner: it deletes only rows that carry our owner mark and the pod UID,
// so the foreign port with the same pod UID and ifname survives, and a
// candidate whose marks match no row of ours deletes nothing.
func TestExecutorRechecksMarks(t *testing.T) {
	l, live, gone, foreign := fixture(t)
	r := New(Config{Layout: l, Endpoint: ovs.Endpoint()}, ovsstate.NewState(), &fakePods{})
	defer r.dropClient()
	ctx := context.Background()
	if rm := r.execute(ctx, Candidate{Kind: KindPort, Name: foreign, PodUID: "33333333-3333-4333-8333-333333333333", IfName: ifName}); len(rm) != 0 {
		t.Errorf("candidate matching no port of ours removed %+v", rm)
	}
	rm := r.execute(ctx, Candidate{Kind: KindPort, Name: gone.port, PodUID: goneUID, IfName: ifName})
	ps := ports(t)
	if ps[gone.port] || !ps[foreign] || !ps[live.port] {
		t.Errorf("after executing the gone pod: gone %v (want false), foreign %v, live %v (want true); removals %+v", ps[gone.port], ps[foreign], ps[live.port], rm)
	}
}
