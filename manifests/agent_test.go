package manifests

import (
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubevirt-vhostuser/vhostuser/agent/metrics"
	"github.com/kubevirt-vhostuser/vhostuser/cni/config"
	"github.com/kubevirt-vhostuser/vhostuser/internal/images"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// agentPort is the metrics port the agent's flag, the container port, the
// Service and the scrape annotations must all name.
const agentPort = 9731

// checkAgent checks the node agent's DaemonSet, ServiceAccount, RBAC and
// Service, and with want.monitoring the ServiceMonitor and recording rules.
func checkAgent(t *testing.T, objs []runtime.Object, want target) {
	t.Helper()
	ds := named[*appsv1.DaemonSet](t, objs, agentName)
	spec := ds.Spec.Template.Spec
	if ds.Namespace != namespace || spec.ServiceAccountName != agentName {
		t.Errorf("agent DaemonSet %s/%s with service account %q", ds.Namespace, ds.Name, spec.ServiceAccountName)
	}
	// The agent reads the API: its account must mount a token (the
	// installer's must not).
	sa := named[*corev1.ServiceAccount](t, objs, agentName)
	if sa.AutomountServiceAccountToken != nil && !*sa.AutomountServiceAccountToken {
		t.Errorf("agent ServiceAccount disables its token; the informers need it")
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("agent: %d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	if c.Image != agentImage {
		t.Errorf("agent image %q, want %q", c.Image, agentImage)
	}
	if len(c.Command) != 0 {
		t.Errorf("agent command %q overrides the image's entrypoint %s", c.Command, images.AgentEntrypoint)
	}
	a := args(c)
	if a["listen"] != ":9731" {
		t.Errorf("-listen=%q, want :%d", a["listen"], agentPort)
	}
	var nodeEnv bool
	for _, e := range c.Env {
		if e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName" {
			nodeEnv = true
		}
	}
	if !nodeEnv {
		t.Errorf("agent env %+v: NODE_NAME must come from the downward API's spec.nodeName (the informers' field selector)", c.Env)
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != agentPort || c.Ports[0].Name != "metrics" {
		t.Errorf("agent ports %+v, want metrics %d", c.Ports, agentPort)
	}
	ann := ds.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != "9731" || ann["prometheus.io/path"] != "/metrics" {
		t.Errorf("agent pod annotations %v: Prometheus' annotation discovery would miss it", ann)
	}
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != "metrics" {
		t.Errorf("agent readiness probe %+v, want GET /healthz on metrics", p)
	}
	if c.Resources.Limits.Memory().IsZero() {
		t.Errorf("agent has no memory limit")
	}

	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("agent root filesystem must be read-only")
	}
	if priv := sc != nil && sc.Privileged != nil && *sc.Privileged; priv != want.privileged {
		t.Errorf("agent privileged = %v, want %v", priv, want.privileged)
	}
	if sc == nil || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("agent capabilities %+v, want all dropped and none added", sc)
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Errorf("agent shares a host namespace")
	}

	// Every host path at its own path (node.json and OVS name host paths),
	// and no other host path.
	layout := socketpath.Defaults()
	layout.ShortDir = want.shortDir
	wantHost := map[string]bool{ // host path: writable
		"/var/run/openvswitch":                     false,
		want.shortDir:                              true,
		filepath.Join(layout.KubeletRoot, "pods"):  true,
		filepath.Dir(config.DefaultNodeConfigFile): false,
	}
	vols := map[string]string{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			vols[v.Name] = v.HostPath.Path
		}
	}
	got := map[string]bool{}
	for _, m := range c.VolumeMounts {
		host, ok := vols[m.Name]
		if !ok {
			continue
		}
		if m.MountPath != host {
			t.Errorf("agent mounts host %s at %s: mount it at its host path", host, m.MountPath)
		}
		got[host] = !m.ReadOnly
		if host == filepath.Join(layout.KubeletRoot, "pods") && (m.MountPropagation == nil || *m.MountPropagation != corev1.MountPropagationHostToContainer) {
			t.Errorf("agent mounts %s without HostToContainer propagation: pod volumes mounted later would look empty", host)
		}
	}
	if !reflect.DeepEqual(got, wantHost) {
		t.Errorf("agent host paths (path: writable) %v, want %v", got, wantHost)
	}

	svc := named[*corev1.Service](t, objs, agentName)
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("agent Service clusterIP %q: headless, so each node's agent is scraped", svc.Spec.ClusterIP)
	}
	if !subsetOf(svc.Spec.Selector, ds.Spec.Template.Labels) {
		t.Errorf("agent Service selector %v does not select the agent pods %v", svc.Spec.Selector, ds.Spec.Template.Labels)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != agentPort || svc.Spec.Ports[0].TargetPort.String() != "metrics" {
		t.Errorf("agent Service ports %+v", svc.Spec.Ports)
	}

	checkAgentRBAC(t, objs)
	if want.monitoring {
		checkMonitoring(t, objs, svc)
	} else if n := len(find[*monitoringv1.ServiceMonitor](objs)) + len(find[*monitoringv1.PrometheusRule](objs)); n != 0 {
		t.Errorf("%d Prometheus Operator objects in an overlay without its CRDs", n)
	}
}

