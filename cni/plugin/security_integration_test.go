//go:build integration

package plugin_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// The pod is hostile: a process in it runs as QEMU's uid and gid (107), as in
// every virt-launcher pod of a non-root VMI. These tests play that process
// against the real ovs-vswitchd (root), which connects to the port's
// vhost-server-path about once a second, following every symlink each time.
// A decoy listener OUTSIDE the pod volume stands for any host socket (another
// VM's vhost-user socket, a daemon's control socket): OVS must never dial it.

const qemuUID, qemuGID = 107, 107

// ovsRetryWait covers several OVS reconnect periods (about 1 s each).
const ovsRetryWait = 4 * time.Second

const envListenAsQEMU = "VHU_TEST_LISTEN_AS_QEMU"

// asQEMU runs a shell script as uid/gid 107 and returns its output; the
// attacker's commands may fail, which is the point: the caller decides.
func asQEMU(t *testing.T, script string) string {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: qemuUID, Gid: qemuGID, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	t.Logf("as uid %d: %s\n%s(exit: %v)", qemuUID, script, out, err)
	return string(out)
}

// reachableByQEMU lets uid 107 walk from / to the fake kubelet root, as the
// pod reaches its volume through its own mount.
func (f *fixture) reachableByQEMU() {
	f.t.Helper()
	for d := f.root; d != "/" && d != "/tmp"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			f.t.Fatal(err)
		}
	}
}

// decoy listens on a socket outside any pod volume and reports a connection.
type decoy struct {
	path string
	l    *net.UnixListener
}

func newDecoy(t *testing.T, rel string) *decoy {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "vhu-decoy-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &decoy{path: path, l: l}
}

// connected waits up to d for a connection.
func (d *decoy) connected(wait time.Duration) bool {
	_ = d.l.SetDeadline(time.Now().Add(wait))
	c, err := d.l.Accept()
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func (d *decoy) assertNeverDialled(t *testing.T) {
	t.Helper()
	if d.connected(ovsRetryWait) {
		t.Fatalf("ovs-vswitchd (root) connected to the decoy %s outside the pod volume", d.path)
	}
}

// qemuListener binds the port's socket in the pod's interface directory as
// uid 107 (QEMU's part) in a child process and reports whether OVS connected.
func qemuListener(t *testing.T, path string) <-chan error {
	t.Helper()
	cmd := exec.Command(filepath.Join(pluginDir, "qemu-helper.test"))
	cmd.Env = append(os.Environ(), envListenAsQEMU+"="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: qemuUID, Gid: qemuGID, Groups: []uint32{}}}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, out.String())
		}
		done <- err
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return done
}

// listenAsQEMU is the child's side of qemuListener.
func listenAsQEMU(path string) int {
	// The host view of the path is longer than a socket address may be
	// (QEMU binds the short compute view); bind relative to the directory.
	if err := os.Chdir(filepath.Dir(path)); err != nil {
		fmt.Println("chdir:", err)
		return 2
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Base(path), Net: "unix"})
	if err != nil {
		fmt.Println("listen:", err)
		return 2
	}
	defer l.Close()
	_ = l.SetDeadline(time.Now().Add(20 * time.Second))
	c, err := l.Accept()
	if err != nil {
		fmt.Println("accept:", err)
		return 1
	}
	c.Close()
	return 0
}

