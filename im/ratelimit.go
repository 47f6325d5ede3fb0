package im

import (
	"context"
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
	b := l.bucket(uid, now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// wait takes one token from uid's bucket, waiting for it when the bucket
// is empty: MQTT publishers are slowed down, not refused (PROTOCOL.md §9).
// A wait that would outlast ctx is not started: it fails with
// ErrRateLimited at once, having taken nothing.
func (l *limiter) wait(ctx context.Context, uid int64) error {
	if l.rate <= 0 {
		return nil
	}
	limit := time.Duration(-1)
	if dl, ok := ctx.Deadline(); ok {
		limit = dl.Sub(l.now())
	}
	d, ok := l.reserve(uid, limit)
	if !ok {
		return errorf(ErrRateLimited, "too many messages: slow down")
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// reserve takes one token from uid's bucket, borrowing it from the future
// if need be, and returns how long the caller must wait for it; it takes
// nothing if that is longer than limit (when limit >= 0).
func (l *limiter) reserve(uid int64, limit time.Duration) (time.Duration, bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucket(uid, now)
	wait := time.Duration(0)
	if b.tokens < 1 {
		wait = time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	}
	if limit >= 0 && wait > limit {
		return 0, false
	}
	b.tokens--
	return wait, true
}

// bucket returns uid's bucket, refilled up to now. l.mu is held.
func (l *limiter) bucket(uid int64, now time.Time) *bucket {
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
	return b
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

// typingThrottle lets one typing notice a second through per user and
// conversation.
type typingThrottle struct {
	now func() time.Time

	mu   sync.Mutex
	last map[typingKey]time.Time
}

type typingKey struct {
	uid  int64
	conv string
}

// typingInterval is the least time between two forwarded notices of one
// user in one conversation.
const typingInterval = time.Second

func newTypingThrottle(now func() time.Time) *typingThrottle {
	return &typingThrottle{now: now, last: make(map[typingKey]time.Time)}
}

// allow reports whether a notice of uid in conv may go now, and if so
// counts it.
func (t *typingThrottle) allow(uid int64, conv string) bool {
	now := t.now()
	k := typingKey{uid, conv}
	t.mu.Lock()
	defer t.mu.Unlock()
	if last, ok := t.last[k]; ok && now.Sub(last) < typingInterval {
		return false
	}
	if len(t.last) >= 100_000 {
		for k, last := range t.last { // forget what no longer throttles
			if now.Sub(last) >= typingInterval {
				delete(t.last, k)
			}
		}
		if len(t.last) >= 100_000 {
			clear(t.last) // 100,000 in the last second: start over
		}
	}
	t.last[k] = now
	return true
}
