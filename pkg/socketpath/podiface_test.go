package socketpath

import (
	"maps"
	"strings"
	"testing"
)

func TestPodInterfaceNames(t *testing.T) {
	hashedA, hashedB := PodInterfaceName("a"), PodInterfaceName("b")
	tests := []struct {
		name    string
		nets    []SecondaryNetwork
		want    map[string]string
		wantErr string
	}{
		{"nothing reported: hashed", []SecondaryNetwork{{Name: "a"}, {Name: "b"}},
			map[string]string{"a": hashedA, "b": hashedB}, ""},
		{"reported hashed", []SecondaryNetwork{{Name: "a", Reported: hashedA}, {Name: "b", Reported: hashedB}},
			map[string]string{"a": hashedA, "b": hashedB}, ""},
		{"reported ordinal", []SecondaryNetwork{{Name: "a", Reported: "net1"}, {Name: "b", Reported: "net2"}},
			map[string]string{"a": "net1", "b": "net2"}, ""},
		{"reported wins over the scheme", []SecondaryNetwork{{Name: "a", Reported: "net7"}},
			map[string]string{"a": "net7"}, ""},
		{"one ordinal report makes the pod ordinal", []SecondaryNetwork{{Name: "a", Reported: "net1"}, {Name: "b"}},
			map[string]string{"a": "net1", "b": "net2"}, ""},
		{"one hashed report keeps the others hashed", []SecondaryNetwork{{Name: "a"}, {Name: "b", Reported: hashedB}},
			map[string]string{"a": hashedA, "b": hashedB}, ""},
		{"no networks", nil, map[string]string{}, ""},
		{"hostile report", []SecondaryNetwork{{Name: "a", Reported: "../../etc"}}, nil, `podInterfaceName of network "a"`},
		{"too long report", []SecondaryNetwork{{Name: "a", Reported: strings.Repeat("n", 16)}}, nil, "podInterfaceName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PodInterfaceNames(tt.nets)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !maps.Equal(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestIsOrdinalPodInterfaceName(t *testing.T) {
	for name, want := range map[string]bool{
		"net1": true, "net12": true, "net0": true,
		"net": false, "net1a": false, "eth0": false, "pod16477688c0e": false, "xnet1": false, "net-1": false, "": false,
	} {
		if got := IsOrdinalPodInterfaceName(name); got != want {
			t.Errorf("IsOrdinalPodInterfaceName(%q) = %v, want %v", name, got, want)
		}
	}
	if got := OrdinalPodInterfaceName(3); got != "net3" {
		t.Errorf("OrdinalPodInterfaceName(3) = %q", got)
	}
}
