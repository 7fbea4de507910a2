package main

import (
	"strings"
	"testing"
)

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name, epochEnv, version, wantErr string
	}{
		{"bad SOURCE_DATE_EPOCH", "yesterday", "v1", "SOURCE_DATE_EPOCH"},
		{"negative SOURCE_DATE_EPOCH", "-5", "v1", "SOURCE_DATE_EPOCH"},
		{"version without a tag character", "", "...", "empty image tag"},
		{"binaries not built", "", "v1", "make build"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SOURCE_DATE_EPOCH", tc.epochEnv)
			err := run(t.TempDir(), t.TempDir(), tc.version, "", "localhost/vhostuser", "r", "s", -1)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("run error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}
