package hooks

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imserver/imserver/im"
)

// Persistent sessions from the store (PROTOCOL.md §9). mochi keeps a
// persistent session's subscriptions and unacknowledged deliveries in
// memory, and queues deliveries for it while it is away: a restart loses
// all of it, and a long absence grows it without bound. Here instead:
//
//   - the sessions and their subscriptions are recorded in the store, and
//     given back to mochi when it starts (StoredClients,
//     StoredSubscriptions), so a restarted server resumes them;
//   - while a session's client is connected, a tracker follows its QoS 1
//     deliveries and their PUBACKs, by conversation and seq, and records
//     how far it has received (its cursors) every few seconds and when it
//     disconnects;
//   - nothing is queued for a session without a connection (the read ACL
//     refuses closed clients), and mochi's own resend is cleared;
//   - when it reconnects, it is sent from the store what it missed, in
//     seq order per conversation, while live deliveries of messages to it
//     are held back (the store has them); then, from a point in the order
//     of the store's writes, live deliveries of messages are kept in
//     order while the store is read once more for what came before that
//     point; what was kept follows, without what it already got, and it
//     is live again. The read ACL does the holding and keeping: the broker
//     tells it what it is delivering (Broker.Delivering).

// Sessions is what the hook asks the domain about persistent sessions
// (implemented by *im.Sessions).
type Sessions interface {
	Save(ctx context.Context, s im.MQTTSession) error
	Forget(ctx context.Context, clientID string) error
	All(ctx context.Context) ([]im.MQTTSession, error)
	Subscribe(ctx context.Context, clientID string, p im.Principal, sub im.MQTTSubscription, fresh bool) error
	Unsubscribe(ctx context.Context, clientID, filter string) error
	Cursors(ctx context.Context, clientID string) (map[string]im.Cursor, error)
	SaveCursors(ctx context.Context, clientID string, c map[string]im.Cursor) error
	Behind(ctx context.Context, p im.Principal, subs []im.MQTTSubscription, cursors map[string]im.Cursor) ([]im.Gap, error)
	Page(ctx context.Context, g im.Gap, after int64, limit int) ([]im.Delivery, error)
	AfterWrites(fn func())
}

// How the keeper works.
const (
	flushEvery   = 2 * time.Second // cursors of connected sessions are recorded this often
	replayPage   = 200             // messages read from the store at once
	maxKept      = 10_000          // live messages kept during the last step of a catch-up
	catchUpTries = 5               // last steps tried when that overflows, before giving up order
	sendWindow   = 256             // QoS 1 deliveries unacknowledged during a catch-up, at most
)

// persistent reports whether cl's session outlives its connection.
func persistent(cl *mqtt.Client) bool {
	return !cl.Properties.Clean && (cl.Properties.ProtocolVersion < 5 || cl.Properties.Props.SessionExpiryInterval > 0)
}

// keeper keeps the persistent sessions.
type keeper struct {
	dom Sessions
	log *slog.Logger
	ctx context.Context
	wg  sync.WaitGroup // catch-ups and the flusher

	mu       sync.Mutex
	stored   map[string]bool           // client ids with a recorded session
	loaded   []im.MQTTSession          // read at start, for StoredSubscriptions
	byCl     map[*mqtt.Client]*tracker // connected persistent sessions
	catching map[*mqtt.Client]*tracker // those catching up
	ncatch   atomic.Int32              // len(catching), read without the lock
	timeout  time.Duration
}

func newKeeper(ctx context.Context, dom Sessions, log *slog.Logger, timeout time.Duration) *keeper {
	k := &keeper{dom: dom, log: log, ctx: ctx, stored: map[string]bool{}, byCl: map[*mqtt.Client]*tracker{},
		catching: map[*mqtt.Client]*tracker{}, timeout: timeout}
	k.wg.Add(1)
	go k.flusher()
	return k
}

// tracker follows one connected persistent session.
type tracker struct {
	cl  *mqtt.Client
	id  string
	p   im.Principal
	ack chan struct{} // a PUBACK came (flow control of a catch-up)

	flushMu sync.Mutex // one flush at a time: a later snapshot is never overwritten by an earlier one

	mu      sync.Mutex
	mode    mode
	dedupe  bool // skip live messages at or below what this connection got
	kept    []keptMsg
	over    bool // kept overflowed: what it had is in the store
	convs   map[string]*convCursor
	packets map[uint16]envKey
	fresh   map[string]bool // filters of a SUBSCRIBE under way that the session did not have
}

type mode int

const (
	live    mode = iota
	holding      // catching up: live messages are not delivered (the store has them)
	keeping      // its last step: live messages are kept, in order
)

// keptMsg is a live message kept during the last step of a catch-up.
type keptMsg struct {
	topic   string
	payload []byte
	key     envKey
}

