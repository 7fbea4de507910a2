//go:build integration

package plugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
	"golang.org/x/sys/unix"

	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb"
	"github.com/kubevirt-vhostuser/vhostuser/cni/sockdir"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// TestChaos runs seeded random ADD, DEL, CHECK, GC and STATUS calls through
// libcni against the package's private OVS-DPDK while injecting faults, then
// DELs every attachment and asserts that nothing of ours is left and that no
// call failed when it should have succeeded.
//
// Faults:
//   - ovs-vswitchd SIGKILLed, restarted after 0-4 operations;
//   - ovsdb-server SIGKILLed, restarted after 0-4 operations (0: a plain restart);
//   - the same two kills fired while an operation runs, after a random delay;
//   - the plugin process SIGKILLed after a random delay within a typical run,
//     or as soon as it creates a temporary short link name.
//
// Pods also get new sandboxes (kubelet re-creating one without DEL first), so
// DELs of old sandboxes come late, possibly while the newer one is attached;
// and pods go away without any DEL (kubelet removes the volume), replaced by
// a new pod: only then may GC remove their ports.
//
// Replay: VHU_CHAOS_SEED=<seed> (logged at the start) and VHU_CHAOS_OPS=<n>
// (default 1000, about 45 s on a 2-core machine; `make soak` runs 2000);
// VHU_CHAOS_TRACE=1 logs every operation. The summary line is logged (go test -v).
func TestChaos(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("VHU_CHAOS_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("VHU_CHAOS_SEED=%q: %v", s, err)
		}
		seed = v
	}
	nops := 1000
	if s := os.Getenv("VHU_CHAOS_OPS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("VHU_CHAOS_OPS=%q: want a positive integer", s)
		}
		nops = v
	}
	t.Logf("chaos: seed %d, %d operations (replay with VHU_CHAOS_SEED=%d VHU_CHAOS_OPS=%d)", seed, nops, seed, nops)

	f := newFixture(t)
	f.network = "chaos-net"
	ch := &chaos{t: t, f: f, rng: rand.New(rand.NewSource(seed)), exec: &killExec{tempDir: f.short}, state: map[att]attState{}}
	ch.trace = os.Getenv("VHU_CHAOS_TRACE") == "1"
	ch.cni = libcni.NewCNIConfigWithCacheDir([]string{pluginDir}, filepath.Join(f.root, "cache"), ch.exec)
	// Other tests share this OVS: whatever happens, leave both daemons running.
	t.Cleanup(func() { ch.ensureUp() })

	// Four pods with two interfaces each: a hashed name as KubeVirt gives
	// today and an ordinal one as pods of old VMs have.
	for i := 0; i < 4; i++ {
		uid := fmt.Sprintf("%08x-0000-4000-8000-%012x", ch.rng.Uint32(), ch.rng.Int63()&0xffffffffffff)
		f.newPod(uid)
		ch.pods = append(ch.pods, &chaosPod{uid: uid, ifNames: []string{socketpath.PodInterfaceName(fmt.Sprintf("net-%d", i)), "net1"}})
		ch.newSandbox(i)
	}

	start := time.Now()
	for i := 0; i < nops; i++ {
		ch.step(i)
	}
	ch.final()
	wall := time.Since(start)

	s := &ch.stats
	var kinds []string
	for k := range s.ops {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var ops []string
	for _, k := range kinds {
		ops = append(ops, fmt.Sprintf("%s=%d/%dok", k, s.ops[k], s.ok[k]))
	}
	t.Logf("chaos summary: seed=%d operations=%d (%s) faults: vswitchd-kill=%d ovsdb-restart=%d during-op-kill=%d plugin-kill=%d; leaks=%d spurious-errors=%d wall=%s",
		seed, nops, strings.Join(ops, " "), s.vswitchdKills, s.ovsdbRestarts, s.duringOp, s.pluginKills, s.leaks, s.spurious, wall.Round(time.Millisecond))
	if s.leaks > 0 || s.spurious > 0 {
		t.Errorf("%d leaks and %d spurious errors (seed %d; details above)", s.leaks, s.spurious, seed)
	}
}

