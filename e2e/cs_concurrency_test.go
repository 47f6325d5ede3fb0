package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/wire"
)

// 200 customers write to one shop while 5 agents connect and disconnect at
// random. Afterwards: one session per customer, every message stored once
// with contiguous seqs, no agent ever received a message of a session that
// was not assigned to it, and every message routed to an agent while it
// was connected reached it.
func TestCustomerServiceUnderChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	for _, e := range imtest.Engines {
		t.Run(string(e), func(t *testing.T) {
			testChurn(t, imtest.Start(t, imtest.Options{Engine: e}))
		})
	}
}

type agentLog struct {
	mu        sync.Mutex
	received  map[string]wire.Envelope // by message id
	assigned  map[int64]bool           // sessions it got cs_assigned for
	dups      int
	intervals [][2]int64 // reachable from [0] to [1] (ms), [1] = 0 while connected
}

func (l *agentLog) add(e wire.Envelope) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.received[e.ID]; ok {
		l.dups++
	}
	l.received[e.ID] = e
}

func testChurn(t *testing.T, s *imtest.Server) {
	const customers, perCustomer, agents = 200, 5, 5
	shop := createShop(t, s, map[string]any{"name": "Busy", "welcome_message": "Welcome", "offline_message": "Please wait"})
	agentUsers := make([]imtest.User, agents)
	logs := make([]*agentLog, agents)
	for i := range agents {
		agentUsers[i] = s.Register(t, "agent")
		addAgent(t, s, shop, agentUsers[i])
		logs[i] = &agentLog{received: map[string]wire.Envelope{}, assigned: map[int64]bool{}}
	}
	custUsers := make([]imtest.User, customers)
	custClients := make([]*imtest.Client, customers)
	for i := range customers {
		custUsers[i] = s.Register(t, "cust")
		custClients[i] = s.Connect(t, custUsers[i], imtest.ClientOptions{})
	}

	ctx, stop := context.WithCancel(context.Background())
	var agentsDone sync.WaitGroup
	finalClients := make([]paho.Client, agents)
	for i := range agents {
		agentsDone.Add(1)
		go func() {
			defer agentsDone.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for n := 0; ; n++ {
				c := connectAgent(t, s, agentUsers[i], n, logs[i])
				if ctx.Err() != nil {
					finalClients[i] = c // stays connected to drain the rest
					return
				}
				select {
				case <-ctx.Done():
					finalClients[i] = c
					return
				case <-time.After(time.Duration(20+rng.IntN(150)) * time.Millisecond):
				}
				logs[i].mu.Lock()
				logs[i].intervals[len(logs[i].intervals)-1][1] = time.Now().UnixMilli()
				logs[i].mu.Unlock()
				c.Disconnect(0)
				time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
			}
		}()
	}

	var writers sync.WaitGroup
	for i := range customers {
		writers.Add(1)
		go func() {
			defer writers.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 11))
			time.Sleep(time.Duration(rng.IntN(3000)) * time.Millisecond) // customers arrive over 3s
			c := custClients[i]
			for j := range perCustomer {
				time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
				payload := fmt.Sprintf(`{"cid":"m%d","type":"text","body":"message %d"}`, j, j)
				// Like a real client: if the server is too slow and drops
				// the connection, reconnect and send again with the same
				// cid. The message must still be stored once.
				for attempt := 0; ; attempt++ {
					tok := c.Paho.Publish(shopTopic(shop), 1, false, payload)
					if tok.WaitTimeout(30*time.Second) && tok.Error() == nil {
						break
					}
					if attempt == 5 {
						t.Errorf("customer %d message %d: not acknowledged after %d attempts: %v", i, j, attempt+1, tok.Error())
						return
					}
					c.Paho.Disconnect(0)
					c = s.Connect(t, custUsers[i], imtest.ClientOptions{})
				}
			}
		}()
	}
	writers.Wait()
	stop()
	agentsDone.Wait()

	// With every agent connected, the queue empties.
	imtest.WaitFor(t, 20*time.Second, func() error {
		if q := sessions(t, s, shop, "queued"); len(q) > 0 {
			return fmt.Errorf("%d sessions still queued", len(q))
		}
		return nil
	})
	open := sessions(t, s, shop, "open")
	if all := sessions(t, s, shop, ""); len(all) != customers || len(open) != customers {
		t.Fatalf("%d sessions (%d open), want exactly one open per customer (%d)", len(all), len(open), customers)
	}
	sessionOfCustomer := map[int64]int64{}
	for _, sess := range open {
		if _, dup := sessionOfCustomer[sess.Customer]; dup {
			t.Fatalf("customer %d has two sessions", sess.Customer)
		}
		sessionOfCustomer[sess.Customer] = sess.SessionID
	}

	// Every message is in history once, seqs contiguous, in its session.
	stored := map[string]wire.Envelope{}
	for _, u := range custUsers {
		var hist []wire.Envelope
		s.MustDo(t, "GET", fmt.Sprintf("/api/v1/conversations/%s/messages?after_seq=0&limit=200", serviceConv(shop, u.UID)), s.Admin.Token, nil, http.StatusOK, &hist)
		cids := map[string]int{}
		for i, m := range hist {
			if m.Seq != int64(i+1) {
				t.Fatalf("customer %d: seq %d at position %d", u.UID, m.Seq, i)
			}
			if m.Session != sessionOfCustomer[u.UID] {
				t.Fatalf("customer %d: message %d in session %d, want %d", u.UID, m.Seq, m.Session, sessionOfCustomer[u.UID])
			}
			if m.From == u.UID {
				cids[m.CID]++
			}
			stored[m.ID] = m
		}
		for j := range perCustomer {
			if cids[fmt.Sprint("m", j)] != 1 {
				t.Fatalf("customer %d: message m%d stored %d times", u.UID, j, cids[fmt.Sprint("m", j)])
			}
		}
	}

	// Sessions each agent was assigned, as far as the server's data shows
	// (a message routed to it, or the session's final agent). An agent's
	// cs_assigned can be lost when it arrives while its new connection is
	// not subscribed yet and its old one is closing, while the backlog that
	// follows reaches the new one.
	servedBy := map[int64]map[int64]bool{}
	mark := func(agent, session int64) {
		if servedBy[agent] == nil {
			servedBy[agent] = map[int64]bool{}
		}
		servedBy[agent][session] = true
	}
	for _, m := range stored {
		if m.Agent != 0 {
			mark(m.Agent, m.Session)
		}
	}
	for _, sess := range open {
		mark(*sess.Agent, sess.SessionID)
	}
	for session, agent := range backlogsSent(t, s.DBURL) {
		for _, a := range agent {
			mark(a, session)
		}
	}

	// Agents: nothing foreign, nothing twice, nothing missed while connected.
	total := 0
	for i, l := range logs {
		l.mu.Lock()
		uid := agentUsers[i].UID
		if l.dups > 0 {
			t.Errorf("agent %d received %d messages twice", uid, l.dups)
		}
		for id, e := range l.received {
			// Either routed to it, or the backlog of a session it was assigned.
			if e.Agent != uid && !l.assigned[e.Session] && !servedBy[uid][e.Session] {
				t.Errorf("agent %d received message %s of session %d, never assigned to it", uid, id, e.Session)
			}
			if _, ok := stored[id]; !ok {
				t.Errorf("agent %d received message %s that is not stored", uid, id)
			}
		}
		for id, m := range stored {
			if m.Agent != uid || !inside(l.intervals, m.TS, 300) {
				continue
			}
			if _, ok := l.received[id]; !ok {
				t.Errorf("agent %d did not receive message %s (seq %d of %s, at %d) routed to it while connected", uid, id, m.Seq, m.Conv, m.TS)
			}
		}
		total += len(l.received)
		t.Logf("agent %d: %d connections, %d messages received", uid, len(l.intervals), len(l.received))
		l.mu.Unlock()
	}
	if total == 0 {
		t.Fatal("agents received nothing")
	}
	for _, c := range finalClients {
		if c != nil {
			c.Disconnect(0)
		}
	}
}

