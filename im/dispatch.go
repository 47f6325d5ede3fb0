package im

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

// dispatcher routes customer-service messages (PROTOCOL.md §5): it finds
// or opens the customer's ticket, chooses its agent, stores the message
// with the automatic replies it triggers, and drains queues when agents
// become available. Every change is one transaction of the store's write
// pipeline (SupportWrite), delivered once it commits, in the pipeline's
// order: so a conversation's messages and events reach their subscribers
// in seq order without locks.
type dispatcher struct {
	*core
	store    SupportStore
	accounts *Accounts

	posMu     sync.Mutex
	positions map[int64]map[int64]int // by shop: the queue position each queued ticket's customer was last told

	hintMu sync.Mutex
	hints  map[ticketKey]ticketHint // where each customer's last message went, while open
}

// ticketKey is a customer of a shop.
type ticketKey struct{ shop, customer int64 }

// ticketHint is the open ticket, and its agent, that a customer's last
// message went to: where the next one most likely goes (rule 1). It is
// only a guess, checked by the store (SupportAppend).
type ticketHint struct{ ticket, agent int64 }

// maxHints bounds the hints: past it they are forgotten, all at once.
const maxHints = 1 << 16

// routed is what a customer-service transaction did, to be delivered after
// it commits.
type routed struct {
	ticket   Ticket
	prev     int64     // the ticket's agent before, if it changed
	assigned bool      // the ticket got a new agent
	backlog  []Message // the ticket's messages the new agent has not been sent
	msgs     []Message // stored in this transaction, in seq order
	dup      *Message  // the earlier copy of a re-sent message: roll back
	reroute  bool      // the fast path could not take it: roll back and route
	enqueued bool      // the ticket entered the shop's queue
	dequeued bool      // the ticket left the shop's queue

	// What the delivery needs, read in the transaction (the delivery
	// itself runs on the store's pipeline and must not read).
	names  map[int64]string // display names of the ticket's customer and agent, for cs_* events
	agents []Agent          // the shop's agents, for queue events
}

// end is the transaction's end: work that found a duplicate, or that must
// be redone under the shop lock, is rolled back.
func (r *routed) end() TxEnd {
	if r.dup != nil || r.reroute {
		return Rollback
	}
	return Commit
}

// available reports whether an agent may be given tickets: reachable over
// MQTT and not away.
func (d *dispatcher) available(a Agent) bool {
	return a.Status != StatusAway && d.live.Reachable(a.UID)
}

// customerMessage queues a customer's message to a shop (im/s/{shop}):
// it joins the customer's active ticket or opens one, routes it, stores it
// with the automatic replies it triggers, and delivers it; done gets the
// message. A refusal is returned at once.
func (d *dispatcher) customerMessage(ctx context.Context, p Principal, shopID int64, msg wire.Publish, done Done) error {
	msg, err := validatePublish(msg)
	if err != nil {
		return err
	}
	shop, isAgent, err := findShopFor(ctx, d.store, shopID, p.UID)
	if err != nil {
		return err
	}
	if isAgent {
		return errorf(ErrForbidden, "you are an agent of shop %d: reply to customers on im/s/%d/u/{customer_uid}", shopID, shopID)
	}
	m := Message{From: p.UID, Type: msg.Type, Body: msg.Body, CID: msg.CID}
	keyword := keywordReply(shop, msg)
	var r routed
	// Fast path: where the customer's last message went, in one step of
	// the store (batched with other customers' messages), while that
	// ticket's agent is available (rule 1).
	open := func() (OpenAppend, bool) {
		r = routed{}
		if keyword != "" {
			return OpenAppend{}, false
		}
		return d.openAppend(shopID, p.UID, 0, m, &r)
	}
	d.store.SupportAppend(open, func(ctx context.Context, tx SupportTx) (TxEnd, error) {
		// The ticket's agent is still available (rule 1): no shop lock, so
		// messages of different customers of one shop do not wait for
		// each other. Otherwise the full routing.
		r = routed{}
		err := d.appendToAssigned(ctx, tx, shopID, p.UID, m, keyword, &r)
		if err == nil && r.reroute {
			r = routed{}
			err = d.route(ctx, tx, shop, p.UID, m, keyword, &r)
		}
		if err == nil {
			err = d.readForDelivery(ctx, tx, &r, false)
		}
		return r.end(), err
	}, func(err error) { d.finish(r, err, p.UID, done) })
	return nil
}