// chaosPod is one pod: its UID and interfaces stay, its sandbox (container
// ID) changes when kubelet re-creates it.
type chaosPod struct {
	uid     string
	ifNames []string
	gen     int
	current []att // the attachments of the current sandbox
}

// newSandbox gives pod i a new sandbox, as kubelet does after a sandbox
// died, without DEL of the old one first: the old sandbox's DEL comes later,
// if at all, and must leave the new sandbox's port, link and directory.
func (ch *chaos) newSandbox(i int) {
	p := ch.pods[i]
	p.gen++
	p.current = nil
	for _, ifName := range p.ifNames {
		a := att{fmt.Sprintf("chaos%d-%d", i, p.gen), ifName, p.uid}
		ch.atts = append(ch.atts, a)
		ch.state[a] = absent
		p.current = append(p.current, a)
	}
}

// podGone deletes pod i without any DEL, as when a node loses a runtime's
// state: kubelet removes the pod's volumes, and a new pod (new UID, same
// interfaces) takes its place. The old attachments stay known for late DELs
// and for GC, which may now remove them.
func (ch *chaos) podGone(i int) {
	old := ch.pods[i]
	p, err := ch.f.layout().For(socketpath.Attachment{PodUID: old.uid, IfName: "x"})
	if err != nil {
		ch.t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Dir(filepath.Dir(filepath.Dir(p.VolumeDir)))); err != nil {
		ch.t.Fatalf("remove the volumes of pod %s: %v", old.uid, err)
	}
	// A gone pod's attachments are no longer whole (GC removes short links
	// that point into a removed volume): only DEL or GC settles them.
	for _, a := range ch.atts {
		if a.uid == old.uid && ch.state[a] == attached {
			ch.state[a] = unknown
		}
	}
	uid := fmt.Sprintf("%08x-0000-4000-8000-%012x", ch.rng.Uint32(), ch.rng.Int63()&0xffffffffffff)
	ch.f.newPod(uid)
	// gen carries on, so container IDs stay unique across pods at index i.
	ch.pods[i] = &chaosPod{uid: uid, ifNames: old.ifNames, gen: old.gen}
	ch.newSandbox(i)
}

// volumeExists tells whether a's pod still has its volume on the node.
func (ch *chaos) volumeExists(a att) bool {
	_, err := os.Lstat(ch.f.paths(a).VolumeDir)
	return err == nil
}

// others are the other sandboxes' attachments of a's pod and interface that
// may have something (they share the port name, link and directory).
func (ch *chaos) others(a att) []att {
	var out []att
	for _, o := range ch.atts {
		if o != a && o.uid == a.uid && o.ifName == a.ifName && ch.state[o] != absent {
			out = append(out, o)
		}
	}
	return out
}

// attState is what the test knows about one attachment.
type attState int

const (
	absent   attState = iota // nothing of it exists (after a successful DEL)
	attached                 // the last call on it was a successful ADD, and its port is not replaced
	noPort                   // a successful GC found it not valid: no port of its own (a killed ADD's link and directory may stay)
	unknown                  // a call on it failed or was killed: anything in between
)

type chaos struct {
	t     *testing.T
	f     *fixture
	rng   *rand.Rand
	exec  *killExec
	cni   *libcni.CNIConfig
	atts  []att // every sandbox's attachments, old sandboxes too
	state map[att]attState
	pods  []*chaosPod
	trace bool // VHU_CHAOS_TRACE=1: log every operation

	// Daemon state between operations. down* counts the operations left
	// before the daemon is started again.
	dbDown, vsDown int
	// typical is a running estimate of a plugin call's duration, to place
	// kills anywhere inside one.
	typical time.Duration

	stats struct {
		ops, ok                                             map[string]int
		vswitchdKills, ovsdbRestarts, duringOp, pluginKills int
		leaks, spurious                                     int
	}
}

