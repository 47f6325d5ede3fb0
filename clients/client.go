package clients

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

// Options configures Dial. Server and Token are required; the zero value of
// everything else is a sensible default.
type Options struct {
	// Server is the URL of the REST API, for example
	// "http://127.0.0.1:8080". The client uses it for history and for
	// the REST helpers of Client.API.
	Server string
	// Broker is the MQTT URL: "tcp://host:1883", "ws://host:8080/mqtt" (or
	// ssl://, wss://). Default: MQTT over WebSocket on Server's host, at
	// /mqtt.
	Broker string
	// Token is the answer of API.Login: the access token (the MQTT
	// password), the uid and the username.
	Token wire.Token
	// ClientID is the MQTT client id. It must start with "u{uid}-";
	// default "u{uid}-go-{random}". Two clients with one id take the
	// session from each other.
	ClientID string

	// Rooms are room ids whose topic the client subscribes to, besides the
	// user's inbox and the broadcast topic. JoinRoom and SubscribeRoom add
	// more while connected; every subscription is renewed on reconnect.
	Rooms []int64
	// AllRooms subscribes, at each connect, to every room the user is a
	// member of (GET /rooms).
	AllRooms bool
	// NoBroadcast leaves the system broadcast topic out.
	NoBroadcast bool

	// Handlers receive messages and events. They are called one at a time,
	// in order, from one goroutine of the client; a slow handler delays
	// the next ones, never the network.
	Handlers Handlers

	// Positions is the last seq the app has seen per conversation, saved
	// from Client.Positions by an earlier run: the client hands over
	// everything after them. A conversation missing here starts at its
	// last seq when Dial is called (earlier messages are history; read them
	// with API().History).
	Positions map[string]int64
	// NoResume turns gap-free resume off: messages are handed over as they
	// arrive, without history sync, duplicates dropped or reordering.
	NoResume bool

	// KeepAlive is the MQTT keepalive. Default 30s.
	KeepAlive time.Duration
	// ConnectTimeout bounds each connection attempt. Default 10s.
	ConnectTimeout time.Duration
	// MaxReconnectInterval caps the back-off between reconnect attempts.
	// Default 10s.
	MaxReconnectInterval time.Duration
	// HTTPClient makes the REST calls. Default http.DefaultClient.
	HTTPClient *http.Client
	// Dialer makes the MQTT over TCP connection (to choose a source
	// address, say). Default: a net.Dialer with ConnectTimeout.
	Dialer *net.Dialer
	// Log receives the client's diagnostics. Default: discarded.
	Log *slog.Logger
}

// Handlers are the callbacks of a Client. Any may be nil.
type Handlers struct {
	// Message receives every message of the user's conversations,
	// including the user's own (as its other devices see them): per
	// conversation in seq order, each once, unless Options.NoResume.
	Message func(wire.Envelope)
	// Error receives refusals of publishes that no Send is waiting for.
	Error func(*Error)
	// Read receives read events: the other side of a conversation read up
	// to a seq.
	Read func(wire.ReadEvent)
	// CSAssigned, CSTransferred and CSClosed receive customer-service
	// session events (agents and the customer concerned).
	CSAssigned    func(wire.SessionEvent)
	CSTransferred func(wire.SessionEvent)
	CSClosed      func(wire.SessionEvent)
	// RoomMember receives membership changes of subscribed rooms.
	RoomMember func(wire.RoomMemberEvent)
	// Connected is called after each connect, once the subscriptions are
	// in place and before the history of the gap is fetched.
	Connected func()
	// Disconnected is called when the connection is lost; the client
	// reconnects by itself.
	Disconnected func(error)
	// Unknown receives anything the client cannot decode.
	Unknown func(topic string, payload []byte)
}

