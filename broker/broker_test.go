package broker

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/packets"
)

// dropCounter counts deliveries mochi drops because a client's queue is
// full: the ones the server's hook answers by disconnecting the client.
type dropCounter struct {
	mqtt.HookBase
	drops atomic.Int64
}

func (h *dropCounter) ID() string                                    { return "drops" }
func (h *dropCounter) Provides(b byte) bool                          { return b == mqtt.OnPublishDropped }
func (h *dropCounter) OnPublishDropped(*mqtt.Client, packets.Packet) { h.drops.Add(1) }

// TestQueueAbsorbsBurst checks that a burst of as many deliveries as a
// client's queue holds reaches it without a drop (which would disconnect
// it) even when its writer cannot send anything meanwhile, and that a
// burst twice that size does overflow: the queue is the size configured.
func TestQueueAbsorbsBurst(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{TCPListener: ln, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	drops := new(dropCounter)
	if err := b.AddHook(new(auth.AllowHook), nil); err != nil { // no other auth hook here
		t.Fatal(err)
	}
	if err := b.AddHook(drops, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Serve(); err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	var received atomic.Int64
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + b.TCPAddr()).SetClientID("burst").
		SetAutoReconnect(false).SetOrderMatters(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(0)
	if tok := c.Subscribe("burst", 0, func(paho.Client, paho.Message) { received.Add(1) }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	cl, ok := b.srv.Clients.Get("burst")
	if !ok {
		t.Fatal("the client is not known to the broker")
	}

	burst := func(n int) {
		// The client's writer holds its lock while it writes; holding it
		// here stalls the writer after it has taken at most one packet,
		// so everything else of the burst must wait in the queue.
		cl.Lock()
		defer cl.Unlock()
		for i := range n {
			if err := b.Publish("burst", fmt.Appendf(nil, "message %d", i)); err != nil {
				t.Errorf("publish: %v", err)
			}
		}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d received, %d dropped", what, received.Load(), drops.drops.Load())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	burst(DefaultMaxPendingWrites)
	if n := drops.drops.Load(); n != 0 {
		t.Fatalf("a burst of %d deliveries dropped %d", DefaultMaxPendingWrites, n)
	}
	waitFor("the burst was not delivered", func() bool { return received.Load() == DefaultMaxPendingWrites })

	burst(2 * DefaultMaxPendingWrites)
	if n := drops.drops.Load(); n < DefaultMaxPendingWrites-1 {
		t.Fatalf("a burst of %d deliveries to a stalled client dropped only %d", 2*DefaultMaxPendingWrites, n)
	}
}

// TestCloseWhileClientsLeave closes the broker while its clients are
// disconnecting. mochi's own way of closing a listener's clients
// deadlocks when one of them leaves at that moment (see closeListenerClients);
// Close must return.
func TestCloseWhileClientsLeave(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{TCPListener: ln, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Serve(); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", b.TCPAddr())
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
			Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 60, ClientIdentifier: fmt.Sprint("leaver", i)}}
		var buf bytes.Buffer
		if err := pk.ConnectEncode(&buf); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(buf.Bytes()); err != nil {
			t.Fatal(err)
		}
		var ack [4]byte
		if _, err := io.ReadFull(c, ack[:]); err != nil || ack[0]>>4 != packets.Connack {
			t.Fatalf("CONNACK: % x, %v", ack, err)
		}
	}
	go func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for { // close while the broker is removing clients
		if clients, _, _ := b.Info(); clients < n-n/10 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	select {
	case <-closed:
	case <-time.After(time.Minute): // a deadlock, not slowness: Close takes milliseconds
		t.Fatal("Close did not return while clients were leaving")
	}
}
