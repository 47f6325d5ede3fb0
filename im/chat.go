package im

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

// Chat sends messages to every kind of conversation, and serves their
// history, the conversation list and read positions. Customer-service
// messages are routed by Support's dispatcher; room membership is Rooms'.
type Chat struct {
	*core
	store    MessageStore
	accounts *Accounts
	rooms    *Rooms
	support  *Support
	limiter  *limiter
	typing   *typingThrottle
}

// Done receives the result of a submitted message: the stored message,
// once it is stored and delivered, or why it was not.
type Done func(Message, error)

// PublishTopic handles an MQTT publish of payload by p to topic and waits
// for the result: see Submit.
func (ch *Chat) PublishTopic(ctx context.Context, p Principal, topic string, payload []byte) (Message, error) {
	return waitDone(ctx, func(done Done) { ch.Submit(ctx, p, topic, payload, done) })
}

// Submit handles an MQTT publish of payload by p to topic without waiting
// for it to be stored, so that a connection's publishes are pipelined. It
// checks that p may publish there and validates the message; a refusal
// is given to done at once, and nothing is stored. Otherwise the message
// is queued for storage, and done is called once it is stored and
// delivered (or failed), on the store's pipeline: done must not block.
//
// Over the per-user rate, Submit waits for its turn (PROTOCOL.md §9: an
// MQTT publisher is slowed down, not refused) as long as ctx allows.
// ctx bounds the checks, not the storing.
func (ch *Chat) Submit(ctx context.Context, p Principal, topic string, payload []byte, done Done) {
	if err := ch.submit(ctx, p, topic, payload, done); err != nil {
		done(Message{}, err)
	}
}

// submit is Submit; a refusal is returned, and done is then not called.
func (ch *Chat) submit(ctx context.Context, p Principal, topic string, payload []byte, done Done) error {
	if len(payload) > wire.MaxPayload {
		return errorf(ErrTooLarge, "payload is %d bytes, over the limit of %d", len(payload), wire.MaxPayload)
	}
	route, err := topics.Parse(topic)
	if err != nil {
		return errorf(ErrForbidden, "publishing to %q is not allowed", truncate(topic, 128))
	}
	if route.Kind == topics.KindTyping {
		if err := ch.Typing(ctx, p, payload); err != nil {
			return err
		}
		done(Message{}, nil)
		return nil
	}
	if p.IsGuest() && route.Kind != topics.KindShop {
		return errGuest()
	}
	if err := ch.limiter.wait(ctx, p.UID); err != nil {
		return err
	}
	msg, err := decodePublish(payload)
	if err != nil {
		return err
	}
	switch route.Kind {
	case topics.KindInbox:
		return ch.sendSingle(ctx, p, route.UID, msg, done)
	case topics.KindRoom:
		return ch.sendRoom(p, route.Room, msg, done)
	case topics.KindShop:
		return ch.support.dispatch.customerMessage(ctx, p, route.Shop, msg, done)
	case topics.KindShopReply:
		return ch.support.dispatch.agentReply(ctx, p, route.Shop, route.Customer, msg, done)
	case topics.KindBroadcast:
		return ch.sendBroadcast(p, msg, done)
	}
	return errorf(ErrForbidden, "publishing to %q is not allowed", topic)
}

// waitDone calls start with a Done and waits for its result, or for ctx.
func waitDone(ctx context.Context, start func(Done)) (Message, error) {
	type result struct {
		m   Message
		err error
	}
	ch := make(chan result, 1)
	start(func(m Message, err error) { ch <- result{m, err} })
	select {
	case r := <-ch:
		return r.m, r.err
	case <-ctx.Done():
		return Message{}, ctx.Err()
	}
}

// Send stores msg from p in the conversation conv and delivers it, with the
// same checks and effects as the MQTT publish that maps to conv
// (POST /conversations/{conv}/messages), but for the rate: over it, Send
// is refused at once.
func (ch *Chat) Send(ctx context.Context, p Principal, conv string, msg wire.Publish) (Message, error) {
	if !ch.limiter.allow(p.UID) {
		return Message{}, errorf(ErrRateLimited, "too many messages: slow down")
	}
	return waitDone(ctx, func(done Done) {
		if err := ch.send(ctx, p, conv, msg, done); err != nil {
			done(Message{}, err)
		}
	})
}

