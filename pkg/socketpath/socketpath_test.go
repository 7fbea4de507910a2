package socketpath

import (
	"path/filepath"
	"strings"
	"testing"
)

const uid = "6b1f3a52-52f4-4c8e-9b3e-0c9a2f4d1e77"

func TestForDefaults(t *testing.T) {
	ifName := PodInterfaceName("vhost-net")
	p, err := Defaults().For(Attachment{PodUID: uid, IfName: ifName})
	if err != nil {
		t.Fatal(err)
	}
	volume := "/var/lib/kubelet/pods/" + uid + "/volumes/kubernetes.io~empty-dir/hook-sidecar-sockets"
	want := Paths{
		ID:            p.ID,
		VolumeDir:     volume,
		HostDir:       volume + "/vhostuser/" + ifName,
		HostSocket:    volume + "/vhostuser/" + ifName + "/vhost.sock",
		ShortLink:     "/var/run/vhostuser/" + p.ID,
		OVSSocket:     "/var/run/vhostuser/" + p.ID + "/vhost.sock",
		ComputeSocket: "/var/run/kubevirt-hooks/vhostuser/" + ifName + "/vhost.sock",
	}
	if p != want {
		t.Fatalf("paths:\n got %+v\nwant %+v", p, want)
	}
	if len(p.ID) != IDLen {
		t.Fatalf("ID %q has length %d, want %d", p.ID, len(p.ID), IDLen)
	}
	if len(p.HostSocket) <= MaxSocketPath {
		t.Logf("note: host socket path is only %d bytes here", len(p.HostSocket))
	}
}

// The socket must be at least two directories below the volume root so that
// virt-launcher's hook discovery (which dials files one level down) never sees it.
func TestSocketDepthBelowVolume(t *testing.T) {
	p, err := Defaults().For(Attachment{PodUID: uid, IfName: "net1"})
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(p.VolumeDir, p.HostSocket)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(rel, "/"); n < 2 {
		t.Fatalf("socket %q is %d directories below the volume root, want >= 2", rel, n)
	}
	relCompute, err := filepath.Rel(ComputeHooksDir, p.ComputeSocket)
	if err != nil {
		t.Fatal(err)
	}
	if relCompute != rel {
		t.Fatalf("compute view %q and host view %q disagree below the volume root", relCompute, rel)
	}
}

