package images

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kubevirt-vhostuser/vhostuser/internal/atomicfile"
)

// WriteOCIArchive writes img as an OCI image layout in a tar stream (the
// "oci-archive" transport of skopeo; what ctr images import and kind load
// image-archive accept). ref names the image in index.json and must be a
// full reference such as localhost/vhostuser/vhostuser-sidecar:v1, which
// containerd stores under that name.
func WriteOCIArchive(w io.Writer, img v1.Image, ref string, mtime time.Time) error {
	files := map[string][]byte{
		"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`),
	}
	addBlob := func(h v1.Hash, b []byte) {
		files["blobs/"+h.Algorithm+"/"+h.Hex] = b
	}

	manifest, err := img.RawManifest()
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("manifest digest: %w", err)
	}
	addBlob(digest, manifest)
	config, err := img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	configName, err := img.ConfigName()
	if err != nil {
		return fmt.Errorf("config digest: %w", err)
	}
	addBlob(configName, config)
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("layers: %w", err)
	}
	for i, l := range layers {
		h, err := l.Digest()
		if err != nil {
			return fmt.Errorf("layer %d digest: %w", i, err)
		}
		rc, err := l.Compressed()
		if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		addBlob(h, b)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	index := v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []v1.Descriptor{{
			MediaType: types.OCIManifestSchema1,
			Size:      int64(len(manifest)),
			Digest:    digest,
			Annotations: map[string]string{
				AnnotationRefName:        ref,
				AnnotationContainerdName: ref,
			},
			Platform: &v1.Platform{OS: cf.OS, Architecture: cf.Architecture},
		}},
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	files["index.json"] = indexJSON

	// Directories first, then files, all sorted: a stable byte stream.
	names := []string{"blobs/", "blobs/sha256/"}
	var fileNames []string
	for n := range files {
		fileNames = append(fileNames, n)
	}
	sort.Strings(fileNames)
	names = append(names, fileNames...)

	tw := tar.NewWriter(w)
	for _, n := range names {
		hdr := &tar.Header{Name: n, ModTime: mtime.UTC().Truncate(time.Second), Format: tar.FormatPAX}
		body := files[n]
		if n[len(n)-1] == '/' {
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
		} else {
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, int64(len(body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("archive %s: %w", n, err)
		}
		if _, err := tw.Write(body); err != nil {
			return fmt.Errorf("archive %s: %w", n, err)
		}
	}
	return tw.Close()
}

// WriteOCIArchiveFile writes the archive to path atomically and returns its size.
func WriteOCIArchiveFile(path string, img v1.Image, ref string, mtime time.Time) (int64, error) {
	var buf bytes.Buffer
	if err := WriteOCIArchive(&buf, img, ref, mtime); err != nil {
		return 0, err
	}
	if err := atomicfile.WriteFile(path, buf.Bytes(), atomicfile.Options{Perm: 0o644}); err != nil {
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	return int64(buf.Len()), nil
}

// Result describes one written archive.
type Result struct {
	Ref         string
	Digest      string // manifest digest, what a registry and containerd call the image
	Archive     string
	ArchiveSize int64
	LayersSize  int64 // compressed layer bytes, what a pull transfers besides manifest and config
}

// BuildArchive builds spec and writes it to archive under ref.
func BuildArchive(spec Spec, meta Meta, ref, archive string) (Result, error) {
	if _, err := name.NewTag(ref, name.StrictValidation); err != nil {
		return Result{}, fmt.Errorf("image reference %q: %w", ref, err)
	}
	img, err := Build(spec, meta)
	if err != nil {
		return Result{}, err
	}
	size, err := WriteOCIArchiveFile(archive, img, ref, meta.Created)
	if err != nil {
		return Result{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return Result{}, err
	}
	layers, err := img.Layers()
	if err != nil {
		return Result{}, err
	}
	var lsize int64
	for _, l := range layers {
		s, err := l.Size()
		if err != nil {
			return Result{}, err
		}
		lsize += s
	}
	return Result{Ref: ref, Digest: digest.String(), Archive: archive, ArchiveSize: size, LayersSize: lsize}, nil
}
