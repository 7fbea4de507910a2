// Command layer-image writes an OCI image archive whose layers are given
// uncompressed tar files (made by hack/cluster/kubevirt.sh with GNU tar, which
// keeps owners, modes, symlinks and the security.capability xattr). make
// cluster-up imports the archives into containerd (ctr images import), so the
// KubeVirt images need no registry and no container engine. Layers stay
// uncompressed: they never travel, and gzip of a 300 MB root filesystem would
// cost more than the whole import.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kubevirt-vhostuser/vhostuser/internal/images"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var layers, env list
	ref := flag.String("ref", "", "image reference stored in the archive (required)")
	out := flag.String("out", "", "archive to write (required)")
	entrypoint := flag.String("entrypoint", "", "entrypoint as a JSON array")
	user := flag.String("user", "", "user of the image config")
	flag.Var(&layers, "layer", "uncompressed layer tar, bottom first (repeatable, at least one)")
	flag.Var(&env, "env", "KEY=VALUE of the image config (repeatable)")
	flag.Parse()
	if *ref == "" || *out == "" || len(layers) == 0 {
		fmt.Fprintln(os.Stderr, "layer-image: -ref, -out and at least one -layer are required")
		os.Exit(2)
	}
	if err := run(*ref, *out, *entrypoint, *user, layers, env); err != nil {
		slog.Error("layer-image", "ref", *ref, "err", err)
		os.Exit(1)
	}
}

func run(ref, out, entrypoint, user string, layers, env []string) error {
	if _, err := name.NewTag(ref, name.StrictValidation); err != nil {
		return fmt.Errorf("image reference %q: %w", ref, err)
	}
	var ep []string
	if entrypoint != "" {
		if err := json.Unmarshal([]byte(entrypoint), &ep); err != nil {
			return fmt.Errorf("-entrypoint %q is not a JSON array of strings: %w", entrypoint, err)
		}
	}
	created := time.Unix(0, 0).UTC()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		RootFS:       v1.RootFS{Type: "layers"},
		Created:      v1.Time{Time: created},
		Config:       v1.Config{Entrypoint: ep, User: user, Env: env, WorkingDir: "/"},
	})
	if err != nil {
		return err
	}
	for _, p := range layers {
		l, err := newFileLayer(p)
		if err != nil {
			return err
		}
		img, err = mutate.Append(img, mutate.Addendum{
			Layer: l, MediaType: types.OCIUncompressedLayer,
			History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "layer-image"},
		})
		if err != nil {
			return fmt.Errorf("layer %s: %w", p, err)
		}
	}
	if _, err := images.WriteOCIArchiveFile(out, img, ref, created); err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s\tdigest=%s\tarchive=%s\n", ref, d, out)
	return nil
}

// fileLayer is an uncompressed tar on disk: its digest and diff ID are the
// same hash.
type fileLayer struct {
	path string
	hash v1.Hash
	size int64
}

func newFileLayer(p string) (*fileLayer, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, fmt.Errorf("hash %s: %w", p, err)
	}
	return &fileLayer{path: p, size: n, hash: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}}, nil
}

func (l *fileLayer) Digest() (v1.Hash, error)             { return l.hash, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)             { return l.hash, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)   { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) { return os.Open(l.path) }
func (l *fileLayer) Size() (int64, error)                 { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error)  { return types.OCIUncompressedLayer, nil }