// Client is a connected chat client: an MQTT connection that reconnects and
// resubscribes by itself, typed sends, and gap-free delivery of messages to
// Handlers. Make one with Dial; it is safe for concurrent use.
type Client struct {
	opts Options
	api  *API
	me   wire.Token
	mqtt paho.Client
	log  *slog.Logger

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	q      queue
	done   chan struct{} // the dispatcher has ended

	mu       sync.Mutex
	rooms    map[int64]bool
	sends    map[string]*pendingSend // by cid
	closed   bool
	subErr   chan error // the first connect's subscription result
	firstSub bool

	posMu sync.Mutex
	convs map[string]*convState // owned by the dispatcher; posMu guards last for Positions
}

// Dial logs in to the broker with opts.Token, subscribes to the user's
// inbox, the broadcast topic and opts.Rooms, and starts handing messages to
// opts.Handlers. It returns once subscribed, or with an error if the
// server refuses the token or ctx ends first.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	if opts.Server == "" {
		return nil, errors.New("clients: Options.Server is required")
	}
	if opts.Token.AccessToken == "" || opts.Token.UID == 0 {
		return nil, errors.New("clients: Options.Token must be the answer of a login")
	}
	if opts.Broker == "" {
		b, err := defaultBroker(opts.Server)
		if err != nil {
			return nil, err
		}
		opts.Broker = b
	}
	if opts.ClientID == "" {
		opts.ClientID = "u" + strconv.FormatInt(opts.Token.UID, 10) + "-go-" + randomHex(6)
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = 30 * time.Second
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	if opts.MaxReconnectInterval <= 0 {
		opts.MaxReconnectInterval = 10 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		opts:   opts,
		api:    NewAPI(opts.Server, opts.HTTPClient).WithToken(opts.Token.AccessToken),
		me:     opts.Token,
		log:    opts.Log.With("client", opts.ClientID),
		done:   make(chan struct{}),
		rooms:  make(map[int64]bool),
		sends:  make(map[string]*pendingSend),
		subErr: make(chan error, 1),
		convs:  make(map[string]*convState),
	}
	c.q.init()
	for _, r := range opts.Rooms {
		c.rooms[r] = true
	}
	if !opts.NoResume {
		if err := c.baseline(ctx); err != nil {
			return nil, err
		}
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())

	po := paho.NewClientOptions().
		AddBroker(opts.Broker).
		SetClientID(opts.ClientID).
		SetUsername(opts.Token.Username).
		SetPassword(opts.Token.AccessToken).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetKeepAlive(opts.KeepAlive).
		SetConnectTimeout(opts.ConnectTimeout).
		SetAutoReconnect(true).
		SetConnectRetry(false).
		SetMaxReconnectInterval(opts.MaxReconnectInterval).
		SetOrderMatters(true).
		SetDefaultPublishHandler(c.receive).
		SetOnConnectHandler(c.onConnect).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			c.log.Info("connection lost", "error", err)
			c.q.push(item{kind: itemLost, err: err})
		})
	d := opts.Dialer
	if d == nil {
		d = &net.Dialer{Timeout: opts.ConnectTimeout, KeepAlive: 30 * time.Second}
	}
	po.SetDialer(d)
	c.mqtt = paho.NewClient(po)

	go c.dispatch()
	tok := c.mqtt.Connect()
	fail := func(err error) (*Client, error) {
		c.Close()
		return nil, err
	}
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			if errors.Is(err, packets.ErrorRefusedNotAuthorised) || errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) {
				return fail(&Error{Code: wire.HTTPUnauthorized, Message: "the server refused the token or the client id: " + err.Error()})
			}
			return fail(fmt.Errorf("connect to %s: %w", opts.Broker, err))
		}
	case <-ctx.Done():
		return fail(fmt.Errorf("connect to %s: %w", opts.Broker, ctx.Err()))
	}
	select {
	case err := <-c.subErr:
		if err != nil {
			return fail(err)
		}
	case <-ctx.Done():
		return fail(fmt.Errorf("subscribe: %w", ctx.Err()))
	}
	return c, nil
}

