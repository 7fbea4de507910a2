package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kvv1 "kubevirt.io/api/core/v1"

	hooksinfo "github.com/kubevirt-vhostuser/vhostuser/internal/hooks/info"
	"github.com/kubevirt-vhostuser/vhostuser/internal/hooks/v1alpha1"
	"github.com/kubevirt-vhostuser/vhostuser/internal/hooks/v1alpha2"
	"github.com/kubevirt-vhostuser/vhostuser/internal/hooks/v1alpha3"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// shortDir is a temp dir short enough for a unix socket path.
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "vus")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

type running struct {
	srv    *Server
	path   string
	conn   *grpc.ClientConn
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, cfg Config) *running {
	t.Helper()
	if cfg.SocketPath == "" {
		cfg.SocketPath = filepath.Join(shortDir(t), "vhostuser-binding.sock")
	}
	if cfg.BindingName == "" {
		cfg.BindingName = "vhostuser"
	}
	if cfg.NetworkInfoPath == "" {
		cfg.NetworkInfoPath = filepath.Join(filepath.Dir(cfg.SocketPath), "no-network-info")
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{srv: srv, path: cfg.SocketPath, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- srv.Serve(ctx) }()
	conn, err := grpc.NewClient("unix://"+cfg.SocketPath, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	r.conn = conn
	t.Cleanup(func() {
		conn.Close()
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
	})
	return r
}

func (r *running) waitStopped(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // let Cleanup see it too
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop within 10s")
		return nil
	}
}

func testVMI(t testing.TB, names ...string) []byte {
	t.Helper()
	v := kvv1.VirtualMachineInstance{ObjectMeta: metav1.ObjectMeta{Name: "vmi1", Namespace: "ns1"}}
	v.Spec.Domain.Devices.Interfaces = []kvv1.Interface{{Name: "default", InterfaceBindingMethod: kvv1.InterfaceBindingMethod{Masquerade: &kvv1.InterfaceMasquerade{}}}}
	v.Spec.Networks = []kvv1.Network{{Name: "default", NetworkSource: kvv1.NetworkSource{Pod: &kvv1.PodNetwork{}}}}
	for _, n := range names {
		v.Spec.Domain.Devices.Interfaces = append(v.Spec.Domain.Devices.Interfaces, kvv1.Interface{Name: n, Binding: &kvv1.PluginBinding{Name: "vhostuser"}})
		v.Spec.Networks = append(v.Spec.Networks, kvv1.Network{Name: n, NetworkSource: kvv1.NetworkSource{Multus: &kvv1.MultusNetwork{NetworkName: "nad-" + n}}})
	}
	b, err := json.Marshal(&v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testDomain(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("../domain/testdata/domain-base.xml")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantSocket(t testing.TB, network string) string {
	p, err := socketpath.ComputeSocketForNetwork(network)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInfo(t *testing.T) {
	r := start(t, Config{BindingName: "my-vhost"})
	res, err := hooksinfo.NewInfoClient(r.conn).Info(context.Background(), &hooksinfo.InfoParams{})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetName() != "my-vhost" {
		t.Errorf("name %q", res.GetName())
	}
	if strings.Join(res.GetVersions(), ",") != "v1alpha1,v1alpha2,v1alpha3" {
		t.Errorf("versions %v", res.GetVersions())
	}
	var points []string
	for _, p := range res.GetHookPoints() {
		points = append(points, p.GetName())
	}
	if strings.Join(points, ",") != "OnDefineDomain,Shutdown" {
		t.Errorf("hook points %v", points)
	}
}

// TestOnDefineDomainAllVersions calls every version's OnDefineDomain with a
// real client and checks the interface lands in the XML.
func TestOnDefineDomainAllVersions(t *testing.T) {
	r := start(t, Config{})
	ctx := context.Background()
	dom, vmi := testDomain(t), testVMI(t, "dpdk0")
	calls := map[string]func() ([]byte, error){
		"v1alpha1": func() ([]byte, error) {
			res, err := v1alpha1.NewCallbacksClient(r.conn).OnDefineDomain(ctx, &v1alpha1.OnDefineDomainParams{DomainXML: dom, Vmi: vmi})
			return res.GetDomainXML(), err
		},
		"v1alpha2": func() ([]byte, error) {
			res, err := v1alpha2.NewCallbacksClient(r.conn).OnDefineDomain(ctx, &v1alpha2.OnDefineDomainParams{DomainXML: dom, Vmi: vmi})
			return res.GetDomainXML(), err
		},
		"v1alpha3": func() ([]byte, error) {
			res, err := v1alpha3.NewCallbacksClient(r.conn).OnDefineDomain(ctx, &v1alpha3.OnDefineDomainParams{DomainXML: dom, Vmi: vmi})
			return res.GetDomainXML(), err
		},
	}
	var first []byte
	for _, v := range []string{"v1alpha1", "v1alpha2", "v1alpha3"} {
		out, err := calls[v]()
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if !bytes.Contains(out, []byte(`path="`+wantSocket(t, "dpdk0")+`"`)) || !bytes.Contains(out, []byte(`type="vhostuser"`)) {
			t.Fatalf("%s: no vhostuser interface in\n%s", v, out)
		}
		if first == nil {
			first = out
		} else if !bytes.Equal(first, out) {
			t.Errorf("%s answers differently from v1alpha1", v)
		}
	}
}

func TestPreCloudInitIsoReturnsInput(t *testing.T) {
	r := start(t, Config{})
	ctx := context.Background()
	src, data := []byte(`{"userData":"#cloud-config\n"}`), []byte(`{"userData":"x","networkData":"y"}`)
	r2, err := v1alpha2.NewCallbacksClient(r.conn).PreCloudInitIso(ctx, &v1alpha2.PreCloudInitIsoParams{CloudInitNoCloudSource: src, CloudInitData: data, Vmi: testVMI(t)})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r2.GetCloudInitNoCloudSource(), src) || !bytes.Equal(r2.GetCloudInitData(), data) {
		t.Errorf("v1alpha2 changed cloud-init: %s %s", r2.GetCloudInitNoCloudSource(), r2.GetCloudInitData())
	}
	r3, err := v1alpha3.NewCallbacksClient(r.conn).PreCloudInitIso(ctx, &v1alpha3.PreCloudInitIsoParams{CloudInitNoCloudSource: src, CloudInitData: data})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r3.GetCloudInitNoCloudSource(), src) || !bytes.Equal(r3.GetCloudInitData(), data) {
		t.Errorf("v1alpha3 changed cloud-init")
	}
}

func TestBadInputKeepsServing(t *testing.T) {
	r := start(t, Config{})
	ctx := context.Background()
	c := v1alpha3.NewCallbacksClient(r.conn)
	cases := []struct {
		name string
		dom  []byte
		vmi  []byte
		code codes.Code
		want []string
	}{
		{"malformed XML", []byte("<domain><devices"), testVMI(t, "dpdk0"), codes.InvalidArgument, []string{"ns1/vmi1", "parse domain XML"}},
		{"malformed VMI JSON", testDomain(t), []byte(`{"metadata":`), codes.InvalidArgument, []string{"parse VMI JSON"}},
		{"empty request", nil, nil, codes.InvalidArgument, []string{"parse VMI JSON"}},
		{"private memory", bytes.Replace(testDomain(t), []byte("<os>"), []byte(`<memoryBacking><access mode="private"/></memoryBacking><os>`), 1),
			testVMI(t, "dpdk0"), codes.FailedPrecondition, []string{"ns1/vmi1", "private"}},
	}
	for _, tc := range cases {
		_, err := c.OnDefineDomain(ctx, &v1alpha3.OnDefineDomainParams{DomainXML: tc.dom, Vmi: tc.vmi})
		st, _ := status.FromError(err)
		if st.Code() != tc.code {
			t.Errorf("%s: code %s, want %s (%v)", tc.name, st.Code(), tc.code, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(st.Message(), w) {
				t.Errorf("%s: message %q lacks %q", tc.name, st.Message(), w)
			}
		}
	}
	// Still serving.
	if _, err := c.OnDefineDomain(ctx, &v1alpha3.OnDefineDomainParams{DomainXML: testDomain(t), Vmi: testVMI(t, "dpdk0")}); err != nil {
		t.Fatalf("server broken after bad input: %v", err)
	}
}

func TestConcurrentCalls(t *testing.T) {
	r := start(t, Config{})
	c := v1alpha3.NewCallbacksClient(r.conn)
	dom := testDomain(t)
	want, err := c.OnDefineDomain(context.Background(), &v1alpha3.OnDefineDomainParams{DomainXML: dom, Vmi: testVMI(t, "a", "b")})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			vmi := testVMI(t, "a", "b")
			if i%4 == 3 {
				vmi = []byte("not json") // errors interleaved with successes
			}
			res, err := c.OnDefineDomain(context.Background(), &v1alpha3.OnDefineDomainParams{DomainXML: dom, Vmi: vmi})
			switch {
			case i%4 == 3 && status.Code(err) != codes.InvalidArgument:
				errs <- err
			case i%4 != 3 && err != nil:
				errs <- err
			case i%4 != 3 && !bytes.Equal(res.GetDomainXML(), want.GetDomainXML()):
				errs <- io.ErrShortWrite
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent call: %v", err)
	}
}

func TestNetworkInfoMTU(t *testing.T) {
	dir := shortDir(t)
	ni := filepath.Join(dir, "network-info")
	if err := os.WriteFile(ni, []byte(`{"interfaces":[{"network":"dpdk0","mtu":9000,"deviceInfo":{"type":"vhost-user","version":"1.1.0","vhost-user":{"mode":"client","path":"/elsewhere/vhost.sock"}}}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := start(t, Config{SocketPath: filepath.Join(dir, "s.sock"), NetworkInfoPath: ni})
	res, err := v1alpha3.NewCallbacksClient(r.conn).OnDefineDomain(context.Background(), &v1alpha3.OnDefineDomainParams{DomainXML: testDomain(t), Vmi: testVMI(t, "dpdk0")})
	if err != nil {
		t.Fatal(err)
	}
	out := res.GetDomainXML()
	if !bytes.Contains(out, []byte(`<mtu size="9000">`)) {
		t.Errorf("no MTU 9000 in\n%s", out)
	}
	if bytes.Contains(out, []byte("/elsewhere")) || !bytes.Contains(out, []byte(wantSocket(t, "dpdk0"))) {
		t.Errorf("the contract path must win over device-info:\n%s", out)
	}
}

func TestNetworkInfoRequiredButMissing(t *testing.T) {
	r := start(t, Config{NetworkInfoWait: 200 * time.Millisecond})
	_, err := v1alpha3.NewCallbacksClient(r.conn).OnDefineDomain(context.Background(), &v1alpha3.OnDefineDomainParams{DomainXML: testDomain(t), Vmi: testVMI(t, "dpdk0")})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "did not appear") {
		t.Fatalf("err = %v", err)
	}
}

func TestShutdownStopsAndRemovesSocket(t *testing.T) {
	r := start(t, Config{})
	if _, err := v1alpha3.NewCallbacksClient(r.conn).Shutdown(context.Background(), &v1alpha3.ShutdownParams{}); err != nil {
		t.Fatal(err)
	}
	if err := r.waitStopped(t); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := os.Lstat(r.path); !os.IsNotExist(err) {
		t.Errorf("socket still there after Shutdown: %v", err)
	}
}

func TestContextCancelStops(t *testing.T) {
	r := start(t, Config{})
	r.cancel()
	if err := r.waitStopped(t); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := os.Lstat(r.path); !os.IsNotExist(err) {
		t.Errorf("socket still there after stop: %v", err)
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	path := filepath.Join(shortDir(t), "vhostuser-binding.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false) // a crashed sidecar leaves its socket file behind
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("no stale socket to test with: %v", err)
	}
	r := start(t, Config{SocketPath: path})
	if _, err := hooksinfo.NewInfoClient(r.conn).Info(context.Background(), &hooksinfo.InfoParams{}); err != nil {
		t.Fatalf("server on the replaced socket does not answer: %v", err)
	}
}

func TestLiveSocketNotStolen(t *testing.T) {
	path := filepath.Join(shortDir(t), "vhostuser-binding.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	srv, err := New(Config{BindingName: "vhostuser", SocketPath: path, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Listen()
	if err == nil || !strings.Contains(err.Error(), "another process serves") {
		t.Fatalf("Listen on a live socket: %v", err)
	}
	if c, err := net.Dial("unix", path); err != nil {
		t.Errorf("the live socket was damaged: %v", err)
	} else {
		c.Close()
	}
}

func TestRegularFileNotRemoved(t *testing.T) {
	path := filepath.Join(shortDir(t), "vhostuser-binding.sock")
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{BindingName: "vhostuser", SocketPath: path, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err == nil {
		t.Fatal("Listen replaced a regular file")
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Error("the file was changed")
	}
}

func TestSocketPermissions(t *testing.T) {
	r := start(t, Config{})
	fi, err := os.Lstat(r.path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want 0660", fi.Mode().Perm())
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{SocketPath: "/tmp/x.sock"},
		{BindingName: "v", SocketPath: "relative.sock"},
		{BindingName: "v", SocketPath: "/" + strings.Repeat("a", 120)},
		{BindingName: "v", SocketPath: "/tmp/x.sock", NetworkInfoWait: -1},
		{BindingName: "v", SocketPath: "/tmp/x.sock", NetworkInfoWait: time.Minute},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
