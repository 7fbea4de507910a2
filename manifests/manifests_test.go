// Package manifests holds the kustomize base, overlays, components and
// examples; its test renders every one in-process and decodes each object
// strictly against the real API types.
package manifests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/kubevirt-vhostuser/vhostuser/cni/config"
	"github.com/kubevirt-vhostuser/vhostuser/internal/images"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

const (
	namespace   = "vhostuser-system"
	bindingName = "vhostuser"

	installerName = "vhostuser-cni-installer"
	agentName     = "vhostuser-agent"
	imageTag      = "dev"
)

var (
	installerImage = images.DefaultRegistryPrefix + "/" + images.InstallerName + ":" + imageTag
	agentImage     = images.DefaultRegistryPrefix + "/" + images.AgentName + ":" + imageTag
	sidecarImage   = images.DefaultRegistryPrefix + "/" + images.SidecarName + ":" + imageTag
)

func strictDecoder(t *testing.T) runtime.Decoder {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, kubevirtv1.AddToScheme, nadv1.AddToScheme, monitoringv1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, s, s, kjson.SerializerOptions{Strict: true})
}

// render runs kustomize build on dir and strictly decodes every object.
func render(t *testing.T, dir string) []runtime.Object {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	if out := os.Getenv("VHOSTUSER_MANIFESTS_OUT"); out != "" {
		y, err := m.AsYaml()
		if err != nil {
			t.Fatalf("render %s: %v", dir, err)
		}
		name := strings.ReplaceAll(strings.TrimPrefix(dir, "overlays/"), "/", "-") + ".yaml"
		if err := os.MkdirAll(out, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, name), y, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dec := strictDecoder(t)
	var objs []runtime.Object
	for _, r := range m.Resources() {
		t.Logf("%s", r.CurId())
		b, err := r.MarshalJSON()
		if err != nil {
			t.Fatalf("%s: %v", r.CurId(), err)
		}
		obj, err := decodeStrict(dec, b)
		if err != nil {
			t.Errorf("%s does not decode strictly: %v", r.CurId(), err)
			continue
		}
		objs = append(objs, obj)
	}
	return objs
}

// decodeStrict decodes b with the strict decoder and then checks that
// nothing was lost on the way: KubeVirt's VirtualMachineInstanceSpec has its
// own UnmarshalJSON, under which the decoder's unknown-field check does not
// reach, so every field of the input must survive a round trip through the
// typed object.
func decodeStrict(dec runtime.Decoder, b []byte) (runtime.Object, error) {
	obj, _, err := dec.Decode(b, nil, nil)
	if err != nil {
		return nil, err
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var in, back any
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(out, &back); err != nil {
		return nil, err
	}
	if err := subset("", in, back); err != nil {
		return nil, fmt.Errorf("unknown or malformed field: %w", err)
	}
	return obj, nil
}

// subset reports the first value of in that out does not hold.
func subset(path string, in, out any) error {
	switch v := in.(type) {
	case map[string]any:
		o, ok := out.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: object became %T", path, out)
		}
		for k, iv := range v {
			ov, ok := o[k]
			if !ok {
				return fmt.Errorf("%s.%s is not a field of the type", path, k)
			}
			if err := subset(path+"."+k, iv, ov); err != nil {
				return err
			}
		}
	case []any:
		o, ok := out.([]any)
		if !ok || len(o) != len(v) {
			return fmt.Errorf("%s: list changed on decoding", path)
		}
		for i := range v {
			if err := subset(fmt.Sprintf("%s[%d]", path, i), v[i], o[i]); err != nil {
				return err
			}
		}
	default:
		if fmt.Sprint(in) != fmt.Sprint(out) {
			return fmt.Errorf("%s: %v decodes as %v", path, in, out)
		}
	}
	return nil
}

func find[T runtime.Object](objs []runtime.Object) []T {
	var out []T
	for _, o := range objs {
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// named returns the one object of type T with this name.
func named[T interface {
	runtime.Object
	GetName() string
}](t *testing.T, objs []runtime.Object, name string) T {
	t.Helper()
	var out []T
	for _, o := range find[T](objs) {
		if o.GetName() == name {
			out = append(out, o)
		}
	}
	if len(out) != 1 {
		var zero T
		t.Fatalf("want exactly one %T named %s, got %d", zero, name, len(out))
	}
	return out[0]
}

func one[T runtime.Object](t *testing.T, objs []runtime.Object) T {
	t.Helper()
	all := find[T](objs)
	if len(all) != 1 {
		var zero T
		t.Fatalf("want exactly one %T, got %d", zero, len(all))
	}
	return all[0]
}

// target is what one kustomization directory must render to: the node part
// (namespace, ServiceAccount, installer DaemonSet) or the KubeVirt binding
// registration, never both, so kubectl delete -k on a node overlay cannot
// delete the KubeVirt CR.
type target struct {
	node       bool
	cniBinDir  string
	shortDir   string
	privileged bool
	monitoring bool // the ServiceMonitor and recording-rules components

	binding  bool
	downward kubevirtv1.NetworkBindingDownwardAPIType
}

var targets = map[string]target{
	"overlays/default":             {node: true, cniBinDir: "/opt/cni/bin", shortDir: socketpath.DefaultShortDir},
	"overlays/openshift":           {node: true, cniBinDir: "/var/lib/cni/bin", shortDir: socketpath.DefaultShortDir, privileged: true},
	"overlays/custom-paths":        {node: true, cniBinDir: "/opt/k0s/cni/bin", shortDir: "/run/vhu"},
	"overlays/prometheus-operator": {node: true, cniBinDir: "/opt/cni/bin", shortDir: socketpath.DefaultShortDir, monitoring: true},
	"binding":                      {binding: true},
	"overlays/binding-device-info": {binding: true, downward: kubevirtv1.DeviceInfo},
}

// TestOverlays renders every overlay, the binding and the examples and
// checks what the cluster would get. make manifests runs it verbosely.
func TestOverlays(t *testing.T) {
	dirs, err := filepath.Glob("overlays/*")
	if err != nil {
		t.Fatal(err)
	}
	dirs = append(dirs, "binding")
	sort.Strings(dirs)
	if len(dirs) != len(targets) {
		t.Errorf("kustomizations on disk %v, expectations for %d: add the new overlay to the table", dirs, len(targets))
	}
	for _, dir := range dirs {
		t.Run(strings.TrimPrefix(dir, "overlays/"), func(t *testing.T) {
			want, ok := targets[dir]
			if !ok {
				t.Fatalf("no expectations for %s", dir)
			}
			objs := render(t, dir)
			kv := find[*kubevirtv1.KubeVirt](objs)
			if want.node {
				if len(kv) != 0 {
					t.Fatalf("a node overlay renders the KubeVirt CR: kubectl delete -k would delete KubeVirt")
				}
				checkNamespaces(t, objs)
				checkDaemonSet(t, objs, want)
			}
			if want.binding {
				if len(objs) != 1 {
					t.Fatalf("the binding registration renders %d objects, want the KubeVirt CR alone", len(objs))
				}
				checkBinding(t, objs, want)
			}
			if dir == "overlays/openshift" {
				rb := one[*rbacv1.RoleBinding](t, objs)
				var names []string
				for _, s := range rb.Subjects {
					names = append(names, s.Name)
				}
				sort.Strings(names)
				if strings.Join(names, ",") != agentName+","+installerName {
					t.Errorf("SCC RoleBinding subjects %v, want the installer's and the agent's ServiceAccounts", names)
				}
			}
			if want.node {
				checkAgent(t, objs, want)
			} else if n := len(find[*rbacv1.ClusterRoleBinding](objs)) + len(find[*rbacv1.ClusterRole](objs)) + len(find[*rbacv1.Role](objs)); n != 0 {
				t.Errorf("%d roles in a binding kustomization", n)
			}
		})
	}
	t.Run("examples", func(t *testing.T) {
		checkExamples(t, render(t, "examples"), targets["overlays/default"])
	})
}

func checkNamespaces(t *testing.T, objs []runtime.Object) {
	ns := one[*corev1.Namespace](t, objs)
	if ns.Name != namespace || ns.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Errorf("namespace %s labels %v: want %s, enforce=privileged (hostPath)", ns.Name, ns.Labels, namespace)
	}
	sa := named[*corev1.ServiceAccount](t, objs, installerName)
	if sa.Namespace != namespace || sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("ServiceAccount %s/%s must not mount a token", sa.Namespace, sa.Name)
	}
}

func args(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, a := range c.Args {
		k, v, _ := strings.Cut(strings.TrimPrefix(a, "-"), "=")
		m[k] = v
	}
	return m
}

func checkDaemonSet(t *testing.T, objs []runtime.Object, want target) {
	ds := named[*appsv1.DaemonSet](t, objs, installerName)
	spec := ds.Spec.Template.Spec
	if ds.Namespace != namespace {
		t.Errorf("DaemonSet namespace %q", ds.Namespace)
	}
	if spec.ServiceAccountName != installerName {
		t.Errorf("DaemonSet service account %q is not the one rendered", spec.ServiceAccountName)
	}
	tolerAll := false
	for _, tol := range spec.Tolerations {
		if tol.Operator == corev1.TolerationOpExists && tol.Key == "" && tol.Effect == "" {
			tolerAll = true
		}
	}
	if !tolerAll {
		t.Errorf("DaemonSet tolerations %+v do not tolerate every taint", spec.Tolerations)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	if c.Image != installerImage {
		t.Errorf("installer image %q, want %q (set in base/kustomization.yaml images:)", c.Image, installerImage)
	}
	a := args(c)
	if a["src"] != images.InstallerCNIBinary {
		t.Errorf("-src %q, but the image ships the plugin at %s", a["src"], images.InstallerCNIBinary)
	}
	for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
		if p == nil || p.Exec == nil {
			t.Fatalf("installer probes must exec the installer: %+v", p)
		}
		cmd := p.Exec.Command
		if len(cmd) != 3 || cmd[0] != images.InstallerEntrypoint || cmd[1] != "-probe" || cmd[2] != "-marker="+a["marker"] {
			t.Errorf("probe %q does not check the marker %q with %s", cmd, a["marker"], images.InstallerEntrypoint)
		}
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("installer root filesystem must be read-only")
	}
	if priv := sc != nil && sc.Privileged != nil && *sc.Privileged; priv != want.privileged {
		t.Errorf("privileged = %v, want %v", priv, want.privileged)
	}

	// Each flag path must be a mount of the hostPath the overlay expects.
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	hostPaths := map[string]string{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	for flag, wantHost := range map[string]string{"dst-dir": want.cniBinDir, "short-socket-dir": want.shortDir} {
		vol, ok := mounts[a[flag]]
		if !ok {
			t.Errorf("-%s=%s is not a volume mount", flag, a[flag])
			continue
		}
		if hostPaths[vol] != wantHost {
			t.Errorf("-%s mounts host %q, want %q", flag, hostPaths[vol], wantHost)
		}
	}
	if vol := mounts[filepath.Dir(a["node-config"])]; vol == "" || hostPaths[vol] != filepath.Dir(config.DefaultNodeConfigFile) || filepath.Base(a["node-config"]) != filepath.Base(config.DefaultNodeConfigFile) {
		t.Errorf("-node-config=%s must write %s on the host (mounted from %q)", a["node-config"], config.DefaultNodeConfigFile, hostPaths[vol])
	}
	// The node configuration names the same short socket directory the
	// installer creates, and the plugin accepts it.
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["VHOSTUSER_SHORT_SOCKET_DIR"] != want.shortDir {
		t.Errorf("VHOSTUSER_SHORT_SOCKET_DIR %q, want the short socket directory's host path %q", env["VHOSTUSER_SHORT_SOCKET_DIR"], want.shortDir)
	}
	nb, _ := json.Marshal(map[string]string{"kubeletRoot": env["VHOSTUSER_KUBELET_ROOT"], "shortSocketDir": env["VHOSTUSER_SHORT_SOCKET_DIR"], "ovsdbSocket": env["VHOSTUSER_OVSDB_SOCKET"]})
	if _, err := config.ParseNode(nb); err != nil {
		t.Errorf("the node configuration of this overlay is refused by the plugin: %v", err)
	}
	if len(hostPaths) != 3 {
		t.Errorf("host paths %v: the installer needs the CNI bin, short socket and node configuration directories only", hostPaths)
	}
	if vol := mounts[filepath.Dir(a["marker"])]; vol == "" || hostPaths[vol] != "" {
		t.Errorf("the marker %s must live on a pod-local volume, not the host", a["marker"])
	}
	layout := socketpath.Defaults()
	layout.ShortDir = want.shortDir
	if err := layout.Validate(); err != nil {
		t.Errorf("short socket directory of this overlay: %v", err)
	}
}

func checkBinding(t *testing.T, objs []runtime.Object, want target) {
	kv := one[*kubevirtv1.KubeVirt](t, objs)
	if kv.Namespace != "kubevirt" || kv.Name != "kubevirt" {
		t.Errorf("KubeVirt CR %s/%s: the binding must patch the installed CR kubevirt/kubevirt", kv.Namespace, kv.Name)
	}
	if kv.Spec.Configuration.NetworkConfiguration == nil {
		t.Fatalf("KubeVirt CR has no network configuration")
	}
	b, ok := kv.Spec.Configuration.NetworkConfiguration.Binding[bindingName]
	if !ok {
		t.Fatalf("binding %q not registered", bindingName)
	}
	if b.SidecarImage != sidecarImage {
		t.Errorf("sidecarImage %q, want %q (from the images list)", b.SidecarImage, sidecarImage)
	}
	if b.DomainAttachmentType != "" {
		t.Errorf("domainAttachmentType %q: the sidecar adds the whole interface, KubeVirt must add none", b.DomainAttachmentType)
	}
	if b.Migration == nil {
		t.Errorf("migration is not declared: KubeVirt would refuse to live-migrate these VMs")
	}
	if b.DownwardAPI != want.downward {
		t.Errorf("downwardAPI %q, want %q", b.DownwardAPI, want.downward)
	}
	if b.ComputeResourceOverhead == nil {
		t.Fatalf("computeResourceOverhead is not set")
	}
	mem := b.ComputeResourceOverhead.Requests[corev1.ResourceMemory]
	if mem.Cmp(resource.MustParse(sidecarMeasuredRSS)) <= 0 {
		t.Errorf("computeResourceOverhead memory %s does not exceed the measured sidecar RSS %s", mem.String(), sidecarMeasuredRSS)
	}
}

func checkExamples(t *testing.T, objs []runtime.Object, defaults target) {
	nads := map[string]*nadv1.NetworkAttachmentDefinition{}
	for _, n := range find[*nadv1.NetworkAttachmentDefinition](objs) {
		nads[n.Name] = n
		raw := []byte(n.Spec.Config)
		conf, err := config.Parse(raw)
		if err != nil {
			t.Errorf("NAD %s: the plugin rejects its config: %v", n.Name, err)
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&config.NetConf{}); err != nil {
			t.Errorf("NAD %s config has a field the plugin does not know: %v", n.Name, err)
		}
		if conf.Type != "vhostuser" || conf.Name != n.Name {
			t.Errorf("NAD %s: type %q name %q", n.Name, conf.Type, conf.Name)
		}
		if conf.Layout.ShortDir != defaults.shortDir {
			t.Errorf("NAD %s shortSocketDir %q differs from the installer's %q", n.Name, conf.Layout.ShortDir, defaults.shortDir)
		}
	}
	if len(nads) == 0 {
		t.Fatal("no NetworkAttachmentDefinition example")
	}
	vm := one[*kubevirtv1.VirtualMachine](t, objs)
	spec := vm.Spec.Template.Spec
	if hp := spec.Domain.Memory; hp == nil || hp.Hugepages == nil || hp.Hugepages.PageSize != "2Mi" {
		t.Errorf("example VM must use 2Mi hugepages: %+v", spec.Domain.Memory)
	}
	networks := map[string]kubevirtv1.Network{}
	for _, n := range spec.Networks {
		networks[n.Name] = n
	}
	found := 0
	for _, iface := range spec.Domain.Devices.Interfaces {
		if iface.Binding == nil || iface.Binding.Name != bindingName {
			continue
		}
		found++
		n, ok := networks[iface.Name]
		if !ok || n.Multus == nil {
			t.Errorf("interface %s uses the vhostuser binding but not on a Multus network", iface.Name)
			continue
		}
		if nads[n.Multus.NetworkName] == nil {
			t.Errorf("interface %s: network %s is not an example NAD", iface.Name, n.Multus.NetworkName)
		}
		if _, err := socketpath.ComputeSocketForNetwork(n.Name); err != nil {
			t.Errorf("network %s: %v", n.Name, err)
		}
	}
	if found == 0 {
		t.Error("example VM has no vhostuser interface")
	}
}

// TestStrictDecodingRejects proves the decoder used above is strict: a typo
// in a field name fails instead of being silently dropped.
func TestStrictDecodingRejects(t *testing.T) {
	tests := map[string]string{
		"DaemonSet typo": `{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"x"},"spec":{"template":{"spec":{"containers":[{"name":"c","imagePullPolcy":"Always"}]}}}}`,
		"KubeVirt typo":  `{"apiVersion":"kubevirt.io/v1","kind":"KubeVirt","metadata":{"name":"x"},"spec":{"configuration":{"network":{"binding":{"vhostuser":{"sidecarImg":"x"}}}}}}`,
		"NAD typo":       `{"apiVersion":"k8s.cni.cncf.io/v1","kind":"NetworkAttachmentDefinition","metadata":{"name":"x"},"spec":{"configg":"{}"}}`,
		"VM typo":        `{"apiVersion":"kubevirt.io/v1","kind":"VirtualMachine","metadata":{"name":"x"},"spec":{"template":{"spec":{"domain":{"memory":{"hugepage":{"pageSize":"2Mi"}},"devices":{}}}}}}`,
		"VMI typo":       `{"apiVersion":"kubevirt.io/v1","kind":"VirtualMachineInstance","metadata":{"name":"x"},"spec":{"domain":{"devices":{"interfaces":[{"name":"a","bindng":{"name":"vhostuser"}}]}}}}`,
		"unknown kind":   `{"apiVersion":"example.invalid/v1","kind":"Widget","metadata":{"name":"x"}}`,
	}
	dec := strictDecoder(t)
	for name, doc := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeStrict(dec, []byte(doc)); err == nil {
				t.Errorf("decoded without error")
			}
		})
	}
}

// TestBrokenOverlayFails checks that a kustomize error reaches the test.
func TestBrokenOverlayFails(t *testing.T) {
	dir := t.TempDir()
	base, err := filepath.Abs("base")
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(dir, base)
	if err != nil {
		t.Fatal(err)
	}
	k := fmt.Sprintf("resources:\n  - %s\npatches:\n  - target:\n      kind: DaemonSet\n    patch: |-\n      - op: replace\n        path: /spec/template/spec/volumes/9/hostPath/path\n        value: /x\n", rel)
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir); err == nil {
		t.Error("a patch of a missing volume rendered without error")
	}
}

// sidecarMeasuredRSS is the sidecar's peak RSS (VmHWM) behind the
// computeResourceOverhead in base/kubevirt-binding.yaml (see the comment
// there for the measurement); the overhead must stay above it.
const sidecarMeasuredRSS = "15411Ki" // 15.05 MiB
