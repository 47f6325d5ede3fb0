package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/wire"
)

func TestShopAdministration(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		agent, customer := s.Register(t, "agent"), s.Register(t, "customer")
		var shop wire.Shop
		s.MustDo(t, "POST", "/api/v1/shops", s.Admin.Token, map[string]any{
			"name": "Tea Shop", "welcome_message": "Welcome!", "offline_message": "We are closed.",
			"keyword_replies": []map[string]string{{"keyword": "price", "reply": "See our price list."}},
		}, http.StatusCreated, &shop)
		if shop.ShopID <= 0 || shop.Name != "Tea Shop" || *shop.WelcomeMessage != "Welcome!" || len(*shop.KeywordReplies) != 1 {
			t.Fatalf("created %+v", shop)
		}
		id := shop.ShopID
		path := fmt.Sprintf("/api/v1/shops/%d", id)

		for _, tc := range []struct {
			name   string
			token  string
			body   any
			status int
		}{
			{"not admin", customer.Token, map[string]any{"name": "x"}, 403},
			{"no name", s.Admin.Token, map[string]any{}, 400},
			{"blank name", s.Admin.Token, map[string]any{"name": "  "}, 400},
			{"empty keyword", s.Admin.Token, map[string]any{"name": "x", "keyword_replies": []map[string]string{{"keyword": "", "reply": "r"}}}, 400},
			{"empty reply", s.Admin.Token, map[string]any{"name": "x", "keyword_replies": []map[string]string{{"keyword": "k", "reply": ""}}}, 400},
			{"replies not a list", s.Admin.Token, map[string]any{"name": "x", "keyword_replies": "k"}, 400},
			{"long welcome", s.Admin.Token, map[string]any{"name": "x", "welcome_message": strings.Repeat("w", 4001)}, 400},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if status, body := s.Do(t, "POST", "/api/v1/shops", tc.token, tc.body); status != tc.status {
					t.Fatalf("%d %s, want %d", status, body, tc.status)
				}
			})
		}

		// Customers see names only; agents and admins see the settings.
		var list []wire.Shop
		s.MustDo(t, "GET", "/api/v1/shops", customer.Token, nil, http.StatusOK, &list)
		if len(list) != 1 || list[0].ShopID != id || list[0].Name != "Tea Shop" || list[0].WelcomeMessage != nil || list[0].KeywordReplies != nil {
			t.Fatalf("customer's view %+v", list)
		}
		var one wire.Shop
		s.MustDo(t, "GET", path, customer.Token, nil, http.StatusOK, &one)
		if one.WelcomeMessage != nil {
			t.Fatalf("customer sees settings: %+v", one)
		}
		if status, body := s.Do(t, "GET", path+"/agents", customer.Token, nil); status != 403 || imtest.ErrorCode(body) != "forbidden" {
			t.Fatalf("customer lists agents: %d %s", status, body)
		}
		addAgent(t, s, id, agent)
		addAgent(t, s, id, agent) // idempotent
		s.MustDo(t, "GET", path, agent.Token, nil, http.StatusOK, &one)
		if one.WelcomeMessage == nil || *one.OfflineMessage != "We are closed." {
			t.Fatalf("agent's view %+v", one)
		}

		var patched wire.Shop
		s.MustDo(t, "PATCH", path, s.Admin.Token, map[string]any{"welcome_message": "Hello!", "keyword_replies": []any{}}, http.StatusOK, &patched)
		if patched.Name != "Tea Shop" || *patched.WelcomeMessage != "Hello!" || len(*patched.KeywordReplies) != 0 || *patched.OfflineMessage != "We are closed." {
			t.Fatalf("patched %+v", patched)
		}
		if status, _ := s.Do(t, "PATCH", path, agent.Token, map[string]any{"name": "mine"}); status != 403 {
			t.Fatalf("agent patches: %d", status)
		}

		agents := agentsOf(t, s, id)
		if a, ok := agents[agent.UID]; !ok || a.Online || a.Status != "online" || a.OpenSessions != 0 || a.Username != agent.Username {
			t.Fatalf("agents %+v", agents)
		}
		c := online(t, s, agent, imtest.TCP)
		if !agentsOf(t, s, id)[agent.UID].Online {
			t.Fatal("connected agent is not online")
		}
		s.MustDo(t, "PUT", "/api/v1/me/status", agent.Token, map[string]string{"status": "away"}, http.StatusOK, nil)
		if a := agentsOf(t, s, id)[agent.UID]; a.Status != "away" || !a.Online {
			t.Fatalf("away agent %+v", a)
		}
		if status, _ := s.Do(t, "PUT", "/api/v1/me/status", agent.Token, map[string]string{"status": "busy"}); status != 400 {
			t.Fatalf("bad status: %d", status)
		}
		c.Paho.Disconnect(0)
		imtest.WaitFor(t, 5*time.Second, func() error {
			if agentsOf(t, s, id)[agent.UID].Online {
				return fmt.Errorf("still online")
			}
			return nil
		})

		for _, tc := range []struct {
			name, method, path, token string
			body                      any
			status                    int
		}{
			{"unknown shop", "GET", "/api/v1/shops/999", customer.Token, nil, 404},
			{"bad shop id", "GET", "/api/v1/shops/abc", customer.Token, nil, 400},
			{"add unknown user", "POST", path + "/agents", s.Admin.Token, map[string]int64{"uid": 99999}, 404},
			{"add to unknown shop", "POST", "/api/v1/shops/999/agents", s.Admin.Token, map[string]int64{"uid": agent.UID}, 404},
			{"add without uid", "POST", path + "/agents", s.Admin.Token, map[string]any{}, 400},
			{"add by non-admin", "POST", path + "/agents", agent.Token, map[string]int64{"uid": customer.UID}, 403},
			{"remove a non-agent", "DELETE", fmt.Sprintf("%s/agents/%d", path, customer.UID), s.Admin.Token, nil, 404},
			{"sessions bad status", "GET", path + "/sessions?status=bogus", s.Admin.Token, nil, 400},
			{"sessions by customer", "GET", path + "/sessions", customer.Token, nil, 403},
			{"transfer unknown session", "POST", "/api/v1/cs/sessions/999/transfer", agent.Token, map[string]int64{"to": agent.UID}, 404},
			{"close unknown session", "POST", "/api/v1/cs/sessions/999/close", agent.Token, nil, 404},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if status, body := s.Do(t, tc.method, tc.path, tc.token, tc.body); status != tc.status {
					t.Fatalf("%d %s, want %d", status, body, tc.status)
				}
			})
		}
		s.MustDo(t, "DELETE", fmt.Sprintf("%s/agents/%d", path, agent.UID), s.Admin.Token, nil, http.StatusOK, nil)
		if len(agentsOf(t, s, id)) != 0 {
			t.Fatal("agent not removed")
		}
	})
}

