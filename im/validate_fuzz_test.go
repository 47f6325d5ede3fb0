package im

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/imserver/imserver/wire"
)

// FuzzPublish feeds MQTT payloads through decodePublish and
// validatePublish, the path every published message takes. Invariants:
// nothing panics; a refusal is ErrInvalid or ErrTooLarge; an accepted
// message has a valid-UTF-8 cid of at most 64 characters and a known type,
// and a body that is canonical (validating it again changes nothing),
// valid UTF-8 JSON within the limits, and for text the very string the
// sender wrote (no U+FFFD it did not send).
func FuzzPublish(f *testing.F) {
	for _, s := range []string{
		`{"cid":"c-1","type":"text","body":"hello"}`,
		`{"type":"text","body":"héllo 😀 \u00e9 \ud83d\ude00"}`,
		`{"type":"text","body":""}`,
		`{"type":"text","body":"` + strings.Repeat("é", wire.MaxTextLen) + `"}`,
		`{"type":"text","body":"` + strings.Repeat("x", wire.MaxTextLen+1) + `"}`,
		`{"cid":"` + strings.Repeat("c", wire.MaxCIDLen+1) + `","type":"text","body":"x"}`,
		`{"type":"text","body":"caf` + "\xe9" + `"}`,
		`{"type":"text","body":"\ud800"}`,
		`{"type":"text","body":"\udc00\ud800"}`,
		`{"type":"text","body":"\\ud800"}`,
		`{"type":"text","body":"\ud800\u0041"}`,
		`{"cid":"` + "\xff" + `","type":"text","body":"x"}`,
		`{"type":"text","body":"a\u0000b"}`,
		`{"type":"text","body":"\ufffd"}`,
		`{"type":"image","body":{"url":"https://example.com/a.png","width":10,"height":20,"extra":1}}`,
		`{"type":"image","body":{"url":"javascript:alert(1)"}}`,
		`{"type":"image","body":{"url":"https://example.com/a.png","width":0}}`,
		`{"type":"file","body":{"url":"http://example.com/f","name":"f.txt","size":-1}}`,
		`{"type":"card","body":{"title":"t","description":"d","url":"https://x.y","image":"data:image/png;base64,AA"}}`,
		`{"type":"video","body":"x"}`,
		`{"type":"text","body":null}`,
		`{"type":"text"}`,
		`{"type":"text","body":{"x":1}}`,
		`not json`,
		`[]`,
		`null`,
		` `,
		`{"type":"text","body":"x","type":"card"}`,
		`{"TYPE":"text","Body":"case-insensitive keys"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		p, err := decodePublish(payload)
		if err != nil {
			checkRefusal(t, payload, err)
			return
		}
		v, err := validatePublish(p)
		if err != nil {
			checkRefusal(t, payload, err)
			return
		}
		if !utf8.ValidString(v.CID) || utf8.RuneCountInString(v.CID) > wire.MaxCIDLen {
			t.Fatalf("accepted cid %q", v.CID)
		}
		if !utf8.Valid(v.Body) || !json.Valid(v.Body) || !wire.ValidText(v.Body) {
			t.Fatalf("accepted body is not valid UTF-8 JSON: %q", v.Body)
		}
		again, err := validatePublish(v)
		if err != nil {
			t.Fatalf("the canonical body %q is refused: %v", v.Body, err)
		}
		if !bytes.Equal(again.Body, v.Body) {
			t.Fatalf("the body is not canonical: %q re-encodes to %q", v.Body, again.Body)
		}
		switch v.Type {
		case wire.TypeText:
			var in, out string
			if json.Unmarshal(p.Body, &in) != nil || json.Unmarshal(v.Body, &out) != nil {
				t.Fatalf("text body %q / %q does not decode", p.Body, v.Body)
			}
			if in != out {
				t.Fatalf("the text changed: %q became %q", in, out)
			}
			if n := utf8.RuneCountInString(out); n < 1 || n > wire.MaxTextLen {
				t.Fatalf("accepted a text of %d characters", n)
			}
			if strings.ContainsRune(out, utf8.RuneError) && !bytes.Contains(payload, []byte("\uFFFD")) && !bytes.Contains(bytes.ToLower(payload), []byte(`\ufffd`)) {
				t.Fatalf("U+FFFD in the stored text that the sender did not write: %q", payload)
			}
		case wire.TypeImage, wire.TypeFile, wire.TypeCard:
			if len(v.Body) == 0 || v.Body[0] != '{' {
				t.Fatalf("%s body %q is not an object", v.Type, v.Body)
			}
		default:
			t.Fatalf("accepted type %q", v.Type)
		}
	})
}

func checkRefusal(t *testing.T, payload []byte, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
		t.Fatalf("payload %q refused with %v, want ErrInvalid or ErrTooLarge", payload, err)
	}
}
