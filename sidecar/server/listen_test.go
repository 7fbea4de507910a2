package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	hooksinfo "github.com/kubevirt-vhostuser/vhostuser/internal/hooks/info"
)

func TestStaleSocketReplaced(t *testing.T) {
	path := filepath.Join(shortDir(t), "vhostuser-binding.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false) // a crashed sidecar leaves its socket file behind
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("no stale socket to test with: %v", err)
	}
	r := start(t, Config{SocketPath: path})
	if _, err := hooksinfo.NewInfoClient(r.conn).Info(context.Background(), &hooksinfo.InfoParams{}); err != nil {
		t.Fatalf("server on the replaced socket does not answer: %v", err)
	}
}

func TestLiveSocketNotStolen(t *testing.T) {
	path := filepath.Join(shortDir(t), "vhostuser-binding.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	srv, err := New(Config{BindingName: "vhostuser", SocketPath: path, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Listen()
	if err == nil || !strings.Contains(err.Error(), "another process serves") {
		t.Fatalf("Listen on a live socket: %v", err)
	}
	if c, err := net.Dial("unix", path); err != nil {
		t.Errorf("the live socket was damaged: %v", err)
	} else {
		c.Close()
	}
}

func TestRegularFileNotRemoved(t *testing.T) {
	path := filepath.Join(shortDir(t), "vhostuser-binding.sock")
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{BindingName: "vhostuser", SocketPath: path, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err == nil {
		t.Fatal("Listen replaced a regular file")
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Error("the file was changed")
	}
}

func TestSocketPermissions(t *testing.T) {
	r := start(t, Config{})
	fi, err := os.Lstat(r.path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want 0660", fi.Mode().Perm())
	}
}
