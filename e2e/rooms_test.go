package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/wire"
)

func roomTopic(id int64) string { return fmt.Sprintf("im/r/%d", id) }

func roomConv(id int64) string { return fmt.Sprintf("r:%d", id) }

func roomPath(id int64, rest string) string { return fmt.Sprintf("/api/v1/rooms/%d%s", id, rest) }

func createRoom(t *testing.T, s *imtest.Server, owner imtest.User, name string, private bool) wire.Room {
	t.Helper()
	var r wire.Room
	s.MustDo(t, "POST", "/api/v1/rooms", owner.Token, wire.NewRoom{Name: name, Private: private}, http.StatusCreated, &r)
	return r
}

func joinRoom(t *testing.T, s *imtest.Server, u imtest.User, room int64) {
	t.Helper()
	s.MustDo(t, "POST", roomPath(room, "/join"), u.Token, nil, http.StatusOK, nil)
}

// postForm sends an application/x-www-form-urlencoded body, as curl -d does.
func postForm(t *testing.T, s *imtest.Server, path, token string, form url.Values) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", s.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// expectMember fails unless the next message each client gets is the
// room_member event.
func expectMember(t *testing.T, room, uid int64, action string, clients ...*imtest.Client) {
	t.Helper()
	for i, c := range clients {
		m := c.In.Next(t)
		var ev wire.RoomMemberEvent
		m.Decode(t, &ev)
		if m.Topic != roomTopic(room) || ev != (wire.RoomMemberEvent{Event: "room_member", Room: room, UID: uid, Action: action}) {
			t.Fatalf("client %d got %s on %s, want room_member %s of %d", i, m.Payload, m.Topic, action, uid)
		}
	}
}

// expectRoomMsg fails unless the next message each client gets is the
// envelope of seq in room, from from.
func expectRoomMsg(t *testing.T, room, seq, from int64, clients ...*imtest.Client) wire.Envelope {
	t.Helper()
	var e wire.Envelope
	for i, c := range clients {
		m := c.In.Next(t)
		e = m.Envelope(t)
		if m.Topic != roomTopic(room) || e.Conv != roomConv(room) || e.Room != room || e.Seq != seq || e.From != from || e.To != 0 {
			t.Fatalf("client %d got %s on %s, want seq %d of room %d from %d", i, m.Payload, m.Topic, seq, room, from)
		}
	}
	return e
}

func expectNothing(t *testing.T, clients ...*imtest.Client) {
	t.Helper()
	for _, c := range clients {
		c.In.None(t, 150*time.Millisecond)
	}
}

func expectError(t *testing.T, c *imtest.Client, topic, code string) {
	t.Helper()
	var ev wire.ErrorEvent
	c.In.Next(t).Decode(t, &ev)
	if ev.Event != "error" || ev.Topic != topic || ev.Code != code {
		t.Fatalf("got %+v, want error %s on %s", ev, code, topic)
	}
}

