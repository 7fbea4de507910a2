// Package guest prepares the tiny test guest the dataplane e2e and the demo boot:
// Debian's kernel and a busybox initramfs whose init configures eth0 (the
// vhost-user NIC) from the kernel command line and pings the peer forever,
// reporting each result on the serial console.
//
// The console lines (Console reads them; the markers are constants):
//
//	VHU-READY name=N ip=IP/LEN peer=PEER mac=MAC      eth0 is up
//	VHU-ERROR ...                                     init failed a step
//
// With Cmdline, one ping a second (ping -c 1 -W 2, then sleep 1), K counting
// the attempts from 1:
//
//	VHU-PING-OK seq=K 64 bytes from PEER: seq=0 ttl=64 time=0.132 ms
//	VHU-PING-FAIL seq=K
//
// With CmdlineInterval, one continuous busybox ping (ping -i SECS PEER); N is
// busybox's seq, which counts the requests sent from 0 (16 bits, wrapping),
// and R numbers the ping processes from 1 (ping exits when it cannot send,
// init starts it again a second later):
//
//	VHU-PING-START run=R interval=SECS peer=PEER
//	VHU-PING-OK run=R 64 bytes from PEER: seq=N ttl=64 time=0.132 ms
//	VHU-PING-LOST run=R count=C after=N1 before=N2    printed just before N2's reply
//	VHU-PING-FAIL run=R ping: sendto: Network is unreachable
//	VHU-PING-FAIL run=R ping exited
//
// A lost request prints nothing when it is due: the loss shows as missing seqs,
// which PingSeqs and PingGap read, so the gap is lost × interval without
// relying on the guest's clock. Both modes keep time=... ms for RTT.
//
// Everything is cached under a directory (default DefaultCacheDir) so that a
// second run neither downloads nor builds anything.
package guest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/functests/filelock"
)

// DefaultCacheDir holds the kernel and initramfs between runs.
const DefaultCacheDir = "/var/cache/vhostuser-demo"

// CacheDirEnv overrides DefaultCacheDir.
const CacheDirEnv = "VHOSTUSER_CACHE_DIR"

// kernelMeta is the Debian meta package whose dependency names the current kernel.
const kernelMeta = "linux-image-amd64"

// busyboxPath is busybox-static's binary: it must be static, the initramfs has no libc.
const busyboxPath = "/bin/busybox"

// Modules are the kernel modules virtio-net needs, in load order.
var Modules = []string{
	"virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev",
	"virtio_pci", "failover", "net_failover", "virtio_net",
}

//go:embed init.sh
var initScript string

// Image is a bootable guest.
type Image struct {
	Kernel string // vmlinuz
	Initrd string // gzip-compressed newc cpio
}

// CacheDir returns the cache directory: $VHOSTUSER_CACHE_DIR or DefaultCacheDir.
func CacheDir() string {
	if d := os.Getenv(CacheDirEnv); d != "" {
		return d
	}
	return DefaultCacheDir
}

// Cmdline is the kernel command line of a guest named name with address ip
// (CIDR) that pings peer.
func Cmdline(name, ip, peer string) string {
	return fmt.Sprintf("console=ttyS0 quiet panic=-1 vhu.name=%s vhu.ip=%s vhu.peer=%s", name, ip, peer)
}

// CmdlineInterval is Cmdline for a guest that pings peer continuously, one
// request every interval (busybox ping -i, which takes fractions of a second:
// 100*time.Millisecond is 10 Hz), and prints every reply with its sequence
// number (see the package documentation). Every reply is a line of about 70
// bytes on the serial console, so keep interval at 10 ms or more.
// An interval of 0 or less is Cmdline's once-a-second ping.
func CmdlineInterval(name, ip, peer string, interval time.Duration) string {
	if interval <= 0 {
		return Cmdline(name, ip, peer)
	}
	return Cmdline(name, ip, peer) + " vhu.interval=" + strconv.FormatFloat(interval.Seconds(), 'f', -1, 64)
}

// Prepare returns the guest image from cacheDir, building it first when
// missing. cached reports whether nothing had to be downloaded or built.
func Prepare(ctx context.Context, cacheDir string, log *slog.Logger) (img Image, cached bool, err error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return Image{}, false, fmt.Errorf("create guest cache directory: %w", err)
	}
	// Serialise concurrent runs (a test and the demo) on the same cache.
	unlock, err := filelock.Lock(filepath.Join(cacheDir, ".lock"))
	if err != nil {
		return Image{}, false, err
	}
	defer unlock()

	kernelDir := filepath.Join(cacheDir, "kernel")
	img = Image{
		Kernel: filepath.Join(kernelDir, "vmlinuz"),
		Initrd: filepath.Join(cacheDir, "initramfs-"+initramfsKey()+".cpio.gz"),
	}
	if exists(img.Kernel) && exists(img.Initrd) {
		return img, true, nil
	}
	if !exists(img.Kernel) {
		if err := fetchKernel(ctx, kernelDir, log); err != nil {
			return Image{}, false, err
		}
	}
	if err := buildInitramfs(kernelDir, img.Initrd); err != nil {
		return Image{}, false, err
	}
	log.Info("guest initramfs built", "path", img.Initrd)
	return img, false, nil
}

