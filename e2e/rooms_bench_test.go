package e2e

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/wire"
)

// BenchmarkRoomFanout measures room deliveries per second: one sender
// publishes to a room whose 1,000 other members each have their own
// MQTT connection (Paho 3.1.1 over TCP) subscribed to the room topic.
// Every message is stored before its PUBACK and then delivered 1,000
// times; the sender waits for each PUBACK, and for its receivers when more
// than 200 messages are still being delivered (the server's per-client
// queue holds 256), so the figure is a sustained rate, not a burst.
// The 1,000 users, their memberships and connections are set up once per
// engine, before the timer starts.
//
//	go test ./e2e -run '^$' -bench RoomFanout -benchtime 300x
func BenchmarkRoomFanout(b *testing.B) {
	const members, window = 1000, 200
	for _, e := range imtest.Engines {
		s := imtest.Start(b, imtest.Options{Engine: e})
		owner := s.Register(b, "owner")
		var room wire.Room
		s.MustDo(b, "POST", "/api/v1/rooms", owner.Token, wire.NewRoom{Name: "fanout"}, http.StatusCreated, &room)
		topic := roomTopic(room.RoomID)
		var delivered atomic.Int64
		count := func(paho.Client, paho.Message) { delivered.Add(1) }
		users := make([]imtest.User, members)
		for i := range users { // all join first: a join is announced to the subscribers
			users[i] = s.Register(b, "member")
			s.MustDo(b, "POST", roomPath(room.RoomID, "/join"), users[i].Token, nil, http.StatusOK, nil)
		}
		for _, u := range users {
			c := s.Connect(b, u, imtest.ClientOptions{})
			tok := c.Paho.Subscribe(topic, 0, count)
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				b.Fatalf("subscribe: %v", tok.Error())
			}
			if code := tok.(*paho.SubscribeToken).Result()[topic]; code >= 0x80 {
				b.Fatalf("subscription refused: 0x%02x", code)
			}
		}
		sender := s.Connect(b, owner, imtest.ClientOptions{})
		payload := []byte(`{"type":"text","body":"a benchmark message of a typical chat length"}`)

		b.Run(string(e), func(b *testing.B) {
			delivered.Store(0)
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				for int64(i)-delivered.Load()/members > window {
					time.Sleep(100 * time.Microsecond)
				}
				tok := sender.Paho.Publish(topic, 1, false, payload)
				if tok.Wait(); tok.Error() != nil {
					b.Fatal(tok.Error())
				}
			}
			acked := time.Since(start)
			want := int64(b.N) * members
			imtest.WaitFor(b, time.Minute, func() error {
				if got := delivered.Load(); got < want {
					return fmt.Errorf("%d of %d delivered", got, want)
				}
				return nil
			})
			elapsed := time.Since(start)
			b.StopTimer()
			if got := delivered.Load(); got != want {
				b.Fatalf("%d deliveries, want %d", got, want)
			}
			b.ReportMetric(float64(want)/elapsed.Seconds(), "deliveries/s")
			b.ReportMetric(float64(b.N)/acked.Seconds(), "acked-msgs/s")
		})
	}
}
