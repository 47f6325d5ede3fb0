package clients

import (
	"context"
	"net/http"
	"strconv"

	"github.com/imserver/imserver/wire"
)

// Rooms use the contract's shapes: wire.Room and wire.RoomMember.

func roomPath(room int64) string { return "/rooms/" + strconv.FormatInt(room, 10) }

// CreateRoom creates a room; the caller becomes its owner and first member.
// Anyone may join a public room; only its owner adds members to a private one.
func (a *API) CreateRoom(ctx context.Context, name string, private bool) (wire.Room, error) {
	var r wire.Room
	err := a.Do(ctx, http.MethodPost, "/rooms", wire.NewRoom{Name: name, Private: private}, &r)
	return r, err
}

// Rooms lists the rooms the user is a member of.
func (a *API) Rooms(ctx context.Context) ([]wire.Room, error) {
	var out []wire.Room
	err := a.Do(ctx, http.MethodGet, "/rooms", nil, &out)
	return out, err
}

// Room returns a room the user is a member of.
func (a *API) Room(ctx context.Context, room int64) (wire.Room, error) {
	var r wire.Room
	err := a.Do(ctx, http.MethodGet, roomPath(room), nil, &r)
	return r, err
}

// JoinRoom makes the user a member of a public room. A Client must then
// subscribe to it (Client.JoinRoom does both).
func (a *API) JoinRoom(ctx context.Context, room int64) error {
	return a.Do(ctx, http.MethodPost, roomPath(room)+"/join", nil, nil)
}

// LeaveRoom ends the user's membership of a room.
func (a *API) LeaveRoom(ctx context.Context, room int64) error {
	return a.Do(ctx, http.MethodPost, roomPath(room)+"/leave", nil, nil)
}

// RoomMembers lists a room's members.
func (a *API) RoomMembers(ctx context.Context, room int64) ([]wire.RoomMember, error) {
	var out []wire.RoomMember
	err := a.Do(ctx, http.MethodGet, roomPath(room)+"/members", nil, &out)
	return out, err
}

// AddRoomMember adds a user to a room (its owner only).
func (a *API) AddRoomMember(ctx context.Context, room, uid int64) error {
	return a.Do(ctx, http.MethodPost, roomPath(room)+"/members", wire.AddMember{UID: uid}, nil)
}

// RemoveRoomMember removes a user from a room (its owner only).
func (a *API) RemoveRoomMember(ctx context.Context, room, uid int64) error {
	return a.Do(ctx, http.MethodDelete, roomPath(room)+"/members/"+strconv.FormatInt(uid, 10), nil, nil)
}
