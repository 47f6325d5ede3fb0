package im

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// roomCache is the process's view of who is a member of which room. The
// broker asks for every delivery to every subscriber of a room topic
// whether that subscriber is a member, so the answer has to come from
// memory.
//
// All memberships are loaded once, when the Service is built, rather than
// lazily per room: a SUBSCRIBE after a restart is answered by the same
// in-memory check, so a room must be known before anyone of its members
// subscribes, and nothing but a full load guarantees that without a query
// on the subscribe path. The cost is one map entry per membership.
//
// The database stays the truth. Every change of membership goes through
// the Service, which holds the room's change lock across the database write
// and the cache update, so the two change in the same order; the cache is
// updated only after the commit. The cache is per process: a second server
// sharing the database does not see this one's changes until it restarts
// (it reloads from the database then).
type roomCache struct {
	store RoomStore
	log   *slog.Logger

	loadMu  sync.Mutex
	loaded  atomic.Bool
	kicking atomic.Bool
	rooms   sync.Map // room id → *roomState, once loaded
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

func newRoomCache(store RoomStore, log *slog.Logger) *roomCache {
	return &roomCache{store: store, log: log}
}

// ensure loads every membership from the store, once.
func (c *roomCache) ensure(ctx context.Context) error {
	if c.loaded.Load() {
		return nil
	}
	c.loadMu.Lock()
	defer c.loadMu.Unlock()
	if c.loaded.Load() {
		return nil
	}
	start := time.Now()
	rooms := make(map[int64]*roomState)
	members := 0
	err := c.store.RoomMemberships(ctx, func(room, uid int64) {
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
		return fmt.Errorf("load room memberships: %w", err)
	}
	for id, st := range rooms {
		c.rooms.Store(id, st)
	}
	c.loaded.Store(true)
	c.log.Info("room memberships loaded", "rooms", len(rooms), "members", members, "duration", time.Since(start))
	return nil
}

// kick starts loading in the background if the cache is not loaded yet
// (the load at start failed), without blocking the caller.
func (c *roomCache) kick() {
	if !c.kicking.CompareAndSwap(false, true) {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.ensure(ctx); err != nil {
			c.log.Error("room memberships not loaded: room subscriptions are refused", "error", err)
			time.Sleep(time.Second) // at most one attempt a second
		}
		c.kicking.Store(false)
	}()
}

// get returns a room's state; false if there is no such room (or the
// cache is not loaded).
func (c *roomCache) get(room int64) (*roomState, bool) {
	if !c.loaded.Load() {
		return nil, false
	}
	v, ok := c.rooms.Load(room)
	if !ok {
		return nil, false
	}
	return v.(*roomState), true
}

// isMember reports whether uid is a member of room. It is the delivery
// path's check: no locks but the room's read lock, no allocation.
func (c *roomCache) isMember(room, uid int64) bool {
	if !c.loaded.Load() {
		c.kick()
		return false
	}
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

// roomsReady loads the membership cache if the load at start failed.
func (s *Service) roomsReady(ctx context.Context) error {
	return s.rooms.ensure(ctx)
}

// loadRooms loads the membership cache when the Service is built. A
// failure is logged; the next room request (or subscription) retries.
func (s *Service) loadRooms() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.roomsReady(ctx); err != nil {
		s.log.Error("room memberships not loaded at start; retrying on demand", "error", err)
	}
}