// TestHostilePodCannotRedirectOVS: for each trick, the pod's process (uid
// 107) prepares the redirect after ADD; OVS keeps retrying and must never
// reach the decoy. Then the real QEMU socket still works.
func TestHostilePodCannotRedirectOVS(t *testing.T) {
	tests := []struct {
		name string
		// rel is the decoy's path inside its directory; attack gets the
		// paths and the decoy and returns the shell script uid 107 runs.
		rel    string
		attack func(p socketpath.Paths, d *decoy) string
	}{
		{"symlink at ifname/vhost.sock", "host.sock", func(p socketpath.Paths, d *decoy) string {
			return fmt.Sprintf("ln -s %s %s", d.path, p.HostSocket)
		}},
		{"rename vhostuser and plant a tree", "host.sock", func(p socketpath.Paths, d *decoy) string {
			socks := filepath.Dir(p.HostDir)
			return fmt.Sprintf("mv %s %s.old; mkdir -p %s && ln -s %s %s", socks, socks, p.HostDir, d.path, p.HostSocket)
		}},
		{"symlink in place of vhostuser", "net1/vhost.sock", func(p socketpath.Paths, d *decoy) string {
			socks := filepath.Dir(p.HostDir)
			return fmt.Sprintf("rm -rf %s; mv %s %s.old; ln -s %s %s", socks, socks, socks, filepath.Dir(filepath.Dir(d.path)), socks)
		}},
		{"symlink in place of the interface directory", "net1/vhost.sock", func(p socketpath.Paths, d *decoy) string {
			return fmt.Sprintf("rm -rf %s; mv %s %s.old; ln -s %s %s", p.HostDir, p.HostDir, p.HostDir, filepath.Dir(d.path), p.HostDir)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			a := att{"evil", "net1", uid1}
			f.newPod(a.uid)
			f.reachableByQEMU()
			if _, err := f.add("1.1.0", a); err != nil {
				t.Fatalf("ADD: %v", err)
			}
			p := f.paths(a)
			d := newDecoy(t, tt.rel)
			asQEMU(t, tt.attack(p, d))
			d.assertNeverDialled(t)
			// Our tree is intact: the pod could not move root's directories.
			assertDir(t, filepath.Dir(p.HostDir), 0, 0, 0o755)
			assertDir(t, p.HostDir, 0, 107, 0o777|os.ModeSticky)
			// QEMU's real socket is still reached: uid 107 may remove its own
			// symlink in the sticky directory and bind there.
			asQEMU(t, "rm -f "+p.HostSocket)
			if err := <-qemuListener(t, p.HostSocket); err != nil {
				t.Fatalf("OVS did not connect to QEMU's socket in the pod after the attack: %v", err)
			}
			// DEL succeeds whatever the attacker left in its directory; what
			// is ours outside the pod (port, short link) is gone.
			if err := f.del("1.1.0", a); err != nil {
				t.Fatalf("DEL: %v", err)
			}
			if _, err := os.Lstat(p.ShortLink); !os.IsNotExist(err) || f.ourPorts() != 0 {
				t.Fatalf("DEL left the short link (%v) or a port (%d)", err, f.ourPorts())
			}
		})
	}
}

// TestHostilePodPlantsBeforeADD: a pod whose sandbox is re-created had its
// processes running before this ADD, and may have built vhostuser/ itself
// with a symlink where the socket goes. ADD takes the tree over; OVS must not
// follow the planted symlink.
func TestHostilePodPlantsBeforeADD(t *testing.T) {
	f := newFixture(t)
	a := att{"early", "net1", uid1}
	f.newPod(a.uid)
	f.reachableByQEMU()
	p := f.paths(a)
	d := newDecoy(t, "host.sock")
	asQEMU(t, fmt.Sprintf("mkdir -p %s && ln -s %s %s", p.HostDir, d.path, p.HostSocket))
	if _, err := os.Lstat(p.HostSocket); err != nil {
		t.Fatalf("the attacker could not plant its symlink (test setup): %v", err)
	}
	if _, err := f.add("1.1.0", a); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	d.assertNeverDialled(t)
	if err := f.del("1.1.0", a); err != nil {
		t.Fatalf("DEL: %v", err)
	}
}

