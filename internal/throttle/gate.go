package throttle

import "sync"

// Gate bounds how many requests each key may have in progress at once
// (for example password checks per client IP, so that one client cannot
// fill the server's hashing slots and starve everyone else). The table
// holds only keys with requests in progress. Safe for concurrent use.
type Gate[K comparable] struct {
	max int

	mu     sync.Mutex
	active map[K]int
}

// NewGate returns a Gate allowing max requests in progress per key; 0 or
// less disables it.
func NewGate[K comparable](max int) *Gate[K] {
	return &Gate[K]{max: max, active: make(map[K]int)}
}

// Enter admits a request for k if k has fewer than max in progress. The
// caller must call release exactly once when the request is done.
func (g *Gate[K]) Enter(k K) (release func(), ok bool) {
	if g == nil || g.max <= 0 {
		return func() {}, true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.active[k] >= g.max {
		return nil, false
	}
	g.active[k]++
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			if g.active[k]--; g.active[k] <= 0 {
				delete(g.active, k)
			}
		})
	}, true
}

// Active returns how many requests k has in progress.
func (g *Gate[K]) Active(k K) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.active[k]
}
