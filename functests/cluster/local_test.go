package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The tests named TestLocalCluster* run against the cluster of make
// cluster-up (hack/cluster) on this machine: they also look at the nodes
// directly (CNI state, OVS), so they need its state directory. Those about
// one node pin their pods and VMs to node 1 (this machine's namespaces);
// the migration tests use both.
//
// Environment (make functest-cluster sets all three):
//
//	KUBECONFIG               the cluster (else the tests skip)
//	VHOSTUSER_CLUSTER_STATE  cluster-up's state directory (required)
//	PATH                     kubectl of cluster-up first (the state directory's bin/)

// The nodes of make cluster-up (hack/cluster/env.sh, node_env).
const (
	node1 = "vhostuser-node"
	node2 = "vhostuser-node2"
)

// nodeImage is the static busybox image cluster-up imports (hack/cluster/env.sh).
const nodeImage = "localhost/vhostuser-cluster/busybox:1"

// defaultNetwork is the name of cluster-up's default CNI network; host-local
// keeps one file per allocated address under <state>/cni/ipam/<name>/.
const defaultNetwork = "vhostuser-cluster"

type local struct {
	t     *testing.T
	state string
	ns    string
}

func setupLocal(t *testing.T) *local {
	t.Helper()
	if os.Getenv("KUBECONFIG") == "" {
		t.Skip("KUBECONFIG is not set: run make cluster-up, then make functest-cluster")
	}
	state := os.Getenv("VHOSTUSER_CLUSTER_STATE")
	if state == "" {
		t.Fatal("VHOSTUSER_CLUSTER_STATE is not set: these tests inspect the node of make cluster-up; run them with make functest-cluster")
	}
	if _, err := os.Stat(filepath.Join(state, "up-complete")); err != nil {
		t.Fatalf("%s is not a completed cluster-up (%v): run make cluster-up", state, err)
	}
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Fatalf("kubectl not in PATH: put %s/bin first: %v", state, err)
	}
	l := &local{t: t, state: state, ns: "vhostuser-local-" + nonce(t)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l.kubectl(ctx, "create", "namespace", l.ns)
	// The default service account appears asynchronously; pods need it.
	l.eventually(ctx, "default service account", func() error {
		_, err := l.try(ctx, "-n", l.ns, "get", "serviceaccount", "default")
		return err
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if out, err := l.try(ctx, "delete", "namespace", l.ns, "--wait", "--timeout", "90s"); err != nil {
			t.Errorf("deleting namespace %s: %v: %s", l.ns, err, out)
		}
	})
	return l
}

