package guest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	if all, err := c.Lines(off, MarkerPingOK); err != nil || len(all) != 2 || !strings.Contains(all[1], "seq=4") {
		t.Errorf("Lines after offset = %q, %v; want seq=3 and seq=4", all, err)
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

func TestCmdlineInterval(t *testing.T) {
	base := "console=ttyS0 quiet panic=-1 vhu.name=vm-a vhu.ip=10.0.0.1/24 vhu.peer=10.0.0.2"
	if got := Cmdline("vm-a", "10.0.0.1/24", "10.0.0.2"); got != base {
		t.Fatalf("Cmdline = %q, want %q (unchanged for its callers)", got, base)
	}
	tests := []struct {
		interval time.Duration
		want     string
	}{
		{0, base},
		{-time.Second, base},
		{100 * time.Millisecond, base + " vhu.interval=0.1"},
		{20 * time.Millisecond, base + " vhu.interval=0.02"},
		{1500 * time.Millisecond, base + " vhu.interval=1.5"},
		{2 * time.Second, base + " vhu.interval=2"},
	}
	for _, tc := range tests {
		if got := CmdlineInterval("vm-a", "10.0.0.1/24", "10.0.0.2", tc.interval); got != tc.want {
			t.Errorf("CmdlineInterval(%v) = %q, want %q", tc.interval, got, tc.want)
		}
	}
	// init.sh must read the parameter CmdlineInterval writes.
	if !strings.Contains(initScript, `vhu.interval=*) interval="${arg#vhu.interval=}"`) {
		t.Error("init script does not read vhu.interval")
	}
}

// busyboxGap is what BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1) printed for
// `busybox ping -i 0.1 -c 30 10.9.0.2` while 10.9.0.2 was reachable only from
// 0.75 s to 1.55 s and from 2.15 s on (an address added to and removed from lo
// in a network namespace): seqs 0-7 and 16-21 were lost.
var busyboxGap = []string{
	"PING 10.9.0.2 (10.9.0.2): 56 data bytes",
	"64 bytes from 10.9.0.2: seq=8 ttl=64 time=0.132 ms",
	"64 bytes from 10.9.0.2: seq=9 ttl=64 time=0.079 ms",
	"64 bytes from 10.9.0.2: seq=10 ttl=64 time=0.080 ms",
	"64 bytes from 10.9.0.2: seq=11 ttl=64 time=0.086 ms",
	"64 bytes from 10.9.0.2: seq=12 ttl=64 time=0.084 ms",
	"64 bytes from 10.9.0.2: seq=13 ttl=64 time=0.111 ms",
	"64 bytes from 10.9.0.2: seq=14 ttl=64 time=0.080 ms",
	"64 bytes from 10.9.0.2: seq=15 ttl=64 time=0.079 ms",
	"64 bytes from 10.9.0.2: seq=22 ttl=64 time=0.093 ms",
	"64 bytes from 10.9.0.2: seq=23 ttl=64 time=0.085 ms",
	"64 bytes from 10.9.0.2: seq=24 ttl=64 time=0.087 ms",
	"64 bytes from 10.9.0.2: seq=25 ttl=64 time=0.090 ms",
	"64 bytes from 10.9.0.2: seq=26 ttl=64 time=0.085 ms",
	"64 bytes from 10.9.0.2: seq=27 ttl=64 time=0.088 ms",
	"64 bytes from 10.9.0.2: seq=28 ttl=64 time=0.082 ms",
	"64 bytes from 10.9.0.2: seq=29 ttl=64 time=0.089 ms",
	"",
	"--- 10.9.0.2 ping statistics ---",
	"30 packets transmitted, 16 packets received, 46% packet loss",
	"round-trip min/avg/max = 0.079/0.089/0.132 ms",
}

// busyboxLoopback is `busybox ping -i 0.1 -c 5 127.0.0.1` (same busybox).
var busyboxLoopback = []string{
	"PING 127.0.0.1 (127.0.0.1): 56 data bytes",
	"64 bytes from 127.0.0.1: seq=0 ttl=64 time=0.108 ms",
	"64 bytes from 127.0.0.1: seq=1 ttl=64 time=0.105 ms",
	"64 bytes from 127.0.0.1: seq=2 ttl=64 time=0.283 ms",
	"64 bytes from 127.0.0.1: seq=3 ttl=64 time=0.083 ms",
	"64 bytes from 127.0.0.1: seq=4 ttl=64 time=0.088 ms",
}

// replies turns busybox ping output into init.sh's reply lines of run 1.
func replies(busybox []string) []string {
	var out []string
	for _, l := range busybox {
		if strings.Contains(l, " bytes from ") {
			out = append(out, "VHU-PING-OK run=1 "+l)
		}
	}
	return out
}

// reply is init.sh's line for a reply with busybox seq n.
func reply(run, n int) string {
	return fmt.Sprintf("VHU-PING-OK run=%d 64 bytes from 10.0.0.2: seq=%d ttl=64 time=0.250 ms", run, n)
}

func TestPingGap(t *testing.T) {
	tests := []struct {
		name                         string
		lines                        []string
		seqs                         []int
		seqsErr                      bool // PingSeqs fails
		lost, lastBefore, firstAfter int
		wantErr                      string // PingGap fails
	}{
		{name: "loopback, no loss", lines: replies(busyboxLoopback),
			seqs: []int{0, 1, 2, 3, 4}, lost: 0, lastBefore: 0, firstAfter: 1},
		{name: "real gap", lines: replies(busyboxGap),
			seqs: []int{8, 9, 10, 11, 12, 13, 14, 15, 22, 23, 24, 25, 26, 27, 28, 29}, lost: 6, lastBefore: 15, firstAfter: 22},
		{name: "console noise, carriage returns and other markers are skipped",
			lines: []string{
				"[    1.234] random: crng init done\r",
				"VHU-PING-START run=1 interval=0.1 peer=10.0.0.2\r",
				reply(1, 40) + "\r",
				"VHU-PING-LOST run=1 count=3 after=40 before=44\r",
				"noise " + reply(1, 44) + "\r",
			},
			seqs: []int{40, 44}, lost: 3, lastBefore: 40, firstAfter: 44},
		{name: "largest gap wins, ties go to the earliest",
			lines: []string{reply(1, 1), reply(1, 3), reply(1, 4), reply(1, 8), reply(1, 9), reply(1, 13)},
			seqs:  []int{1, 3, 4, 8, 9, 13}, lost: 3, lastBefore: 4, firstAfter: 8},
		{name: "16-bit wrap", lines: []string{reply(1, 65534), reply(1, 65535), reply(1, 2), reply(1, 3)},
			seqs: []int{65534, 65535, 65538, 65539}, lost: 2, lastBefore: 65535, firstAfter: 65538},
		{name: "a late reply fills its gap, a duplicate counts once",
			lines: []string{reply(1, 5), reply(1, 6), reply(1, 9), reply(1, 7), reply(1, 10), reply(1, 10) + " (DUP!)"},
			seqs:  []int{5, 6, 9, 7, 10, 10}, lost: 1, lastBefore: 7, firstAfter: 9},
		{name: "once-a-second ping lines", lines: []string{"VHU-PING-OK seq=3 64 bytes from 10.0.0.2: seq=0 ttl=64 time=12.500 ms"},
			seqsErr: true, wantErr: "not a continuous ping reply"},
		{name: "ping restarted", lines: []string{reply(1, 7), reply(1, 8), "VHU-PING-FAIL run=1 ping exited", reply(2, 0), reply(2, 1)},
			seqsErr: true, wantErr: "restarted ping"},
		{name: "one reply", lines: []string{reply(1, 7), reply(1, 7) + " (DUP!)"}, seqs: []int{7, 7},
			wantErr: "1 distinct ping replies"},
		{name: "no lines", wantErr: "0 distinct ping replies"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seqs, err := PingSeqs(tc.lines)
			if !slices.Equal(seqs, tc.seqs) || (err != nil) != tc.seqsErr {
				t.Errorf("PingSeqs = %v, %v; want %v, error %v", seqs, err, tc.seqs, tc.seqsErr)
			}
			lost, before, after, err := PingGap(tc.lines)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("PingGap = %d, %d, %d, %v; want an error with %q", lost, before, after, err, tc.wantErr)
				}
				return
			}
			if err != nil || lost != tc.lost || before != tc.lastBefore || after != tc.firstAfter {
				t.Errorf("PingGap = %d, %d, %d, %v; want %d, %d, %d", lost, before, after, err, tc.lost, tc.lastBefore, tc.firstAfter)
			}
		})
	}
}

