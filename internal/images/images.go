// Package images assembles the project's container images as OCI image
// archives, in Go, without a container engine.
//
// The images are reproducible: every timestamp is the source date (the
// commit time, or SOURCE_DATE_EPOCH), tar entries are sorted with fixed
// owners and modes, and gzip is deterministic, so the same binaries and
// metadata always give the same manifest digest.
package images

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Label keys from the OCI image annotations spec.
const (
	LabelVersion     = "org.opencontainers.image.version"
	LabelSource      = "org.opencontainers.image.source"
	LabelRevision    = "org.opencontainers.image.revision"
	LabelCreated     = "org.opencontainers.image.created"
	LabelTitle       = "org.opencontainers.image.title"
	LabelDescription = "org.opencontainers.image.description"

	// AnnotationRefName and AnnotationContainerdName name the image in the
	// archive's index.json; containerd (ctr import, kind load) reads the
	// latter, skopeo and OCI tools the former.
	AnnotationRefName        = "org.opencontainers.image.ref.name"
	AnnotationContainerdName = "io.containerd.image.name"
)

// File is one file of an image, copied from the build host.
type File struct {
	Path   string // absolute path in the image
	Source string // file on the build host
	Mode   int64  // permission bits in the image
	// Static requires Source to be a statically linked ELF executable: the
	// images carry no libc or loader.
	Static bool
}

// Spec describes one image.
type Spec struct {
	Name        string // short name, also the archive's file name
	Title       string
	Description string
	Files       []File
	Entrypoint  []string
	User        string
	Env         []string
}

// Meta is what every image is stamped with.
type Meta struct {
	Version  string
	Revision string
	Source   string
	Created  time.Time // the source date; also every file's mtime
}

// Build assembles the image: one layer with the spec's files and their
// parent directories, an OCI config and manifest.
func Build(spec Spec, meta Meta) (v1.Image, error) {
	if len(spec.Files) == 0 {
		return nil, fmt.Errorf("image %s: no files", spec.Name)
	}
	created := meta.Created.UTC().Truncate(time.Second)
	arch := ""
	for _, f := range spec.Files {
		if !f.Static {
			continue
		}
		a, err := staticArch(f.Source)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", spec.Name, err)
		}
		if arch != "" && a != arch {
			return nil, fmt.Errorf("image %s: binaries for two architectures (%s, %s)", spec.Name, arch, a)
		}
		arch = a
	}
	if arch == "" {
		return nil, fmt.Errorf("image %s: no executable to take the architecture from", spec.Name)
	}

	layerTar, err := layerTar(spec.Files, created)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", spec.Name, err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("image %s: layer: %w", spec.Name, err)
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: arch,
		OS:           "linux",
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Entrypoint: spec.Entrypoint,
			User:       spec.User,
			Env:        spec.Env,
			WorkingDir: "/",
			Labels: map[string]string{
				LabelVersion:     meta.Version,
				LabelSource:      meta.Source,
				LabelRevision:    meta.Revision,
				LabelCreated:     created.Format(time.RFC3339),
				LabelTitle:       spec.Title,
				LabelDescription: spec.Description,
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", spec.Name, err)
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		// Non-empty on purpose: the layer descriptor otherwise carries an
		// empty map that the manifest JSON drops, and the in-memory
		// manifest would differ from the serialised one.
		Annotations: map[string]string{LabelDescription: "static binaries"},
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "image-builder: " + strings.Join(targets(spec.Files), " "),
			Comment:   "static binaries only",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("image %s: append layer: %w", spec.Name, err)
	}
	img, err = mutate.CreatedAt(img, v1.Time{Time: created})
	if err != nil {
		return nil, fmt.Errorf("image %s: created: %w", spec.Name, err)
	}
	return img, nil
}

func targets(files []File) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Path)
	}
	sort.Strings(out)
	return out
}

// layerTar writes the files and every parent directory, sorted by path,
// owned by root, with the given mtime and nothing taken from the build host
// but the content.
func layerTar(files []File, mtime time.Time) ([]byte, error) {
	type entry struct {
		hdr  tar.Header
		body []byte
	}
	entries := map[string]entry{}
	for _, f := range files {
		p := path.Clean(f.Path)
		if !path.IsAbs(f.Path) || p != f.Path || p == "/" {
			return nil, fmt.Errorf("file path %q must be absolute and clean", f.Path)
		}
		if f.Mode&^0o7777 != 0 {
			return nil, fmt.Errorf("file %s: mode %o has more than permission bits", p, f.Mode)
		}
		body, err := os.ReadFile(f.Source)
		if err != nil {
			return nil, fmt.Errorf("file %s: %w", p, err)
		}
		name := strings.TrimPrefix(p, "/")
		if _, dup := entries[name]; dup {
			return nil, fmt.Errorf("file %s listed twice", p)
		}
		entries[name] = entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: f.Mode, Size: int64(len(body))}, body: body}
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			if e, ok := entries[d+"/"]; ok && e.hdr.Typeflag == tar.TypeDir {
				continue
			}
			entries[d+"/"] = entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}}
		}
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		e := entries[n]
		e.hdr.ModTime = mtime
		e.hdr.Format = tar.FormatPAX
		// Uid/Gid 0 and empty user names are the zero values; said here so
		// nobody "fixes" it with the build user's ids.
		e.hdr.Uid, e.hdr.Gid = 0, 0
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return nil, fmt.Errorf("tar %s: %w", n, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, fmt.Errorf("tar %s: %w", n, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// staticArch checks that path is a statically linked ELF executable and
// returns its OCI architecture name.
func staticArch(p string) (string, error) {
	f, err := elf.Open(p)
	if err != nil {
		return "", fmt.Errorf("%s: not an ELF executable (run make build first): %w", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return "", fmt.Errorf("%s is dynamically linked: build it with CGO_ENABLED=0 (the image has no libc)", p)
		}
	}
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	case elf.EM_PPC64:
		return "ppc64le", nil
	case elf.EM_S390:
		return "s390x", nil
	}
	return "", fmt.Errorf("%s: unsupported ELF machine %v", p, f.Machine)
}
