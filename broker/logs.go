package broker

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// mochi logs a client's refused or malformed packets at ERROR or WARN, each
// with the whole packet, payload included, printed as decimal bytes: one
// client publishing refused messages grew the log by megabytes a second
// and put message contents in it. These are the records that report what
// a client did, not what went wrong in the server: they are demoted to
// debug.
var clientCaused = map[string]bool{
	"publish packet error":               true, // hooks.go: OnPublish refused a publish (our refusals)
	"publish packet rejected":            true,
	"packet rejected":                    true, // OnPacketRead
	"error processing packet":            true, // server.go: a client's bad packet
	"failed publishing packet":           true,
	"failed to publish retained message": true,
	"parse will error":                   true,
	"client store quota reached":         true,
	"packet ids exhausted":               true,
}

// Repeated records: at most quietBurst of one message (and level) per
// quietWindow are written; the rest are counted and reported once when the
// window has passed.
const (
	quietWindow = 10 * time.Second
	quietBurst  = 5
	quietKeys   = 1024 // distinct messages tracked; the table is reset beyond
)

// QuietHandler wraps a log handler so that the server's logs stay useful
// and safe under hostile clients:
//
//   - no packet is ever logged: a packets.Packet attribute (mochi's
//     "packet", "pk") becomes a summary without its payload, and byte
//     slices become their length;
//   - mochi's records about a client's refused or malformed packets are
//     demoted to debug;
//   - records at info and above that repeat the same message are
//     rate-limited (quietBurst per quietWindow), with a count of those
//     dropped.
//
// Wrapping a QuietHandler again returns it unchanged.
func QuietHandler(h slog.Handler) slog.Handler {
	if q, ok := h.(*quietHandler); ok {
		return q
	}
	return &quietHandler{inner: h, st: &quietState{seen: map[quietKey]*quietCount{}, now: time.Now}}
}

type quietHandler struct {
	inner slog.Handler
	st    *quietState // shared by the handlers made by WithAttrs and WithGroup
}

type quietState struct {
	mu   sync.Mutex
	seen map[quietKey]*quietCount
	now  func() time.Time
}

type quietKey struct {
	level slog.Level
	msg   string
}

type quietCount struct {
	start      time.Time
	n          int
	suppressed int
}

func (q *quietHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return q.inner.Enabled(ctx, l)
}

func (q *quietHandler) WithAttrs(as []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(as))
	for i, a := range as {
		clean[i] = sanitize(a)
	}
	return &quietHandler{inner: q.inner.WithAttrs(clean), st: q.st}
}

func (q *quietHandler) WithGroup(name string) slog.Handler {
	return &quietHandler{inner: q.inner.WithGroup(name), st: q.st}
}

func (q *quietHandler) Handle(ctx context.Context, r slog.Record) error {
	level := r.Level
	if clientCaused[r.Message] && level > slog.LevelDebug {
		level = slog.LevelDebug
		if !q.inner.Enabled(ctx, level) {
			return nil
		}
	}
	var suppressed int
	if level >= slog.LevelInfo {
		ok, n := q.st.allow(quietKey{level, r.Message})
		if !ok {
			return nil
		}
		suppressed = n
	}
	out := slog.NewRecord(r.Time, level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(sanitize(a))
		return true
	})
	if suppressed > 0 {
		out.AddAttrs(slog.Int("suppressed_similar", suppressed))
	}
	return q.inner.Handle(ctx, out)
}

// allow reports whether a record may be written, and how many like it were
// dropped since the last one written.
func (s *quietState) allow(k quietKey) (bool, int) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.seen[k]
	if !ok {
		if len(s.seen) >= quietKeys {
			s.seen = map[quietKey]*quietCount{}
		}
		c = &quietCount{start: now}
		s.seen[k] = c
	}
	if now.Sub(c.start) >= quietWindow {
		c.start, c.n = now, 0
	}
	if c.n >= quietBurst {
		c.suppressed++
		return false, 0
	}
	c.n++
	n := c.suppressed
	c.suppressed = 0
	return true, n
}

// sanitize replaces what must not be logged: packets (their payload is a
// message's content) and raw bytes.
func sanitize(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		g := v.Group()
		clean := make([]any, len(g))
		for i, ga := range g {
			clean[i] = sanitize(ga)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case packets.Packet:
			return slog.String(a.Key, summary(&x))
		case *packets.Packet:
			return slog.String(a.Key, summary(x))
		case []byte:
			return slog.String(a.Key, fmt.Sprintf("(%d bytes)", len(x)))
		}
	}
	return a
}

// summary describes a packet without its payload or credentials.
func summary(pk *packets.Packet) string {
	if pk == nil {
		return "(no packet)"
	}
	name, ok := packets.PacketNames[pk.FixedHeader.Type]
	if !ok {
		name = fmt.Sprintf("type %d", pk.FixedHeader.Type)
	}
	if pk.FixedHeader.Type == packets.Publish {
		return fmt.Sprintf("%s qos=%d id=%d topic=%q payload=(%d bytes)", name, pk.FixedHeader.Qos, pk.PacketID, pk.TopicName, len(pk.Payload))
	}
	return fmt.Sprintf("%s id=%d", name, pk.PacketID)
}