func defaultBroker(server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("clients: Options.Server %q is not an http(s) URL", server)
	}
	scheme := "ws"
	if u.Scheme == "https" {
		scheme = "wss"
	}
	return scheme + "://" + u.Host + "/mqtt", nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// API returns the REST client, authenticated as the client's user.
func (c *Client) API() *API { return c.api }

// UID returns the user's uid.
func (c *Client) UID() int64 { return c.me.UID }

// ClientID returns the MQTT client id.
func (c *Client) ClientID() string { return c.opts.ClientID }

// IsConnected reports whether the MQTT connection is up right now.
func (c *Client) IsConnected() bool { return c.mqtt.IsConnectionOpen() }

// Close disconnects and stops the client. Sends still waiting fail with
// ErrClosed. Handlers are not called after Close returns.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	sends := c.sends
	c.sends = make(map[string]*pendingSend)
	c.mu.Unlock()
	for _, p := range sends {
		p.resolve(wire.Envelope{}, ErrClosed)
	}
	if c.mqtt != nil {
		c.mqtt.Disconnect(250)
	}
	if c.cancel != nil {
		c.cancel()
	}
	c.q.close()
	<-c.done
	return nil
}

// topics returns the topics to subscribe to.
func (c *Client) topicList() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	list := []string{topics.Inbox(c.me.UID)}
	if !c.opts.NoBroadcast {
		list = append(list, topics.Broadcast)
	}
	for r := range c.rooms {
		list = append(list, topics.Room(r))
	}
	return list
}

// onConnect runs (on its own goroutine) after every connect: it
// subscribes, re-sends the publishes still waiting for their echo (the cid
// makes that safe), and asks the dispatcher to sync the gap.
func (c *Client) onConnect(pc paho.Client) {
	if c.opts.AllRooms {
		ctx, cancel := context.WithTimeout(c.ctx, c.opts.ConnectTimeout)
		rooms, err := c.api.Rooms(ctx)
		cancel()
		switch {
		case err == nil:
			for _, r := range rooms {
				c.addRoom(r.RoomID, true)
			}
		default:
			c.log.Warn("list rooms", "error", err)
		}
	}
	list := c.topicList()
	filters := make(map[string]byte, len(list))
	for _, t := range list {
		filters[t] = 1
	}
	tok := pc.SubscribeMultiple(filters, nil)
	err := waitToken(c.ctx, tok, c.opts.ConnectTimeout)
	if err == nil {
		if st, ok := tok.(*paho.SubscribeToken); ok {
			for t, code := range st.Result() {
				if code >= 0x80 {
					if t == topics.Inbox(c.me.UID) {
						err = &Error{Code: wire.CodeForbidden, Message: "the server refused the subscription to " + t}
					} else {
						c.log.Warn("subscription refused", "topic", t)
						if r, e := topics.Parse(t); e == nil && r.Kind == topics.KindRoom {
							c.mu.Lock()
							delete(c.rooms, r.Room)
							c.mu.Unlock()
						}
					}
				}
			}
		}
	}
	c.mu.Lock()
	first := !c.firstSub
	c.firstSub = true
	var resend []*pendingSend
	for _, p := range c.sends {
		resend = append(resend, p)
	}
	c.mu.Unlock()
	if first {
		c.subErr <- err
	}
	if err != nil {
		c.log.Warn("subscribe", "error", err)
		return
	}
	c.q.push(item{kind: itemConnected})
	for _, p := range resend {
		if p.takeFailed() {
			go func(p *pendingSend, tok paho.Token) {
				if <-tok.Done(); tok.Error() != nil {
					p.setFailed()
				}
			}(p, pc.Publish(p.topic, 1, false, p.payload))
		}
	}
}

// addRoom records a room subscription. With baseline, a room new to the
// client starts at its current last seq (its earlier messages are history).
func (c *Client) addRoom(room int64, baseline bool) bool {
	c.mu.Lock()
	known := c.rooms[room]
	c.rooms[room] = true
	c.mu.Unlock()
	if !known && baseline && !c.opts.NoResume {
		c.queueBaseline(topics.RoomConv(room))
	}
	return !known
}

