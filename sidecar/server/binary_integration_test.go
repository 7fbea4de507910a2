//go:build integration

package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	hooksinfo "github.com/kubevirt-vhostuser/vhostuser/internal/hooks/info"
	"github.com/kubevirt-vhostuser/vhostuser/internal/hooks/v1alpha3"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// sidecarBinary is $VHOSTUSER_BIN/vhostuser-sidecar (make integration sets
// it), else a fresh build of ./cmd/vhostuser-sidecar.
func sidecarBinary(tb testing.TB) string {
	tb.Helper()
	if dir := os.Getenv("VHOSTUSER_BIN"); dir != "" {
		p := filepath.Join(dir, "vhostuser-sidecar")
		if _, err := os.Stat(p); err != nil {
			tb.Fatalf("VHOSTUSER_BIN is set but %s is missing: run make build (%v)", p, err)
		}
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vus-bin")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "vhostuser-sidecar")
		out, err := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", builtBin, "../../cmd/vhostuser-sidecar").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		tb.Fatalf("build vhostuser-sidecar: %v", buildErr)
	}
	return builtBin
}

type proc struct {
	cmd    *exec.Cmd
	socket string
	stderr *syncBuffer
	conn   *grpc.ClientConn
	exited chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startBinary runs the sidecar on a private socket directory and waits until
// it answers Info. The process is killed at cleanup if still running.
func startBinary(tb testing.TB, extraArgs ...string) *proc {
	tb.Helper()
	dir, err := os.MkdirTemp("", "vus")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	args := append([]string{"-socket-dir", dir, "-network-info", filepath.Join(dir, "absent-network-info")}, extraArgs...)
	p := &proc{cmd: exec.Command(sidecarBinary(tb), args...), socket: filepath.Join(dir, "vhostuser-binding.sock"), stderr: &syncBuffer{}, exited: make(chan error, 1)}
	p.cmd.Stderr = p.stderr
	p.cmd.Env = append(os.Environ(), "NETWORK_BINDING_PLUGIN_NAME=vhostuser")
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	tb.Cleanup(func() {
		if p.conn != nil {
			p.conn.Close()
		}
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(p.socket); err == nil {
			break
		}
		select {
		case err := <-p.exited:
			tb.Fatalf("sidecar exited before listening: %v\n%s", err, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("sidecar socket %s did not appear within 15s\n%s", p.socket, p.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.conn, err = grpc.NewClient("unix://"+p.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := hooksinfo.NewInfoClient(p.conn).Info(ctx, &hooksinfo.InfoParams{}, grpc.WaitForReady(true)); err != nil {
		tb.Fatalf("Info: %v\n%s", err, p.stderr)
	}
	return p
}

func (p *proc) waitExit(tb testing.TB) int {
	tb.Helper()
	select {
	case err := <-p.exited:
		p.exited <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			tb.Fatalf("wait: %v", err)
		}
		return 0
	case <-time.After(15 * time.Second):
		tb.Fatalf("sidecar did not exit within 15s\n%s", p.stderr)
		return -1
	}
}

func TestBinarySIGTERM(t *testing.T) {
	p := startBinary(t)
	res, err := v1alpha3.NewCallbacksClient(p.conn).OnDefineDomain(context.Background(),
		&v1alpha3.OnDefineDomainParams{DomainXML: testDomain(t), Vmi: testVMI(t, "dpdk0")})
	if err != nil {
		t.Fatalf("OnDefineDomain: %v\n%s", err, p.stderr)
	}
	if !bytes.Contains(res.GetDomainXML(), []byte(wantSocket(t, "dpdk0"))) {
		t.Errorf("no vhostuser interface from the binary:\n%s", res.GetDomainXML())
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.waitExit(t); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0\n%s", code, p.stderr)
	}
	if _, err := os.Lstat(p.socket); !os.IsNotExist(err) {
		t.Errorf("socket left behind after SIGTERM: %v", err)
	}
	checkStartupLine(t, p)
}

func TestBinaryShutdownCall(t *testing.T) {
	p := startBinary(t, "-binding", "dpdk-net")
	info, err := hooksinfo.NewInfoClient(p.conn).Info(context.Background(), &hooksinfo.InfoParams{})
	if err != nil {
		t.Fatal(err)
	}
	if info.GetName() != "dpdk-net" {
		t.Errorf("-binding did not override the env: name %q", info.GetName())
	}
	if _, err := v1alpha3.NewCallbacksClient(p.conn).Shutdown(context.Background(), &v1alpha3.ShutdownParams{}); err != nil {
		t.Fatal(err)
	}
	if code := p.waitExit(t); code != 0 {
		t.Errorf("exit code %d after Shutdown, want 0\n%s", code, p.stderr)
	}
	if _, err := os.Lstat(p.socket); !os.IsNotExist(err) {
		t.Errorf("socket left behind after Shutdown: %v", err)
	}
}

// checkStartupLine: exactly one startup line naming version, binding and socket.
func checkStartupLine(t *testing.T, p *proc) {
	t.Helper()
	n := 0
	sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Errorf("log line is not JSON: %q", sc.Text())
			continue
		}
		if rec["msg"] != "vhostuser sidecar serving KubeVirt hooks" {
			continue
		}
		n++
		if rec["binding"] != "vhostuser" || rec["socket"] != p.socket || rec["version"] == nil || rec["version"] == "" {
			t.Errorf("startup line lacks binding/socket/version: %v", rec)
		}
	}
	if n != 1 {
		t.Errorf("%d startup lines, want 1:\n%s", n, p.stderr)
	}
}

// TestBinaryDoesNotStealLiveSocket: a second sidecar on the same socket exits 1
// with a clear message and leaves the first one serving.
func TestBinaryDoesNotStealLiveSocket(t *testing.T) {
	p := startBinary(t)
	second := exec.Command(sidecarBinary(t), "-socket-dir", filepath.Dir(p.socket))
	out, err := second.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("second sidecar: %v, want exit 1\n%s", err, out)
	}
	if !strings.Contains(string(out), "another process serves") {
		t.Errorf("no clear message:\n%s", out)
	}
	if _, err := hooksinfo.NewInfoClient(p.conn).Info(context.Background(), &hooksinfo.InfoParams{}); err != nil {
		t.Errorf("first sidecar no longer answers: %v", err)
	}
}

func TestBinaryFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-h"}, 0, "-socket-name"},
		{[]string{"-version"}, 0, ""},
		{[]string{"-no-such-flag"}, 2, "flag provided but not defined"},
		{[]string{"-max-queues", "0"}, 2, "max-queues"},
		{[]string{"-socket-name", "../x.sock"}, 2, "plain file name"},
		{[]string{"-network-info-wait", "2m"}, 2, "network-info wait"},
	} {
		out, err := exec.Command(sidecarBinary(t), tc.args...).CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: exit %d, want %d with %q\n%s", tc.args, code, tc.code, tc.want, out)
		}
	}
}
