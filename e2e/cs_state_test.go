package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/wire"
)

// A customer's client that subscribes to its inbox (a reload, a second
// device) is told where its sessions stand: its place in the queue, or
// its agent and the agent's name. And an agent whose session goes back to
// the queue is told so.
func TestCustomerLearnsItsSessionsOnSubscribe(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		shop := createShop(t, s, map[string]any{"name": "State"})
		agent := s.Register(t, "agent")
		addAgent(t, s, shop, agent)
		first, second := s.Register(t, "cust"), s.Register(t, "cust")
		// Nobody is available: both queue.
		for _, u := range []imtest.User{first, second} {
			s.MustDo(t, "POST", "/api/v1/conversations/"+serviceConv(shop, u.UID)+"/messages", u.Token, text("", "hello"), http.StatusCreated, nil)
		}
		c := s.Connect(t, second, imtest.ClientOptions{})
		c.MustSubscribe(t, inbox(second.UID))
		var q wire.QueueEvent
		c.In.Await(t, "cs_queue", func(m imtest.Msg) bool { return m.Event() == wire.EventCSQueue }).Decode(t, &q)
		if q.Position != 2 || q.Shop != shop {
			t.Fatalf("the second customer in the queue was told %+v, want position 2", q)
		}

		// The agent comes online: the queue drains; a new device of the
		// first customer learns its agent, with the agent's name.
		ac := online(t, s, agent, imtest.TCP)
		imtest.WaitFor(t, 5*time.Second, func() error {
			if n := len(sessions(t, s, shop, "queued")); n != 0 {
				return fmt.Errorf("%d still queued", n)
			}
			return nil
		})
		d := s.Connect(t, first, imtest.ClientOptions{})
		d.MustSubscribe(t, inbox(first.UID))
		var as wire.SessionEvent
		d.In.Await(t, "cs_assigned", func(m imtest.Msg) bool { return m.Event() == wire.EventCSAssigned }).Decode(t, &as)
		if as.Agent != agent.UID || as.AgentName == "" || as.Customer != first.UID {
			t.Fatalf("the first customer's new device was told %+v", as)
		}

		// The agent goes away; the customer writes: the session goes back
		// to the queue, and the agent hears that it lost it.
		s.MustDo(t, "PUT", "/api/v1/me/status", agent.Token, map[string]string{"status": "away"}, http.StatusOK, nil)
		s.MustDo(t, "POST", "/api/v1/conversations/"+serviceConv(shop, first.UID)+"/messages", first.Token, text("", "anyone?"), http.StatusCreated, nil)
		var tr wire.SessionEvent
		ac.In.Await(t, "cs_transferred", func(m imtest.Msg) bool { return m.Event() == wire.EventCSTransferred }).Decode(t, &tr)
		if tr.Customer != first.UID || tr.Agent != 0 {
			t.Fatalf("the agent that lost a session to the queue was told %+v", tr)
		}
	})
}
