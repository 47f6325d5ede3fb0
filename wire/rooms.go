package wire

// Shapes of the rooms API (PROTOCOL.md §2, group chat).

// Roles of room members.
const (
	RoleOwner  = "owner"
	RoleMember = "member"
)

// Limits of room names, in characters.
const (
	MinRoomName = 1
	MaxRoomName = 64
)

// NewRoom is the body of POST /rooms.
type NewRoom struct {
	Name    string `json:"name"`
	Private bool   `json:"private"`
}

// Room is a room as POST /rooms, GET /rooms, GET /rooms/{room_id} and
// POST /rooms/{room_id}/join return it.
type Room struct {
	RoomID  int64  `json:"room_id"`
	Name    string `json:"name"`
	Owner   int64  `json:"owner"`
	Private bool   `json:"private"`
}

// RoomMember is one row of GET /rooms/{room_id}/members, and the answer of
// POST /rooms/{room_id}/members.
type RoomMember struct {
	UID      int64  `json:"uid"`
	Username string `json:"username"`
	Role     string `json:"role"` // RoleOwner or RoleMember
}

// AddMember is the body of POST /rooms/{room_id}/members.
type AddMember struct {
	UID int64 `json:"uid"`
}

// Left is the answer of POST /rooms/{room_id}/leave and
// DELETE /rooms/{room_id}/members/{uid}: who is no longer a member, and
// the room's owner afterwards (0 when the room was deleted because its last
// member left).
type Left struct {
	RoomID int64  `json:"room_id"`
	UID    int64  `json:"uid"`
	Action string `json:"action"` // ActionLeft or ActionRemoved
	Owner  int64  `json:"owner"`
}

// PublicRoom is one row of GET /rooms/public: a public room and how many
// members it has.
type PublicRoom struct {
	RoomID  int64  `json:"room_id"`
	Name    string `json:"name"`
	Owner   int64  `json:"owner"`
	Private bool   `json:"private"` // always false
	Members int64  `json:"members"`
}
