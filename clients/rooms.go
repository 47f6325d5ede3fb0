package clients

import (
	"context"
	"net/http"
	"strconv"
)

// Room is a group chat as the rooms API returns it.
type Room struct {
	RoomID  int64  `json:"room_id"`
	Name    string `json:"name"`
	Owner   int64  `json:"owner"`
	Private bool   `json:"private"`
}

// Member is a member of a room.
type Member struct {
	UID      int64  `json:"uid"`
	Username string `json:"username"`
	Role     string `json:"role"` // "owner" or "member"
}

func roomPath(room int64) string { return "/rooms/" + strconv.FormatInt(room, 10) }

// CreateRoom creates a room; the caller becomes its owner and first member.
// Anyone may join a public room; only its owner adds members to a private one.
func (a *API) CreateRoom(ctx context.Context, name string, private bool) (Room, error) {
	var r Room
	err := a.Do(ctx, http.MethodPost, "/rooms", map[string]any{"name": name, "private": private}, &r)
	return r, err
}

// Rooms lists the rooms the user is a member of.
func (a *API) Rooms(ctx context.Context) ([]Room, error) {
	var out []Room
	err := a.Do(ctx, http.MethodGet, "/rooms", nil, &out)
	return out, err
}

// Room returns a room the user is a member of.
func (a *API) Room(ctx context.Context, room int64) (Room, error) {
	var r Room
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
func (a *API) RoomMembers(ctx context.Context, room int64) ([]Member, error) {
	var out []Member
	err := a.Do(ctx, http.MethodGet, roomPath(room)+"/members", nil, &out)
	return out, err
}

// AddRoomMember adds a user to a room (its owner only).
func (a *API) AddRoomMember(ctx context.Context, room, uid int64) error {
	return a.Do(ctx, http.MethodPost, roomPath(room)+"/members", map[string]int64{"uid": uid}, nil)
}

// RemoveRoomMember removes a user from a room (its owner only).
func (a *API) RemoveRoomMember(ctx context.Context, room, uid int64) error {
	return a.Do(ctx, http.MethodDelete, roomPath(room)+"/members/"+strconv.FormatInt(uid, 10), nil, nil)
}