func TestRoomsREST(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		alice, bob, carol, dave := s.Register(t, "alice"), s.Register(t, "bob"), s.Register(t, "carol"), s.Register(t, "dave")

		// The creator is the owner; the name is trimmed.
		general := createRoom(t, s, alice, "  general ", false)
		if general.RoomID <= 0 || general.Name != "general" || general.Owner != alice.UID || general.Private {
			t.Fatalf("created %+v", general)
		}
		status, body := postForm(t, s, "/api/v1/rooms", alice.Token, url.Values{"name": {"secret"}, "private": {"true"}})
		if status != http.StatusCreated {
			t.Fatalf("form create: %d %s", status, body)
		}
		priv := createRoom(t, s, alice, "語"+strings.Repeat("x", 63), true)
		for _, tc := range []struct {
			name string
			body any
		}{
			{"no name", map[string]any{}},
			{"empty name", map[string]any{"name": ""}},
			{"blank name", map[string]any{"name": "   "}},
			{"name too long", map[string]any{"name": strings.Repeat("x", 65)}},
			{"control character", map[string]any{"name": "a\u0000b"}},
			{"name not a string", map[string]any{"name": 5}},
			{"private not a boolean", map[string]any{"name": "x", "private": "yes"}},
			{"not JSON", "{"},
		} {
			if status, body := s.Do(t, "POST", "/api/v1/rooms", alice.Token, tc.body); status != 400 || imtest.ErrorCode(body) != "invalid_request" {
				t.Errorf("%s: %d %s, want 400", tc.name, status, body)
			}
		}
		if status, _ := s.Do(t, "POST", "/api/v1/rooms", "", map[string]any{"name": "x"}); status != 401 {
			t.Fatalf("no token: %d", status)
		}

		var rooms []wire.Room
		s.MustDo(t, "GET", "/api/v1/rooms", alice.Token, nil, 200, &rooms)
		if len(rooms) != 3 || rooms[0] != general || rooms[1].Name != "secret" || !rooms[1].Private || rooms[2] != priv {
			t.Fatalf("alice's rooms %+v", rooms)
		}
		s.MustDo(t, "GET", "/api/v1/rooms", bob.Token, nil, 200, &rooms)
		if len(rooms) != 0 {
			t.Fatalf("bob's rooms %+v", rooms)
		}

		// Reading a room: members only.
		var got wire.Room
		s.MustDo(t, "GET", roomPath(general.RoomID, ""), alice.Token, nil, 200, &got)
		if got != general {
			t.Fatalf("GET room %+v", got)
		}
		for _, tc := range []struct {
			path   string
			status int
		}{
			{roomPath(general.RoomID, ""), 403},
			{roomPath(general.RoomID, "/members"), 403},
			{roomPath(999999, ""), 404},
			{roomPath(999999, "/members"), 404},
			{"/api/v1/rooms/abc", 400},
			{"/api/v1/rooms/0", 400},
		} {
			if status, body := s.Do(t, "GET", tc.path, bob.Token, nil); status != tc.status {
				t.Errorf("GET %s: %d %s, want %d", tc.path, status, body, tc.status)
			}
		}

		// Joining: public rooms only, twice is fine.
		s.MustDo(t, "POST", roomPath(general.RoomID, "/join"), bob.Token, nil, 200, &got)
		if got != general {
			t.Fatalf("join answered %+v", got)
		}
		joinRoom(t, s, bob, general.RoomID)
		if status, body := s.Do(t, "POST", roomPath(priv.RoomID, "/join"), bob.Token, nil); status != 403 || imtest.ErrorCode(body) != "forbidden" {
			t.Fatalf("joining a private room: %d %s", status, body)
		}
		if status, _ := s.Do(t, "POST", roomPath(999999, "/join"), bob.Token, nil); status != 404 {
			t.Fatalf("joining an unknown room: %d", status)
		}
		var members []wire.RoomMember
		s.MustDo(t, "GET", roomPath(general.RoomID, "/members"), bob.Token, nil, 200, &members)
		want := []wire.RoomMember{{UID: alice.UID, Username: alice.Username, Role: "owner"}, {UID: bob.UID, Username: bob.Username, Role: "member"}}
		if fmt.Sprint(members) != fmt.Sprint(want) {
			t.Fatalf("members %+v, want %+v", members, want)
		}

		// Adding members: the owner only.
		if status, body := s.Do(t, "POST", roomPath(general.RoomID, "/members"), bob.Token, wire.AddMember{UID: carol.UID}); status != 403 {
			t.Fatalf("a plain member adds someone: %d %s", status, body)
		}
		var added wire.RoomMember
		s.MustDo(t, "POST", roomPath(general.RoomID, "/members"), alice.Token, wire.AddMember{UID: carol.UID}, 200, &added)
		if added != (wire.RoomMember{UID: carol.UID, Username: carol.Username, Role: "member"}) {
			t.Fatalf("added %+v", added)
		}
		s.MustDo(t, "POST", roomPath(general.RoomID, "/members"), alice.Token, wire.AddMember{UID: carol.UID}, 200, nil)
		if status, body := postForm(t, s, roomPath(priv.RoomID, "/members"), alice.Token, url.Values{"uid": {fmt.Sprint(dave.UID)}}); status != 200 {
			t.Fatalf("form add: %d %s", status, body)
		}
		for _, tc := range []struct {
			name   string
			who    imtest.User
			room   int64
			body   any
			status int
		}{
			{"plain member of a private room", dave, priv.RoomID, wire.AddMember{UID: carol.UID}, 403},
			{"non-member", carol, priv.RoomID, wire.AddMember{UID: bob.UID}, 403},
			{"unknown user", alice, general.RoomID, wire.AddMember{UID: 999999}, 404},
			{"unknown room", alice, 999999, wire.AddMember{UID: bob.UID}, 404},
			{"no uid", alice, general.RoomID, map[string]any{}, 400},
			{"uid not a number", alice, general.RoomID, map[string]any{"uid": "x"}, 400},
		} {
			if status, body := s.Do(t, "POST", roomPath(tc.room, "/members"), tc.who.Token, tc.body); status != tc.status {
				t.Errorf("add, %s: %d %s, want %d", tc.name, status, body, tc.status)
			}
		}

		// Removing members: the owner only.
		for _, tc := range []struct {
			name   string
			who    imtest.User
			path   string
			status int
		}{
			{"plain member", bob, roomPath(general.RoomID, fmt.Sprintf("/members/%d", carol.UID)), 403},
			{"not a member", alice, roomPath(general.RoomID, fmt.Sprintf("/members/%d", dave.UID)), 404},
			{"bad uid", alice, roomPath(general.RoomID, "/members/abc"), 400},
			{"unknown room", alice, roomPath(999999, fmt.Sprintf("/members/%d", bob.UID)), 404},
		} {
			if status, body := s.Do(t, "DELETE", tc.path, tc.who.Token, nil); status != tc.status {
				t.Errorf("remove, %s: %d %s, want %d", tc.name, status, body, tc.status)
			}
		}
		var left wire.Left
		s.MustDo(t, "DELETE", roomPath(general.RoomID, fmt.Sprintf("/members/%d", carol.UID)), alice.Token, nil, 200, &left)
		if left != (wire.Left{RoomID: general.RoomID, UID: carol.UID, Action: "removed", Owner: alice.UID}) {
			t.Fatalf("remove answered %+v", left)
		}
		if status, _ := s.Do(t, "GET", roomPath(general.RoomID, ""), carol.Token, nil); status != 403 {
			t.Fatalf("a removed member reads the room: %d", status)
		}

		// Leaving: members only. The owner's leaving passes ownership to
		// the longest-standing member.
		if status, _ := s.Do(t, "POST", roomPath(general.RoomID, "/leave"), carol.Token, nil); status != 403 {
			t.Fatalf("a non-member leaves: %d", status)
		}
		if status, _ := s.Do(t, "POST", roomPath(999999, "/leave"), carol.Token, nil); status != 404 {
			t.Fatalf("leaving an unknown room: %d", status)
		}
		joinRoom(t, s, carol, general.RoomID)
		s.MustDo(t, "POST", roomPath(general.RoomID, "/leave"), alice.Token, nil, 200, &left)
		if left != (wire.Left{RoomID: general.RoomID, UID: alice.UID, Action: "left", Owner: bob.UID}) {
			t.Fatalf("owner leaves: %+v", left)
		}
		s.MustDo(t, "GET", roomPath(general.RoomID, ""), carol.Token, nil, 200, &got)
		if got.Owner != bob.UID {
			t.Fatalf("owner after the owner left: %+v", got)
		}
		s.MustDo(t, "GET", roomPath(general.RoomID, "/members"), bob.Token, nil, 200, &members)
		want = []wire.RoomMember{{UID: bob.UID, Username: bob.Username, Role: "owner"}, {UID: carol.UID, Username: carol.Username, Role: "member"}}
		if fmt.Sprint(members) != fmt.Sprint(want) {
			t.Fatalf("members %+v, want %+v", members, want)
		}
		s.MustDo(t, "POST", roomPath(general.RoomID, "/members"), bob.Token, wire.AddMember{UID: dave.UID}, 200, nil)

		// The owner removing itself leaves; the last member's leaving
		// deletes the room.
		s.MustDo(t, "DELETE", roomPath(general.RoomID, fmt.Sprintf("/members/%d", bob.UID)), bob.Token, nil, 200, &left)
		if left.Action != "left" || left.Owner != carol.UID {
			t.Fatalf("owner removes itself: %+v", left)
		}
		s.MustDo(t, "POST", roomPath(general.RoomID, "/leave"), carol.Token, nil, 200, nil)
		s.MustDo(t, "POST", roomPath(general.RoomID, "/leave"), dave.Token, nil, 200, &left)
		if left.Owner != 0 {
			t.Fatalf("last member leaves: %+v", left)
		}
		for _, path := range []string{roomPath(general.RoomID, ""), roomPath(general.RoomID, "/join")} {
			method := "GET"
			if strings.HasSuffix(path, "/join") {
				method = "POST"
			}
			if status, _ := s.Do(t, method, path, dave.Token, nil); status != 404 {
				t.Fatalf("%s %s of a deleted room: %d", method, path, status)
			}
		}
	})
}

