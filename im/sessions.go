package im

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

// Sessions keeps what persistent MQTT sessions have received, so that one
// that reconnects, to this server or to a restarted one, gets from the
// store everything it missed (PROTOCOL.md §9): the messages stored for its
// subscriptions while it was away and those it had not acknowledged, in
// seq order per conversation, with a resync event first where more than
// ResumeMax are missing. The broker's side (tracking acknowledgements,
// holding live deliveries back during the catch-up) is the hook's.
type Sessions struct {
	*core
	store     SessionStore
	rooms     *Rooms
	resumeMax int
	// barrier runs a function in the order of the store's writes.
	barrier func(fn func())
}

// MQTTSession is a persistent MQTT session as the store keeps it.
type MQTTSession struct {
	ClientID      string
	UID           int64
	Username      string
	Version       byte   // MQTT protocol version
	Expiry        uint32 // MQTT 5 session expiry interval, seconds
	Subscriptions []MQTTSubscription
}

// MQTTSubscription is one of a session's subscriptions.
type MQTTSubscription struct {
	Filter string
	QoS    byte
}

// Cursor is how far a session has received a conversation: every message
// up to Acked was acknowledged (or is older than its subscription); Sent
// is the last one sent to it.
type Cursor struct{ Acked, Sent int64 }

// Cover names the conversations a subscription covers: a user's inbox (its
// single chats, its own service conversations, and those of the sessions
// it was the agent of), or one conversation (a room's, sys).
type Cover struct {
	Inbox int64
	Conv  string
}

// ConvHead is a conversation covered by a subscription, with its last seq.
// With Agent set, only the messages stored for that agent count (an
// agent's inbox gets the messages of its own sessions).
type ConvHead struct {
	Conv    string
	LastSeq int64
	Agent   int64
}

// Gap is a conversation in which a session is behind: it gets the
// messages after After, up to Last, on Topic. Resync, when set, is the
// event to send first: more than ResumeMax were missing, and only the
// newest are sent. Messages at or below DupUpTo were sent before (a resend
// is marked DUP).
type Gap struct {
	Topic   string
	Conv    string
	After   int64
	Last    int64
	Agent   int64
	DupUpTo int64
	Resync  []byte
}

// Delivery is one message of a gap, ready to send.
type Delivery struct {
	Topic   string
	Payload []byte
	Conv    string
	Seq     int64
	Dup     bool
}

// DefaultResumeMax is the default of Options.ResumeMax.
const DefaultResumeMax = 1000

// cover returns the conversations filter covers, if it covers stored
// messages that p may receive.
func (s *Sessions) cover(p Principal, filter string) (Cover, bool) {
	r, err := topics.Parse(filter)
	if err != nil {
		return Cover{}, false
	}
	switch r.Kind {
	case topics.KindInbox:
		return Cover{Inbox: r.UID}, r.UID == p.UID
	case topics.KindRoom:
		return Cover{Conv: topics.RoomConv(r.Room)}, s.rooms.mayReceive(p, r.Room)
	case topics.KindBroadcast:
		return Cover{Conv: topics.SysConv}, true
	}
	return Cover{}, false
}

// Save records a persistent session (not its subscriptions).
func (s *Sessions) Save(ctx context.Context, m MQTTSession) error {
	return s.store.SaveSession(ctx, m, s.nowMillis())
}

// Forget deletes a session with its subscriptions and cursors.
func (s *Sessions) Forget(ctx context.Context, clientID string) error {
	return s.store.DeleteSession(ctx, clientID)
}

// All lists the persistent sessions with their subscriptions.
func (s *Sessions) All(ctx context.Context) ([]MQTTSession, error) { return s.store.MQTTSessions(ctx) }

// Subscribe records a subscription of a session of p. A new one (fresh)
// starts at the last message of every conversation it covers, so that
// what was stored before it is not "missed"; a SUBSCRIBE repeating one the
// session has changes nothing else (a client that subscribes again on
// every connection would otherwise skip what it missed).
func (s *Sessions) Subscribe(ctx context.Context, clientID string, p Principal, sub MQTTSubscription, fresh bool) error {
	c, ok := s.cover(p, sub.Filter)
	if !ok || !fresh {
		c = Cover{}
	}
	return s.store.SaveSubscription(ctx, clientID, sub, c)
}

// Unsubscribe forgets a session's subscription.
func (s *Sessions) Unsubscribe(ctx context.Context, clientID, filter string) error {
	return s.store.DeleteSubscription(ctx, clientID, filter)
}

// SaveCursors records how far a session has received.
func (s *Sessions) SaveCursors(ctx context.Context, clientID string, c map[string]Cursor) error {
	return s.store.SaveCursors(ctx, clientID, c)
}

// Cursors returns how far a session has received, as last recorded.
func (s *Sessions) Cursors(ctx context.Context, clientID string) (map[string]Cursor, error) {
	return s.store.Cursors(ctx, clientID)
}

// Behind lists the conversations, covered by the QoS 1 and 2 subscriptions
// subs of a session of p, in which it is behind cursors (as recorded, or
// as this connection has sent since: see Cursors). Subscriptions p may no
// longer receive (a room it left) count for nothing.
func (s *Sessions) Behind(ctx context.Context, p Principal, subs []MQTTSubscription, cursors map[string]Cursor) ([]Gap, error) {
	var gaps []Gap
	seen := map[string]bool{}
	for _, sub := range subs {
		c, ok := s.cover(p, sub.Filter)
		if !ok || sub.QoS == 0 {
			continue
		}
		heads, err := s.store.Covered(ctx, c)
		if err != nil {
			return nil, err
		}
		for _, h := range heads {
			if seen[h.Conv] {
				continue
			}
			seen[h.Conv] = true
			cur := cursors[h.Conv] // none: the conversation began after the session's subscriptions
			if h.LastSeq <= cur.Acked {
				continue
			}
			g := Gap{Topic: sub.Filter, Conv: h.Conv, After: cur.Acked, Last: h.LastSeq, Agent: h.Agent, DupUpTo: cur.Sent}
			if h.LastSeq-cur.Acked > int64(s.resumeMax) {
				g.Resync, _ = json.Marshal(wire.ResyncEvent{Event: wire.EventResync, Conv: h.Conv, AfterSeq: cur.Acked})
				g.After = h.LastSeq - int64(s.resumeMax)
			}
			gaps = append(gaps, g)
		}
	}
	return gaps, nil
}

// Page returns up to limit of a gap's messages after after, in seq order,
// as deliveries.
func (s *Sessions) Page(ctx context.Context, g Gap, after int64, limit int) ([]Delivery, error) {
	msgs, err := s.store.MessagesAfter(ctx, g.Conv, after, g.Agent, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Delivery, 0, len(msgs))
	for _, m := range msgs {
		if m.Seq > g.Last {
			break // stored since Behind: live delivery has it
		}
		b, err := json.Marshal(m.Envelope())
		if err != nil {
			return nil, fmt.Errorf("encode %s/%d: %w", m.Conv, m.Seq, err)
		}
		out = append(out, Delivery{Topic: g.Topic, Payload: b, Conv: m.Conv, Seq: m.Seq, Dup: m.Seq <= g.DupUpTo})
	}
	return out, nil
}

// AfterWrites calls fn once every write queued in the store so far is
// stored and delivered, in the order of the deliveries: a message stored
// after fn's call is delivered after fn returns. fn must not block.
func (s *Sessions) AfterWrites(fn func()) { s.barrier(fn) }
