package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/internal/cniinstall"
)

// TestRunLifecycle drives the installer as the DaemonSet does: install,
// become ready, stay up, and on termination drop readiness but keep the binary.
func TestRunLifecycle(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("plugin v1"), 0o600); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "cnibin")
	short := filepath.Join(dir, "run", "vhostuser")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "ready")
	// A marker left by a previous container must not survive a failed start.
	if err := os.WriteFile(marker, []byte("path=/x\nsha256=y\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() { done <- run(ctx, log, src, dst, "vhostuser", marker, short, false) }()

	deadline := time.Now().Add(10 * time.Second)
	for cniinstall.Probe(marker) != nil {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("installer never became ready: %v", cniinstall.Probe(marker))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if fi, err := os.Lstat(short); err != nil || !fi.IsDir() {
		t.Errorf("short socket directory not created: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("installer returned before termination: %v", err)
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("marker still present after termination: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(dst, "vhostuser"))
	if err != nil || string(got) != "plugin v1" {
		t.Errorf("installed binary after termination = %q, %v; want it kept", got, err)
	}
}

func TestRunFailsWithoutDestination(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "ready")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	err := run(context.Background(), log, src, filepath.Join(dir, "missing"), "vhostuser", marker, "", false)
	if err == nil {
		t.Fatal("run succeeded with a missing destination directory")
	}
	if _, serr := os.Stat(marker); !os.IsNotExist(serr) {
		t.Errorf("marker written although the install failed")
	}
}
