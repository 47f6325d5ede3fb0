package im

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

// errNeedsRouting ends the fast path's transaction: the session must be
// (re)assigned under the shop lock.
var errNeedsRouting = errors.New("session needs routing")

// errDuplicate rolls back a transaction whose message was already stored
// (same sender, conversation and cid).
var errDuplicate = errors.New("duplicate message")

// routed is what a customer-service transaction did, to be delivered after
// it commits.
type routed struct {
	session  Session
	prev     int64     // the session's agent before, if it changed
	assigned bool      // the session got a new agent
	backlog  []Message // the session's messages the new agent has not been sent
	msgs     []Message // stored in this transaction, in seq order
	dup      *Message  // the earlier copy of a re-sent message
}

// deliverRouted sends a customer-service transaction's results: session
// events, the new agent's backlog, then the new messages, to the customer
// and the agent (and echo is the sender's inbox, when it is neither).
func (s *Service) deliverRouted(r routed, echo int64) {
	sess := r.session
	if r.dup != nil {
		s.deliver(r.dup.Envelope(), topics.Inbox(r.dup.From))
		return
	}
	if r.assigned {
		if r.prev != 0 && r.prev != sess.Agent {
			s.deliver(sessionEvent(wire.EventCSTransferred, sess), topics.Inbox(r.prev), topics.Inbox(sess.Customer))
		}
		if sess.Agent != 0 {
			s.deliver(sessionEvent(wire.EventCSAssigned, sess), topics.Inbox(sess.Agent), topics.Inbox(sess.Customer))
			for _, m := range r.backlog {
				s.deliver(m.Envelope(), topics.Inbox(sess.Agent))
			}
		}
	}
	targets := []string{topics.Inbox(sess.Customer)}
	if sess.Agent != 0 {
		targets = append(targets, topics.Inbox(sess.Agent))
	}
	if echo != 0 && echo != sess.Customer && echo != sess.Agent {
		targets = append(targets, topics.Inbox(echo))
	}
	for _, m := range r.msgs {
		s.deliver(m.Envelope(), targets...)
	}
}

func sessionEvent(name string, sess Session) wire.SessionEvent {
	return wire.SessionEvent{Event: name, Session: sess.ID, Shop: sess.Shop, Customer: sess.Customer, Agent: sess.Agent,
		Conv: topics.ServiceConv(sess.Shop, sess.Customer)}
}

// available reports whether an agent may be given sessions: reachable over
// MQTT and not away.
func (s *Service) available(a Agent) bool { return a.Status != StatusAway && s.reachable(a.UID) }

// chooseAgent applies routing rules 2 and 3 (PROTOCOL.md §5): the agent
// who last served the customer, if available; else the available agent
// with the fewest open sessions, ties going to the one assigned least
// recently. It returns 0 when nobody is available (rule 4: queue).
func (s *Service) chooseAgent(ctx context.Context, tx ServiceTx, shop, customer int64) (int64, error) {
	agents, err := tx.Agents(ctx, shop)
	if err != nil {
		return 0, err
	}
	last, err := tx.LastAgent(ctx, shop, customer)
	if err != nil {
		return 0, err
	}
	var best *Agent
	for i := range agents {
		a := &agents[i]
		if a.UID == customer || !s.available(*a) {
			continue
		}
		if a.UID == last {
			return a.UID, nil
		}
		if best == nil || a.OpenSessions < best.OpenSessions ||
			a.OpenSessions == best.OpenSessions && (a.LastAssignedAt < best.LastAssignedAt ||
				a.LastAssignedAt == best.LastAssignedAt && a.UID < best.UID) {
			best = a
		}
	}
	if best == nil {
		return 0, nil
	}
	return best.UID, nil
}

// currentAgentAvailable is rule 1: the session's agent is still an agent
// of the shop, reachable and not away.
func (s *Service) currentAgentAvailable(ctx context.Context, tx ServiceTx, sess Session) (bool, error) {
	if sess.Agent == 0 || sess.Status != SessionOpen || !s.reachable(sess.Agent) {
		return false, nil
	}
	status, isAgent, err := tx.AgentStatus(ctx, sess.Shop, sess.Agent)
	return isAgent && status != StatusAway, err
}

