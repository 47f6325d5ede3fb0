package clients_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/imserver/imserver/clients"
	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

func TestSendAndReceive(t *testing.T) {
	for _, e := range imtest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			s := imtest.Start(t, imtest.Options{Engine: e})
			for _, tr := range []string{"ws", "tcp"} {
				t.Run(tr, func(t *testing.T) {
					alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
					var o clients.Options
					if tr == "tcp" {
						o.Broker = "tcp://" + s.MQTTAddr
					}
					ca, ra := dial(t, s, alice, o)
					_, rb := dial(t, s, bob, o)
					conv := topics.SingleConv(alice.UID, bob.UID)

					env, err := ca.SendUser(ctxT(t), bob.UID, clients.Text("hello bob"))
					if err != nil {
						t.Fatal(err)
					}
					if env.Conv != conv || env.Seq != 1 || env.From != alice.UID || env.To != bob.UID || env.ID == "" || env.CID == "" {
						t.Fatalf("envelope %+v", env)
					}
					got := rb.waitMessages(t, conv, 1)[0]
					if got.ID != env.ID || clients.TextOf(got) != "hello bob" {
						t.Fatalf("bob got %+v, want %+v", got, env)
					}
					// The sender's own message reaches its handler too, once.
					if mine := ra.waitMessages(t, conv, 1); mine[0].ID != env.ID {
						t.Fatalf("alice's own copy %+v", mine[0])
					}

					img, err := ca.SendUser(ctxT(t), bob.UID, clients.Image("https://example.com/a.png", 640, 480))
					if err != nil {
						t.Fatal(err)
					}
					if img.Seq != 2 || img.Type != wire.TypeImage {
						t.Fatalf("image envelope %+v", img)
					}
					checkInOrder(t, rb.waitMessages(t, conv, 2), 2)
				})
			}
		})
	}
}

func TestSendRefusals(t *testing.T) {
	s := imtest.Start(t, imtest.Options{})
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	c, r := dial(t, s, alice, clients.Options{})

	for _, tc := range []struct {
		name string
		send func() (wire.Envelope, error)
		want error
	}{
		{"unknown user", func() (wire.Envelope, error) { return c.SendUser(ctxT(t), 999999, clients.Text("anyone?")) }, clients.ErrNotFound},
		{"empty text", func() (wire.Envelope, error) { return c.SendUser(ctxT(t), bob.UID, clients.Text("")) }, clients.ErrInvalid},
		{"text too long", func() (wire.Envelope, error) {
			return c.SendUser(ctxT(t), bob.UID, clients.Text(strings.Repeat("x", wire.MaxTextLen+1)))
		}, clients.ErrTooLarge},
		{"broadcast by a user", func() (wire.Envelope, error) { return c.Broadcast(ctxT(t), clients.Text("hi all")) }, clients.ErrForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.send()
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			var e *clients.Error
			if !errors.As(err, &e) || e.CID == "" || e.Message == "" {
				t.Fatalf("error %#v carries no cid or message", err)
			}
		})
	}
	// Refusals a Send waited for are not reported again to the handler.
	if _, err := c.SendUser(ctxT(t), bob.UID, clients.Text("still fine")); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) != 0 {
		t.Fatalf("handler got %v", r.errs)
	}
}

func TestSendIsIdempotentByCID(t *testing.T) {
	s := imtest.Start(t, imtest.Options{})
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	ca, _ := dial(t, s, alice, clients.Options{})
	_, rb := dial(t, s, bob, clients.Options{})

	msg := clients.Text("once")
	msg.CID = "fixed-cid-1"
	first, err := ca.SendUser(ctxT(t), bob.UID, msg)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ca.SendUser(ctxT(t), bob.UID, msg)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID || again.Seq != first.Seq {
		t.Fatalf("re-send stored again: %+v then %+v", first, again)
	}
	next, err := ca.SendUser(ctxT(t), bob.UID, clients.Text("twice"))
	if err != nil {
		t.Fatal(err)
	}
	msgs := rb.waitMessages(t, next.Conv, 2)
	checkInOrder(t, msgs, 2)
}

func TestSendHonoursTheDeadline(t *testing.T) {
	s := imtest.Start(t, imtest.Options{})
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	proxy := imtest.NewProxy(t, s.MQTTAddr)
	c, r := dial(t, s, alice, clients.Options{Broker: "tcp://" + proxy.Addr()})

	proxy.Block()
	proxy.Cut()
	imtest.WaitFor(t, 10*time.Second, func() error {
		if c.IsConnected() {
			return errors.New("still connected")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := c.SendUser(ctx, bob.UID, clients.Text("into the void"))
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, clients.ErrNotConnected) {
		t.Fatalf("error %v, want the deadline and ErrNotConnected", err)
	}

	// A send waiting across the outage is sent again once reconnected.
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := c.SendUser(ctx, bob.UID, clients.Text("after the outage"))
		done <- err
	}()
	proxy.Unblock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The publish that timed out was still queued in the MQTT client: it is
	// sent after the reconnect too. Wait for it, so that no publish is in
	// flight when the server stops.
	r.waitMessages(t, topics.SingleConv(alice.UID, bob.UID), 2)
}

func TestDialRefusesBadToken(t *testing.T) {
	s := imtest.Start(t, imtest.Options{})
	u := s.Register(t, "alice")
	tok := token(u)
	tok.AccessToken += "x"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := clients.Dial(ctx, clients.Options{Server: s.URL, Token: tok, NoResume: true})
	if !errors.Is(err, clients.ErrUnauthorized) {
		t.Fatalf("error %v, want ErrUnauthorized", err)
	}
	_, err = clients.Dial(ctx, clients.Options{Server: s.URL, Token: token(u), ClientID: "someone-else", NoResume: true})
	if !errors.Is(err, clients.ErrUnauthorized) {
		t.Fatalf("foreign client id: error %v, want ErrUnauthorized", err)
	}
}

func TestBroadcastAndReadEvents(t *testing.T) {
	s := imtest.Start(t, imtest.Options{})
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	admin, _ := dial(t, s, s.Admin, clients.Options{})
	ca, ra := dial(t, s, alice, clients.Options{})
	cb, rb := dial(t, s, bob, clients.Options{})

	env, err := admin.Broadcast(ctxT(t), clients.Text("maintenance at 22:00"))
	if err != nil {
		t.Fatal(err)
	}
	if env.Conv != topics.SysConv {
		t.Fatalf("broadcast envelope %+v", env)
	}
	for _, r := range []*recorder{ra, rb} {
		if got := r.waitMessages(t, topics.SysConv, 1); got[0].ID != env.ID {
			t.Fatalf("got %+v", got[0])
		}
	}

	sent, err := ca.SendUser(ctxT(t), bob.UID, clients.Text("read me"))
	if err != nil {
		t.Fatal(err)
	}
	rb.waitMessages(t, sent.Conv, 1)
	st, err := cb.API().MarkRead(ctxT(t), sent.Conv, sent.Seq)
	if err != nil || st.ReadSeq != sent.Seq || st.Unread != 0 {
		t.Fatalf("mark read: %+v, %v", st, err)
	}
	imtest.WaitFor(t, 10*time.Second, func() error {
		ra.mu.Lock()
		defer ra.mu.Unlock()
		for _, ev := range ra.reads {
			if ev.Conv == sent.Conv && ev.UID == bob.UID && ev.Seq == sent.Seq {
				return nil
			}
		}
		return errors.New("no read event")
	})
}
