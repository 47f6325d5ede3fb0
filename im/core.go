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
func (nobodyLive) CloseToken(int64, string)       {}
func (nobodyLive) CloseUser(int64, string)        {}

// knownUsers remembers which uids exist and whether they are guests,
// bounded to max entries: when full, it forgets everything and starts
// again. Accounts are never deleted and never change between user and
// guest, so forgetting only costs a lookup.
type knownUsers struct {
	mu    sync.RWMutex
	max   int
	guest map[int64]bool
}

func newKnownUsers(max int) *knownUsers { return &knownUsers{max: max, guest: make(map[int64]bool)} }

// get reports whether uid is known to exist, and if so whether it is a
// guest.
func (k *knownUsers) get(uid int64) (guest, ok bool) {
	k.mu.RLock()
	guest, ok = k.guest[uid]
	k.mu.RUnlock()
	return guest, ok
}

func (k *knownUsers) add(u User) {
	k.mu.Lock()
	if len(k.guest) >= k.max {
		clear(k.guest)
	}
	k.guest[u.UID] = u.Role == RoleGuest
	k.mu.Unlock()
}
