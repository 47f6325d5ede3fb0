package imtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/imserver/imserver/wire"
)

// Msg is a message received on a subscription.
type Msg struct {
	Topic   string
	Payload []byte
}

// Event returns the "event" field of the payload, "" for a message envelope.
func (m Msg) Event() string {
	var in wire.Inbound
	_ = json.Unmarshal(m.Payload, &in)
	return in.Event
}

// Envelope decodes the payload as a message envelope.
func (m Msg) Envelope(t testing.TB) wire.Envelope {
	t.Helper()
	if ev := m.Event(); ev != "" {
		t.Fatalf("got event %q on %s, want a message: %s", ev, m.Topic, m.Payload)
	}
	var e wire.Envelope
	if err := json.Unmarshal(m.Payload, &e); err != nil {
		t.Fatalf("decode envelope %s: %v", m.Payload, err)
	}
	return e
}

// Decode decodes the payload into v.
func (m Msg) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(m.Payload, v); err != nil {
		t.Fatalf("decode %s: %v", m.Payload, err)
	}
}

// inbox buffers received messages.
type inbox chan Msg

// Next returns the next message, failing the test if none comes within 5s.
func (in inbox) Next(t testing.TB) Msg {
	t.Helper()
	select {
	case m := <-in:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
		return Msg{}
	}
}

// None fails the test if a message arrives within d.
func (in inbox) None(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case m := <-in:
		t.Fatalf("unexpected message on %s: %s", m.Topic, m.Payload)
	case <-time.After(d):
	}
}

// Await returns the first message for which match is true, discarding the
// others, failing the test after 5s.
func (in inbox) Await(t testing.TB, what string, match func(Msg) bool) Msg {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m := <-in:
			if match(m) {
				return m
			}
		case <-deadline:
			t.Fatalf("no %s within 5s", what)
			return Msg{}
		}
	}
}

// Transport selects how a client connects.
type Transport string

// Transports.
const (
	TCP Transport = "tcp"
	WS  Transport = "ws"
)

// Transports lists both, for tests that run over each.
var Transports = []Transport{TCP, WS}

// Client is a Paho MQTT 3.1.1 client (github.com/eclipse/paho.mqtt.golang).
// Lost receives the error when the connection is lost.
type Client struct {
	Paho paho.Client
	In   inbox
	Lost chan error
}

// ClientOptions tweak a client.
type ClientOptions struct {
	Transport Transport
	ClientID  string // default u{uid}-test-N
	Password  *string
	Clean     *bool
}

func (s *Server) brokerURL(tr Transport) string {
	if tr == WS {
		return s.WSURL
	}
	return "tcp://" + s.MQTTAddr
}

// Dial connects a 3.1.1 client as u and returns the CONNECT error, if any.
func (s *Server) Dial(t testing.TB, u User, o ClientOptions) (*Client, error) {
	t.Helper()
	if o.Transport == "" {
		o.Transport = TCP
	}
	if o.ClientID == "" {
		o.ClientID = fmt.Sprintf("u%d-test-%d", u.UID, s.seq.Add(1))
	}
	pw := u.Token
	if o.Password != nil {
		pw = *o.Password
	}
	c := &Client{In: make(inbox, 10000), Lost: make(chan error, 1)}
	opts := paho.NewClientOptions().
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case c.Lost <- err:
			default:
			}
		}).
		AddBroker(s.brokerURL(o.Transport)).
		SetClientID(o.ClientID).
		SetUsername(u.Username).
		SetPassword(pw).
		SetProtocolVersion(4).
		SetCleanSession(o.Clean == nil || *o.Clean).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			c.In <- Msg{Topic: m.Topic(), Payload: append([]byte(nil), m.Payload()...)}
		})
	c.Paho = paho.NewClient(opts)
	tok := c.Paho.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Paho.Disconnect(0) })
	return c, nil
}

// Connect is Dial that fails the test on error.
func (s *Server) Connect(t testing.TB, u User, o ClientOptions) *Client {
	t.Helper()
	c, err := s.Dial(t, u, o)
	if err != nil {
		t.Fatalf("connect %s over %s: %v", u.Username, o.Transport, err)
	}
	return c
}

