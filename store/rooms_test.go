package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/store"
	"github.com/imserver/imserver/wire"
)

func mustRoom(t *testing.T, s *store.Store, name string, owner int64, private bool) im.Room {
	t.Helper()
	r, err := s.CreateRoom(context.Background(), im.Room{Name: name, Owner: owner, Private: private, CreatedAt: 100})
	if err != nil {
		t.Fatalf("create room %s: %v", name, err)
	}
	return r
}

func mustAdd(t *testing.T, s *store.Store, room, uid, now int64) {
	t.Helper()
	added, err := s.AddRoomMember(context.Background(), room, uid, now)
	if err != nil || !added {
		t.Fatalf("add %d to room %d: added %v, %v", uid, room, added, err)
	}
}

// members returns "uid:role" for each member, in the store's order.
func members(t *testing.T, s *store.Store, room int64) []string {
	t.Helper()
	ms, err := s.RoomMembers(context.Background(), room)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%d:%s", m.UID, m.Role))
	}
	return out
}

func TestRooms(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b, c := mustUser(t, s, "alice"), mustUser(t, s, "bob"), mustUser(t, s, "carol")
		r := mustRoom(t, s, "general", a.UID, false)
		p := mustRoom(t, s, "secret", b.UID, true)
		if r.ID == 0 || p.ID == r.ID {
			t.Fatalf("room ids %d, %d", r.ID, p.ID)
		}
		got, err := s.Room(ctx, p.ID)
		if err != nil || got != (im.Room{ID: p.ID, Name: "secret", Owner: b.UID, Private: true, CreatedAt: 100}) {
			t.Fatalf("Room = %+v, %v", got, err)
		}
		if _, err := s.Room(ctx, p.ID+100); !errors.Is(err, im.ErrNotFound) {
			t.Fatalf("unknown room: %v, want ErrNotFound", err)
		}
		if _, err := s.CreateRoom(ctx, im.Room{Name: "x", Owner: 99999, CreatedAt: 1}); !errors.Is(err, im.ErrNotFound) {
			t.Fatalf("room of an unknown owner: %v, want ErrNotFound", err)
		}

		mustAdd(t, s, r.ID, b.UID, 200)
		mustAdd(t, s, r.ID, c.UID, 150) // joined earlier than bob by the clock
		if added, err := s.AddRoomMember(ctx, r.ID, b.UID, 300); err != nil || added {
			t.Fatalf("adding twice: added %v, %v", added, err)
		}
		if _, err := s.AddRoomMember(ctx, r.ID, 99999, 300); !errors.Is(err, im.ErrNotFound) {
			t.Fatalf("unknown user: %v, want ErrNotFound", err)
		}
		if _, err := s.AddRoomMember(ctx, 99999, b.UID, 300); !errors.Is(err, im.ErrNotFound) {
			t.Fatalf("unknown room: %v, want ErrNotFound", err)
		}
		want := []string{fmt.Sprintf("%d:owner", a.UID), fmt.Sprintf("%d:member", c.UID), fmt.Sprintf("%d:member", b.UID)}
		if got := members(t, s, r.ID); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("members = %v, want %v", got, want)
		}
		ms, _ := s.RoomMembers(ctx, r.ID)
		if ms[0].Username != "alice" || ms[0].JoinedAt != 100 {
			t.Fatalf("owner row %+v", ms[0])
		}

		rooms, err := s.RoomsOf(ctx, b.UID)
		if err != nil || len(rooms) != 2 || rooms[0].ID != r.ID || rooms[1].ID != p.ID {
			t.Fatalf("bob's rooms %+v, %v", rooms, err)
		}
		if rooms, err := s.RoomsOf(ctx, c.UID); err != nil || len(rooms) != 1 || rooms[0].Name != "general" {
			t.Fatalf("carol's rooms %+v, %v", rooms, err)
		}

		got2 := map[int64][]int64{}
		if err := s.RoomMemberships(ctx, func(room, uid int64) { got2[room] = append(got2[room], uid) }); err != nil {
			t.Fatal(err)
		}
		if len(got2) != 2 || len(got2[r.ID]) != 3 || fmt.Sprint(got2[p.ID]) != fmt.Sprint([]int64{b.UID}) {
			t.Fatalf("memberships %v", got2)
		}
	})
}

