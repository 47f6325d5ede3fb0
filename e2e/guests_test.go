package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/wire"
)

// guest signs in a new guest.
func guest(t *testing.T, s *imtest.Server, name string) imtest.User {
	t.Helper()
	var tok wire.Token
	s.MustDo(t, "POST", "/api/v1/auth/guest", "", map[string]any{"name": name}, http.StatusCreated, &tok)
	if tok.Role != "guest" || !strings.HasPrefix(tok.Username, "guest-") || tok.AccessToken == "" || tok.ExpiresIn <= 0 {
		t.Fatalf("guest: %+v", tok)
	}
	return imtest.User{UID: tok.UID, Username: tok.Username, Token: tok.AccessToken, Role: tok.Role}
}

// PROTOCOL §6: a guest may only write to shops, read its own service
// conversations, receive on its inbox and the broadcast topic, use /me,
// /auth/logout and /uploads; anything else is forbidden, over REST and MQTT.
func TestGuests(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		shop := createShop(t, s, map[string]any{"name": "Tea", "welcome_message": "Hi!"})
		alice := s.Register(t, "alice")
		g := guest(t, s, "Visitor Vera")
		var me wire.Account
		s.MustDo(t, "GET", "/api/v1/me", g.Token, nil, http.StatusOK, &me)
		if me.Role != "guest" || me.Name != "Visitor Vera" {
			t.Fatalf("/me: %+v", me)
		}
		own := serviceConv(shop, g.UID)
		s.MustDo(t, "POST", "/api/v1/conversations/"+own+"/messages", g.Token, text("", "hello shop"), http.StatusCreated, nil)
		var convs []wire.Conversation
		s.MustDo(t, "POST", "/api/v1/broadcasts", s.Admin.Token, map[string]any{"text": "news"}, http.StatusCreated, nil)
		s.MustDo(t, "GET", "/api/v1/conversations", g.Token, nil, http.StatusOK, &convs)
		if len(convs) != 1 || convs[0].Conv != own {
			t.Fatalf("a guest's conversations: %+v", convs)
		}
		s.MustDo(t, "GET", "/api/v1/conversations/"+own+"/messages", g.Token, nil, http.StatusOK, nil)
		s.MustDo(t, "POST", "/api/v1/conversations/"+own+"/read", g.Token, map[string]any{"seq": 1}, http.StatusOK, nil)
		if code, b := upload(t, s, g.Token, "file", "a.txt", []byte("hello")); code != http.StatusCreated {
			t.Fatalf("a guest's upload: %d %s", code, b)
		}
		for _, tc := range []struct{ method, path string }{
			{"GET", "/api/v1/rooms"},
			{"POST", "/api/v1/rooms"},
			{"GET", "/api/v1/rooms/public"},
			{"GET", "/api/v1/users?username=" + alice.Username},
			{"GET", "/api/v1/shops"},
			{"PUT", "/api/v1/me/status"},
			{"PUT", "/api/v1/me/password"},
			{"POST", "/api/v1/broadcasts"},
			{"GET", "/api/v1/conversations/sys/messages"},
			{"GET", "/api/v1/conversations/" + single(alice.UID, g.UID) + "/messages"},
			{"POST", "/api/v1/conversations/" + single(alice.UID, g.UID) + "/messages"},
			{"GET", "/api/v1/conversations/" + serviceConv(shop, alice.UID) + "/messages"},
		} {
			if code, b := s.Do(t, tc.method, tc.path, g.Token, map[string]any{"name": "x", "type": "text", "body": "x"}); code != http.StatusForbidden || imtest.ErrorCode(b) != "forbidden" {
				t.Errorf("guest %s %s: %d %s, want 403", tc.method, tc.path, code, b)
			}
		}
		// Nobody may chat with a guest, add it to a room or make it an agent.
		if code := status(t, s, "POST", "/api/v1/conversations/"+single(alice.UID, g.UID)+"/messages", alice.Token, text("", "hi")); code != http.StatusForbidden {
			t.Errorf("a single chat to a guest: %d", code)
		}
		var room wire.Room
		s.MustDo(t, "POST", "/api/v1/rooms", alice.Token, map[string]any{"name": "r"}, http.StatusCreated, &room)
		if code := status(t, s, "POST", fmt.Sprintf("/api/v1/rooms/%d/members", room.RoomID), alice.Token, map[string]any{"uid": g.UID}); code != http.StatusBadRequest {
			t.Errorf("a guest added to a room: %d", code)
		}
		if code := status(t, s, "POST", fmt.Sprintf("/api/v1/shops/%d/agents", shop), s.Admin.Token, map[string]any{"uid": g.UID}); code != http.StatusForbidden {
			t.Errorf("a guest made an agent: %d", code)
		}
		// A guest cannot log in with a password: it has none.
		if code := status(t, s, "POST", "/api/v1/auth/login", "", wire.Credentials{Username: g.Username, Password: ""}); code != http.StatusUnauthorized {
			t.Errorf("a guest's login: %d", code)
		}

		eachTransport(t, func(t *testing.T, tr imtest.Transport) {
			c := s.Connect(t, g, imtest.ClientOptions{Transport: tr})
			c.MustSubscribe(t, inbox(g.UID), "im/sys/broadcast")
			if code := c.Subscribe(t, presenceTopic(alice.UID)); code < 0x80 {
				t.Errorf("a guest follows a user's presence: 0x%02x", code)
			}
			for _, topic := range []string{inbox(alice.UID), fmt.Sprintf("im/r/%d", room.RoomID), "im/sys/broadcast", replyTopic(shop, alice.UID)} {
				c.Publish(t, topic, 1, text("g-1", "sneaky"))
				var ev wire.ErrorEvent
				m := c.In.Await(t, "an error event", func(m imtest.Msg) bool { return m.Event() == wire.EventError })
				m.Decode(t, &ev)
				if ev.Code != wire.CodeForbidden || ev.Topic != topic {
					t.Errorf("guest publish to %s: %+v", topic, ev)
				}
			}
			c.Publish(t, shopTopic(shop), 1, text("g-2", "still here"))
			c.In.Await(t, "its own message", func(m imtest.Msg) bool { return m.Event() == "" && strings.Contains(string(m.Payload), "still here") })
		})
		t.Run("mqtt5", func(t *testing.T) {
			c, err := s.Dial5(t, g, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			if code := c.Publish(t, inbox(alice.UID), 1, text("", "x")); code != 0x87 {
				t.Fatalf("a guest's single chat on MQTT 5: 0x%02x, want 0x87", code)
			}
		})
	})
}