// convCursor is how far the session has received a conversation.
type convCursor struct {
	acked, sent int64
	got         int64   // the last seq sent on this connection
	unacked     []int64 // seqs sent and not acknowledged, ascending
	dirty       bool
}

func (c *convCursor) cursor() im.Cursor { return im.Cursor{Acked: c.acked, Sent: c.sent} }

// envKey is a delivered message's conversation and seq.
type envKey struct {
	conv string
	seq  int64
}

// envelopeKey reads conv and seq from an envelope (see wire.Envelope: it
// begins {"id":…,"conv":…,"seq":…), without decoding it; ok is false for
// anything else (events).
func envelopeKey(payload []byte) (envKey, bool) {
	if !bytes.HasPrefix(payload, []byte(`{"id":"`)) {
		return envKey{}, false
	}
	i := bytes.Index(payload, []byte(`,"conv":"`))
	if i < 0 {
		return envKey{}, false
	}
	rest := payload[i+len(`,"conv":"`):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return envKey{}, false
	}
	conv := string(rest[:j])
	rest, ok := bytes.CutPrefix(rest[j:], []byte(`","seq":`))
	if !ok {
		return envKey{}, false
	}
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	seq, err := strconv.ParseInt(string(rest[:n]), 10, 64)
	if err != nil || seq <= 0 {
		return envKey{}, false
	}
	return envKey{conv, seq}, true
}

func (t *tracker) conv(c string) *convCursor {
	cc := t.convs[c]
	if cc == nil {
		cc = &convCursor{}
		t.convs[c] = cc
	}
	return cc
}

// sent records a QoS 1 delivery of k with packet id. A first delivery in
// a conversation the tracker has not seen means everything before it was
// received (it predates the subscription, or came while connected).
func (t *tracker) sent(id uint16, k envKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.convs[k.conv]
	if !ok {
		c = &convCursor{acked: k.seq - 1}
		t.convs[k.conv] = c
	}
	t.packets[id] = k
	c.sent, c.got = max(c.sent, k.seq), max(c.got, k.seq)
	i := len(c.unacked)
	for i > 0 && c.unacked[i-1] > k.seq {
		i--
	}
	c.unacked = append(c.unacked, 0)
	copy(c.unacked[i+1:], c.unacked[i:])
	c.unacked[i] = k.seq
	c.dirty = true
}

// acked records the PUBACK of packet id.
func (t *tracker) acked(id uint16) {
	t.mu.Lock()
	k, ok := t.packets[id]
	if ok {
		delete(t.packets, id)
		c := t.conv(k.conv)
		for i, s := range c.unacked {
			if s == k.seq {
				c.unacked = append(c.unacked[:i], c.unacked[i+1:]...)
				break
			}
		}
		top := c.sent
		if len(c.unacked) > 0 {
			top = c.unacked[0] - 1
		}
		c.acked = max(c.acked, top)
		c.dirty = true
	}
	t.mu.Unlock()
	select {
	case t.ack <- struct{}{}:
	default:
	}
}

// dirtyCursors returns the cursors changed since the last call, and marks
// them clean.
func (t *tracker) dirtyCursors() map[string]im.Cursor {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out map[string]im.Cursor
	for conv, c := range t.convs {
		if c.dirty {
			if out == nil {
				out = map[string]im.Cursor{}
			}
			out[conv] = c.cursor()
			c.dirty = false
		}
	}
	return out
}

// track starts following cl, a persistent session's new connection, as
// p; hold keeps live messages from it until its catch-up is done.
func (k *keeper) track(cl *mqtt.Client, p im.Principal, hold bool) *tracker {
	t := &tracker{cl: cl, id: cl.ID, p: p, ack: make(chan struct{}, 1), convs: map[string]*convCursor{}, packets: map[uint16]envKey{}}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.byCl[cl] = t
	if hold {
		t.mode = holding
		k.catching[cl] = t
		k.ncatch.Store(int32(len(k.catching)))
	}
	return t
}

// done ends cl's catch-up: its deliveries are no longer looked at.
func (k *keeper) done(cl *mqtt.Client) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.catching, cl)
	k.ncatch.Store(int32(len(k.catching)))
}

// catchingUp reports whether cl is to catch up.
func (k *keeper) catchingUp(cl *mqtt.Client) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.catching[cl] != nil
}

