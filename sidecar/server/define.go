package server

import (
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
	"github.com/kubevirt-vhostuser/vhostuser/sidecar/domain"
	"github.com/kubevirt-vhostuser/vhostuser/sidecar/networkinfo"
)

// onDefineDomain is shared by all versions: it reads network-info for the
// MTUs and has package domain rewrite the domain.
func (s *Server) onDefineDomain(version string, domainXML, vmi []byte) ([]byte, error) {
	start := time.Now()
	info, err := networkinfo.Read(s.cfg.NetworkInfoPath, s.cfg.NetworkInfoWait)
	if err != nil {
		s.log.Error("OnDefineDomain failed", "version", version, "error", err)
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	s.logDeviceInfoPaths(info)
	out, err := domain.Rewrite(domainXML, vmi, domain.Options{
		BindingName: s.cfg.BindingName,
		MaxQueues:   s.cfg.MaxQueues,
		MTU:         info.MTU(),
	})
	if err != nil {
		code := rewriteCode(err)
		s.log.Error("OnDefineDomain failed", "version", version, "code", code.String(), "error", err)
		return nil, status.Error(code, fmt.Sprintf("%s sidecar: %v", s.cfg.BindingName, err))
	}
	s.log.Debug("OnDefineDomain", "version", version, "in", len(domainXML), "out", len(out), "took", time.Since(start))
	return out, nil
}

// logDeviceInfoPaths notes where the CNI plugin's device-info names another
// socket than the contract: the contract path is what QEMU gets.
func (s *Server) logDeviceInfoPaths(info networkinfo.Info) {
	for network, e := range info {
		if e.VhostUserPath == "" {
			continue
		}
		if want, err := socketpath.ComputeSocketForNetwork(network); err == nil && want != e.VhostUserPath {
			s.log.Debug("device-info socket path differs from the contract path; using the contract path",
				"network", network, "deviceInfoPath", e.VhostUserPath, "mode", e.VhostUserMode, "path", want)
		}
	}
}
