package im

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"

	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

// Presence publishes who is online (PROTOCOL.md §7) on im/p/{uid}: every
// change is delivered to the topic's subscribers and kept as its retained
// message, so a new subscriber gets the current state at once, right
// after its SUBACK. A user is online while it has a live MQTT connection
// (the Live port says), its status is its online/away choice, and
// last_seen is when its last connection closed.
type Presence struct {
	*core
	store presenceStore

	mu      sync.Mutex
	pending map[int64]int64 // last_seen times not stored yet, by uid
}

// presenceStore is what Presence reads and writes.
type presenceStore interface {
	UserStore
	PresenceStore
}

func newPresence(c *core, store presenceStore) *Presence {
	return &Presence{core: c, store: store, pending: make(map[int64]int64)}
}

// Subscribe checks that p may follow uid's presence — uid itself, or
// someone who shares a conversation with uid — and makes sure uid's
// current state is the topic's retained message, so that p gets it right
// after its SUBACK. ErrForbidden otherwise.
func (pr *Presence) Subscribe(ctx context.Context, p Principal, uid int64) error {
	if p.UID != uid {
		if p.IsGuest() {
			return errGuest()
		}
		ok, err := pr.store.SharesConversation(ctx, p.UID, uid)
		if err != nil {
			return err
		}
		if !ok {
			return errorf(ErrForbidden, "you share no conversation with user %d", uid)
		}
	}
	defer pr.lock(uid)()
	ev, err := pr.state(ctx, uid)
	if err != nil {
		return err
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	pr.pub.Retain(topics.Presence(uid), payload)
	return nil
}

// changed records a change of uid's presence (offlineAt > 0: its last
// connection closed then) and publishes the new state in the background.
// Changes of one user coalesce: the job publishes whatever is current when
// it runs.
func (pr *Presence) changed(uid, offlineAt int64) {
	if offlineAt > 0 {
		pr.mu.Lock()
		pr.pending[uid] = max(pr.pending[uid], offlineAt)
		pr.mu.Unlock()
	}
	pr.work.do("presence:"+strconv.FormatInt(uid, 10), func(ctx context.Context) {
		if err := pr.publish(ctx, uid); err != nil {
			pr.log.Warn("presence", "uid", uid, "error", err)
		}
	})
}

// publish stores uid's pending last_seen and publishes its state.
func (pr *Presence) publish(ctx context.Context, uid int64) error {
	defer pr.lock(uid)()
	pr.mu.Lock()
	seen, ok := pr.pending[uid]
	pr.mu.Unlock()
	if ok {
		if err := pr.store.SetLastSeen(ctx, uid, seen); err != nil {
			return err
		}
		pr.mu.Lock()
		if pr.pending[uid] == seen {
			delete(pr.pending, uid)
		}
		pr.mu.Unlock()
	}
	ev, err := pr.state(ctx, uid)
	if err != nil {
		return err
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	topic := topics.Presence(uid)
	pr.pub.Retain(topic, payload)
	return pr.pub.Publish(topic, payload)
}

// state is uid's presence now.
func (pr *Presence) state(ctx context.Context, uid int64) (wire.PresenceEvent, error) {
	u, err := pr.store.UserByID(ctx, uid)
	if err != nil {
		return wire.PresenceEvent{}, err
	}
	pr.mu.Lock()
	seen := max(u.LastSeen, pr.pending[uid])
	pr.mu.Unlock()
	return wire.PresenceEvent{Event: wire.EventPresence, UID: uid, Online: pr.live.Online(uid), Status: u.Status, LastSeen: seen}, nil
}

// lock serialises the publishing of one user's presence, so that its
// retained state is never older than what was delivered last.
func (pr *Presence) lock(uid int64) func() {
	return pr.locks.lock("p:" + strconv.FormatInt(uid, 10))
}
