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