// Subscribe subscribes at QoS 1 and returns the SUBACK code (0x80 =
// refused).
func (c *Client) Subscribe(t testing.TB, topic string) byte {
	t.Helper()
	tok := c.Paho.Subscribe(topic, 1, nil)
	if !tok.WaitTimeout(5 * time.Second) {
		t.Fatalf("subscribe %s: no SUBACK", topic)
	}
	if err := tok.Error(); err != nil {
		return 0x80
	}
	for _, code := range tok.(*paho.SubscribeToken).Result() { // one filter; Paho keys shared ones without "$share/g/"
		return code
	}
	t.Fatalf("subscribe %s: empty SUBACK", topic)
	return 0
}

// MustSubscribe subscribes and fails the test unless it is granted.
func (c *Client) MustSubscribe(t testing.TB, topics ...string) {
	t.Helper()
	for _, topic := range topics {
		if code := c.Subscribe(t, topic); code >= 0x80 {
			t.Fatalf("subscribe %s refused: 0x%02x", topic, code)
		}
	}
}

// Publish publishes payload (a string or []byte as is, anything else as
// JSON) and waits for the ack (QoS 1 and 2) or the write (QoS 0).
func (c *Client) Publish(t testing.TB, topic string, qos byte, payload any) {
	t.Helper()
	tok := c.Paho.Publish(topic, qos, false, encode(t, payload))
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatalf("publish to %s: no ack within 10s", topic)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("publish to %s: %v", topic, err)
	}
}

func encode(t testing.TB, payload any) []byte {
	switch p := payload.(type) {
	case string:
		return []byte(p)
	case []byte:
		return p
	}
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Client5 is a Paho MQTT 5 client (github.com/eclipse/paho.golang).
// Disconnected receives the reason code of a DISCONNECT from the server;
// Lost is closed when the connection ends, whatever the cause.
type Client5 struct {
	Paho         *paho5.Client
	Connack      *paho5.Connack
	In           inbox
	Disconnected chan byte
	Lost         chan struct{}
}

// Dial5 connects an MQTT 5 client over TCP. The Connack is returned even
// when the server refuses.
func (s *Server) Dial5(t testing.TB, u User, clientID string, password *string) (*Client5, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", s.MQTTAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := &Client5{In: make(inbox, 10000), Disconnected: make(chan byte, 1), Lost: make(chan struct{})}
	var lost sync.Once
	c.Paho = paho5.NewClient(paho5.ClientConfig{
		Conn: conn,
		OnServerDisconnect: func(d *paho5.Disconnect) {
			select {
			case c.Disconnected <- d.ReasonCode:
			default:
			}
			lost.Do(func() { close(c.Lost) })
		},
		OnClientError: func(error) { lost.Do(func() { close(c.Lost) }) },
		OnPublishReceived: []func(paho5.PublishReceived) (bool, error){func(pr paho5.PublishReceived) (bool, error) {
			c.In <- Msg{Topic: pr.Packet.Topic, Payload: append([]byte(nil), pr.Packet.Payload...)}
			return true, nil
		}},
	})
	if clientID == "" {
		clientID = fmt.Sprintf("u%d-v5-%d", u.UID, s.seq.Add(1))
	}
	pw := u.Token
	if password != nil {
		pw = *password
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.Connack, err = c.Paho.Connect(ctx, &paho5.Connect{
		ClientID: clientID, KeepAlive: 30, CleanStart: true,
		Username: u.Username, UsernameFlag: true, Password: []byte(pw), PasswordFlag: true,
	})
	if err != nil {
		conn.Close()
		return c, err
	}
	t.Cleanup(func() { _ = c.Paho.Disconnect(&paho5.Disconnect{}) })
	return c, nil
}

// Subscribe subscribes at QoS 1 and returns the SUBACK reason code.
func (c *Client5) Subscribe(t testing.TB, topic string) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sa, err := c.Paho.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: topic, QoS: 1}}})
	if sa != nil && len(sa.Reasons) == 1 {
		return sa.Reasons[0]
	}
	t.Fatalf("subscribe %s: %v", topic, err)
	return 0
}

// Publish publishes and returns the reason code of the PUBACK or PUBREC
// (0 for QoS 0).
func (c *Client5) Publish(t testing.TB, topic string, qos byte, payload any) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pr, err := c.Paho.Publish(ctx, &paho5.Publish{Topic: topic, QoS: qos, Payload: encode(t, payload)})
	if pr != nil {
		return pr.ReasonCode
	}
	if err != nil {
		t.Fatalf("publish to %s: %v", topic, err)
	}
	return 0
}
