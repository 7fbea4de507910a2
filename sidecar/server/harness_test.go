package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kvv1 "kubevirt.io/api/core/v1"

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