// openAppend is where a message of the customer's conversation with the
// shop most likely goes: the open ticket the conversation's last message
// went to, if that ticket's agent is reachable (and is agent, unless 0);
// the store checks the rest. ok is false when there is no such hint. Once
// stored there, r says so.
func (d *dispatcher) openAppend(shopID, customer, agent int64, m Message, r *routed) (OpenAppend, bool) {
	d.hintMu.Lock()
	h, ok := d.hints[ticketKey{shopID, customer}]
	d.hintMu.Unlock()
	if !ok || (agent != 0 && h.agent != agent) || !d.live.Reachable(h.agent) {
		return OpenAppend{}, false
	}
	m.ID, m.TS = d.newID(), d.nowMillis()
	m.Conv = topics.ServiceConv(shopID, customer)
	return OpenAppend{Ticket: h.ticket, Agent: h.agent, Msg: m, Held: func(t Ticket, stored Message, dup bool) {
		*r = routed{ticket: t}
		if dup {
			r.dup = &stored
		} else {
			r.msgs = []Message{stored}
		}
	}}, true
}

// hint remembers where a customer's message went, if its ticket is open
// with an agent, for openAppend.
func (d *dispatcher) hint(t Ticket) {
	k := ticketKey{t.Shop, t.Customer}
	d.hintMu.Lock()
	defer d.hintMu.Unlock()
	if t.Status != TicketOpen || t.Agent == 0 {
		delete(d.hints, k)
		return
	}
	if d.hints == nil || len(d.hints) >= maxHints {
		d.hints = map[ticketKey]ticketHint{}
	}
	d.hints[k] = ticketHint{t.ID, t.Agent}
}

// appendToAssigned stores a customer's message in its open ticket when
// the ticket's agent is still available (rule 1), with its keyword reply;
// otherwise it sets r.reroute.
func (d *dispatcher) appendToAssigned(ctx context.Context, tx SupportTx, shopID, customer int64, m Message, keyword string, r *routed) error {
	t, ok, err := tx.ActiveTicket(ctx, shopID, customer)
	if err != nil || !ok || t.Status != TicketOpen {
		r.reroute = err == nil
		return err
	}
	status, isAgent, err := tx.AgentStatus(ctx, shopID, t.Agent)
	if err != nil {
		return err
	}
	if !isAgent || !d.available(Agent{UID: t.Agent, Status: status}) {
		r.reroute = true
		return nil
	}
	r.ticket = t
	if err := d.appendTicket(ctx, tx, t, m, r); err != nil || r.dup != nil || keyword == "" {
		return err
	}
	return d.autoReply(ctx, tx, t, keyword, r)
}

