package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/wire"
)

// Customers publish without waiting for their acks, and agents reply the
// same way, while sessions are transferred between the agents and one of
// them keeps going away and coming back: customer messages then go where
// the last one went in one step, or take the full path when that no longer
// holds, in the same groups of writes. Afterwards every conversation holds
// every message once, seqs contiguous, each sender's messages in the order
// it sent them.
func TestCustomerServiceOrderUnderTransfers(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	eachEngine(t, testOrderUnderTransfers)
}

func testOrderUnderTransfers(t *testing.T, s *imtest.Server) {
	const customers, perCustomer, replies = 8, 40, 20
	shop := createShop(t, s, map[string]any{"name": "Order"})
	a1, a2 := s.Register(t, "agent"), s.Register(t, "agent")
	addAgent(t, s, shop, a1)
	addAgent(t, s, shop, a2)
	agentClients := []*imtest.Client{online(t, s, a1, imtest.TCP), online(t, s, a2, imtest.WS)}
	agents := []imtest.User{a1, a2}
	custUsers := make([]imtest.User, customers)
	custClients := make([]*imtest.Client, customers)
	for i := range customers {
		custUsers[i] = s.Register(t, "cust")
		custClients[i] = s.Connect(t, custUsers[i], imtest.ClientOptions{})
	}
	// Every customer has a session before the load starts.
	for i := range customers {
		custClients[i].Publish(t, shopTopic(shop), 1, text("hello", "hello"))
	}
	imtest.WaitFor(t, 10*time.Second, func() error {
		if open := sessions(t, s, shop, "open"); len(open) != customers {
			return fmt.Errorf("%d sessions open, want %d", len(open), customers)
		}
		return nil
	})

	stop := make(chan struct{})
	var churn sync.WaitGroup
	var transfers, toggles int
	churn.Add(2)
	go func() { // a1 goes away and comes back
		defer churn.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond):
			}
			// 503 when the server is too loaded to answer in time (under
			// the race detector, say): the status stays as it was.
			switch code, body := s.Do(t, "PUT", "/api/v1/me/status", a1.Token, map[string]string{"status": []string{"away", "online"}[i%2]}); code {
			case http.StatusOK:
				toggles++
			case http.StatusServiceUnavailable:
			default:
				t.Errorf("PUT /me/status: %d %s", code, body)
			}
		}
	}()
	go func() { // open sessions change hands
		defer churn.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			code, body := s.Do(t, "GET", fmt.Sprintf("/api/v1/shops/%d/sessions?status=open", shop), s.Admin.Token, nil)
			var open []wire.CSSession
			if code != http.StatusOK || json.Unmarshal(body, &open) != nil {
				if code != http.StatusServiceUnavailable {
					t.Errorf("GET sessions: %d %s", code, body)
				}
				continue
			}
			for _, sess := range open {
				from, to := a1, a2
				if sess.Agent != nil && *sess.Agent == a2.UID {
					from, to = a2, a1
				}
				// 409 when it moved meanwhile, 400 when the other agent is
				// away, 503 when the server is too loaded: fine.
				switch code, body := s.Do(t, "POST", fmt.Sprintf("/api/v1/cs/sessions/%d/transfer", sess.SessionID), from.Token, map[string]int64{"to": to.UID}); code {
				case http.StatusOK:
					transfers++
				case http.StatusBadRequest, http.StatusConflict, http.StatusServiceUnavailable:
				default:
					t.Errorf("transfer: %d %s", code, body)
				}
			}
		}
	}()

	var writers sync.WaitGroup
	var reconnects atomic.Int64
	// publishAll publishes n messages without waiting for their acks, then
	// waits for them. Like a real client, if the connection is lost (an
	// overloaded server disconnects a client whose queue overflows), it
	// reconnects and sends again, in order and with the same cids, what was
	// not acknowledged: each is still stored once, in order.
	publishAll := func(c *imtest.Client, connect func() *imtest.Client, topic func(j int) string, cid func(j int) string, n int) {
		defer writers.Done()
		for from, attempt := 0, 0; from < n; attempt++ {
			if attempt > 0 {
				if attempt == 5 {
					t.Errorf("%s: not acknowledged after %d connections", cid(from), attempt)
					return
				}
				reconnects.Add(1)
				c.Paho.Disconnect(0)
				c = connect()
			}
			toks := make([]paho.Token, n-from)
			for j := from; j < n; j++ {
				toks[j-from] = c.Paho.Publish(topic(j), 1, false, fmt.Sprintf(`{"cid":%q,"type":"text","body":"%d"}`, cid(j), j))
				if (j+1)%(n/8) == 0 {
					time.Sleep(25 * time.Millisecond) // in eight bursts, while sessions change hands
				}
			}
			for _, tok := range toks {
				if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
					break
				}
				from++
			}
		}
	}
	for i := range customers {
		writers.Add(1)
		connect := func() *imtest.Client { return s.Connect(t, custUsers[i], imtest.ClientOptions{}) }
		go publishAll(custClients[i], connect, func(int) string { return shopTopic(shop) }, func(j int) string { return fmt.Sprintf("c%03d", j) }, perCustomer)
	}
	for k, c := range agentClients {
		writers.Add(1)
		connect := func() *imtest.Client { return online(t, s, agents[k], []imtest.Transport{imtest.TCP, imtest.WS}[k]) }
		go publishAll(c, connect, func(j int) string { return replyTopic(shop, custUsers[j%customers].UID) },
			func(j int) string { return fmt.Sprintf("a%d-%03d", k, j/customers) }, replies*customers)
	}
	writers.Wait()
	close(stop)
	churn.Wait()
	t.Logf("%d transfers, %d status changes, %d reconnections during the load", transfers, toggles, reconnects.Load())
	if transfers == 0 || toggles == 0 {
		t.Error("no session changed hands, or the agent never went away, during the load")
	}

	for _, u := range custUsers {
		var hist []wire.Envelope
		s.MustDo(t, "GET", fmt.Sprintf("/api/v1/conversations/%s/messages?after_seq=0&limit=200", serviceConv(shop, u.UID)), s.Admin.Token, nil, http.StatusOK, &hist)
		last := map[int64]string{} // each sender's last cid
		count := map[string]int{}
		for i, m := range hist {
			if m.Seq != int64(i+1) {
				t.Fatalf("customer %d: seq %d at position %d", u.UID, m.Seq, i)
			}
			if m.CID == "" || m.CID == "hello" {
				continue
			}
			count[m.CID]++
			if prev := last[m.From]; m.CID <= prev {
				t.Errorf("customer %d: %d's %s stored after its %s", u.UID, m.From, m.CID, prev)
			}
			last[m.From] = m.CID
		}
		for j := range perCustomer {
			if cid := fmt.Sprintf("c%03d", j); count[cid] != 1 {
				t.Errorf("customer %d: %s stored %d times", u.UID, cid, count[cid])
			}
		}
		for k := range agents {
			for j := range replies {
				if cid := fmt.Sprintf("a%d-%03d", k, j); count[cid] != 1 {
					t.Errorf("customer %d: reply %s stored %d times", u.UID, cid, count[cid])
				}
			}
		}
	}
}
