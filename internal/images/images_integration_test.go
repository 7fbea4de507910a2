//go:build integration

package images

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestRealImagesLoadWithSkopeo builds both images twice from the real
// binaries of make build and has skopeo, an independent OCI implementation,
// read and copy the archives.
func TestRealImagesLoadWithSkopeo(t *testing.T) {
	bin := os.Getenv("VHOSTUSER_BIN")
	if bin == "" {
		t.Fatal("VHOSTUSER_BIN is not set: run through make integration (it builds bin/ first)")
	}
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Fatal("skopeo not found: run make deps (hack/install-deps.sh installs it)")
	}
	meta := Meta{Version: "v0.0.0-it", Revision: "it", Source: "https://example.invalid", Created: time.Unix(1700000000, 0)}
	for _, spec := range Project(bin) {
		t.Run(spec.Name, func(t *testing.T) {
			dir := t.TempDir()
			ref := DefaultRegistryPrefix + "/" + spec.Name + ":it"
			a1, a2 := filepath.Join(dir, "1.tar"), filepath.Join(dir, "2.tar")
			r1, err := BuildArchive(spec, meta, ref, a1)
			if err != nil {
				t.Fatal(err)
			}
			r2, err := BuildArchive(spec, meta, ref, a2)
			if err != nil {
				t.Fatal(err)
			}
			b1, _ := os.ReadFile(a1)
			b2, _ := os.ReadFile(a2)
			if r1.Digest != r2.Digest || !bytes.Equal(b1, b2) {
				t.Fatalf("two builds differ: %s vs %s", r1.Digest, r2.Digest)
			}

			out, err := exec.Command(skopeo, "inspect", "oci-archive:"+a1).Output()
			if err != nil {
				t.Fatalf("skopeo inspect: %v", err)
			}
			var info struct {
				Digest       string
				Architecture string
				Labels       map[string]string
			}
			if err := json.Unmarshal(out, &info); err != nil {
				t.Fatalf("skopeo inspect output: %v\n%s", err, out)
			}
			if info.Digest != r1.Digest {
				t.Errorf("skopeo sees digest %s, we built %s", info.Digest, r1.Digest)
			}
			if info.Labels[LabelVersion] != "v0.0.0-it" {
				t.Errorf("skopeo sees labels %v", info.Labels)
			}
			if out, err := exec.Command(skopeo, "copy", "oci-archive:"+a1, "docker-archive:"+filepath.Join(dir, "d.tar")+":"+ref).CombinedOutput(); err != nil {
				t.Fatalf("skopeo copy to docker-archive: %v\n%s", err, out)
			}
			t.Logf("%s: digest %s, archive %d bytes, layer %d bytes", spec.Name, r1.Digest, r1.ArchiveSize, r1.LayersSize)
		})
	}
}
