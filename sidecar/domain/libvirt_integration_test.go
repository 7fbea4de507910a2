//go:build integration

package domain

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// libvirtSession runs a private, unprivileged libvirtd (session mode, its own
// XDG directories) and returns a function that runs virsh against it and a
// directory that user can read.
func libvirtSession(t *testing.T) (func(args ...string) (string, error), string) {
	t.Helper()
	for _, tool := range []string{"libvirtd", "virsh", "qemu-system-x86_64"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install libvirt-daemon, libvirt-daemon-driver-qemu, libvirt-clients and qemu-system-x86 with `make deps`", tool)
		}
	}
	dir, err := os.MkdirTemp("", "vus-libvirt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"XDG_RUNTIME_DIR=" + filepath.Join(dir, "run"),
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"),
		"XDG_CACHE_HOME=" + filepath.Join(dir, "cache"),
		"LIBVIRT_AUTOSTART=0",
	}
	for _, d := range []string{"run", "config", "cache"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// As root, drop to nobody: session mode needs an unprivileged user, and
	// it keeps this daemon apart from any system libvirtd on the machine.
	wrap := func(name string, args ...string) *exec.Cmd {
		if os.Geteuid() != 0 {
			return exec.Command(name, args...)
		}
		return exec.Command("setpriv", append([]string{"--reuid=nobody", "--regid=nogroup", "--clear-groups", name}, args...)...)
	}
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chown", "-R", "nobody:nogroup", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v %s", err, out)
		}
	}
	daemon := wrap("libvirtd")
	daemon.Env = env
	logf, err := os.Create(filepath.Join(dir, "libvirtd.log"))
	if err != nil {
		t.Fatal(err)
	}
	daemon.Stdout, daemon.Stderr = logf, logf
	if err := daemon.Start(); err != nil {
		t.Fatalf("start libvirtd: %v", err)
	}
	exited := make(chan struct{})
	go func() { daemon.Wait(); close(exited) }()
	t.Cleanup(func() {
		daemon.Process.Kill()
		<-exited
		logf.Close()
	})
	virsh := func(args ...string) (string, error) {
		c := wrap("virsh", append([]string{"-c", "qemu:///session"}, args...)...)
		c.Env = env
		out, err := c.CombinedOutput()
		return string(out), err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := virsh("version")
		if err == nil {
			break
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("libvirtd exited: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("libvirtd session not ready within 60s: %s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return virsh, filepath.Join(dir, "cache")
}

// forTCG keeps what the rewrite is about (our interfaces, memory backing,
// NUMA cells, topology) and adapts or drops what this host cannot provide
// (KVM, the pod's tap device, host NUMA nodes and CPUs, devices and firmware).
func forTCG(t *testing.T, x []byte) []byte {
	t.Helper()
	d := &libvirtxml.Domain{}
	if err := d.Unmarshal(string(x)); err != nil {
		t.Fatal(err)
	}
	d.Type = "qemu"
	d.OS.Type.Machine = "q35"
	d.OS.Loader, d.OS.NVRam = nil, nil
	d.NUMATune, d.CPUTune, d.MemoryTune = nil, nil, nil
	d.Features = &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}}
	d.Devices.Emulator = "/usr/bin/qemu-system-x86_64"
	var ifaces []libvirtxml.DomainInterface
	for _, i := range d.Devices.Interfaces {
		if i.Source != nil && i.Source.VHostUser != nil {
			ifaces = append(ifaces, i)
		}
	}
	d.Devices.Interfaces = ifaces
	d.Devices.Hostdevs, d.Devices.TPMs, d.Devices.Filesystems, d.Devices.Watchdogs, d.Devices.VSock = nil, nil, nil, nil, nil
	d.Devices.Disks = nil
	if d.CPU != nil {
		d.CPU.Mode, d.CPU.Model, d.CPU.Features = "custom", &libvirtxml.DomainCPUModel{Value: "qemu64"}, nil
	}
	out, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return []byte(out)
}

// TestLibvirtDefine defines every golden domain in the real libvirt QEMU
// driver, which runs its full parser and the QEMU driver's validation (beyond
// the RNG schema), and checks that what libvirt stores still has QEMU serving
// the contract socket, the queue settings and shared guest memory.
func TestLibvirtDefine(t *testing.T) {
	virsh, dir := libvirtSession(t)
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Rewrite(readTestdata(t, tc.domain), tc.vmi.json(t), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(dir, tc.name+".xml")
			if err := os.WriteFile(f, forTCG(t, out), 0o644); err != nil {
				t.Fatal(err)
			}
			if msg, err := virsh("define", f); err != nil {
				t.Fatalf("libvirt rejects the domain: %v\n%s", err, msg)
			}
			defer virsh("undefine", "--nvram", "default_vmi-vhostuser")
			stored, err := virsh("dumpxml", "--inactive", "default_vmi-vhostuser")
			if err != nil {
				t.Fatalf("dumpxml: %v\n%s", err, stored)
			}
			d := &libvirtxml.Domain{}
			if err := d.Unmarshal(stored); err != nil {
				t.Fatalf("parse libvirt's XML: %v", err)
			}
			mb := d.MemoryBacking
			if mb == nil || mb.MemoryAccess == nil || mb.MemoryAccess.Mode != "shared" || mb.MemorySource == nil || mb.MemorySource.Type != "memfd" {
				t.Errorf("libvirt stored no shared memfd memory: %+v", mb)
			}
			if strings.Contains(string(out), "<hugepages>") && (mb == nil || mb.MemoryHugePages == nil) {
				t.Errorf("libvirt dropped hugepages")
			}
			if d.CPU != nil && d.CPU.Numa != nil {
				for i, c := range d.CPU.Numa.Cell {
					if c.MemAccess != "shared" {
						t.Errorf("NUMA cell %d memAccess %q", i, c.MemAccess)
					}
				}
			}
			byAlias := map[string]libvirtxml.DomainInterface{}
			for _, i := range d.Devices.Interfaces {
				if i.Alias != nil {
					byAlias[i.Alias.Name] = i
				}
			}
			for _, vi := range tc.vmi.vmi.Spec.Domain.Devices.Interfaces {
				if vi.Binding == nil {
					continue
				}
				alias := "ua-" + vi.Name
				i, ok := byAlias[alias]
				if !ok {
					t.Errorf("libvirt lost interface %s:\n%s", alias, stored)
					continue
				}
				path, _ := socketpath.ComputeSocketForNetwork(vi.Name)
				if i.Source == nil || i.Source.VHostUser == nil || i.Source.VHostUser.Chardev == nil || i.Source.VHostUser.Chardev.UNIX == nil ||
					i.Source.VHostUser.Chardev.UNIX.Path != path || i.Source.VHostUser.Chardev.UNIX.Mode != "server" {
					t.Errorf("%s: libvirt stored source %+v, want unix %s server", alias, i.Source, path)
				}
				if i.Driver == nil || i.Driver.RXQueueSize != QueueSize || i.Driver.TXQueueSize != QueueSize {
					t.Errorf("%s: libvirt stored driver %+v", alias, i.Driver)
				}
			}
		})
	}
}
