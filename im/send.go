package im

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

// PublishTopic handles an MQTT publish of payload by p to topic: it checks
// that p may publish there, validates the message, stores it and delivers
// it. It returns the stored envelope; on a refusal nothing is stored.
func (s *Service) PublishTopic(ctx context.Context, p Principal, topic string, payload []byte) (wire.Envelope, error) {
	if !s.limiter.allow(p.UID) {
		return wire.Envelope{}, errorf(ErrRateLimited, "too many messages: slow down")
	}
	if len(payload) > wire.MaxPayload {
		return wire.Envelope{}, errorf(ErrTooLarge, "payload is %d bytes, over the limit of %d", len(payload), wire.MaxPayload)
	}
	route, err := topics.Parse(topic)
	if err != nil {
		return wire.Envelope{}, errorf(ErrForbidden, "publishing to %q is not allowed", truncate(topic, 128))
	}
	msg, err := decodePublish(payload)
	if err != nil {
		return wire.Envelope{}, err
	}
	switch route.Kind {
	case topics.KindInbox:
		return s.sendSingle(ctx, p, route.UID, msg)
	case topics.KindRoom:
		return s.sendRoom(ctx, p, route.Room, msg)
	case topics.KindShop:
		return s.sendToShop(ctx, p, route.Shop, msg)
	case topics.KindShopReply:
		return s.sendAgentReply(ctx, p, route.Shop, route.Customer, msg)
	case topics.KindBroadcast:
		return s.sendBroadcast(ctx, p, msg)
	}
	return wire.Envelope{}, errorf(ErrForbidden, "publishing to %q is not allowed", topic)
}

// Send stores msg from p in the conversation conv and delivers it, with the
// same checks and effects as the MQTT publish that maps to conv
// (POST /conversations/{conv}/messages).
func (s *Service) Send(ctx context.Context, p Principal, conv string, msg wire.Publish) (wire.Envelope, error) {
	if !s.limiter.allow(p.UID) {
		return wire.Envelope{}, errorf(ErrRateLimited, "too many messages: slow down")
	}
	c, err := parseConv(conv)
	if err != nil {
		return wire.Envelope{}, err
	}
	switch c.Kind {
	case topics.ConvSingle:
		other := c.Other(p.UID)
		if other == 0 {
			return wire.Envelope{}, errorf(ErrForbidden, "you are not a participant of %s", conv)
		}
		return s.sendSingle(ctx, p, other, msg)
	case topics.ConvRoom:
		return s.sendRoom(ctx, p, c.Room, msg)
	case topics.ConvService:
		return s.sendService(ctx, p, c, msg)
	case topics.ConvSys:
		return s.sendBroadcast(ctx, p, msg)
	}
	return wire.Envelope{}, errorf(ErrForbidden, "you may not post to %s", conv)
}

func parseConv(conv string) (topics.Conv, error) {
	c, err := topics.ParseConv(conv)
	if err != nil {
		return c, errorf(ErrInvalid, "%q is not a conversation id (u:{a}:{b} with a<b, r:{room}, s:{shop}:{customer} or sys)", truncate(conv, 64))
	}
	return c, nil
}

// sendSingle stores a single chat message from p to the user to and delivers
// it to both inboxes (the sender's copy is its receipt).
func (s *Service) sendSingle(ctx context.Context, p Principal, to int64, msg wire.Publish) (wire.Envelope, error) {
	if to == p.UID {
		return wire.Envelope{}, errorf(ErrInvalid, "you cannot send a message to yourself")
	}
	msg, err := validatePublish(msg)
	if err != nil {
		return wire.Envelope{}, err
	}
	if err := s.userExists(ctx, to); err != nil {
		return wire.Envelope{}, err
	}
	return s.post(ctx, p, topics.SingleConv(p.UID, to), msg, topics.Inbox(to), topics.Inbox(p.UID))
}

// post stores a validated message from p in conv and delivers its envelope
// to targets, holding the conversation's lock throughout so subscribers get
// its messages in seq order. A re-sent message (same cid) is stored and
// delivered once: its sender alone gets the first copy's envelope again.
func (s *Service) post(ctx context.Context, p Principal, conv string, msg wire.Publish, targets ...string) (wire.Envelope, error) {
	defer s.locks.lock(conv)()
	stored, dup, err := s.append(ctx, Message{Conv: conv, From: p.UID, Type: msg.Type, Body: msg.Body, CID: msg.CID})
	if err != nil {
		return wire.Envelope{}, err
	}
	env := stored.Envelope()
	if dup {
		targets = []string{topics.Inbox(p.UID)}
	}
	s.deliver(env, targets...)
	return env, nil
}

// sendBroadcast stores a system broadcast and delivers it to every
// subscriber of the broadcast topic. Only admins may.
func (s *Service) sendBroadcast(ctx context.Context, p Principal, msg wire.Publish) (wire.Envelope, error) {
	if !p.IsAdmin() {
		return wire.Envelope{}, errorf(ErrForbidden, "only an admin may broadcast")
	}
	msg, err := validatePublish(msg)
	if err != nil {
		return wire.Envelope{}, err
	}
	return s.post(ctx, p, topics.SysConv, msg, topics.Broadcast)
}

// Broadcast stores and delivers a text broadcast from an admin
// (POST /broadcasts).
func (s *Service) Broadcast(ctx context.Context, p Principal, text string) (wire.Envelope, error) {
	body, _ := json.Marshal(text)
	return s.Send(ctx, p, topics.SysConv, wire.Publish{Type: wire.TypeText, Body: body})
}

// append stamps m with an id and a time and stores it.
func (s *Service) append(ctx context.Context, m Message) (Message, bool, error) {
	m.ID = s.newID()
	m.TS = s.nowMillis()
	stored, dup, err := s.store.AppendMessage(ctx, m)
	if err != nil {
		return Message{}, false, fmt.Errorf("store message in %s: %w", m.Conv, err)
	}
	return stored, dup, nil
}

// deliver publishes v as JSON to each topic. Delivery failures are logged,
// not returned: the message is stored, and clients catch up from history.
func (s *Service) deliver(v any, topicList ...string) {
	payload, err := json.Marshal(v)
	if err != nil {
		s.log.Error("encode delivery", "error", err)
		return
	}
	for _, t := range topicList {
		if err := s.pub.Publish(t, payload); err != nil {
			s.log.Warn("deliver", "topic", t, "error", err)
		}
	}
}

// userExists returns ErrNotFound if there is no user uid. Positive answers
// are cached: accounts are never deleted.
func (s *Service) userExists(ctx context.Context, uid int64) error {
	if _, ok := s.known.Load(uid); ok {
		return nil
	}
	if _, err := s.store.UserByID(ctx, uid); err != nil {
		if errors.Is(err, ErrNotFound) {
			return errorf(ErrNotFound, "there is no user %d", uid)
		}
		return fmt.Errorf("look up user %d: %w", uid, err)
	}
	s.known.Store(uid, struct{}{})
	return nil
}
