// Package broker wires the embedded MQTT broker (mochi-mqtt): its options,
// sized for many mostly idle chat connections; a TCP listener and a
// WebSocket listener that is an http.Handler, so MQTT over WebSocket shares
// the REST port; server-side publishing; and the few control operations
// mochi has no hook for (refusing a CONNECT with a chosen code, dropping one
// subscription, disconnecting a client).
package broker

import (
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imserver/imserver/internal/netguard"
	"github.com/imserver/imserver/internal/throttle"
)

// Options configures a Broker. The zero value is usable: no TCP listener,
// WebSocket only.
type Options struct {
	// TCPAddr is the address of the MQTT over TCP listener; "" disables it.
	TCPAddr string
	// TCPListener, when set, is used instead of listening on TCPAddr.
	TCPListener net.Listener
	// WriteTimeout bounds one write to a client socket; a client that does
	// not read for this long is disconnected. Default 10s.
	WriteTimeout time.Duration
	// AllowedOrigins lists the Origin headers accepted on WebSocket
	// upgrades; empty or "*" accepts every origin (see WebSocket).
	AllowedOrigins []string
	// PublicURL is the URL browsers reach this server at (its web client's
	// origin); when AllowedOrigins is a list, its origin is allowed too.
	PublicURL string
	// MaxPacketSize is the largest inbound MQTT packet; a bigger one closes
	// the connection. Default 256 KiB, well above the 64 KiB payload limit
	// so that payloads just over it get a proper refusal.
	MaxPacketSize uint32
	// MaxPendingWrites is each client's outbound queue length, in
	// packets. A delivery that finds it full disconnects the client (see
	// hooks), which then catches up from history. Default 256; see
	// DefaultMaxPendingWrites.
	MaxPendingWrites int32
	// ReadBufferSize is each client's socket read buffer, in bytes.
	// Default 1 KiB; see DefaultReadBufferSize.
	ReadBufferSize int
	// ConnectTimeout is how long a new connection (TCP or WebSocket) has
	// to send its CONNECT; default DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// ConnRate limits the new TCP connections accepted per second; 0 is
	// unlimited. (WebSocket connections arrive through the HTTP listener,
	// which has its own.)
	ConnRate float64
	// ConnRatePerIP limits the new TCP connections one client address
	// may open per second; 0 is unlimited. TrustedProxies are exempt.
	ConnRatePerIP float64
	// PendingPerIP limits the TCP connections one client address (an
	// IPv6 /64) may have open that have not been answered a CONNACK yet;
	// 0 is unlimited. TrustedProxies are exempt.
	PendingPerIP   int
	TrustedProxies *throttle.Proxies
	Log            *slog.Logger
}

// Per-client sizes, chosen for many mostly idle chat connections (see
// docs/benchmarks.md, W3). mochi allocates both for every connection
// whether it is busy or not.
const (
	// DefaultMaxPendingWrites is the length of each client's outbound
	// queue (mochi's MaximumClientWritesPending: a channel of pointers,
	// 2 KiB per client at 256 where 1,024 took 8 KiB). Deliveries are
	// written from the queue to the socket at once, so it only fills
	// when the client stops reading (the kernel's socket buffer is full)
	// or its writer gets no CPU; 256 absorbs a burst of 256 messages to
	// one client even then: a room where several members use their whole
	// publish burst (100 by default) at the same moment.
	DefaultMaxPendingWrites = 256
	// DefaultReadBufferSize is each client's socket read buffer. Inbound
	// packets are read whole into their own buffer, so this only batches
	// small packets; a typical chat publish (a few hundred bytes) fits.
	DefaultReadBufferSize = 1024
)

// Broker is the embedded MQTT broker.
type Broker struct {
	srv *mqtt.Server
	ws  *WebSocket
	tcp net.Listener
	log *slog.Logger

	// pubMu serialises Publish, so that cur is what the delivery under
	// way is delivering (see Delivering).
	pubMu sync.Mutex
	cur   atomic.Pointer[delivery]
}

// delivery is what Publish is delivering.
type delivery struct {
	topic   string
	payload []byte
}

