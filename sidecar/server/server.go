// Package server is the KubeVirt hook sidecar's gRPC server: the Info service
// and the Callbacks of hooks API v1alpha1, v1alpha2 and v1alpha3 on a unix
// socket, delegating OnDefineDomain to package domain.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hooksinfo "github.com/kubevirt-vhostuser/vhostuser/internal/hooks/info"
	"github.com/kubevirt-vhostuser/vhostuser/internal/hooks/v1alpha1"
	"github.com/kubevirt-vhostuser/vhostuser/internal/hooks/v1alpha2"
	"github.com/kubevirt-vhostuser/vhostuser/internal/hooks/v1alpha3"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
	"github.com/kubevirt-vhostuser/vhostuser/sidecar/domain"
	"github.com/kubevirt-vhostuser/vhostuser/sidecar/networkinfo"
)

// Hook point and version names of the KubeVirt hooks API.
const (
	HookOnDefineDomain = "OnDefineDomain"
	HookShutdown       = "Shutdown"
	// Priority of our hook points. Callbacks run by priority (descending), then
	// by name; 0 is what sidecars commonly use.
	Priority = 0
)

// Versions are the callback API versions served, oldest first.
var Versions = []string{"v1alpha1", "v1alpha2", "v1alpha3"}

// maxMessage bounds a request: domain XML and VMI JSON are kilobytes, not megabytes.
const maxMessage = 16 << 20

// MaxNetworkInfoWait keeps the wait for network-info well inside
// virt-launcher's one-minute OnDefineDomain timeout.
const MaxNetworkInfoWait = 45 * time.Second

// stopGrace bounds how long in-flight calls may finish after Shutdown or SIGTERM.
const stopGrace = 5 * time.Second

// Config is the sidecar's configuration.
type Config struct {
	BindingName     string        // network binding name (binding.name in the VMI)
	SocketPath      string        // unix socket to listen on
	NetworkInfoPath string        // KubeVirt's network-info downward API file
	NetworkInfoWait time.Duration // 0: read network-info if present; >0: wait this long for it
	MaxQueues       uint          // multiqueue cap; 0 means domain.DefaultMaxQueues
	Logger          *slog.Logger  // nil means slog.Default()
}

// Server serves the hooks API.
type Server struct {
	cfg      Config
	log      *slog.Logger
	grpc     *grpc.Server
	ln       *net.UnixListener
	shutdown chan struct{}
	once     sync.Once
}

// New checks cfg and builds a server; Listen then Serve run it.
func New(cfg Config) (*Server, error) {
	if cfg.BindingName == "" {
		return nil, fmt.Errorf("binding name is empty: set -binding or NETWORK_BINDING_PLUGIN_NAME")
	}
	if cfg.SocketPath == "" || !filepath.IsAbs(cfg.SocketPath) {
		return nil, fmt.Errorf("socket path %q must be absolute", cfg.SocketPath)
	}
	if len(cfg.SocketPath) > socketpath.MaxSocketPath {
		return nil, fmt.Errorf("socket path %q is %d bytes, the limit is %d", cfg.SocketPath, len(cfg.SocketPath), socketpath.MaxSocketPath)
	}
	if cfg.NetworkInfoWait < 0 || cfg.NetworkInfoWait >= MaxNetworkInfoWait {
		return nil, fmt.Errorf("network-info wait %s must be between 0 and %s: virt-launcher gives OnDefineDomain one minute", cfg.NetworkInfoWait, MaxNetworkInfoWait)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, log: cfg.Logger, shutdown: make(chan struct{})}
	s.grpc = grpc.NewServer(grpc.MaxRecvMsgSize(maxMessage), grpc.MaxSendMsgSize(maxMessage))
	hooksinfo.RegisterInfoServer(s.grpc, infoServer{s: s})
	v1alpha1.RegisterCallbacksServer(s.grpc, v1alpha1Server{s: s})
	v1alpha2.RegisterCallbacksServer(s.grpc, v1alpha2Server{s: s})
	v1alpha3.RegisterCallbacksServer(s.grpc, v1alpha3Server{s: s})
	return s, nil
}

// Listen creates the socket. A stale socket file left by a dead sidecar is
// replaced; a socket somebody still serves, or any other kind of file, is
// left alone and reported.
func (s *Server) Listen() error {
	path := s.cfg.SocketPath
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return fmt.Errorf("listen on %s: a %s is in the way; remove it or choose another -socket-name", path, fi.Mode().Type())
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return fmt.Errorf("listen on %s: another process serves this socket; not taking it over", path)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("listen on %s: probe existing socket: %w", path, err)
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remove stale socket %s: %w", path, err)
		}
		s.log.Info("removed stale socket", "socket", path)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("listen on %s: %w", path, err)
	}
	// virt-launcher in the compute container runs as the same user (or root)
	// and needs write permission to connect; nobody else does.
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return fmt.Errorf("chmod socket %s: %w", path, err)
	}
	s.ln = ln // closing it unlinks the socket file
	return nil
}

// Serve answers calls until ctx is done or virt-launcher calls Shutdown, then
// lets in-flight calls finish (bounded) and removes the socket. It returns nil
// after such a stop.
func (s *Server) Serve(ctx context.Context) error {
	if s.ln == nil {
		return fmt.Errorf("serve: Listen was not called")
	}
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(s.ln) }()

	var reason string
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", s.cfg.SocketPath, err)
	case <-ctx.Done():
		reason = "signal"
	case <-s.shutdown:
		reason = "Shutdown call"
	}
	s.log.Info("stopping", "reason", reason)
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(stopGrace):
		s.grpc.Stop()
		<-done
	}
	// grpc.Serve returns after a stop, closing the listener even when the stop
	// came first; closing the listener unlinks the socket file.
	<-errc
	_ = s.ln.Close()
	return nil
}

