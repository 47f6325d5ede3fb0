package im

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
)

// membershipStore serves RoomMemberships from a map; the other RoomStore
// methods are not used by the cache.
type membershipStore struct {
	RoomStore
	rooms map[int64][]int64
	fail  atomic.Bool
	loads atomic.Int32
}

func (m *membershipStore) RoomMemberships(_ context.Context, fn func(room, uid int64)) error {
	m.loads.Add(1)
	if m.fail.Load() {
		return errors.New("database down")
	}
	for room, uids := range m.rooms {
		if len(uids) == 0 {
			fn(room, 0)
		}
		for _, uid := range uids {
			fn(room, uid)
		}
	}
	return nil
}

func TestRoomCacheLoadsEverything(t *testing.T) {
	st := &membershipStore{rooms: map[int64][]int64{1: {10, 11}, 2: {}}}
	c, err := loadRoomCache(context.Background(), st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if st.loads.Load() != 1 {
		t.Fatalf("%d loads", st.loads.Load())
	}
	for _, tc := range []struct {
		room, uid int64
		want      bool
	}{{1, 10, true}, {1, 11, true}, {1, 12, false}, {2, 10, false}, {3, 10, false}} {
		if got := c.isMember(tc.room, tc.uid); got != tc.want {
			t.Errorf("isMember(%d, %d) = %v", tc.room, tc.uid, got)
		}
	}
	if _, ok := c.get(2); !ok {
		t.Error("a room without members is still a room")
	}
	if _, ok := c.get(3); ok {
		t.Error("unknown room found")
	}
	c.created(3, 12)
	c.deleted(1)
	if !c.isMember(3, 12) || c.isMember(1, 10) {
		t.Error("created/deleted not applied")
	}
}

// When memberships cannot be loaded, the domain does not start: it
// could only refuse every room subscription.
func TestRoomCacheLoadFailure(t *testing.T) {
	st := &membershipStore{rooms: map[int64][]int64{1: {10}}}
	st.fail.Store(true)
	if _, err := loadRoomCache(context.Background(), st, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("loaded with the database down")
	}
}

// Deliveries check membership while members come and go (run with -race).
func TestRoomCacheConcurrentUse(t *testing.T) {
	c, err := loadRoomCache(context.Background(), &membershipStore{rooms: map[int64][]int64{1: {1}}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := c.get(1)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				uid := int64(w*1000 + i + 2)
				st.add(uid)
				if !c.isMember(1, uid) {
					t.Errorf("%d added but not a member", uid)
					return
				}
				st.remove(uid)
				if c.isMember(1, uid) {
					t.Errorf("%d removed but still a member", uid)
					return
				}
			}
		})
	}
	wg.Wait()
	if !c.isMember(1, 1) {
		t.Fatal("lost the original member")
	}
}

// BenchmarkRoomCacheIsMember measures the delivery path's membership check
// with 10,000 rooms of 100 members (a million memberships): as a room's
// fan-out asks it (one room, member after member) and scattered over all
// rooms (every check a cache miss).
//
//	go test ./im -run '^$' -bench RoomCacheIsMember
func BenchmarkRoomCacheIsMember(b *testing.B) {
	const rooms, per = 10_000, 100
	m := &membershipStore{rooms: make(map[int64][]int64, rooms)}
	for r := int64(1); r <= rooms; r++ {
		for u := range int64(per) {
			m.rooms[r] = append(m.rooms[r], r*per+u)
		}
	}
	c, err := loadRoomCache(context.Background(), m, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		room func(i int64) int64
	}{
		{"fanout", func(i int64) int64 { return i/per%rooms + 1 }},
		{"scattered", func(i int64) int64 { return i%rooms + 1 }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for i := int64(0); pb.Next(); i++ {
					room := bc.room(i)
					if !c.isMember(room, room*per+i%per) {
						b.Fatal("not a member")
					}
				}
			})
		})
	}
}
