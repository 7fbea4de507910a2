package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Listen creates the socket. A stale socket file left by a dead sidecar is
// replaced; a socket somebody still serves, or any other kind of file, is
// left alone and reported.
func (s *Server) Listen() error {
	path := s.cfg.SocketPath
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create socket directory: %w", err)
	}
	if err := s.removeStale(path); err != nil {
		return err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("listen on %s: %w", path, err)
	}
	// virt-launcher in the compute container runs as the same user (or root)
	// and needs write permission to connect; nobody else does.
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return fmt.Errorf("chmod socket %s: %w", path, err)
	}
	s.ln = ln // closing it unlinks the socket file
	return nil
}

// removeStale clears path for a new socket: nothing there is fine, a socket
// nobody answers on is removed, anything else is an error.
func (s *Server) removeStale(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("listen on %s: a %s is in the way; remove it or choose another -socket-name", path, fi.Mode().Type())
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("listen on %s: another process serves this socket; not taking it over", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("listen on %s: probe existing socket: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	s.log.Info("removed stale socket", "socket", path)
	return nil
}
