package guest

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCpioWriter checks our newc writer against GNU cpio's reader.
func TestCpioWriter(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Fatalf("cpio not found (hack/install-deps.sh installs it): %v", err)
	}
	var buf bytes.Buffer
	w := newCpioWriter(&buf)
	w.dir("bin", 0o755)
	w.file("bin/hello", 0o755, []byte("#!/bin/sh\necho hi\n"))
	w.file("odd", 0o644, []byte("x")) // 1 byte: exercises padding
	w.file("empty", 0o600, nil)
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command("cpio", "-i", "--quiet", "--no-absolute-filenames")
	cmd.Dir, cmd.Stdin = dir, &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v: %s", err, out)
	}
	for _, tc := range []struct {
		path    string
		content string
		mode    os.FileMode
	}{
		{"bin/hello", "#!/bin/sh\necho hi\n", 0o755},
		{"odd", "x", 0o644},
		{"empty", "", 0o600},
	} {
		p := filepath.Join(dir, tc.path)
		got, err := os.ReadFile(p)
		if err != nil || string(got) != tc.content {
			t.Errorf("%s: %q %v, want %q", tc.path, got, err, tc.content)
			continue
		}
		if st, _ := os.Stat(p); st.Mode().Perm() != tc.mode {
			t.Errorf("%s: mode %v, want %v", tc.path, st.Mode().Perm(), tc.mode)
		}
	}
}

func TestInitScriptLoadsModulesInOrder(t *testing.T) {
	want := "virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net"
	if got := strings.Join(Modules, " "); got != want {
		t.Errorf("module order %q, want %q (dependencies first)", got, want)
	}
	if !strings.Contains(initScript, "__MODULES__") {
		t.Error("init script lost its module placeholder")
	}
}

func TestCmdline(t *testing.T) {
	got := Cmdline("vm-a", "10.0.0.1/24", "10.0.0.2")
	for _, want := range []string{"console=ttyS0", "vhu.name=vm-a", "vhu.ip=10.0.0.1/24", "vhu.peer=10.0.0.2"} {
		if !strings.Contains(got, want) {
			t.Errorf("cmdline %q lacks %q", got, want)
		}
	}
}

func TestRTT(t *testing.T) {
	tests := []struct {
		line    string
		want    time.Duration
		wantErr bool
	}{
		{"VHU-PING-OK seq=3 64 bytes from 10.0.0.2: seq=0 ttl=64 time=12.500 ms", 12500 * time.Microsecond, false},
		{"VHU-PING-OK seq=3 64 bytes from 10.0.0.2: seq=0 ttl=64 time=1418.771 ms", 1418771 * time.Microsecond, false},
		{"VHU-PING-FAIL seq=4", 0, true},
		{"time=abc ms", 0, true},
	}
	for _, tc := range tests {
		got, err := RTT(tc.line)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("RTT(%q) = %v, %v; want %v, error %v", tc.line, got, err, tc.want, tc.wantErr)
		}
	}
	med, err := MedianRTT([]string{"time=3.0 ms", "time=1.0 ms", "time=2.0 ms"})
	if err != nil || med != 2*time.Millisecond {
		t.Errorf("MedianRTT = %v, %v; want 2ms", med, err)
	}
	if _, err := MedianRTT(nil); err == nil {
		t.Error("MedianRTT(nil) did not fail")
	}
}

func TestConsoleCollect(t *testing.T) {
	p := filepath.Join(t.TempDir(), "console.log")
	c := Console{Path: p}
	if c.Offset() != 0 {
		t.Fatal("missing file must have offset 0")
	}
	write := func(s string) {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(s)
		f.Close()
	}
	write("boot noise\r\nVHU-PING-OK seq=1 time=1.0 ms\r\n")
	off := c.Offset()
	go func() {
		time.Sleep(300 * time.Millisecond)
		write("VHU-PING-FAIL seq=2\nVHU-PING-OK seq=3 time=2.0 ms\nVHU-PING-OK seq=4 time=3.0 ms\n")
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lines, err := c.Collect(ctx, off, MarkerPingOK, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || !strings.Contains(lines[0], "seq=3") || !strings.Contains(lines[1], "seq=4") {
		t.Errorf("lines after offset = %q, want seq=3 and seq=4", lines)
	}
	if first, err := c.WaitFor(ctx, 0, MarkerPingOK); err != nil || !strings.HasSuffix(first, "1.0 ms") {
		t.Errorf("WaitFor from 0 = %q, %v (carriage returns must be trimmed)", first, err)
	}

	write("VHU-ERROR insmod virtio_net\n")
	if _, err := c.WaitFor(ctx, c.Offset()-30, MarkerPingOK); err == nil || !strings.Contains(err.Error(), "insmod") {
		t.Errorf("guest error not reported: %v", err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if _, err := c.WaitFor(short, c.Offset(), MarkerPingOK); err == nil {
		t.Error("WaitFor with nothing new did not time out")
	}
}

// TestPrepareUsesCache seeds the cache with a kernel so nothing is
// downloaded: the first Prepare builds the initramfs, the second reuses it.
func TestPrepareUsesCache(t *testing.T) {
	if _, err := os.Stat(busyboxPath); err != nil {
		t.Fatalf("%s missing (busybox-static, hack/install-deps.sh): %v", busyboxPath, err)
	}
	cache := t.TempDir()
	kdir := filepath.Join(cache, "kernel", "modules")
	if err := os.MkdirAll(kdir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(cache, "kernel", "vmlinuz"), []byte("kernel"), 0o644)
	for _, m := range Modules {
		os.WriteFile(filepath.Join(kdir, m+".ko"), []byte(m), 0o644)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	img, cached, err := Prepare(context.Background(), cache, log)
	if err != nil || cached {
		t.Fatalf("first Prepare: cached=%v err=%v, want a fresh build", cached, err)
	}
	img2, cached, err := Prepare(context.Background(), cache, log)
	if err != nil || !cached || img2 != img {
		t.Fatalf("second Prepare: %+v cached=%v err=%v, want the cached %+v", img2, cached, err, img)
	}
	// The initramfs holds init (with the module list filled in), busybox and the modules.
	dir := t.TempDir()
	cmd := exec.Command("sh", "-c", "gzip -dc "+img.Initrd+" | cpio -i --quiet")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("unpack initramfs: %v: %s", err, out)
	}
	init, err := os.ReadFile(filepath.Join(dir, "init"))
	if err != nil || !strings.Contains(string(init), "for m in "+strings.Join(Modules, " ")+";") {
		t.Errorf("init script without the module list: %v", err)
	}
	for _, p := range []string{"bin/busybox", "lib/modules/virtio_net.ko"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("initramfs lacks %s: %v", p, err)
		}
	}
}