func TestRoomRemovalPassesOwnershipAndDeletesEmptyRooms(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b, c := mustUser(t, s, "alice"), mustUser(t, s, "bob"), mustUser(t, s, "carol")
		r := mustRoom(t, s, "general", a.UID, false)
		mustAdd(t, s, r.ID, c.UID, 300)
		mustAdd(t, s, r.ID, b.UID, 200) // bob has been a member longer than carol

		if rm, err := s.RemoveRoomMember(ctx, r.ID, 99999); err != nil || rm != (im.RoomRemoval{Owner: a.UID}) {
			t.Fatalf("removing a non-member: %+v, %v", rm, err)
		}
		if _, err := s.RemoveRoomMember(ctx, r.ID+100, a.UID); !errors.Is(err, im.ErrNotFound) {
			t.Fatalf("unknown room: %v, want ErrNotFound", err)
		}
		// The owner leaves: bob, the longest-standing member, owns it now.
		rm, err := s.RemoveRoomMember(ctx, r.ID, a.UID)
		if err != nil || rm != (im.RoomRemoval{Removed: true, Owner: b.UID}) {
			t.Fatalf("owner leaves: %+v, %v", rm, err)
		}
		if got, _ := s.Room(ctx, r.ID); got.Owner != b.UID {
			t.Fatalf("room owner %d, want %d", got.Owner, b.UID)
		}
		want := []string{fmt.Sprintf("%d:owner", b.UID), fmt.Sprintf("%d:member", c.UID)}
		if got := members(t, s, r.ID); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("members = %v, want %v", got, want)
		}
		// A plain member leaves: the owner stays.
		if rm, err := s.RemoveRoomMember(ctx, r.ID, c.UID); err != nil || rm != (im.RoomRemoval{Removed: true, Owner: b.UID}) {
			t.Fatalf("member leaves: %+v, %v", rm, err)
		}
		// The last member leaves: the room is gone.
		if rm, err := s.RemoveRoomMember(ctx, r.ID, b.UID); err != nil || rm != (im.RoomRemoval{Removed: true, Deleted: true}) {
			t.Fatalf("last member leaves: %+v, %v", rm, err)
		}
		if _, err := s.Room(ctx, r.ID); !errors.Is(err, im.ErrNotFound) {
			t.Fatalf("deleted room: %v", err)
		}
		if _, err := s.AddRoomMember(ctx, r.ID, a.UID, 400); !errors.Is(err, im.ErrNotFound) {
			t.Fatalf("joining a deleted room: %v", err)
		}
		n := 0
		if err := s.RoomMemberships(ctx, func(int64, int64) { n++ }); err != nil || n != 0 {
			t.Fatalf("memberships after deletion: %d, %v", n, err)
		}
	})
}

func TestRoomConversationsAndReadPositions(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b := mustUser(t, s, "alice"), mustUser(t, s, "bob")
		r := mustRoom(t, s, "general", a.UID, false)
		conv := fmt.Sprintf("r:%d", r.ID)

		// The room is a conversation from its creation.
		convs, err := s.Conversations(ctx, a.UID)
		if err != nil || len(convs) != 1 || convs[0].Conv != conv || convs[0].Kind != "room" || convs[0].LastSeq != 0 || convs[0].LastMessage != nil {
			t.Fatalf("alice's conversations %+v, %v", convs, err)
		}
		if convs, _ := s.Conversations(ctx, b.UID); len(convs) != 0 {
			t.Fatalf("a non-member sees the room: %+v", convs)
		}
		for i := 1; i <= 3; i++ {
			if m, _, err := s.AppendMessage(ctx, msg(conv, a.UID, "", i)); err != nil || m.Seq != int64(i) {
				t.Fatalf("append %d: %+v %v", i, m, err)
			}
		}
		// A new member has read what came before it joined.
		mustAdd(t, s, r.ID, b.UID, 500)
		if _, _, err := s.AppendMessage(ctx, msg(conv, a.UID, "", 4)); err != nil {
			t.Fatal(err)
		}
		convs, err = s.Conversations(ctx, b.UID)
		if err != nil || len(convs) != 1 || convs[0].LastSeq != 4 || convs[0].ReadSeq != 3 || convs[0].LastMessage.Seq != 4 {
			t.Fatalf("bob's conversations %+v, %v", convs, err)
		}
		if pos, moved, err := s.MarkRead(ctx, conv, b.UID, 4); err != nil || pos.ReadSeq != 4 || pos.LastSeq != 4 || !moved {
			t.Fatalf("MarkRead = %+v %v %v", pos, moved, err)
		}
		// A member who left no longer sees the room; rejoining does not
		// lower its read position.
		if _, err := s.RemoveRoomMember(ctx, r.ID, b.UID); err != nil {
			t.Fatal(err)
		}
		if convs, _ := s.Conversations(ctx, b.UID); len(convs) != 0 {
			t.Fatalf("a former member sees the room: %+v", convs)
		}
		mustAdd(t, s, r.ID, b.UID, 600)
		if convs, _ := s.Conversations(ctx, b.UID); len(convs) != 1 || convs[0].ReadSeq != 4 {
			t.Fatalf("after rejoining: %+v", convs)
		}
	})
}

// Concurrent departures never leave a room without an owner, or with two.
func TestConcurrentRoomDepartures(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const n = 8
		users := make([]im.User, n)
		for i := range users {
			users[i] = mustUser(t, s, fmt.Sprintf("user%d", i))
		}
		for round := range 3 {
			r := mustRoom(t, s, "r", users[0].UID, false)
			for i := 1; i < n; i++ {
				mustAdd(t, s, r.ID, users[i].UID, int64(1000+i))
			}
			leavers := n - 1 - round // round 0 keeps one member, then more
			var wg sync.WaitGroup
			for i := range leavers {
				wg.Go(func() {
					if _, err := s.RemoveRoomMember(ctx, r.ID, users[i].UID); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			ms, err := s.RoomMembers(ctx, r.ID)
			if err != nil || len(ms) != n-leavers {
				t.Fatalf("round %d: %d members left, want %d (%v)", round, len(ms), n-leavers, err)
			}
			room, err := s.Room(ctx, r.ID)
			if err != nil || ms[0].Role != wire.RoleOwner || ms[0].UID != room.Owner || ms[0].UID != users[leavers].UID {
				t.Fatalf("round %d: owner %d, members %+v, want %d", round, room.Owner, ms, users[leavers].UID)
			}
			for _, m := range ms[1:] {
				if m.Role != wire.RoleMember {
					t.Fatalf("round %d: two owners: %+v", round, ms)
				}
			}
		}
	})
}
