package im

import (
	"context"
	"fmt"

	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

// canRead returns nil if p is a participant of c: ErrForbidden if not,
// ErrNotFound if the conversation's other party (user, room, shop) does not
// exist.
func (s *Service) canRead(ctx context.Context, p Principal, c topics.Conv) error {
	switch c.Kind {
	case topics.ConvSys:
		return nil
	case topics.ConvSingle:
		other := c.Other(p.UID)
		if other == 0 {
			return errorf(ErrForbidden, "you are not a participant of %s", c)
		}
		return s.userExists(ctx, other)
	case topics.ConvRoom:
		return s.canReadRoom(ctx, p, c.Room)
	case topics.ConvService:
		return s.canReadService(ctx, p, c)
	}
	return errorf(ErrForbidden, "you are not a participant of %s", c)
}

// History returns a page of conv's history for p, in ascending seq.
func (s *Service) History(ctx context.Context, p Principal, conv string, q HistoryQuery) ([]wire.Envelope, error) {
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
	if err := s.canRead(ctx, p, c); err != nil {
		return nil, err
	}
	if q.BeforeSeq > 0 && q.AfterSeq >= q.BeforeSeq-1 {
		return []wire.Envelope{}, nil
	}
	msgs, err := s.store.History(ctx, conv, q)
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", conv, err)
	}
	out := make([]wire.Envelope, len(msgs))
	for i, m := range msgs {
		out[i] = m.Envelope()
	}
	return out, nil
}

// Conversations lists p's conversations, newest activity first.
func (s *Service) Conversations(ctx context.Context, p Principal) ([]wire.Conversation, error) {
	rows, err := s.store.Conversations(ctx, p.UID)
	if err != nil {
		return nil, fmt.Errorf("conversations of %d: %w", p.UID, err)
	}
	out := make([]wire.Conversation, 0, len(rows))
	for _, r := range rows {
		c := wire.Conversation{Conv: r.Conv, Kind: string(r.Kind), LastSeq: r.LastSeq, ReadSeq: min(r.ReadSeq, r.LastSeq)}
		c.Unread = c.LastSeq - c.ReadSeq
		if r.LastMessage != nil {
			env := r.LastMessage.Envelope()
			c.LastMessage = &env
		}
		out = append(out, c)
	}
	return out, nil
}

// MarkRead raises p's read position in conv to seq (clamped to the last
// seq) and tells the other side of a single chat with a read event.
func (s *Service) MarkRead(ctx context.Context, p Principal, conv string, seq int64) (wire.ReadState, error) {
	c, err := parseConv(conv)
	if err != nil {
		return wire.ReadState{}, err
	}
	if seq < 0 {
		return wire.ReadState{}, errorf(ErrInvalid, "seq must not be negative")
	}
	if err := s.canRead(ctx, p, c); err != nil {
		return wire.ReadState{}, err
	}
	readSeq, lastSeq, moved, err := s.store.MarkRead(ctx, conv, p.UID, seq)
	if err != nil {
		return wire.ReadState{}, fmt.Errorf("mark %s read: %w", conv, err)
	}
	if moved {
		ev := wire.ReadEvent{Event: wire.EventRead, Conv: conv, UID: p.UID, Seq: readSeq}
		switch c.Kind {
		case topics.ConvSingle:
			s.deliver(ev, topics.Inbox(c.Other(p.UID)))
		case topics.ConvService:
			s.serviceReadEvent(ctx, p, c, ev)
		}
	}
	return wire.ReadState{Conv: conv, ReadSeq: readSeq, LastSeq: lastSeq, Unread: lastSeq - readSeq}, nil
}
