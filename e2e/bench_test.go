package e2e

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/imserver/imserver/internal/imtest"
)

// BenchmarkSingleChatQoS1 measures stored-and-delivered single-chat
// messages per second with 10 concurrent senders over TCP at QoS 1, each
// waiting for its PUBACK (the message is durably stored) before the next.
//
//	go test ./e2e -run '^$' -bench SingleChatQoS1 -benchtime 3000x
func BenchmarkSingleChatQoS1(b *testing.B) {
	for _, e := range imtest.Engines {
		b.Run(string(e), func(b *testing.B) {
			s := imtest.Start(b, imtest.Options{Engine: e})
			const senders = 10
			var delivered atomic.Int64
			pubs := make([]*imtest.Client, senders)
			peers := make([]imtest.User, senders)
			for i := range senders {
				u := s.Register(b, "sender")
				peers[i] = s.Register(b, "peer")
				pubs[i] = s.Connect(b, u, imtest.ClientOptions{})
				rc := s.Connect(b, peers[i], imtest.ClientOptions{})
				rc.Paho.Subscribe(inbox(peers[i].UID), 1, func(paho.Client, paho.Message) { delivered.Add(1) }).Wait()
			}
			payload := []byte(`{"type":"text","body":"a benchmark message of a typical chat length"}`)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for i := range senders {
				n := b.N / senders
				if i < b.N%senders {
					n++
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range n {
						tok := pubs[i].Paho.Publish(inbox(peers[i].UID), 1, false, payload)
						if tok.Wait(); tok.Error() != nil {
							b.Error(tok.Error())
							return
						}
					}
				}()
			}
			wg.Wait()
			acked := time.Since(start)
			imtest.WaitFor(b, 30*time.Second, func() error {
				if got := delivered.Load(); got < int64(b.N) {
					return fmt.Errorf("%d of %d delivered", got, b.N)
				}
				return nil
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/acked.Seconds(), "acked-msgs/s")
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "delivered-msgs/s")
		})
	}
}
