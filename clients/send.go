package clients

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

// Text returns a text message.
func Text(s string) wire.Publish {
	b, _ := json.Marshal(s)
	return wire.Publish{Type: wire.TypeText, Body: b}
}

// Image returns an image message; width and height may be 0 if unknown.
func Image(url string, width, height int64) wire.Publish {
	body := wire.ImageBody{URL: url}
	if width > 0 {
		body.Width = &width
	}
	if height > 0 {
		body.Height = &height
	}
	return of(wire.TypeImage, body)
}

// File returns a file message; size may be negative if unknown.
func File(url, name string, size int64) wire.Publish {
	body := wire.FileBody{URL: url, Name: name}
	if size >= 0 {
		body.Size = &size
	}
	return of(wire.TypeFile, body)
}

// Card returns a card message.
func Card(card wire.CardBody) wire.Publish { return of(wire.TypeCard, card) }

func of(typ string, body any) wire.Publish {
	b, _ := json.Marshal(body)
	return wire.Publish{Type: typ, Body: b}
}

// TextOf returns the text of a text message, or "" for other types.
func TextOf(env wire.Envelope) string {
	if env.Type != wire.TypeText {
		return ""
	}
	var s string
	_ = json.Unmarshal(env.Body, &s)
	return s
}

// pendingSend is a publish waiting for its echo or its error event.
type pendingSend struct {
	topic   string
	payload []byte
	once    sync.Once
	done    chan sendResult
	mu      sync.Mutex
	failed  bool // paho did not take the publish: onConnect sends it again
}

type sendResult struct {
	env wire.Envelope
	err error
}

func (p *pendingSend) resolve(env wire.Envelope, err error) {
	p.once.Do(func() { p.done <- sendResult{env, err} })
}

// takeFailed reports whether the publish must be sent again, and clears it.
func (p *pendingSend) takeFailed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.failed
	p.failed = false
	return f
}

func (p *pendingSend) setFailed() {
	p.mu.Lock()
	p.failed = true
	p.mu.Unlock()
}

// resolveSend completes the Send waiting for cid, if any.
func (c *Client) resolveSend(cid string, env wire.Envelope, err error) bool {
	c.mu.Lock()
	p, ok := c.sends[cid]
	if ok {
		delete(c.sends, cid)
	}
	c.mu.Unlock()
	if ok {
		p.resolve(env, err)
	}
	return ok
}

// Publish sends msg to an MQTT topic of the contract at QoS 1 and waits
// for the server's answer: the stored envelope (the echo that carries the
// cid), or an *Error from the error event. A msg without a cid gets a
// random one. If the connection drops meanwhile, the publish is sent again
// after the reconnect, and the cid makes sure it is stored once. It gives
// up when ctx ends; the message may still be stored later (MQTT QoS 1 is
// at least once, and the publish may be queued in the connection): to be
// sure it is stored exactly once, send it again with the same msg.CID.
// The typed sends below are the usual way in.
func (c *Client) Publish(ctx context.Context, topic string, msg wire.Publish) (wire.Envelope, error) {
	if msg.CID == "" {
		msg.CID = randomHex(12)
	}
	payload, err := json.Marshal(msg)
	if err != nil {
		return wire.Envelope{}, fmt.Errorf("encode message: %w", err)
	}
	p := &pendingSend{topic: topic, payload: payload, done: make(chan sendResult, 1)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return wire.Envelope{}, ErrClosed
	}
	if _, dup := c.sends[msg.CID]; dup {
		c.mu.Unlock()
		return wire.Envelope{}, fmt.Errorf("a send with cid %q is already waiting", msg.CID)
	}
	c.sends[msg.CID] = p
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.sends[msg.CID] == p {
			delete(c.sends, msg.CID)
		}
		c.mu.Unlock()
	}()

	// Paho keeps a QoS 1 publish it took across reconnects and sends it
	// again itself; one it refused (no connection at all) is sent again by
	// onConnect.
	tok := c.mqtt.Publish(topic, 1, false, payload)
	tokDone := tok.Done()
	for {
		select {
		case <-tokDone:
			tokDone = nil
			if err := tok.Error(); err != nil {
				c.log.Debug("publish not taken; sending it again after the reconnect", "topic", topic, "error", err)
				p.setFailed()
			}
		case r := <-p.done:
			if r.err != nil {
				return wire.Envelope{}, fmt.Errorf("send to %s: %w", topic, r.err)
			}
			return r.env, nil
		case <-ctx.Done():
			if !c.IsConnected() {
				return wire.Envelope{}, fmt.Errorf("send to %s: %w (%w)", topic, ctx.Err(), ErrNotConnected)
			}
			return wire.Envelope{}, fmt.Errorf("send to %s: %w", topic, ctx.Err())
		}
	}
}

// SendUser sends a single-chat message to the user uid.
func (c *Client) SendUser(ctx context.Context, uid int64, msg wire.Publish) (wire.Envelope, error) {
	return c.Publish(ctx, topics.Inbox(uid), msg)
}

// SendRoom sends a group message to a room the user is a member of,
// subscribing to the room first if the client does not follow it yet (the
// answer comes on the room topic).
func (c *Client) SendRoom(ctx context.Context, room int64, msg wire.Publish) (wire.Envelope, error) {
	c.mu.Lock()
	follows := c.rooms[room]
	c.mu.Unlock()
	if !follows {
		if err := c.SubscribeRoom(ctx, room); err != nil {
			return wire.Envelope{}, err
		}
	}
	return c.Publish(ctx, topics.Room(room), msg)
}

// SendShop sends a customer's message to a shop's customer service.
func (c *Client) SendShop(ctx context.Context, shop int64, msg wire.Publish) (wire.Envelope, error) {
	return c.Publish(ctx, topics.Shop(shop), msg)
}

// Reply sends an agent's reply to a customer of the agent's shop.
func (c *Client) Reply(ctx context.Context, shop, customer int64, msg wire.Publish) (wire.Envelope, error) {
	return c.Publish(ctx, topics.ShopReply(shop, customer), msg)
}

// Broadcast sends a system broadcast (admins only). Without the broadcast
// subscription (Options.NoBroadcast) it goes over REST.
func (c *Client) Broadcast(ctx context.Context, msg wire.Publish) (wire.Envelope, error) {
	if c.opts.NoBroadcast {
		return c.api.Post(ctx, topics.SysConv, msg)
	}
	return c.Publish(ctx, topics.Broadcast, msg)
}