// inside reports whether ts lies within an interval, at least margin ms
// from its ends (a message stored as the agent disconnects may be lost to
// it; it is in history).
func inside(intervals [][2]int64, ts, margin int64) bool {
	for _, iv := range intervals {
		end := iv[1]
		if end == 0 {
			end = 1 << 62
		}
		if ts >= iv[0]+margin && ts <= end-margin {
			return true
		}
	}
	return false
}

// connectAgent connects and subscribes an agent, logging what it receives.
func connectAgent(t *testing.T, s *imtest.Server, u imtest.User, n int, l *agentLog) paho.Client {
	opts := paho.NewClientOptions().AddBroker("tcp://" + s.MQTTAddr).
		SetClientID(fmt.Sprintf("u%d-churn-%d", u.UID, n)).SetUsername(u.Username).SetPassword(u.Token).
		SetProtocolVersion(4).SetAutoReconnect(false).SetCleanSession(true).SetOrderMatters(true)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Errorf("agent connect: %v", tok.Error())
		return c
	}
	tok := c.Subscribe(inbox(u.UID), 1, func(_ paho.Client, m paho.Message) {
		var in wire.SessionEvent
		if json.Unmarshal(m.Payload(), &in) != nil {
			return
		}
		if in.Event == wire.EventCSAssigned {
			l.mu.Lock()
			l.assigned[in.Session] = true
			l.mu.Unlock()
		}
		if in.Event != "" {
			return
		}
		var e wire.Envelope
		if json.Unmarshal(m.Payload(), &e) == nil {
			l.add(e)
		}
	})
	tok.WaitTimeout(10 * time.Second)
	l.mu.Lock()
	l.intervals = append(l.intervals, [2]int64{time.Now().UnixMilli(), 0})
	l.mu.Unlock()
	return c
}

// backlogsSent reads, from the database itself, which agents were sent
// which sessions' backlogs (the cs_seen marks).
func backlogsSent(t *testing.T, dbURL string) map[int64][]int64 {
	t.Helper()
	driver, dsn := "postgres", dbURL
	if path, ok := strings.CutPrefix(dbURL, "sqlite:"); ok {
		driver, dsn = "sqlite", "file:"+path
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT session_id, agent FROM cs_seen`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64][]int64{}
	for rows.Next() {
		var session, agent int64
		if err := rows.Scan(&session, &agent); err != nil {
			t.Fatal(err)
		}
		out[session] = append(out[session], agent)
	}
	return out
}
