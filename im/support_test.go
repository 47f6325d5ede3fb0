package im_test

import (
	"context"
	"slices"
	"testing"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

// shopWith creates a shop with automatic replies and makes agents its
// agents.
func (d *domain) shopWith(t *testing.T, agents ...im.Principal) im.Shop {
	t.Helper()
	ctx := context.Background()
	name, welcome, offline := "Shop", "welcome!", "nobody is here"
	krs := []im.KeywordReply{{Keyword: "Price", Reply: "see the price list"}}
	shop, err := d.Support.CreateShop(ctx, d.admin, im.ShopFields{Name: &name, WelcomeMessage: &welcome, OfflineMessage: &offline, KeywordReplies: &krs})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range agents {
		if err := d.Support.AddAgent(ctx, d.admin, shop.ID, a.UID); err != nil {
			t.Fatal(err)
		}
	}
	return shop
}

// ask sends a customer's text to the shop.
func (d *domain) ask(t *testing.T, customer im.Principal, shop im.Shop, s string) im.Message {
	t.Helper()
	m, err := d.Chat.PublishTopic(context.Background(), customer, topics.Shop(shop.ID), []byte(`{"type":"text","body":"`+s+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (d *domain) ticket(t *testing.T, shop im.Shop, customer im.Principal) im.Ticket {
	t.Helper()
	ts, err := d.Support.Tickets(context.Background(), d.admin, shop.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range ts {
		if tk.Customer == customer.UID && tk.Status != im.TicketClosed {
			return tk
		}
	}
	t.Fatalf("no active ticket of %s", customer.Username)
	return im.Ticket{}
}

func bodies(msgs []map[string]any) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = bodyOf(m)
	}
	return out
}

// Rule 4 then the drain: with nobody reachable the ticket is queued and
// the customer greeted and told; the first agent to become reachable gets
// cs_assigned and the backlog, in seq order, in the background.
func TestQueueDrainsToTheFirstReachableAgent(t *testing.T) {
	d := newDomain(t)
	agent, cust := d.user(t, "agent"), d.user(t, "cust")
	shop := d.shopWith(t, agent)

	d.ask(t, cust, shop, "hello?")
	d.ask(t, cust, shop, "anyone?")
	if tk := d.ticket(t, shop, cust); tk.Status != im.TicketQueued || tk.Agent != 0 {
		t.Fatalf("ticket: %+v", tk)
	}
	want := []string{"hello?", "welcome!", "nobody is here", "anyone?"} // the offline message once per queued ticket
	if got := bodies(d.pub.messages(inbox(cust))); !slices.Equal(got, want) {
		t.Fatalf("customer got %q, want %q", got, want)
	}

	d.live.set(agent.UID, true)
	d.UserReachable(agent.UID)
	eventually(t, "the backlog", func() bool { return len(d.pub.messages(inbox(agent))) == 4 })
	if ev := d.pub.events(inbox(agent), wire.EventCSAssigned); len(ev) != 1 {
		t.Fatalf("cs_assigned: %v", ev)
	}
	if got := bodies(d.pub.messages(inbox(agent))); !slices.Equal(got, want) {
		t.Fatalf("agent's backlog %q, want %q", got, want)
	}
	if tk := d.ticket(t, shop, cust); tk.Status != im.TicketOpen || tk.Agent != agent.UID {
		t.Fatalf("ticket after the drain: %+v", tk)
	}
}

func TestRoutingRules(t *testing.T) {
	d := newDomain(t)
	ctx := context.Background()
	a1, a2, cust := d.user(t, "ann"), d.user(t, "ben"), d.user(t, "cust")
	shop := d.shopWith(t, a1, a2)
	d.live.set(a1.UID, true)
	d.live.set(a2.UID, true)

	// Rule 3: least loaded, ties to the least recently assigned (never
	// assigned: a1 first by uid).
	d.ask(t, cust, shop, "first")
	first := d.ticket(t, shop, cust)
	if first.Agent != a1.UID {
		t.Fatalf("rule 3 chose %d", first.Agent)
	}
	// Rule 1: the ticket's agent keeps it.
	d.ask(t, cust, shop, "what is the price?")
	if got := bodies(d.pub.messages(inbox(a1))); !slices.Equal(got, []string{"first", "welcome!", "what is the price?", "see the price list"}) {
		t.Fatalf("a1 got %q", got)
	}
	// The agent goes away: the next message moves the ticket (rule 3 again).
	if err := d.Support.SetStatus(ctx, a1, im.StatusAway); err != nil {
		t.Fatal(err)
	}
	d.ask(t, cust, shop, "still there?")
	if tk := d.ticket(t, shop, cust); tk.Agent != a2.UID || tk.ID != first.ID {
		t.Fatalf("after a1 went away: %+v", tk)
	}
	if ev := d.pub.events(inbox(a1), wire.EventCSTransferred); len(ev) != 1 {
		t.Fatalf("a1 was not told of the transfer: %v", ev)
	}
	// a2 gets the backlog it had not seen, then the new message.
	if got := bodies(d.pub.messages(inbox(a2))); len(got) != 5 || got[4] != "still there?" {
		t.Fatalf("a2 got %q", got)
	}

	// Closed: the next message opens a new ticket; rule 2 gives it to the
	// customer's last agent (a2), though a1 is back and less loaded.
	if err := d.Support.SetStatus(ctx, a1, im.StatusOnline); err != nil {
		t.Fatal(err)
	}
	if err := d.Support.Close(ctx, a2, first.ID); err != nil {
		t.Fatal(err)
	}
	if ev := d.pub.events(inbox(cust), wire.EventCSClosed); len(ev) != 1 {
		t.Fatalf("cs_closed: %v", ev)
	}
	d.ask(t, cust, shop, "me again")
	second := d.ticket(t, shop, cust)
	if second.ID == first.ID || second.Agent != a2.UID {
		t.Fatalf("new ticket: %+v (first %d)", second, first.ID)
	}

	// Transfer by staff: a1 gets cs_assigned and the ticket's messages.
	d.pub.reset()
	if err := d.Support.Transfer(ctx, a2, second.ID, a1.UID); err != nil {
		t.Fatal(err)
	}
	if ev := d.pub.events(inbox(a1), wire.EventCSAssigned); len(ev) != 1 || ev[0]["session"] != float64(second.ID) {
		t.Fatalf("transfer: %v", ev)
	}
	refusedAs(t, d.Support.Transfer(ctx, a2, second.ID, cust.UID), im.ErrInvalid) // not an agent
	refusedAs(t, d.Support.Transfer(ctx, cust, second.ID, a2.UID), im.ErrForbidden)
}

func TestAgentReplies(t *testing.T) {
	d := newDomain(t)
	ctx := context.Background()
	agent, other, cust := d.user(t, "agent"), d.user(t, "other"), d.user(t, "cust")
	shop := d.shopWith(t, agent)
	d.ask(t, cust, shop, "hello?") // queued: nobody reachable

	// An agent replying to a queued ticket takes it.
	reply := []byte(`{"cid":"r-1","type":"text","body":"here"}`)
	m, err := d.Chat.PublishTopic(ctx, agent, topics.ShopReply(shop.ID, cust.UID), reply)
	if err != nil || m.Agent != agent.UID {
		t.Fatalf("reply: %+v, %v", m, err)
	}
	if tk := d.ticket(t, shop, cust); tk.Status != im.TicketOpen || tk.Agent != agent.UID {
		t.Fatalf("the reply did not take the ticket: %+v", tk)
	}
	// A re-sent reply is stored once.
	again, err := d.Chat.PublishTopic(ctx, agent, topics.ShopReply(shop.ID, cust.UID), reply)
	if err != nil || again.ID != m.ID {
		t.Fatalf("re-sent reply: %+v, %v", again, err)
	}
	h, err := d.Chat.History(ctx, cust, topics.ServiceConv(shop.ID, cust.UID), im.HistoryQuery{})
	if err != nil || len(h) != 4 {
		t.Fatalf("history: %d messages, %v", len(h), err)
	}
	for i, msg := range h {
		if msg.Seq != int64(i+1) {
			t.Fatalf("seqs not contiguous: %+v", h)
		}
	}

	_, err = d.Chat.PublishTopic(ctx, other, topics.ShopReply(shop.ID, cust.UID), reply)
	refusedAs(t, err, im.ErrForbidden) // not an agent of the shop
	_, err = d.Chat.PublishTopic(ctx, agent, topics.Shop(shop.ID), []byte(`{"type":"text","body":"x"}`))
	refusedAs(t, err, im.ErrForbidden) // agents reply, they do not ask
	_, err = d.Chat.PublishTopic(ctx, cust, topics.Shop(999), []byte(`{"type":"text","body":"x"}`))
	refusedAs(t, err, im.ErrNotFound)
	_, err = d.Chat.History(ctx, other, topics.ServiceConv(shop.ID, cust.UID), im.HistoryQuery{})
	refusedAs(t, err, im.ErrForbidden)

	// Read state crosses to the other side of the ticket.
	if _, err := d.Chat.MarkRead(ctx, cust, topics.ServiceConv(shop.ID, cust.UID), 4); err != nil {
		t.Fatal(err)
	}
	if ev := d.pub.events(inbox(agent), wire.EventRead); len(ev) != 1 {
		t.Fatalf("the agent was not told the customer read: %v", ev)
	}
}

func TestRemovingAnAgentRequeuesItsTickets(t *testing.T) {
	d := newDomain(t)
	ctx := context.Background()
	a1, a2, cust := d.user(t, "ann"), d.user(t, "ben"), d.user(t, "cust")
	shop := d.shopWith(t, a1)
	d.live.set(a1.UID, true)
	d.ask(t, cust, shop, "hi")
	if err := d.Support.AddAgent(ctx, d.admin, shop.ID, a2.UID); err != nil {
		t.Fatal(err)
	}
	d.live.set(a2.UID, true)
	if err := d.Support.RemoveAgent(ctx, d.admin, shop.ID, a1.UID); err != nil {
		t.Fatal(err)
	}
	if tk := d.ticket(t, shop, cust); tk.Agent != a2.UID {
		t.Fatalf("the removed agent's ticket went to %d", tk.Agent)
	}
	if ev := d.pub.events(inbox(a1), wire.EventCSTransferred); len(ev) != 1 {
		t.Fatalf("the removed agent was not told: %v", ev)
	}
	refusedAs(t, d.Support.RemoveAgent(ctx, d.admin, shop.ID, a1.UID), im.ErrNotFound)
	refusedAs(t, d.Support.RemoveAgent(ctx, a2, shop.ID, a2.UID), im.ErrForbidden)
}
