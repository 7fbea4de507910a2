package server

import (
	"context"

	hooksinfo "github.com/kubevirt-vhostuser/vhostuser/internal/hooks/info"
	"github.com/kubevirt-vhostuser/vhostuser/internal/hooks/v1alpha1"
	"github.com/kubevirt-vhostuser/vhostuser/internal/hooks/v1alpha2"
	"github.com/kubevirt-vhostuser/vhostuser/internal/hooks/v1alpha3"
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

// The adapters below only move bytes between a version's messages and
// Server.onDefineDomain; each version's generated types are distinct.

type infoServer struct {
	hooksinfo.UnimplementedInfoServer
	s *Server
}

func (i infoServer) Info(context.Context, *hooksinfo.InfoParams) (*hooksinfo.InfoResult, error) {
	return &hooksinfo.InfoResult{
		Name:     i.s.cfg.BindingName,
		Versions: Versions,
		HookPoints: []*hooksinfo.HookPoint{
			{Name: HookOnDefineDomain, Priority: Priority},
			{Name: HookShutdown, Priority: Priority},
		},
	}, nil
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