// pingRun runs init.sh's ping_run function under the initramfs's busybox sh,
// with ping defined by pingFunc, and returns its output lines.
func pingRun(t *testing.T, pingFunc string) []string {
	t.Helper()
	start := strings.Index(initScript, "\nping_run() {\n")
	end := strings.Index(initScript[start+1:], "\n}\n")
	if start < 0 || end < 0 {
		t.Fatal("init script has no ping_run function")
	}
	script := initScript[start+1:start+1+end+3] + "interval=0.05 peer=127.0.0.1\n" + pingFunc + "\nping_run 1\n"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, busyboxPath, "sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("busybox sh: %v: %s", err, out)
	}
	return strings.Split(strings.TrimRight(string(out), "\n"), "\n")
}

// TestInitPingRun feeds real busybox ping output through init.sh's reply loop.
func TestInitPingRun(t *testing.T) {
	if _, err := os.Stat(busyboxPath); err != nil {
		t.Fatalf("%s missing (busybox-static, hack/install-deps.sh): %v", busyboxPath, err)
	}
	var printf strings.Builder
	printf.WriteString("ping() { printf '%s\\n'")
	for _, l := range append(busyboxGap, "ping: sendto: Network is unreachable") {
		printf.WriteString(" '" + l + "'")
	}
	printf.WriteString("; }")
	got := pingRun(t, printf.String())
	want := []string{"VHU-PING-START run=1 interval=0.05 peer=127.0.0.1"}
	for _, l := range replies(busyboxGap) {
		if strings.Contains(l, "seq=22 ") {
			want = append(want, "VHU-PING-LOST run=1 count=6 after=15 before=22")
		}
		want = append(want, l)
	}
	want = append(want,
		"VHU-PING-FAIL run=1 --- 10.9.0.2 ping statistics ---",
		"VHU-PING-FAIL run=1 30 packets transmitted, 16 packets received, 46% packet loss",
		"VHU-PING-FAIL run=1 round-trip min/avg/max = 0.079/0.089/0.132 ms",
		"VHU-PING-FAIL run=1 ping: sendto: Network is unreachable",
	)
	if !slices.Equal(got, want) {
		t.Errorf("ping_run printed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if lost, before, after, err := PingGap(got); err != nil || lost != 6 || before != 15 || after != 22 {
		t.Errorf("PingGap of ping_run's output = %d, %d, %d, %v; want 6, 15, 22", lost, before, after, err)
	}

	// Wrap-around and late replies, as the shell compares seqs modulo 65536.
	got = pingRun(t, `ping() { for n in 65533 65535 1 0 2 2; do echo "64 bytes from 127.0.0.1: seq=$n ttl=64 time=0.100 ms"; done; }`)
	lost := slices.DeleteFunc(got, func(l string) bool { return !strings.Contains(l, MarkerPingLost) })
	if want := []string{"VHU-PING-LOST run=1 count=1 after=65533 before=65535", "VHU-PING-LOST run=1 count=1 after=65535 before=1"}; !slices.Equal(lost, want) {
		t.Errorf("loss lines %q, want %q", lost, want)
	}
}

// TestInitPingRunBusybox runs ping_run with the real busybox ping against
// 127.0.0.1 (-c bounds it), checking ping -i takes fractions of a second.
func TestInitPingRunBusybox(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("busybox ping needs root (a raw socket)")
	}
	begin := time.Now()
	got := pingRun(t, `ping() { `+busyboxPath+` ping -c 5 "$@"; }`)
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("5 pings at -i 0.05 took %v: fractional -i not honoured?", took)
	}
	seqs, err := PingSeqs(got)
	if err != nil || !slices.Equal(seqs, []int{0, 1, 2, 3, 4}) {
		t.Errorf("PingSeqs = %v, %v; want 0-4 from\n%s", seqs, err, strings.Join(got, "\n"))
	}
	ok := slices.DeleteFunc(slices.Clone(got), func(l string) bool { return !strings.Contains(l, MarkerPingOK) })
	if _, err := MedianRTT(ok); err != nil {
		t.Errorf("MedianRTT of the replies: %v", err)
	}
}