// A new session: welcome message, keyword reply, the customer's message
// reaching the agent, customer-service envelope fields, history.
func TestCustomerServiceConversation(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		eachTransport(t, func(t *testing.T, tr imtest.Transport) {
			shop := createShop(t, s, map[string]any{"name": "Shop " + string(tr), "welcome_message": "Welcome!",
				"keyword_replies": []map[string]string{{"keyword": "Refund", "reply": "Refunds take 3 days."}}})
			agent, customer := s.Register(t, "agent"), s.Register(t, "customer")
			addAgent(t, s, shop, agent)
			a := online(t, s, agent, tr)
			c := online(t, s, customer, tr)

			c.Publish(t, shopTopic(shop), 1, text("q-1", "hello, I want a REFUND please"))
			conv := serviceConv(shop, customer.UID)
			assigned := nextEvent(t, a, "cs_assigned")
			if assigned.Shop != shop || assigned.Customer != customer.UID || assigned.Agent != agent.UID || assigned.Conv != conv || assigned.Session <= 0 {
				t.Fatalf("cs_assigned %+v", assigned)
			}
			if ev := nextEvent(t, c, "cs_assigned"); ev.Session != assigned.Session {
				t.Fatalf("customer's cs_assigned %+v", ev)
			}
			for _, cl := range []*imtest.Client{c, a} {
				m := nextMessage(t, cl)
				if m.Conv != conv || m.Seq != 1 || m.From != customer.UID || m.Shop != shop || m.Customer != customer.UID ||
					m.Agent != agent.UID || m.Session != assigned.Session || m.CID != "q-1" {
					t.Fatalf("customer's message %+v", m)
				}
				w := nextMessage(t, cl)
				if w.Seq != 2 || w.From != 0 || !w.Auto || string(w.Body) != `"Welcome!"` || w.Session != assigned.Session {
					t.Fatalf("welcome %+v", w)
				}
				k := nextMessage(t, cl)
				if k.Seq != 3 || k.From != 0 || !k.Auto || string(k.Body) != `"Refunds take 3 days."` {
					t.Fatalf("keyword reply %+v", k)
				}
			}
			// The agent replies; the customer gets it, the agent its echo.
			a.Publish(t, replyTopic(shop, customer.UID), 1, text("r-1", "Sure, one moment"))
			for _, cl := range []*imtest.Client{c, a} {
				if m := nextMessage(t, cl); m.Seq != 4 || m.From != agent.UID || m.Agent != agent.UID || m.Customer != customer.UID {
					t.Fatalf("reply %+v", m)
				}
			}
			// Second message: same session, no welcome again; a keyword in
			// another case still matches; nothing for a non-text message.
			c.Publish(t, shopTopic(shop), 1, map[string]any{"type": "image", "body": map[string]any{"url": "https://x.test/refund.png"}})
			if m := nextMessage(t, a); m.Seq != 5 || m.Type != "image" || m.Session != assigned.Session {
				t.Fatalf("image %+v", m)
			}
			if m := nextMessage(t, c); m.Seq != 5 {
				t.Fatalf("customer's echo of the image %+v", m)
			}
			a.In.None(t, 150*time.Millisecond)

			var hist []wire.Envelope
			s.MustDo(t, "GET", "/api/v1/conversations/"+conv+"/messages", customer.Token, nil, http.StatusOK, &hist)
			if len(hist) != 5 || !hist[1].Auto || hist[3].From != agent.UID {
				t.Fatalf("history %+v", hist)
			}
			s.MustDo(t, "GET", "/api/v1/conversations/"+conv+"/messages", agent.Token, nil, http.StatusOK, &hist)
			var convs []wire.Conversation
			s.MustDo(t, "GET", "/api/v1/conversations", agent.Token, nil, http.StatusOK, &convs)
			if len(convs) != 1 || convs[0].Conv != conv || convs[0].Kind != "service" || convs[0].ReadSeq != 4 || convs[0].Unread != 1 {
				t.Fatalf("agent's conversations %+v", convs)
			}
			// The REST send path routes the same way.
			var env wire.Envelope
			s.MustDo(t, "POST", "/api/v1/conversations/"+conv+"/messages", agent.Token, text("", "REST reply"), http.StatusCreated, &env)
			if env.Seq != 6 || env.From != agent.UID || env.Agent != agent.UID {
				t.Fatalf("REST agent reply %+v", env)
			}
			nextMessage(t, a)
			nextMessage(t, c)
			// Read receipts cross between customer and agent.
			s.MustDo(t, "POST", "/api/v1/conversations/"+conv+"/read", customer.Token, map[string]int64{"seq": 6}, http.StatusOK, nil)
			var ev wire.ReadEvent
			a.In.Next(t).Decode(t, &ev)
			if ev.Event != "read" || ev.UID != customer.UID || ev.Seq != 6 {
				t.Fatalf("read event to the agent %+v", ev)
			}
			c.In.Next(t).Decode(t, &ev) // and to the customer's own devices
			if ev.Event != "read" || ev.UID != customer.UID || ev.Seq != 6 {
				t.Fatalf("read event to the reader %+v", ev)
			}
			s.MustDo(t, "POST", "/api/v1/conversations/"+conv+"/messages", customer.Token, text("", "via REST"), http.StatusCreated, &env)
			if env.Seq != 7 || env.Agent != agent.UID {
				t.Fatalf("REST customer message %+v", env)
			}
			nextMessage(t, a)
			nextMessage(t, c)
			s.MustDo(t, "POST", "/api/v1/conversations/"+conv+"/read", agent.Token, map[string]int64{"seq": 7}, http.StatusOK, nil)
			c.In.Next(t).Decode(t, &ev)
			if ev.Event != "read" || ev.UID != agent.UID || ev.Seq != 7 {
				t.Fatalf("read event to the customer %+v", ev)
			}
		})
	})
}

