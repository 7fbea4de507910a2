package ovsdb

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb/jsonrpc"
)

func TestTxnError(t *testing.T) {
	e := &txnError{kind: "constraint violation", details: "duplicate name"}
	if !strings.Contains(e.Error(), "constraint violation: duplicate name") {
		t.Fatal(e.Error())
	}
}

func TestUnreachableError(t *testing.T) {
	cause := fmt.Errorf("call: %w", jsonrpc.ErrClosed)
	err := fmt.Errorf("read bridge br0: %w", &unreachableError{cause})
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, jsonrpc.ErrClosed) {
		t.Fatalf("%v: not ErrUnreachable and its cause", err)
	}
	if err.Error() != "read bridge br0: "+cause.Error() {
		t.Fatalf("message %q: the classification must not change it", err)
	}
	for _, other := range []error{&txnError{kind: kindTimedOut}, ErrNotReady, jsonrpc.ErrClosed} {
		if errors.Is(other, ErrUnreachable) {
			t.Errorf("%v is ErrUnreachable", other)
		}
	}
}

func TestRefusal(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{&txnError{kind: kindConstraintViolation}, kindConstraintViolation},
		{fmt.Errorf("add port: %w", &txnError{kind: kindTimedOut, details: "wait"}), kindTimedOut},
		{errors.New(kindDuplicateUUID), ""}, // the message alone is no refusal
		{nil, ""},
	} {
		if got := refusal(tt.err); got != tt.want {
			t.Errorf("refusal(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
	if !strings.Contains((&txnError{kind: kindTimedOut}).Error(), "timed out") {
		t.Fatal("txnError without details")
	}
}
