package sockdir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLegacyLink(t *testing.T) {
	p, _ := layout(t)
	l := LegacyLink(p)
	if want := filepath.Join(filepath.Dir(p.ShortLink), p.ID[:legacyIDLen]); l.ShortLink != want {
		t.Errorf("ShortLink %s, want %s", l.ShortLink, want)
	}
	l.ShortLink = p.ShortLink
	if l != p {
		t.Errorf("LegacyLink changed more than ShortLink: %+v", l)
	}
	if !isID(filepath.Base(LegacyLink(p).ShortLink)) || !isID(p.ID) {
		t.Error("a legacy or current link name is not recognised as ours")
	}
}

func TestOwnLink(t *testing.T) {
	p, _ := layout(t)
	otherPod := strings.Replace(p.HostDir, "/pod-uid-1/", "/pod-uid-2/", 1)
	tests := []struct {
		name   string
		mode   os.FileMode
		target string
		ours   bool
	}{
		{"a symlink to this attachment's directory", os.ModeSymlink | 0o777, p.HostDir, true},
		{"a regular file", 0o644, "", false},
		{"a directory", os.ModeDir | 0o755, "", false},
		{"a symlink to another pod's directory of the same ifname", os.ModeSymlink | 0o777, otherPod, false},
		{"a symlink to this directory with a trailing slash", os.ModeSymlink | 0o777, p.HostDir + "/", false},
		{"a symlink to this pod's volume", os.ModeSymlink | 0o777, p.VolumeDir, false},
		{"a symlink to a relative path", os.ModeSymlink | 0o777, "vhostuser/net1", false},
		{"a symlink whose target could not be read", os.ModeSymlink | 0o777, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ownLink(p, tt.mode, tt.target)
			if tt.ours && err != nil {
				t.Fatalf("ownLink: %v, want ours", err)
			}
			if !tt.ours && !errors.Is(err, ErrNotOurs) {
				t.Fatalf("ownLink: %v, want ErrNotOurs", err)
			}
		})
	}
}