func (ch *chaos) step(i int) {
	// Restart what is due, then maybe kill a daemon before this operation.
	if ch.dbDown > 0 {
		if ch.dbDown--; ch.dbDown == 0 {
			ch.startDB()
		}
	}
	if ch.vsDown > 0 {
		switch ch.vsDown--; {
		case ch.vsDown > 0:
		case ch.dbDown > 0:
			// ovs-vswitchd --detach waits for the database: start it later.
			ch.vsDown = 1
		default:
			ch.startVswitchd()
		}
	}
	switch r := ch.rng.Float64(); {
	case r < 0.04 && ch.vsDown == 0:
		ch.killVswitchd()
		ch.vsDown = ch.rng.Intn(5) + 1
	case r < 0.08 && ch.dbDown == 0:
		ch.killDB()
		ch.dbDown = ch.rng.Intn(5) + 1
		if ch.dbDown == 1 { // a plain restart: down for no operation
			ch.dbDown = 0
			ch.startDB()
		}
	}

	// The daemons' state for the whole operation, unless a fault fires during it.
	dbUp, vsUp := ch.dbDown == 0, ch.vsDown == 0
	var during *sync.WaitGroup
	duringDB := false
	if dbUp && vsUp && ch.rng.Float64() < 0.03 {
		ch.stats.duringOp++
		duringDB = ch.rng.Intn(2) == 0
		delay := ch.randDelay()
		during = &sync.WaitGroup{}
		during.Add(1)
		go func(db bool) {
			defer during.Done()
			time.Sleep(delay)
			if db {
				ch.killDB()
			} else {
				ch.killVswitchd()
			}
		}(duringDB)
	}
	switch r := ch.rng.Float64(); {
	case r < 0.05:
		ch.exec.arm(time.Time{}, true)
	case r < 0.15:
		ch.exec.arm(time.Now().Add(ch.randDelay()), false)
	default:
		ch.exec.arm(time.Time{}, false)
	}

	op := ch.pickOp()
	// ADD and CHECK come for a pod's current sandbox; DEL also for old ones
	// (a late DEL), GC for whatever the runtime lists.
	pi := ch.rng.Intn(len(ch.pods))
	a := ch.pods[pi].current[ch.rng.Intn(len(ch.pods[pi].current))]
	if op == "DEL" {
		a = ch.atts[ch.rng.Intn(len(ch.atts))]
	}
	began := time.Now()
	var err error
	var valid map[att]bool
	list := ch.f.confList("1.1.0")
	switch op {
	case "ADD":
		_, err = ch.cni.AddNetworkList(context.Background(), list, ch.f.rt(a))
	case "DEL":
		err = ch.cni.DelNetworkList(context.Background(), list, ch.f.rt(a))
	case "CHECK":
		err = ch.cni.CheckNetworkList(context.Background(), list, ch.f.rt(a))
	case "STATUS":
		err = ch.cni.GetStatusNetworkList(context.Background(), list)
	case "SANDBOX":
		ch.newSandbox(pi)
	case "PODGONE":
		ch.podGone(pi)
	case "GC":
		valid = ch.pickValid()
		var va []types.GCAttachment
		for v := range valid {
			va = append(va, types.GCAttachment{ContainerID: v.containerID, IfName: v.ifName})
		}
		err = ch.cni.GCNetworkList(context.Background(), list, &libcni.GCArgs{ValidAttachments: va})
	}
	took := time.Since(began)
	killed := ch.exec.disarm()
	if during != nil {
		during.Wait()
		// The killed daemon comes back after a few operations.
		if duringDB {
			ch.dbDown = ch.rng.Intn(4) + 1
		} else {
			ch.vsDown = ch.rng.Intn(4) + 1
		}
	}
	if killed {
		ch.stats.pluginKills++
	}
	if ch.stats.ops == nil {
		ch.stats.ops, ch.stats.ok = map[string]int{}, map[string]int{}
	}
	ch.stats.ops[op]++
	if err == nil {
		ch.stats.ok[op]++
		if !killed && during == nil {
			ch.typical = (ch.typical*7 + took) / 8
		}
	}

	// Which failures are legitimate (anything else is a spurious error):
	//   - any call whose plugin process we killed;
	//   - any call during which a daemon was killed;
	//   - DEL and GC only touch OVSDB: they may fail only while ovsdb-server
	//     is down (then a port may remain and success would hide the leak);
	//   - ADD, CHECK and STATUS may fail while either daemon is down (the
	//     dataplane is not ready to serve a VM);
	//   - CHECK fails, as it must, when the attachment is not known attached.
	// And one success is wrong: CHECK of an attachment known to have no port.
	hit := killed || during != nil
	if ch.trace {
		ch.t.Logf("op %d %s %s/%s state %d: err=%v killed=%v during=%v db=%v vs=%v", i, op, a.containerID, a.ifName, ch.state[a], err, killed, during != nil, dbUp, vsUp)
	}
	label := fmt.Sprintf("op %d %s %s/%s (db up %v, vswitchd up %v, killed %v, fault during %v)", i, op, a.containerID, a.ifName, dbUp, vsUp, killed, during != nil)
	spurious := func(why string) {
		ch.stats.spurious++
		ch.t.Errorf("spurious: %s: %s: %v", label, why, err)
	}
	switch op {
	case "ADD":
		switch {
		case err == nil:
			for _, o := range ch.others(a) {
				if ch.state[o] == attached {
					ch.state[o] = unknown // its port was replaced by ours
				}
			}
			ch.state[a] = attached
			ch.verifyAttached(label, a)
		default:
			// It may have replaced another sandbox's port before it failed.
			for _, o := range ch.others(a) {
				if ch.state[o] == attached {
					ch.state[o] = unknown
				}
			}
			ch.state[a] = unknown
			if !hit && dbUp && vsUp {
				spurious("ADD failed with OVS up")
			}
		}
	case "DEL":
		switch {
		case err == nil:
			ch.state[a] = absent
			if others := ch.others(a); len(others) == 0 {
				ch.verifyGone(label, a, true, true, true)
			} else {
				// Another sandbox of the pod may use the link and directory:
				// only our port must be gone, and an attached one intact.
				ch.verifyGone(label, a, false, false, false)
				for _, o := range others {
					if ch.state[o] == attached {
						ch.verifyAttached(label+" (other sandbox)", o)
					}
				}
			}
		default:
			ch.state[a] = unknown
			if !hit && dbUp {
				spurious("DEL failed with OVSDB up")
			}
		}
	case "CHECK":
		switch {
		case err == nil && (ch.state[a] == absent || ch.state[a] == noPort):
			spurious("CHECK passed for an attachment without a port")
		case err != nil && ch.state[a] == attached && !hit && dbUp && vsUp:
			spurious("CHECK failed for an attached attachment with OVS up")
		}
	case "STATUS":
		if err != nil && !hit && dbUp && vsUp {
			spurious("STATUS failed with OVS up")
		}
	case "GC":
		switch {
		case err == nil:
			for _, x := range ch.atts {
				switch {
				case valid[x]:
				case ch.state[x] == attached:
					// libcni itself DELs every attachment it has a cached
					// result for and the list leaves out, before the
					// plugin's GC runs: gone, link and all.
					ch.verifyGone(label, x, true, false, len(ch.others(x)) == 0)
					ch.state[x] = noPort
				case !ch.volumeExists(x):
					// The plugin's GC: the pod is gone, so its port and
					// short link go (a killed ADD's link dangles now, and
					// dangling links go too).
					ch.verifyGone(label, x, true, false, len(ch.others(x)) == 0)
					ch.state[x] = noPort
				}
				// Otherwise the list alone never condemns a live pod's
				// port (network names are not unique across namespaces,
				// some Multus versions send lists missing live sandboxes):
				// the state stays what it was. TestGC asserts that rule.
			}
			ch.verifyNoTemps(label)
		default:
			for _, x := range ch.atts {
				if !valid[x] {
					ch.state[x] = unknown
				}
			}
			if !hit && dbUp {
				spurious("GC failed with OVSDB up")
			}
		}
	}
}

