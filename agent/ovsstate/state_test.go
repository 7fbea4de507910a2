package ovsstate

import (
	"testing"
	"time"
)

func TestState(t *testing.T) {
	s := NewState()
	if s.Ports() != nil || s.Health().Connected || !s.Health().LastUpdate.IsZero() {
		t.Fatalf("new state not empty: %v %+v", s.Ports(), s.Health())
	}
	now := time.Unix(1700000000, 0)
	s.replace([]Port{{Name: "a"}}, now)
	s.setConnected(true)
	s.errLost.Add(1)
	h := s.Health()
	if !h.Connected || h.Connects != 1 || !h.LastUpdate.Equal(now) || h.Errors.ConnectionLost != 1 {
		t.Errorf("health %+v", h)
	}
	s.setConnected(false)
	// The last known ports stay; Health tells they are not live.
	if len(s.Ports()) != 1 || s.Health().Connected || s.Health().Connects != 1 {
		t.Errorf("after disconnect: %v %+v", s.Ports(), s.Health())
	}
}

func TestSubscribe(t *testing.T) {
	s := NewState()
	ch, cancel := s.Subscribe()
	pending := func() bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	if pending() {
		t.Fatal("a new subscription has a change pending")
	}
	// Two changes before the reader looks coalesce into one.
	s.replace([]Port{{Name: "a"}}, time.Now())
	s.setConnected(true)
	if !pending() || pending() {
		t.Fatal("two changes did not give exactly one pending notification")
	}
	s.setConnected(true) // no change
	if pending() {
		t.Error("an unchanged connection state notified")
	}
	s.setConnected(false)
	if !pending() {
		t.Error("a lost connection did not notify")
	}
	cancel()
	s.replace(nil, time.Now())
	if pending() {
		t.Error("a cancelled subscription was notified")
	}
}
