// Package libvirtd runs a private libvirtd and virtlogd for tests and the demo.
//
// The system daemons' paths (/etc/libvirt, /var/run/libvirt, /var/lib/libvirt,
// /var/log/libvirt, /var/cache/libvirt) are fixed for a privileged libvirtd, so
// the daemons run in their own mount namespace in which private directories are
// bind-mounted over exactly those paths. Everything else (pod directories, OVS
// sockets, guest images) is shared with the host. Clients connect through the
// private socket with a qemu:///system?socket=... URI.
package libvirtd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// QEMUUser and QEMUGroup are the ids QEMU runs as: the same as in a
// virt-launcher pod (KubeVirt's qemu user 107), so the CNI's default socket
// directory owner (107:107) lets QEMU create its vhost-user socket.
const (
	QEMUUser  = 107
	QEMUGroup = 107
)

// mounted are the system paths replaced by private directories.
var mounted = []string{"/etc/libvirt", "/var/run/libvirt", "/var/lib/libvirt", "/var/log/libvirt", "/var/cache/libvirt"}

// Daemon is a running private libvirtd.
type Daemon struct {
	Dir    string // private root; the daemon's paths are below it
	URI    string // connection URI for virsh -c
	cmd    *exec.Cmd
	exited chan struct{}
	log    *slog.Logger
}

// Start launches virtlogd and libvirtd below dir (created if missing) and
// waits until libvirtd answers.
func Start(ctx context.Context, dir string, log *slog.Logger) (*Daemon, error) {
	for _, bin := range []string{"libvirtd", "virtlogd", "virsh", "unshare"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("%s not found: install libvirt-daemon, libvirt-daemon-driver-qemu, libvirt-clients (hack/install-deps.sh): %w", bin, err)
		}
	}
	if err := ensureQEMUAccount(ctx); err != nil {
		return nil, err
	}
	d := &Daemon{Dir: dir, log: log}
	var script strings.Builder
	script.WriteString("set -e\n")
	for _, p := range mounted {
		priv := d.private(p)
		if err := os.MkdirAll(priv, 0o755); err != nil {
			return nil, fmt.Errorf("create private libvirt directory: %w", err)
		}
		// The mount point itself must exist (a standard libvirt directory).
		fmt.Fprintf(&script, "mkdir -p %s\nmount --bind %s %s\n", p, shellQuote(priv), p)
	}
	for _, sub := range []string{"/var/log/libvirt/qemu", "/var/lib/libvirt/qemu", "/var/cache/libvirt/qemu"} {
		if err := os.MkdirAll(d.private(sub), 0o755); err != nil {
			return nil, fmt.Errorf("create private libvirt directory: %w", err)
		}
	}
	conf := map[string]string{
		"libvirtd.conf": "unix_sock_group = \"root\"\nunix_sock_rw_perms = \"0700\"\nauth_unix_rw = \"none\"\nlog_outputs = \"3:file:/var/log/libvirt/libvirtd.log\"\n",
		"virtlogd.conf": "log_outputs = \"3:file:/var/log/libvirt/virtlogd.log\"\n",
		// TCG, no KVM; no security driver and no relabelling since the test
		// prepares ownership itself; no private /dev namespace (may be a chroot).
		"qemu.conf": fmt.Sprintf("user = \"+%d\"\ngroup = \"+%d\"\ndynamic_ownership = 0\nsecurity_driver = \"none\"\nnamespaces = [ ]\nremember_owner = 0\n", QEMUUser, QEMUGroup),
	}
	for name, content := range conf {
		if err := os.WriteFile(filepath.Join(d.private("/etc/libvirt"), name), []byte(content), 0o644); err != nil {
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
	}
	// virtlogd first: libvirtd hands it QEMU's stdio.
	script.WriteString("virtlogd --daemon --pid-file /var/run/libvirt/virtlogd.pid\n")
	script.WriteString("exec libvirtd --pid-file /var/run/libvirt/libvirtd.pid\n")

	d.cmd = exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script.String())
	logFile, err := os.Create(filepath.Join(dir, "libvirtd.stdout"))
	if err != nil {
		return nil, fmt.Errorf("create libvirtd output file: %w", err)
	}
	defer logFile.Close()
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start libvirtd: %w", err)
	}
	d.URI = "qemu:///system?socket=" + filepath.Join(d.private("/var/run/libvirt"), "libvirt-sock")
	exited := make(chan struct{})
	go func() { d.cmd.Wait(); close(exited) }()
	d.exited = exited

	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := d.Virsh(ctx, "version"); err == nil {
			break
		}
		dead := false
		select {
		case <-exited:
			dead = true
		default:
		}
		if dead || time.Now().After(deadline) || ctx.Err() != nil {
			out, _ := os.ReadFile(filepath.Join(dir, "libvirtd.stdout"))
			d.Stop()
			return nil, fmt.Errorf("libvirtd did not come up (exited: %v): %s", dead, bytes.TrimSpace(out))
		}
		time.Sleep(250 * time.Millisecond)
	}
	log.Info("libvirtd started", "dir", dir, "uri", d.URI)
	return d, nil
}

