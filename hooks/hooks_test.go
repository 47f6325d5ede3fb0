package hooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/topics"
)

// fakeBroker records what the hook asks of the broker.
type fakeBroker struct {
	mu           sync.Mutex
	disconnected map[*mqtt.Client]packets.Code
	forgotten    []string
}

func (b *fakeBroker) RefuseConnect(*mqtt.Client, packets.Code) error { return nil }
func (b *fakeBroker) Unsubscribe(*mqtt.Client, string)               {}
func (b *fakeBroker) ForgetSession(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.forgotten = append(b.forgotten, id)
}
func (b *fakeBroker) Publish(topic string, payload []byte) error { return nil }
func (b *fakeBroker) Session(string) (*mqtt.Client, bool)        { return nil, false }
func (b *fakeBroker) Delivering(string) []byte                   { return nil }
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

// fakeChat refuses every publish.
type fakeChat struct{}

func (fakeChat) PublishTopic(context.Context, im.Principal, string, []byte) (im.Message, error) {
	return im.Message{}, errors.New("not used")
}

func (fakeChat) Submit(_ context.Context, _ im.Principal, _ string, _ []byte, done im.Done) {
	done(im.Message{}, errors.New("not used"))
}

// fakeDomain lets everyone receive their inbox and room 7 and follow user
// 9's presence, and counts who became reachable, online and offline.
type fakeDomain struct {
	mu        sync.Mutex
	reachable map[int64]int
	online    map[int64]int
	offline   map[int64]int
}

func (*fakeDomain) SubscribePresence(_ context.Context, p im.Principal, uid int64) error {
	if uid == 9 {
		return nil
	}
	return &im.Error{Kind: im.ErrForbidden, Msg: "no"}
}

func (d *fakeDomain) count(m *map[int64]int, uid int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if *m == nil {
		*m = map[int64]int{}
	}
	(*m)[uid]++
}

func (d *fakeDomain) UserOnline(uid int64)  { d.count(&d.online, uid) }
func (d *fakeDomain) UserOffline(uid int64) { d.count(&d.offline, uid) }

func (*fakeDomain) MayReceive(p im.Principal, topic string) bool {
	return topic == room7 || topic == topics.Inbox(p.UID)
}

func (d *fakeDomain) UserReachable(uid int64) { d.count(&d.reachable, uid) }
func (d *fakeDomain) InboxSubscribed(int64)   {}

var room7 = topics.Room(7)

// tokens accepts "uid:seconds" and returns a token expiring after that
// many seconds (negative: already expired).
type tokens struct{ now time.Time }

func (t tokens) Authenticate(_ context.Context, token string) (im.Principal, time.Time, error) {
	var uid, secs int64
	if _, err := fmt.Sscanf(token, "%d:%d", &uid, &secs); err != nil {
		return im.Principal{}, time.Time{}, err
	}
	return im.Principal{UID: uid, Username: fmt.Sprint("u", uid), Role: "user"}, t.now.Add(time.Duration(secs) * time.Second), nil
}

var clientSeq atomic.Int64

// testHook is a hook with fake collaborators, and a mochi server (never
// started) to make its clients.
type testHook struct {
	*Hook
	broker *fakeBroker
	dom    *fakeDomain
	srv    *mqtt.Server
}

func newTestHook(t testing.TB) testHook {
	b, d := &fakeBroker{}, &fakeDomain{}
	h := New(Options{Chat: fakeChat{}, Domain: d, Tokens: tokens{now: time.Now()}, Registry: NewRegistry(b), Log: slog.New(slog.DiscardHandler)})
	return testHook{Hook: h, broker: b, dom: d, srv: mqtt.New(&mqtt.Options{Logger: slog.New(slog.DiscardHandler)})}
}

