package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/wire"
)

// Two server processes on one PostgreSQL database: customers write through
// both at once. The row locks keep one session per customer and contiguous
// seqs. (Presence is per process: the agent connected to the first server
// is not available to the second, whose first messages queue.)
func TestTwoServersShareOnePostgres(t *testing.T) {
	s1 := imtest.Start(t, imtest.Options{Engine: imtest.Postgres})
	s2 := imtest.Start(t, imtest.Options{Engine: imtest.Postgres, DBURL: s1.DBURL})
	shop := createShop(t, s1, map[string]any{"name": "Shared", "welcome_message": "Hi"})
	agent := s1.Register(t, "agent")
	addAgent(t, s1, shop, agent)
	online(t, s1, agent, imtest.TCP)

	const customers, each = 40, 4
	users := make([]imtest.User, customers)
	for i := range users {
		users[i] = s1.Register(t, "cust")
	}
	var wg sync.WaitGroup
	for i, u := range users {
		for j := range each {
			wg.Add(1)
			go func() {
				defer wg.Done()
				srv := s1
				if (i+j)%2 == 1 {
					srv = s2
				}
				status, body := srv.Do(t, "POST", "/api/v1/conversations/"+serviceConv(shop, u.UID)+"/messages", u.Token,
					map[string]any{"cid": fmt.Sprint("c", j), "type": "text", "body": "hello"})
				if status != http.StatusCreated {
					t.Errorf("customer %d message %d via server %d: %d %s", i, j, (i+j)%2+1, status, body)
				}
			}()
		}
	}
	wg.Wait()

	all := sessions(t, s1, shop, "")
	perCustomer := map[int64]int{}
	for _, sess := range all {
		perCustomer[sess.Customer]++
	}
	for _, u := range users {
		if perCustomer[u.UID] != 1 {
			t.Fatalf("customer %d has %d sessions, want 1", u.UID, perCustomer[u.UID])
		}
		var hist []wire.Envelope
		s2.MustDo(t, "GET", "/api/v1/conversations/"+serviceConv(shop, u.UID)+"/messages?after_seq=0", u.Token, nil, http.StatusOK, &hist)
		mine, welcomes := 0, 0
		for i, m := range hist {
			if m.Seq != int64(i+1) {
				t.Fatalf("customer %d: seq %d at %d", u.UID, m.Seq, i)
			}
			if m.From == u.UID {
				mine++
			} else if m.Auto {
				welcomes++
			}
		}
		if mine != each || welcomes != 1 {
			t.Fatalf("customer %d: %d own messages, %d welcomes; want %d and 1", u.UID, mine, welcomes, each)
		}
	}
}