func TestRoutingRules(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		shop := createShop(t, s, map[string]any{"name": "Routing"})
		a1, a2 := s.Register(t, "agent"), s.Register(t, "agent")
		addAgent(t, s, shop, a1)
		addAgent(t, s, shop, a2)
		c1 := online(t, s, a1, imtest.TCP)
		c2 := online(t, s, a2, imtest.WS)

		say := func(u imtest.User, body string) wire.Envelope {
			t.Helper()
			var env wire.Envelope
			s.MustDo(t, "POST", "/api/v1/conversations/"+serviceConv(shop, u.UID)+"/messages", u.Token, text("", body), http.StatusCreated, &env)
			return env
		}
		// Rule 3: fewest open sessions, ties to the least recently assigned.
		x, y, z := s.Register(t, "cust"), s.Register(t, "cust"), s.Register(t, "cust")
		first := say(x, "hi").Agent
		second := say(y, "hi").Agent
		if first == second || (first != a1.UID && first != a2.UID) {
			t.Fatalf("two new sessions went to %d and %d, want one each", first, second)
		}
		third := say(z, "hi").Agent
		if third != first {
			t.Fatalf("tie: third session went to %d, want the least recently assigned %d", third, first)
		}
		// Rule 1: the session stays with its agent.
		if got := say(y, "again").Agent; got != second {
			t.Fatalf("rule 1: %d, want %d", got, second)
		}

		// Rule 2 beats rule 3: x's session is closed; x comes back while its
		// previous agent has more open sessions than the other.
		xs := sessionOf(t, s, shop, x.UID)
		s.MustDo(t, "POST", fmt.Sprintf("/api/v1/cs/sessions/%d/close", xs.SessionID), s.Admin.Token, nil, http.StatusOK, nil)
		loads := agentsOf(t, s, shop)
		if loads[first].OpenSessions <= loads[second].OpenSessions-1 {
			t.Logf("loads %+v", loads)
		}
		w := s.Register(t, "cust")
		say(w, "hi") // one more for someone
		loads = agentsOf(t, s, shop)
		if loads[first].OpenSessions < loads[second].OpenSessions {
			// make first the busier one
			v := s.Register(t, "cust")
			for say(v, "hi").Agent != first {
				v = s.Register(t, "cust")
			}
		}
		loads = agentsOf(t, s, shop)
		if loads[first].OpenSessions < loads[second].OpenSessions {
			t.Fatalf("setup: %d is not the busier agent: %+v", first, loads)
		}
		if got := say(x, "I'm back").Agent; got != first {
			t.Fatalf("rule 2: back to %d, want the last agent %d", got, first)
		}

		// An away agent gets no new session.
		awayUser, other := a1, a2
		if first == a2.UID {
			awayUser, other = a2, a1
		}
		s.MustDo(t, "PUT", "/api/v1/me/status", awayUser.Token, map[string]string{"status": "away"}, http.StatusOK, nil)
		for range 3 {
			if got := say(s.Register(t, "cust"), "hi").Agent; got != other.UID {
				t.Fatalf("away agent %d got a session (%d)", awayUser.UID, got)
			}
		}
		// Its existing session moves to the other agent at the next message.
		if got := say(x, "still there?").Agent; got != other.UID {
			t.Fatalf("session of an away agent stayed with %d", got)
		}
		s.MustDo(t, "PUT", "/api/v1/me/status", awayUser.Token, map[string]string{"status": "online"}, http.StatusOK, nil)

		// An agent going offline loses new messages to an online one, which
		// gets cs_assigned, the backlog, then the message.
		drain(c1)
		drain(c2)
		yAgent := sessionOf(t, s, shop, y.UID).Agent
		leaving, staying := c1, c2
		stayingUser := a2
		if *yAgent == a2.UID {
			leaving, staying, stayingUser = c2, c1, a1
		}
		leaving.Paho.Disconnect(0)
		imtest.WaitFor(t, 5*time.Second, func() error {
			if agentsOf(t, s, shop)[*yAgent].Online {
				return fmt.Errorf("agent still online")
			}
			return nil
		})
		env := say(y, "anyone?")
		if env.Agent != stayingUser.UID {
			t.Fatalf("message of an offline agent's session went to %d, want %d", env.Agent, stayingUser.UID)
		}
		ev := staying.In.Await(t, "cs_assigned", func(m imtest.Msg) bool { return m.Event() == "cs_assigned" })
		var sev wire.SessionEvent
		ev.Decode(t, &sev)
		if sev.Customer != y.UID {
			t.Fatalf("cs_assigned %+v", sev)
		}
		var seqs []int64
		for {
			m := nextMessage(t, staying)
			seqs = append(seqs, m.Seq)
			if m.Seq == env.Seq {
				break
			}
		}
		if fmt.Sprint(seqs) != fmt.Sprint([]int64{1, 2, 3}) {
			t.Fatalf("new agent got seqs %v, want the backlog then the new message [1 2 3]", seqs)
		}
	})
}

