package store

import (
	"context"
	"fmt"
	"log/slog"
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
	agent, other, customer := newUser(t, s, "agent"), newUser(t, s, "other"), newUser(t, s, "customer")
	shop := newShop(t, s, agent, other)
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

	if got := cids(history(t, s, conv)); got != "[first second]" {
		t.Fatalf("stored %v, want [first second]", got)
	}
}

// A group's customer messages go where they are told in one step when
// their tickets hold, and take their full path, in their order, when they
// do not; a re-sent one is answered with its first copy. On PostgreSQL the
// held ones of a batch are one statement.
func TestSupportAppendGroup(t *testing.T) {
	forEachEngine(t, testSupportAppendGroup)
}

func testSupportAppendGroup(t *testing.T, s *Store, url string) {
	ctx := context.Background()
	agent, agent2 := newUser(t, s, "agent"), newUser(t, s, "agent2")
	c1, c2, c3 := newUser(t, s, "c1"), newUser(t, s, "c2"), newUser(t, s, "c3")
	shop := newShop(t, s, agent, agent2)
	conv := func(c int64) string { return fmt.Sprintf("s:%d:%d", shop.ID, c) }
	n := 0
	message := func(from int64, cid string) im.Message {
		n++
		return im.Message{ID: fmt.Sprintf("m%d", n), Conv: conv(from), From: from, Type: "text", Body: []byte(`"hi"`), CID: cid, TS: int64(100 + n)}
	}
	tickets := map[int64]im.Ticket{}
	if _, err := s.inTx(ctx, func(tx *sqlx.Tx) (im.TxEnd, error) {
		st := &supportTx{s: s, tx: tx}
		for c, a := range map[int64]int64{c1: agent, c2: agent2} {
			tk, err := st.CreateTicket(ctx, im.Ticket{Shop: shop.ID, Customer: c, Agent: a, Status: im.TicketOpen, CreatedAt: 1, AssignedAt: 1})
			if err != nil {
				return im.Rollback, err
			}
			tickets[c] = tk
			m := message(c, "first")
			m.Ticket, m.Agent = tk.ID, a
			if _, _, err := st.Append(ctx, m); err != nil {
				return im.Rollback, err
			}
		}
		return im.Commit, nil
	}); err != nil {
		t.Fatal(err)
	}

	var answered []string
	how := map[string]string{}
	stored := map[string]im.Message{}
	// req is a customer's message with cid, told to go to ticket of c
	// with agent (none if agent is 0).
	req := func(c int64, cid string, agent int64) *appendReq {
		m := message(c, cid)
		open := func() (im.OpenAppend, bool) {
			if agent == 0 {
				return im.OpenAppend{}, false
			}
			return im.OpenAppend{Ticket: tickets[c].ID, Agent: agent, Msg: m, Held: func(tk im.Ticket, sm im.Message, dup bool) {
				if tk.ID != tickets[c].ID || tk.Customer != c {
					t.Errorf("%s held in ticket %+v", cid, tk)
				}
				how[cid], stored[cid] = "held", sm
				if dup {
					how[cid] = "dup"
				}
			}}, true
		}
		fn := func(ctx context.Context, tx im.SupportTx) (im.TxEnd, error) {
			sm, dup, err := tx.Append(ctx, m)
			how[cid], stored[cid] = "full path", sm
			if dup {
				how[cid] = "full path dup"
				return im.Rollback, err
			}
			return im.Commit, err
		}
		return s.openReq(open, fn, func(err error) {
			if err != nil {
				t.Errorf("%s: %v", cid, err)
			}
			answered = append(answered, cid)
		})
	}
	s.appender.run([]*appendReq{
		req(c1, "a1", agent),
		req(c2, "b1", agent), // not its agent: the full path
		req(c1, "a2", agent),
		req(c2, "b2", agent2), // after b1, though b1 took longer
		req(c3, "c1", 0),      // nowhere known
		req(c1, "a3", agent),
	})
	s.appender.run([]*appendReq{
		req(c1, "a4", agent),
		req(c1, "a2", agent), // re-sent
		req(c2, "b3", agent2),
	})
	if err := s.SetUserStatus(ctx, agent2, im.StatusAway); err != nil {
		t.Fatal(err)
	}
	s.appender.run([]*appendReq{
		req(c2, "b4", agent2), // away: the full path
		req(c1, "a5", agent),
	})
	s.Close() // every answer is given

	if want := "[a1 b1 a2 b2 c1 a3 a4 a2 b3 b4 a5]"; fmt.Sprint(answered) != want {
		t.Errorf("answered %v, want %v", answered, want)
	}
	want := map[string]string{"a1": "held", "b1": "full path", "a2": "dup", "c1": "full path", "b2": "held", "a3": "held",
		"a4": "held", "b3": "held", "b4": "full path", "a5": "held"}
	if fmt.Sprint(how) != fmt.Sprint(want) {
		t.Errorf("went %v\nwant %v", how, want)
	}
	if stored["a2"].ID != "m5" || stored["a2"].Seq != 3 {
		t.Errorf("re-sent a2 answered with %+v, want the first copy m5, seq 3", stored["a2"])
	}
	s2, err := Open(ctx, url, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for c, wantCIDs := range map[int64]string{c1: "[first a1 a2 a3 a4 a5]", c2: "[first b1 b2 b3 b4]", c3: "[c1]"} {
		hist := history(t, s2, conv(c))
		for _, m := range hist {
			if sm, ok := stored[m.CID]; ok && m.CID != "a2" && (sm.Seq != m.Seq || sm.ID != m.ID) {
				t.Errorf("%s answered as %s seq %d, stored as %s seq %d", m.CID, sm.ID, sm.Seq, m.ID, m.Seq)
			}
		}
		if got := cids(hist); got != wantCIDs {
			t.Errorf("conversation of %d holds %v, want %v", c, got, wantCIDs)
		}
	}
}