// queueBaseline asks the dispatcher to start conv at its current last seq,
// unless the client already follows it.
func (c *Client) queueBaseline(conv string) {
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.ConnectTimeout)
	defer cancel()
	var last int64
	if page, err := c.api.History(ctx, conv, HistoryQuery{Limit: 1}); err == nil && len(page) > 0 {
		last = page[len(page)-1].Seq
	}
	c.q.push(item{kind: itemBaseline, conv: conv, seq: last})
}

// SubscribeRoom subscribes to a room the user is a member of, now and
// after every reconnect. Messages from the moment of the call on are
// handed over; earlier ones are history.
func (c *Client) SubscribeRoom(ctx context.Context, room int64) error {
	c.addRoom(room, true)
	topic := topics.Room(room)
	tok := c.mqtt.Subscribe(topic, 1, nil)
	if err := waitToken(ctx, tok, c.opts.ConnectTimeout); err != nil {
		return fmt.Errorf("subscribe to %s: %w", topic, err)
	}
	if st, ok := tok.(*paho.SubscribeToken); ok {
		if code := st.Result()[topic]; code >= 0x80 {
			c.mu.Lock()
			delete(c.rooms, room)
			c.mu.Unlock()
			return &Error{Code: wire.CodeForbidden, Topic: topic, Message: "the server refused the subscription to " + topic + ": not a member?"}
		}
	}
	c.q.push(item{kind: itemFill, conv: topics.RoomConv(room)})
	return nil
}

// UnsubscribeRoom stops following a room.
func (c *Client) UnsubscribeRoom(ctx context.Context, room int64) error {
	c.mu.Lock()
	delete(c.rooms, room)
	c.mu.Unlock()
	return waitToken(ctx, c.mqtt.Unsubscribe(topics.Room(room)), c.opts.ConnectTimeout)
}

// JoinRoom joins a public room over REST and subscribes to it.
func (c *Client) JoinRoom(ctx context.Context, room int64) error {
	if err := c.api.JoinRoom(ctx, room); err != nil {
		return err
	}
	return c.SubscribeRoom(ctx, room)
}

// LeaveRoom leaves a room over REST and stops following it.
func (c *Client) LeaveRoom(ctx context.Context, room int64) error {
	if err := c.api.LeaveRoom(ctx, room); err != nil {
		return err
	}
	return c.UnsubscribeRoom(ctx, room)
}

// Rooms returns the ids of the rooms the client follows.
func (c *Client) Rooms() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]int64, 0, len(c.rooms))
	for r := range c.rooms {
		out = append(out, r)
	}
	return out
}

// waitToken waits for a paho token, ctx or timeout, whichever comes first.
func waitToken(ctx context.Context, tok paho.Token, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("no answer from the broker within %v", timeout)
	}
}

// receive is paho's publish handler. It runs on paho's router, so it only
// decodes, resolves a waiting Send, and queues the rest for the
// dispatcher: it never blocks.
func (c *Client) receive(_ paho.Client, m paho.Message) {
	it := item{kind: itemPublish, topic: m.Topic(), payload: append([]byte(nil), m.Payload()...)}
	var in struct {
		Event string `json:"event"`
		CID   string `json:"cid"`
		From  int64  `json:"from"`
	}
	if json.Unmarshal(it.payload, &in) == nil {
		if in.Event == wire.EventError && in.CID != "" {
			var ev wire.ErrorEvent
			if json.Unmarshal(it.payload, &ev) == nil && c.resolveSend(ev.CID, wire.Envelope{}, errorFromEvent(ev)) {
				return // the Send reports it
			}
		}
		if in.Event == "" && in.CID != "" && in.From == c.me.UID {
			var env wire.Envelope
			if json.Unmarshal(it.payload, &env) == nil {
				c.resolveSend(env.CID, env, nil)
			}
		}
	}
	c.q.push(it)
}
