package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/imserver/imserver/clients"
	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

// settings are the sizes of a run; every loop is bounded by them.
type settings struct {
	Duration, Warmup time.Duration
	Payload          int     // bytes of each publish
	SubQoS           byte    // QoS of every subscription
	Inflight         int     // unacknowledged publishes per client in pipelined phases (W1 "pipelined")
	MaxMessages      int64   // per phase, over all clients
	Users            int     // W1
	Rate             float64 // W1 offered msgs/s; 0 = as fast as acks allow
	Sweep            []float64
	Members          int // W2
	Conns            int // W3
	ConnUsers        int
	ConnParallel     int
	Hold             time.Duration // W3: idle time before RSS is read
	Spread           bool          // W3: spread connections over 127.0.0.x source addresses
	Customers        int           // W4
	Agents           int
}

// bench runs workloads against one target.
type bench struct {
	s    settings
	t    *target
	prog *progress
	log  *slog.Logger
	run  string // a prefix making this run's usernames unique
	api  *clients.API
	// cur is the metrics of the phase being measured; receive handlers
	// outlive phases.
	cur   atomic.Pointer[phaseMetrics]
	conns atomic.Int64 // connection index, for source addresses
}

func newBench(s settings, t *target, prog *progress, log *slog.Logger) *bench {
	b := &bench{s: s, t: t, prog: prog, log: log, run: "b" + randomHex(3)}
	if t.HTTP != "" {
		b.api = clients.NewAPI(t.HTTP, &http.Client{Timeout: 30 * time.Second})
	}
	b.cur.Store(&phaseMetrics{})
	return b
}

// phaseMetrics counts one phase. Only what happens between from and to
// (Unix ns) counts towards rates and latencies.
type phaseMetrics struct {
	from, to                              int64
	sent, acked, delivered, refused, echo atomic.Int64
	inWindowAcked, inWindowDelivered      atomic.Int64
	lat                                   latencies
}

func (m *phaseMetrics) inWindow(ns int64) bool { return ns >= m.from && ns <= m.to }

// identity is who a connection authenticates as: a real user of
// imserver, or a made-up one for a bare broker.
type identity struct {
	UID      int64
	Username string
	Token    string
}

// identities returns n identities. On imserver they are registered and
// logged in over REST, 8 at a time.
func (b *bench) identities(ctx context.Context, n int, role string) ([]identity, error) {
	ids := make([]identity, n)
	if b.t.Kind != kindIM {
		base := b.conns.Load()*10 + 1_000_000 // distinct from other workloads' ids
		for i := range ids {
			ids[i] = identity{UID: base + int64(i), Username: fmt.Sprintf("%s_%s%d", b.run, role, i)}
		}
		return ids, nil
	}
	err := parallel(ctx, n, 8, func(i int) error {
		name := fmt.Sprintf("%s_%s%d", b.run, role, i)
		if _, err := b.api.Register(ctx, name, "bench-password"); err != nil && !errors.Is(err, clients.ErrConflict) {
			return fmt.Errorf("register %s: %w", name, err)
		}
		tok, err := b.api.Login(ctx, name, "bench-password")
		if err != nil {
			return fmt.Errorf("log in %s: %w", name, err)
		}
		ids[i] = identity{UID: tok.UID, Username: tok.Username, Token: tok.AccessToken}
		return nil
	})
	return ids, err
}

