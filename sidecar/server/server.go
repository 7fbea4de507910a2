// Package server is the KubeVirt hook sidecar's gRPC server: the Info service
// and the Callbacks of hooks API v1alpha1, v1alpha2 and v1alpha3 on a unix
// socket, delegating OnDefineDomain to package domain.
//
// Layout: config.go checks the configuration, listen.go makes the socket,
// serve.go serves and stops gracefully, callbacks.go holds the thin
// per-version adapters, define.go the one OnDefineDomain they share and
// codes.go its mapping of errors to gRPC codes.
package server

import (
	"log/slog"
	"net"
	"sync"

	"google.golang.org/grpc"

	hooksinfo "github.com/kubevirt-vhostuser/vhostuser/internal/hooks/info"
	"github.com/kubevirt-vhostuser/vhostuser/internal/hooks/v1alpha1"
	"github.com/kubevirt-vhostuser/vhostuser/internal/hooks/v1alpha2"
	"github.com/kubevirt-vhostuser/vhostuser/internal/hooks/v1alpha3"
)

// maxMessage bounds a request: domain XML and VMI JSON are kilobytes, not megabytes.
const maxMessage = 16 << 20

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
	if err := cfg.check(); err != nil {
		return nil, err
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

// Addr is the socket path.
func (s *Server) Addr() string { return s.cfg.SocketPath }
