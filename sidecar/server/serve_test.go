package server

import (
	"context"
	"os"
	"testing"

	"github.com/kubevirt-vhostuser/vhostuser/internal/hooks/v1alpha3"
)

func TestShutdownStopsAndRemovesSocket(t *testing.T) {
	r := start(t, Config{})
	if _, err := v1alpha3.NewCallbacksClient(r.conn).Shutdown(context.Background(), &v1alpha3.ShutdownParams{}); err != nil {
		t.Fatal(err)
	}
	if err := r.waitStopped(t); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := os.Lstat(r.path); !os.IsNotExist(err) {
		t.Errorf("socket still there after Shutdown: %v", err)
	}
}

func TestContextCancelStops(t *testing.T) {
	r := start(t, Config{})
	r.cancel()
	if err := r.waitStopped(t); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := os.Lstat(r.path); !os.IsNotExist(err) {
		t.Errorf("socket still there after stop: %v", err)
	}
}
