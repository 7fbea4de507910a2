package server

import (
	"strings"
	"testing"
	"time"
)

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{SocketPath: "/tmp/x.sock"},
		{BindingName: "v", SocketPath: "relative.sock"},
		{BindingName: "v", SocketPath: "/" + strings.Repeat("a", 120)},
		{BindingName: "v", SocketPath: "/tmp/x.sock", NetworkInfoWait: -1},
		{BindingName: "v", SocketPath: "/tmp/x.sock", NetworkInfoWait: time.Minute},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
