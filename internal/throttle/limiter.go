package throttle

import (
	"math"
	"sync"
	"time"
)

// DefaultMaxKeys bounds every table of this package unless told otherwise.
const DefaultMaxKeys = 100_000

// pruneEvery is how often a table drops the entries that no longer limit
// anything, on its next use.
const pruneEvery = time.Minute

// LimiterOptions configures a Limiter.
type LimiterOptions struct {
	// Rate is how many events per second a key may have in the long run;
	// 0 or less disables the limiter (everything is allowed).
	Rate float64
	// Burst is how many events a key may have at once; default
	// max(1, Rate).
	Burst int
	// MaxKeys bounds the table; default DefaultMaxKeys. When it is full of
	// keys that still limit something, the least recently used is
	// forgotten.
	MaxKeys int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// PerMinute returns the rate of n events per minute, with a burst of n.
func PerMinute(n int) LimiterOptions {
	return LimiterOptions{Rate: float64(n) / 60, Burst: n}
}

// Limiter is a token bucket per key: each key may have Burst events at
// once and Rate per second after that. Safe for concurrent use.
type Limiter[K comparable] struct {
	rate    float64
	burst   float64
	maxKeys int
	now     func() time.Time

	mu        sync.Mutex
	buckets   map[K]*bucket
	lastPrune time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// NewLimiter returns a Limiter.
func NewLimiter[K comparable](o LimiterOptions) *Limiter[K] {
	if o.Burst < 1 {
		o.Burst = max(1, int(math.Min(o.Rate, math.MaxInt32)))
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Limiter[K]{rate: o.Rate, burst: float64(o.Burst), maxKeys: o.MaxKeys, now: o.Now, buckets: make(map[K]*bucket)}
}

// Enabled reports whether the limiter limits anything.
func (l *Limiter[K]) Enabled() bool { return l != nil && l.rate > 0 }

// Allow takes one event for k. It reports whether the event is allowed
// and, when it is not, how long until it would be.
func (l *Limiter[K]) Allow(k K) (bool, time.Duration) {
	if !l.Enabled() {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.maybePrune(now)
	b, ok := l.buckets[k]
	if !ok {
		if len(l.buckets) >= l.maxKeys {
			l.prune(now)
			if len(l.buckets) >= l.maxKeys {
				l.evictOldest()
			}
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[k] = b
	}
	b.tokens = l.level(b, now)
	b.last = now
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	}
	b.tokens--
	return true, 0
}

// Len returns how many keys the table holds.
func (l *Limiter[K]) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

func (l *Limiter[K]) level(b *bucket, now time.Time) float64 {
	return math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
}

func (l *Limiter[K]) maybePrune(now time.Time) {
	if now.Sub(l.lastPrune) >= pruneEvery {
		l.prune(now)
	}
}

// prune forgets the buckets that have refilled: they are the same as new
// ones.
func (l *Limiter[K]) prune(now time.Time) {
	l.lastPrune = now
	for k, b := range l.buckets {
		if l.level(b, now) >= l.burst {
			delete(l.buckets, k)
		}
	}
}

func (l *Limiter[K]) evictOldest() {
	var oldest K
	var at time.Time
	first := true
	for k, b := range l.buckets {
		if first || b.last.Before(at) {
			oldest, at, first = k, b.last, false
		}
	}
	delete(l.buckets, oldest)
}
