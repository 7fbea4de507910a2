package ovsstate

import (
	"sync"
	"sync/atomic"
	"time"
)

// State is the published view: the ports of ours and the monitor's health.
// The Monitor writes it; any number of readers (scrapes) read it at once.
type State struct {
	ports      atomic.Pointer[[]Port]
	connected  atomic.Bool
	lastUpdate atomic.Int64 // unix nanoseconds; 0: never
	connects   atomic.Uint64
	errConnect atomic.Uint64
	errMonitor atomic.Uint64
	errLost    atomic.Uint64

	subMu sync.Mutex
	subs  map[chan struct{}]struct{}
}

// Subscribe returns a channel that receives a value after every change of
// the ports or of the connection (several changes may coalesce into one),
// and a function that ends the subscription. Readers then read Ports and
// Health: the channel carries no data, so a slow reader never holds a
// stale snapshot or blocks the monitor.
func (s *State) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.subMu.Lock()
	if s.subs == nil {
		s.subs = map[chan struct{}]struct{}{}
	}
	s.subs[ch] = struct{}{}
	s.subMu.Unlock()
	return ch, func() {
		s.subMu.Lock()
		delete(s.subs, ch)
		s.subMu.Unlock()
	}
}

func (s *State) notify() {
	s.subMu.Lock()
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default: // a change is already pending for this reader
		}
	}
	s.subMu.Unlock()
}

// NewState returns an empty state: no ports, not connected.
func NewState() *State { return &State{} }

// Ports returns the current ports of ours, sorted by name. The slice and
// its ports are shared and must not be modified.
func (s *State) Ports() []Port {
	if p := s.ports.Load(); p != nil {
		return *p
	}
	return nil
}

// Health returns the monitor's health.
func (s *State) Health() Health {
	h := Health{
		Connected: s.connected.Load(),
		Connects:  s.connects.Load(),
		Errors: Errors{
			Connect:        s.errConnect.Load(),
			Monitor:        s.errMonitor.Load(),
			ConnectionLost: s.errLost.Load(),
		},
	}
	if ns := s.lastUpdate.Load(); ns != 0 {
		h.LastUpdate = time.Unix(0, ns)
	}
	return h
}

// replace publishes a new port list, built at now.
func (s *State) replace(ports []Port, now time.Time) {
	s.ports.Store(&ports)
	s.lastUpdate.Store(now.UnixNano())
	s.notify()
}

// The ports stay published while disconnected: they are the last state
// known, and Health says it is not live.
func (s *State) setConnected(up bool) {
	if up {
		s.connects.Add(1)
	}
	if s.connected.Swap(up) != up {
		s.notify()
	}
}
