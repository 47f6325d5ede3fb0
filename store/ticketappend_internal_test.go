package store

import (
	"context"
	"fmt"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/imserver/imserver/im"
)

// AppendToOpen stores a message only while its ticket is open with the
// given agent, who serves the shop and is not away; otherwise it writes
// nothing; a re-sent cid is reported with its first copy.
func TestAppendToOpen(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store, _ string) { testAppendToOpen(t, s) })
}

func testAppendToOpen(t *testing.T, s *Store) {
	ctx := context.Background()
	user := func(name string) int64 {
		u, err := s.CreateUser(ctx, im.User{Username: name, PasswordHash: "h", Role: im.RoleUser, Status: im.StatusOnline, CreatedAt: 1})
		if err != nil {
			t.Fatal(err)
		}
		return u.UID
	}
	agent, other, customer := user("agent"), user("other"), user("customer")
	shop, err := s.CreateShop(ctx, im.Shop{Name: "Shop", CreatedAt: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []int64{agent, other} {
		if err := s.AddAgent(ctx, shop.ID, a, 1); err != nil {
			t.Fatal(err)
		}
	}
	conv := fmt.Sprintf("s:%d:%d", shop.ID, customer)
	n := 0
	message := func(cid string) im.Message {
		n++
		return im.Message{ID: fmt.Sprintf("m%d", n), Conv: conv, From: customer, Type: "text", Body: []byte(`"hi"`), CID: cid, TS: int64(100 + n)}
	}
	inTx := func(fn func(tx *supportTx) im.TxEnd) {
		t.Helper()
		if _, err := s.inTx(ctx, func(tx *sqlx.Tx) (im.TxEnd, error) { return fn(&supportTx{s: s, tx: tx}), nil }); err != nil {
			t.Fatal(err)
		}
	}
	var ticket im.Ticket
	inTx(func(tx *supportTx) im.TxEnd {
		var err error
		if ticket, err = tx.CreateTicket(ctx, im.Ticket{Shop: shop.ID, Customer: customer, Agent: agent, Status: im.TicketOpen, CreatedAt: 1, AssignedAt: 1}); err != nil {
			t.Fatal(err)
		}
		m := message("first")
		m.Ticket, m.Agent = ticket.ID, agent
		if _, _, err := tx.Append(ctx, m); err != nil {
			t.Fatal(err)
		}
		return im.Commit
	})
	appendTo := func(id, to int64, cid string) (im.Ticket, im.Message, bool, bool) {
		t.Helper()
		var tk im.Ticket
		var stored im.Message
		var ok, dup bool
		inTx(func(tx *supportTx) im.TxEnd {
			var err error
			if tk, stored, ok, dup, err = tx.AppendToOpen(ctx, id, to, message(cid)); err != nil {
				t.Fatal(err)
			}
			if dup {
				return im.Rollback
			}
			return im.Commit
		})
		return tk, stored, ok, dup
	}

	tk, m, ok, dup := appendTo(ticket.ID, agent, "second")
	if !ok || dup || m.Seq != 2 || m.Ticket != ticket.ID || m.Agent != agent || tk.ID != ticket.ID || tk.Customer != customer || tk.Status != im.TicketOpen {
		t.Fatalf("open ticket: ok %v dup %v, stored %+v, ticket %+v", ok, dup, m, tk)
	}
	if _, _, ok, _ := appendTo(ticket.ID, other, "to-other"); ok {
		t.Fatal("stored for an agent the ticket does not have")
	}
	if _, m, ok, dup := appendTo(ticket.ID, agent, "second"); !ok || !dup || m.Seq != 2 || m.ID != "m2" {
		t.Fatalf("re-sent cid: ok %v dup %v, copy %+v", ok, dup, m)
	}
	if err := s.SetUserStatus(ctx, agent, im.StatusAway); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, _ := appendTo(ticket.ID, agent, "while-away"); ok {
		t.Fatal("stored while the agent is away")
	}
	if err := s.SetUserStatus(ctx, agent, im.StatusOnline); err != nil {
		t.Fatal(err)
	}
	if removed, err := s.RemoveAgent(ctx, shop.ID, agent); err != nil || !removed {
		t.Fatalf("remove agent: %v %v", removed, err)
	}
	if _, _, ok, _ := appendTo(ticket.ID, agent, "after-removal"); ok {
		t.Fatal("stored for an agent removed from the shop")
	}

	hist, err := s.History(ctx, conv, im.HistoryQuery{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, m := range hist {
		if m.Seq != int64(i+1) {
			t.Errorf("%s has seq %d", m.CID, m.Seq)
		}
		got = append(got, m.CID)
	}
	if fmt.Sprint(got) != "[first second]" {
		t.Fatalf("stored %v, want [first second]", got)
	}
}
