package throttle

import (
	"sync"
	"time"
)

// WindowOptions configures a Window.
type WindowOptions struct {
	// Max events per key within Per; 0 or less disables the window.
	Max int
	Per time.Duration
	// MaxKeys bounds the table; default DefaultMaxKeys. When it is full of
	// keys with events still inside the window, the key whose last event
	// is the oldest is forgotten.
	MaxKeys int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Window counts events per key over a sliding window (exactly: it keeps
// the times of the last Max events of each key) and reports a key as
// blocked while it has had Max events within the last Per. Login
// throttling uses it with failed logins as the events. Safe for concurrent
// use.
type Window[K comparable] struct {
	max     int
	per     time.Duration
	maxKeys int
	now     func() time.Time

	mu        sync.Mutex
	events    map[K][]time.Time // oldest first, at most max
	lastPrune time.Time
}

// NewWindow returns a Window.
func NewWindow[K comparable](o WindowOptions) *Window[K] {
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Window[K]{max: o.Max, per: o.Per, maxKeys: o.MaxKeys, now: o.Now, events: make(map[K][]time.Time)}
}

// Enabled reports whether the window limits anything.
func (w *Window[K]) Enabled() bool { return w != nil && w.max > 0 && w.per > 0 }

// Blocked returns how long k stays blocked: 0 if it may go on.
func (w *Window[K]) Blocked(k K) time.Duration {
	if !w.Enabled() {
		return 0
	}
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	ev := w.live(k, now)
	if len(ev) < w.max {
		return 0
	}
	return ev[len(ev)-w.max].Add(w.per).Sub(now)
}

// Take records an event for k unless k is blocked, in one step (so that
// concurrent attempts cannot all pass a check made before any of them is
// counted), and returns how long k stays blocked: 0 if the event was
// recorded. An attempt that turns out not to count is taken back with
// Undo.
func (w *Window[K]) Take(k K) time.Duration {
	if !w.Enabled() {
		return 0
	}
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if ev := w.live(k, now); len(ev) >= w.max {
		return ev[len(ev)-w.max].Add(w.per).Sub(now)
	}
	w.addLocked(k, now)
	return 0
}

// Undo takes back k's most recent event.
func (w *Window[K]) Undo(k K) {
	if !w.Enabled() {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch ev := w.events[k]; len(ev) {
	case 0:
	case 1:
		delete(w.events, k)
	default:
		w.events[k] = ev[:len(ev)-1]
	}
}

// Add records an event for k.
func (w *Window[K]) Add(k K) {
	if !w.Enabled() {
		return
	}
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.addLocked(k, now)
}

func (w *Window[K]) addLocked(k K, now time.Time) {
	if now.Sub(w.lastPrune) >= pruneEvery {
		w.prune(now)
	}
	ev := w.live(k, now)
	if ev == nil && len(w.events) >= w.maxKeys {
		w.prune(now)
		if len(w.events) >= w.maxKeys {
			w.evictOldest()
		}
	}
	if len(ev) >= w.max {
		ev = append(ev[:0], ev[len(ev)-w.max+1:]...)
	}
	w.events[k] = append(ev, now)
}

// Reset forgets k's events (a successful login clears its failures).
func (w *Window[K]) Reset(k K) {
	if !w.Enabled() {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.events, k)
}

// Len returns how many keys the table holds.
func (w *Window[K]) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.events)
}

// live drops k's events older than the window and returns the rest.
func (w *Window[K]) live(k K, now time.Time) []time.Time {
	ev := w.events[k]
	i := 0
	for i < len(ev) && now.Sub(ev[i]) >= w.per {
		i++
	}
	if i == 0 {
		return ev
	}
	if i == len(ev) {
		delete(w.events, k)
		return nil
	}
	ev = append(ev[:0], ev[i:]...)
	w.events[k] = ev
	return ev
}

func (w *Window[K]) prune(now time.Time) {
	w.lastPrune = now
	for k, ev := range w.events {
		if len(ev) == 0 || now.Sub(ev[len(ev)-1]) >= w.per {
			delete(w.events, k)
		}
	}
}

func (w *Window[K]) evictOldest() {
	var oldest K
	var at time.Time
	first := true
	for k, ev := range w.events {
		if last := ev[len(ev)-1]; first || last.Before(at) {
			oldest, at, first = k, last, false
		}
	}
	delete(w.events, oldest)
}
