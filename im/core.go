package im

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"sync"
	"time"
)

// core is what the areas share: delivery, the live-connection port,
// conversation locks, the clock, ids and background workers.
type core struct {
	pub   Publisher
	live  Live
	log   *slog.Logger
	now   func() time.Time
	newID func() string
	locks *convLocks
	work  *workers
}

func newCore(o Options) *core {
	c := &core{pub: o.Publisher, live: o.Live, log: o.Log, now: o.Now, newID: o.NewID, locks: newConvLocks()}
	if c.live == nil {
		c.live = nobodyLive{}
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.newID == nil {
		c.newID = randomID
	}
	c.work = newWorkers(c.log)
	return c
}

func randomID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (c *core) nowMillis() int64 { return c.now().UnixMilli() }

// deliver publishes v as JSON to each topic. Delivery failures are logged,
// not returned: the message is stored, and clients catch up from history.
func (c *core) deliver(v any, topicList ...string) {
	payload, err := json.Marshal(v)
	if err != nil {
		c.log.Error("encode delivery", "error", err)
		return
	}
	for _, t := range topicList {
		if err := c.pub.Publish(t, payload); err != nil {
			c.log.Warn("deliver", "topic", t, "error", err)
		}
	}
}

// nobodyLive is the Live of a domain without a broker: nobody is
// connected.
type nobodyLive struct{}

func (nobodyLive) Online(int64) bool              { return false }
func (nobodyLive) Reachable(int64) bool           { return false }
func (nobodyLive) DropSubscription(int64, string) {}
func (nobodyLive) CloseUser(int64)                {}

// idSet is a set of ids bounded to max entries: when full, it forgets
// everything and starts again. It caches facts that never become false
// (an account exists), so forgetting only costs a lookup.
type idSet struct {
	mu  sync.RWMutex
	max int
	ids map[int64]struct{}
}

func newIDSet(max int) *idSet { return &idSet{max: max, ids: make(map[int64]struct{})} }

func (s *idSet) has(id int64) bool {
	s.mu.RLock()
	_, ok := s.ids[id]
	s.mu.RUnlock()
	return ok
}

func (s *idSet) add(id int64) {
	s.mu.Lock()
	if len(s.ids) >= s.max {
		clear(s.ids)
	}
	s.ids[id] = struct{}{}
	s.mu.Unlock()
}
