package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imserver/imserver/app"
	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/wire"
)

// clientFrom returns an HTTP client whose connections leave from the
// loopback address ip (127.0.0.x), so that one test can be several
// clients.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

// answer is an HTTP answer.
type answer struct {
	status     int
	code       string // the error envelope's code
	retryAfter int    // seconds, 0 if absent
	body       []byte
}

// post sends a JSON body from client c, with extra headers.
func post(t *testing.T, c *http.Client, url string, body any, headers ...string) answer {
	t.Helper()
	a, err := tryPost(c, url, body, headers...)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	return a
}

// tryPost is post that returns the error (for goroutines other than the
// test's).
func tryPost(c *http.Client, url string, body any, headers ...string) (answer, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequest("POST", url, bytes.NewReader(b))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	return answer{status: resp.StatusCode, code: imtest.ErrorCode(out), retryAfter: ra, body: out}, nil
}

func creds(user, pw string) wire.Credentials { return wire.Credentials{Username: user, Password: pw} }

// PROTOCOL.md §6: 10 failed logins for one username from one client IP
// within 15 minutes, then 429 with Retry-After; the owner still logs in
// from elsewhere, and other usernames from the same IP are not affected.
func TestLoginThrottling(t *testing.T) {
	s := imtest.Start(t, imtest.Options{})
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	login := s.URL + "/api/v1/auth/login"
	attacker, owner := clientFrom("127.0.0.2"), clientFrom("127.0.0.3")
	for i := range 10 {
		if a := post(t, attacker, login, creds(alice.Username, "wrong-password")); a.status != 401 {
			t.Fatalf("failure %d: %d %s", i+1, a.status, a.body)
		}
	}
	a := post(t, attacker, login, creds(alice.Username, "wrong-password"))
	if a.status != 429 || a.code != "rate_limited" || a.retryAfter < 14*60 || a.retryAfter > 15*60 {
		t.Fatalf("11th failure: %d %q Retry-After %d: %s", a.status, a.code, a.retryAfter, a.body)
	}
	// Even the right password is refused from there, and the username is
	// matched case-insensitively.
	if a := post(t, attacker, login, creds(alice.Username, "password1")); a.status != 429 {
		t.Fatalf("right password from the throttled address: %d %s", a.status, a.body)
	}
	if a := post(t, attacker, login, creds(strings.ToUpper(alice.Username), "x-password")); a.status != 429 {
		t.Fatalf("other spelling from the throttled address: %d %s", a.status, a.body)
	}
	if a := post(t, owner, login, creds(alice.Username, "password1")); a.status != 200 {
		t.Fatalf("the owner from another address: %d %s", a.status, a.body)
	}
	if a := post(t, attacker, login, creds(bob.Username, "password1")); a.status != 200 {
		t.Fatalf("another user from the throttled address: %d %s", a.status, a.body)
	}
	// A success clears the failures of that username and address.
	for range 9 {
		post(t, owner, login, creds(bob.Username, "wrong-password"))
	}
	if a := post(t, owner, login, creds(bob.Username, "password1")); a.status != 200 {
		t.Fatalf("bob after 9 failures: %d", a.status)
	}
	for i := range 10 {
		if a := post(t, owner, login, creds(bob.Username, "wrong-password")); a.status != 401 {
			t.Fatalf("after a success, failure %d: %d", i+1, a.status)
		}
	}
}

// Behind a trusted proxy the client is X-Forwarded-For's; from anyone
// else the header is ignored.
func TestThrottlingBehindProxy(t *testing.T) {
	s := imtest.Start(t, imtest.Options{Config: func(c *app.Config) {
		c.TrustedProxies = "127.0.0.9"
		c.LoginFailures = 2
	}})
	alice := s.Register(t, "alice")
	login := s.URL + "/api/v1/auth/login"
	proxy, direct := clientFrom("127.0.0.9"), clientFrom("127.0.0.2")
	for range 2 {
		post(t, proxy, login, creds(alice.Username, "wrong-password"), "X-Forwarded-For", "198.51.100.1")
	}
	if a := post(t, proxy, login, creds(alice.Username, "wrong-password"), "X-Forwarded-For", "198.51.100.1"); a.status != 429 {
		t.Fatalf("client behind the proxy: %d", a.status)
	}
	if a := post(t, proxy, login, creds(alice.Username, "password1"), "X-Forwarded-For", "198.51.100.2"); a.status != 200 {
		t.Fatalf("another client behind the same proxy: %d %s", a.status, a.body)
	}
	// An untrusted peer cannot pick its identity with the header.
	for i := range 2 {
		post(t, direct, login, creds(alice.Username, "wrong-password"), "X-Forwarded-For", "203.0.113."+strconv.Itoa(i))
	}
	if a := post(t, direct, login, creds(alice.Username, "wrong-password"), "X-Forwarded-For", "203.0.113.99"); a.status != 429 {
		t.Fatalf("a spoofed X-Forwarded-For escaped throttling: %d", a.status)
	}
}