// PROTOCOL §6: a verified visitor signs in with the HMAC of its external
// id; the same id is always the same user.
func TestVisitors(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		shop := createShop(t, s, map[string]any{"name": "Tea"})
		other := createShop(t, s, map[string]any{"name": "Coffee"})
		var sec wire.IdentitySecret
		s.MustDo(t, "GET", fmt.Sprintf("/api/v1/shops/%d/identity-secret", shop), s.Admin.Token, nil, http.StatusOK, &sec)
		if len(sec.IdentitySecret) < 32 {
			t.Fatalf("identity secret %q", sec.IdentitySecret)
		}
		var sec2 wire.IdentitySecret
		s.MustDo(t, "GET", fmt.Sprintf("/api/v1/shops/%d/identity-secret", other), s.Admin.Token, nil, http.StatusOK, &sec2)
		if sec2.IdentitySecret == sec.IdentitySecret {
			t.Fatal("two shops share an identity secret")
		}
		visit := func(shop int64, ext, name, hash string) (int, wire.Token) {
			var tok wire.Token
			code, b := s.Do(t, "POST", "/api/v1/auth/visitor", "", wire.VisitorRequest{ShopID: shop, ExternalID: ext, Name: name, Hash: hash})
			if code == http.StatusOK {
				imtest.Msg{Payload: b}.Decode(t, &tok)
			}
			return code, tok
		}
		hash := im.VisitorHash(sec.IdentitySecret, "customer-42")
		code, first := visit(shop, "customer-42", "Ann", hash)
		if code != http.StatusOK || first.Role != "guest" || first.UID == 0 {
			t.Fatalf("visitor: %d %+v", code, first)
		}
		code, again := visit(shop, "customer-42", "Ann B.", strings.ToUpper(hash))
		if code != http.StatusOK || again.UID != first.UID || again.AccessToken == first.AccessToken {
			t.Fatalf("the same visitor again: %d %+v, first %+v", code, again, first)
		}
		var me wire.Account
		s.MustDo(t, "GET", "/api/v1/me", again.AccessToken, nil, http.StatusOK, &me)
		if me.Name != "Ann B." {
			t.Fatalf("the name was not updated: %+v", me)
		}
		for _, tc := range []struct {
			desc string
			shop int64
			ext  string
			hash string
			want int
		}{
			{"a wrong hash", shop, "customer-42", im.VisitorHash("not the secret", "customer-42"), http.StatusUnauthorized},
			{"another id's hash", shop, "customer-43", hash, http.StatusUnauthorized},
			{"the hash of another shop", other, "customer-42", hash, http.StatusUnauthorized},
			{"no external id", shop, "", hash, http.StatusBadRequest},
			{"a short hash", shop, "customer-42", hash[:10], http.StatusBadRequest},
			{"no such shop", 9999, "customer-42", hash, http.StatusNotFound},
		} {
			if code, _ := visit(tc.shop, tc.ext, "", tc.hash); code != tc.want {
				t.Errorf("%s: %d, want %d", tc.desc, code, tc.want)
			}
		}
		// The same external id at another shop is another visitor.
		code, elsewhere := visit(other, "customer-42", "", im.VisitorHash(sec2.IdentitySecret, "customer-42"))
		if code != http.StatusOK || elsewhere.UID == first.UID {
			t.Fatalf("another shop's visitor: %d %+v", code, elsewhere)
		}
		if code := status(t, s, "GET", fmt.Sprintf("/api/v1/shops/%d/identity-secret", shop), first.AccessToken, nil); code != http.StatusForbidden {
			t.Fatalf("a visitor reads the secret: %d", code)
		}
	})
}

