package config

import "testing"

func TestParseArgs(t *testing.T) {
	tests := []struct {
		in      string
		uid, ns string
		wantErr bool
	}{
		{"K8S_POD_NAMESPACE=default;K8S_POD_NAME=virt-launcher-x;K8S_POD_UID=1234-ab;IgnoreUnknown=1", "1234-ab", "default", false},
		{"K8S_POD_UID=u;FOO=bar", "u", "", false},
		{"", "", "", false},
		{"K8S_POD_UID", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			a, err := ParseArgs(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && (string(a.K8S_POD_UID) != tt.uid || string(a.K8S_POD_NAMESPACE) != tt.ns) {
				t.Fatalf("got uid %q ns %q", a.K8S_POD_UID, a.K8S_POD_NAMESPACE)
			}
		})
	}
}
