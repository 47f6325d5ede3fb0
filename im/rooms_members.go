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
func (s *Service) lockRoom(ctx context.Context, room int64) (*roomState, func(), error) {
	if err := s.roomsReady(ctx); err != nil {
		return nil, nil, err
	}
	st, ok := s.rooms.get(room)
	if !ok {
		return nil, nil, noRoom(room)
	}
	st.change.Lock()
	return st, st.change.Unlock, nil
}

// JoinRoom makes p a member of a public room (POST /rooms/{room_id}/join).
// Joining a room one is already a member of changes nothing.
func (s *Service) JoinRoom(ctx context.Context, p Principal, room int64) (wire.Room, error) {
	st, unlock, err := s.lockRoom(ctx, room)
	if err != nil {
		return wire.Room{}, err
	}
	defer unlock()
	r, err := s.room(ctx, room)
	if err != nil {
		return wire.Room{}, err
	}
	if st.has(p.UID) {
		return roomDTO(r), nil
	}
	if r.Private {
		return wire.Room{}, errorf(ErrForbidden, "room %d is private: only its owner can add members", room)
	}
	if err := s.addMember(ctx, st, room, p.UID); err != nil {
		return wire.Room{}, err
	}
	return roomDTO(r), nil
}

// AddRoomMember makes the user uid a member of room; only the room's owner
// may (POST /rooms/{room_id}/members). Adding a member again changes
// nothing.
func (s *Service) AddRoomMember(ctx context.Context, p Principal, room, uid int64) (wire.RoomMember, error) {
	if uid <= 0 {
		return wire.RoomMember{}, errorf(ErrInvalid, "uid is required: the positive uid of the user to add")
	}
	st, unlock, err := s.lockRoom(ctx, room)
	if err != nil {
		return wire.RoomMember{}, err
	}
	defer unlock()
	r, err := s.ownedRoom(ctx, st, p, room, "add members")
	if err != nil {
		return wire.RoomMember{}, err
	}
	u, err := s.User(ctx, uid)
	if err != nil {
		return wire.RoomMember{}, err
	}
	m := wire.RoomMember{UID: u.UID, Username: u.Username, Role: wire.RoleMember}
	if uid == r.Owner {
		m.Role = wire.RoleOwner
	}
	if st.has(uid) {
		return m, nil
	}
	return m, s.addMember(ctx, st, room, uid)
}

// addMember stores a new membership and announces it. The caller holds
// the room's change lock.
func (s *Service) addMember(ctx context.Context, st *roomState, room, uid int64) error {
	added, err := s.store.AddRoomMember(ctx, room, uid, s.nowMillis())
	if errors.Is(err, ErrNotFound) {
		return noRoom(room) // deleted meanwhile by another server sharing the database
	}
	if err != nil {
		return fmt.Errorf("add %d to room %d: %w", uid, room, err)
	}
	st.add(uid) // also when the database had it already (another server added it)
	if added {
		s.deliver(wire.RoomMemberEvent{Event: wire.EventRoomMember, Room: room, UID: uid, Action: wire.ActionJoined}, topics.Room(room))
		s.log.Info("room member joined", "room", room, "uid", uid)
	}
	return nil
}

// LeaveRoom ends p's membership of room (POST /rooms/{room_id}/leave). If
// p owned the room, the longest-standing remaining member becomes its
// owner; if p was the last member, the room is deleted.
func (s *Service) LeaveRoom(ctx context.Context, p Principal, room int64) (wire.Left, error) {
	st, unlock, err := s.lockRoom(ctx, room)
	if err != nil {
		return wire.Left{}, err
	}
	defer unlock()
	if !st.has(p.UID) {
		return wire.Left{}, notMember(room)
	}
	return s.dropMember(ctx, st, room, p.UID, wire.ActionLeft)
}

// RemoveRoomMember removes the user uid from room; only the room's owner
// may (DELETE /rooms/{room_id}/members/{uid}). The owner removing itself
// leaves the room.
func (s *Service) RemoveRoomMember(ctx context.Context, p Principal, room, uid int64) (wire.Left, error) {
	st, unlock, err := s.lockRoom(ctx, room)
	if err != nil {
		return wire.Left{}, err
	}
	defer unlock()
	if _, err := s.ownedRoom(ctx, st, p, room, "remove members"); err != nil {
		return wire.Left{}, err
	}
	if uid == p.UID {
		return s.dropMember(ctx, st, room, uid, wire.ActionLeft)
	}
	if !st.has(uid) {
		return wire.Left{}, errorf(ErrNotFound, "user %d is not a member of room %d", uid, room)
	}
	return s.dropMember(ctx, st, room, uid, wire.ActionRemoved)
}

// ownedRoom returns room if p owns it: ErrForbidden for everyone else.
// The caller holds the room's change lock, so ownership cannot pass on
// meanwhile.
func (s *Service) ownedRoom(ctx context.Context, st *roomState, p Principal, room int64, what string) (Room, error) {
	if !st.has(p.UID) {
		return Room{}, notMember(room)
	}
	r, err := s.room(ctx, room)
	if err != nil {
		return Room{}, err
	}
	if r.Owner != p.UID {
		return Room{}, errorf(ErrForbidden, "only the owner of room %d may %s", room, what)
	}
	return r, nil
}

// dropMember removes uid from room in the store, then announces it on the
// room topic while uid is still in the cache, so that uid's own devices
// get the event as the room's last word to them; then it forgets uid and
// drops uid's live subscriptions to the room. The caller holds the room's
// change lock.
func (s *Service) dropMember(ctx context.Context, st *roomState, room, uid int64, action string) (wire.Left, error) {
	rm, err := s.store.RemoveRoomMember(ctx, room, uid)
	if errors.Is(err, ErrNotFound) {
		s.rooms.deleted(room) // deleted meanwhile by another server sharing the database
		s.sess.DropSubscription(uid, topics.Room(room))
		return wire.Left{}, noRoom(room)
	}
	if err != nil {
		return wire.Left{}, fmt.Errorf("remove %d from room %d: %w", uid, room, err)
	}
	if rm.Removed {
		s.deliver(wire.RoomMemberEvent{Event: wire.EventRoomMember, Room: room, UID: uid, Action: action}, topics.Room(room))
		s.log.Info("room member "+action, "room", room, "uid", uid, "owner", rm.Owner, "room_deleted", rm.Deleted)
	}
	if rm.Deleted {
		s.rooms.deleted(room)
	} else {
		st.remove(uid)
	}
	s.sess.DropSubscription(uid, topics.Room(room))
	return wire.Left{RoomID: room, UID: uid, Action: action, Owner: rm.Owner}, nil
}