// PROTOCOL §8: queued customers learn their place, agents see the queue
// change, and of two agents taking one session exactly one gets it.
func TestQueueEventsAndTake(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		shop := createShop(t, s, map[string]any{"name": "Q"})
		a1, a2 := s.Register(t, "agent"), s.Register(t, "agent")
		addAgent(t, s, shop, a1)
		addAgent(t, s, shop, a2)
		s.MustDo(t, "PUT", "/api/v1/me/status", a1.Token, wire.Status{Status: "away"}, http.StatusOK, nil)
		s.MustDo(t, "PUT", "/api/v1/me/status", a2.Token, wire.Status{Status: "away"}, http.StatusOK, nil)
		w1, w2 := online(t, s, a1, imtest.TCP), online(t, s, a2, imtest.WS) // online, away: nothing is assigned

		const n = 6
		customers := make([]imtest.User, n)
		clients := make([]*imtest.Client, n)
		for i := range customers {
			customers[i] = guest(t, s, fmt.Sprintf("c%d", i))
			clients[i] = online(t, s, customers[i], imtest.TCP)
		}
		var wg sync.WaitGroup
		for i := range customers { // concurrently
			wg.Go(func() {
				s.MustDo(t, "POST", "/api/v1/conversations/"+serviceConv(shop, customers[i].UID)+"/messages", customers[i].Token, text("", "help"), http.StatusCreated, nil)
			})
		}
		wg.Wait()
		queue := sessions(t, s, shop, "queued")
		if len(queue) != n {
			t.Fatalf("queued: %+v", queue)
		}
		position := map[int64]int{} // customer → expected position
		for i, q := range queue {
			position[q.Customer] = i + 1
		}
		// Each customer is told its place; the agents see every session enter.
		for i, c := range clients {
			want := position[customers[i].UID]
			c.In.Await(t, "cs_queue", func(m imtest.Msg) bool {
				if m.Event() != wire.EventCSQueue {
					return false
				}
				var ev wire.QueueEvent
				m.Decode(t, &ev)
				return ev.Position == want && ev.Shop == shop
			})
		}
		for _, w := range []*imtest.Client{w1, w2} {
			seen := map[int64]bool{}
			for len(seen) < n {
				m := w.In.Await(t, "cs_queued", func(m imtest.Msg) bool { return m.Event() == wire.EventCSQueued })
				var ev wire.QueuedEvent
				m.Decode(t, &ev)
				if ev.Shop != shop || ev.Conv != serviceConv(shop, ev.Customer) || ev.CreatedAt == 0 {
					t.Fatalf("cs_queued: %+v", ev)
				}
				seen[ev.Session] = true
			}
		}

		// Both agents take the first session at once: one wins, one gets 409.
		first := queue[0]
		path := fmt.Sprintf("/api/v1/cs/sessions/%d/take", first.SessionID)
		codes := make(chan int, 2)
		for _, a := range []imtest.User{a1, a2} {
			wg.Go(func() { codes <- status(t, s, "POST", path, a.Token, nil) })
		}
		wg.Wait()
		close(codes)
		got := map[int]int{}
		for c := range codes {
			got[c]++
		}
		if got[http.StatusOK] != 1 || got[http.StatusConflict] != 1 {
			t.Fatalf("take race: %v", got)
		}
		taken := sessionOf(t, s, shop, first.Customer)
		if taken.Status != "open" || taken.Agent == nil {
			t.Fatalf("taken: %+v", taken)
		}
		// The agents hear it left the queue, to whom; the others move up.
		for _, w := range []*imtest.Client{w1, w2} {
			m := w.In.Await(t, "cs_dequeued", func(m imtest.Msg) bool { return m.Event() == wire.EventCSDequeued })
			var ev wire.DequeuedEvent
			m.Decode(t, &ev)
			if ev.Session != first.SessionID || ev.Agent == nil || *ev.Agent != *taken.Agent {
				t.Fatalf("cs_dequeued: %+v", ev)
			}
		}
		for i, c := range clients {
			if customers[i].UID == first.Customer {
				continue
			}
			want := position[customers[i].UID] - 1
			c.In.Await(t, "the new position", func(m imtest.Msg) bool {
				var ev wire.QueueEvent
				return m.Event() == wire.EventCSQueue && func() bool { m.Decode(t, &ev); return ev.Position == want }()
			})
		}
		// Closing a queued session takes it out of the queue too.
		last := queue[n-1]
		s.MustDo(t, "POST", fmt.Sprintf("/api/v1/cs/sessions/%d/close", last.SessionID), a1.Token, nil, http.StatusOK, nil)
		m := w2.In.Await(t, "cs_dequeued of a closed session", func(m imtest.Msg) bool {
			return m.Event() == wire.EventCSDequeued && strings.Contains(string(m.Payload), fmt.Sprintf(`"session":%d`, last.SessionID))
		})
		var ev wire.DequeuedEvent
		m.Decode(t, &ev)
		if ev.Agent != nil {
			t.Fatalf("a closed session's cs_dequeued names an agent: %+v", ev)
		}
		for _, tc := range []struct {
			who  imtest.User
			path string
			want int
		}{
			{a2, path, http.StatusConflict}, // no longer queued
			{customers[1], fmt.Sprintf("/api/v1/cs/sessions/%d/take", queue[1].SessionID), 403}, // a guest
			{s.Admin, fmt.Sprintf("/api/v1/cs/sessions/%d/take", queue[1].SessionID), 403},      // not an agent of the shop
			{a1, "/api/v1/cs/sessions/99999/take", http.StatusNotFound},
		} {
			if code := status(t, s, "POST", tc.path, tc.who.Token, nil); code != tc.want {
				t.Errorf("take %s by %s: %d, want %d", tc.path, tc.who.Username, code, tc.want)
			}
		}
	})
}

