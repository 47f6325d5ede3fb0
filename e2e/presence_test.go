package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/wire"
)

func presenceTopic(uid int64) string { return fmt.Sprintf("im/p/%d", uid) }

// nextPresence returns the next presence event on c's subscriptions.
func nextPresence(t *testing.T, in func(t testing.TB) imtest.Msg) wire.PresenceEvent {
	t.Helper()
	m := in(t)
	var ev wire.PresenceEvent
	m.Decode(t, &ev)
	if ev.Event != wire.EventPresence {
		t.Fatalf("got %s on %s, want a presence event", m.Payload, m.Topic)
	}
	return ev
}

// PROTOCOL §7: a user's presence topic is for itself and those who share a
// conversation with it; a subscriber gets the current state at once, then
// every change.
func TestPresence(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		alice, bob, carol := s.Register(t, "alice"), s.Register(t, "bob"), s.Register(t, "carol")
		s.MustDo(t, "POST", "/api/v1/conversations/"+single(alice.UID, bob.UID)+"/messages", alice.Token, text("", "hi"), http.StatusCreated, nil)
		eachTransport(t, func(t *testing.T, tr imtest.Transport) {
			watcher := s.Connect(t, bob, imtest.ClientOptions{Transport: tr})
			if code := watcher.Subscribe(t, presenceTopic(alice.UID)); code >= 0x80 {
				t.Fatalf("bob may follow alice: SUBACK 0x%02x", code)
			}
			ev := nextPresence(t, watcher.In.Next)
			if ev.UID != alice.UID || ev.Online || ev.Status != "online" {
				t.Fatalf("current state: %+v", ev)
			}
			c := s.Connect(t, alice, imtest.ClientOptions{Transport: tr})
			if ev := nextPresence(t, watcher.In.Next); !ev.Online {
				t.Fatalf("after alice connected: %+v", ev)
			}
			s.MustDo(t, "PUT", "/api/v1/me/status", alice.Token, wire.Status{Status: "away"}, http.StatusOK, nil)
			if ev := nextPresence(t, watcher.In.Next); !ev.Online || ev.Status != "away" {
				t.Fatalf("after alice went away: %+v", ev)
			}
			s.MustDo(t, "PUT", "/api/v1/me/status", alice.Token, wire.Status{Status: "online"}, http.StatusOK, nil)
			nextPresence(t, watcher.In.Next)
			before := time.Now().UnixMilli()
			c.Paho.Disconnect(100)
			ev = nextPresence(t, watcher.In.Next)
			if ev.Online || ev.LastSeen < before-1000 || ev.LastSeen > time.Now().UnixMilli() {
				t.Fatalf("after alice left: %+v", ev)
			}
			// A later subscriber gets the last state at once.
			late := s.Connect(t, bob, imtest.ClientOptions{Transport: tr})
			late.MustSubscribe(t, presenceTopic(alice.UID))
			if got := nextPresence(t, late.In.Next); got.Online || got.LastSeen != ev.LastSeen {
				t.Fatalf("late subscriber: %+v, want %+v", got, ev)
			}
			stranger := s.Connect(t, carol, imtest.ClientOptions{Transport: tr})
			if code := stranger.Subscribe(t, presenceTopic(alice.UID)); code < 0x80 {
				t.Fatalf("a stranger may follow alice: SUBACK 0x%02x", code)
			}
			stranger.In.None(t, 300*time.Millisecond)
			if code := stranger.Subscribe(t, presenceTopic(carol.UID)); code >= 0x80 {
				t.Fatalf("one's own presence: SUBACK 0x%02x", code)
			}
		})
		t.Run("mqtt5", func(t *testing.T) {
			c, err := s.Dial5(t, carol, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			if code := c.Subscribe(t, presenceTopic(alice.UID)); code != 0x87 {
				t.Fatalf("a stranger on MQTT 5: 0x%02x, want 0x87", code)
			}
			w, err := s.Dial5(t, bob, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			if code := w.Subscribe(t, presenceTopic(alice.UID)); code != 1 {
				t.Fatalf("bob on MQTT 5: 0x%02x", code)
			}
			if ev := nextPresence(t, w.In.Next); ev.UID != alice.UID {
				t.Fatalf("MQTT 5 current state: %+v", ev)
			}
		})
	})
}

