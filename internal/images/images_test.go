package images

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// fakeELF returns a minimal ELF executable header for machine: enough for
// debug/elf, which is all the builder inspects. interp adds a PT_INTERP
// program header, as in a dynamically linked binary.
func fakeELF(t *testing.T, machine elf.Machine, interp bool, payload string) []byte {
	t.Helper()
	progs := []elf.Prog64{{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X), Align: 0x1000}}
	if interp {
		progs = append(progs, elf.Prog64{Type: uint32(elf.PT_INTERP), Flags: uint32(elf.PF_R), Align: 1})
	}
	h := elf.Header64{
		Type: uint16(elf.ET_EXEC), Machine: uint16(machine), Version: uint32(elf.EV_CURRENT),
		Phoff: 64, Ehsize: 64, Phentsize: 56, Phnum: uint16(len(progs)),
	}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	h.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	h.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, h); err != nil {
		t.Fatal(err)
	}
	for _, p := range progs {
		if err := binary.Write(&b, binary.LittleEndian, p); err != nil {
			t.Fatal(err)
		}
	}
	b.WriteString(payload)
	return b.Bytes()
}

// fakeBin writes the binaries make build produces that images ship.
func fakeBin(t *testing.T, payload string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range []string{"vhostuser", "vhostuser-installer", "vhostuser-sidecar", "vhostuser-agent"} {
		if err := os.WriteFile(filepath.Join(dir, n), fakeELF(t, elf.EM_X86_64, false, n+payload), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var testMeta = Meta{Version: "v1.2.3", Revision: "abc123", Source: "https://example.invalid/src", Created: time.Unix(1700000000, 0)}

func spec(t *testing.T, specs []Spec, name string) Spec {
	t.Helper()
	for _, s := range specs {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no image %s", name)
	return Spec{}
}

func TestImageConfig(t *testing.T) {
	bin := fakeBin(t, "")
	tests := []struct {
		name       string
		entrypoint []string
		user       string
	}{
		{InstallerName, []string{"/usr/local/bin/vhostuser-installer"}, "0:0"},
		{SidecarName, []string{"/usr/local/bin/vhostuser-sidecar"}, "107:107"},
		{AgentName, []string{"/usr/local/bin/vhostuser-agent"}, "0:0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img, err := Build(spec(t, Project(bin), tc.name), testMeta)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Image(img); err != nil {
				t.Fatalf("image does not validate: %v", err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cf.Config.Entrypoint, tc.entrypoint) || cf.Config.Cmd != nil {
				t.Errorf("entrypoint %q cmd %q, want %q and none", cf.Config.Entrypoint, cf.Config.Cmd, tc.entrypoint)
			}
			if cf.Config.User != tc.user {
				t.Errorf("user %q, want %q", cf.Config.User, tc.user)
			}
			if !reflect.DeepEqual(cf.Config.Env, []string{"PATH=/usr/local/bin"}) {
				t.Errorf("env %q", cf.Config.Env)
			}
			if cf.OS != "linux" || cf.Architecture != "amd64" {
				t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
			}
			if !cf.Created.Time.Equal(testMeta.Created) {
				t.Errorf("created %v, want %v", cf.Created.Time, testMeta.Created)
			}
			for k, want := range map[string]string{
				LabelVersion: "v1.2.3", LabelRevision: "abc123", LabelSource: "https://example.invalid/src",
				LabelCreated: "2023-11-14T22:13:20Z",
			} {
				if got := cf.Config.Labels[k]; got != want {
					t.Errorf("label %s = %q, want %q", k, got, want)
				}
			}
			mt, _ := img.MediaType()
			if mt != types.OCIManifestSchema1 {
				t.Errorf("manifest media type %s", mt)
			}
			m, _ := img.Manifest()
			if m.Config.MediaType != types.OCIConfigJSON || len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
				t.Errorf("manifest %+v: want an OCI config and one OCI layer", m)
			}
		})
	}
}

type tarEntry struct {
	name string
	typ  byte
	mode int64
	body string
}

func layerEntries(t *testing.T, img v1.Image) []tarEntry {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %v, %d", err, len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out []tarEntry
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s owned by %d:%d (%q:%q), want root with no names", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if !h.ModTime.Equal(testMeta.Created) {
			t.Errorf("%s mtime %v, want the source date", h.Name, h.ModTime)
		}
		if len(h.PAXRecords) != 0 {
			t.Errorf("%s carries PAX records %v", h.Name, h.PAXRecords)
		}
		body, _ := io.ReadAll(tr)
		out = append(out, tarEntry{h.Name, h.Typeflag, h.Mode, string(body)})
	}
	return out
}

