package im

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// roomCache is the process's view of who is a member of which room. The
// broker asks for every delivery to every subscriber of a room topic
// whether that subscriber is a member, so the answer has to come from
// memory.
//
// All memberships are loaded once, when the domain is built, rather than
// lazily per room: a SUBSCRIBE after a restart is answered by the same
// in-memory check, so a room must be known before anyone of its members
// subscribes, and nothing but a full load guarantees that without a query
// on the subscribe path. The cost is one map entry per membership.
//
// The database stays the truth. Every change of membership goes through
// Rooms, which holds the room's change lock across the database write and
// the cache update, so the two change in the same order; the cache is
// updated only after the commit. The cache is per process: a second server
// sharing the database does not see this one's changes until it restarts
// (it reloads from the database then).
type roomCache struct {
	rooms sync.Map // room id → *roomState
}

// roomState is one room's members.
type roomState struct {
	// change serialises the room's membership changes: each holds it
	// across its database write, the cache update, the room_member event
	// and the subscription drops. Deliveries never take it.
	change sync.Mutex

	mu      sync.RWMutex
	members map[int64]struct{}
	deleted bool // the room is gone: its id is never used again
}

// loadRoomCache loads every membership from the store.
func loadRoomCache(ctx context.Context, store RoomStore, log *slog.Logger) (*roomCache, error) {
	start := time.Now()
	rooms := make(map[int64]*roomState)
	members := 0
	err := store.RoomMemberships(ctx, func(room, uid int64) {
		st := rooms[room]
		if st == nil {
			st = &roomState{members: make(map[int64]struct{})}
			rooms[room] = st
		}
		if uid != 0 {
			st.members[uid] = struct{}{}
			members++
		}
	})
	if err != nil {
		return nil, fmt.Errorf("load room memberships: %w", err)
	}
	c := &roomCache{}
	for id, st := range rooms {
		c.rooms.Store(id, st)
	}
	log.Info("room memberships loaded", "rooms", len(rooms), "members", members, "duration", time.Since(start))
	return c, nil
}

// get returns a room's state; false if there is no such room.
func (c *roomCache) get(room int64) (*roomState, bool) {
	v, ok := c.rooms.Load(room)
	if !ok {
		return nil, false
	}
	return v.(*roomState), true
}

// isMember reports whether uid is a member of room. It is the delivery
// path's check: no locks but the room's read lock, no allocation.
func (c *roomCache) isMember(room, uid int64) bool {
	st, ok := c.get(room)
	return ok && st.has(uid)
}

// created records a new room whose only member is its owner.
func (c *roomCache) created(room, owner int64) {
	c.rooms.Store(room, &roomState{members: map[int64]struct{}{owner: {}}})
}

// deleted forgets a room.
func (c *roomCache) deleted(room int64) {
	if v, ok := c.rooms.LoadAndDelete(room); ok {
		st := v.(*roomState)
		st.mu.Lock()
		st.deleted = true
		clear(st.members)
		st.mu.Unlock()
	}
}

func (st *roomState) has(uid int64) bool {
	st.mu.RLock()
	_, ok := st.members[uid]
	st.mu.RUnlock()
	return ok
}

func (st *roomState) add(uid int64) {
	st.mu.Lock()
	if !st.deleted {
		st.members[uid] = struct{}{}
	}
	st.mu.Unlock()
}

func (st *roomState) remove(uid int64) {
	st.mu.Lock()
	delete(st.members, uid)
	st.mu.Unlock()
}
