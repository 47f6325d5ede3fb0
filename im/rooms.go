package im

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

// Room is a group chat.
type Room struct {
	ID        int64
	Name      string
	Owner     int64 // always a member: ownership passes on when the owner leaves
	Private   bool  // nobody may join; only the owner adds members
	CreatedAt int64 // Unix milliseconds
}

// RoomMember is a member of a room.
type RoomMember struct {
	UID      int64
	Username string
	Role     string // wire.RoleOwner or wire.RoleMember
	JoinedAt int64  // Unix milliseconds
}

// RoomRemoval is what RemoveRoomMember did.
type RoomRemoval struct {
	Removed bool  // uid was a member and is no longer
	Owner   int64 // the room's owner afterwards; 0 if the room was deleted
	Deleted bool  // uid was the last member: the room is gone
}

// RoomStore keeps rooms and their members. Every room has exactly one
// owner, who is one of its members.
type RoomStore interface {
	// CreateRoom inserts r, makes r.Owner its owner and only member, and
	// creates the room's (empty) conversation. It returns r with its id.
	CreateRoom(ctx context.Context, r Room) (Room, error)
	// Room returns a room, or ErrNotFound.
	Room(ctx context.Context, id int64) (Room, error)
	// RoomsOf lists the rooms uid is a member of, by id.
	RoomsOf(ctx context.Context, uid int64) ([]Room, error)
	// RoomMembers lists a room's members, owner first, then by the time
	// they joined.
	RoomMembers(ctx context.Context, room int64) ([]RoomMember, error)
	// AddRoomMember makes uid a member of room and reports whether it was
	// not one already. A new member's read position starts at the room's
	// last seq, so history from before it joined does not count as unread.
	// It returns ErrNotFound if the room or the user does not exist.
	AddRoomMember(ctx context.Context, room, uid, now int64) (added bool, err error)
	// RemoveRoomMember removes uid from room. If uid was the owner,
	// ownership passes to the longest-standing remaining member; if uid was
	// the last member, the room is deleted (its messages stay stored).
	RemoveRoomMember(ctx context.Context, room, uid int64) (RoomRemoval, error)
	// RoomMemberships calls fn for every member of every room, and once
	// with uid 0 for a room without members.
	RoomMemberships(ctx context.Context, fn func(room, uid int64)) error
}

// checkRoomName trims name and checks it is 1–64 printable characters.
func checkRoomName(name string) (string, error) {
	name = strings.TrimSpace(name)
	bad := errorf(ErrInvalid, "room name must be %d to %d printable characters", wire.MinRoomName, wire.MaxRoomName)
	if !utf8.ValidString(name) {
		return "", bad
	}
	if n := utf8.RuneCountInString(name); n < wire.MinRoomName || n > wire.MaxRoomName {
		return "", bad
	}
	if strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0 {
		return "", bad
	}
	return name, nil
}

func roomDTO(r Room) wire.Room {
	return wire.Room{RoomID: r.ID, Name: r.Name, Owner: r.Owner, Private: r.Private}
}

func noRoom(id int64) error { return errorf(ErrNotFound, "there is no room %d", id) }

func notMember(id int64) error { return errorf(ErrForbidden, "you are not a member of room %d", id) }

// CreateRoom creates a room owned by p, who is its first member
// (POST /rooms).
func (s *Service) CreateRoom(ctx context.Context, p Principal, name string, private bool) (wire.Room, error) {
	name, err := checkRoomName(name)
	if err != nil {
		return wire.Room{}, err
	}
	if err := s.roomsReady(ctx); err != nil {
		return wire.Room{}, err
	}
	r, err := s.store.CreateRoom(ctx, Room{Name: name, Owner: p.UID, Private: private, CreatedAt: s.nowMillis()})
	if errors.Is(err, ErrNotFound) {
		return wire.Room{}, errorf(ErrNotFound, "there is no user %d", p.UID)
	}
	if err != nil {
		return wire.Room{}, fmt.Errorf("create room: %w", err)
	}
	s.rooms.created(r.ID, p.UID)
	s.log.Info("room created", "room", r.ID, "owner", p.UID, "private", private)
	return roomDTO(r), nil
}

// Rooms lists the rooms p is a member of (GET /rooms).
func (s *Service) Rooms(ctx context.Context, p Principal) ([]wire.Room, error) {
	rooms, err := s.store.RoomsOf(ctx, p.UID)
	if err != nil {
		return nil, fmt.Errorf("rooms of %d: %w", p.UID, err)
	}
	out := make([]wire.Room, len(rooms))
	for i, r := range rooms {
		out[i] = roomDTO(r)
	}
	return out, nil
}

// Room returns a room p is a member of (GET /rooms/{room_id}).
func (s *Service) Room(ctx context.Context, p Principal, id int64) (wire.Room, error) {
	if err := s.canReadRoom(ctx, p, id); err != nil {
		return wire.Room{}, err
	}
	r, err := s.room(ctx, id)
	if err != nil {
		return wire.Room{}, err
	}
	return roomDTO(r), nil
}

// RoomMembers lists the members of a room p is a member of
// (GET /rooms/{room_id}/members).
func (s *Service) RoomMembers(ctx context.Context, p Principal, id int64) ([]wire.RoomMember, error) {
	if err := s.canReadRoom(ctx, p, id); err != nil {
		return nil, err
	}
	members, err := s.store.RoomMembers(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("members of room %d: %w", id, err)
	}
	out := make([]wire.RoomMember, len(members))
	for i, m := range members {
		out[i] = wire.RoomMember{UID: m.UID, Username: m.Username, Role: m.Role}
	}
	return out, nil
}

// room reads a room from the store.
func (s *Service) room(ctx context.Context, id int64) (Room, error) {
	r, err := s.store.Room(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Room{}, noRoom(id)
	}
	if err != nil {
		return Room{}, fmt.Errorf("room %d: %w", id, err)
	}
	return r, nil
}

// sendRoom stores a group message from p in room and delivers it to the
// room topic, where every subscribed member (the sender's devices
// included, as its receipt) gets it once.
func (s *Service) sendRoom(ctx context.Context, p Principal, room int64, msg wire.Publish) (wire.Envelope, error) {
	if err := s.canReadRoom(ctx, p, room); err != nil {
		return wire.Envelope{}, err
	}
	msg, err := validatePublish(msg)
	if err != nil {
		return wire.Envelope{}, err
	}
	return s.post(ctx, p, topics.RoomConv(room), msg, topics.Room(room))
}

// canReadRoom returns nil if p may read room's conversation and post to
// it: ErrNotFound if there is no such room, ErrForbidden if p is not a
// member. It answers from memory.
func (s *Service) canReadRoom(ctx context.Context, p Principal, room int64) error {
	if err := s.roomsReady(ctx); err != nil {
		return err
	}
	st, ok := s.rooms.get(room)
	if !ok {
		return noRoom(room)
	}
	if !st.has(p.UID) {
		return notMember(room)
	}
	return nil
}

// mayReceiveRoom reports whether p may subscribe to and receive room's
// topic. It runs for every delivery: no database access.
func (s *Service) mayReceiveRoom(p Principal, room int64) bool {
	return s.rooms.isMember(room, p.UID)
}
