// Package hooks_test checks that the generated hooks API stays wire-compatible
// with KubeVirt's: package, service, method and message names, field numbers
// and types, and that our file names differ from KubeVirt's.
package hooks_test

import (
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	hooksinfo "github.com/kubevirt-vhostuser/vhostuser/internal/hooks/info"
	"github.com/kubevirt-vhostuser/vhostuser/internal/hooks/v1alpha1"
	"github.com/kubevirt-vhostuser/vhostuser/internal/hooks/v1alpha2"
	"github.com/kubevirt-vhostuser/vhostuser/internal/hooks/v1alpha3"
)

// message maps message names to fields described as "name=number:kind[:repeated][:type]".
type message map[string][]string

func describe(m protoreflect.MessageDescriptor) []string {
	var out []string
	fs := m.Fields()
	for i := 0; i < fs.Len(); i++ {
		f := fs.Get(i)
		s := string(f.Name()) + "=" + strconv.Itoa(int(f.Number())) + ":" + f.Kind().String()
		if f.Cardinality() == protoreflect.Repeated {
			s += ":repeated"
		}
		if f.Kind() == protoreflect.MessageKind {
			s += ":" + string(f.Message().FullName())
		}
		out = append(out, s)
	}
	return out
}

func TestWireCompatibility(t *testing.T) {
	onDefine := message{
		"OnDefineDomainParams": {"domainXML=1:bytes", "vmi=2:bytes"},
		"OnDefineDomainResult": {"domainXML=1:bytes"},
	}
	cloudInit := message{
		"PreCloudInitIsoParams": {"cloudInitNoCloudSource=1:bytes", "vmi=2:bytes", "cloudInitData=3:bytes"},
		"PreCloudInitIsoResult": {"cloudInitNoCloudSource=1:bytes", "cloudInitData=3:bytes"},
	}
	cases := []struct {
		file     protoreflect.FileDescriptor
		kubevirt string // KubeVirt's file name, which ours must not reuse
		pkg      string
		service  string
		methods  []string
		messages []message
	}{
		{hooksinfo.File_info_vhostuser_hooks_info_proto, "api_info.proto", "kubevirt.hooks.info", "Info", []string{"Info"}, []message{{
			"InfoParams": nil,
			"InfoResult": {"name=1:string", "hookPoints=3:message:repeated:kubevirt.hooks.info.HookPoint", "versions=4:string:repeated"},
			"HookPoint":  {"name=1:string", "priority=2:int32"},
		}}},
		{v1alpha1.File_v1alpha1_vhostuser_hooks_v1alpha1_proto, "api_v1alpha1.proto", "kubevirt.hooks.v1alpha1", "Callbacks", []string{"OnDefineDomain"}, []message{onDefine}},
		{v1alpha2.File_v1alpha2_vhostuser_hooks_v1alpha2_proto, "api_v1alpha2.proto", "kubevirt.hooks.v1alpha2", "Callbacks", []string{"OnDefineDomain", "PreCloudInitIso"}, []message{onDefine, cloudInit}},
		{v1alpha3.File_v1alpha3_vhostuser_hooks_v1alpha3_proto, "api_v1alpha3.proto", "kubevirt.hooks.v1alpha3", "Callbacks", []string{"OnDefineDomain", "PreCloudInitIso", "Shutdown"},
			[]message{onDefine, cloudInit, {"ShutdownParams": nil, "ShutdownResult": nil}}},
	}
	for _, tc := range cases {
		t.Run(tc.pkg, func(t *testing.T) {
			f := tc.file
			if f.Path() == tc.kubevirt || !strings.HasPrefix(f.Path()[strings.LastIndex(f.Path(), "/")+1:], "vhostuser_") {
				t.Errorf("file path %q may collide with KubeVirt's %q", f.Path(), tc.kubevirt)
			}
			if string(f.Package()) != tc.pkg {
				t.Errorf("package %s, want %s", f.Package(), tc.pkg)
			}
			if f.Services().Len() != 1 || string(f.Services().Get(0).Name()) != tc.service {
				t.Fatalf("want one service %s", tc.service)
			}
			ms := f.Services().Get(0).Methods()
			var got []string
			for i := 0; i < ms.Len(); i++ {
				got = append(got, string(ms.Get(i).Name()))
			}
			if strings.Join(got, ",") != strings.Join(tc.methods, ",") {
				t.Errorf("methods %v, want %v", got, tc.methods)
			}
			want := 0
			for _, group := range tc.messages {
				for name, fields := range group {
					want++
					m := f.Messages().ByName(protoreflect.Name(name))
					if m == nil {
						t.Errorf("message %s.%s missing", tc.pkg, name)
						continue
					}
					if g := describe(m); strings.Join(g, " ") != strings.Join(fields, " ") {
						t.Errorf("%s fields %v, want %v", name, g, fields)
					}
				}
			}
			if f.Messages().Len() != want {
				t.Errorf("%d messages, want %d", f.Messages().Len(), want)
			}
		})
	}
}

func TestFullMethodNames(t *testing.T) {
	for got, want := range map[string]string{
		hooksinfo.Info_Info_FullMethodName:                "/kubevirt.hooks.info.Info/Info",
		v1alpha1.Callbacks_OnDefineDomain_FullMethodName:  "/kubevirt.hooks.v1alpha1.Callbacks/OnDefineDomain",
		v1alpha2.Callbacks_PreCloudInitIso_FullMethodName: "/kubevirt.hooks.v1alpha2.Callbacks/PreCloudInitIso",
		v1alpha3.Callbacks_Shutdown_FullMethodName:        "/kubevirt.hooks.v1alpha3.Callbacks/Shutdown",
	} {
		if got != want {
			t.Errorf("method %s, want %s", got, want)
		}
	}
}