// PROTOCOL §8: canned replies are for the shop's agents and admins.
func TestCannedReplies(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		shop := createShop(t, s, map[string]any{"name": "C"})
		agent, stranger := s.Register(t, "agent"), s.Register(t, "stranger")
		addAgent(t, s, shop, agent)
		base := fmt.Sprintf("/api/v1/shops/%d/canned", shop)
		var hi wire.CannedReply
		s.MustDo(t, "POST", base, agent.Token, map[string]any{"shortcut": "/hi", "text": "Hello, how can I help?"}, http.StatusCreated, &hi)
		if hi.ID == 0 || hi.Shortcut != "hi" {
			t.Fatalf("created: %+v", hi)
		}
		s.MustDo(t, "POST", base, s.Admin.Token, map[string]any{"shortcut": "bye", "text": "Goodbye!"}, http.StatusCreated, nil)
		var list []wire.CannedReply
		s.MustDo(t, "GET", base, agent.Token, nil, http.StatusOK, &list)
		if len(list) != 2 || list[0].Shortcut != "bye" || list[1].ID != hi.ID {
			t.Fatalf("list: %+v", list)
		}
		var patched wire.CannedReply
		s.MustDo(t, "PATCH", fmt.Sprintf("%s/%d", base, hi.ID), agent.Token, map[string]any{"text": "Hi there!"}, http.StatusOK, &patched)
		if patched.Text != "Hi there!" || patched.Shortcut != "hi" {
			t.Fatalf("patched: %+v", patched)
		}
		for _, tc := range []struct {
			who          imtest.User
			method, path string
			body         any
			want         int
		}{
			{stranger, "GET", base, nil, http.StatusForbidden},
			{stranger, "POST", base, map[string]any{"shortcut": "x", "text": "y"}, http.StatusForbidden},
			{stranger, "PATCH", fmt.Sprintf("%s/%d", base, hi.ID), map[string]any{"text": "z"}, http.StatusForbidden},
			{stranger, "DELETE", fmt.Sprintf("%s/%d", base, hi.ID), nil, http.StatusForbidden},
			{agent, "POST", base, map[string]any{"shortcut": "has space", "text": "y"}, http.StatusBadRequest},
			{agent, "POST", base, map[string]any{"shortcut": "x"}, http.StatusBadRequest},
			{agent, "POST", base, map[string]any{"shortcut": "x", "text": strings.Repeat("y", 4001)}, http.StatusBadRequest},
			{agent, "PATCH", base + "/9999", map[string]any{"text": "z"}, http.StatusNotFound},
			{agent, "GET", "/api/v1/shops/9999/canned", nil, http.StatusNotFound},
		} {
			if code := status(t, s, tc.method, tc.path, tc.who.Token, tc.body); code != tc.want {
				t.Errorf("%s %s by %s: %d, want %d", tc.method, tc.path, tc.who.Username, code, tc.want)
			}
		}
		s.MustDo(t, "DELETE", fmt.Sprintf("%s/%d", base, hi.ID), agent.Token, nil, http.StatusOK, nil)
		if code := status(t, s, "DELETE", fmt.Sprintf("%s/%d", base, hi.ID), agent.Token, nil); code != http.StatusNotFound {
			t.Fatalf("deleted twice: %d", code)
		}
	})
}