// TestSymlinkAttackNeedsTheSysctl shows the test can fail: with
// fs.protected_symlinks=0 the same symlink does bring OVS to the decoy. It is
// why ADD refuses to run without the sysctl.
func TestSymlinkAttackNeedsTheSysctl(t *testing.T) {
	f := newFixture(t)
	a := att{"nosysctl", "net1", uid1}
	f.newPod(a.uid)
	f.reachableByQEMU()
	if _, err := f.add("1.1.0", a); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	p := f.paths(a)
	d := newDecoy(t, "host.sock")
	asQEMU(t, fmt.Sprintf("ln -s %s %s", d.path, p.HostSocket))
	old, err := setProtectedSymlinks("0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = setProtectedSymlinks(old) })
	if !d.connected(10 * time.Second) {
		t.Fatal("with fs.protected_symlinks=0, OVS did not follow the pod's symlink: the attack tests prove nothing on this kernel")
	}
	if _, err := setProtectedSymlinks(old); err != nil {
		t.Fatal(err)
	}
	if err := f.del("1.1.0", a); err != nil {
		t.Fatalf("DEL: %v", err)
	}
}

// TestRefusedWithoutProtectedSymlinks: ADD fails (and makes nothing) and
// STATUS reports not-ready (50) while fs.protected_symlinks is 0.
func TestRefusedWithoutProtectedSymlinks(t *testing.T) {
	f := newFixture(t)
	a := att{"unprotected", "net1", uid1}
	f.newPod(a.uid)
	old, err := setProtectedSymlinks("0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = setProtectedSymlinks(old) })
	_, err = f.add("1.1.0", a)
	if err == nil || !strings.Contains(err.Error(), "fs.protected_symlinks") || !strings.Contains(err.Error(), "sysctl -w fs.protected_symlinks=1") {
		t.Fatalf("ADD with fs.protected_symlinks=0: %v, want a refusal that says how to fix it", err)
	}
	if f.ourPorts() != 0 || len(f.shortEntries()) != 0 {
		t.Fatalf("a refused ADD left a port or link: %v", f.shortEntries())
	}
	if _, err := os.Lstat(filepath.Join(f.paths(a).VolumeDir, socketpath.SocketsDir)); !os.IsNotExist(err) {
		t.Fatalf("a refused ADD made the socket directory: %v", err)
	}
	var e *types.Error
	if err := f.cni.GetStatusNetworkList(context.Background(), f.confList("1.1.0")); !errors.As(err, &e) || e.Code != types.ErrPluginNotAvailable {
		t.Fatalf("STATUS with fs.protected_symlinks=0: %v, want CNI error 50", err)
	}
	if _, err := setProtectedSymlinks(old); err != nil {
		t.Fatal(err)
	}
	if err := f.del("1.1.0", a); err != nil {
		t.Fatalf("DEL: %v", err)
	}
}

// TestDelNeverSticks: whatever the pod leaves in its directories, DEL removes
// what is ours (port, link, its socket) and succeeds.
func TestDelNeverSticks(t *testing.T) {
	f := newFixture(t)
	a := att{"litter", "net1", uid1}
	f.newPod(a.uid)
	f.reachableByQEMU()
	if _, err := f.add("1.1.0", a); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	p := f.paths(a)
	asQEMU(t, fmt.Sprintf("touch %s/notes.txt && mkdir %s/sub && ln -s /etc %s/link", p.HostDir, p.HostDir, p.HostDir))
	if err := f.del("1.1.0", a); err != nil {
		t.Fatalf("DEL with the pod's files in its socket directory: %v", err)
	}
	if _, err := os.Lstat(p.ShortLink); !os.IsNotExist(err) {
		t.Fatalf("short link kept: %v", err)
	}
	if f.ourPorts() != 0 {
		t.Fatal("port kept")
	}
	if _, err := os.Stat(filepath.Join(p.HostDir, "notes.txt")); err != nil {
		t.Fatalf("DEL removed the pod's own file: %v", err)
	}
	if err := f.del("1.1.0", a); err != nil {
		t.Fatalf("second DEL: %v", err)
	}
}
