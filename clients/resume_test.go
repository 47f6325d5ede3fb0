package clients_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/imserver/imserver/clients"
	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

// TestResumeAcrossForcedDisconnect cuts the receiver's connection in the
// middle of a burst, keeps it out while more is sent, and lets it back in
// while the burst goes on: the app still sees every message once, in order.
func TestResumeAcrossForcedDisconnect(t *testing.T) {
	for _, e := range imtest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			s := imtest.Start(t, imtest.Options{Engine: e})
			alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
			proxy := imtest.NewProxy(t, s.MQTTAddr)
			ca, ra := dial(t, s, alice, clients.Options{Broker: "tcp://" + proxy.Addr(), MaxReconnectInterval: 200 * time.Millisecond})
			cb, _ := dial(t, s, bob, clients.Options{Broker: "tcp://" + s.MQTTAddr})
			conv := topics.SingleConv(alice.UID, bob.UID)

			const n = 300
			sent := 0
			burst := func(k int) {
				t.Helper()
				var wg sync.WaitGroup
				errs := make(chan error, k)
				for range k {
					sent++
					wg.Add(1)
					go func(i int) { // concurrent sends: arrival order is not seq order
						defer wg.Done()
						_, err := cb.SendUser(context.Background(), alice.UID, clients.Text(fmt.Sprintf("m%d", i)))
						errs <- err
					}(sent)
					if sent%20 == 0 {
						wg.Wait()
					}
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						t.Fatal(err)
					}
				}
			}

			burst(100)
			ra.waitMessages(t, conv, 50) // mid-stream
			proxy.Block()
			proxy.Cut()
			imtest.WaitFor(t, 10*time.Second, func() error {
				if ca.IsConnected() {
					return errors.New("still connected")
				}
				return nil
			})
			burst(100) // while alice is away: only history has these
			proxy.Unblock()
			burst(n - sent) // while alice reconnects and catches up

			checkInOrder(t, ra.waitMessages(t, conv, n), n)
			// And nothing more arrives later (no duplicates after the fact).
			if _, err := cb.SendUser(ctxT(t), alice.UID, clients.Text("last")); err != nil {
				t.Fatal(err)
			}
			checkInOrder(t, ra.waitMessages(t, conv, n+1), n+1)
			if got := ca.Positions()[conv]; got != n+1 {
				t.Fatalf("position %d, want %d", got, n+1)
			}
			ra.mu.Lock()
			lost, conns := ra.lost, ra.conns
			ra.mu.Unlock()
			if lost < 1 || conns < 2 {
				t.Fatalf("handlers saw %d disconnects and %d connects", lost, conns)
			}
		})
	}
}

// TestResumeFromPositions: an app that saved its positions is handed,
// after Dial, what came since; a conversation it did not know starts at
// its last seq.
func TestResumeFromPositions(t *testing.T) {
	s := imtest.Start(t, imtest.Options{})
	alice, bob, carol := s.Register(t, "alice"), s.Register(t, "bob"), s.Register(t, "carol")
	api := clients.NewAPI(s.URL, nil)
	withBob := topics.SingleConv(alice.UID, bob.UID)
	withCarol := topics.SingleConv(alice.UID, carol.UID)
	for i := range 7 {
		if _, err := api.WithToken(bob.Token).Post(ctxT(t), withBob, clients.Text(fmt.Sprint("b", i))); err != nil {
			t.Fatal(err)
		}
		if _, err := api.WithToken(carol.Token).Post(ctxT(t), withCarol, clients.Text(fmt.Sprint("c", i))); err != nil {
			t.Fatal(err)
		}
	}
	// Alice's app had seen up to seq 3 with bob, and never saw carol's.
	_, r := dial(t, s, alice, clients.Options{Positions: map[string]int64{withBob: 3}})
	msgs := r.waitMessages(t, withBob, 4)
	for i, m := range msgs {
		if m.Seq != int64(4+i) {
			t.Fatalf("seqs %v, want 4..7", seqs(msgs))
		}
	}
	if _, err := api.WithToken(carol.Token).Post(ctxT(t), withCarol, clients.Text("new")); err != nil {
		t.Fatal(err)
	}
	got := r.waitMessages(t, withCarol, 1)
	if len(got) != 1 || got[0].Seq != 8 {
		t.Fatalf("carol: seqs %v, want [8]", seqs(got))
	}
}

// TestNewConversationWhileAway: a conversation that starts while the client
// is disconnected is delivered from its first message after the reconnect,
// with no later live message to reveal it.
func TestNewConversationWhileAway(t *testing.T) {
	s := imtest.Start(t, imtest.Options{})
	alice, dave := s.Register(t, "alice"), s.Register(t, "dave")
	proxy := imtest.NewProxy(t, s.MQTTAddr)
	ca, r := dial(t, s, alice, clients.Options{Broker: "tcp://" + proxy.Addr(), MaxReconnectInterval: 200 * time.Millisecond})
	proxy.Block()
	proxy.Cut()
	imtest.WaitFor(t, 10*time.Second, func() error {
		if ca.IsConnected() {
			return errors.New("still connected")
		}
		return nil
	})
	conv := topics.SingleConv(alice.UID, dave.UID)
	api := clients.NewAPI(s.URL, nil).WithToken(dave.Token)
	for i := range 3 {
		if _, err := api.Post(ctxT(t), conv, clients.Text(fmt.Sprint("hi ", i))); err != nil {
			t.Fatal(err)
		}
	}
	proxy.Unblock()
	checkInOrder(t, r.waitMessages(t, conv, 3), 3)
}

// TestNoResumeHandsOverAsReceived: with resume off, messages are handed
// over live, and nothing from history.
func TestNoResumeHandsOverAsReceived(t *testing.T) {
	s := imtest.Start(t, imtest.Options{})
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv := topics.SingleConv(alice.UID, bob.UID)
	api := clients.NewAPI(s.URL, nil).WithToken(bob.Token)
	if _, err := api.Post(ctxT(t), conv, clients.Text("before")); err != nil {
		t.Fatal(err)
	}
	_, r := dial(t, s, alice, clients.Options{NoResume: true, Positions: map[string]int64{conv: 0}})
	if _, err := api.Post(ctxT(t), conv, clients.Text("after")); err != nil {
		t.Fatal(err)
	}
	got := r.waitMessages(t, conv, 1)
	if got[0].Seq != 2 || clients.TextOf(got[0]) != "after" {
		t.Fatalf("got %+v", got)
	}
	_ = wire.TypeText
}