func TestRoomChat(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		eachTransport(t, func(t *testing.T, tr imtest.Transport) {
			alice, bob, carol := s.Register(t, "alice"), s.Register(t, "bob"), s.Register(t, "carol")
			r := createRoom(t, s, alice, "general", false)
			joinRoom(t, s, bob, r.RoomID)
			topic := roomTopic(r.RoomID)
			a := s.Connect(t, alice, imtest.ClientOptions{Transport: tr})
			b1 := s.Connect(t, bob, imtest.ClientOptions{Transport: tr})
			b2 := s.Connect(t, bob, imtest.ClientOptions{Transport: tr}) // bob's second device
			outsider := s.Connect(t, carol, imtest.ClientOptions{Transport: tr})
			a.MustSubscribe(t, topic, inbox(alice.UID))
			b1.MustSubscribe(t, topic)
			b2.MustSubscribe(t, topic)
			outsider.MustSubscribe(t, inbox(carol.UID))
			if code := outsider.Subscribe(t, topic); code < 0x80 {
				t.Fatalf("a non-member's subscription granted: 0x%02x", code)
			}

			// Every member's devices, the sender's included, get each
			// message once, with the room's next seq; a spoofed from is
			// overridden.
			for i, tc := range []struct {
				c    *imtest.Client
				from int64
				qos  byte
				cid  string
			}{{a, alice.UID, 1, "a-1"}, {b1, bob.UID, 0, "b-1"}, {b2, bob.UID, 2, "b-2"}} {
				msg := text(tc.cid, "hello "+tc.cid)
				msg["from"], msg["room"] = carol.UID, 999
				tc.c.Publish(t, topic, tc.qos, msg)
				e := expectRoomMsg(t, r.RoomID, int64(i+1), tc.from, a, b1, b2)
				if e.CID != tc.cid || string(e.Body) != fmt.Sprintf(`"hello %s"`, tc.cid) {
					t.Fatalf("envelope %+v", e)
				}
			}
			expectNothing(t, a, b1, b2, outsider)

			// A re-sent cid is stored once; only the sender's inbox gets the
			// echo.
			a.Publish(t, topic, 1, text("a-1", "hello again"))
			m := a.In.Next(t)
			if e := m.Envelope(t); m.Topic != inbox(alice.UID) || e.Seq != 1 || e.CID != "a-1" || e.Room != r.RoomID || string(e.Body) != `"hello a-1"` {
				t.Fatalf("duplicate echo %s on %s", m.Payload, m.Topic)
			}
			expectNothing(t, b1, b2)

			// Outsiders can neither post nor read.
			outsider.Publish(t, topic, 1, text("o-1", "let me in"))
			expectError(t, outsider, topic, "forbidden")
			outsider.Publish(t, "im/r/999999", 1, text("o-2", "anyone?"))
			expectError(t, outsider, "im/r/999999", "not_found")
			expectNothing(t, a, b1, b2)
			if status, _ := s.Do(t, "GET", "/api/v1/conversations/"+roomConv(r.RoomID)+"/messages", carol.Token, nil); status != 403 {
				t.Fatalf("an outsider reads the history: %d", status)
			}
			if status, _ := s.Do(t, "POST", "/api/v1/conversations/"+roomConv(r.RoomID)+"/messages", carol.Token, text("", "x")); status != 403 {
				t.Fatalf("an outsider posts over REST: %d", status)
			}
			if status, _ := s.Do(t, "GET", "/api/v1/conversations/r:999999/messages", carol.Token, nil); status != 404 {
				t.Fatalf("history of an unknown room: %d", status)
			}

			var hist []wire.Envelope
			s.MustDo(t, "GET", "/api/v1/conversations/"+roomConv(r.RoomID)+"/messages?after_seq=0", bob.Token, nil, 200, &hist)
			if len(hist) != 3 {
				t.Fatalf("history %+v", hist)
			}
			for i, e := range hist {
				if e.Seq != int64(i+1) || e.Room != r.RoomID || e.CID == "" {
					t.Fatalf("history[%d] = %+v", i, e)
				}
			}
		})
	})
}

