package wire

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// The rooms API's JSON is part of the contract too (see TestGolden).
func TestRoomsGolden(t *testing.T) {
	for name, v := range map[string]any{
		"room":         Room{RoomID: 7, Name: "general", Owner: 3, Private: true},
		"room_members": []RoomMember{{UID: 3, Username: "alice", Role: RoleOwner}, {UID: 4, Username: "bob", Role: RoleMember}},
		"room_left":    Left{RoomID: 7, UID: 3, Action: ActionLeft, Owner: 4},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := json.MarshalIndent(v, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", name+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./wire -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s changed:\n%s\nwant:\n%s", path, got, want)
			}
		})
	}
}