func (ch *Chat) send(ctx context.Context, p Principal, conv string, msg wire.Publish, done Done) error {
	c, err := parseConv(conv)
	if err != nil {
		return err
	}
	if p.IsGuest() && (c.Kind != topics.ConvService || c.Customer != p.UID) {
		return errGuest()
	}
	switch c.Kind {
	case topics.ConvSingle:
		other := c.Other(p.UID)
		if other == 0 {
			return errorf(ErrForbidden, "you are not a participant of %s", conv)
		}
		return ch.sendSingle(ctx, p, other, msg, done)
	case topics.ConvRoom:
		return ch.sendRoom(p, c.Room, msg, done)
	case topics.ConvService:
		if p.UID == c.Customer {
			return ch.support.dispatch.customerMessage(ctx, p, c.Shop, msg, done)
		}
		return ch.support.dispatch.agentReply(ctx, p, c.Shop, c.Customer, msg, done)
	case topics.ConvSys:
		return ch.sendBroadcast(p, msg, done)
	}
	return errorf(ErrForbidden, "you may not post to %s", conv)
}

// Broadcast stores and delivers a text broadcast from an admin
// (POST /broadcasts).
func (ch *Chat) Broadcast(ctx context.Context, p Principal, text string) (Message, error) {
	body, _ := json.Marshal(text)
	return ch.Send(ctx, p, topics.SysConv, wire.Publish{Type: wire.TypeText, Body: body})
}

// errGuest refuses a guest what only users may do (PROTOCOL.md §6).
func errGuest() error { return errorf(ErrForbidden, "guests may only talk to shops") }

func parseConv(conv string) (topics.Conv, error) {
	c, err := topics.ParseConv(conv)
	if err != nil {
		return c, errorf(ErrInvalid, "%q is not a conversation id (u:{a}:{b} with a<b, r:{room}, s:{shop}:{customer} or sys)", truncate(conv, 64))
	}
	return c, nil
}

// The send functions below check and validate a message, and return a
// refusal at once; otherwise they queue it, and done gets the result.

// sendSingle queues a single chat message from p to the user to, to be
// delivered to both inboxes (the sender's copy is its receipt).
func (ch *Chat) sendSingle(ctx context.Context, p Principal, to int64, msg wire.Publish, done Done) error {
	if to == p.UID {
		return errorf(ErrInvalid, "you cannot send a message to yourself")
	}
	msg, err := validatePublish(msg)
	if err != nil {
		return err
	}
	if err := ch.accounts.notGuest(ctx, to); err != nil {
		return err
	}
	ch.post(p, topics.SingleConv(p.UID, to), msg, done, topics.Inbox(to), topics.Inbox(p.UID))
	return nil
}

// sendRoom queues a group message from p in room, to be delivered to the
// room topic, where every subscribed member (the sender's devices
// included, as its receipt) gets it once.
func (ch *Chat) sendRoom(p Principal, room int64, msg wire.Publish, done Done) error {
	if err := ch.rooms.canRead(p, room); err != nil {
		return err
	}
	msg, err := validatePublish(msg)
	if err != nil {
		return err
	}
	ch.post(p, topics.RoomConv(room), msg, done, topics.Room(room))
	return nil
}

// sendBroadcast queues a system broadcast, to be delivered to every
// subscriber of the broadcast topic. Only admins may.
func (ch *Chat) sendBroadcast(p Principal, msg wire.Publish, done Done) error {
	if !p.IsAdmin() {
		return errorf(ErrForbidden, "only an admin may broadcast")
	}
	msg, err := validatePublish(msg)
	if err != nil {
		return err
	}
	ch.post(p, topics.SysConv, msg, done, topics.Broadcast)
	return nil
}

// post queues a validated message from p in conv; once it is stored, its
// envelope is delivered to targets and done is called. The store answers
// in the order of its writes, so subscribers get each conversation's
// messages in seq order. A re-sent message (same cid) is stored and
// delivered once: its sender alone gets the first copy's envelope again.
func (ch *Chat) post(p Principal, conv string, msg wire.Publish, done Done, targets ...string) {
	m := Message{ID: ch.newID(), Conv: conv, From: p.UID, Type: msg.Type, Body: msg.Body, CID: msg.CID, TS: ch.nowMillis()}
	ch.store.Append(m, func(stored Message, dup bool, err error) {
		if err != nil {
			done(Message{}, fmt.Errorf("store message in %s: %w", conv, err))
			return
		}
		if dup {
			targets = []string{topics.Inbox(p.UID)}
		}
		ch.deliver(stored.Envelope(), targets...)
		done(stored, nil)
	})
}

// canRead returns nil if p is a participant of c: ErrForbidden if not,
// ErrNotFound if the conversation's other party (user, room, shop) does not
// exist.
func (ch *Chat) canRead(ctx context.Context, p Principal, c topics.Conv) error {
	if p.IsGuest() && (c.Kind != topics.ConvService || c.Customer != p.UID) {
		return errGuest()
	}
	switch c.Kind {
	case topics.ConvSys:
		return nil
	case topics.ConvSingle:
		other := c.Other(p.UID)
		if other == 0 {
			return errorf(ErrForbidden, "you are not a participant of %s", c)
		}
		return ch.accounts.exists(ctx, other)
	case topics.ConvRoom:
		return ch.rooms.canRead(p, c.Room)
	case topics.ConvService:
		return ch.support.canRead(ctx, p, c)
	}
	return errorf(ErrForbidden, "you are not a participant of %s", c)
}

