package im

import (
	"errors"
	"fmt"
)

// The kinds of failure the domain reports. Every error returned by Service
// wraps exactly one of them (or is an unexpected internal failure); the
// edges (REST, MQTT) map them to status codes, error events and MQTT 5
// reason codes, each in one place.
var (
	ErrInvalid      = errors.New("invalid request")
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrTooLarge     = errors.New("too large")
	ErrRateLimited  = errors.New("rate limited")
	// ErrUnavailable: the server is too busy to do it now (too many
	// password checks in progress); try again shortly.
	ErrUnavailable = errors.New("temporarily unavailable")
)

// Error is a failure with a message meant for the caller. Kind is one of
// the sentinels above.
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the kind, so errors.Is(err, ErrForbidden) works.
func (e *Error) Unwrap() error { return e.Kind }

func errorf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// PublicMessage returns the text to show a caller for err: the message of an
// *Error, the kind's name for a bare sentinel, and a generic text for
// anything else, so that internal details (SQL, file paths) never leak.
func PublicMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Msg
	}
	for _, kind := range []error{ErrInvalid, ErrUnauthorized, ErrForbidden, ErrNotFound, ErrConflict, ErrTooLarge, ErrRateLimited, ErrUnavailable} {
		if errors.Is(err, kind) {
			return kind.Error()
		}
	}
	return "internal server error"
}