func sessionOf(t testing.TB, s *imtest.Server, shop, customer int64) wire.CSSession {
	t.Helper()
	for _, st := range []string{"open", "queued"} {
		for _, sess := range sessions(t, s, shop, st) {
			if sess.Customer == customer {
				return sess
			}
		}
	}
	t.Fatalf("no active session of %d", customer)
	return wire.CSSession{}
}

// drain discards what a client has received so far.
func drain(c *imtest.Client) {
	for {
		select {
		case <-c.In:
		default:
			return
		}
	}
}

func TestQueueDrainsInOrder(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		shop := createShop(t, s, map[string]any{"name": "Night shop", "welcome_message": "Hi!", "offline_message": "Nobody is here, we will answer soon."})
		agent := s.Register(t, "agent")
		addAgent(t, s, shop, agent)
		custs := []imtest.User{s.Register(t, "cust"), s.Register(t, "cust"), s.Register(t, "cust")}
		cc := online(t, s, custs[0], imtest.TCP)
		for i, u := range custs {
			for j := range 2 {
				var env wire.Envelope
				s.MustDo(t, "POST", "/api/v1/conversations/"+serviceConv(shop, u.UID)+"/messages", u.Token, text("", fmt.Sprintf("c%d m%d", i, j)), http.StatusCreated, &env)
				if env.Agent != 0 {
					t.Fatalf("queued message has an agent: %+v", env)
				}
			}
		}
		// Customer 0 saw: its message, the welcome, the offline message once, its second message.
		var bodies []string
		for range 4 {
			m := nextMessage(t, cc)
			bodies = append(bodies, string(m.Body))
		}
		if fmt.Sprint(bodies) != fmt.Sprint([]string{`"c0 m0"`, `"Hi!"`, `"Nobody is here, we will answer soon."`, `"c0 m1"`}) {
			t.Fatalf("customer saw %v", bodies)
		}
		noneButQueue(t, cc, 100*time.Millisecond)
		if q := sessions(t, s, shop, "queued"); len(q) != 3 {
			t.Fatalf("queued sessions %+v", q)
		}

		// The agent comes online: sessions oldest first, each cs_assigned then its messages in seq order.
		a := online(t, s, agent, imtest.WS)
		for i, u := range custs {
			ev := nextEvent(t, a, "cs_assigned")
			if ev.Customer != u.UID || ev.Agent != agent.UID {
				t.Fatalf("assignment %d: %+v, want customer %d", i, ev, u.UID)
			}
			for seq := int64(1); seq <= 4; seq++ {
				m := nextMessage(t, a)
				if m.Seq != seq || m.Customer != u.UID || m.Session != ev.Session {
					t.Fatalf("session %d: got seq %d of %s, want %d", i, m.Seq, m.Conv, seq)
				}
			}
		}
		a.In.None(t, 150*time.Millisecond)
		if ev := nextEvent(t, cc, "cs_assigned"); ev.Agent != agent.UID {
			t.Fatalf("customer's cs_assigned %+v", ev)
		}
		if q := sessions(t, s, shop, "queued"); len(q) != 0 {
			t.Fatalf("still queued %+v", q)
		}
		// No more offline message in an assigned session.
		cc.Publish(t, shopTopic(shop), 1, text("", "thanks"))
		if m := nextMessage(t, a); string(m.Body) != `"thanks"` || m.Agent != agent.UID {
			t.Fatalf("after drain %+v", m)
		}
	})
}

