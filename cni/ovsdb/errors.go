package ovsdb

import "errors"

// ErrUnreachable wraps the errors of a connection to ovsdb-server that could
// not be made or broke: nothing more can be read or changed through it.
var ErrUnreachable = errors.New("OVSDB unreachable")

// ErrBridgeMissing is returned by AddPort when the bridge does not exist and may not be created.
var ErrBridgeMissing = errors.New("bridge does not exist")

// ErrNotReady means OVS cannot run a vhost-user port on the bridge: DPDK not
// initialised, no dpdkvhostuserclient support, or a bridge that is not netdev.
var ErrNotReady = errors.New("OVS cannot run vhost-user ports")

// unreachableError classifies a connection failure as ErrUnreachable and
// keeps its message as it was.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string   { return e.err.Error() }
func (e *unreachableError) Unwrap() []error { return []error{ErrUnreachable, e.err} }

// txnError is a transaction the server refused: the kind and details of the
// first failed operation (RFC 7047 section 4.1.3).
type txnError struct {
	kind, details string
}

func (e *txnError) Error() string {
	if e.details == "" {
		return "ovsdb transaction: " + e.kind
	}
	return "ovsdb transaction: " + e.kind + ": " + e.details
}

// The kinds of refusal the plugin acts on.
const (
	kindConstraintViolation = "constraint violation" // a unique index: a concurrent ADD made the same name
	kindTimedOut            = "timed out"            // a wait operation's condition did not hold
	kindDuplicateUUID       = "duplicate uuid"       // an insert with a UUID in use
)

// refusal returns the kind of a refused transaction, "" for any other error.
func refusal(err error) string {
	var te *txnError
	if errors.As(err, &te) {
		return te.kind
	}
	return ""
}
