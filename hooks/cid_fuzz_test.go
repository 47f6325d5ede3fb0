package hooks

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/imserver/imserver/wire"
)

// FuzzCidOf feeds refused payloads to cidOf, which digs out the cid for
// the error event. Invariants: nothing panics; the cid is valid UTF-8 of
// at most 64 characters (it goes into JSON the client parses); a payload
// over the size limit yields none; and a well-formed payload's cid of at
// most 64 characters comes back exactly.
func FuzzCidOf(f *testing.F) {
	for _, s := range []string{
		`{"cid":"c-1","type":"text","body":"x"}`,
		`{"cid":"` + strings.Repeat("é", wire.MaxCIDLen+1) + `"}`,
		`{"cid":"` + strings.Repeat("c", wire.MaxCIDLen) + `"}`,
		`{"cid":"` + "\xff\xfe" + `"}`,
		`{"cid":"\ud800"}`,
		`{"cid":"😀😀"}`,
		`{"cid":42}`,
		`{"cid":null}`,
		`{"cid":{"x":"y"}}`,
		`{"cid":"a","cid":"b"}`,
		`{"CID":"upper"}`,
		`["cid"]`,
		`{"cid":"unterminated`,
		`not json`,
		``,
		`{"cid":"` + strings.Repeat("x", wire.MaxPayload) + `"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		cid := cidOf(payload)
		if !utf8.ValidString(cid) {
			t.Fatalf("cidOf(%q) = %q: not valid UTF-8", payload, cid)
		}
		if n := utf8.RuneCountInString(cid); n > wire.MaxCIDLen {
			t.Fatalf("cidOf(%q) has %d characters", payload, n)
		}
		if len(payload) > wire.MaxPayload && cid != "" {
			t.Fatalf("cidOf of a %d-byte payload = %q", len(payload), cid)
		}
		var v struct {
			CID string `json:"cid"`
		}
		if utf8.Valid(payload) && json.Unmarshal(payload, &v) == nil && len(payload) <= wire.MaxPayload &&
			utf8.RuneCountInString(v.CID) <= wire.MaxCIDLen && !strings.ContainsRune(v.CID, utf8.RuneError) && cid != v.CID {
			t.Fatalf("cidOf(%q) = %q, want %q", payload, cid, v.CID)
		}
	})
}