func TestTransferAndClose(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		shop := createShop(t, s, map[string]any{"name": "T", "welcome_message": "Welcome"})
		a1, a2, cust := s.Register(t, "agent"), s.Register(t, "agent"), s.Register(t, "cust")
		addAgent(t, s, shop, a1)
		c1 := online(t, s, a1, imtest.TCP)
		cc := online(t, s, cust, imtest.TCP)
		cc.Publish(t, shopTopic(shop), 1, text("", "help"))
		ev := nextEvent(t, c1, "cs_assigned")
		nextMessage(t, c1)
		nextMessage(t, c1)
		addAgent(t, s, shop, a2)
		c2 := online(t, s, a2, imtest.WS)
		drain(cc)

		path := fmt.Sprintf("/api/v1/cs/sessions/%d", ev.Session)
		for _, tc := range []struct {
			token  string
			body   any
			status int
		}{
			{cust.Token, map[string]int64{"to": a2.UID}, 403},
			{a1.Token, map[string]int64{"to": cust.UID}, 400},
			{a1.Token, map[string]int64{"to": a1.UID}, 400},
			{a1.Token, map[string]any{}, 400},
		} {
			if status, body := s.Do(t, "POST", path+"/transfer", tc.token, tc.body); status != tc.status {
				t.Fatalf("transfer %v by %d: %d %s, want %d", tc.body, tc.status, status, body, tc.status)
			}
		}
		s.MustDo(t, "POST", path+"/transfer", a1.Token, map[string]int64{"to": a2.UID}, http.StatusOK, nil)
		if tr := nextEvent(t, c1, "cs_transferred"); tr.Agent != a2.UID || tr.Session != ev.Session {
			t.Fatalf("cs_transferred %+v", tr)
		}
		if tr := nextEvent(t, cc, "cs_transferred"); tr.Agent != a2.UID {
			t.Fatalf("customer's cs_transferred %+v", tr)
		}
		if as := nextEvent(t, c2, "cs_assigned"); as.Agent != a2.UID || as.Session != ev.Session {
			t.Fatalf("cs_assigned %+v", as)
		}
		if m1, m2 := nextMessage(t, c2), nextMessage(t, c2); m1.Seq != 1 || m2.Seq != 2 {
			t.Fatalf("new agent's backlog %d %d", m1.Seq, m2.Seq)
		}
		cc.Publish(t, shopTopic(shop), 1, text("", "still here"))
		if m := nextMessage(t, c2); m.Agent != a2.UID || string(m.Body) != `"still here"` {
			t.Fatalf("after transfer %+v", m)
		}
		c1.In.None(t, 100*time.Millisecond)

		if status, _ := s.Do(t, "POST", path+"/close", cust.Token, nil); status != 403 {
			t.Fatalf("customer closes: %d", status)
		}
		s.MustDo(t, "POST", path+"/close", a2.Token, nil, http.StatusOK, nil)
		s.MustDo(t, "POST", path+"/close", a2.Token, nil, http.StatusOK, nil) // again: nothing happens
		drain(cc)
		if cl := nextEvent(t, c2, "cs_closed"); cl.Session != ev.Session {
			t.Fatalf("cs_closed %+v", cl)
		}
		c2.In.None(t, 100*time.Millisecond)
		if status, _ := s.Do(t, "POST", path+"/transfer", a2.Token, map[string]int64{"to": a1.UID}); status != 409 {
			t.Fatalf("transfer of a closed session: %d", status)
		}
		// The next message opens a new session, with a welcome, back to the last agent.
		cc.Publish(t, shopTopic(shop), 1, text("", "one more thing"))
		as := nextEvent(t, c2, "cs_assigned")
		if as.Session == ev.Session {
			t.Fatal("a closed session was reused")
		}
		if m := nextMessage(t, c2); string(m.Body) != `"one more thing"` {
			t.Fatalf("%+v", m)
		}
		if m := nextMessage(t, c2); !m.Auto || string(m.Body) != `"Welcome"` {
			t.Fatalf("no welcome in the new session: %+v", m)
		}
		if closed := sessions(t, s, shop, "closed"); len(closed) != 1 || closed[0].SessionID != ev.Session {
			t.Fatalf("closed sessions %+v", closed)
		}
	})
}

