package im

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/imserver/imserver/wire"
)

const (
	maxURLLen         = 2048
	maxFileNameLen    = 255
	maxCardTitleLen   = 256
	maxCardDescrLen   = 2000
	maxImageDimension = 100_000
)

// decodePublish parses an MQTT payload into a Publish. Fields the contract
// does not define ("from", "to", …) are ignored: the server fills them in.
func decodePublish(payload []byte) (wire.Publish, error) {
	var p wire.Publish
	if len(bytes.TrimSpace(payload)) == 0 {
		return p, errorf(ErrInvalid, "payload is empty: expected a JSON object {cid?,type,body}")
	}
	if !wire.ValidText(payload) {
		return p, errorf(ErrInvalid, "payload is not valid UTF-8")
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return p, errorf(ErrInvalid, "payload is not a JSON object {cid?,type,body}: %s", jsonProblem(err))
	}
	return p, nil
}

// jsonProblem describes a JSON decoding error without echoing the input.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		if te.Field != "" {
			return "field " + te.Field + " has the wrong type"
		}
		return "expected a JSON object"
	case errors.As(err, &se):
		return "malformed JSON"
	}
	return "malformed JSON"
}

// validatePublish checks a message against the contract and returns it with
// its body in canonical form (unknown body fields dropped).
func validatePublish(p wire.Publish) (wire.Publish, error) {
	if !wire.ValidText(p.Body) || !utf8.ValidString(p.CID) || !utf8.ValidString(p.Type) {
		return p, errorf(ErrInvalid, "the message is not valid UTF-8")
	}
	if utf8.RuneCountInString(p.CID) > wire.MaxCIDLen {
		return p, errorf(ErrInvalid, "cid is longer than %d characters", wire.MaxCIDLen)
	}
	if len(p.Body) == 0 || string(p.Body) == "null" {
		if p.Type == "" {
			return p, errorf(ErrInvalid, "type and body are required")
		}
		return p, errorf(ErrInvalid, "body is required")
	}
	var (
		body any
		err  error
	)
	switch p.Type {
	case wire.TypeText:
		body, err = validateText(p.Body)
	case wire.TypeImage:
		body, err = validateImage(p.Body)
	case wire.TypeFile:
		body, err = validateFile(p.Body)
	case wire.TypeCard:
		body, err = validateCard(p.Body)
	case "":
		return p, errorf(ErrInvalid, "type is required: text, image, file or card")
	default:
		return p, errorf(ErrInvalid, "unknown message type %q: expected text, image, file or card", truncate(p.Type, 32))
	}
	if err != nil {
		return p, err
	}
	canonical, err := json.Marshal(body)
	if err != nil {
		return p, errorf(ErrInvalid, "body cannot be encoded")
	}
	p.Body = canonical
	return p, nil
}

func validateText(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errorf(ErrInvalid, "a text body must be a JSON string")
	}
	if n := utf8.RuneCountInString(s); n < 1 || n > wire.MaxTextLen {
		if n > wire.MaxTextLen {
			return "", errorf(ErrTooLarge, "text is longer than %d characters", wire.MaxTextLen)
		}
		return "", errorf(ErrInvalid, "text must not be empty")
	}
	return s, nil
}

func validateImage(raw json.RawMessage) (wire.ImageBody, error) {
	var b wire.ImageBody
	if err := decodeObject(raw, &b, "image"); err != nil {
		return b, err
	}
	if err := checkURL("url", b.URL, true); err != nil {
		return b, err
	}
	for name, v := range map[string]*int64{"width": b.Width, "height": b.Height} {
		if v != nil && (*v < 1 || *v > maxImageDimension) {
			return b, errorf(ErrInvalid, "image %s must be between 1 and %d", name, maxImageDimension)
		}
	}
	return b, nil
}

func validateFile(raw json.RawMessage) (wire.FileBody, error) {
	var b wire.FileBody
	if err := decodeObject(raw, &b, "file"); err != nil {
		return b, err
	}
	if err := checkURL("url", b.URL, true); err != nil {
		return b, err
	}
	if n := utf8.RuneCountInString(b.Name); n < 1 || n > maxFileNameLen {
		return b, errorf(ErrInvalid, "file name must be 1 to %d characters", maxFileNameLen)
	}
	if b.Size != nil && *b.Size < 0 {
		return b, errorf(ErrInvalid, "file size must not be negative")
	}
	return b, nil
}

func validateCard(raw json.RawMessage) (wire.CardBody, error) {
	var b wire.CardBody
	if err := decodeObject(raw, &b, "card"); err != nil {
		return b, err
	}
	if n := utf8.RuneCountInString(b.Title); n < 1 || n > maxCardTitleLen {
		return b, errorf(ErrInvalid, "card title must be 1 to %d characters", maxCardTitleLen)
	}
	if utf8.RuneCountInString(b.Description) > maxCardDescrLen {
		return b, errorf(ErrInvalid, "card description is longer than %d characters", maxCardDescrLen)
	}
	if err := checkURL("url", b.URL, false); err != nil {
		return b, err
	}
	if err := checkURL("image", b.Image, false); err != nil {
		return b, err
	}
	return b, nil
}

func decodeObject(raw json.RawMessage, v any, typ string) error {
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		return errorf(ErrInvalid, "a %s body must be a JSON object", typ)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return errorf(ErrInvalid, "bad %s body: %s", typ, jsonProblem(err))
	}
	return nil
}

// checkURL accepts absolute http and https URLs only: other schemes
// (javascript:, data:) are a hazard for the web clients that render them.
func checkURL(field, s string, required bool) error {
	if s == "" {
		if required {
			return errorf(ErrInvalid, "%s is required", field)
		}
		return nil
	}
	if len(s) > maxURLLen {
		return errorf(ErrInvalid, "%s is longer than %d bytes", field, maxURLLen)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(s, " \t\r\n") {
		return errorf(ErrInvalid, "%s must be an absolute http or https URL", field)
	}
	return nil
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}