// connect runs a client through OnConnect and OnSessionEstablished as
// mochi does.
func connect(t testing.TB, h testHook, uid, ttlSeconds int64) *mqtt.Client {
	t.Helper()
	cl := h.srv.NewClient(nil, "test", fmt.Sprintf("u%d-test-%d", uid, clientSeq.Add(1)), false)
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
	if _, ok := h.registry.principal(lasting); ok {
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
	for _, b := range []byte{mqtt.OnPacketSent, mqtt.OnQosPublish, mqtt.OnQosComplete, mqtt.OnPublished} {
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

// subscribeInbox runs a client's inbox SUBSCRIBE through OnSubscribed.
func subscribeInbox(h testHook, cl *mqtt.Client, uid int64) {
	h.OnSubscribed(cl, packets.Packet{Filters: packets.Subscriptions{{Filter: topics.Inbox(uid)}}}, []byte{1})
}

// The registry counts each client on its own: a user is online while one
// of its clients is established and reachable while one of them is on its
// inbox; the domain hears of reachability once, when it starts.
func TestRegistryPresence(t *testing.T) {
	h := newTestHook(t)
	r := h.registry
	phone, laptop := connect(t, h, 5, 3600), connect(t, h, 5, 3600)
	if !r.Online(5) || r.Reachable(5) {
		t.Fatalf("connected: online %v reachable %v", r.Online(5), r.Reachable(5))
	}
	subscribeInbox(h, phone, 5)
	subscribeInbox(h, laptop, 5)
	subscribeInbox(h, laptop, 5) // a repeated SUBSCRIBE changes nothing
	if !r.Reachable(5) || h.dom.reachable[5] != 1 {
		t.Fatalf("subscribed: reachable %v, told the domain %d times", r.Reachable(5), h.dom.reachable[5])
	}
	h.OnUnsubscribed(phone, packets.Packet{Filters: packets.Subscriptions{{Filter: topics.Inbox(5)}}})
	if !r.Reachable(5) {
		t.Fatal("the laptop is still on the inbox")
	}
	h.OnDisconnect(laptop, nil, true)
	if !r.Online(5) || r.Reachable(5) {
		t.Fatalf("laptop gone: online %v reachable %v", r.Online(5), r.Reachable(5))
	}
	subscribeInbox(h, phone, 5)
	if h.dom.reachable[5] != 2 {
		t.Fatalf("reachable again: told the domain %d times, want 2", h.dom.reachable[5])
	}
	h.OnDisconnect(phone, nil, true)
	h.OnDisconnect(phone, nil, true) // mochi may report a takeover's old client late
	if r.Online(5) || r.Reachable(5) || len(r.clientsOf(5)) != 0 {
		t.Fatal("still online after every client left")
	}
	if h.dom.online[5] != 1 || h.dom.offline[5] != 1 {
		t.Fatalf("told the domain online %d and offline %d times, want once each", h.dom.online[5], h.dom.offline[5])
	}
}

// A presence topic is granted per connection, by the domain, at SUBSCRIBE;
// one's own is always granted.
func TestPresenceACL(t *testing.T) {
	h := newTestHook(t)
	cl, other := connect(t, h, 3, 3600), connect(t, h, 4, 3600)
	sub := packets.Packet{Filters: packets.Subscriptions{{Filter: topics.Presence(9)}, {Filter: topics.Presence(8)}, {Filter: topics.Presence(3)}}}
	h.OnSubscribe(cl, sub)
	for _, tc := range []struct {
		cl    *mqtt.Client
		topic string
		want  bool
	}{
		{cl, topics.Presence(9), true},     // allowed by the domain
		{cl, topics.Presence(8), false},    // refused by the domain
		{cl, topics.Presence(3), true},     // its own
		{other, topics.Presence(9), false}, // granted to cl only
		{other, topics.Presence(4), true},
		{cl, "im/p/09", false},
	} {
		if got := h.OnACLCheck(tc.cl, tc.topic, false); got != tc.want {
			t.Errorf("OnACLCheck(u%s, %s) = %v", tc.cl.ID, tc.topic, got)
		}
	}
}

// Connections come and go while routing asks who is online and reachable
// (run with -race: the presence code this registry replaced raced here,
// reading its maps without the lock while the first connect replaced
// them).
func TestRegistryConcurrentUse(t *testing.T) {
	h := newTestHook(t)
	r := h.registry
	var wg sync.WaitGroup
	for w := range 4 {
		uid := int64(w%2 + 1)
		wg.Go(func() {
			for range 200 {
				cl := connect(t, h, uid, 3600)
				subscribeInbox(h, cl, uid)
				if !r.Online(uid) || !r.Reachable(uid) {
					t.Error("a connected, subscribed client's user is not reachable")
					return
				}
				h.OnDisconnect(cl, nil, true)
			}
		})
		wg.Go(func() {
			for range 2000 {
				_ = r.Online(uid)
				_ = r.Reachable(uid)
				r.DropSubscription(uid, room7)
			}
		})
	}
	wg.Wait()
	if r.Online(1) || r.Online(2) {
		t.Fatal("online after every client left")
	}
}

// A user holds at most MaxSessions live connections and parked persistent
// sessions: the oldest parked session goes first; with none parked, a new
// connection is refused.
func TestSessionCap(t *testing.T) {
	h := newTestHook(t)
	h.maxSess = 3
	r := h.registry
	a, b := connect(t, h, 8, 3600), connect(t, h, 8, 3600)
	h.OnDisconnect(a, nil, false) // a's session stays, parked
	h.OnDisconnect(b, nil, false)
	c := connect(t, h, 8, 3600) // 1 live + 2 parked = 3
	if len(h.broker.forgotten) != 0 {
		t.Fatalf("forgot %v below the cap", h.broker.forgotten)
	}
	connect(t, h, 8, 3600) // over: the oldest parked (a) goes
	if len(h.broker.forgotten) != 1 || h.broker.forgotten[0] != a.ID {
		t.Fatalf("forgotten %v, want [%s]", h.broker.forgotten, a.ID)
	}
	connect(t, h, 8, 3600) // over again: b goes
	if len(h.broker.forgotten) != 2 || h.broker.forgotten[1] != b.ID {
		t.Fatalf("forgotten %v", h.broker.forgotten)
	}
	// Three live connections: a fourth is refused, another user is not.
	cl := h.srv.NewClient(nil, "test", "u8-fourth", false)
	pk := packets.Packet{Connect: packets.ConnectParams{ClientIdentifier: cl.ID, Password: []byte("8:3600")}}
	if err := h.OnConnect(cl, pk); err == nil {
		t.Fatal("a fourth live connection was admitted")
	}
	connect(t, h, 9, 3600)
	// A session resuming itself does not count twice.
	h.OnDisconnect(c, nil, false)
	resumed := h.srv.NewClient(nil, "test", c.ID, false)
	pk = packets.Packet{Connect: packets.ConnectParams{ClientIdentifier: c.ID, Password: []byte("8:3600")}}
	if err := h.OnConnect(resumed, pk); err != nil {
		t.Fatalf("resuming a parked session: %v", err)
	}
	_ = r
}

// Client ids over 128 bytes are refused (PROTOCOL §9).
func TestClientIDLength(t *testing.T) {
	h := newTestHook(t)
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"u1-" + strings.Repeat("x", 125), true},
		{"u1-" + strings.Repeat("x", 126), false},
	} {
		cl := h.srv.NewClient(nil, "test", tc.id, false)
		err := h.OnConnect(cl, packets.Packet{Connect: packets.ConnectParams{ClientIdentifier: tc.id, Password: []byte("1:3600")}})
		if (err == nil) != tc.ok {
			t.Errorf("client id of %d bytes: %v", len(tc.id), err)
		}
		if !tc.ok && !errors.Is(err, packets.ErrClientIdentifierNotValid) {
			t.Errorf("refused with %v, want 0x85", err)
		}
	}
}