func TestCustomerServiceRefusals(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		shop := createShop(t, s, map[string]any{"name": "R"})
		agent, cust, stranger := s.Register(t, "agent"), s.Register(t, "cust"), s.Register(t, "stranger")
		addAgent(t, s, shop, agent)
		a := online(t, s, agent, imtest.TCP)
		st := online(t, s, stranger, imtest.TCP)
		s.MustDo(t, "POST", "/api/v1/conversations/"+serviceConv(shop, cust.UID)+"/messages", cust.Token, text("", "hi"), http.StatusCreated, nil)
		nextEvent(t, a, "cs_assigned")
		nextMessage(t, a)

		expectError := func(c *imtest.Client, topic, code string) {
			t.Helper()
			c.Publish(t, topic, 1, text("e", "x"))
			var ev wire.ErrorEvent
			c.In.Next(t).Decode(t, &ev)
			if ev.Event != "error" || ev.Code != code || ev.Topic != topic {
				t.Fatalf("publish to %s: %+v, want %s", topic, ev, code)
			}
		}
		expectError(st, replyTopic(shop, cust.UID), "forbidden") // not an agent
		expectError(a, shopTopic(shop), "forbidden")             // an agent writing to its own shop
		expectError(st, shopTopic(999), "not_found")
		expectError(a, replyTopic(shop, 99999), "not_found")
		expectError(a, replyTopic(shop, agent.UID), "invalid")
		a.In.None(t, 100*time.Millisecond)

		conv := serviceConv(shop, cust.UID)
		if status, body := s.Do(t, "GET", "/api/v1/conversations/"+conv+"/messages", stranger.Token, nil); status != 403 || imtest.ErrorCode(body) != "forbidden" {
			t.Fatalf("outsider reads a service conversation: %d %s", status, body)
		}
		if status, _ := s.Do(t, "POST", "/api/v1/conversations/"+conv+"/messages", stranger.Token, text("", "x")); status != 403 {
			t.Fatalf("outsider posts in a service conversation: %d", status)
		}
		if status, _ := s.Do(t, "GET", "/api/v1/conversations/"+serviceConv(999, cust.UID)+"/messages", cust.Token, nil); status != 404 {
			t.Fatalf("unknown shop's conversation: %d", status)
		}
		// MQTT 5 gets reason codes.
		c5, err := s.Dial5(t, stranger, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if code := c5.Publish(t, replyTopic(shop, cust.UID), 1, text("", "x")); code != 0x87 {
			t.Fatalf("v5 non-agent reply: 0x%02x", code)
		}
		if code := c5.Subscribe(t, shopTopic(shop)); code < 0x80 {
			t.Fatalf("subscribing to a shop topic was granted")
		}
	})
}