// Addr is the socket path.
func (s *Server) Addr() string { return s.cfg.SocketPath }

func (s *Server) requestShutdown() { s.once.Do(func() { close(s.shutdown) }) }

func (s *Server) info() *hooksinfo.InfoResult {
	return &hooksinfo.InfoResult{
		Name:     s.cfg.BindingName,
		Versions: Versions,
		HookPoints: []*hooksinfo.HookPoint{
			{Name: HookOnDefineDomain, Priority: Priority},
			{Name: HookShutdown, Priority: Priority},
		},
	}
}

// onDefineDomain is shared by all versions.
func (s *Server) onDefineDomain(version string, domainXML, vmi []byte) ([]byte, error) {
	start := time.Now()
	info, err := networkinfo.Read(s.cfg.NetworkInfoPath, s.cfg.NetworkInfoWait)
	if err != nil {
		s.log.Error("OnDefineDomain failed", "version", version, "error", err)
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	for network, e := range info {
		if e.VhostUserPath == "" {
			continue
		}
		if want, err := socketpath.ComputeSocketForNetwork(network); err == nil && want != e.VhostUserPath {
			s.log.Debug("device-info socket path differs from the contract path; using the contract path",
				"network", network, "deviceInfoPath", e.VhostUserPath, "mode", e.VhostUserMode, "path", want)
		}
	}
	out, err := domain.Rewrite(domainXML, vmi, domain.Options{
		BindingName: s.cfg.BindingName,
		MaxQueues:   s.cfg.MaxQueues,
		MTU:         info.MTU(),
	})
	if err != nil {
		code := codes.Internal
		switch domain.KindOf(err) {
		case domain.Invalid:
			code = codes.InvalidArgument
		case domain.Conflict:
			code = codes.FailedPrecondition
		}
		s.log.Error("OnDefineDomain failed", "version", version, "code", code.String(), "error", err)
		return nil, status.Error(code, fmt.Sprintf("%s sidecar: %v", s.cfg.BindingName, err))
	}
	s.log.Debug("OnDefineDomain", "version", version, "in", len(domainXML), "out", len(out), "took", time.Since(start))
	return out, nil
}

type infoServer struct {
	hooksinfo.UnimplementedInfoServer
	s *Server
}

func (i infoServer) Info(context.Context, *hooksinfo.InfoParams) (*hooksinfo.InfoResult, error) {
	return i.s.info(), nil
}

type v1alpha1Server struct {
	v1alpha1.UnimplementedCallbacksServer
	s *Server
}

func (v v1alpha1Server) OnDefineDomain(_ context.Context, p *v1alpha1.OnDefineDomainParams) (*v1alpha1.OnDefineDomainResult, error) {
	out, err := v.s.onDefineDomain("v1alpha1", p.GetDomainXML(), p.GetVmi())
	if err != nil {
		return nil, err
	}
	return &v1alpha1.OnDefineDomainResult{DomainXML: out}, nil
}

type v1alpha2Server struct {
	v1alpha2.UnimplementedCallbacksServer
	s *Server
}

func (v v1alpha2Server) OnDefineDomain(_ context.Context, p *v1alpha2.OnDefineDomainParams) (*v1alpha2.OnDefineDomainResult, error) {
	out, err := v.s.onDefineDomain("v1alpha2", p.GetDomainXML(), p.GetVmi())
	if err != nil {
		return nil, err
	}
	return &v1alpha2.OnDefineDomainResult{DomainXML: out}, nil
}

// PreCloudInitIso leaves cloud-init alone: the guest configures the interface.
func (v v1alpha2Server) PreCloudInitIso(_ context.Context, p *v1alpha2.PreCloudInitIsoParams) (*v1alpha2.PreCloudInitIsoResult, error) {
	return &v1alpha2.PreCloudInitIsoResult{CloudInitNoCloudSource: p.GetCloudInitNoCloudSource(), CloudInitData: p.GetCloudInitData()}, nil
}

type v1alpha3Server struct {
	v1alpha3.UnimplementedCallbacksServer
	s *Server
}

func (v v1alpha3Server) OnDefineDomain(_ context.Context, p *v1alpha3.OnDefineDomainParams) (*v1alpha3.OnDefineDomainResult, error) {
	out, err := v.s.onDefineDomain("v1alpha3", p.GetDomainXML(), p.GetVmi())
	if err != nil {
		return nil, err
	}
	return &v1alpha3.OnDefineDomainResult{DomainXML: out}, nil
}

// PreCloudInitIso leaves cloud-init alone: the guest configures the interface.
func (v v1alpha3Server) PreCloudInitIso(_ context.Context, p *v1alpha3.PreCloudInitIsoParams) (*v1alpha3.PreCloudInitIsoResult, error) {
	return &v1alpha3.PreCloudInitIsoResult{CloudInitNoCloudSource: p.GetCloudInitNoCloudSource(), CloudInitData: p.GetCloudInitData()}, nil
}

// Shutdown answers, then stops the server: Serve returns once this call is done.
func (v v1alpha3Server) Shutdown(context.Context, *v1alpha3.ShutdownParams) (*v1alpha3.ShutdownResult, error) {
	v.s.log.Info("Shutdown requested by virt-launcher")
	v.s.requestShutdown()
	return &v1alpha3.ShutdownResult{}, nil
}
