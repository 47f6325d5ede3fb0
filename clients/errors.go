package clients

import (
	"errors"
	"fmt"

	"github.com/imserver/imserver/wire"
)

// The kinds of refusal the server reports, over REST (the error envelope's
// code) and over MQTT (the error event's code) alike. Every *Error matches
// exactly one of them with errors.Is, whichever protocol it came from:
//
//	if errors.Is(err, clients.ErrNotFound) { … }
var (
	ErrInvalid      = errors.New("invalid request")             // invalid_request, invalid
	ErrUnauthorized = errors.New("unauthorized")                // unauthorized: log in again
	ErrForbidden    = errors.New("forbidden")                   // forbidden
	ErrNotFound     = errors.New("not found")                   // not_found
	ErrConflict     = errors.New("conflict")                    // conflict (a username taken)
	ErrTooLarge     = errors.New("too large")                   // payload_too_large, too_large
	ErrRateLimited  = errors.New("rate limited")                // rate_limited
	ErrServer       = errors.New("server error")                // internal, or an unexpected status
	ErrClosed       = errors.New("client closed")               // the Client was closed
	ErrNotConnected = errors.New("not connected to the server") // a send found no connection
)

// Error is a refusal from the server. Over REST, Status is the HTTP status;
// over MQTT it is 0 and Topic and CID name the refused publish.
type Error struct {
	Status  int    // HTTP status; 0 for an MQTT error event
	Code    string // the contract's code: "not_found", "forbidden", …
	Message string // the server's explanation, meant for people
	Topic   string // MQTT: the topic of the refused publish
	CID     string // MQTT: the cid of the refused publish
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("%s (%d %s)", e.Message, e.Status, e.Code)
	}
	return fmt.Sprintf("%s (%s)", e.Message, e.Code)
}

// Is makes errors.Is(err, ErrNotFound) and the like work.
func (e *Error) Is(target error) bool { return kindOf(e.Code, e.Status) == target }

func kindOf(code string, status int) error {
	switch code {
	case wire.HTTPInvalidRequest, wire.CodeInvalid:
		return ErrInvalid
	case wire.HTTPUnauthorized:
		return ErrUnauthorized
	case wire.HTTPForbidden: // == wire.CodeForbidden
		return ErrForbidden
	case wire.HTTPNotFound: // == wire.CodeNotFound
		return ErrNotFound
	case wire.HTTPConflict:
		return ErrConflict
	case wire.HTTPPayloadTooLarge, wire.CodeTooLarge:
		return ErrTooLarge
	case wire.HTTPRateLimited: // == wire.CodeRateLimited
		return ErrRateLimited
	}
	switch {
	case status == 400:
		return ErrInvalid
	case status == 401:
		return ErrUnauthorized
	case status == 403:
		return ErrForbidden
	case status == 404:
		return ErrNotFound
	case status == 409:
		return ErrConflict
	case status == 413:
		return ErrTooLarge
	case status == 429:
		return ErrRateLimited
	}
	return ErrServer
}

// errorFromEvent turns an error event into an *Error.
func errorFromEvent(ev wire.ErrorEvent) *Error {
	return &Error{Code: ev.Code, Message: ev.Message, Topic: ev.Topic, CID: ev.CID}
}