func TestLayerContents(t *testing.T) {
	bin := fakeBin(t, "")
	read := func(n string) string {
		b, err := os.ReadFile(filepath.Join(bin, n))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	dir := func(n string) tarEntry { return tarEntry{n, tar.TypeDir, 0o755, ""} }
	tests := []struct {
		name string
		want []tarEntry
	}{
		{InstallerName, []tarEntry{
			dir("opt/"), dir("opt/vhostuser/"), dir("opt/vhostuser/bin/"),
			{"opt/vhostuser/bin/vhostuser", tar.TypeReg, 0o755, read("vhostuser")},
			dir("usr/"), dir("usr/local/"), dir("usr/local/bin/"),
			{"usr/local/bin/vhostuser-installer", tar.TypeReg, 0o755, read("vhostuser-installer")},
		}},
		{SidecarName, []tarEntry{
			dir("usr/"), dir("usr/local/"), dir("usr/local/bin/"),
			{"usr/local/bin/vhostuser-sidecar", tar.TypeReg, 0o755, read("vhostuser-sidecar")},
		}},
		{AgentName, []tarEntry{
			dir("usr/"), dir("usr/local/"), dir("usr/local/bin/"),
			{"usr/local/bin/vhostuser-agent", tar.TypeReg, 0o755, read("vhostuser-agent")},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img, err := Build(spec(t, Project(bin), tc.name), testMeta)
			if err != nil {
				t.Fatal(err)
			}
			if got := layerEntries(t, img); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("layer entries\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// Two builds from binaries that differ only in what the build host leaves on
// them (mtime, mode, owner's umask) give the same bytes; a different binary
// or version gives a different digest.
func TestReproducible(t *testing.T) {
	build := func(bin string, meta Meta) (string, []byte) {
		t.Helper()
		img, err := Build(spec(t, Project(bin), SidecarName), meta)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := WriteOCIArchive(&buf, img, "localhost/vhostuser/vhostuser-sidecar:v1", meta.Created); err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d.String(), buf.Bytes()
	}
	bin1 := fakeBin(t, "")
	bin2 := fakeBin(t, "")
	for _, n := range []string{"vhostuser-sidecar"} {
		p := filepath.Join(bin2, n)
		if err := os.Chmod(p, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, time.Unix(12345, 0), time.Unix(12345, 0)); err != nil {
			t.Fatal(err)
		}
	}
	d1, a1 := build(bin1, testMeta)
	d2, a2 := build(bin2, testMeta)
	if d1 != d2 {
		t.Errorf("digests differ: %s vs %s", d1, d2)
	}
	if !bytes.Equal(a1, a2) {
		t.Errorf("archives differ (%d vs %d bytes)", len(a1), len(a2))
	}

	other := testMeta
	other.Version = "v9"
	if d3, _ := build(bin1, other); d3 == d1 {
		t.Errorf("a different version label gave the same digest %s", d3)
	}
	if d4, _ := build(fakeBin(t, "changed"), testMeta); d4 == d1 {
		t.Errorf("a different binary gave the same digest %s", d4)
	}
}

// The archive is an OCI image layout in a tar: read it back with an OCI
// layout reader and find the same image under the reference.
func TestArchiveIsOCILayout(t *testing.T) {
	bin := fakeBin(t, "")
	out := t.TempDir()
	archive := filepath.Join(out, "sidecar.tar")
	ref := "localhost/vhostuser/vhostuser-sidecar:v1.2.3"
	res, err := BuildArchive(spec(t, Project(bin), SidecarName), testMeta, ref, archive)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(archive)
	if err != nil || fi.Size() != res.ArchiveSize {
		t.Fatalf("archive: %v, size %d vs reported %d", err, fi.Size(), res.ArchiveSize)
	}

	dir := filepath.Join(out, "layout")
	names := untar(t, archive, dir)
	if names[0] != "blobs/" || names[1] != "blobs/sha256/" {
		t.Errorf("archive does not start with its directories: %v", names)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("not an OCI layout: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("%d manifests in index.json, want 1", len(im.Manifests))
	}
	desc := im.Manifests[0]
	if desc.Annotations[AnnotationRefName] != ref || desc.Annotations[AnnotationContainerdName] != ref {
		t.Errorf("index annotations %v, want both names = %s", desc.Annotations, ref)
	}
	if desc.Digest.String() != res.Digest {
		t.Errorf("index digest %s, built %s", desc.Digest, res.Digest)
	}
	if desc.Platform == nil || desc.Platform.Architecture != "amd64" {
		t.Errorf("index platform %+v", desc.Platform)
	}
	img, err := idx.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("image read back from the archive does not validate: %v", err)
	}
	if got := layerEntries(t, img); len(got) != 4 || got[3].name != "usr/local/bin/vhostuser-sidecar" {
		t.Errorf("read-back layer entries %+v", got)
	}
}

func untar(t *testing.T, archive, dir string) []string {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, _ := io.ReadAll(tr)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBuildRejects(t *testing.T) {
	dir := t.TempDir()
	write := func(n string, b []byte) string {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	static := write("static", fakeELF(t, elf.EM_X86_64, false, ""))
	dynamic := write("dynamic", fakeELF(t, elf.EM_X86_64, true, ""))
	arm := write("arm", fakeELF(t, elf.EM_AARCH64, false, ""))
	script := write("script", []byte("#!/bin/sh\necho hi\n"))
	tests := []struct {
		name    string
		files   []File
		wantErr string
	}{
		{"dynamic binary", []File{{Path: "/bin/x", Source: dynamic, Mode: 0o755, Static: true}}, "dynamically linked"},
		{"not ELF", []File{{Path: "/bin/x", Source: script, Mode: 0o755, Static: true}}, "not an ELF"},
		{"missing binary", []File{{Path: "/bin/x", Source: filepath.Join(dir, "nope"), Mode: 0o755, Static: true}}, "make build"},
		{"two architectures", []File{{Path: "/bin/x", Source: static, Mode: 0o755, Static: true}, {Path: "/bin/y", Source: arm, Mode: 0o755, Static: true}}, "two architectures"},
		{"relative path", []File{{Path: "bin/x", Source: static, Mode: 0o755, Static: true}}, "absolute and clean"},
		{"dotdot path", []File{{Path: "/bin/../x", Source: static, Mode: 0o755, Static: true}}, "absolute and clean"},
		{"setuid-ish mode", []File{{Path: "/bin/x", Source: static, Mode: 0o104755, Static: true}}, "permission bits"},
		{"duplicate", []File{{Path: "/bin/x", Source: static, Mode: 0o755, Static: true}, {Path: "/bin/x", Source: static, Mode: 0o755}}, "twice"},
		{"no files", nil, "no files"},
		{"no executable", []File{{Path: "/etc/x", Source: script, Mode: 0o644}}, "architecture"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(Spec{Name: "t", Files: tc.files}, testMeta)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Build error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
	if _, err := BuildArchive(Spec{Name: "t", Files: []File{{Path: "/x", Source: static, Mode: 0o755, Static: true}}}, testMeta, "Bad Ref", filepath.Join(dir, "t.tar")); err == nil {
		t.Errorf("BuildArchive accepted an invalid reference")
	}
}

func TestTag(t *testing.T) {
	tests := []struct{ in, want, wantErr string }{
		{"v1.2.3", "v1.2.3", ""},
		{"3ddbe84-dirty", "3ddbe84-dirty", ""},
		{"v1.2.3+build.1", "v1.2.3-build.1", ""},
		{"-x", "x", ""},
		{"..", "", "empty image tag"},
		{strings.Repeat("a", 200), strings.Repeat("a", 128), ""},
	}
	for _, tc := range tests {
		got, err := Tag(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Tag(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Tag(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