// New builds a broker. Hooks are added with AddHook before Serve.
func New(o Options) (*Broker, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.MaxPacketSize == 0 {
		o.MaxPacketSize = 256 << 10
	}
	if o.MaxPendingWrites <= 0 {
		o.MaxPendingWrites = DefaultMaxPendingWrites
	}
	if o.ReadBufferSize <= 0 {
		o.ReadBufferSize = DefaultReadBufferSize
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = o.MaxPacketSize
	caps.MaximumClientWritesPending = o.MaxPendingWrites
	caps.MaximumInflight = 1024 // limits, not allocations: an idle client costs nothing for them
	caps.ReceiveMaximum = ReceiveMaximum
	caps.MaximumSessionExpiryInterval = 2 * 60 * 60 // persistent sessions live 2 h after a disconnect
	caps.MaximumMessageExpiryInterval = 60 * 60
	// Retain, wildcards and shared subscriptions stay advertised: a client
	// may set the retain flag (it is ignored: no publish reaches mochi's
	// retain store), and wildcard or shared filters are refused by the ACL
	// in the SUBACK, as the contract says, rather than by the client library.
	caps.Compatibilities.NoInheritedPropertiesOnAck = true // strict v5 clients reject user properties echoed on PUBACK

	srv := mqtt.New(&mqtt.Options{
		Capabilities:            caps,
		ClientNetReadBufferSize: o.ReadBufferSize,
		InlineClient:            true,
		SysTopicResendInterval:  3600, // nobody may read $SYS; don't spend a MemStats per second on it
		Logger:                  slog.New(QuietHandler(o.Log.Handler())).With("component", "mqtt"),
	})
	b := &Broker{srv: srv, log: o.Log}
	origins := o.AllowedOrigins
	if o.PublicURL != "" && len(origins) > 0 {
		origins = append(slices.Clone(origins), o.PublicURL)
	}
	b.ws = newWebSocket("ws", o.WriteTimeout, o.ConnectTimeout, int64(o.MaxPacketSize)+16, origins)
	b.ws.closeClients = b.closeListenerClients
	if err := srv.AddListener(b.ws); err != nil {
		return nil, fmt.Errorf("websocket listener: %w", err)
	}
	ln := o.TCPListener
	if ln == nil && o.TCPAddr != "" {
		var err error
		if ln, err = net.Listen("tcp", o.TCPAddr); err != nil {
			return nil, fmt.Errorf("mqtt listener: %w", err)
		}
	}
	if ln != nil {
		ln = netguard.Wrap(ln, netguard.Options{
			Rate: o.ConnRate, RatePerIP: o.ConnRatePerIP, PendingPerIP: o.PendingPerIP, Exempt: o.TrustedProxies, Name: "mqtt", Log: o.Log,
		})
		b.tcp = ln
		if err := srv.AddListener(&tcpListener{
			id: "tcp", ln: ln, writeTimeout: o.WriteTimeout, connectTimeout: o.ConnectTimeout, closeClients: b.closeListenerClients,
		}); err != nil {
			ln.Close()
			return nil, fmt.Errorf("mqtt listener: %w", err)
		}
	}
	return b, nil
}

// ReceiveMaximum is how many QoS 1 and 2 publishes an MQTT 5 client may
// have unacknowledged, announced in the CONNACK; the hook's pipeline takes
// as many per connection.
const ReceiveMaximum = 256

// MaxPacketSize is the largest inbound packet, in bytes.
func (b *Broker) MaxPacketSize() uint32 { return b.srv.Options.Capabilities.MaximumPacketSize }

// AddHook registers a mochi hook. Call before Serve.
func (b *Broker) AddHook(h mqtt.Hook, config any) error { return b.srv.AddHook(h, config) }

// Serve starts accepting clients. It returns once the listeners take
// connections (mochi starts them on goroutines of their own: without the
// wait, /mqtt could answer 503 just after the server said it was ready).
func (b *Broker) Serve() error {
	if err := b.srv.Serve(); err != nil {
		return err
	}
	<-b.ws.serving
	return nil
}

// Close disconnects every client (DISCONNECT 0x8B on MQTT 5) and waits for
// their goroutines, including publishes being stored, to end.
func (b *Broker) Close() error { return b.srv.Close() }

// closeListenerClients disconnects every client of a listener (DISCONNECT
// 0x8B on MQTT 5), concurrently, and returns when all are closed. It
// replaces mochi's own, which read-locks the client map twice
// (Clients.GetByListener calls Clients.Len under its RLock): a client
// disconnecting in between queues for the write lock, the second RLock
// waits behind it, and shutdown hangs for ever (mochi issue #488; the fix,
// #489, is not in v2.7.9).
func (b *Broker) closeListenerClients(listener string) {
	var wg sync.WaitGroup
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Listener != listener || cl.Closed() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = b.srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
		}()
	}
	wg.Wait()
}

