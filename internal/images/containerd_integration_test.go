//go:build integration

package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

// TestRealImagesRunInContainerd imports both archives into a private
// containerd with ctr (what kind load image-archive does), then runs them
// with runc: the installer installs the plugin into a host directory, the
// sidecar runs as uid 107.
func TestRealImagesRunInContainerd(t *testing.T) {
	bin := os.Getenv("VHOSTUSER_BIN")
	if bin == "" {
		t.Fatal("VHOSTUSER_BIN is not set: run through make integration (it builds bin/ first)")
	}
	for _, tool := range []string{"containerd", "ctr", "runc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run make deps (hack/install-deps.sh installs containerd)", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Fatal("needs root to run containerd")
	}
	dir, err := os.MkdirTemp("", "vhu-ctr-")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "containerd.sock")
	cfg := fmt.Sprintf("version = 2\nroot = %q\nstate = %q\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = %q\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	daemon := exec.Command("containerd", "--config", filepath.Join(dir, "config.toml"))
	daemon.Stdout, daemon.Stderr = logf, logf
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		daemon.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { daemon.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			daemon.Process.Kill()
			<-done
		}
		logf.Close()
		// runc and the native snapshotter may leave mounts under dir.
		exec.Command("umount", "-R", filepath.Join(dir, "state")).Run()
		exec.Command("umount", "-R", filepath.Join(dir, "root")).Run()
		os.RemoveAll(dir)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctr := func(args ...string) (string, error) {
		full := append([]string{"--address", sock, "-n", "k8s.io"}, args...)
		out, err := exec.CommandContext(ctx, "ctr", full...).CombinedOutput()
		return string(out), err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := ctr("version"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			t.Fatalf("containerd did not come up:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}

	meta := Meta{Version: "v0.0.0-ctr", Revision: "it", Source: "https://example.invalid", Created: time.Unix(1700000000, 0)}
	refs := map[string]string{}
	for _, spec := range Project(bin) {
		ref := DefaultRegistryPrefix + "/" + spec.Name + ":ctr"
		archive := filepath.Join(dir, spec.Name+".tar")
		res, err := BuildArchive(spec, meta, ref, archive)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := ctr("images", "import", "--snapshotter", "native", archive); err != nil {
			t.Fatalf("ctr images import %s: %v\n%s", spec.Name, err, out)
		}
		out, err := ctr("images", "ls", "name=="+ref)
		if err != nil || !strings.Contains(out, res.Digest) {
			t.Fatalf("containerd does not list %s with digest %s: %v\n%s", ref, res.Digest, err, out)
		}
		refs[spec.Name] = ref
	}

	t.Run("installer installs the plugin", func(t *testing.T) {
		host := filepath.Join(dir, "host-cni-bin")
		short := filepath.Join(dir, "host-short")
		for _, d := range []string{host, short} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		out, err := ctr("run", "--rm", "--snapshotter", "native",
			"--mount", "type=bind,src="+host+",dst=/host/cni/bin,options=rbind:rw",
			"--mount", "type=bind,src="+short+",dst=/host/short-socket-dir,options=rbind:rw",
			refs[InstallerName], "vhu-installer-it",
			InstallerEntrypoint, "-dst-dir=/host/cni/bin", "-short-socket-dir=/host/short-socket-dir", "-one-shot")
		if err != nil {
			t.Fatalf("installer container: %v\n%s", err, out)
		}
		want, err := os.ReadFile(filepath.Join(bin, "vhostuser"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(host, "vhostuser"))
		if err != nil {
			t.Fatalf("plugin not installed on the host: %v\n%s", err, out)
		}
		sum := sha256.Sum256(want)
		if string(got) != string(want) || !strings.Contains(out, hex.EncodeToString(sum[:])) {
			t.Errorf("installed plugin differs from bin/vhostuser, or the log lacks its digest:\n%s", out)
		}
	})

	t.Run("installer runs as the DaemonSet runs it", func(t *testing.T) {
		daemonSetLifecycle(t, ctr, dir, bin, refs[InstallerName])
	})

	t.Run("sidecar runs as uid 107", func(t *testing.T) {
		// /nonexistent needs root to create: uid 107 must be refused.
		out, _ := ctr("run", "--rm", "--snapshotter", "native", refs[SidecarName], "vhu-sidecar-it",
			SidecarEntrypoint, "-socket-dir", "/nonexistent")
		if !strings.Contains(out, "permission denied") {
			t.Errorf("the sidecar was not refused root-only access, so it does not run as uid 107:\n%s", out)
		}
		out, err := ctr("run", "--rm", "--snapshotter", "native", refs[SidecarName], "vhu-sidecar-version", SidecarEntrypoint, "-version")
		if err != nil || strings.TrimSpace(out) == "" {
			t.Errorf("sidecar -version in the image: %v\n%s", err, out)
		}
	})
}

// daemonSetLifecycle runs the installer image with the container args,
// volume mounts, probe command and read-only root of the DaemonSet in
// manifests/base: a renamed flag or a wrong path in the manifest fails here.
func daemonSetLifecycle(t *testing.T, ctr func(...string) (string, error), dir, bin, ref string) {
	raw, err := os.ReadFile("../../manifests/base/daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ds appsv1.DaemonSet
	if err := yaml.UnmarshalStrict(raw, &ds); err != nil {
		t.Fatalf("manifests/base/daemonset.yaml: %v", err)
	}
	c := ds.Spec.Template.Spec.Containers[0]
	args := []string{"run", "-d", "--read-only", "--snapshotter", "native"}
	for i, m := range c.VolumeMounts {
		src := filepath.Join(dir, fmt.Sprintf("ds-volume-%d", i))
		if err := os.Mkdir(src, 0o755); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--mount", "type=bind,src="+src+",dst="+m.MountPath+",options=rbind:rw")
	}
	const id = "vhu-ds-it"
	args = append(args, ref, id, InstallerEntrypoint)
	args = append(args, c.Args...)
	if out, err := ctr(args...); err != nil {
		t.Fatalf("start installer with the DaemonSet args %q: %v\n%s", c.Args, err, out)
	}
	t.Cleanup(func() {
		ctr("task", "kill", "-s", "SIGKILL", id)
		ctr("task", "rm", "-f", id)
		ctr("container", "rm", id)
	})

	probe := append([]string{"task", "exec", "--exec-id", "probe"}, id)
	probe = append(probe, c.ReadinessProbe.Exec.Command...)
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := ctr(probe...)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			logs, _ := ctr("task", "ls")
			t.Fatalf("readiness probe %q never passed: %v\n%s\n%s", c.ReadinessProbe.Exec.Command, err, out, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The installed plugin is where the cni-bin volume's mount points.
	var cniDir string
	for i, m := range c.VolumeMounts {
		if m.Name == "cni-bin" {
			cniDir = filepath.Join(dir, fmt.Sprintf("ds-volume-%d", i))
		}
	}
	want, _ := os.ReadFile(filepath.Join(bin, "vhostuser"))
	got, err := os.ReadFile(filepath.Join(cniDir, "vhostuser"))
	if err != nil || string(got) != string(want) {
		t.Fatalf("plugin not installed into the cni-bin volume: %v", err)
	}
	// Removing the binary from the node must fail the probe (and so the liveness check).
	if err := os.Remove(filepath.Join(cniDir, "vhostuser")); err != nil {
		t.Fatal(err)
	}
	if out, err := ctr(append([]string{"task", "exec", "--exec-id", "probe2"}, append([]string{id}, c.LivenessProbe.Exec.Command...)...)...); err == nil {
		t.Errorf("liveness probe passed with the plugin removed from the node:\n%s", out)
	}
	if out, err := ctr("task", "kill", "-s", "SIGTERM", id); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, out)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		out, _ := ctr("task", "ls")
		if !strings.Contains(out, id) || strings.Contains(out, "STOPPED") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("installer did not stop on SIGTERM:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A clean stop drops readiness: the marker is gone from its volume.
	for i, m := range c.VolumeMounts {
		for _, a := range c.Args {
			if marker, ok := strings.CutPrefix(a, "-marker="); ok && filepath.Dir(marker) == m.MountPath {
				left := filepath.Join(dir, fmt.Sprintf("ds-volume-%d", i), filepath.Base(marker))
				if _, err := os.Stat(left); !os.IsNotExist(err) {
					t.Errorf("readiness marker still there after SIGTERM: %v", err)
				}
				return
			}
		}
	}
	t.Errorf("no volume mount holds the -marker of the DaemonSet args %q", c.Args)
}
