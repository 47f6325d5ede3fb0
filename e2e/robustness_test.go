package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/wire"
)

// A subscriber that stops reading must not delay anyone: the publisher's
// acks keep coming, other recipients keep receiving, and the stalled
// client is disconnected once its bounded backlog is full.
func TestStalledSubscriberDoesNotStallOthers(t *testing.T) {
	// At QoS 1 too: mochi takes a client's lock to give a delivery its
	// packet id, and holds it while writing to the client's socket.
	for _, qos := range []byte{0, 1} {
		t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) { stalledSubscriber(t, qos) })
	}
}

func stalledSubscriber(t *testing.T, qos byte) {
	s := imtest.Start(t, imtest.Options{})
	alice, bob, sloth := s.Register(t, "alice"), s.Register(t, "bob"), s.Register(t, "sloth")
	conn := rawConnect(t, s, sloth, nil)
	rawSubscribeQoS(t, conn, inbox(sloth.UID), qos) // and never read again
	imtest.WaitFor(t, 2*time.Second, func() error {
		if !s.App.Online(sloth.UID) {
			return fmt.Errorf("sloth not online")
		}
		return nil
	})
	a := s.Connect(t, alice, imtest.ClientOptions{})
	b := s.Connect(t, bob, imtest.ClientOptions{})
	b.MustSubscribe(t, inbox(bob.UID))

	big := text("", strings.Repeat("😀", 4000)) // 16 KB
	start := time.Now()
	sent := 0
	for ; sent < 4000 && s.App.Online(sloth.UID); sent++ {
		a.Publish(t, inbox(sloth.UID), 1, big) // fails the test if an ack takes over 10s
		if sent%500 == 0 {
			a.Publish(t, inbox(bob.UID), 1, text("", fmt.Sprint("ping ", sent)))
			if e := b.In.Next(t).Envelope(t); !strings.HasPrefix(string(e.Body), `"ping`) {
				t.Fatalf("bob got %s", e.Body)
			}
		}
	}
	imtest.WaitFor(t, 15*time.Second, func() error {
		if s.App.Online(sloth.UID) {
			return fmt.Errorf("the stalled client is still connected after %d messages", sent)
		}
		return nil
	})
	t.Logf("stalled client disconnected after %d messages of 16 KB, %v", sent, time.Since(start))
	// Nothing was lost for it: everything is in history.
	var convs []wire.Conversation
	s.MustDo(t, "GET", "/api/v1/conversations", sloth.Token, nil, http.StatusOK, &convs)
	if len(convs) != 1 || convs[0].LastSeq != int64(sent) {
		t.Fatalf("sloth's conversations %+v, want last_seq %d", convs, sent)
	}
}

// Every publish that was acknowledged before a shutdown is in the database
// after it, and shutdown ends cleanly.
func TestShutdownKeepsAckedMessages(t *testing.T) {
	for _, e := range imtest.Engines {
		t.Run(string(e), func(t *testing.T) {
			s := imtest.Start(t, imtest.Options{Engine: e})
			alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
			var (
				mu    sync.Mutex
				acked = map[string]bool{}
				wg    sync.WaitGroup
			)
			for w := range 4 {
				c := s.Connect(t, alice, imtest.ClientOptions{})
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						cid := fmt.Sprintf("w%d-%d", w, i)
						tok := c.Paho.Publish(inbox(bob.UID), 1, false, fmt.Sprintf(`{"cid":%q,"type":"text","body":"x"}`, cid))
						if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil || !c.Paho.IsConnectionOpen() {
							return
						}
						mu.Lock()
						acked[cid] = true
						mu.Unlock()
					}
				}()
			}
			time.Sleep(300 * time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := s.App.Shutdown(ctx); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			wg.Wait()
			mu.Lock()
			defer mu.Unlock()
			if len(acked) == 0 {
				t.Fatal("nothing was acknowledged before the shutdown")
			}

			again := imtest.Start(t, imtest.Options{Engine: e, DBURL: s.DBURL})
			bob2 := again.Login(t, bob.Username, "password1")
			stored := map[string]bool{}
			after := int64(0)
			for {
				var page []wire.Envelope
				again.MustDo(t, "GET", fmt.Sprintf("/api/v1/conversations/%s/messages?after_seq=%d&limit=200", single(alice.UID, bob.UID), after), bob2.Token, nil, http.StatusOK, &page)
				if len(page) == 0 {
					break
				}
				for _, m := range page {
					stored[m.CID] = true
					after = m.Seq
				}
			}
			for cid := range acked {
				if !stored[cid] {
					t.Fatalf("message %s was acknowledged but is not stored (%d acked, %d stored)", cid, len(acked), len(stored))
				}
			}
			t.Logf("%d acknowledged, %d stored", len(acked), len(stored))
		})
	}
}
