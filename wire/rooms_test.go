package wire

import "testing"

// The rooms API's JSON is part of the contract too (see TestGolden).
func TestRoomsGolden(t *testing.T) {
	for name, v := range map[string]any{
		"room":         Room{RoomID: 7, Name: "general", Owner: 3, Private: true},
		"room_members": []RoomMember{{UID: 3, Username: "alice", Role: RoleOwner}, {UID: 4, Username: "bob", Role: RoleMember}},
		"room_left":    Left{RoomID: 7, UID: 3, Action: ActionLeft, Owner: 4},
	} {
		t.Run(name, func(t *testing.T) { checkGolden(t, name, v) })
	}
}