// final brings OVS back, DELs every attachment without faults and asserts
// that nothing of ours remains: no port or interface in OVSDB, no short link
// or temporary name, no per-interface socket directory.
func (ch *chaos) final() {
	ch.ensureUp()
	ch.vsDown, ch.dbDown = 0, 0
	ch.exec.arm(time.Time{}, false)
	for _, a := range ch.atts {
		if err := ch.cni.DelNetworkList(context.Background(), ch.f.confList("1.1.0"), ch.f.rt(a)); err != nil {
			ch.stats.spurious++
			ch.t.Errorf("spurious: final DEL %s/%s: %v", a.containerID, a.ifName, err)
		}
	}
	ch.ovsRows("final", func(kind, name string, ids map[string]string) {
		if ids["vhostuser.kubevirt.io/network"] == ch.f.network || ch.isOurName(name) {
			ch.leak("final", "%s %s (external_ids %v)", kind, name, ids)
		}
	})
	if ports := ch.f.portNames(); len(ports) > 0 {
		ch.leak("final", "ports on bridge %s: %v", ch.f.bridge, ports)
	}
	if ents := ch.f.shortEntries(); len(ents) > 0 {
		ch.leak("final", "entries in shortSocketDir %s: %v", ch.f.short, ents)
	}
	for _, a := range ch.atts {
		if _, err := os.Lstat(ch.f.paths(a).HostDir); !errors.Is(err, os.ErrNotExist) {
			ch.leak("final", "socket directory %s (%v)", ch.f.paths(a).HostDir, err)
		}
	}
}

