package im

import (
	"sync"
	"time"
)

// limiter is a token bucket per user.
type limiter struct {
	rate  float64 // tokens per second; 0 = unlimited
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[int64]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int, now func() time.Time) *limiter {
	if burst < 1 {
		burst = max(1, int(rate))
	}
	return &limiter{rate: rate, burst: float64(burst), now: now, buckets: make(map[int64]*bucket)}
}

// allow takes one token from uid's bucket and reports whether there was one.
func (l *limiter) allow(uid int64) bool {
	if l.rate <= 0 {
		return true
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[uid]
	if !ok {
		if len(l.buckets) >= 100_000 {
			l.prune(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[uid] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// prune forgets the buckets that have refilled: they are equivalent to new
// ones. It keeps the map's size bounded by the users active in the last
// burst/rate seconds.
func (l *limiter) prune(now time.Time) {
	for uid, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, uid)
		}
	}
}