func TestRoomMQTT5(t *testing.T) {
	s := imtest.Start(t, imtest.Options{})
	alice, carol := s.Register(t, "alice"), s.Register(t, "carol")
	r := createRoom(t, s, alice, "general", false)
	topic := roomTopic(r.RoomID)
	outsider, err := s.Dial5(t, carol, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if code := outsider.Subscribe(t, inbox(carol.UID)); code != 1 {
		t.Fatalf("inbox: 0x%02x", code)
	}
	if code := outsider.Subscribe(t, topic); code != 0x87 {
		t.Fatalf("a non-member's subscription: 0x%02x, want 0x87", code)
	}
	for _, tc := range []struct {
		topic  string
		qos    byte
		reason byte
		code   string
	}{{topic, 1, 0x87, "forbidden"}, {topic, 2, 0x87, "forbidden"}, {"im/r/999999", 1, 0x90, "not_found"}} {
		if got := outsider.Publish(t, tc.topic, tc.qos, text("", "x")); got != tc.reason {
			t.Fatalf("publish to %s at QoS %d: 0x%02x, want 0x%02x", tc.topic, tc.qos, got, tc.reason)
		}
		var ev wire.ErrorEvent
		outsider.In.Next(t).Decode(t, &ev)
		if ev.Code != tc.code || ev.Topic != tc.topic {
			t.Fatalf("event %+v, want %s", ev, tc.code)
		}
	}
	member, err := s.Dial5(t, alice, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if code := member.Subscribe(t, topic); code != 1 {
		t.Fatalf("a member's subscription: 0x%02x", code)
	}
	if got := member.Publish(t, topic, 1, text("", "hi")); got != 0 {
		t.Fatalf("a member's publish: 0x%02x", got)
	}
	if e := member.In.Next(t).Envelope(t); e.Seq != 1 || e.Room != r.RoomID {
		t.Fatalf("got %+v", e)
	}
}

// Membership changes act on live connections at once: a departed
// member's devices get the event, then nothing more from the room, and
// their subscription is gone, without reconnecting.
func TestRoomMembershipChangesAreLive(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		eachTransport(t, func(t *testing.T, tr imtest.Transport) {
			alice, bob, carol, dave, erin := s.Register(t, "alice"), s.Register(t, "bob"), s.Register(t, "carol"), s.Register(t, "dave"), s.Register(t, "erin")
			r := createRoom(t, s, alice, "general", false)
			room, topic := r.RoomID, roomTopic(r.RoomID)
			joinRoom(t, s, bob, room)
			joinRoom(t, s, carol, room)
			a := s.Connect(t, alice, imtest.ClientOptions{Transport: tr})
			b1 := s.Connect(t, bob, imtest.ClientOptions{Transport: tr})
			b2 := s.Connect(t, bob, imtest.ClientOptions{Transport: tr})
			c := s.Connect(t, carol, imtest.ClientOptions{Transport: tr})
			a.MustSubscribe(t, topic)
			b1.MustSubscribe(t, topic, inbox(bob.UID))
			b2.MustSubscribe(t, topic, inbox(bob.UID))
			c.MustSubscribe(t, topic)
			everyone := []*imtest.Client{a, b1, b2, c}

			// Joining, by oneself or added by the owner, is announced.
			joinRoom(t, s, dave, room)
			expectMember(t, room, dave.UID, "joined", everyone...)
			s.MustDo(t, "POST", roomPath(room, "/members"), alice.Token, wire.AddMember{UID: erin.UID}, 200, nil)
			expectMember(t, room, erin.UID, "joined", everyone...)
			joinRoom(t, s, dave, room) // already a member: nothing to announce
			a.Publish(t, topic, 1, text("", "before"))
			expectRoomMsg(t, room, 1, alice.UID, everyone...)

			// The owner removes bob: both his devices get "removed" last.
			s.MustDo(t, "DELETE", roomPath(room, fmt.Sprintf("/members/%d", bob.UID)), alice.Token, nil, 200, nil)
			expectMember(t, room, bob.UID, "removed", everyone...)
			a.Publish(t, topic, 1, text("", "after"))
			expectRoomMsg(t, room, 2, alice.UID, a, c)
			expectNothing(t, b1, b2)
			// His connections are up: his inbox still works, and a publish
			// to the room is refused.
			if !b1.Paho.IsConnectionOpen() || !b2.Paho.IsConnectionOpen() {
				t.Fatal("removing a member disconnected it")
			}
			a.Publish(t, inbox(bob.UID), 1, text("", "psst"))
			for _, dev := range []*imtest.Client{b1, b2} {
				if m := dev.In.Next(t); m.Topic != inbox(bob.UID) {
					t.Fatalf("got %s on %s, want the inbox message", m.Payload, m.Topic)
				}
			}
			b1.Publish(t, topic, 1, text("b-x", "still here?"))
			expectError(t, b1, topic, "forbidden")
			expectError(t, b2, topic, "forbidden") // the error event goes to his inbox
			expectNothing(t, a, c)

			// The subscription itself is gone, not merely filtered: added
			// back, bob gets room messages only once he subscribes again.
			s.MustDo(t, "POST", roomPath(room, "/members"), alice.Token, wire.AddMember{UID: bob.UID}, 200, nil)
			expectMember(t, room, bob.UID, "joined", a, c)
			for _, dev := range []*imtest.Client{b1, b2} { // on his inbox: his devices learn of the room
				m := dev.In.Next(t)
				if m.Topic != inbox(bob.UID) || m.Event() != wire.EventRoomMember {
					t.Fatalf("got %s on %s, want room_member on the inbox", m.Payload, m.Topic)
				}
			}
			a.Publish(t, topic, 1, text("", "welcome back"))
			expectRoomMsg(t, room, 3, alice.UID, a, c)
			expectNothing(t, b1, b2)
			b1.MustSubscribe(t, topic)
			a.Publish(t, topic, 1, text("", "now you hear me"))
			expectRoomMsg(t, room, 4, alice.UID, a, b1, c)
			expectNothing(t, b2)

			// Leaving: the leaver's own device gets its "left", then nothing.
			s.MustDo(t, "POST", roomPath(room, "/leave"), carol.Token, nil, 200, nil)
			expectMember(t, room, carol.UID, "left", a, b1, c)
			a.Publish(t, topic, 1, text("", "bye carol"))
			expectRoomMsg(t, room, 5, alice.UID, a, b1)
			expectNothing(t, c)
			if code := c.Subscribe(t, topic); code < 0x80 {
				t.Fatalf("a former member's subscription granted: 0x%02x", code)
			}
		})
	})
}