// private maps a system path to its private directory.
func (d *Daemon) private(p string) string { return filepath.Join(d.Dir, p) }

// LogDir is where libvirt writes per-domain QEMU logs.
func (d *Daemon) LogDir() string { return d.private("/var/log/libvirt/qemu") }

// QEMULog returns the tail of a domain's QEMU log, for error messages.
func (d *Daemon) QEMULog(domain string) string {
	data, err := os.ReadFile(filepath.Join(d.LogDir(), domain+".log"))
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// Virsh runs virsh against this daemon.
func (d *Daemon) Virsh(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "virsh", append([]string{"-q", "-c", d.URI}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("virsh %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Domains lists every domain the daemon knows, running or not.
func (d *Daemon) Domains(ctx context.Context) ([]string, error) {
	out, err := d.Virsh(ctx, "list", "--all", "--name")
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

// Stop destroys every domain, then stops libvirtd and virtlogd. It does not
// remove Dir: the caller owns it.
func (d *Daemon) Stop() error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if d.URI != "" {
		if names, err := d.Domains(ctx); err == nil {
			for _, n := range names {
				d.Virsh(ctx, "destroy", n)
				d.Virsh(ctx, "undefine", n, "--nvram")
			}
		}
	}
	// QEMU outlives libvirtd: kill any whose pid file is still there.
	pids, _ := filepath.Glob(filepath.Join(d.private("/var/run/libvirt"), "qemu", "*.pid"))
	for _, p := range pids {
		killPidFile(p)
	}
	if d.exited != nil {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(15 * time.Second):
			d.cmd.Process.Kill()
			<-d.exited
			errs = append(errs, errors.New("libvirtd did not stop on SIGTERM; killed"))
		}
	}
	killPidFile(filepath.Join(d.private("/var/run/libvirt"), "virtlogd.pid"))
	return errors.Join(errs...)
}

// ensureQEMUAccount creates the libvirt-qemu system user and group when
// missing: Debian's libvirtd resolves its built-in default QEMU user before it
// reads qemu.conf and refuses to start without it. libvirt-daemon-system
// creates them, but it drags in systemd, so we do not install it.
func ensureQEMUAccount(ctx context.Context) error {
	if exec.CommandContext(ctx, "getent", "group", "libvirt-qemu").Run() != nil {
		if out, err := exec.CommandContext(ctx, "groupadd", "--system", "libvirt-qemu").CombinedOutput(); err != nil {
			return fmt.Errorf("groupadd libvirt-qemu: %w: %s", err, bytes.TrimSpace(out))
		}
	}
	if exec.CommandContext(ctx, "getent", "passwd", "libvirt-qemu").Run() != nil {
		out, err := exec.CommandContext(ctx, "useradd", "--system", "--gid", "libvirt-qemu",
			"--home-dir", "/var/lib/libvirt", "--no-create-home", "--shell", "/usr/sbin/nologin", "libvirt-qemu").CombinedOutput()
		if err != nil {
			return fmt.Errorf("useradd libvirt-qemu: %w: %s", err, bytes.TrimSpace(out))
		}
	}
	return nil
}

func killPidFile(path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return
	}
	if syscall.Kill(pid, syscall.SIGTERM) != nil {
		return
	}
	for i := 0; i < 50; i++ {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