// PROTOCOL §7: typing notices reach the others of the conversation, at most
// one a second per user and conversation, and are never stored.
func TestTypingOverMQTT(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		eachTransport(t, func(t *testing.T, tr imtest.Transport) {
			alice, bob, carol := s.Register(t, "alice"), s.Register(t, "bob"), s.Register(t, "carol")
			conv := single(alice.UID, bob.UID)
			a := s.Connect(t, alice, imtest.ClientOptions{Transport: tr})
			a.MustSubscribe(t, inbox(alice.UID))
			b := s.Connect(t, bob, imtest.ClientOptions{Transport: tr})
			b.MustSubscribe(t, inbox(bob.UID))
			a.Publish(t, "im/typing", 0, map[string]any{"conv": conv})
			a.Publish(t, "im/typing", 0, map[string]any{"conv": conv}) // within the second: dropped
			m := b.In.Next(t)
			var ev wire.TypingEvent
			m.Decode(t, &ev)
			if ev.Event != wire.EventTyping || ev.Conv != conv || ev.UID != alice.UID {
				t.Fatalf("typing event: %s", m.Payload)
			}
			b.In.None(t, 300*time.Millisecond)
			time.Sleep(time.Second) // the next notice may go
			a.Publish(t, "im/typing", 1, map[string]any{"conv": conv})
			if got := b.In.Next(t); got.Event() != wire.EventTyping {
				t.Fatalf("second notice: %s", got.Payload)
			}
			// A stranger is told why, on its inbox.
			c := s.Connect(t, carol, imtest.ClientOptions{Transport: tr})
			c.MustSubscribe(t, inbox(carol.UID))
			c.Publish(t, "im/typing", 1, map[string]any{"conv": conv})
			var refused wire.ErrorEvent
			c.In.Next(t).Decode(t, &refused)
			if refused.Code != wire.CodeForbidden || refused.Topic != "im/typing" {
				t.Fatalf("stranger's notice: %+v", refused)
			}
			b.In.None(t, 300*time.Millisecond)
			a.In.None(t, 100*time.Millisecond) // the typist hears nothing of itself
			var history []wire.Envelope
			s.MustDo(t, "GET", "/api/v1/conversations/"+conv+"/messages", alice.Token, nil, http.StatusOK, &history)
			if len(history) != 0 {
				t.Fatalf("typing stored: %+v", history)
			}
		})
	})
}

// PROTOCOL §6: users by name, and public rooms.
func TestUsersAndPublicRooms(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
		var found []wire.Account
		s.MustDo(t, "GET", "/api/v1/users?username="+bob.Username, alice.Token, nil, http.StatusOK, &found)
		if len(found) != 1 || found[0].UID != bob.UID || found[0].Username != bob.Username || found[0].Role != "" {
			t.Fatalf("lookup: %+v", found)
		}
		upper := []byte(bob.Username)
		upper[0] -= 'a' - 'A'
		s.MustDo(t, "GET", "/api/v1/users?username="+string(upper), alice.Token, nil, http.StatusOK, &found)
		if len(found) != 1 || found[0].UID != bob.UID {
			t.Fatalf("lookup is case-insensitive: %+v", found)
		}
		for _, name := range []string{"nobody_here", "bo", "b%25", "a%20b"} {
			var none []wire.Account
			s.MustDo(t, "GET", "/api/v1/users?username="+name, alice.Token, nil, http.StatusOK, &none)
			if none == nil || len(none) != 0 {
				t.Fatalf("lookup of %q: %+v, want []", name, none)
			}
		}
		if status, b := s.Do(t, "GET", "/api/v1/users", alice.Token, nil); status != http.StatusBadRequest || imtest.ErrorCode(b) != "invalid_request" {
			t.Fatalf("no username: %d %s", status, b)
		}
		if status, _ := s.Do(t, "GET", "/api/v1/users?username=bob", "", nil); status != http.StatusUnauthorized {
			t.Fatalf("anonymous lookup: %d", status)
		}

		var small, big, secret wire.Room
		s.MustDo(t, "POST", "/api/v1/rooms", alice.Token, map[string]any{"name": "Go Gophers"}, http.StatusCreated, &small)
		s.MustDo(t, "POST", "/api/v1/rooms", alice.Token, map[string]any{"name": "gopher 100%_club"}, http.StatusCreated, &big)
		s.MustDo(t, "POST", "/api/v1/rooms", alice.Token, map[string]any{"name": "Secret gophers", "private": true}, http.StatusCreated, &secret)
		s.MustDo(t, "POST", fmt.Sprintf("/api/v1/rooms/%d/join", big.RoomID), bob.Token, nil, http.StatusOK, nil)
		var rooms []wire.PublicRoom
		s.MustDo(t, "GET", "/api/v1/rooms/public?q=GOPHER", bob.Token, nil, http.StatusOK, &rooms)
		if len(rooms) != 2 || rooms[0].RoomID != big.RoomID || rooms[0].Members != 2 || rooms[1].RoomID != small.RoomID || rooms[1].Members != 1 || rooms[1].Private {
			t.Fatalf("public rooms, most members first, no private ones: %+v", rooms)
		}
		s.MustDo(t, "GET", "/api/v1/rooms/public?q=100%25_", bob.Token, nil, http.StatusOK, &rooms)
		if len(rooms) != 1 || rooms[0].RoomID != big.RoomID {
			t.Fatalf("wildcards in q are literal: %+v", rooms)
		}
		s.MustDo(t, "GET", "/api/v1/rooms/public?limit=1", bob.Token, nil, http.StatusOK, &rooms)
		if len(rooms) != 1 {
			t.Fatalf("limit: %+v", rooms)
		}
		if status, b := s.Do(t, "GET", "/api/v1/rooms/public?limit=-1", bob.Token, nil); status != http.StatusBadRequest {
			t.Fatalf("negative limit: %d %s", status, b)
		}
		// /rooms/public is not a room id.
		var r wire.Room
		s.MustDo(t, "GET", fmt.Sprintf("/api/v1/rooms/%d", big.RoomID), bob.Token, nil, http.StatusOK, &r)
	})
}
