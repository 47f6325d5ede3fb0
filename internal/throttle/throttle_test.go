package throttle

import (
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Unix(1_700_000_000, 0)} }
func addr(s string) netip.Addr       { return netip.MustParseAddr(s) }
func req(remote string, xff ...string) *http.Request {
	r, _ := http.NewRequest("GET", "http://x/", nil)
	r.RemoteAddr = remote
	for _, h := range xff {
		r.Header.Add("X-Forwarded-For", h)
	}
	return r
}

func TestClientIP(t *testing.T) {
	proxies, err := ParseProxies(" 10.0.0.0/8, 192.0.2.7 ,::1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		desc string
		r    *http.Request
		want string
	}{
		{"direct client, no header", req("203.0.113.5:4000"), "203.0.113.5"},
		{"direct client's header is ignored", req("203.0.113.5:4000", "1.2.3.4"), "203.0.113.5"},
		{"trusted proxy, one hop", req("10.1.2.3:80", "198.51.100.9"), "198.51.100.9"},
		{"trusted proxy, spoofed left part ignored", req("10.1.2.3:80", "1.1.1.1, 198.51.100.9"), "198.51.100.9"},
		{"two trusted hops", req("10.1.2.3:80", "198.51.100.9, 10.9.9.9"), "198.51.100.9"},
		{"hops over several headers", req("192.0.2.7:80", "198.51.100.9", "10.9.9.9"), "198.51.100.9"},
		{"only trusted hops", req("10.1.2.3:80", "10.9.9.9"), "10.9.9.9"},
		{"garbage hop stops at the last trusted", req("10.1.2.3:80", "1.1.1.1, nonsense"), "10.1.2.3"},
		{"trusted proxy without header", req("10.1.2.3:80"), "10.1.2.3"},
		{"IPv6 proxy", req("[::1]:80", "2001:db8::1"), "2001:db8::1"},
		{"IPv4-mapped peer", req("[::ffff:203.0.113.5]:4000"), "203.0.113.5"},
		{"hop with a port", req("10.1.2.3:80", "198.51.100.9:5555"), "198.51.100.9"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if got := ClientIP(tc.r, proxies); got != addr(tc.want) {
				t.Fatalf("ClientIP = %v, want %s", got, tc.want)
			}
		})
	}
	if got := ClientIP(req("10.1.2.3:80", "198.51.100.9"), nil); got != addr("10.1.2.3") {
		t.Fatalf("nil proxies trusted a header: %v", got)
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0", "1.2.3.4/x"} {
		if _, err := ParseProxies(bad); err == nil {
			t.Errorf("ParseProxies(%q) accepted", bad)
		}
	}
}

func TestKeyGroupsIPv6By64(t *testing.T) {
	if Key(addr("2001:db8:1:2:aaaa::1")) != Key(addr("2001:db8:1:2:bbbb::2")) {
		t.Fatal("one /64 is several keys")
	}
	if Key(addr("2001:db8:1:2::1")) == Key(addr("2001:db8:1:3::1")) {
		t.Fatal("two /64s share a key")
	}
	if Key(addr("192.0.2.1")) == Key(addr("192.0.2.2")) || Key(addr("::ffff:192.0.2.1")) != addr("192.0.2.1") {
		t.Fatal("IPv4 keys")
	}
}

func TestLimiter(t *testing.T) {
	c := newClock()
	l := NewLimiter[string](LimiterOptions{Rate: 1, Burst: 3, Now: c.now})
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("event %d of the burst refused", i)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("over the burst: ok=%v wait=%v", ok, wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another key is limited too")
	}
	c.add(time.Second)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("no token after a second")
	}
	if ok, _ := NewLimiter[string](LimiterOptions{}).Allow("a"); !ok {
		t.Fatal("a disabled limiter refuses")
	}
}

