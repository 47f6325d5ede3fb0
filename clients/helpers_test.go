package clients_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/imserver/imserver/clients"
	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/internal/pgtest"
	"github.com/imserver/imserver/wire"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// token turns a test user into the answer of a login.
func token(u imtest.User) wire.Token {
	return wire.Token{AccessToken: u.Token, TokenType: "Bearer", UID: u.UID, Username: u.Username, Role: u.Role}
}

// recorder collects what a Client's handlers receive.
type recorder struct {
	mu     sync.Mutex
	msgs   []wire.Envelope
	errs   []*clients.Error
	reads  []wire.ReadEvent
	lost   int
	conns  int
	events []string
}

func (r *recorder) handlers() clients.Handlers {
	return clients.Handlers{
		Message: func(e wire.Envelope) { r.mu.Lock(); r.msgs = append(r.msgs, e); r.mu.Unlock() },
		Error:   func(e *clients.Error) { r.mu.Lock(); r.errs = append(r.errs, e); r.mu.Unlock() },
		Read:    func(e wire.ReadEvent) { r.mu.Lock(); r.reads = append(r.reads, e); r.mu.Unlock() },
		Connected: func() {
			r.mu.Lock()
			r.conns++
			r.mu.Unlock()
		},
		Disconnected: func(error) { r.mu.Lock(); r.lost++; r.mu.Unlock() },
		Unknown: func(topic string, p []byte) {
			r.mu.Lock()
			r.events = append(r.events, topic+" "+string(p))
			r.mu.Unlock()
		},
	}
}

// messages returns a copy of the messages received so far in conv ("" for all).
func (r *recorder) messages(conv string) []wire.Envelope {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []wire.Envelope
	for _, m := range r.msgs {
		if conv == "" || m.Conv == conv {
			out = append(out, m)
		}
	}
	return out
}

func (r *recorder) waitMessages(t *testing.T, conv string, n int) []wire.Envelope {
	t.Helper()
	imtest.WaitFor(t, 20*time.Second, func() error {
		if got := len(r.messages(conv)); got < n {
			return fmt.Errorf("%d of %d messages in %s", got, n, conv)
		}
		return nil
	})
	return r.messages(conv)
}

// checkInOrder fails unless msgs are seq 1..n, each once, in order.
func checkInOrder(t *testing.T, msgs []wire.Envelope, n int) {
	t.Helper()
	if len(msgs) != n {
		t.Fatalf("got %d messages, want %d", len(msgs), n)
	}
	for i, m := range msgs {
		if m.Seq != int64(i+1) {
			t.Fatalf("message %d has seq %d, want %d (seqs %v)", i, m.Seq, i+1, seqs(msgs))
		}
	}
}

func seqs(msgs []wire.Envelope) []int64 {
	out := make([]int64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Seq
	}
	return out
}

// dial connects u with the recorder's handlers and closes it at cleanup.
func dial(t *testing.T, s *imtest.Server, u imtest.User, o clients.Options) (*clients.Client, *recorder) {
	t.Helper()
	r := &recorder{}
	o.Server = s.URL
	o.Token = token(u)
	o.Handlers = r.handlers()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := clients.Dial(ctx, o)
	if err != nil {
		t.Fatalf("dial as %s: %v", u.Username, err)
	}
	t.Cleanup(func() { c.Close() })
	return c, r
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