// assign gives sess to agent (0: back to the queue) inside tx, and fills r.
func (s *Service) assign(ctx context.Context, tx ServiceTx, sess Session, agent int64, r *routed) (Session, error) {
	r.prev, r.assigned = sess.Agent, agent != 0
	now := s.nowMillis()
	sess.Agent = agent
	if agent == 0 {
		sess.Status = SessionQueued
	} else {
		sess.Status, sess.AssignedAt = SessionOpen, now
		if err := tx.MarkAssigned(ctx, sess.Shop, agent, now); err != nil {
			return sess, err
		}
	}
	if err := tx.UpdateSession(ctx, sess); err != nil {
		return sess, err
	}
	if agent != 0 {
		backlog, err := tx.Unseen(ctx, sess.ID, agent)
		if err != nil {
			return sess, err
		}
		r.backlog = backlog
	}
	r.session = sess
	return sess, nil
}

// appendService stores m in sess's conversation with the session's agent,
// and records it in r. A duplicate ends the transaction with errDuplicate.
func (s *Service) appendService(ctx context.Context, tx ServiceTx, sess Session, m Message, r *routed) error {
	m.ID, m.TS = s.newID(), s.nowMillis()
	m.Conv = topics.ServiceConv(sess.Shop, sess.Customer)
	m.Session, m.Agent = sess.ID, sess.Agent
	stored, dup, err := tx.Append(ctx, m)
	if err != nil {
		return err
	}
	if dup {
		r.dup = &stored
		return errDuplicate
	}
	r.msgs = append(r.msgs, stored)
	return nil
}