func TestRoomHistoryUnreadAndRead(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		alice, bob, carol := s.Register(t, "alice"), s.Register(t, "bob"), s.Register(t, "carol")
		r := createRoom(t, s, alice, "general", false)
		conv := roomConv(r.RoomID)
		convOf := func(u imtest.User) *wire.Conversation {
			t.Helper()
			var convs []wire.Conversation
			s.MustDo(t, "GET", "/api/v1/conversations", u.Token, nil, 200, &convs)
			for _, c := range convs {
				if c.Conv == conv {
					return &c
				}
			}
			return nil
		}
		// A room is a conversation from its creation.
		if c := convOf(alice); c == nil || c.Kind != "room" || c.LastSeq != 0 || c.Unread != 0 || c.LastMessage != nil {
			t.Fatalf("new room in alice's conversations: %+v", c)
		}
		send := func(u imtest.User, body string) wire.Envelope {
			t.Helper()
			var e wire.Envelope
			s.MustDo(t, "POST", "/api/v1/conversations/"+conv+"/messages", u.Token, text("", body), 201, &e)
			return e
		}
		for i := 1; i <= 3; i++ {
			if e := send(alice, fmt.Sprint("old ", i)); e.Seq != int64(i) || e.Room != r.RoomID || e.From != alice.UID {
				t.Fatalf("REST send %+v", e)
			}
		}
		// What came before bob joined is readable, but not unread.
		joinRoom(t, s, bob, r.RoomID)
		if c := convOf(bob); c == nil || c.LastSeq != 3 || c.ReadSeq != 3 || c.Unread != 0 || c.LastMessage.Seq != 3 {
			t.Fatalf("bob's room after joining: %+v", c)
		}
		var hist []wire.Envelope
		s.MustDo(t, "GET", "/api/v1/conversations/"+conv+"/messages?after_seq=0", bob.Token, nil, 200, &hist)
		if len(hist) != 3 {
			t.Fatalf("bob's history %+v", hist)
		}

		a := s.Connect(t, alice, imtest.ClientOptions{})
		a.MustSubscribe(t, roomTopic(r.RoomID), inbox(alice.UID))
		send(alice, "new 1")
		send(alice, "new 2")
		expectRoomMsg(t, r.RoomID, 4, alice.UID, a)
		expectRoomMsg(t, r.RoomID, 5, alice.UID, a)
		if c := convOf(bob); c.Unread != 2 || c.LastSeq != 5 {
			t.Fatalf("bob's unread %+v", c)
		}
		if c := convOf(alice); c.Unread != 0 || c.ReadSeq != 5 {
			t.Fatalf("the sender's own messages are read: %+v", c)
		}
		var st wire.ReadState
		s.MustDo(t, "POST", "/api/v1/conversations/"+conv+"/read", bob.Token, map[string]int64{"seq": 4}, 200, &st)
		if st != (wire.ReadState{Conv: conv, ReadSeq: 4, LastSeq: 5, Unread: 1}) {
			t.Fatalf("read %+v", st)
		}
		a.In.None(t, 200*time.Millisecond) // no read event in a room
		s.MustDo(t, "POST", "/api/v1/conversations/"+conv+"/read", bob.Token, map[string]int64{"seq": 99}, 200, &st)
		if st.ReadSeq != 5 || st.Unread != 0 {
			t.Fatalf("read past the end %+v", st)
		}

		// Outsiders and former members see nothing.
		if c := convOf(carol); c != nil {
			t.Fatalf("an outsider lists the room: %+v", c)
		}
		if status, _ := s.Do(t, "POST", "/api/v1/conversations/"+conv+"/read", carol.Token, map[string]int64{"seq": 1}); status != 403 {
			t.Fatalf("an outsider marks it read: %d", status)
		}
		s.MustDo(t, "POST", roomPath(r.RoomID, "/leave"), bob.Token, nil, 200, nil)
		expectMember(t, r.RoomID, bob.UID, "left", a)
		if c := convOf(bob); c != nil {
			t.Fatalf("a former member lists the room: %+v", c)
		}
		if status, _ := s.Do(t, "GET", "/api/v1/conversations/"+conv+"/messages", bob.Token, nil); status != 403 {
			t.Fatalf("a former member reads the history: %d", status)
		}
	})
}