// route is the full routing of a customer's message, under the shop lock.
func (d *dispatcher) route(ctx context.Context, tx SupportTx, shop Shop, customer int64, m Message, keyword string, r *routed) error {
	// The shop lock serialises routing per shop. Presence is read after
	// it: an agent coming online either drains after this transaction
	// commits (and finds the ticket queued) or before it starts (and this
	// transaction sees the agent available). Nothing stays queued behind an
	// available agent.
	shop, err := tx.LockShop(ctx, shop.ID)
	if err != nil {
		return err
	}
	t, ok, err := tx.ActiveTicket(ctx, shop.ID, customer)
	if err != nil {
		return err
	}
	opened := !ok
	current := int64(0)
	if ok && t.Status == TicketOpen {
		current = t.Agent
	}
	agent, err := d.choose(ctx, tx, shop.ID, customer, current)
	if err != nil {
		return err
	}
	if opened {
		// A new ticket is created with its agent: it has no backlog.
		now := d.nowMillis()
		t = Ticket{Shop: shop.ID, Customer: customer, Agent: agent, Status: TicketQueued, CreatedAt: now}
		if agent != 0 {
			t.Status, t.AssignedAt = TicketOpen, now
			if err := tx.MarkAssigned(ctx, shop.ID, agent, now); err != nil {
				return err
			}
		}
		if t, err = tx.CreateTicket(ctx, t); err != nil {
			return err
		}
		r.assigned, r.enqueued = agent != 0, agent == 0
	} else if agent != t.Agent || (agent == 0 && t.Status != TicketQueued) {
		if t, err = d.assign(ctx, tx, t, agent, r); err != nil {
			return err
		}
	}
	r.ticket = t
	if err := d.appendTicket(ctx, tx, t, m, r); err != nil || r.dup != nil {
		return err
	}
	if opened && shop.WelcomeMessage != "" {
		if err := d.autoReply(ctx, tx, t, shop.WelcomeMessage, r); err != nil {
			return err
		}
	}
	if keyword != "" {
		if err := d.autoReply(ctx, tx, t, keyword, r); err != nil {
			return err
		}
	}
	if t.Status == TicketQueued && !t.OfflineNotified && shop.OfflineMessage != "" { // rule 4
		if err := d.autoReply(ctx, tx, t, shop.OfflineMessage, r); err != nil {
			return err
		}
		t.OfflineNotified = true
		r.ticket = t
		return tx.UpdateTicket(ctx, t)
	}
	return nil
}

// choose loads what the routing rules need and applies them (see
// chooseAgent). current is the ticket's agent, 0 if it has none.
func (d *dispatcher) choose(ctx context.Context, tx SupportTx, shop, customer, current int64) (int64, error) {
	agents, err := tx.Agents(ctx, shop)
	if err != nil {
		return 0, err
	}
	last, err := tx.LastAgent(ctx, shop, customer)
	if err != nil {
		return 0, err
	}
	return chooseAgent(agents, current, last, customer, d.available), nil
}

// assign gives t to agent (0: back to the queue) inside tx, and fills r.
func (d *dispatcher) assign(ctx context.Context, tx SupportTx, t Ticket, agent int64, r *routed) (Ticket, error) {
	r.prev, r.assigned = t.Agent, agent != 0
	r.enqueued = agent == 0 && t.Status != TicketQueued
	r.dequeued = agent != 0 && t.Status == TicketQueued
	now := d.nowMillis()
	t.Agent = agent
	if agent == 0 {
		t.Status = TicketQueued
	} else {
		t.Status, t.AssignedAt = TicketOpen, now
		if err := tx.MarkAssigned(ctx, t.Shop, agent, now); err != nil {
			return t, err
		}
	}
	if err := tx.UpdateTicket(ctx, t); err != nil {
		return t, err
	}
	if agent != 0 {
		backlog, err := tx.Unseen(ctx, t.ID, agent)
		if err != nil {
			return t, err
		}
		r.backlog = backlog
	}
	r.ticket = t
	return t, nil
}

// appendTicket stores m in t's conversation with the ticket's agent, and
// records it in r; a re-sent message is recorded as r.dup instead.
func (d *dispatcher) appendTicket(ctx context.Context, tx SupportTx, t Ticket, m Message, r *routed) error {
	m.ID, m.TS = d.newID(), d.nowMillis()
	m.Conv = topics.ServiceConv(t.Shop, t.Customer)
	m.Ticket, m.Agent = t.ID, t.Agent
	stored, dup, err := tx.Append(ctx, m)
	if err != nil {
		return err
	}
	if dup {
		r.dup = &stored
		return nil
	}
	r.msgs = append(r.msgs, stored)
	return nil
}