func (ch *chaos) isCurrent(a att) bool {
	for _, p := range ch.pods {
		if slices.Contains(p.current, a) {
			return true
		}
	}
	return false
}

func (ch *chaos) isOurName(name string) bool {
	for _, a := range ch.atts {
		if name == ovsdb.PortName(ch.f.paths(a).ID) {
			return true
		}
	}
	return false
}

// verifyAttached checks a successful ADD: the short link points at the
// socket directory and the port carries this attachment's marks.
func (ch *chaos) verifyAttached(label string, a att) {
	p := ch.f.paths(a)
	if t, err := os.Readlink(p.ShortLink); err != nil || t != p.HostDir {
		ch.leak(label, "after ADD: short link %s -> %q (%v), want %s", p.ShortLink, t, err, p.HostDir)
	}
	if ch.dbDown > 0 { // killed during the call, after it succeeded
		return
	}
	name := ovsdb.PortName(p.ID)
	out, err := ovs.Vsctl(context.Background(), "--if-exists", "get", "Port", name, "external_ids:vhostuser.kubevirt.io/container-id")
	if err != nil || strings.Trim(strings.TrimSpace(out), `"`) != a.containerID {
		ch.leak(label, "after ADD: port %s container-id %q (%v), want %s", name, strings.TrimSpace(out), err, a.containerID)
	}
}

// verifyGone checks that an attachment has no port left; with link, no
// short link; with dir, no socket directory; with alone (no other sandbox
// shares its names), no port of its name at all and no temporary link name.
func (ch *chaos) verifyGone(label string, a att, link, dir, alone bool) {
	p := ch.f.paths(a)
	name := ovsdb.PortName(p.ID)
	if ch.dbDown == 0 { // else killed during the call, after it succeeded
		cond := []string{"name=" + name}
		if !alone {
			cond = append(cond, "external_ids:vhostuser.kubevirt.io/container-id="+a.containerID)
		}
		out, err := ovs.Vsctl(context.Background(), append([]string{"--bare", "--columns=name", "find", "Port"}, cond...)...)
		if err != nil || strings.TrimSpace(out) != "" {
			ch.leak(label, "port %s of %s/%s remains (%v)", name, a.containerID, a.ifName, err)
		}
	}
	if !alone {
		return
	}
	var paths []string
	if link {
		paths = append(paths, p.ShortLink)
	}
	if dir {
		paths = append(paths, p.HostDir)
	}
	for _, path := range paths {
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			ch.leak(label, "%s of %s/%s remains (%v)", path, a.containerID, a.ifName, err)
		}
	}
	for _, e := range ch.f.shortEntries() {
		if id, ok := sockdir.TempID(e); ok && id == p.ID {
			ch.leak(label, "temporary link %s of %s/%s remains", e, a.containerID, a.ifName)
		}
	}
}

// verifyNoTemps checks that no temporary link name is left after a GC.
func (ch *chaos) verifyNoTemps(label string) {
	for _, e := range ch.f.shortEntries() {
		if _, ok := sockdir.TempID(e); ok {
			ch.leak(label, "temporary link %s remains after GC", e)
		}
	}
}

func (ch *chaos) leak(label, format string, args ...any) {
	ch.stats.leaks++
	ch.t.Errorf("leak: %s: %s", label, fmt.Sprintf(format, args...))
}