// Members publishing at once get contiguous seqs, each message stored and
// delivered exactly once.
func TestRoomSeqsUnderConcurrentSenders(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		owner := s.Register(t, "owner")
		r := createRoom(t, s, owner, "busy", false)
		watcher := s.Connect(t, owner, imtest.ClientOptions{})
		watcher.MustSubscribe(t, roomTopic(r.RoomID))
		const senders, each = 4, 25
		clients := make([]*imtest.Client, senders)
		for i := range clients {
			u := s.Register(t, "sender")
			joinRoom(t, s, u, r.RoomID)
			expectMember(t, r.RoomID, u.UID, "joined", watcher)
			clients[i] = s.Connect(t, u, imtest.ClientOptions{Transport: imtest.Transports[i%2]})
		}
		var wg sync.WaitGroup
		errs := make(chan error, senders*each)
		for i, c := range clients {
			wg.Go(func() {
				for j := range each {
					tok := c.Paho.Publish(roomTopic(r.RoomID), 1, false, fmt.Sprintf(`{"cid":"s%d-%d","type":"text","body":"x"}`, i, j))
					if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
						errs <- fmt.Errorf("sender %d message %d: %v", i, j, tok.Error())
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		var seqs []int
		for range senders * each {
			seqs = append(seqs, int(watcher.In.Next(t).Envelope(t).Seq))
		}
		watcher.In.None(t, 200*time.Millisecond)
		sort.Ints(seqs)
		for i, seq := range seqs {
			if seq != i+1 {
				t.Fatalf("delivered seqs %v: not each of 1..%d once", seqs, senders*each)
			}
		}
		var hist []wire.Envelope
		s.MustDo(t, "GET", "/api/v1/conversations/"+roomConv(r.RoomID)+"/messages?after_seq=0&limit=200", owner.Token, nil, 200, &hist)
		cids := map[string]bool{}
		for i, e := range hist {
			if e.Seq != int64(i+1) || cids[e.CID] {
				t.Fatalf("history[%d] = %+v", i, e)
			}
			cids[e.CID] = true
		}
		if len(hist) != senders*each {
			t.Fatalf("%d messages stored, want %d", len(hist), senders*each)
		}
	})
}

// Memberships live in the database: after a restart the server knows who
// may subscribe to which room.
func TestRoomMembershipSurvivesRestart(t *testing.T) {
	for _, e := range imtest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			s := imtest.Start(t, imtest.Options{Engine: e})
			alice, bob, carol := s.Register(t, "alice"), s.Register(t, "bob"), s.Register(t, "carol")
			r := createRoom(t, s, alice, "general", true)
			s.MustDo(t, "POST", roomPath(r.RoomID, "/members"), alice.Token, wire.AddMember{UID: bob.UID}, 200, nil)
			s.MustDo(t, "POST", roomPath(r.RoomID, "/members"), alice.Token, wire.AddMember{UID: carol.UID}, 200, nil)
			s.MustDo(t, "DELETE", roomPath(r.RoomID, fmt.Sprintf("/members/%d", carol.UID)), alice.Token, nil, 200, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := s.App.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}

			again := imtest.Start(t, imtest.Options{Engine: e, DBURL: s.DBURL})
			alice, bob, carol = again.Login(t, alice.Username, "password1"), again.Login(t, bob.Username, "password1"), again.Login(t, carol.Username, "password1")
			b := again.Connect(t, bob, imtest.ClientOptions{})
			b.MustSubscribe(t, roomTopic(r.RoomID))
			c := again.Connect(t, carol, imtest.ClientOptions{})
			if code := c.Subscribe(t, roomTopic(r.RoomID)); code < 0x80 {
				t.Fatalf("a removed member subscribes after a restart: 0x%02x", code)
			}
			a := again.Connect(t, alice, imtest.ClientOptions{})
			a.Publish(t, roomTopic(r.RoomID), 1, text("", "still here"))
			expectRoomMsg(t, r.RoomID, 1, alice.UID, b)
		})
	}
}
