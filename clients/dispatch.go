package clients

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

// Gap-free resume. One goroutine, the dispatcher, owns the per-conversation
// state: the last seq handed to the app and the messages received ahead of
// a gap. A message whose seq is the next one is handed over at once; one
// that skips ahead is held while the missing range is fetched from
// history; one at or below the last seq is a duplicate and dropped. After
// every (re)connect the dispatcher lists the conversations and fetches
// whatever was stored while the client was away.

type itemKind uint8

const (
	itemPublish   itemKind = iota // a message or event from the broker
	itemConnected                 // (re)connected and subscribed: sync every conversation
	itemLost                      // the connection was lost
	itemBaseline                  // start following conv at seq, unless it is followed already
	itemFill                      // fetch what conv has beyond the last seq handed over
)

type item struct {
	kind    itemKind
	topic   string
	payload []byte
	conv    string
	seq     int64
	err     error
}

// queue is an unbounded FIFO: pushing never blocks, so paho's router never
// waits for the app.
type queue struct {
	mu     sync.Mutex
	items  []item
	wake   chan struct{}
	closed chan struct{}
	once   sync.Once
}

func (q *queue) init() {
	q.wake = make(chan struct{}, 1)
	q.closed = make(chan struct{})
}

func (q *queue) push(it item) {
	q.mu.Lock()
	q.items = append(q.items, it)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns everything queued, waiting for something; false once closed.
func (q *queue) take() ([]item, bool) {
	for {
		select {
		case <-q.closed:
			return nil, false
		default:
		}
		q.mu.Lock()
		batch := q.items
		q.items = nil
		q.mu.Unlock()
		if len(batch) > 0 {
			return batch, true
		}
		select {
		case <-q.wake:
		case <-q.closed:
			return nil, false
		}
	}
}

func (q *queue) close() { q.once.Do(func() { close(q.closed) }) }

// convState is what the dispatcher knows of one conversation.
type convState struct {
	last  int64                   // the last seq handed to the app
	ahead map[int64]wire.Envelope // received beyond a gap, by seq
}

// pageSize is the history page the client asks for when filling a gap.
const pageSize = wire.MaxHistory

// baseline records the starting point of every conversation the user has
// now: the app's saved positions, or the conversation's last seq.
func (c *Client) baseline(ctx context.Context) error {
	convs, err := c.api.Conversations(ctx)
	if err != nil {
		return fmt.Errorf("list conversations: %w", err)
	}
	for _, cv := range convs {
		c.convs[cv.Conv] = &convState{last: cv.LastSeq}
	}
	for conv, seq := range c.opts.Positions {
		c.convs[conv] = &convState{last: seq}
	}
	return nil
}

// Positions returns the last seq handed to the app per conversation. Save
// it and pass it as Options.Positions to resume where the app left off.
func (c *Client) Positions() map[string]int64 {
	c.posMu.Lock()
	defer c.posMu.Unlock()
	out := make(map[string]int64, len(c.convs))
	for conv, st := range c.convs {
		out[conv] = st.last
	}
	return out
}

func (c *Client) state(conv string) *convState {
	c.posMu.Lock()
	defer c.posMu.Unlock()
	st, ok := c.convs[conv]
	if !ok {
		// Not there when the client started: a conversation that began
		// since, so everything in it is new.
		st = &convState{}
		c.convs[conv] = st
	}
	return st
}

func (c *Client) dispatch() {
	defer close(c.done)
	for {
		batch, ok := c.q.take()
		if !ok {
			return
		}
		for _, it := range batch {
			if c.ctx.Err() != nil {
				return
			}
			c.handle(it)
		}
	}
}

func (c *Client) handle(it item) {
	h := c.opts.Handlers
	switch it.kind {
	case itemConnected:
		if h.Connected != nil {
			h.Connected()
		}
		if !c.opts.NoResume {
			c.syncAll()
		}
	case itemLost:
		if h.Disconnected != nil {
			h.Disconnected(it.err)
		}
	case itemBaseline:
		c.posMu.Lock()
		if _, ok := c.convs[it.conv]; !ok {
			c.convs[it.conv] = &convState{last: it.seq}
		}
		c.posMu.Unlock()
	case itemFill:
		if !c.opts.NoResume {
			c.fill(it.conv, c.state(it.conv))
		}
	case itemPublish:
		c.handlePublish(it)
	}
}

func (c *Client) handlePublish(it item) {
	h := c.opts.Handlers
	var in wire.Inbound
	if err := json.Unmarshal(it.payload, &in); err != nil {
		c.unknown(it)
		return
	}
	switch in.Event {
	case "":
		var env wire.Envelope
		if err := json.Unmarshal(it.payload, &env); err != nil || env.Conv == "" || env.Seq <= 0 {
			c.unknown(it)
			return
		}
		c.message(env)
	case wire.EventError:
		var ev wire.ErrorEvent
		if json.Unmarshal(it.payload, &ev) != nil {
			c.unknown(it)
			return
		}
		if h.Error != nil {
			h.Error(errorFromEvent(ev))
		}
	case wire.EventRead:
		var ev wire.ReadEvent
		if json.Unmarshal(it.payload, &ev) == nil && h.Read != nil {
			h.Read(ev)
		}
	case wire.EventCSAssigned, wire.EventCSTransferred, wire.EventCSClosed:
		var ev wire.SessionEvent
		if json.Unmarshal(it.payload, &ev) != nil {
			c.unknown(it)
			return
		}
		if ev.Event == wire.EventCSAssigned && ev.Conv != "" && !c.opts.NoResume {
			// An agent given a session follows its conversation from the start.
			c.fill(ev.Conv, c.state(ev.Conv))
		}
		f := h.CSClosed
		switch ev.Event {
		case wire.EventCSAssigned:
			f = h.CSAssigned
		case wire.EventCSTransferred:
			f = h.CSTransferred
		}
		if f != nil {
			f(ev)
		}
	case wire.EventRoomMember:
		var ev wire.RoomMemberEvent
		if json.Unmarshal(it.payload, &ev) != nil {
			c.unknown(it)
			return
		}
		if ev.UID == c.me.UID && (ev.Action == wire.ActionLeft || ev.Action == wire.ActionRemoved) {
			c.mu.Lock()
			delete(c.rooms, ev.Room) // the server dropped the subscription
			c.mu.Unlock()
		}
		if h.RoomMember != nil {
			h.RoomMember(ev)
		}
	default:
		c.unknown(it)
	}
}

func (c *Client) unknown(it item) {
	if h := c.opts.Handlers.Unknown; h != nil {
		h(it.topic, it.payload)
	}
}

// message hands env over in order, filling a gap before it if need be.
func (c *Client) message(env wire.Envelope) {
	if c.opts.NoResume {
		c.deliver(env)
		return
	}
	st := c.state(env.Conv)
	if env.Seq <= st.last {
		return // seen already
	}
	if env.Seq == st.last+1 {
		c.advance(st, env)
		c.flush(st)
		return
	}
	if st.ahead == nil {
		st.ahead = make(map[int64]wire.Envelope)
	}
	st.ahead[env.Seq] = env
	c.fill(env.Conv, st)
}

func (c *Client) deliver(env wire.Envelope) {
	if env.From == c.me.UID && env.CID != "" {
		c.resolveSend(env.CID, env, nil) // an echo that came through history
	}
	if h := c.opts.Handlers.Message; h != nil {
		h(env)
	}
}

// advance hands env over and moves the position.
func (c *Client) advance(st *convState, env wire.Envelope) {
	c.posMu.Lock()
	st.last = env.Seq
	c.posMu.Unlock()
	c.deliver(env)
}

// flush hands over the held messages that are now next in line.
func (c *Client) flush(st *convState) {
	for {
		env, ok := st.ahead[st.last+1]
		if !ok {
			break
		}
		delete(st.ahead, env.Seq)
		c.advance(st, env)
	}
	for seq := range st.ahead {
		if seq <= st.last {
			delete(st.ahead, seq)
		}
	}
}

// fill fetches conv's messages after the last handed over until the
// history has no more, handing them over with those held. If the history
// refuses (the user left the room, say), the held messages are handed
// over in order with the gap left open; if the server cannot be reached
// they stay held until the next message, reconnect or sync.
func (c *Client) fill(conv string, st *convState) {
	for attempt := 0; ; {
		if c.ctx.Err() != nil {
			return
		}
		ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
		page, err := c.api.History(ctx, conv, After(st.last, pageSize))
		cancel()
		if err != nil {
			var apiErr *Error
			if errors.As(err, &apiErr) && apiErr.Status >= 400 && apiErr.Status < 500 && apiErr.Status != 429 {
				c.log.Warn("history refused: handing over held messages without the gap", "conv", conv, "error", err)
				c.skipGap(st)
				return
			}
			attempt++
			if attempt >= 3 {
				c.log.Warn("history unavailable: holding messages until the next sync", "conv", conv, "error", err)
				return
			}
			select {
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			case <-c.ctx.Done():
				return
			}
			continue
		}
		for _, env := range page {
			if env.Seq == st.last+1 {
				c.advance(st, env)
			} else if env.Seq > st.last {
				if st.ahead == nil {
					st.ahead = make(map[int64]wire.Envelope)
				}
				st.ahead[env.Seq] = env
			}
			c.flush(st)
		}
		if len(page) < pageSize {
			if len(st.ahead) > 0 {
				// The history ends before what we hold: should not happen
				// (messages are delivered after they are stored). Don't stall.
				c.log.Warn("history ends before held messages", "conv", conv, "last", st.last)
				c.skipGap(st)
			}
			return
		}
	}
}

// skipGap hands over the held messages in seq order, leaving the gap.
func (c *Client) skipGap(st *convState) {
	seqs := make([]int64, 0, len(st.ahead))
	for seq := range st.ahead {
		seqs = append(seqs, seq)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	for _, seq := range seqs {
		env := st.ahead[seq]
		delete(st.ahead, seq)
		c.advance(st, env)
	}
}

// syncAll fetches, after a reconnect, what every followed conversation got
// while the client was away.
func (c *Client) syncAll() {
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	convs, err := c.api.Conversations(ctx)
	cancel()
	if err != nil {
		c.log.Warn("list conversations after connect", "error", err)
		return
	}
	for _, cv := range convs {
		if !c.follows(cv.Conv) {
			continue
		}
		st := c.state(cv.Conv)
		if cv.LastSeq > st.last || len(st.ahead) > 0 {
			c.fill(cv.Conv, st)
		}
	}
}

// follows reports whether the client receives conv's messages live.
func (c *Client) follows(conv string) bool {
	cv, err := topics.ParseConv(conv)
	if err != nil {
		return false
	}
	switch cv.Kind {
	case topics.ConvSys:
		return !c.opts.NoBroadcast
	case topics.ConvRoom:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.rooms[cv.Room]
	}
	return true
}