// ovsRows calls fn for every Port and Interface row.
func (ch *chaos) ovsRows(label string, fn func(kind, name string, ids map[string]string)) {
	for _, table := range []string{"Port", "Interface"} {
		out, err := ovs.Vsctl(context.Background(), "--format=json", "--columns=name,external_ids", "list", table)
		if err != nil {
			ch.t.Errorf("%s: list %s: %v", label, table, err)
			continue
		}
		var tbl struct {
			Data [][]any `json:"data"`
		}
		if err := json.Unmarshal([]byte(out), &tbl); err != nil {
			ch.t.Errorf("%s: parse %s: %v", label, table, err)
			continue
		}
		for _, r := range tbl.Data {
			ids := map[string]string{}
			if m, ok := r[1].([]any); ok && len(m) == 2 {
				for _, kv := range m[1].([]any) {
					p := kv.([]any)
					ids[p[0].(string)], _ = p[1].(string)
				}
			}
			name, _ := r[0].(string)
			fn(table, name, ids)
		}
	}
}

func (ch *chaos) pickOp() string {
	r := ch.rng.Float64()
	switch {
	case r < 0.32:
		return "ADD"
	case r < 0.58:
		return "DEL"
	case r < 0.78:
		return "CHECK"
	case r < 0.88:
		return "STATUS"
	case r < 0.91:
		return "SANDBOX"
	case r < 0.92:
		return "PODGONE"
	default:
		return "GC"
	}
}

// pickValid is the runtime's view for GC: usually the attached ones, and a
// random share of the others (a runtime may consider a sandbox alive whose
// ADD was killed, or forget one that works).
func (ch *chaos) pickValid() map[att]bool {
	valid := map[att]bool{}
	for _, a := range ch.atts {
		p := 0.3
		switch {
		case ch.state[a] == attached:
			p = 0.8
		case !ch.isCurrent(a):
			p = 0.1 // an old sandbox: the runtime has mostly forgotten it
		}
		if ch.rng.Float64() < p {
			valid[a] = true
		}
	}
	return valid
}

// randDelay is a random point inside a typical plugin call.
func (ch *chaos) randDelay() time.Duration {
	typ := ch.typical
	if typ < 5*time.Millisecond {
		typ = 30 * time.Millisecond
	}
	return time.Duration(ch.rng.Int63n(int64(typ * 5 / 4)))
}

func (ch *chaos) killVswitchd() {
	if pid := ovs.Pid("ovs-vswitchd"); pid != 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		ch.waitDead("ovs-vswitchd", pid)
		ch.stats.vswitchdKills++
	}
}

func (ch *chaos) killDB() {
	if pid := ovs.Pid("ovsdb-server"); pid != 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		ch.waitDead("ovsdb-server", pid)
		ch.stats.ovsdbRestarts++
	}
}