// withhold reports whether a live delivery to cl must not be sent: cl is
// catching up, and payload (on topic, from Broker.Delivering; nil when
// unknown) is a message it gets from the store, or keeps for later. It is
// asked by the read ACL, for every delivery to every subscriber.
func (k *keeper) withhold(cl *mqtt.Client, topic string, payload []byte) bool {
	if k.ncatch.Load() == 0 {
		return false
	}
	k.mu.Lock()
	t := k.catching[cl]
	k.mu.Unlock()
	if t == nil || payload == nil {
		return false
	}
	key, ok := envelopeKey(payload)
	if !ok {
		return false // events are not stored: they are not held back
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch t.mode {
	case holding:
		return true
	case keeping:
		if !t.over {
			t.kept = append(t.kept, keptMsg{topic: topic, payload: bytes.Clone(payload), key: key})
			if len(t.kept) > maxKept {
				t.kept, t.over = nil, true
			}
		}
		return true
	}
	if t.dedupe {
		if c := t.convs[key.conv]; c != nil && key.seq <= c.got {
			return true // the catch-up sent it
		}
	}
	return false
}

func (k *keeper) tracker(cl *mqtt.Client) *tracker {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.byCl[cl]
}

// untrack stops following cl and returns its tracker.
func (k *keeper) untrack(cl *mqtt.Client) *tracker {
	k.mu.Lock()
	defer k.mu.Unlock()
	t := k.byCl[cl]
	delete(k.byCl, cl)
	delete(k.catching, cl)
	k.ncatch.Store(int32(len(k.catching)))
	return t
}

// flush records t's changed cursors.
func (k *keeper) flush(t *tracker) {
	t.flushMu.Lock()
	defer t.flushMu.Unlock()
	c := t.dirtyCursors()
	if len(c) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), k.timeout)
	defer cancel()
	if err := k.dom.SaveCursors(ctx, t.id, c); err != nil {
		k.log.Warn("record a session's cursors", "client", t.id, "error", err)
	}
}

// flusher records the cursors of connected sessions every flushEvery, so
// that a crash loses little (what it loses is sent again, marked DUP).
func (k *keeper) flusher() {
	defer k.wg.Done()
	tick := time.NewTicker(flushEvery)
	defer tick.Stop()
	for {
		select {
		case <-k.ctx.Done():
			return
		case <-tick.C:
		}
		k.mu.Lock()
		ts := make([]*tracker, 0, len(k.byCl))
		for _, t := range k.byCl {
			ts = append(ts, t)
		}
		k.mu.Unlock()
		for _, t := range ts {
			k.flush(t)
		}
	}
}

// catchUp sends t's session what it missed, then makes it live (see the
// top of this file).
func (k *keeper) catchUp(t *tracker) {
	defer k.wg.Done()
	dedupe := false
	defer func() {
		t.mu.Lock()
		t.mode, t.kept = live, nil
		t.mu.Unlock()
		if !dedupe {
			k.done(t.cl)
		}
	}()
	ctx, cancel := context.WithCancel(k.ctx)
	defer cancel()
	stored, err := k.dom.Cursors(ctx, t.id)
	if err != nil {
		k.log.Warn("catch up a session: cursors", "client", t.id, "error", err)
		return
	}
	t.mu.Lock()
	for conv, c := range stored {
		t.convs[conv] = &convCursor{acked: c.Acked, sent: c.Sent}
	}
	t.mu.Unlock()
	if !k.pass(ctx, t) {
		return
	}
	for try := 1; try <= catchUpTries; try++ {
		// From a point in the order of the store's writes on, live
		// messages are kept: everything delivered before it is in the
		// store, and the next pass reads it.
		if !k.barrier(ctx, func() {
			t.mu.Lock()
			t.mode, t.kept, t.over = keeping, nil, false
			t.mu.Unlock()
		}) || !k.pass(ctx, t) {
			return
		}
		for {
			t.mu.Lock()
			if t.over {
				t.mode = holding
				t.mu.Unlock()
				break // what was kept is in the store: again
			}
			batch := t.kept
			t.kept = nil
			if len(batch) == 0 {
				// Caught up: live from here, skipping what the passes
				// sent that is still to be delivered live, until the
				// writes under way now are all delivered.
				t.mode, t.dedupe = live, true
				t.mu.Unlock()
				dedupe = true
				k.dom.AfterWrites(func() {
					t.mu.Lock()
					t.dedupe = false
					t.mu.Unlock()
					k.done(t.cl)
				})
				return
			}
			t.mu.Unlock()
			for _, m := range batch {
				t.mu.Lock()
				c := t.convs[m.key.conv]
				skip := c != nil && m.key.seq <= c.got
				t.mu.Unlock()
				if skip {
					continue
				}
				if err := k.send(ctx, t, m.topic, m.payload, m.key, false); err != nil {
					return
				}
			}
		}
	}
	k.log.Warn("catching up a session: too many live messages kept; live again, the rest is in history", "client", t.id)
}