// The compute view must be identical on a migration source and target pod.
func TestComputeSocketIndependentOfPod(t *testing.T) {
	a, err := Defaults().For(Attachment{PodUID: uid, IfName: "pod1a2b3c4d5e6"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Layout{KubeletRoot: "/data/kubelet", Volume: DefaultVolume, ShortDir: "/run/vu"}.
		For(Attachment{PodUID: "0b7c1f4e-0000-4000-8000-000000000001", IfName: "pod1a2b3c4d5e6"})
	if err != nil {
		t.Fatal(err)
	}
	if a.ComputeSocket != b.ComputeSocket {
		t.Fatalf("compute socket differs between pods: %q vs %q", a.ComputeSocket, b.ComputeSocket)
	}
	if a.ID == b.ID || a.OVSSocket == b.OVSSocket {
		t.Fatalf("two pods share a short path: %q", a.OVSSocket)
	}
}

func TestPodInterfaceName(t *testing.T) {
	// KubeVirt: "pod" + first 11 hex characters of sha256(network name).
	for _, tc := range []struct{ network, want string }{
		{"vhost-net", "pod"},
		{"blue", "pod"},
	} {
		got := PodInterfaceName(tc.network)
		if !strings.HasPrefix(got, tc.want) || len(got) != 14 {
			t.Errorf("PodInterfaceName(%q) = %q, want pod + 11 hex", tc.network, got)
		}
		if ValidateIfName(got) != nil {
			t.Errorf("PodInterfaceName(%q) = %q is not a valid ifname", tc.network, got)
		}
	}
	// sha256("blue") = 16477688c0e00699c6cfa4497a3612d7e83c532062b64b250fed8908128ed548
	if got := PodInterfaceName("blue"); got != "pod16477688c0e" {
		t.Fatalf("PodInterfaceName(blue) = %q, want pod16477688c0e", got)
	}
	s, err := ComputeSocketForNetwork("blue")
	if err != nil || s != "/var/run/kubevirt-hooks/vhostuser/pod16477688c0e/vhost.sock" {
		t.Fatalf("ComputeSocketForNetwork(blue) = %q, %v", s, err)
	}
	if _, err := ComputeSocketForNetwork(""); err == nil {
		t.Fatal("empty network name accepted")
	}
}

func TestAttachmentIDSeparatesFields(t *testing.T) {
	a := AttachmentID(Attachment{PodUID: "ab", IfName: "c"})
	b := AttachmentID(Attachment{PodUID: "a", IfName: "bc"})
	if a == b {
		t.Fatalf("distinct attachments share ID %q", a)
	}
}

func TestRejects(t *testing.T) {
	good := Attachment{PodUID: uid, IfName: "net1"}
	for _, tc := range []struct {
		name   string
		layout Layout
		att    Attachment
		field  string
	}{
		{"empty uid", Defaults(), Attachment{IfName: "net1"}, "K8S_POD_UID"},
		{"uid traversal", Defaults(), Attachment{PodUID: "../../etc", IfName: "net1"}, "pod UID"},
		{"uid slash", Defaults(), Attachment{PodUID: "a/b", IfName: "net1"}, "pod UID"},
		{"uid NUL", Defaults(), Attachment{PodUID: "a\x00b", IfName: "net1"}, "pod UID"},
		{"uid too long", Defaults(), Attachment{PodUID: strings.Repeat("a", 65), IfName: "net1"}, "pod UID"},
		{"empty ifname", Defaults(), Attachment{PodUID: uid}, "CNI_IFNAME"},
		{"ifname dotdot", Defaults(), Attachment{PodUID: uid, IfName: ".."}, "CNI_IFNAME"},
		{"ifname dot", Defaults(), Attachment{PodUID: uid, IfName: "."}, "CNI_IFNAME"},
		{"ifname slash", Defaults(), Attachment{PodUID: uid, IfName: "a/b"}, "CNI_IFNAME"},
		{"ifname colon", Defaults(), Attachment{PodUID: uid, IfName: "a:b"}, "CNI_IFNAME"},
		{"ifname space", Defaults(), Attachment{PodUID: uid, IfName: "a b"}, "CNI_IFNAME"},
		{"ifname newline", Defaults(), Attachment{PodUID: uid, IfName: "a\nb"}, "CNI_IFNAME"},
		{"ifname too long", Defaults(), Attachment{PodUID: uid, IfName: "abcdefghijklmnop"}, "CNI_IFNAME"},
		{"relative kubelet root", Layout{KubeletRoot: "var/lib/kubelet", Volume: DefaultVolume, ShortDir: DefaultShortDir}, good, "kubeletRoot"},
		{"unclean kubelet root", Layout{KubeletRoot: "/var/lib/../kubelet", Volume: DefaultVolume, ShortDir: DefaultShortDir}, good, "kubeletRoot"},
		{"root short dir", Layout{KubeletRoot: DefaultKubeletRoot, Volume: DefaultVolume, ShortDir: "/"}, good, "shortSocketDir"},
		{"volume traversal", Layout{KubeletRoot: DefaultKubeletRoot, Volume: "..", ShortDir: DefaultShortDir}, good, "volume"},
		{"volume slash", Layout{KubeletRoot: DefaultKubeletRoot, Volume: "a/b", ShortDir: DefaultShortDir}, good, "volume"},
		{"short dir too long", Layout{KubeletRoot: DefaultKubeletRoot, Volume: DefaultVolume, ShortDir: "/" + strings.Repeat("d", 100)}, good, "shortSocketDir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.layout.For(tc.att)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %q does not name %q", err, tc.field)
			}
		})
	}
}