func (ch *chaos) waitDead(daemon string, pid int) {
	deadline := time.Now().Add(10 * time.Second)
	for ovs.Pid(daemon) == pid {
		if time.Now().After(deadline) {
			ch.t.Errorf("%s (pid %d) survives SIGKILL", daemon, pid) // not Fatal: may run in a goroutine
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (ch *chaos) startVswitchd() { ch.start("ovs-vswitchd", ovs.StartVswitchd) }

func (ch *chaos) startDB() { ch.start("ovsdb-server", ovs.StartDB) }

var alreadyRunning = regexp.MustCompile(`already running as pid (\d+)`)

// start starts a daemon. A SIGKILLed ovs-vswitchd's main thread can be a
// zombie (which ovsenv counts as stopped) while its other threads still exit
// and hold the pid file lock: the new daemon then refuses to start. Wait for
// the lock and retry (up to 10 s); logged, because it is the harness's
// matter, not the plugin's.
func (ch *chaos) start(daemon string, start func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := start(ctx)
	for i := 0; i < 40 && alreadyRunning.MatchString(fmt.Sprint(err)); i++ {
		if i == 0 {
			m := alreadyRunning.FindStringSubmatch(err.Error())
			st, _ := os.ReadFile("/proc/" + m[1] + "/status")
			ch.t.Logf("restart %s: pid file still locked by pid %s (%.40q); retrying", daemon, m[1], st)
		}
		time.Sleep(250 * time.Millisecond)
		err = start(ctx)
	}
	if err != nil {
		ch.t.Fatalf("restart %s: %v", daemon, err)
	}
}

// ensureUp starts whichever daemon is down (ovsdb-server first: ovs-vswitchd
// needs it).
func (ch *chaos) ensureUp() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := ovs.StartDB(ctx); err != nil {
		ch.t.Errorf("start ovsdb-server: %v", err)
	}
	if err := ovs.StartVswitchd(ctx); err != nil {
		ch.t.Errorf("start ovs-vswitchd: %v", err)
	}
}

// killExec runs plugins like libcni's default executor, and SIGKILLs a run
// that is still going at the armed deadline. Unlike a cancelled context it
// tells whether it really killed the plugin or the plugin had already exited.
//
// A run armed with onTemp is also killed as soon as a temporary short link
// name appears in tempDir: the window between creating and renaming it is
// microseconds, which random delays almost never hit.
type killExec struct {
	mu       sync.Mutex
	deadline time.Time // zero: never kill
	onTemp   bool
	tempDir  string
	killed   bool
}

var _ invoke.Exec = (*killExec)(nil)

func (e *killExec) arm(deadline time.Time, onTemp bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.deadline, e.onTemp, e.killed = deadline, onTemp, false
}

// disarm reports whether a plugin run was killed since arm.
func (e *killExec) disarm() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := e.killed
	e.deadline, e.onTemp, e.killed = time.Time{}, false, false
	return k
}

func (e *killExec) ExecPlugin(ctx context.Context, pluginPath string, stdinData []byte, environ []string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(pluginPath)
	cmd.Env, cmd.Stdin, cmd.Stdout, cmd.Stderr = environ, bytes.NewReader(stdinData), &stdout, &stderr
	e.mu.Lock()
	deadline, onTemp := e.deadline, e.onTemp
	e.mu.Unlock()
	var tempSeen <-chan struct{}
	if onTemp {
		w, err := watchTemps(e.tempDir)
		if err != nil {
			return nil, err
		}
		defer w.Close()
		tempSeen = w.seen
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var timer <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timer = t.C
	}
	var err error
	kill := false
	select {
	case err = <-done:
	case <-tempSeen:
		kill = true
	case <-timer:
		kill = true
	}
	if kill {
		if kerr := cmd.Process.Signal(syscall.SIGKILL); kerr == nil {
			<-done
			e.mu.Lock()
			e.killed = true
			e.mu.Unlock()
			return nil, fmt.Errorf("plugin %s killed by the chaos test", filepath.Base(pluginPath))
		}
		err = <-done // it had exited already
	}
	if err != nil {
		// As libcni's RawExec: the plugin's error is JSON on stdout.
		var perr types.Error
		if jerr := json.Unmarshal(stdout.Bytes(), &perr); jerr == nil && (perr.Code != 0 || perr.Msg != "") {
			return nil, &perr
		}
		return nil, fmt.Errorf("plugin %s: %w: stdout %q stderr %q", filepath.Base(pluginPath), err, stdout.String(), stderr.String())
	}
	return stdout.Bytes(), nil
}

func (e *killExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

func (e *killExec) Decode(jsonBytes []byte) (version.PluginInfo, error) {
	var d version.PluginDecoder
	return d.Decode(jsonBytes)
}

// tempWatch signals seen when a temporary short link name is created in a
// directory (inotify).
type tempWatch struct {
	f    *os.File
	seen chan struct{}
}

func watchTemps(dir string) (*tempWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("inotify watch %s: %w", dir, err)
	}
	// Non-blocking, so the runtime poller serves Read and Close ends it.
	w := &tempWatch{f: os.NewFile(uintptr(fd), "inotify"), seen: make(chan struct{})}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := w.f.Read(buf)
			if err != nil {
				return
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
				off += unix.SizeofInotifyEvent + int(ev.Len)
				if _, ok := sockdir.TempID(name); ok {
					close(w.seen)
					return
				}
			}
		}
	}()
	return w, nil
}

func (w *tempWatch) Close() { _ = w.f.Close() }