// checkAgentRBAC: the least that works, exactly.
func checkAgentRBAC(t *testing.T, objs []runtime.Object) {
	t.Helper()
	role := named[*rbacv1.ClusterRole](t, objs, agentName)
	var rules []string
	for _, r := range role.Rules {
		if len(r.ResourceNames) != 0 || len(r.NonResourceURLs) != 0 {
			t.Errorf("agent rule %+v: unexpected resourceNames or URLs", r)
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				v := slices.Clone(r.Verbs)
				sort.Strings(v)
				rules = append(rules, g+"/"+res+":"+strings.Join(v, ","))
			}
		}
	}
	sort.Strings(rules)
	wantRules := []string{
		"/events:create,patch", // client-go's broadcaster creates, then patches a repeat's count
		"/pods:get,list,watch",
		"kubevirt.io/virtualmachineinstances:get,list,watch",
	}
	if !slices.Equal(rules, wantRules) {
		t.Errorf("agent ClusterRole rules %v, want exactly %v", rules, wantRules)
	}
	crb := named[*rbacv1.ClusterRoleBinding](t, objs, agentName)
	if crb.RoleRef.Kind != "ClusterRole" || crb.RoleRef.Name != agentName ||
		len(crb.Subjects) != 1 || crb.Subjects[0].Kind != "ServiceAccount" || crb.Subjects[0].Name != agentName || crb.Subjects[0].Namespace != namespace {
		t.Errorf("agent ClusterRoleBinding %+v %+v", crb.RoleRef, crb.Subjects)
	}
	if n := len(find[*rbacv1.ClusterRole](objs)); n != 1 {
		t.Errorf("%d ClusterRoles, want the agent's alone", n)
	}
}

// kubevirtNetworkSeries are KubeVirt's per-VMI network counters
// (kubevirt.io/kubevirt v1.8.4,
// pkg/monitoring/metrics/virt-handler/domainstats/network_metrics.go).
var kubevirtNetworkSeries = []string{
	"kubevirt_vmi_network_receive_bytes_total",
	"kubevirt_vmi_network_transmit_bytes_total",
	"kubevirt_vmi_network_receive_packets_total",
	"kubevirt_vmi_network_transmit_packets_total",
	"kubevirt_vmi_network_receive_packets_dropped_total",
	"kubevirt_vmi_network_transmit_packets_dropped_total",
	"kubevirt_vmi_network_receive_errors_total",
	"kubevirt_vmi_network_transmit_errors_total",
}

var ruleExpr = regexp.MustCompile(`^sum by \(namespace, name, interface, node\) \((vhostuser_[a-z_]+)\{name!=""\}\)$`)

func checkMonitoring(t *testing.T, objs []runtime.Object, svc *corev1.Service) {
	t.Helper()
	sm := named[*monitoringv1.ServiceMonitor](t, objs, agentName)
	if sm.Namespace != namespace || !subsetOf(sm.Spec.Selector.MatchLabels, svc.Labels) {
		t.Errorf("ServiceMonitor %s/%s selector %v does not select the agent Service (labels %v)", sm.Namespace, sm.Name, sm.Spec.Selector.MatchLabels, svc.Labels)
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != svc.Spec.Ports[0].Name || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v, want the Service's %q port, /metrics", sm.Spec.Endpoints, svc.Spec.Ports[0].Name)
	}

	pr := one[*monitoringv1.PrometheusRule](t, objs)
	sources := metrics.TrafficSeries()
	mapped := map[string]string{}
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			m := ruleExpr.FindStringSubmatch(r.Expr.String())
			if m == nil {
				t.Errorf("rule %s: expr %q is not a sum by KubeVirt's labels of one of our series", r.Record, r.Expr.String())
				continue
			}
			if !slices.Contains(sources, m[1]) {
				t.Errorf("rule %s reads %s, which the agent does not export (%v)", r.Record, m[1], sources)
			}
			// Same counter, other prefix.
			if strings.TrimPrefix(m[1], "vhostuser_") != strings.TrimPrefix(r.Record, "kubevirt_") {
				t.Errorf("rule %s records from %s: a different counter", r.Record, m[1])
			}
			mapped[r.Record] = m[1]
		}
	}
	var records []string
	for k := range mapped {
		records = append(records, k)
	}
	sort.Strings(records)
	wantRecords := slices.Clone(kubevirtNetworkSeries)
	sort.Strings(wantRecords)
	if !slices.Equal(records, wantRecords) {
		t.Errorf("recorded %v, want KubeVirt's %v", records, wantRecords)
	}
}

func subsetOf(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}
