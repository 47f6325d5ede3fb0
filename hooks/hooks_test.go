package hooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

// fakeBroker records what the hook asks of the broker.
type fakeBroker struct {
	mu           sync.Mutex
	disconnected map[*mqtt.Client]packets.Code
}

func (b *fakeBroker) RefuseConnect(*mqtt.Client) error           { return nil }
func (b *fakeBroker) Unsubscribe(*mqtt.Client, string)           {}
func (b *fakeBroker) Publish(topic string, payload []byte) error { return nil }
func (b *fakeBroker) Disconnect(cl *mqtt.Client, code packets.Code) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.disconnected == nil {
		b.disconnected = map[*mqtt.Client]packets.Code{}
	}
	b.disconnected[cl] = code
}

func (b *fakeBroker) disconnectedWith(cl *mqtt.Client) (packets.Code, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	code, ok := b.disconnected[cl]
	return code, ok
}

// fakeDomain lets everyone receive their inbox and room 7.
type fakeDomain struct{}

func (fakeDomain) PublishTopic(context.Context, im.Principal, string, []byte) (wire.Envelope, error) {
	return wire.Envelope{}, errors.New("not used")
}
func (fakeDomain) MayReceive(p im.Principal, topic string) bool {
	return topic == room7 || topic == topics.Inbox(p.UID)
}

var room7 = topics.Room(7)

func (fakeDomain) ClientConnected(im.Principal)    {}
func (fakeDomain) ClientDisconnected(im.Principal) {}
func (fakeDomain) InboxSubscribed(im.Principal)    {}
func (fakeDomain) InboxUnsubscribed(im.Principal)  {}

// tokens accepts "uid:seconds" and returns a token expiring after that
// many seconds (negative: already expired).
type tokens struct{ now time.Time }

func (t tokens) Verify(token string) (im.Principal, time.Time, error) {
	var uid, secs int64
	if _, err := fmt.Sscanf(token, "%d:%d", &uid, &secs); err != nil {
		return im.Principal{}, time.Time{}, err
	}
	return im.Principal{UID: uid, Username: fmt.Sprint("u", uid), Role: "user"}, t.now.Add(time.Duration(secs) * time.Second), nil
}

// testHook is a hook with fake collaborators, and a mochi server (never
// started) to make its clients.
type testHook struct {
	*Hook
	broker *fakeBroker
	srv    *mqtt.Server
}

func newTestHook(t testing.TB) testHook {
	b := &fakeBroker{}
	h := New(Options{Domain: fakeDomain{}, Tokens: tokens{now: time.Now()}, Sessions: NewSessions(b), Log: slog.New(slog.DiscardHandler)})
	return testHook{Hook: h, broker: b, srv: mqtt.New(&mqtt.Options{Logger: slog.New(slog.DiscardHandler)})}
}

// connect runs a client through OnConnect and OnSessionEstablished as
// mochi does.
func connect(t testing.TB, h testHook, uid, ttlSeconds int64) *mqtt.Client {
	t.Helper()
	cl := h.srv.NewClient(nil, "test", fmt.Sprintf("u%d-test", uid), false)
	pk := packets.Packet{Connect: packets.ConnectParams{ClientIdentifier: cl.ID, Password: []byte(fmt.Sprintf("%d:%d", uid, ttlSeconds))}}
	if err := h.OnConnect(cl, pk); err != nil {
		t.Fatalf("connect: %v", err)
	}
	if !h.OnConnectAuthenticate(cl, pk) {
		t.Fatal("not authenticated")
	}
	h.OnSessionEstablished(cl, pk)
	return cl
}

func TestTokenExpiryDisconnects(t *testing.T) {
	h := newTestHook(t)
	b := h.broker
	expiring := connect(t, h, 1, 0) // expires now
	lasting := connect(t, h, 2, 3600)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, ok := b.disconnectedWith(expiring); ok {
			if code != packets.ErrNotAuthorized {
				t.Fatalf("disconnected with %v, want not authorized", code)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the client whose token expired was not disconnected")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, ok := b.disconnectedWith(lasting); ok {
		t.Fatal("a client with a valid token was disconnected")
	}
	// Once it is gone, its expiry must not fire any more.
	h.OnDisconnect(lasting, nil, true)
	if _, ok := h.sessions.principal(lasting); ok {
		t.Fatal("a disconnected client is still known")
	}
}

func TestACL(t *testing.T) {
	h := newTestHook(t)
	cl := connect(t, h, 3, 3600)
	for _, tc := range []struct {
		topic string
		write bool
		want  bool
	}{
		{topics.Inbox(3), false, true},
		{topics.Inbox(4), false, false},
		{topics.Room(7), false, true},
		{topics.Inbox(4), true, true}, // publishes are judged by OnPublish
	} {
		if got := h.OnACLCheck(cl, tc.topic, tc.write); got != tc.want {
			t.Errorf("OnACLCheck(%s, write=%v) = %v", tc.topic, tc.write, got)
		}
	}
	stranger := h.srv.NewClient(nil, "test", "u9-x", false)
	if h.OnACLCheck(stranger, topics.Inbox(9), false) {
		t.Error("a client that never authenticated may receive")
	}
	for _, b := range []byte{mqtt.OnConnect, mqtt.OnACLCheck, mqtt.OnPublish, mqtt.OnPublishDropped} {
		if !h.Provides(b) {
			t.Errorf("Provides(%d) = false", b)
		}
	}
	for _, b := range []byte{mqtt.OnPacketEncode, mqtt.OnPacketSent, mqtt.OnQosPublish, mqtt.OnPacketRead} {
		if h.Provides(b) {
			t.Errorf("Provides(%d) = true", b)
		}
	}
}

// BenchmarkOnACLCheck measures the hook's part of a delivery: mochi asks
// whether the hook provides OnACLCheck, then calls it for every delivery
// to every subscriber (the domain's check is a stub here). With 20,000
// clients: "fanout" is one publisher's goroutine going through them in
// turn, as a room's fan-out does; "parallel" is every CPU doing so at
// once.
//
//	go test ./hooks -run '^$' -bench OnACLCheck
func BenchmarkOnACLCheck(b *testing.B) {
	h := newTestHook(b)
	cls := make([]*mqtt.Client, 20_000)
	for i := range cls {
		cls[i] = connect(b, h, int64(i+1), 3600)
	}
	check := func(i int) {
		if !h.Provides(mqtt.OnACLCheck) || !h.OnACLCheck(cls[i%len(cls)], room7, false) {
			b.Fatal("refused")
		}
	}
	b.Run("fanout", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			check(i)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				check(i)
			}
		})
	})
}