func nonce(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func (l *local) try(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "kubectl", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func (l *local) kubectl(ctx context.Context, args ...string) string {
	l.t.Helper()
	out, err := l.try(ctx, args...)
	if err != nil {
		l.t.Fatal(err)
	}
	return out
}

func (l *local) apply(ctx context.Context, obj any) {
	l.t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		l.t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "kubectl", "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(string(b))
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("kubectl apply: %v: %s\n%s", err, out, b)
	}
}

// eventually polls f until it succeeds or ctx ends.
func (l *local) eventually(ctx context.Context, what string, f func() error) {
	l.t.Helper()
	for {
		err := f()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			l.t.Fatalf("%s: %v (last error: %v)", what, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// busyboxPod is a pod of the node image running script under busybox sh,
// on node 1.
func busyboxPod(ns, name string, annotations map[string]string, script string) map[string]any {
	return map[string]any{
		"apiVersion": "v1",
		"kind":       "Pod",
		"metadata":   map[string]any{"name": name, "namespace": ns, "annotations": annotations},
		"spec": map[string]any{
			"terminationGracePeriodSeconds": 1,
			"nodeSelector":                  onNode(node1),
			"containers": []any{map[string]any{
				"name":            "main",
				"image":           nodeImage,
				"imagePullPolicy": "Never",
				"command":         []string{"/bin/busybox", "sh", "-c", script},
			}},
		},
	}
}

// nodes lists the nodes make cluster-up brought up.
func (l *local) nodes() []string {
	b, err := os.ReadFile(filepath.Join(l.state, "nodes"))
	if err == nil && strings.TrimSpace(string(b)) == "2" {
		return []string{node1, node2}
	}
	return []string{node1}
}

// nodeDir is node's directory in the state directory (hack/cluster/env.sh
// node_env: NODE_DIR).
func (l *local) nodeDir(node string) string {
	if node == node2 {
		return filepath.Join(l.state, "node2")
	}
	return l.state
}

// onNode is a nodeSelector for node.
func onNode(node string) map[string]any {
	return map[string]any{"kubernetes.io/hostname": node}
}

// waitRunning waits until the pod is Ready and returns how long that took
// from the call.
func (l *local) waitRunning(ctx context.Context, name string) time.Duration {
	l.t.Helper()
	start := time.Now()
	if out, err := l.try(ctx, "-n", l.ns, "wait", "--for", "condition=Ready", "--timeout", "120s", "pod/"+name); err != nil {
		ev, _ := l.try(ctx, "-n", l.ns, "get", "events", "--field-selector", "involvedObject.name="+name)
		l.t.Fatalf("pod %s not Ready: %v: %s\nevents:\n%s", name, err, out, ev)
	}
	return time.Since(start)
}

func (l *local) jsonpath(ctx context.Context, expr string, args ...string) string {
	l.t.Helper()
	return strings.TrimSpace(l.kubectl(ctx, append(args, "-o", "jsonpath="+expr)...))
}

// TestLocalClusterPlainPod: on each node, a pod on the default network
// runs, reaches the API server through its Service (the node's kube-proxy),
// and its removal releases its address (CNI DEL ran under the kubelet); the
// pod on node 2 reaches the pod on node 1.
func TestLocalClusterPlainPod(t *testing.T) {
	l := setupLocal(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	ips := map[string]string{}
	for _, node := range l.nodes() {
		pod := "plain-" + strings.TrimPrefix(node, "vhostuser-")
		marker := "ready-" + nonce(t)
		obj := busyboxPod(l.ns, pod, nil, "echo "+marker+"; exec sleep inf")
		obj["spec"].(map[string]any)["nodeSelector"] = onNode(node)
		l.apply(ctx, obj)
		took := l.waitRunning(ctx, pod)
		t.Logf("%s: pod Running %.1f s after apply", node, took.Seconds())

		l.eventually(ctx, "pod log", func() error {
			out, err := l.try(ctx, "-n", l.ns, "logs", pod)
			if err != nil {
				return err
			}
			if !strings.Contains(out, marker) {
				return fmt.Errorf("log %q lacks %q", out, marker)
			}
			return nil
		})

		podIP := l.jsonpath(ctx, "{.status.podIP}", "-n", l.ns, "get", "pod", pod)
		if podIP == "" {
			t.Fatalf("%s: pod has no IP", node)
		}
		ips[node] = podIP
		addrs := l.kubectl(ctx, "-n", l.ns, "exec", pod, "--", "/bin/busybox", "ip", "-4", "addr", "show", "eth0")
		if !strings.Contains(addrs, "inet "+podIP+"/") {
			t.Fatalf("%s: pod IP %s is not on the pod's eth0:\n%s", node, podIP, addrs)
		}
		lease := filepath.Join(l.nodeDir(node), "cni", "ipam", defaultNetwork, podIP)
		if _, err := os.Stat(lease); err != nil {
			t.Fatalf("%s: host-local has no lease for the pod's address: %v", node, err)
		}

		// The kubernetes Service through the node's kube-proxy: Go's TLS
		// server answers a plain HTTP request with this sentence, which
		// nothing else on this machine's outer network says.
		svc := l.jsonpath(ctx, "{.spec.clusterIP}", "get", "service", "kubernetes", "-n", "default")
		out := l.kubectl(ctx, "-n", l.ns, "exec", pod, "--", "/bin/busybox", "sh", "-c",
			`printf 'GET /version HTTP/1.0\r\n\r\n' | /bin/busybox nc -w 5 `+svc+` 443`)
		if !strings.Contains(out, "Client sent an HTTP request to an HTTPS server") {
			t.Fatalf("%s: service %s:443 from the pod did not reach kube-apiserver; answer:\n%s", node, svc, out)
		}
		defer func() {
			start := time.Now()
			l.kubectl(ctx, "-n", l.ns, "delete", "pod", pod, "--wait", "--timeout", "60s")
			t.Logf("%s: pod deleted in %.1f s", node, time.Since(start).Seconds())
			l.eventually(ctx, "address released by CNI DEL", func() error {
				if _, err := os.Stat(lease); err == nil {
					return fmt.Errorf("%s still exists", lease)
				}
				return nil
			})
		}()
	}
	// The pod network between the nodes (virt-handler's migrations use it).
	if len(ips) == 2 {
		out, err := l.try(ctx, "-n", l.ns, "exec", "plain-node2", "--", "/bin/busybox", "ping", "-c", "3", "-W", "2", ips[node1])
		if err != nil || !strings.Contains(out, "bytes from "+ips[node1]) {
			t.Errorf("pod on %s to pod %s on %s: %v\n%s", node2, ips[node1], node1, err, out)
		}
	}
}