// autoReply stores a server-made text message in the ticket.
func (d *dispatcher) autoReply(ctx context.Context, tx SupportTx, t Ticket, text string, r *routed) error {
	body, err := jsonString(text)
	if err != nil {
		return err
	}
	return d.appendTicket(ctx, tx, t, Message{From: 0, Type: wire.TypeText, Body: body, Auto: true}, r)
}

// keywordReply returns the reply to the first keyword contained in a text
// message, compared case-insensitively, or "".
func keywordReply(shop Shop, msg wire.Publish) string {
	if msg.Type != wire.TypeText || len(shop.KeywordReplies) == 0 {
		return ""
	}
	text, err := validateText(msg.Body)
	if err != nil {
		return ""
	}
	text = strings.ToLower(text)
	for _, kr := range shop.KeywordReplies {
		if kr.Keyword != "" && strings.Contains(text, strings.ToLower(kr.Keyword)) {
			return kr.Reply
		}
	}
	return ""
}

// finish delivers a finished customer-service message, or turns its
// error into done's answer.
func (d *dispatcher) finish(r routed, err error, echo int64, done Done) {
	switch {
	case err != nil:
		done(Message{}, fmt.Errorf("customer service: %w", err))
		return
	case r.dup == nil && len(r.msgs) == 0:
		done(Message{}, fmt.Errorf("customer service: nothing stored"))
		return
	}
	if r.dup == nil && r.ticket.ID != 0 {
		d.hint(r.ticket)
	}
	d.deliverRouted(r, echo)
	if r.dup != nil {
		done(*r.dup, nil)
		return
	}
	done(r.msgs[0], nil)
}

// readForDelivery reads, in tx, what delivering r needs: the names of the
// ticket's people for cs_* events (when r.assigned, or names), the shop's
// agents for queue events.
func (d *dispatcher) readForDelivery(ctx context.Context, tx SupportTx, r *routed, names bool) error {
	if r.dup != nil {
		return nil
	}
	if r.assigned || names || r.prev != 0 {
		r.names = d.names(ctx, r.ticket.Customer, r.ticket.Agent)
	}
	if r.enqueued || r.dequeued {
		agents, err := tx.Agents(ctx, r.ticket.Shop)
		if err != nil {
			return err
		}
		r.agents = agents
	}
	return nil
}

// afterWrites calls fn in the order of the store's writes, once every
// write queued before is stored and delivered.
func (d *dispatcher) afterWrites(fn func()) {
	// Commit, not Rollback: nothing is written, and a rollback would make
	// the store run the job's whole group again with savepoints.
	d.store.SupportWrite(func(context.Context, SupportTx) (TxEnd, error) { return Commit, nil }, func(error) { fn() })
}