func TestAgentRemovalRequeuesItsSessions(t *testing.T) {
	s := imtest.Start(t, imtest.Options{})
	shop := createShop(t, s, map[string]any{"name": "Rm"})
	a1, a2, cust := s.Register(t, "agent"), s.Register(t, "agent"), s.Register(t, "cust")
	addAgent(t, s, shop, a1)
	c1 := online(t, s, a1, imtest.TCP)
	s.MustDo(t, "POST", "/api/v1/conversations/"+serviceConv(shop, cust.UID)+"/messages", cust.Token, text("", "hi"), http.StatusCreated, nil)
	ev := nextEvent(t, c1, "cs_assigned")
	addAgent(t, s, shop, a2)
	c2 := online(t, s, a2, imtest.TCP)
	s.MustDo(t, "DELETE", fmt.Sprintf("/api/v1/shops/%d/agents/%d", shop, a1.UID), s.Admin.Token, nil, http.StatusOK, nil)
	c1.In.Await(t, "cs_transferred", func(m imtest.Msg) bool { return m.Event() == "cs_transferred" })
	if as := nextEvent(t, c2, "cs_assigned"); as.Session != ev.Session || as.Agent != a2.UID {
		t.Fatalf("requeued session went to %+v", as)
	}
	if m := nextMessage(t, c2); m.Seq != 1 {
		t.Fatalf("backlog %+v", m)
	}
}