// The page a customer writes from, and the customer panel of the desk.
func TestCustomerPanel(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		shop := createShop(t, s, map[string]any{"name": "P"})
		agent, stranger := s.Register(t, "agent"), s.Register(t, "stranger")
		addAgent(t, s, shop, agent)
		g := guest(t, s, "Petra")
		ctxPath := fmt.Sprintf("/api/v1/shops/%d/context", shop)
		if code := status(t, s, "PUT", ctxPath, g.Token, wire.PageContext{URL: "javascript:alert(1)"}); code != http.StatusBadRequest {
			t.Fatalf("a javascript: page: %d", code)
		}
		if code := status(t, s, "PUT", ctxPath, g.Token, wire.PageContext{URL: "https://shop.example/cart?x=1", Title: "Your cart"}); code != http.StatusNoContent {
			t.Fatalf("context: %d", code)
		}
		s.MustDo(t, "POST", "/api/v1/conversations/"+serviceConv(shop, g.UID)+"/messages", g.Token, text("", "hi"), http.StatusCreated, nil)
		path := fmt.Sprintf("/api/v1/shops/%d/customers/%d", shop, g.UID)
		var c wire.Customer
		s.MustDo(t, "GET", path, agent.Token, nil, http.StatusOK, &c)
		if c.UID != g.UID || c.Name != "Petra" || c.FirstContact == 0 || len(c.Sessions) != 1 || c.Page == nil || c.Page.URL != "https://shop.example/cart?x=1" || c.Page.Title != "Your cart" {
			t.Fatalf("customer panel: %+v", c)
		}
		for _, tc := range []struct {
			who  imtest.User
			path string
			want int
		}{
			{stranger, path, http.StatusForbidden},
			{g, path, http.StatusForbidden},
			{agent, fmt.Sprintf("/api/v1/shops/%d/customers/%d", shop, stranger.UID), http.StatusNotFound},
		} {
			if code := status(t, s, "GET", tc.path, tc.who.Token, nil); code != tc.want {
				t.Errorf("GET %s by %s: %d, want %d", tc.path, tc.who.Username, code, tc.want)
			}
		}
		// cs_* events name the customer and the agent.
		w := online(t, s, agent, imtest.TCP)
		m := w.In.Await(t, "cs_assigned", func(m imtest.Msg) bool { return m.Event() == wire.EventCSAssigned })
		var ev wire.SessionEvent
		m.Decode(t, &ev)
		if ev.CustomerName != "Petra" || ev.AgentName != agent.Username {
			t.Fatalf("cs_assigned names: %+v", ev)
		}
	})
}