// write runs fn in the store's write pipeline, then deliver (if fn
// succeeded and deliver is not nil) in the pipeline's order, and waits for
// both, or for ctx.
func (d *dispatcher) write(ctx context.Context, fn func(ctx context.Context, tx SupportTx) (TxEnd, error), deliver func()) error {
	ch := make(chan error, 1)
	d.store.SupportWrite(fn, func(err error) {
		if err == nil && deliver != nil {
			deliver()
		}
		ch <- err
	})
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// deliverRouted sends a customer-service transaction's results: ticket
// events, the new agent's backlog, then the new messages, to the customer
// and the agent (and echo is the sender's inbox, when it is neither), and
// the queue's events. A re-sent message goes back to its sender alone.
func (d *dispatcher) deliverRouted(r routed, echo int64) {
	t := r.ticket
	if r.dup != nil {
		d.deliver(r.dup.Envelope(), topics.Inbox(r.dup.From))
		return
	}
	d.queueEvents(r)
	if r.prev != 0 && r.prev != t.Agent {
		// Taken from its agent: given to another, or back to the queue
		// (agent 0).
		d.deliver(ticketEvent(wire.EventCSTransferred, t, r.names), topics.Inbox(r.prev), topics.Inbox(t.Customer))
	}
	if r.assigned {
		names := r.names
		if t.Agent != 0 {
			d.deliver(ticketEvent(wire.EventCSAssigned, t, names), topics.Inbox(t.Agent), topics.Inbox(t.Customer))
			for _, m := range r.backlog {
				d.deliver(m.Envelope(), topics.Inbox(t.Agent))
			}
		}
	}
	targets := []string{topics.Inbox(t.Customer)}
	if t.Agent != 0 {
		targets = append(targets, topics.Inbox(t.Agent))
	}
	if echo != 0 && echo != t.Customer && echo != t.Agent {
		targets = append(targets, topics.Inbox(echo))
	}
	for _, m := range r.msgs {
		d.deliver(m.Envelope(), targets...)
	}
}

// ticketEvent is a cs_* event about t; names has the display names of its
// customer and agent.
func ticketEvent(name string, t Ticket, names map[int64]string) wire.SessionEvent {
	return wire.SessionEvent{Event: name, Session: t.ID, Shop: t.Shop, Customer: t.Customer, Agent: t.Agent,
		Conv: topics.ServiceConv(t.Shop, t.Customer), CustomerName: names[t.Customer], AgentName: names[t.Agent]}
}

// agentReply handles an agent's reply to a customer
// (im/s/{shop}/u/{customer}). An agent replying to a queued ticket takes
// it; replying to a customer without an active ticket opens one, assigned
// to the agent.
func (d *dispatcher) agentReply(ctx context.Context, p Principal, shopID, customer int64, msg wire.Publish, done Done) error {
	msg, err := validatePublish(msg)
	if err != nil {
		return err
	}
	if _, isAgent, err := findShopFor(ctx, d.store, shopID, p.UID); err != nil {
		return err
	} else if !isAgent {
		return errorf(ErrForbidden, "only agents of shop %d may reply to its customers", shopID)
	}
	if customer == p.UID {
		return errorf(ErrInvalid, "you cannot reply to yourself")
	}
	if err := d.accounts.exists(ctx, customer); err != nil {
		return err
	}
	var r routed
	m := Message{From: p.UID, Type: msg.Type, Body: msg.Body, CID: msg.CID}
	// Fast path: the ticket this agent answered last, or was last
	// written to, still open with it (an away agent takes the full path,
	// which lets it answer its own tickets).
	open := func() (OpenAppend, bool) {
		r = routed{}
		return d.openAppend(shopID, customer, p.UID, m, &r)
	}
	d.store.SupportAppend(open, func(ctx context.Context, tx SupportTx) (TxEnd, error) {
		r = routed{}
		err := d.reply(ctx, tx, p.UID, shopID, customer, m, &r)
		if err == nil {
			err = d.readForDelivery(ctx, tx, &r, false)
		}
		return r.end(), err
	}, func(err error) { d.finish(r, err, p.UID, done) })
	return nil
}

func (d *dispatcher) reply(ctx context.Context, tx SupportTx, agent, shopID, customer int64, m Message, r *routed) error {
	if _, err := tx.LockShop(ctx, shopID); err != nil {
		return err
	}
	t, ok, err := tx.ActiveTicket(ctx, shopID, customer)
	if err != nil {
		return err
	}
	if !ok {
		if t, err = tx.CreateTicket(ctx, Ticket{Shop: shopID, Customer: customer, Status: TicketQueued, CreatedAt: d.nowMillis()}); err != nil {
			return err
		}
	}
	r.ticket = t
	if t.Status == TicketQueued {
		if t, err = d.assign(ctx, tx, t, agent, r); err != nil {
			return err
		}
	}
	return d.appendTicket(ctx, tx, t, m, r)
}

// transfer gives t to the agent to (checked by the caller).
func (d *dispatcher) transfer(ctx context.Context, t Ticket, to int64) error {
	var r routed
	err := d.write(ctx, func(ctx context.Context, tx SupportTx) (TxEnd, error) {
		r = routed{}
		if _, err := tx.LockShop(ctx, t.Shop); err != nil {
			return Rollback, err
		}
		cur, err := tx.LockTicket(ctx, t.ID)
		if err != nil {
			return Rollback, err
		}
		switch {
		case cur.Status == TicketClosed:
			return Rollback, errorf(ErrConflict, "session %d is closed", t.ID)
		case cur.Agent == to:
			return Rollback, errorf(ErrInvalid, "session %d is already assigned to %d", t.ID, to)
		}
		if _, err = d.assign(ctx, tx, cur, to, &r); err != nil {
			return Rollback, err
		}
		return Commit, d.readForDelivery(ctx, tx, &r, false)
	}, func() { d.deliverRouted(r, 0) })
	if err != nil {
		return fmt.Errorf("transfer session %d: %w", t.ID, err)
	}
	return nil
}

// take gives the queued ticket t to agent (checked by the caller), or
// fails with ErrConflict if it is no longer queued.
func (d *dispatcher) take(ctx context.Context, t Ticket, agent int64) error {
	var r routed
	err := d.write(ctx, func(ctx context.Context, tx SupportTx) (TxEnd, error) {
		r = routed{}
		if _, err := tx.LockShop(ctx, t.Shop); err != nil {
			return Rollback, err
		}
		cur, err := tx.LockTicket(ctx, t.ID)
		if err != nil {
			return Rollback, err
		}
		if cur.Status != TicketQueued {
			return Rollback, errorf(ErrConflict, "session %d is no longer queued", t.ID)
		}
		if _, err = d.assign(ctx, tx, cur, agent, &r); err != nil {
			return Rollback, err
		}
		return Commit, d.readForDelivery(ctx, tx, &r, false)
	}, func() { d.deliverRouted(r, 0) })
	if err != nil {
		return fmt.Errorf("take session %d: %w", t.ID, err)
	}
	return nil
}

// close ends t; cs_closed goes to its customer and agent.
func (d *dispatcher) close(ctx context.Context, t Ticket) error {
	var r routed
	closed := false
	err := d.write(ctx, func(ctx context.Context, tx SupportTx) (TxEnd, error) {
		r, closed = routed{}, false
		cur, err := tx.LockTicket(ctx, t.ID)
		if err != nil || cur.Status == TicketClosed {
			return Rollback, err
		}
		r.dequeued = cur.Status == TicketQueued
		cur.Status, cur.ClosedAt = TicketClosed, d.nowMillis()
		r.ticket, closed = cur, true
		if err := tx.UpdateTicket(ctx, cur); err != nil {
			return Rollback, err
		}
		return Commit, d.readForDelivery(ctx, tx, &r, true)
	}, func() {
		if !closed {
			return
		}
		c := r.ticket
		targets := []string{topics.Inbox(c.Customer)}
		if c.Agent != 0 {
			targets = append(targets, topics.Inbox(c.Agent))
		}
		d.deliver(ticketEvent(wire.EventCSClosed, c, r.names), targets...)
		d.queueEvents(r)
	})
	if err != nil {
		return fmt.Errorf("close session %d: %w", t.ID, err)
	}
	return nil
}

// requeue puts an open ticket back in the queue and tells its agent.
func (d *dispatcher) requeue(ctx context.Context, t Ticket) error {
	var r routed
	requeued := false
	err := d.write(ctx, func(ctx context.Context, tx SupportTx) (TxEnd, error) {
		r, requeued = routed{}, false
		if _, err := tx.LockShop(ctx, t.Shop); err != nil {
			return Rollback, err
		}
		cur, err := tx.LockTicket(ctx, t.ID)
		if err != nil || cur.Agent != t.Agent || cur.Status != TicketOpen {
			return Rollback, err
		}
		cur.Agent, cur.Status = 0, TicketQueued
		r.ticket, r.enqueued, requeued = cur, true, true
		if err := tx.UpdateTicket(ctx, cur); err != nil {
			return Rollback, err
		}
		return Commit, d.readForDelivery(ctx, tx, &r, true)
	}, func() {
		if requeued {
			d.deliver(ticketEvent(wire.EventCSTransferred, r.ticket, r.names), topics.Inbox(t.Agent))
			d.queueEvents(r)
		}
	})
	if err != nil {
		return fmt.Errorf("requeue session %d: %w", t.ID, err)
	}
	return nil
}

// agentReachable drains, in the background, the queues of the shops uid is
// an agent of.
func (d *dispatcher) agentReachable(uid int64) {
	d.work.do("drain-agent:"+strconv.FormatInt(uid, 10), func(ctx context.Context) {
		d.drainAgentShops(ctx, uid)
	})
}

// drainAgentShops drains the queues of every shop uid is an agent of.
func (d *dispatcher) drainAgentShops(ctx context.Context, uid int64) {
	shops, err := d.store.AgentShops(ctx, uid)
	if err != nil {
		d.log.Error("drain queues: list shops", "uid", uid, "error", err)
		return
	}
	for _, shop := range shops {
		d.drain(ctx, shop)
	}
}

// drain assigns the shop's queued tickets, oldest first, by the routing
// rules, until none is left or nobody is available. Each assigned agent
// gets cs_assigned, then the ticket's messages it has not been sent, in
// seq order.
func (d *dispatcher) drain(ctx context.Context, shopID int64) {
	queued, err := d.store.Tickets(ctx, shopID, TicketQueued, 0)
	if err != nil {
		d.log.Error("drain queue", "shop", shopID, "error", err)
		return
	}
	for _, q := range queued {
		stop, err := d.drainOne(ctx, q)
		if err != nil {
			d.log.Error("drain queue", "shop", shopID, "session", q.ID, "error", err)
			return
		}
		if stop {
			return
		}
	}
}

// drainOne assigns one queued ticket if an agent is available. stop
// reports that nobody is.
func (d *dispatcher) drainOne(ctx context.Context, q Ticket) (stop bool, err error) {
	var r routed
	err = d.write(ctx, func(ctx context.Context, tx SupportTx) (TxEnd, error) {
		r, stop = routed{}, false
		if _, err := tx.LockShop(ctx, q.Shop); err != nil {
			return Rollback, err
		}
		t, err := tx.LockTicket(ctx, q.ID)
		if err != nil || t.Status != TicketQueued {
			return Rollback, err // assigned or closed meanwhile
		}
		agent, err := d.choose(ctx, tx, q.Shop, q.Customer, 0)
		if err != nil || agent == 0 {
			stop = err == nil
			return Rollback, err
		}
		if _, err = d.assign(ctx, tx, t, agent, &r); err != nil {
			return Rollback, err
		}
		return Commit, d.readForDelivery(ctx, tx, &r, false)
	}, func() {
		if r.assigned {
			d.deliverRouted(r, 0)
		}
	})
	return stop, err
}

// customerState tells a customer that has just subscribed to its inbox
// (a reload, a second device) where its active tickets stand: cs_queue
// with its place for a queued one, cs_assigned with its agent for an open
// one. It runs in the write pipeline, so it is in order with every change
// to those tickets.
func (d *dispatcher) customerState(uid int64) {
	type state struct {
		t     Ticket
		pos   int
		eta   int64
		names map[int64]string
	}
	var states []state
	d.store.SupportWrite(func(ctx context.Context, tx SupportTx) (TxEnd, error) {
		states = nil
		tickets, err := tx.CustomerTickets(ctx, uid)
		if err != nil {
			return Rollback, err
		}
		for _, t := range tickets {
			st := state{t: t}
			switch {
			case t.Status == TicketQueued:
				if st.pos, err = tx.QueuePosition(ctx, t); err != nil {
					return Rollback, err
				}
				if interval := d.assignmentInterval(ctx, t.Shop); interval > 0 {
					st.eta = (int64(st.pos)*interval + 999) / 1000
				}
			case t.Agent != 0:
				st.names = d.names(ctx, t.Customer, t.Agent)
			}
			states = append(states, st)
		}
		return Commit, nil // read only: nothing to keep, nothing to undo (see afterWrites)
	}, func(err error) {
		if err != nil {
			d.log.Warn("customer's sessions", "uid", uid, "error", err)
			return
		}
		for _, st := range states {
			if st.t.Status == TicketQueued {
				ev := wire.QueueEvent{Event: wire.EventCSQueue, Session: st.t.ID, Shop: st.t.Shop, Position: st.pos}
				if st.eta > 0 {
					eta := st.eta
					ev.ETA = &eta
				}
				d.deliver(ev, topics.Inbox(uid))
				continue
			}
			if st.names != nil {
				d.deliver(ticketEvent(wire.EventCSAssigned, st.t, st.names), topics.Inbox(uid))
			}
		}
	})
}

// queueEvents tells the shop's agents that r's ticket entered or left the
// queue (cs_queued, cs_dequeued), and has the queued customers told their
// new positions.
func (d *dispatcher) queueEvents(r routed) {
	if !r.enqueued && !r.dequeued {
		return
	}
	t := r.ticket
	inboxes := make([]string, 0, len(r.agents))
	for _, a := range r.agents {
		if d.live.Online(a.UID) {
			inboxes = append(inboxes, topics.Inbox(a.UID))
		}
	}
	if r.enqueued {
		d.deliver(wire.QueuedEvent{Event: wire.EventCSQueued, Session: t.ID, Shop: t.Shop, Customer: t.Customer,
			Conv: topics.ServiceConv(t.Shop, t.Customer), CreatedAt: t.CreatedAt}, inboxes...)
	} else {
		ev := wire.DequeuedEvent{Event: wire.EventCSDequeued, Session: t.ID, Shop: t.Shop}
		if t.Agent != 0 {
			agent := t.Agent
			ev.Agent = &agent
		}
		d.deliver(ev, inboxes...)
	}
	shop := t.Shop
	d.work.do("queue:"+strconv.FormatInt(shop, 10), func(ctx context.Context) { d.sendPositions(ctx, shop) })
}

// sendPositions tells each queued customer of the shop its position (1 is
// next) and an estimate of its wait, when the position changed since it
// was last told.
func (d *dispatcher) sendPositions(ctx context.Context, shop int64) {
	queued, err := d.store.Tickets(ctx, shop, TicketQueued, 0)
	if err != nil {
		d.log.Warn("queue positions", "shop", shop, "error", err)
		return
	}
	interval := d.assignmentInterval(ctx, shop)
	d.posMu.Lock()
	defer d.posMu.Unlock()
	told := d.positions[shop]
	now := make(map[int64]int, len(queued))
	for i, t := range queued {
		pos := i + 1
		now[t.ID] = pos
		if told[t.ID] == pos {
			continue
		}
		ev := wire.QueueEvent{Event: wire.EventCSQueue, Session: t.ID, Shop: shop, Position: pos}
		if interval > 0 {
			eta := (int64(pos)*interval + 999) / 1000
			ev.ETA = &eta
		}
		d.deliver(ev, topics.Inbox(t.Customer))
	}
	if d.positions == nil {
		d.positions = make(map[int64]map[int64]int)
	}
	if len(now) == 0 {
		delete(d.positions, shop)
	} else {
		d.positions[shop] = now
	}
}

// How recent assignments estimate a queue's wait.
const (
	etaSamples = 20
	etaWindow  = 2 * time.Hour
)

// assignmentInterval is the mean time between the shop's recent
// assignments of tickets that had waited, in milliseconds: how long each
// place in the queue takes. 0 when there are too few to tell.
func (d *dispatcher) assignmentInterval(ctx context.Context, shop int64) int64 {
	times, err := d.store.AssignmentTimes(ctx, shop, d.now().Add(-etaWindow).UnixMilli(), etaSamples)
	if err != nil {
		d.log.Warn("queue estimate", "shop", shop, "error", err)
		return 0
	}
	if len(times) < 2 {
		return 0
	}
	return max(1, (times[0]-times[len(times)-1])/int64(len(times)-1))
}