// parallel runs fn(0..n-1) on up to workers goroutines and returns the
// first error.
func parallel(ctx context.Context, n, workers int, fn func(i int) error) error {
	var (
		next  atomic.Int64
		first error
		once  sync.Once
		wg    sync.WaitGroup
	)
	for range min(workers, max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// connect opens an MQTT 3.1.1 connection as id and subscribes to subs at
// the configured QoS (1 unless -sub-qos says otherwise), handing what
// arrives to h.
func (b *bench) connect(ctx context.Context, id identity, subs []string, h paho.MessageHandler) (paho.Client, error) {
	idx := int(b.conns.Add(1) - 1)
	d := &net.Dialer{Timeout: 10 * time.Second}
	if b.s.Spread && isLoopback(b.t.MQTT) {
		d.LocalAddr = sourceAddr(idx)
		d.Control = bindNoPort
	}
	o := paho.NewClientOptions().
		AddBroker("tcp://" + b.t.MQTT).
		SetClientID(fmt.Sprintf("u%d-%s-%d", id.UID, b.run, idx)).
		SetUsername(id.Username).
		SetPassword(id.Token).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetKeepAlive(120 * time.Second).
		SetPingTimeout(30 * time.Second).
		SetConnectTimeout(20 * time.Second).
		SetWriteTimeout(20 * time.Second).
		SetOrderMatters(true).
		SetDialer(d)
	if h != nil {
		o.SetDefaultPublishHandler(h)
	}
	c := paho.NewClient(o)
	if err := wait(ctx, c.Connect(), 30*time.Second); err != nil {
		return nil, fmt.Errorf("connect %s: %w", id.Username, err)
	}
	if len(subs) > 0 {
		filters := make(map[string]byte, len(subs))
		for _, s := range subs {
			filters[s] = b.s.SubQoS
		}
		tok := c.SubscribeMultiple(filters, nil)
		if err := wait(ctx, tok, 30*time.Second); err != nil {
			c.Disconnect(0)
			return nil, fmt.Errorf("subscribe %v: %w", subs, err)
		}
		for topic, code := range tok.(*paho.SubscribeToken).Result() {
			if code >= 0x80 {
				c.Disconnect(0)
				return nil, fmt.Errorf("subscription to %s refused", topic)
			}
		}
	}
	b.prog.conns.Add(1)
	return c, nil
}

func wait(ctx context.Context, tok paho.Token, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("no answer within %v", timeout)
	}
}

func disconnectAll(cs []paho.Client) {
	_ = parallel(context.Background(), len(cs), 64, func(i int) error {
		if cs[i] != nil {
			cs[i].Disconnect(100)
		}
		return nil
	})
}

// payload builds a publish of the contract's shape, padded to size bytes,
// whose text starts with the send time (Unix ns) for the receiver.
func payload(ts int64, cid string, size int) []byte {
	head := `{"cid":"` + cid + `","type":"text","body":"` + strconv.FormatInt(ts, 10) + "|"
	tail := `"}`
	pad := max(size-len(head)-len(tail), 1)
	out := make([]byte, 0, len(head)+pad+len(tail))
	out = append(out, head...)
	out = append(out, bytes.Repeat([]byte{'x'}, pad)...)
	return append(out, tail...)
}

var (
	eventPrefix = []byte(`{"event":`)
	errorEvent  = []byte(`"event":"error"`)
	fromField   = []byte(`"from":`)
	bodyField   = []byte(`"body":"`)
)

// intAfter parses the integer following key in p, or returns -1.
func intAfter(p, key []byte) int64 {
	i := bytes.Index(p, key)
	if i < 0 {
		return -1
	}
	var n int64
	j := i + len(key)
	start := j
	for j < len(p) && p[j] >= '0' && p[j] <= '9' {
		n = n*10 + int64(p[j]-'0')
		j++
	}
	if j == start {
		return -1
	}
	return n
}

// receiver counts what a connection of uid self receives. Its own echoes
// (imserver) and events are told apart without decoding JSON: the load
// generator shares the machine with the server.
func (b *bench) receiver(self int64) paho.MessageHandler {
	return func(_ paho.Client, msg paho.Message) {
		m := b.cur.Load()
		p := msg.Payload()
		if bytes.HasPrefix(p, eventPrefix) {
			if bytes.Contains(p, errorEvent) {
				m.refused.Add(1)
			}
			return
		}
		if from := intAfter(p, fromField); from == self {
			m.echo.Add(1)
			return
		}
		now := time.Now().UnixNano()
		m.delivered.Add(1)
		b.prog.received.Add(1)
		if m.inWindow(now) {
			m.inWindowDelivered.Add(1)
			if ts := intAfter(p, bodyField); ts > 0 {
				m.lat.add(time.Duration(now - ts))
			}
		}
	}
}

// sender publishes to topic() from c until the phase ends: as fast as
// acks allow (rate 0), or at rate msgs/s on an open-loop schedule, with at
// most inflight unacknowledged publishes.
func (b *bench) sender(ctx context.Context, c paho.Client, topic func() string, rate float64, inflight int, start, end time.Time, m *phaseMetrics, limit *atomic.Int64) {
	sem := make(chan struct{}, max(inflight, 1))
	var wg sync.WaitGroup
	defer wg.Wait()
	interval := time.Duration(0)
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
		// Start each sender at a random point of its first interval.
		start = start.Add(time.Duration(rand.Int64N(int64(interval) + 1)))
	}
	cid := randomHex(4)
	for i := int64(0); ; i++ {
		ts := time.Now()
		if interval > 0 {
			ts = start.Add(time.Duration(i) * interval)
			if d := time.Until(ts); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return
				}
			}
		}
		if !ts.Before(end) || ctx.Err() != nil || limit.Add(-1) < 0 {
			return
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		tok := c.Publish(topic(), 1, false, payload(ts.UnixNano(), cid+"-"+strconv.FormatInt(i, 10), b.s.Payload))
		m.sent.Add(1)
		b.prog.sent.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := wait(ctx, tok, 30*time.Second); err != nil {
				return
			}
			now := time.Now().UnixNano()
			m.acked.Add(1)
			b.prog.acked.Add(1)
			if m.inWindow(now) {
				m.inWindowAcked.Add(1)
			}
		}()
	}
}