// initramfsKey changes whenever the init script or the module list does, so a
// stale initramfs is never reused.
func initramfsKey() string {
	h := sha256.New()
	io.WriteString(h, initScript)
	io.WriteString(h, strings.Join(Modules, ","))
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// fetchKernel downloads the current Debian kernel package (without installing
// it) and keeps vmlinuz and the virtio modules in dir.
func fetchKernel(ctx context.Context, dir string, log *slog.Logger) error {
	pkg, err := kernelPackage(ctx)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp(filepath.Dir(dir), "kernel-download-")
	if err != nil {
		return fmt.Errorf("create kernel download directory: %w", err)
	}
	defer os.RemoveAll(work)

	log.Info("downloading guest kernel package", "package", pkg)
	if out, err := run(ctx, work, "apt-get", "download", "-q", pkg); err != nil {
		// A fresh machine may have no package lists yet.
		log.Info("apt-get download failed, updating package lists", "output", out)
		if out, err := run(ctx, work, "apt-get", "-o", "DPkg::Lock::Timeout=600", "update", "-qq"); err != nil {
			return fmt.Errorf("apt-get update: %w: %s", err, out)
		}
		if out, err := run(ctx, work, "apt-get", "download", "-q", pkg); err != nil {
			return fmt.Errorf("apt-get download %s: %w: %s", pkg, err, out)
		}
	}
	debs, _ := filepath.Glob(filepath.Join(work, pkg+"_*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("apt-get download %s: expected one .deb in %s, found %d", pkg, work, len(debs))
	}
	root := filepath.Join(work, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		return fmt.Errorf("create extraction directory: %w", err)
	}
	if out, err := run(ctx, work, "dpkg-deb", "-x", debs[0], root); err != nil {
		return fmt.Errorf("dpkg-deb -x %s: %w: %s", debs[0], err, out)
	}

	stage := filepath.Join(work, "stage")
	if err := os.MkdirAll(filepath.Join(stage, "modules"), 0o755); err != nil {
		return fmt.Errorf("create kernel stage: %w", err)
	}
	vmlinuz, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(vmlinuz) != 1 {
		return fmt.Errorf("package %s: expected one boot/vmlinuz-*, found %d", pkg, len(vmlinuz))
	}
	if err := copyFile(vmlinuz[0], filepath.Join(stage, "vmlinuz"), 0o644); err != nil {
		return err
	}
	found := map[string]string{}
	err = filepath.WalkDir(filepath.Join(root, "lib", "modules"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := strings.TrimSuffix(d.Name(), ".ko")
		for _, m := range Modules {
			if name == m && strings.HasSuffix(d.Name(), ".ko") {
				found[m] = p
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("search kernel modules: %w", err)
	}
	for _, m := range Modules {
		p, ok := found[m]
		if !ok {
			return fmt.Errorf("package %s has no module %s.ko (compressed modules are not supported)", pkg, m)
		}
		if err := copyFile(p, filepath.Join(stage, "modules", m+".ko"), 0o644); err != nil {
			return err
		}
	}
	os.RemoveAll(dir)
	if err := os.Rename(stage, dir); err != nil {
		return fmt.Errorf("install kernel into cache: %w", err)
	}
	log.Info("guest kernel cached", "package", pkg, "dir", dir)
	return nil
}

var kernelDep = regexp.MustCompile(`(?m)^\s*Depends:\s*(linux-image-[0-9][^\s]*)`)

// kernelPackage resolves the meta package to the versioned kernel package.
func kernelPackage(ctx context.Context) (string, error) {
	out, err := run(ctx, "", "apt-cache", "depends", kernelMeta)
	if err != nil || !kernelDep.MatchString(out) {
		if uout, uerr := run(ctx, "", "apt-get", "-o", "DPkg::Lock::Timeout=600", "update", "-qq"); uerr != nil {
			return "", fmt.Errorf("apt-get update: %w: %s", uerr, uout)
		}
		out, err = run(ctx, "", "apt-cache", "depends", kernelMeta)
		if err != nil {
			return "", fmt.Errorf("apt-cache depends %s: %w: %s", kernelMeta, err, out)
		}
	}
	m := kernelDep.FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("apt-cache depends %s names no linux-image package: %s", kernelMeta, out)
	}
	return m[1], nil
}

// buildInitramfs writes a gzip newc archive with busybox, the modules and init.
func buildInitramfs(kernelDir, dst string) error {
	busybox, err := os.ReadFile(busyboxPath)
	if err != nil {
		return fmt.Errorf("read %s (install busybox-static): %w", busyboxPath, err)
	}
	if !bytes.HasPrefix(busybox, []byte("\x7fELF")) {
		return fmt.Errorf("%s is not an ELF binary", busyboxPath)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	cw := newCpioWriter(zw)
	for _, d := range []string{"bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules"} {
		cw.dir(d, 0o755)
	}
	cw.file("bin/busybox", 0o755, busybox)
	init := strings.Replace(initScript, "__MODULES__", strings.Join(Modules, " "), 1)
	cw.file("init", 0o755, []byte(init))
	for _, m := range Modules {
		data, err := os.ReadFile(filepath.Join(kernelDir, "modules", m+".ko"))
		if err != nil {
			return fmt.Errorf("read cached module %s: %w", m, err)
		}
		cw.file("lib/modules/"+m+".ko", 0o644, data)
	}
	if err := cw.close(); err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compress initramfs: %w", err)
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("install initramfs: %w", err)
	}
	return nil
}

func run(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("read %s: %w", src, err)
	}
	if err := os.WriteFile(dst, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return nil
}