// autoReply stores a server-made text message in the session.
func (s *Service) autoReply(ctx context.Context, tx ServiceTx, sess Session, text string, r *routed) error {
	body, err := jsonString(text)
	if err != nil {
		return err
	}
	return s.appendService(ctx, tx, sess, Message{From: 0, Type: wire.TypeText, Body: body, Auto: true}, r)
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

// sendToShop handles a customer's message to a shop (im/s/{shop}): it joins
// the customer's active session or opens one, routes it (PROTOCOL.md §5),
// stores it with the automatic replies it triggers, and delivers it.
func (s *Service) sendToShop(ctx context.Context, p Principal, shopID int64, msg wire.Publish) (wire.Envelope, error) {
	msg, err := validatePublish(msg)
	if err != nil {
		return wire.Envelope{}, err
	}
	shop, err := s.shop(ctx, shopID)
	if err != nil {
		return wire.Envelope{}, err
	}
	if isAgent, err := s.store.IsAgent(ctx, shopID, p.UID); err != nil {
		return wire.Envelope{}, fmt.Errorf("check agent: %w", err)
	} else if isAgent {
		return wire.Envelope{}, errorf(ErrForbidden, "you are an agent of shop %d: reply to customers on im/s/%d/u/{customer_uid}", shopID, shopID)
	}
	defer s.locks.lock(topics.ServiceConv(shopID, p.UID))()

	customerMsg := Message{From: p.UID, Type: msg.Type, Body: msg.Body, CID: msg.CID}
	keyword := keywordReply(shop, msg)
	var r routed
	// Fast path: the session's agent is still available (rule 1). No shop
	// lock: messages of different customers of one shop do not queue. A
	// read first spares new sessions a write transaction that could only
	// fail.
	err = errNeedsRouting
	if cur, ok, rerr := s.store.CurrentSession(ctx, shopID, p.UID); rerr != nil {
		return wire.Envelope{}, fmt.Errorf("customer service: %w", rerr)
	} else if ok && cur.Status == SessionOpen && s.reachable(cur.Agent) {
		err = s.store.InServiceTx(ctx, func(tx ServiceTx) error {
			r = routed{}
			return s.appendToAssigned(ctx, tx, shopID, p.UID, customerMsg, keyword, &r)
		})
	}
	if errors.Is(err, errNeedsRouting) {
		err = s.store.InServiceTx(ctx, func(tx ServiceTx) error {
			r = routed{}
			return s.routeCustomerMessage(ctx, tx, shopID, p.UID, customerMsg, keyword, &r)
		})
	}
	return s.finishService(r, err, p.UID)
}

// appendToAssigned stores a customer's message in its open session when
// the session's agent is still available (rule 1), with its keyword reply;
// otherwise it returns errNeedsRouting.
func (s *Service) appendToAssigned(ctx context.Context, tx ServiceTx, shopID, customer int64, m Message, keyword string, r *routed) error {
	sess, ok, err := tx.ActiveSession(ctx, shopID, customer)
	if err != nil {
		return err
	}
	if !ok {
		return errNeedsRouting
	}
	if ok, err := s.currentAgentAvailable(ctx, tx, sess); err != nil {
		return err
	} else if !ok {
		return errNeedsRouting
	}
	r.session = sess
	if err := s.appendService(ctx, tx, sess, m, r); err != nil {
		return err
	}
	if keyword != "" {
		return s.autoReply(ctx, tx, sess, keyword, r)
	}
	return nil
}

// routeCustomerMessage is the full routing of a customer's message, under
// the shop lock.
func (s *Service) routeCustomerMessage(ctx context.Context, tx ServiceTx, shopID, customer int64, m Message, keyword string, r *routed) error {
	// The shop lock serialises routing per shop. Presence is read after
	// it: an agent coming online either drains after this transaction
	// commits (and finds the session queued) or before it starts (and this
	// transaction sees the agent available). Nothing stays queued behind an
	// available agent.
	shop, err := tx.LockShop(ctx, shopID)
	if err != nil {
		return err
	}
	sess, ok, err := tx.ActiveSession(ctx, shopID, customer)
	if err != nil {
		return err
	}
	opened := !ok
	agent := int64(0)
	if ok, err := s.currentAgentAvailable(ctx, tx, sess); err != nil {
		return err
	} else if ok {
		agent = sess.Agent // rule 1
	} else if agent, err = s.chooseAgent(ctx, tx, shopID, customer); err != nil { // rules 2, 3
		return err
	}
	if opened {
		// A new session is created with its agent: it has no backlog.
		now := s.nowMillis()
		sess = Session{Shop: shopID, Customer: customer, Agent: agent, Status: SessionQueued, CreatedAt: now}
		if agent != 0 {
			sess.Status, sess.AssignedAt = SessionOpen, now
			if err := tx.MarkAssigned(ctx, shopID, agent, now); err != nil {
				return err
			}
		}
		if sess, err = tx.CreateSession(ctx, sess); err != nil {
			return err
		}
		r.assigned = agent != 0
	} else if agent != sess.Agent || (agent == 0 && sess.Status != SessionQueued) {
		if sess, err = s.assign(ctx, tx, sess, agent, r); err != nil {
			return err
		}
	}
	r.session = sess
	if err := s.appendService(ctx, tx, sess, m, r); err != nil {
		return err
	}
	if opened && shop.WelcomeMessage != "" {
		if err := s.autoReply(ctx, tx, sess, shop.WelcomeMessage, r); err != nil {
			return err
		}
	}
	if keyword != "" {
		if err := s.autoReply(ctx, tx, sess, keyword, r); err != nil {
			return err
		}
	}
	if sess.Status == SessionQueued && !sess.OfflineNotified && shop.OfflineMessage != "" { // rule 4
		if err := s.autoReply(ctx, tx, sess, shop.OfflineMessage, r); err != nil {
			return err
		}
		sess.OfflineNotified = true
		r.session = sess
		return tx.UpdateSession(ctx, sess)
	}
	return nil
}

// finishService delivers a committed customer-service transaction, or
// turns its error into the caller's answer.
func (s *Service) finishService(r routed, err error, echo int64) (wire.Envelope, error) {
	switch {
	case errors.Is(err, errDuplicate):
		s.deliverRouted(r, echo)
		return r.dup.Envelope(), nil
	case err != nil:
		return wire.Envelope{}, fmt.Errorf("customer service: %w", err)
	}
	s.deliverRouted(r, echo)
	if len(r.msgs) == 0 {
		return wire.Envelope{}, fmt.Errorf("customer service: nothing stored")
	}
	return r.msgs[0].Envelope(), nil
}

// sendAgentReply handles an agent's reply to a customer
// (im/s/{shop}/u/{customer}). An agent replying to a queued session takes
// it; replying to a customer without an active session opens one, assigned
// to the agent.
func (s *Service) sendAgentReply(ctx context.Context, p Principal, shopID, customer int64, msg wire.Publish) (wire.Envelope, error) {
	msg, err := validatePublish(msg)
	if err != nil {
		return wire.Envelope{}, err
	}
	if _, err := s.shop(ctx, shopID); err != nil {
		return wire.Envelope{}, err
	}
	if isAgent, err := s.store.IsAgent(ctx, shopID, p.UID); err != nil {
		return wire.Envelope{}, fmt.Errorf("check agent: %w", err)
	} else if !isAgent {
		return wire.Envelope{}, errorf(ErrForbidden, "only agents of shop %d may reply to its customers", shopID)
	}
	if customer == p.UID {
		return wire.Envelope{}, errorf(ErrInvalid, "you cannot reply to yourself")
	}
	if err := s.userExists(ctx, customer); err != nil {
		return wire.Envelope{}, err
	}
	defer s.locks.lock(topics.ServiceConv(shopID, customer))()
	var r routed
	err = s.store.InServiceTx(ctx, func(tx ServiceTx) error {
		r = routed{}
		if _, err := tx.LockShop(ctx, shopID); err != nil {
			return err
		}
		sess, ok, err := tx.ActiveSession(ctx, shopID, customer)
		if err != nil {
			return err
		}
		if !ok {
			if sess, err = tx.CreateSession(ctx, Session{Shop: shopID, Customer: customer, Status: SessionQueued, CreatedAt: s.nowMillis()}); err != nil {
				return err
			}
		}
		r.session = sess
		if sess.Status == SessionQueued {
			if sess, err = s.assign(ctx, tx, sess, p.UID, &r); err != nil {
				return err
			}
		}
		return s.appendService(ctx, tx, sess, Message{From: p.UID, Type: msg.Type, Body: msg.Body, CID: msg.CID}, &r)
	})
	return s.finishService(r, err, p.UID)
}

// sendService handles POST /conversations/s:{shop}:{customer}/messages: the
// customer writes to the shop, an agent replies.
func (s *Service) sendService(ctx context.Context, p Principal, c topics.Conv, msg wire.Publish) (wire.Envelope, error) {
	if p.UID == c.Customer {
		return s.sendToShop(ctx, p, c.Shop, msg)
	}
	return s.sendAgentReply(ctx, p, c.Shop, c.Customer, msg)
}

// drainAgentShops drains the queues of every shop uid is an agent of.
func (s *Service) drainAgentShops(ctx context.Context, uid int64) {
	shops, err := s.store.AgentShops(ctx, uid)
	if err != nil {
		s.log.Error("drain queues: list shops", "uid", uid, "error", err)
		return
	}
	for _, shop := range shops {
		s.drain(ctx, shop)
	}
}

// drain assigns the shop's queued sessions, oldest first, by the routing
// rules, until none is left or nobody is available. Each assigned agent
// gets cs_assigned, then the session's messages it has not been sent, in
// seq order.
func (s *Service) drain(ctx context.Context, shopID int64) {
	queued, err := s.store.QueuedSessions(ctx, shopID)
	if err != nil {
		s.log.Error("drain queue", "shop", shopID, "error", err)
		return
	}
	for _, q := range queued {
		stop, err := s.drainOne(ctx, q)
		if err != nil {
			s.log.Error("drain queue", "shop", shopID, "session", q.ID, "error", err)
			return
		}
		if stop {
			return
		}
	}
}

// drainOne assigns one queued session if an agent is available. stop
// reports that nobody is.
func (s *Service) drainOne(ctx context.Context, q Session) (stop bool, err error) {
	defer s.locks.lock(topics.ServiceConv(q.Shop, q.Customer))()
	var r routed
	err = s.store.InServiceTx(ctx, func(tx ServiceTx) error {
		r, stop = routed{}, false
		if _, err := tx.LockShop(ctx, q.Shop); err != nil {
			return err
		}
		sess, err := tx.LockSession(ctx, q.ID)
		if err != nil || sess.Status != SessionQueued {
			return err // assigned or closed meanwhile
		}
		agent, err := s.chooseAgent(ctx, tx, q.Shop, q.Customer)
		if err != nil {
			return err
		}
		if agent == 0 {
			stop = true
			return nil
		}
		_, err = s.assign(ctx, tx, sess, agent, &r)
		return err
	})
	if err == nil && r.assigned {
		s.deliverRouted(r, 0)
	}
	return stop, err
}
