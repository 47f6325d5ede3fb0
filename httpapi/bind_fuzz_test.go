package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/wire"
)

// FuzzBind feeds request bodies, as JSON and as forms (curl -d), through
// bind into the request types of the API. Invariants: nothing panics; a
// refusal is an API error of kind invalid or too large (a 400 or 413,
// never a 500); a form's message body is the JSON text the user typed
// (an object) or exactly the string the user typed.
func FuzzBind(f *testing.F) {
	for _, s := range []struct {
		form bool
		body string
	}{
		{true, "type=text&body=hello"},
		{true, "body=hello&cid=c-1&type=text"},
		{true, `type=image&body={"url":"https://example.com/a.png"}`},
		{true, "type=text&body=%7B%22not%22"},
		{true, "type=text&body=%FF%FE"},
		{true, "type=text&body=%ED%A0%80"},
		{true, "type=text&body=caf%C3%A9"},
		{true, "body=%22quoted%22"},
		{true, "name=general&private=true"},
		{true, "name=general&private=maybe"},
		{true, "uid=42"},
		{true, "uid=4x"},
		{true, "uid=99999999999999999999"},
		{true, `keyword_replies=[{"keyword":"price","reply":"see"}]&name=Tea`},
		{true, "keyword_replies=nope"},
		{true, "username=alice&password=secret1&username=bob"},
		{true, "%zz=1"},
		{true, ";;;&&&==="},
		{false, `{"cid":"c-1","type":"text","body":"hello"}`},
		{false, `{"type":"text","body":{"nested":[1,2,3]}}`},
		{false, `{"uid":"42"}`},
		{false, `{"uid":1e400}`},
		{false, `{"name":null,"keyword_replies":[null]}`},
		{false, `[1,2]`},
		{false, `{"body":"` + "\xff" + `"}`},
		{false, `{"cid":"` + "\xff" + `","type":"text","body":"x"}`},
		{false, ""},
		{false, "   "},
		{false, `{"a":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`},
	} {
		f.Add(s.form, []byte(s.body))
	}
	gin.SetMode(gin.TestMode)
	f.Fuzz(func(t *testing.T, form bool, body []byte) {
		ct := "application/json"
		if form {
			ct = "application/x-www-form-urlencoded"
		}
		try := func(v any) error {
			c, _ := gin.CreateTestContext(httptest.NewRecorder())
			c.Request = httptest.NewRequest("POST", "/", bytes.NewReader(body))
			c.Request.Header.Set("Content-Type", ct)
			err := bind(c, v)
			if err != nil {
				var e *im.Error
				if !errors.As(err, &e) || !(errors.Is(err, im.ErrInvalid) || errors.Is(err, im.ErrTooLarge)) {
					t.Fatalf("%s %q into %T: error %v, want an API error invalid or too large", ct, body, v, err)
				}
			}
			return err
		}
		var p wire.Publish
		bound := try(&p) == nil
		if bound && !form {
			for _, f := range []string{p.CID, p.Type} {
				if strings.ContainsRune(f, utf8.RuneError) && !bytes.Contains(body, []byte("\uFFFD")) && !bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`)) {
					t.Fatalf("JSON %q bound a field as %q: U+FFFD the client did not send", body, f)
				}
			}
		}
		if bound && form {
			values, err := url.ParseQuery(string(body))
			if vals := values["body"]; err == nil && len(vals) > 0 {
				s := vals[0]
				if t0 := strings.TrimSpace(s); strings.HasPrefix(t0, "{") && json.Valid([]byte(t0)) {
					if string(p.Body) != t0 {
						t.Fatalf("form body %q bound as %q", s, p.Body)
					}
				} else {
					var got string
					if err := json.Unmarshal(p.Body, &got); err != nil || got != s {
						t.Fatalf("form body %q bound as %s, which is the string %q", s, p.Body, got)
					}
				}
			}
		}
		try(&wire.Credentials{})
		try(&wire.NewRoom{})
		try(&wire.ShopInput{})
		try(&wire.AddMember{})
		try(&wire.Transfer{})
		try(&wire.CannedInput{})
	})
}
