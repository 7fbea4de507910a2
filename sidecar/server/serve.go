package server

import (
	"context"
	"fmt"
	"time"
)

// stopGrace bounds how long in-flight calls may finish after Shutdown or SIGTERM.
const stopGrace = 5 * time.Second

// Serve answers calls until ctx is done or virt-launcher calls Shutdown, then
// lets in-flight calls finish (bounded) and removes the socket. It returns nil
// after such a stop.
func (s *Server) Serve(ctx context.Context) error {
	if s.ln == nil {
		return fmt.Errorf("serve: Listen was not called")
	}
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(s.ln) }()

	var reason string
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", s.cfg.SocketPath, err)
	case <-ctx.Done():
		reason = "signal"
	case <-s.shutdown:
		reason = "Shutdown call"
	}
	s.log.Info("stopping", "reason", reason)
	s.stop()
	// grpc.Serve returns after a stop, closing the listener even when the stop
	// came first; closing the listener unlinks the socket file.
	<-errc
	_ = s.ln.Close()
	return nil
}

// stop lets in-flight calls finish for up to stopGrace, then cuts them off.
func (s *Server) stop() {
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(stopGrace):
		s.grpc.Stop()
		<-done
	}
}

// requestShutdown makes Serve stop; later calls do nothing.
func (s *Server) requestShutdown() { s.once.Do(func() { close(s.shutdown) }) }
