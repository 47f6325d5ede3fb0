package e2e

import (
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"
)

// statusCounts counts answers by HTTP status.
type statusCounts struct {
	mu sync.Mutex
	n  map[int]int
}

func (s *statusCounts) add(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n = map[int]int{}
	}
	s.n[status]++
}

func (s *statusCounts) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []int
	for k := range s.n {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	out := ""
	for _, k := range keys {
		out += fmt.Sprintf(" %d×%d", s.n[k], k)
	}
	return out
}

func (s *statusCounts) get(status int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[status]
}

// Finding 2: 128 concurrent failed logins, with the default argon2id
// parameters, must keep the server's memory under 400 MiB and real logins
// (from another address) under 2 s. Three floods: one address guessing one
// account; one address trying many usernames; 128 addresses trying many
// usernames (nothing but the global bound on hashing helps there, and a
// real login may be told 503 "try again", but never waits).
func TestHostileLoginFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("a 24 s flood")
	}
	for _, tc := range []struct {
		name   string
		ip     func(worker int) string
		user   func(worker, i int) string
		strict bool // every real login must succeed
	}{
		{"one address, one account",
			func(int) string { return "127.0.0.2" }, func(int, int) string { return "real_user" }, true},
		{"one address, many usernames",
			func(int) string { return "127.0.0.2" }, func(w, i int) string { return fmt.Sprintf("nobody_%d_%d", w, i) }, true},
		{"128 addresses, many usernames",
			func(w int) string { return fmt.Sprintf("127.0.2.%d", w+1) }, func(w, i int) string { return fmt.Sprintf("nobody_%d_%d", w, i) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startChild(t, childOptions{})
			if _, err := restLogin(clientFrom("127.0.0.1"), c.URL, "real_user", true); err != nil {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond)
			rssBefore, _ := c.RSS(t)
			var flood statusCounts
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for w := range 128 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					hc := clientFrom(tc.ip(w))
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						a, _ := tryPost(hc, c.URL+"/api/v1/auth/login", creds(tc.user(w, i), "wrong-password"))
						flood.add(a.status) // 0: no answer within 30 s
					}
				}()
			}
			var real statusCounts
			var slowest time.Duration
			hc := clientFrom("127.0.0.1")
			// A real user gets in: at once as a rule (the figures are logged:
			// docs/security.md has them), and in any case within 15 s, trying
			// again after a 503 as its Retry-After says. The bound is generous
			// so that a loaded CI machine does not fail it; the behaviour
			// under test is that nobody is locked out.
			for range 8 {
				time.Sleep(time.Second)
				start := time.Now()
				var a answer
				for {
					var err error
					if a, err = tryPost(hc, c.URL+"/api/v1/auth/login", creds("real_user", "password1")); err != nil {
						a.body = []byte(err.Error())
					}
					real.add(a.status)
					if a.status != http.StatusServiceUnavailable || time.Since(start) > 15*time.Second {
						break
					}
					time.Sleep(time.Second)
				}
				took := time.Since(start)
				slowest = max(slowest, took)
				if a.status != http.StatusOK && (tc.strict || a.status != http.StatusServiceUnavailable) {
					t.Errorf("a real login during the flood: %d after %v: %s", a.status, took.Round(time.Millisecond), a.body)
				}
			}
			close(stop)
			wg.Wait()
			rss, peak := c.RSS(t)
			t.Logf("flood answers:%s; real logins:%s, slowest %v; RSS %s before, %s after, peak %s",
				flood.String(), real.String(), slowest.Round(time.Millisecond), mib(rssBefore), mib(rss), mib(peak))
			if peak > 400<<20 {
				t.Errorf("peak RSS %s", mib(peak))
			}
		})
	}
}

// Finding 3, measured: how many passwords one client can try against one
// account, and how many accounts it can register, in 10 s.
func TestHostileGuessAndRegisterRates(t *testing.T) {
	if testing.Short() {
		t.Skip("20 s")
	}
	c := startChild(t, childOptions{})
	if _, err := restLogin(clientFrom("127.0.0.1"), c.URL, "victim", true); err != nil {
		t.Fatal(err)
	}
	const d = 10 * time.Second
	run := func(workers int, do func(w, i int) int) *statusCounts {
		var counts statusCounts
		deadline := time.Now().Add(d)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; time.Now().Before(deadline); i++ {
					counts.add(do(w, i))
				}
			}()
		}
		wg.Wait()
		return &counts
	}
	hc := clientFrom("127.0.0.2")
	guesses := run(4, func(w, i int) int {
		a, _ := tryPost(hc, c.URL+"/api/v1/auth/login", creds("victim", fmt.Sprintf("guess-%d-%d", w, i)))
		return a.status
	})
	checked := guesses.get(401)
	t.Logf("password guesses against one account from one address in %v:%s → %.1f checked per second", d, guesses.String(), float64(checked)/d.Seconds())
	if checked > 10 {
		t.Errorf("%d passwords checked, want at most 10 per 15 minutes", checked)
	}
	regs := run(4, func(w, i int) int {
		a, _ := tryPost(hc, c.URL+"/api/v1/auth/register", creds(fmt.Sprintf("bot_%d_%d", w, i), "password1"))
		return a.status
	})
	created := regs.get(201)
	t.Logf("registrations from one address in %v:%s → %.1f accounts per second", d, regs.String(), float64(created)/d.Seconds())
	if created > 60+int(d.Seconds())+1 {
		t.Errorf("%d accounts registered in %v, want at most 60 + 1 per second", created, d)
	}
}
