package im

import (
	"context"
	"errors"
	"fmt"

	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

// Membership changes. Each runs under the room's change lock: the database
// write, then the cache, the room_member event on the room topic and, for
// departures, dropping the user's subscriptions to the room, so that the
// cache follows the database in the same order and a departed member's
// devices stop receiving at once, without reconnecting.

// lockRoom returns the state of an existing room with its change lock
// held; call the returned function to release it.
func (r *Rooms) lockRoom(room int64) (*roomState, func(), error) {
	st, ok := r.cache.get(room)
	if !ok {
		return nil, nil, noRoom(room)
	}
	st.change.Lock()
	return st, st.change.Unlock, nil
}

// Join makes p a member of a public room (POST /rooms/{room_id}/join).
// Joining a room one is already a member of changes nothing.
func (r *Rooms) Join(ctx context.Context, p Principal, room int64) (Room, error) {
	st, unlock, err := r.lockRoom(room)
	if err != nil {
		return Room{}, err
	}
	defer unlock()
	rm, err := r.room(ctx, room)
	if err != nil {
		return Room{}, err
	}
	if st.has(p.UID) {
		return rm, nil
	}
	if rm.Private {
		return Room{}, errorf(ErrForbidden, "room %d is private: only its owner can add members", room)
	}
	if err := r.addMember(ctx, st, room, p.UID); err != nil {
		return Room{}, err
	}
	return rm, nil
}

// AddMember makes the user uid a member of room; only the room's owner
// may (POST /rooms/{room_id}/members). Adding a member again changes
// nothing.
func (r *Rooms) AddMember(ctx context.Context, p Principal, room, uid int64) (RoomMember, error) {
	if uid <= 0 {
		return RoomMember{}, errorf(ErrInvalid, "uid is required: the positive uid of the user to add")
	}
	st, unlock, err := r.lockRoom(room)
	if err != nil {
		return RoomMember{}, err
	}
	defer unlock()
	rm, err := r.ownedRoom(ctx, st, p, room, "add members")
	if err != nil {
		return RoomMember{}, err
	}
	u, err := r.accounts.User(ctx, uid)
	if err != nil {
		return RoomMember{}, err
	}
	if u.Role == RoleGuest {
		return RoomMember{}, errorf(ErrInvalid, "user %d is a guest: guests only talk to shops", uid)
	}
	m := RoomMember{UID: u.UID, Username: u.Username, Role: RoomRoleMember}
	if uid == rm.Owner {
		m.Role = RoomRoleOwner
	}
	if st.has(uid) {
		return m, nil
	}
	return m, r.addMember(ctx, st, room, uid)
}

// addMember stores a new membership and announces it. The caller holds
// the room's change lock.
func (r *Rooms) addMember(ctx context.Context, st *roomState, room, uid int64) error {
	added, err := r.store.AddRoomMember(ctx, room, uid, r.nowMillis())
	if errors.Is(err, ErrNotFound) {
		return noRoom(room) // deleted meanwhile by another server sharing the database
	}
	if err != nil {
		return fmt.Errorf("add %d to room %d: %w", uid, room, err)
	}
	st.add(uid) // also when the database had it already (another server added it)
	if added {
		// On the room topic, and on the new member's inbox: its devices
		// learn of the room there and subscribe to it.
		r.deliver(wire.RoomMemberEvent{Event: wire.EventRoomMember, Room: room, UID: uid, Action: wire.ActionJoined}, topics.Room(room), topics.Inbox(uid))
		r.log.Info("room member joined", "room", room, "uid", uid)
	}
	return nil
}

// Leave ends p's membership of room (POST /rooms/{room_id}/leave). If p
// owned the room, the longest-standing remaining member becomes its owner;
// if p was the last member, the room is deleted.
func (r *Rooms) Leave(ctx context.Context, p Principal, room int64) (Departure, error) {
	st, unlock, err := r.lockRoom(room)
	if err != nil {
		return Departure{}, err
	}
	defer unlock()
	if !st.has(p.UID) {
		return Departure{}, notMember(room)
	}
	return r.dropMember(ctx, st, room, p.UID, wire.ActionLeft)
}

// RemoveMember removes the user uid from room; only the room's owner may
// (DELETE /rooms/{room_id}/members/{uid}). The owner removing itself
// leaves the room.
func (r *Rooms) RemoveMember(ctx context.Context, p Principal, room, uid int64) (Departure, error) {
	st, unlock, err := r.lockRoom(room)
	if err != nil {
		return Departure{}, err
	}
	defer unlock()
	if _, err := r.ownedRoom(ctx, st, p, room, "remove members"); err != nil {
		return Departure{}, err
	}
	if uid == p.UID {
		return r.dropMember(ctx, st, room, uid, wire.ActionLeft)
	}
	if !st.has(uid) {
		return Departure{}, errorf(ErrNotFound, "user %d is not a member of room %d", uid, room)
	}
	return r.dropMember(ctx, st, room, uid, wire.ActionRemoved)
}

// ownedRoom returns room if p owns it: ErrForbidden for everyone else.
// The caller holds the room's change lock, so ownership cannot pass on
// meanwhile.
func (r *Rooms) ownedRoom(ctx context.Context, st *roomState, p Principal, room int64, what string) (Room, error) {
	if !st.has(p.UID) {
		return Room{}, notMember(room)
	}
	rm, err := r.room(ctx, room)
	if err != nil {
		return Room{}, err
	}
	if rm.Owner != p.UID {
		return Room{}, errorf(ErrForbidden, "only the owner of room %d may %s", room, what)
	}
	return rm, nil
}

// dropMember removes uid from room in the store, then announces it on the
// room topic while uid is still in the cache, so that uid's own devices
// get the event as the room's last word to them; then it forgets uid and
// drops uid's live subscriptions to the room. The caller holds the room's
// change lock.
func (r *Rooms) dropMember(ctx context.Context, st *roomState, room, uid int64, action string) (Departure, error) {
	rm, err := r.store.RemoveRoomMember(ctx, room, uid)
	if errors.Is(err, ErrNotFound) {
		r.cache.deleted(room) // deleted meanwhile by another server sharing the database
		r.live.DropSubscription(uid, topics.Room(room))
		return Departure{}, noRoom(room)
	}
	if err != nil {
		return Departure{}, fmt.Errorf("remove %d from room %d: %w", uid, room, err)
	}
	if rm.Removed {
		r.deliver(wire.RoomMemberEvent{Event: wire.EventRoomMember, Room: room, UID: uid, Action: action}, topics.Room(room))
		r.log.Info("room member "+action, "room", room, "uid", uid, "owner", rm.Owner, "room_deleted", rm.Deleted)
	}
	if rm.Deleted {
		r.cache.deleted(room)
	} else {
		st.remove(uid)
	}
	r.live.DropSubscription(uid, topics.Room(room))
	return Departure{Room: room, UID: uid, Action: action, Owner: rm.Owner}, nil
}