func TestLimiterIsBounded(t *testing.T) {
	c := newClock()
	l := NewLimiter[int](LimiterOptions{Rate: 1, Burst: 2, MaxKeys: 100, Now: c.now})
	for i := range 10_000 {
		l.Allow(i)
		if n := l.Len(); n > 100 {
			t.Fatalf("%d keys after %d", n, i)
		}
	}
	// Refilled buckets are pruned as time passes.
	c.add(2 * pruneEvery)
	l.Allow(-1)
	if n := l.Len(); n != 1 {
		t.Fatalf("%d keys after everything refilled, want 1", n)
	}
}

func TestWindow(t *testing.T) {
	c := newClock()
	w := NewWindow[string](WindowOptions{Max: 3, Per: 15 * time.Minute, Now: c.now})
	for range 3 {
		if d := w.Blocked("a"); d != 0 {
			t.Fatalf("blocked early: %v", d)
		}
		w.Add("a")
		c.add(time.Minute)
	}
	// 3 events at 0, 1 and 2 min; now is 3 min: free again at 15 min.
	if d := w.Blocked("a"); d != 12*time.Minute {
		t.Fatalf("Blocked = %v, want 12m", d)
	}
	if w.Blocked("b") != 0 {
		t.Fatal("another key is blocked")
	}
	c.add(12 * time.Minute)
	if d := w.Blocked("a"); d != 0 {
		t.Fatalf("still blocked after the window: %v", d)
	}
	w.Add("a") // events at 1, 2 and 15 min
	if d := w.Blocked("a"); d != time.Minute {
		t.Fatalf("Blocked = %v, want 1m (the window slides)", d)
	}
	w.Reset("a")
	if w.Blocked("a") != 0 {
		t.Fatal("Reset did not clear")
	}
	if NewWindow[string](WindowOptions{}).Blocked("a") != 0 {
		t.Fatal("a disabled window blocks")
	}
}

func TestWindowIsBounded(t *testing.T) {
	c := newClock()
	w := NewWindow[int](WindowOptions{Max: 10, Per: time.Minute, MaxKeys: 50, Now: c.now})
	w.Add(0)
	for i := 1; i < 5000; i++ {
		c.add(time.Millisecond)
		w.Add(i)
		if n := w.Len(); n > 50 {
			t.Fatalf("%d keys", n)
		}
	}
	for range 100 {
		w.Add(7) // one key's log stays at Max entries
	}
	w.mu.Lock()
	n := len(w.events[7])
	w.mu.Unlock()
	if n != 10 {
		t.Fatalf("key 7 keeps %d events, want 10", n)
	}
	c.add(2 * time.Minute)
	w.Add(-1)
	if n := w.Len(); n != 1 {
		t.Fatalf("%d keys after the window passed, want 1", n)
	}
}

func TestGate(t *testing.T) {
	g := NewGate[string](2)
	r1, ok1 := g.Enter("a")
	r2, ok2 := g.Enter("a")
	_, ok3 := g.Enter("a")
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("admitted %v %v %v, want true true false", ok1, ok2, ok3)
	}
	if _, ok := g.Enter("b"); !ok {
		t.Fatal("another key refused")
	}
	r1()
	r1() // releasing twice is harmless
	if g.Active("a") != 1 {
		t.Fatalf("active %d, want 1", g.Active("a"))
	}
	r2()
	if _, ok := g.Enter("a"); !ok {
		t.Fatal("refused after release")
	}
}

func TestWindowTake(t *testing.T) {
	c := newClock()
	w := NewWindow[string](WindowOptions{Max: 2, Per: time.Minute, Now: c.now})
	if w.Take("a") != 0 || w.Take("a") != 0 {
		t.Fatal("the first two refused")
	}
	if d := w.Take("a"); d != time.Minute {
		t.Fatalf("third Take = %v, want 1m", d)
	}
	w.Undo("a")
	if w.Take("a") != 0 {
		t.Fatal("refused after an Undo")
	}
	w.Undo("b") // nothing to undo
	if w.Take("b") != 0 {
		t.Fatal("b refused")
	}
}