// The OVS path limit, from both sides: the longest short dir that fits is
// accepted and gives exactly MaxSocketPath bytes; one byte more is refused.
func TestSocketPathBoundary(t *testing.T) {
	room := MaxSocketPath - len("/"+strings.Repeat("0", IDLen)+"/"+SocketName)
	fits := "/" + strings.Repeat("d", room-1)
	p, err := Layout{KubeletRoot: DefaultKubeletRoot, Volume: DefaultVolume, ShortDir: fits}.For(Attachment{PodUID: uid, IfName: "net1"})
	if err != nil {
		t.Fatalf("short dir of %d bytes refused: %v", len(fits), err)
	}
	if len(p.OVSSocket) != MaxSocketPath || len(fits) != MaxShortDirLen {
		t.Fatalf("OVS socket is %d bytes, want exactly %d (short dir %d bytes, MaxShortDirLen %d)", len(p.OVSSocket), MaxSocketPath, len(fits), MaxShortDirLen)
	}
	// 128 bits of ID still leave room for a usual short dir.
	if IDLen*4 < 128 || MaxShortDirLen < len(DefaultShortDir) {
		t.Fatalf("IDLen %d hex (%d bits), MaxShortDirLen %d", IDLen, IDLen*4, MaxShortDirLen)
	}
	if _, err := (Layout{KubeletRoot: DefaultKubeletRoot, Volume: DefaultVolume, ShortDir: fits + "d"}).For(Attachment{PodUID: uid, IfName: "net1"}); err == nil {
		t.Fatalf("short dir of %d bytes accepted", len(fits)+1)
	}
}

// FuzzFor: no input panics; every accepted input yields paths inside the
// directories we own and within the socket path limit.
func FuzzFor(f *testing.F) {
	f.Add("/var/lib/kubelet", "hook-sidecar-sockets", "/var/run/vhostuser", uid, "pod16477688c0e")
	f.Add("/k", "v", "/s", "a", "b")
	f.Add("/k", "..", "/s", "../x", "..")
	// The longest accepted shortSocketDir, the longest pod UID and ifname.
	f.Add("/var/lib/kubelet", "hook-sidecar-sockets", "/"+strings.Repeat("s", MaxShortDirLen-1), strings.Repeat("u", MaxPodUIDLen), strings.Repeat("i", MaxIfNameLen))
	f.Add("/k", "v", "/"+strings.Repeat("s", MaxShortDirLen), "u", "i")
	f.Fuzz(func(t *testing.T, root, volume, short, podUID, ifName string) {
		l := Layout{KubeletRoot: root, Volume: volume, ShortDir: short}
		p, err := l.For(Attachment{PodUID: podUID, IfName: ifName})
		if err != nil {
			return
		}
		inside := func(dir, path string) bool {
			rel, err := filepath.Rel(dir, path)
			return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, "../") && filepath.Clean(path) == path
		}
		if !inside(filepath.Join(root, "pods"), p.HostSocket) || !inside(p.VolumeDir, p.HostSocket) {
			t.Fatalf("host socket %q escapes %q", p.HostSocket, p.VolumeDir)
		}
		if !inside(short, p.OVSSocket) || filepath.Dir(p.ShortLink) != short {
			t.Fatalf("OVS socket %q escapes %q", p.OVSSocket, short)
		}
		if !inside(filepath.Join(ComputeHooksDir, SocketsDir), p.ComputeSocket) {
			t.Fatalf("compute socket %q escapes", p.ComputeSocket)
		}
		if len(p.OVSSocket) > MaxSocketPath || len(p.ComputeSocket) > MaxSocketPath {
			t.Fatalf("socket path over the limit: %q (%d), %q (%d)", p.OVSSocket, len(p.OVSSocket), p.ComputeSocket, len(p.ComputeSocket))
		}
	})
}