// phase runs senders for warmup+duration, each with at most inflight
// unacknowledged publishes (1: a closed loop), waits for deliveries to
// drain, and returns the metrics, with the server's CPU time and write
// calls per accepted message. expectPer is how many deliveries each send
// makes (the room size for W2).
func (b *bench) phase(ctx context.Context, label string, senders []paho.Client, topic func(i int) string, rate float64, inflight int, expectPer int64) (*phaseMetrics, serverCost) {
	start := time.Now()
	m := &phaseMetrics{from: start.Add(b.s.Warmup).UnixNano(), to: start.Add(b.s.Warmup + b.s.Duration).UnixNano()}
	b.cur.Store(m)
	b.prog.begin(label)
	cpu0, w0 := b.cpu(), b.writes()
	var limit atomic.Int64
	limit.Store(b.s.MaxMessages)
	end := start.Add(b.s.Warmup + b.s.Duration)
	var wg sync.WaitGroup
	for i, c := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			per := 0.0
			if rate > 0 {
				per = rate / float64(len(senders))
			}
			b.sender(ctx, c, func() string { return topic(i) }, per, inflight, start, end, m, &limit)
		}()
	}
	wg.Wait()
	cpu1, w1 := b.cpu(), b.writes()
	// Drain: wait until every accepted message is delivered, or until
	// nothing has arrived for a second (bounded by 10s).
	drainEnd := time.Now().Add(10 * time.Second)
	last, lastChange := int64(-1), time.Now()
	for time.Now().Before(drainEnd) && ctx.Err() == nil {
		got := m.delivered.Load() + m.refused.Load()*expectPer
		if got >= m.acked.Load()*expectPer {
			break
		}
		if got != last {
			last, lastChange = got, time.Now()
		} else if time.Since(lastChange) > time.Second {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.prog.end()
	cost := serverCost{cpuPerMsg: -1, writesPerMsg: -1}
	if n := m.acked.Load(); n > 0 {
		if cpu0 >= 0 && cpu1 >= cpu0 {
			cost.cpuPerMsg = float64(cpu1-cpu0) * 10_000 / float64(n) // ticks are 10ms: µs per message
		}
		if w0 >= 0 && w1 >= w0 {
			cost.writesPerMsg = float64(w1-w0) / float64(n)
		}
	}
	return m, cost
}

// serverCost is what a phase cost the server per accepted message: CPU
// time in µs and write system calls (-1 when unknown).
type serverCost struct{ cpuPerMsg, writesPerMsg float64 }

// writes reads the server's count of write system calls, or -1 when it
// would not be the server's alone.
func (b *bench) writes() int64 {
	if b.t.PID == 0 || b.t.SameProcess {
		return -1
	}
	return writeCalls(b.t.PID)
}

// cpu reads the server's CPU ticks, or -1 when they would not be the
// server's alone.
func (b *bench) cpu() int64 {
	if b.t.PID == 0 || b.t.SameProcess {
		return -1
	}
	return cpuTicks(b.t.PID)
}

func (b *bench) metrics(m *phaseMetrics, cost serverCost, delivered string, expectPer int64) map[string]float64 {
	secs := b.s.Duration.Seconds()
	p50, p90, p99, _ := m.lat.percentiles()
	out := map[string]float64{
		"accepted_per_s": float64(m.inWindowAcked.Load()) / secs,
		delivered:        float64(m.inWindowDelivered.Load()) / secs,
		"p50_ms":         p50, "p90_ms": p90, "p99_ms": p99,
		"sent":    float64(m.sent.Load()),
		"acked":   float64(m.acked.Load()),
		"refused": float64(m.refused.Load()),
		"lost":    float64(max(m.acked.Load()*expectPer-m.delivered.Load()-m.refused.Load()*expectPer, 0)),
	}
	if cost.cpuPerMsg >= 0 {
		out["cpu_per_msg_us"] = cost.cpuPerMsg
	}
	if cost.writesPerMsg >= 0 {
		out["writes_per_msg"] = cost.writesPerMsg
	}
	return out
}

// w1 is single chat: n users, each publishing QoS 1 text to random peers
// and receiving on its inbox.
func (b *bench) w1(ctx context.Context) ([]result, error) {
	n := max(b.s.Users, 2)
	ids, err := b.identities(ctx, n, "w1u")
	if err != nil {
		return nil, err
	}
	cs := make([]paho.Client, n)
	defer func() { disconnectAll(cs) }()
	if err := parallel(ctx, n, 16, func(i int) error {
		c, err := b.connect(ctx, ids[i], []string{topics.Inbox(ids[i].UID)}, b.receiver(ids[i].UID))
		cs[i] = c
		return err
	}); err != nil {
		return nil, err
	}
	topic := func(i int) string {
		j := rand.IntN(n - 1)
		if j >= i {
			j++
		}
		return topics.Inbox(ids[j].UID)
	}
	var out []result
	run := func(phase string, rate float64, inflight int) (float64, error) {
		label := fmt.Sprintf("[W1 %s %s]", b.t.name(), phase)
		m, cost := b.phase(ctx, label, cs, topic, rate, inflight, 1)
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		r := result{Workload: "W1", Target: b.t.name(), Phase: phase, Offered: rate, Metrics: b.metrics(m, cost, "delivered_per_s", 1)}
		r.Metrics["users"], r.Metrics["inflight"] = float64(n), float64(inflight)
		out = append(out, r)
		b.log.Info("W1 phase done", "target", b.t.name(), "phase", phase, "accepted/s", int(r.Metrics["accepted_per_s"]), "p99 ms", r.Metrics["p99_ms"])
		return r.Metrics["accepted_per_s"], nil
	}
	// The closed loop: each user waits for the ack of its publish before
	// the next one, as a chat client does.
	maxRate, err := run("max", b.s.Rate, 1)
	if err != nil {
		return out, err
	}
	if b.s.Rate > 0 {
		out[0].Phase = fmt.Sprintf("%.0f/s", b.s.Rate)
	}
	for _, f := range b.s.Sweep {
		if _, err := run(fmt.Sprintf("%.0f%%", f*100), f*maxRate, 1); err != nil {
			return out, err
		}
	}
	// Pipelined: each user keeps up to Inflight publishes unacknowledged,
	// as a device draining a backlog does.
	if b.s.Inflight > 1 {
		if _, err := run("pipelined", 0, b.s.Inflight); err != nil {
			return out, err
		}
	}
	return out, nil
}

// errSkip marks a workload the target cannot run.
type errSkip struct{ why string }

func (e errSkip) Error() string { return e.why }

// missingAPI turns a 404 for an endpoint into a skip: rooms and customer
// service may not be on this server yet.
func missingAPI(err error, what string) error {
	var e *clients.Error
	if errors.As(err, &e) && e.Status == http.StatusNotFound {
		return errSkip{fmt.Sprintf("the server has no %s API (%s)", what, e.Message)}
	}
	return err
}

// w2 is fan-out: one room of m members and one sender.
func (b *bench) w2(ctx context.Context) ([]result, error) {
	m := max(b.s.Members, 1)
	ids, err := b.identities(ctx, m+1, "w2u")
	if err != nil {
		return nil, err
	}
	sender, members := ids[0], ids[1:]
	room := int64(1)
	if b.t.Kind == kindIM {
		r, err := b.api.WithToken(sender.Token).CreateRoom(ctx, b.run+" fan-out", false)
		if err != nil {
			return nil, missingAPI(err, "rooms")
		}
		room = r.RoomID
		if err := parallel(ctx, m, 8, func(i int) error {
			return b.api.WithToken(members[i].Token).JoinRoom(ctx, room)
		}); err != nil {
			return nil, err
		}
	}
	topic := topics.Room(room)
	cs := make([]paho.Client, m)
	defer func() { disconnectAll(cs) }()
	if err := parallel(ctx, m, 16, func(i int) error {
		c, err := b.connect(ctx, members[i], []string{topic}, b.receiver(members[i].UID))
		cs[i] = c
		return err
	}); err != nil {
		return nil, err
	}
	sc, err := b.connect(ctx, sender, []string{topics.Inbox(sender.UID)}, b.receiver(sender.UID))
	if err != nil {
		return nil, err
	}
	defer sc.Disconnect(100)
	pm, cpu := b.phase(ctx, fmt.Sprintf("[W2 %s]", b.t.name()), []paho.Client{sc}, func(int) string { return topic }, 0, 1, int64(m))
	r := result{Workload: "W2", Target: b.t.name(), Phase: "max", Metrics: b.metrics(pm, cpu, "deliveries_per_s", int64(m))}
	r.Metrics["members"] = float64(m)
	return []result{r}, nil
}

// w3 is connections: k idle authenticated connections, each subscribed to
// its inbox and the broadcast topic.
func (b *bench) w3(ctx context.Context) ([]result, error) {
	k := max(b.s.Conns, 1)
	u := min(max(b.s.ConnUsers, 1), k)
	ids, err := b.identities(ctx, u, "w3u")
	if err != nil {
		return nil, err
	}
	r := result{Workload: "W3", Target: b.t.name(), Phase: fmt.Sprint(k), Metrics: map[string]float64{"conns": float64(k), "users": float64(u)}}
	rss0 := int64(-1)
	var before, beforeLive *runtimeStats
	if b.t.PID != 0 {
		time.Sleep(time.Second) // let the server settle after creating users
		if v, err := rssBytes(b.t.PID); err == nil {
			rss0 = v
		}
		before, beforeLive = b.runtimeStats()
	}
	cs := make([]paho.Client, k)
	defer func() { disconnectAll(cs) }()
	b.prog.begin(fmt.Sprintf("[W3 %s]", b.t.name()))
	start := time.Now()
	err = parallel(ctx, k, max(b.s.ConnParallel, 1), func(i int) error {
		id := ids[i%u]
		c, err := b.connect(ctx, id, []string{topics.Inbox(id.UID), topics.Broadcast}, nil)
		cs[i] = c
		return err
	})
	elapsed := time.Since(start)
	b.prog.end()
	if err != nil {
		return nil, fmt.Errorf("after %d connections: %w", b.prog.conns.Load(), err)
	}
	r.Metrics["connects_per_s"] = float64(k) / elapsed.Seconds()
	if rss0 >= 0 {
		select { // idle: let the connections settle
		case <-time.After(b.s.Hold):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if rss1, err := rssBytes(b.t.PID); err == nil {
			perConn := float64(rss1-rss0) / float64(k)
			r.Metrics["rss_mib"] = float64(rss1) / (1 << 20)
			r.Metrics["rss_per_conn_kib"] = perConn / 1024
			r.Metrics["rss_base_mib"] = float64(rss0) / (1 << 20)
			r.Metrics["rss_50k_mib"] = (float64(rss0) + 50_000*perConn) / (1 << 20)
		}
		if v, err := peakRSSBytes(b.t.PID); err == nil {
			r.Metrics["rss_peak_mib"] = float64(v) / (1 << 20)
		}
		// The runtime's view, read after the RSS so as not to disturb it;
		// the live heap comes last, from a forced collection.
		if after, afterLive := b.runtimeStats(); before != nil && after != nil {
			per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(k) / 1024 }
			r.Metrics["stack_per_conn_kib"] = per(after.StackInuse, before.StackInuse)
			r.Metrics["heap_per_conn_kib"] = per(after.HeapInuse, before.HeapInuse)
			r.Metrics["goroutines_per_conn"] = float64(after.Goroutines-before.Goroutines) / float64(k)
			if beforeLive != nil && afterLive != nil {
				r.Metrics["live_heap_per_conn_kib"] = per(afterLive.HeapAlloc, beforeLive.HeapAlloc)
			}
		}
		if b.t.SameProcess {
			r.Note = "the server runs inside imbench: its RSS includes the load generator's connections"
		}
	} else {
		r.Note = "RSS not measured: give the server's --pid"
	}
	return []result{r}, nil
}

// runtimeStats asks the server for its runtime figures, then for them
// again after a forced collection (the live heap). Either is nil when the
// server cannot say.
func (b *bench) runtimeStats() (now, live *runtimeStats) {
	if b.t.stats == nil || b.t.SameProcess {
		return nil, nil
	}
	now, err := b.t.stats(false)
	if err != nil {
		b.log.Warn("server memory figures", "error", err)
		return nil, nil
	}
	live, err = b.t.stats(true)
	if err != nil {
		b.log.Warn("server memory figures", "error", err)
	}
	return now, live
}

// w4 is customer service: c customers writing to one shop of a agents.
func (b *bench) w4(ctx context.Context) ([]result, error) {
	nc, na := max(b.s.Customers, 1), max(b.s.Agents, 1)
	shopTopic, shopID := topics.Shop(1), int64(1)
	var admin *clients.API
	if b.t.Kind == kindIM {
		if b.t.AdminPassword == "" {
			return nil, errSkip{"W4 needs the admin's password (--admin-password or IM_ADMIN_PASSWORD)"}
		}
		tok, err := b.api.Login(ctx, b.t.AdminUser, b.t.AdminPassword)
		if err != nil {
			return nil, fmt.Errorf("log in as admin: %w", err)
		}
		admin = b.api.WithToken(tok.AccessToken)
		shop, err := admin.CreateShop(ctx, wire.ShopInput{Name: clients.String(b.run + " shop")})
		if err != nil {
			return nil, missingAPI(err, "shops")
		}
		shopID, shopTopic = shop.ShopID, topics.Shop(shop.ShopID)
	}
	agents, err := b.identities(ctx, na, "w4a")
	if err != nil {
		return nil, err
	}
	customers, err := b.identities(ctx, nc, "w4c")
	if err != nil {
		return nil, err
	}
	if admin != nil {
		for _, a := range agents {
			if err := admin.AddAgent(ctx, shopID, a.UID); err != nil {
				return nil, fmt.Errorf("add agent: %w", err)
			}
		}
	}
	as := make([]paho.Client, na)
	cs := make([]paho.Client, nc)
	defer func() { disconnectAll(as); disconnectAll(cs) }()
	if err := parallel(ctx, na, 16, func(i int) error {
		sub := topics.Inbox(agents[i].UID)
		if b.t.Kind != kindIM {
			sub = "$share/agents/" + shopTopic // the bare broker's way to spread a topic over agents
		}
		c, err := b.connect(ctx, agents[i], []string{sub}, b.receiver(agents[i].UID))
		as[i] = c
		return err
	}); err != nil {
		return nil, err
	}
	// Customers count nothing while they write (what they receive is
	// their own echo and automatic replies), then the agents' replies.
	var replying atomic.Bool
	if err := parallel(ctx, nc, 16, func(i int) error {
		recv := b.receiver(customers[i].UID)
		c, err := b.connect(ctx, customers[i], []string{topics.Inbox(customers[i].UID)}, func(c paho.Client, m paho.Message) {
			if replying.Load() {
				recv(c, m)
			}
		})
		cs[i] = c
		return err
	}); err != nil {
		return nil, err
	}
	pm, cpu := b.phase(ctx, fmt.Sprintf("[W4 %s]", b.t.name()), cs, func(int) string { return shopTopic }, 0, 1, 1)
	r := result{Workload: "W4", Target: b.t.name(), Phase: "max", Metrics: b.metrics(pm, cpu, "routed_per_s", 1)}
	r.Metrics["customers"], r.Metrics["agents"] = float64(nc), float64(na)
	if admin != nil {
		list, err := admin.Agents(ctx, shopID)
		if err != nil {
			return nil, fmt.Errorf("list agents: %w", err)
		}
		lo, hi := int64(-1), int64(0)
		for _, a := range list {
			if lo < 0 || a.OpenSessions < lo {
				lo = a.OpenSessions
			}
			hi = max(hi, a.OpenSessions)
		}
		r.Metrics["sessions_min"], r.Metrics["sessions_max"] = float64(max(lo, 0)), float64(hi)
	}
	replies, err := b.w4Replies(ctx, admin, shopID, agents, customers, as, &replying)
	if err != nil {
		return nil, err
	}
	return []result{r, replies}, nil
}

// w4Replies is W4's second phase: each agent answers its customers in
// turn, one reply in flight (imserver: the customers of its open
// sessions, on im/s/{shop}/u/{customer}; the bare broker: every agent-th
// customer, on its inbox). The customers count what they receive.
func (b *bench) w4Replies(ctx context.Context, admin *clients.API, shopID int64, agents, customers []identity, as []paho.Client, replying *atomic.Bool) (result, error) {
	served := make([][]string, len(agents)) // each agent's topics, one per customer
	if admin != nil {
		open, err := admin.Sessions(ctx, shopID, "open")
		if err != nil {
			return result{}, fmt.Errorf("list sessions: %w", err)
		}
		for _, s := range open {
			for i, a := range agents {
				if s.Agent != nil && a.UID == *s.Agent {
					served[i] = append(served[i], topics.ShopReply(shopID, s.Customer))
				}
			}
		}
	} else {
		for i, c := range customers {
			served[i%len(agents)] = append(served[i%len(agents)], topics.Inbox(c.UID))
		}
	}
	var senders []paho.Client
	var tops [][]string
	for i, t := range served {
		if len(t) > 0 {
			senders, tops = append(senders, as[i]), append(tops, t)
		}
	}
	if len(senders) == 0 {
		return result{Workload: "W4", Target: b.t.name(), Phase: "replies", Skipped: "no agent has a customer"}, nil
	}
	next := make([]atomic.Int64, len(senders))
	replying.Store(true)
	defer replying.Store(false)
	pm, cpu := b.phase(ctx, fmt.Sprintf("[W4 %s replies]", b.t.name()), senders, func(i int) string {
		return tops[i][int(next[i].Add(1))%len(tops[i])]
	}, 0, 1, 1)
	r := result{Workload: "W4", Target: b.t.name(), Phase: "replies", Metrics: b.metrics(pm, cpu, "delivered_per_s", 1)}
	r.Metrics["agents"], r.Metrics["customers"] = float64(len(senders)), float64(len(customers))
	return r, nil
}
