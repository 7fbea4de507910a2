package domain

import (
	"errors"
	"fmt"
)

// Kind classifies a rewrite error for the caller (the gRPC status code).
type Kind int

const (
	// Invalid means the domain XML or the VMI is malformed or asks for something vhost-user cannot do.
	Invalid Kind = iota + 1
	// Conflict means the domain carries settings, made by someone else, that vhost-user cannot work with.
	Conflict
)

// Error is a rewrite error; Msg names the VMI and, where one is at fault, the interface.
type Error struct {
	Kind Kind
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of err, or 0 when err is not an *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

func invalid(err error, format string, args ...any) *Error {
	return &Error{Kind: Invalid, Msg: fmt.Sprintf(format, args...), Err: err}
}

func conflict(format string, args ...any) *Error {
	return &Error{Kind: Conflict, Msg: fmt.Sprintf(format, args...)}
}
