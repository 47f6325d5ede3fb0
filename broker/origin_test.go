package broker

import (
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestOriginChecker(t *testing.T) {
	check := originChecker([]string{"https://chat.example.com", " http://localhost:8080/ "})
	for _, tc := range []struct {
		desc, host, origin string
		want               bool
	}{
		{"listed origin", "chat.example.com", "https://chat.example.com", true},
		{"listed, other case and default port", "chat.example.com", "https://CHAT.example.com:443", true},
		{"listed with a port", "localhost:8080", "http://localhost:8080", true},
		{"foreign page claiming its own host", "evil.example", "https://evil.example", false},
		{"foreign page, server's host", "chat.example.com", "https://evil.example", false},
		{"other scheme", "chat.example.com", "http://chat.example.com", false},
		{"other port", "chat.example.com", "https://chat.example.com:8443", false},
		{"null origin", "chat.example.com", "null", false},
		{"no Origin: not a browser", "chat.example.com", "", true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "http://"+tc.host+"/mqtt", nil)
			r.Host = tc.host
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if got := check(r); got != tc.want {
				t.Fatalf("allowed = %v, want %v", got, tc.want)
			}
		})
	}
	for _, all := range [][]string{nil, {"*"}, {"https://a.example", "*"}} {
		r, _ := http.NewRequest("GET", "http://x/mqtt", nil)
		r.Header.Set("Origin", "https://evil.example")
		if !originChecker(all)(r) {
			t.Fatalf("%q refused an origin", all)
		}
	}
}

// Through the listener: with a list configured, a foreign page is refused
// even when it sends its own Host, and the public URL's origin is allowed.
func TestWebSocketOrigins(t *testing.T) {
	_, ws := startBroker(t, Options{AllowedOrigins: []string{"https://app.example"}, PublicURL: "https://chat.example.com/"})
	dial := func(host, origin string) int {
		h := http.Header{"Sec-WebSocket-Protocol": {"mqtt"}, "Origin": {origin}, "Host": {host}}
		d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
		c, resp, err := d.Dial(ws, h)
		if err == nil {
			c.Close()
		}
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		return resp.StatusCode
	}
	if got := dial("evil.example", "https://evil.example"); got != http.StatusForbidden {
		t.Fatalf("evil.example with its own Host: %d, want 403", got)
	}
	if got := dial("chat.example.com", "https://app.example"); got != http.StatusSwitchingProtocols {
		t.Fatalf("listed origin: %d", got)
	}
	if got := dial("chat.example.com", "https://chat.example.com"); got != http.StatusSwitchingProtocols {
		t.Fatalf("the public URL's origin: %d", got)
	}
}