func TestRegisterRate(t *testing.T) {
	s := imtest.Start(t, imtest.Options{Config: func(c *app.Config) { c.RegisterRate = 3 }})
	reg := s.URL + "/api/v1/auth/register"
	one, two := clientFrom("127.0.0.2"), clientFrom("127.0.0.3")
	for i := range 3 {
		if a := post(t, one, reg, creds("user_a"+strconv.Itoa(i), "password1")); a.status != 201 {
			t.Fatalf("registration %d: %d %s", i+1, a.status, a.body)
		}
	}
	a := post(t, one, reg, creds("user_a9", "password1"))
	if a.status != 429 || a.code != "rate_limited" || a.retryAfter < 1 || a.retryAfter > 20 {
		t.Fatalf("4th registration in a minute at 3/min: %d %q Retry-After %d", a.status, a.code, a.retryAfter)
	}
	if a := post(t, two, reg, creds("user_b1", "password1")); a.status != 201 {
		t.Fatalf("another address: %d %s", a.status, a.body)
	}
}

// gatedPasswords is a password hasher whose checks, once armed, wait
// until the test lets them go.
type gatedPasswords struct {
	armed   *atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (g gatedPasswords) Hash(string) (string, error) { return "h", nil }

func (g gatedPasswords) Verify(string, string) (bool, error) {
	if !g.armed.Load() {
		return true, nil
	}
	g.entered <- struct{}{}
	<-g.release
	return false, nil
}

// While every password-hashing slot is taken, a login waits a moment and
// then gets 503 "unavailable" with Retry-After, never a 500 or a stall;
// and one address cannot take every slot.
func TestPasswordChecksAreBounded(t *testing.T) {
	g := gatedPasswords{armed: new(atomic.Bool), entered: make(chan struct{}, 8), release: make(chan struct{})}
	s := imtest.Start(t, imtest.Options{Config: func(c *app.Config) {
		c.Passwords = g
		c.HashConcurrency = 2
		c.PasswordChecksPerIP = 1
	}})
	g.armed.Store(true)
	login := s.URL + "/api/v1/auth/login"
	var wg sync.WaitGroup
	defer func() {
		close(g.release)
		wg.Wait()
	}()
	hold := func(ip string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			post(t, clientFrom(ip), login, creds("someone", "password1"))
		}()
		<-g.entered
	}
	hold("127.0.0.2")
	if a := post(t, clientFrom("127.0.0.2"), login, creds("someone", "password1")); a.status != 429 || a.retryAfter < 1 {
		t.Fatalf("a second check from one address: %d %q Retry-After %d", a.status, a.code, a.retryAfter)
	}
	hold("127.0.0.3")
	a := post(t, clientFrom("127.0.0.4"), login, creds("someone", "password1"))
	if a.status != 503 || a.code != "unavailable" || a.retryAfter < 1 {
		t.Fatalf("a check while all slots are busy: %d %q Retry-After %d: %s", a.status, a.code, a.retryAfter, a.body)
	}
	var e wire.ErrorResponse
	if json.Unmarshal(a.body, &e) != nil || e.Error.Message == "" {
		t.Fatalf("503 body is not the error envelope: %s", a.body)
	}
}

// The HTTP server's deadlines end a request, not a WebSocket: once /mqtt
// is upgraded, the session lives by MQTT's keepalive. Here the deadlines
// are one second, and the session still works three seconds later.
func TestWebSocketOutlivesHTTPDeadlines(t *testing.T) {
	s := imtest.Start(t, imtest.Options{Config: func(c *app.Config) {
		c.HTTPReadTimeout = time.Second
		c.HTTPWriteTimeout = time.Second
	}})
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	b := s.Connect(t, bob, imtest.ClientOptions{Transport: imtest.WS})
	b.MustSubscribe(t, inbox(bob.UID))
	a := s.Connect(t, alice, imtest.ClientOptions{Transport: imtest.WS})
	time.Sleep(3 * time.Second) // past both deadlines
	a.Publish(t, inbox(bob.UID), 1, text("c1", "still there?"))
	if e := b.In.Next(t).Envelope(t); e.CID != "c1" {
		t.Fatalf("bob got %+v", e)
	}
	b.Publish(t, inbox(alice.UID), 1, text("c2", "yes"))
	// And a REST request still answers within its deadline.
	s.MustDo(t, "GET", "/api/v1/me", alice.Token, nil, http.StatusOK, nil)
}
