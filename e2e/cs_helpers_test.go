package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/wire"
)

func createShop(t testing.TB, s *imtest.Server, in map[string]any) int64 {
	t.Helper()
	var shop wire.Shop
	s.MustDo(t, "POST", "/api/v1/shops", s.Admin.Token, in, http.StatusCreated, &shop)
	return shop.ShopID
}

func addAgent(t testing.TB, s *imtest.Server, shop int64, u imtest.User) {
	t.Helper()
	s.MustDo(t, "POST", fmt.Sprintf("/api/v1/shops/%d/agents", shop), s.Admin.Token, map[string]int64{"uid": u.UID}, http.StatusOK, nil)
}

// online connects a user and subscribes it to its inbox: from then on an
// agent is reachable and gets sessions.
func online(t testing.TB, s *imtest.Server, u imtest.User, tr imtest.Transport) *imtest.Client {
	t.Helper()
	c := s.Connect(t, u, imtest.ClientOptions{Transport: tr})
	c.MustSubscribe(t, inbox(u.UID))
	return c
}

func shopTopic(shop int64) string { return fmt.Sprintf("im/s/%d", shop) }

func replyTopic(shop, customer int64) string { return fmt.Sprintf("im/s/%d/u/%d", shop, customer) }

func serviceConv(shop, customer int64) string { return fmt.Sprintf("s:%d:%d", shop, customer) }

// queueEvent reports whether m is one of the queue's events (PROTOCOL §8),
// which come beside the others.
func queueEvent(m imtest.Msg) bool {
	switch m.Event() {
	case wire.EventCSQueue, wire.EventCSQueued, wire.EventCSDequeued:
		return true
	}
	return false
}

// next returns the next message that is not a queue event, unless a queue
// event is wanted.
func next(t testing.TB, c *imtest.Client, want string) imtest.Msg {
	t.Helper()
	for {
		m := c.In.Next(t)
		if !queueEvent(m) || m.Event() == want {
			return m
		}
	}
}

// noneButQueue fails the test if anything but a queue event arrives
// within d.
func noneButQueue(t testing.TB, c *imtest.Client, d time.Duration) {
	t.Helper()
	end := time.After(d)
	for {
		select {
		case m := <-c.In:
			if !queueEvent(m) {
				t.Fatalf("unexpected message on %s: %s", m.Topic, m.Payload)
			}
		case <-end:
			return
		}
	}
}

// nextEvent returns the next message and checks it is the named event.
func nextEvent(t testing.TB, c *imtest.Client, name string) wire.SessionEvent {
	t.Helper()
	m := next(t, c, name)
	if m.Event() != name {
		t.Fatalf("got %s, want event %s", m.Payload, name)
	}
	var ev wire.SessionEvent
	m.Decode(t, &ev)
	return ev
}

// nextMessage returns the next message and checks it is an envelope.
func nextMessage(t testing.TB, c *imtest.Client) wire.Envelope {
	t.Helper()
	return next(t, c, "").Envelope(t)
}

func sessions(t testing.TB, s *imtest.Server, shop int64, status string) []wire.CSSession {
	t.Helper()
	var out []wire.CSSession
	s.MustDo(t, "GET", fmt.Sprintf("/api/v1/shops/%d/sessions?status=%s", shop, status), s.Admin.Token, nil, http.StatusOK, &out)
	return out
}

func agentsOf(t testing.TB, s *imtest.Server, shop int64) map[int64]wire.ShopAgent {
	t.Helper()
	var out []wire.ShopAgent
	s.MustDo(t, "GET", fmt.Sprintf("/api/v1/shops/%d/agents", shop), s.Admin.Token, nil, http.StatusOK, &out)
	m := map[int64]wire.ShopAgent{}
	for _, a := range out {
		m[a.UID] = a
	}
	return m
}
