package server

import (
	"bytes"
	"context"
	"strings"
	"testing"

	hooksinfo "github.com/kubevirt-vhostuser/vhostuser/internal/hooks/info"
	"github.com/kubevirt-vhostuser/vhostuser/internal/hooks/v1alpha1"
	"github.com/kubevirt-vhostuser/vhostuser/internal/hooks/v1alpha2"
	"github.com/kubevirt-vhostuser/vhostuser/internal/hooks/v1alpha3"
)

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