// pass sends t's session the messages of its subscriptions after what it
// has received or been sent. It reports false if the session went away.
func (k *keeper) pass(ctx context.Context, t *tracker) bool {
	t.mu.Lock()
	from := make(map[string]im.Cursor, len(t.convs))
	for conv, c := range t.convs {
		// From what was acknowledged, or sent on this connection already.
		from[conv] = im.Cursor{Acked: max(c.acked, c.got), Sent: c.sent}
	}
	t.mu.Unlock()
	var subs []im.MQTTSubscription
	for _, s := range t.cl.State.Subscriptions.GetAll() {
		subs = append(subs, im.MQTTSubscription{Filter: s.Filter, QoS: s.Qos})
	}
	gaps, err := k.dom.Behind(ctx, t.p, subs, from)
	if err != nil {
		k.log.Warn("catch up a session", "client", t.id, "error", err)
		return false
	}
	for _, g := range gaps {
		if g.Resync != nil {
			if err := k.send(ctx, t, g.Topic, g.Resync, envKey{}, false); err != nil {
				return false
			}
		}
		for after := g.After; after < g.Last; {
			page, err := k.dom.Page(ctx, g, after, replayPage)
			if err != nil {
				k.log.Warn("catch up a session", "client", t.id, "conv", g.Conv, "error", err)
				return false
			}
			if len(page) == 0 {
				break
			}
			for _, d := range page {
				if err := k.send(ctx, t, d.Topic, d.Payload, envKey{d.Conv, d.Seq}, d.Dup); err != nil {
					return false
				}
				after = d.Seq
			}
		}
	}
	return true
}

// barrier runs fn in the order of the store's writes and waits for it.
func (k *keeper) barrier(ctx context.Context, fn func()) bool {
	done := make(chan struct{})
	k.dom.AfterWrites(func() {
		fn()
		close(done)
	})
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// errGone is a catch-up's end when its client went away.
var errGone = packets.ErrPendingClientWritesExceeded

// send writes one delivery of a catch-up to t's client at QoS 1, waiting
// while sendWindow of its deliveries (or its MQTT 5 Receive Maximum) are
// unacknowledged. key is the message's (none for an event).
func (k *keeper) send(ctx context.Context, t *tracker, topic string, payload []byte, key envKey, dup bool) error {
	cl := t.cl
	window := sendWindow
	if rm := int(cl.Properties.Props.ReceiveMaximum); cl.Properties.ProtocolVersion == 5 && rm > 0 {
		window = min(window, rm)
	}
	for cl.State.Inflight.Len() >= window {
		if cl.Closed() {
			return errGone
		}
		select {
		case <-t.ack:
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if cl.Closed() {
		return errGone
	}
	id, err := cl.NextPacketID()
	if err != nil {
		return err
	}
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1, Dup: dup},
		TopicName:   topic, Payload: payload, PacketID: uint16(id), Created: time.Now().Unix(),
	}
	cl.State.Inflight.Set(pk)
	cl.State.Inflight.DecreaseSendQuota()
	if key.seq > 0 {
		t.sent(pk.PacketID, key)
	}
	return cl.WritePacket(pk)
}

// stop waits for the catch-ups and the flusher; k's context must be done.
func (k *keeper) stop() { k.wg.Wait() }

// storedClients is StoredClients: the recorded sessions, as mochi loads
// them at start (disconnected, to be resumed).
func (k *keeper) storedClients(park func(uid int64, id string)) ([]storage.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	all, err := k.dom.All(ctx)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.loaded = all
	for _, s := range all {
		k.stored[s.ClientID] = true
	}
	k.mu.Unlock()
	out := make([]storage.Client, 0, len(all))
	for _, s := range all {
		park(s.UID, s.ClientID)
		out = append(out, storage.Client{
			ID: s.ClientID, T: storage.ClientKey, Username: []byte(s.Username), ProtocolVersion: s.Version, Clean: false,
			Properties: storage.ClientProperties{SessionExpiryInterval: s.Expiry, SessionExpiryIntervalFlag: s.Expiry > 0},
		})
	}
	return out, nil
}

// storedSubscriptions is StoredSubscriptions, after storedClients.
func (k *keeper) storedSubscriptions() []storage.Subscription {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []storage.Subscription
	for _, s := range k.loaded {
		for _, sub := range s.Subscriptions {
			out = append(out, storage.Subscription{Client: s.ClientID, Filter: sub.Filter, Qos: sub.QoS, T: storage.SubscriptionKey})
		}
	}
	k.loaded = nil
	return out
}

// markStored records whether id has a recorded session, and reports
// whether it had one.
func (k *keeper) markStored(id string, on bool) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	was := k.stored[id]
	if on {
		k.stored[id] = true
	} else {
		delete(k.stored, id)
	}
	return was
}