// TCPAddr returns the address of the TCP listener, or "" if there is none.
func (b *Broker) TCPAddr() string {
	if b.tcp == nil {
		return ""
	}
	return b.tcp.Addr().String()
}

// WebSocket returns the handler serving MQTT over WebSocket; mount it on the
// HTTP server at /mqtt.
func (b *Broker) WebSocket() *WebSocket { return b.ws }

// Publish delivers payload to every subscriber of topic whose read ACL
// allows it, at the QoS of its subscription (PROTOCOL.md §9: QoS 1 for a
// QoS 1 subscription, which the client acknowledges). A subscriber that
// cannot keep up never blocks the publisher: its queue is bounded and it
// is disconnected when full (see hooks); it catches up from history, or
// from its persistent session.
func (b *Broker) Publish(topic string, payload []byte) error {
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	b.cur.Store(&delivery{topic, payload})
	defer b.cur.Store(nil)
	return b.srv.Publish(topic, payload, false, 1)
}

// Delivering returns the payload Publish is delivering on topic, for the
// hooks mochi calls from within that delivery (the read ACL asks for
// every subscriber), or nil.
func (b *Broker) Delivering(topic string) []byte {
	if d := b.cur.Load(); d != nil && d.topic == topic {
		return d.payload
	}
	return nil
}

// Session returns the client of id's session, connected or not, if the
// broker has one.
func (b *Broker) Session(id string) (*mqtt.Client, bool) { return b.srv.Clients.Get(id) }

// Retain keeps payload as topic's retained message, without delivering
// it: a client subscribing to topic gets it right after its SUBACK
// (mochi sends retained messages then, subject to the read ACL). Clients
// cannot retain anything themselves: their publishes never reach mochi's
// retain store (see hooks).
func (b *Broker) Retain(topic string, payload []byte) {
	b.srv.Topics.RetainMessage(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Retain: true},
		TopicName:   topic,
		Payload:     payload,
		Origin:      "inline",
		Created:     time.Now().Unix(),
	})
}

// RefuseConnect answers a CONNECT with code, an MQTT 5 CONNACK reason:
// ErrNotAuthorized, ErrServerUnavailable or ErrClientIdentifierNotValid.
// MQTT 3.1.1 clients get the return code of the same meaning (5, 3 or 2):
// 3.1.1 allows no other.
func (b *Broker) RefuseConnect(cl *mqtt.Client, code packets.Code) error {
	if cl.Properties.ProtocolVersion < 5 {
		switch code {
		case packets.ErrServerUnavailable, packets.ErrQuotaExceeded:
			code = packets.Err3ServerUnavailable
		case packets.ErrClientIdentifierNotValid:
			code = packets.Err3ClientIdentifierNotValid
		default:
			code = packets.Err3NotAuthorized
		}
	}
	return b.srv.SendConnack(cl, code, false, nil)
}

// Unsubscribe removes one subscription of a client, as if it had
// unsubscribed, without sending it an UNSUBACK.
func (b *Broker) Unsubscribe(cl *mqtt.Client, filter string) {
	if b.srv.Topics.Unsubscribe(filter, cl.ID) {
		atomic.AddInt64(&b.srv.Info.Subscriptions, -1)
	}
	cl.State.Subscriptions.Delete(filter)
}

// ForgetSession ends the persistent session of client id if it has no
// connection: its subscriptions go, and a client resuming it starts
// afresh.
func (b *Broker) ForgetSession(id string) {
	cl, ok := b.srv.Clients.Get(id)
	if !ok || !cl.Closed() {
		return
	}
	b.srv.UnsubscribeClient(cl)
	cl.ClearInflights()
	b.srv.Clients.Delete(id)
}

// Disconnect sends an MQTT 5 client a DISCONNECT with code and closes its
// connection. MQTT 3.1.1 has no server DISCONNECT: those connections are
// just closed. It returns at once; a client whose socket does not take the
// DISCONNECT within a second is closed without it.
func (b *Broker) Disconnect(cl *mqtt.Client, code packets.Code) {
	if cl.Properties.ProtocolVersion < 5 {
		cl.Stop(code)
		return
	}
	go func() {
		done := make(chan struct{})
		go func() {
			_ = b.srv.DisconnectClient(cl, code)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(time.Second):
			cl.Stop(code)
		}
	}()
}

// Info returns the broker's counters.
func (b *Broker) Info() (clients, subscriptions, dropped int64) {
	return atomic.LoadInt64(&b.srv.Info.ClientsConnected), atomic.LoadInt64(&b.srv.Info.Subscriptions), atomic.LoadInt64(&b.srv.Info.MessagesDropped)
}
