package im

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

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
	Role     string // RoomRoleOwner or RoomRoleMember
	JoinedAt int64  // Unix milliseconds
}

// RoomRemoval is what RemoveRoomMember did.
type RoomRemoval struct {
	Removed bool  // uid was a member and is no longer
	Owner   int64 // the room's owner afterwards; 0 if the room was deleted
	Deleted bool  // uid was the last member: the room is gone
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

func noRoom(id int64) error { return errorf(ErrNotFound, "there is no room %d", id) }

func notMember(id int64) error { return errorf(ErrForbidden, "you are not a member of room %d", id) }

// Rooms keeps group chats and who is a member of them. Membership checks
// answer from memory (see roomCache): the broker asks for every delivery.
type Rooms struct {
	*core
	store    RoomStore
	accounts *Accounts
	cache    *roomCache
}

// newRooms loads every membership into memory.
func newRooms(ctx context.Context, c *core, store RoomStore, accounts *Accounts) (*Rooms, error) {
	cache, err := loadRoomCache(ctx, store, c.log)
	if err != nil {
		return nil, err
	}
	return &Rooms{core: c, store: store, accounts: accounts, cache: cache}, nil
}

// PublicRoom is a public room and how many members it has.
type PublicRoom struct {
	Room
	Members int64
}

// Limits of GET /rooms/public.
const (
	defPublicRooms = 50
	maxPublicRooms = 200
	maxRoomQuery   = 64
)

// Public lists the public rooms whose name contains q, case-insensitively,
// most members first (GET /rooms/public). limit 0 is the default.
func (r *Rooms) Public(ctx context.Context, q string, limit int) ([]PublicRoom, error) {
	switch {
	case limit < 0:
		return nil, errorf(ErrInvalid, "limit must be positive")
	case limit == 0:
		limit = defPublicRooms
	case limit > maxPublicRooms:
		limit = maxPublicRooms
	}
	if utf8.RuneCountInString(q) > maxRoomQuery {
		return nil, errorf(ErrInvalid, "q is longer than %d characters", maxRoomQuery)
	}
	rooms, err := r.store.PublicRooms(ctx, strings.TrimSpace(q), limit)
	if err != nil {
		return nil, fmt.Errorf("public rooms: %w", err)
	}
	return rooms, nil
}

// Departure is what leaving or removing a member did: who is no longer a
// member and the room's owner afterwards (0 when the room was deleted
// because its last member left).
type Departure struct {
	Room   int64
	UID    int64
	Action string // wire.ActionLeft or wire.ActionRemoved
	Owner  int64
}

// Create creates a room owned by p, who is its first member (POST /rooms).
func (r *Rooms) Create(ctx context.Context, p Principal, name string, private bool) (Room, error) {
	name, err := checkRoomName(name)
	if err != nil {
		return Room{}, err
	}
	room, err := r.store.CreateRoom(ctx, Room{Name: name, Owner: p.UID, Private: private, CreatedAt: r.nowMillis()})
	if errors.Is(err, ErrNotFound) {
		return Room{}, errorf(ErrNotFound, "there is no user %d", p.UID)
	}
	if err != nil {
		return Room{}, fmt.Errorf("create room: %w", err)
	}
	r.cache.created(room.ID, p.UID)
	r.log.Info("room created", "room", room.ID, "owner", p.UID, "private", private)
	return room, nil
}

// Of lists the rooms p is a member of (GET /rooms).
func (r *Rooms) Of(ctx context.Context, p Principal) ([]Room, error) {
	rooms, err := r.store.RoomsOf(ctx, p.UID)
	if err != nil {
		return nil, fmt.Errorf("rooms of %d: %w", p.UID, err)
	}
	return rooms, nil
}

// Get returns a room p is a member of (GET /rooms/{room_id}).
func (r *Rooms) Get(ctx context.Context, p Principal, id int64) (Room, error) {
	if err := r.canRead(p, id); err != nil {
		return Room{}, err
	}
	return r.room(ctx, id)
}

// Members lists the members of a room p is a member of
// (GET /rooms/{room_id}/members).
func (r *Rooms) Members(ctx context.Context, p Principal, id int64) ([]RoomMember, error) {
	if err := r.canRead(p, id); err != nil {
		return nil, err
	}
	members, err := r.store.RoomMembers(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("members of room %d: %w", id, err)
	}
	return members, nil
}

// room reads a room from the store.
func (r *Rooms) room(ctx context.Context, id int64) (Room, error) {
	room, err := r.store.Room(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Room{}, noRoom(id)
	}
	if err != nil {
		return Room{}, fmt.Errorf("room %d: %w", id, err)
	}
	return room, nil
}

// canRead returns nil if p may read room's conversation and post to it:
// ErrNotFound if there is no such room, ErrForbidden if p is not a member.
// It answers from memory.
func (r *Rooms) canRead(p Principal, room int64) error {
	st, ok := r.cache.get(room)
	if !ok {
		return noRoom(room)
	}
	if !st.has(p.UID) {
		return notMember(room)
	}
	return nil
}

// mayReceive reports whether p may subscribe to and receive room's topic.
// It runs for every delivery: no database access.
func (r *Rooms) mayReceive(p Principal, room int64) bool {
	return r.cache.isMember(room, p.UID)
}