// History returns a page of conv's history for p, in ascending seq.
func (ch *Chat) History(ctx context.Context, p Principal, conv string, q HistoryQuery) ([]Message, error) {
	c, err := parseConv(conv)
	if err != nil {
		return nil, err
	}
	switch {
	case q.AfterSeq < 0 || q.BeforeSeq < 0:
		return nil, errorf(ErrInvalid, "after_seq and before_seq must not be negative")
	case q.Limit < 0:
		return nil, errorf(ErrInvalid, "limit must be positive")
	case q.Limit == 0:
		q.Limit = wire.DefHistory
	case q.Limit > wire.MaxHistory:
		q.Limit = wire.MaxHistory
	}
	if err := ch.canRead(ctx, p, c); err != nil {
		return nil, err
	}
	if q.BeforeSeq > 0 && q.AfterSeq >= q.BeforeSeq-1 {
		return []Message{}, nil
	}
	msgs, err := ch.store.History(ctx, conv, q)
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", conv, err)
	}
	return msgs, nil
}

// Conversations lists p's conversations, newest activity first.
func (ch *Chat) Conversations(ctx context.Context, p Principal) ([]ConversationSummary, error) {
	rows, err := ch.store.Conversations(ctx, p.UID)
	if err != nil {
		return nil, fmt.Errorf("conversations of %d: %w", p.UID, err)
	}
	out := rows[:0]
	for _, r := range rows {
		if p.IsGuest() && r.Kind != topics.ConvService { // a guest's own service chats only
			continue
		}
		r.ReadSeq = min(r.ReadSeq, r.LastSeq)
		out = append(out, r)
	}
	return out, nil
}

// MarkRead raises p's read position in conv to seq (clamped to the last
// seq) and tells the other side of a single chat or service conversation
// with a read event.
func (ch *Chat) MarkRead(ctx context.Context, p Principal, conv string, seq int64) (ReadPosition, error) {
	c, err := parseConv(conv)
	if err != nil {
		return ReadPosition{}, err
	}
	if seq < 0 {
		return ReadPosition{}, errorf(ErrInvalid, "seq must not be negative")
	}
	if err := ch.canRead(ctx, p, c); err != nil {
		return ReadPosition{}, err
	}
	pos, moved, err := ch.store.MarkRead(ctx, conv, p.UID, seq)
	if err != nil {
		return ReadPosition{}, fmt.Errorf("mark %s read: %w", conv, err)
	}
	pos.Conv = conv
	if moved {
		// The reader's other devices keep their unread counts too.
		ev := wire.ReadEvent{Event: wire.EventRead, Conv: conv, UID: p.UID, Seq: pos.ReadSeq}
		ch.deliver(ev, topics.Inbox(p.UID))
		switch c.Kind {
		case topics.ConvSingle:
			ch.deliver(ev, topics.Inbox(c.Other(p.UID)))
		case topics.ConvService:
			ch.support.readEvent(ctx, p, c, ev)
		}
	}
	return pos, nil
}

// Typing forwards a typing notice of p ({"conv":…} published to
// im/typing) to the others of the conversation: on their inboxes (single
// chats; service conversations: the customer and the ticket's agent) or on
// the room topic. Only participants may; at most one notice per second
// per user and conversation is forwarded, the rest are dropped silently.
// Nothing is stored.
func (ch *Chat) Typing(ctx context.Context, p Principal, payload []byte) error {
	var t wire.Typing
	if err := json.Unmarshal(payload, &t); err != nil {
		return errorf(ErrInvalid, "a typing notice is a JSON object {\"conv\":…}: %s", jsonProblem(err))
	}
	c, err := parseConv(t.Conv)
	if err != nil {
		return err
	}
	if !ch.typing.allow(p.UID, t.Conv) {
		return nil
	}
	var targets []string
	switch c.Kind {
	case topics.ConvSingle:
		if err := ch.canRead(ctx, p, c); err != nil {
			return err
		}
		targets = []string{topics.Inbox(c.Other(p.UID))}
	case topics.ConvRoom:
		if err := ch.rooms.canRead(p, c.Room); err != nil {
			return err
		}
		targets = []string{topics.Room(c.Room)}
	case topics.ConvService:
		if err := ch.support.canRead(ctx, p, c); err != nil {
			return err
		}
		if targets, err = ch.support.typingTargets(ctx, p, c); err != nil {
			return fmt.Errorf("typing in %s: %w", t.Conv, err)
		}
	default:
		return errorf(ErrForbidden, "nobody types in %s", t.Conv)
	}
	ch.deliver(wire.TypingEvent{Event: wire.EventTyping, Conv: t.Conv, UID: p.UID}, targets...)
	return nil
}
