package wire

import (
	"encoding/json"
	"testing"
)

// Every REST response shape (PROTOCOL.md §2) is pinned by a golden file,
// as the MQTT shapes are (see TestGolden, TestRoomsGolden).
func TestRESTGolden(t *testing.T) {
	welcome, offline := "Welcome!", ""
	krs := []KeywordReply{{Keyword: "price", Reply: "see the list"}}
	agent := int64(4)
	env := Envelope{ID: "m1", Conv: "u:1:2", Seq: 5, From: 1, To: 2, Type: TypeText, Body: json.RawMessage(`"hello"`), CID: "c-1", TS: 1732330000000}
	for name, v := range map[string]any{
		"account_registered": Account{UID: 2, Username: "alice"},
		"account_me":         Account{UID: 2, Username: "alice", Role: "user"},
		"token":              Token{AccessToken: "eyJ…", TokenType: "Bearer", ExpiresIn: 604800, UID: 2, Username: "alice", Role: "user"},
		"conversations": []Conversation{
			{Conv: "u:1:2", Kind: "single", LastSeq: 5, ReadSeq: 3, Unread: 2, PeerReadSeq: 5, LastMessage: &env},
			{Conv: "r:7", Kind: "room", LastSeq: 0, ReadSeq: 0, Unread: 0},
		},
		"history":     []Envelope{env},
		"read_state":  ReadState{Conv: "u:1:2", ReadSeq: 5, LastSeq: 5, Unread: 0},
		"rooms":       []Room{{RoomID: 7, Name: "general", Owner: 3}},
		"room_member": RoomMember{UID: 4, Username: "bob", Role: RoleMember},
		"shop_staff":  Shop{ShopID: 1, Name: "Tea Shop", WelcomeMessage: &welcome, OfflineMessage: &offline, KeywordReplies: &krs, CreatedAt: 1732330000000},
		"shop_public": Shop{ShopID: 1, Name: "Tea Shop"},
		"shop_agents": []ShopAgent{{UID: 4, Username: "agent", Online: true, Status: "online", OpenSessions: 2}},
		"cs_sessions": []CSSession{
			{SessionID: 11, ShopID: 1, Customer: 9, Agent: &agent, Status: SessionOpen, CreatedAt: 1732330000000},
			{SessionID: 12, ShopID: 1, Customer: 10, Status: SessionQueued, CreatedAt: 1732330000001},
		},
		"status":          Status{Status: "away"},
		"ok":              OK{OK: true},
		"guest":           Token{AccessToken: "eyJ…", TokenType: "Bearer", ExpiresIn: 2592000, UID: 9, Username: "guest-a1b2c3d4e5f6", Role: "guest"},
		"users":           []Account{{UID: 9, Username: "guest-a1b2c3d4e5f6", Name: "Vera"}, {UID: 4, Username: "agent"}},
		"user_search":     []UserInfo{{UID: 4, Username: "agent", Role: "user", Disabled: true, CreatedAt: 1732330000000}},
		"public_rooms":    []PublicRoom{{RoomID: 7, Name: "general", Owner: 3, Members: 12}},
		"upload":          Upload{URL: "https://chat.example/uploads/0123456789abcdef0123456789abcdef/cat.png", Name: "cat.png", Size: 2048, ContentType: "image/png", Width: 64, Height: 48},
		"identity_secret": IdentitySecret{IdentitySecret: "4f…"},
		"canned":          []CannedReply{{ID: 1, Shortcut: "hi", Text: "Hello, how can I help?"}},
		"customer": Customer{UID: 9, Username: "guest-a1b2c3d4e5f6", Name: "Vera", FirstContact: 1732330000000,
			Sessions: []CSSession{{SessionID: 12, ShopID: 1, Customer: 9, Status: SessionQueued, CreatedAt: 1732330000000}},
			Page:     &PageContext{URL: "https://shop.example/cart", Title: "Cart", UpdatedAt: 1732330000000}},
	} {
		t.Run(name, func(t *testing.T) { checkGolden(t, name, v) })
	}
}
