package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imserver/imserver/app"
	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/wire"
)

// PROTOCOL.md §9: a persistent session subscribed at QoS 1 misses nothing
// across a disconnect or a server restart: on reconnecting it gets, from
// the store, what was stored for its subscriptions while it was away and
// what it had not acknowledged, in seq order, before newer live messages,
// without duplicates.

// sendText posts n texts from u to peer over REST, numbered from first.
func sendText(t *testing.T, s *imtest.Server, u imtest.User, peer int64, first, n int) {
	t.Helper()
	for i := first; i < first+n; i++ {
		s.MustDo(t, http.MethodPost, "/api/v1/conversations/"+single(u.UID, peer)+"/messages", u.Token,
			text(fmt.Sprint("m-", i), fmt.Sprint("message ", i)), http.StatusCreated, nil)
	}
}

// expectSeqs reads envelopes of conv from c until it has seqs from..to, in
// order and once each (events between them are skipped).
func expectSeqs(t *testing.T, c *imtest.Client, conv string, from, to int64) {
	t.Helper()
	for want := from; want <= to; {
		m := c.In.Next(t)
		if m.Event() != "" {
			continue
		}
		env := m.Envelope(t)
		if env.Conv != conv {
			continue
		}
		if env.Seq != want {
			var rest []int64
			for len(rest) < 20 {
				select {
				case m := <-c.In:
					if m.Event() == "" {
						rest = append(rest, m.Envelope(t).Seq)
					}
					continue
				case <-time.After(time.Second):
				}
				break
			}
			t.Fatalf("got seq %d of %s, want %d; then %v", env.Seq, conv, want, rest)
		}
		want++
	}
}

func TestPersistentSessionMissesNothing(t *testing.T) {
	for _, e := range imtest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			s := imtest.Start(t, imtest.Options{Engine: e})
			alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
			conv := single(alice.UID, bob.UID)
			clean := false
			id := fmt.Sprintf("u%d-phone", bob.UID)
			persistentBob := func(s *imtest.Server) *imtest.Client {
				return s.Connect(t, bob, imtest.ClientOptions{ClientID: id, Clean: &clean})
			}

			b := persistentBob(s)
			b.MustSubscribe(t, inbox(bob.UID))
			sendText(t, s, alice, bob.UID, 1, 3)
			expectSeqs(t, b, conv, 1, 3)
			b.Paho.Disconnect(100)

			// Away: 5 messages. Back, without subscribing again: all 5,
			// in order, and not the 3 it had.
			sendText(t, s, alice, bob.UID, 4, 5)
			b = persistentBob(s)
			expectSeqs(t, b, conv, 4, 8)
			b.In.None(t, 300*time.Millisecond)
			b.Paho.Disconnect(100)

			// Away while the server restarts: 2 messages before, 2 after.
			sendText(t, s, alice, bob.UID, 9, 2)
			dbURL := s.DBURL
			s.Close()
			s = imtest.Start(t, imtest.Options{Engine: e, DBURL: dbURL})
			sendText(t, s, alice, bob.UID, 11, 2)
			b = persistentBob(s)
			expectSeqs(t, b, conv, 9, 12)

			// Live again: new messages come as they are sent.
			sendText(t, s, alice, bob.UID, 13, 1)
			expectSeqs(t, b, conv, 13, 13)
			b.In.None(t, 300*time.Millisecond)
		})
	}
}

// Messages sent while the session catches up come after what it missed,
// each once.
func TestPersistentSessionCatchUpKeepsOrder(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
		conv := single(alice.UID, bob.UID)
		clean := false
		id := fmt.Sprintf("u%d-tablet", bob.UID)
		b := s.Connect(t, bob, imtest.ClientOptions{ClientID: id, Clean: &clean})
		b.MustSubscribe(t, inbox(bob.UID))
		b.Paho.Disconnect(100)

		a := s.Connect(t, alice, imtest.ClientOptions{})
		for i := 0; i < 300; i++ {
			a.Paho.Publish(inbox(bob.UID), 1, false, fmt.Sprintf(`{"cid":"o-%d","type":"text","body":"offline %d"}`, i, i))
		}
		// Reconnect while alice keeps publishing.
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				tok := a.Paho.Publish(inbox(bob.UID), 1, false, fmt.Sprintf(`{"cid":"l-%d","type":"text","body":"live %d"}`, i, i))
				tok.WaitTimeout(10 * time.Second)
			}
		}()
		b = s.Connect(t, bob, imtest.ClientOptions{ClientID: id, Clean: &clean})
		wg.Wait()
		expectSeqs(t, b, conv, 1, 500)
		b.In.None(t, 300*time.Millisecond)
	})
}

// A delivery the client did not acknowledge comes again, marked DUP.
func TestPersistentSessionResendsUnacknowledged(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
		id := fmt.Sprintf("u%d-raw", bob.UID)
		persistent := func(pk *packets.Packet) {
			pk.Connect.Clean = false
			pk.Connect.ClientIdentifier = id
		}
		conn := rawConnect(t, s, bob, persistent)
		writePacket(t, conn, packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, ProtocolVersion: 4, PacketID: 1,
			Filters: packets.Subscriptions{{Filter: inbox(bob.UID), Qos: 1}},
		}, (*packets.Packet).SubscribeEncode)
		r := bufio.NewReader(conn)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if typ, _ := readRaw(t, r); typ != packets.Suback {
			t.Fatalf("no SUBACK: %d", typ)
		}
		sendText(t, s, alice, bob.UID, 1, 1)
		first := readPublish(t, r)
		if first.seq != 1 || first.qos != 1 || first.dup {
			t.Fatalf("first delivery %+v", first)
		}
		conn.Close() // without a PUBACK

		conn = rawConnect(t, s, bob, persistent)
		r = bufio.NewReader(conn)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		again := readPublish(t, r)
		if again.seq != 1 || again.qos != 1 || !again.dup {
			t.Fatalf("the unacknowledged delivery came back as %+v, want seq 1, QoS 1, DUP", again)
		}
	})
}

type rawPublish struct {
	qos  byte
	dup  bool
	id   uint16
	seq  int64
	body string
}

// readPublish reads packets until a PUBLISH of an envelope.
func readPublish(t *testing.T, r *bufio.Reader) rawPublish {
	t.Helper()
	for {
		first, err := r.Peek(1)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		flags := first[0] & 0x0f
		typ, body := readRaw(t, r)
		if typ != packets.Publish {
			continue
		}
		p := rawPublish{qos: flags >> 1 & 3, dup: flags&8 != 0}
		n := int(body[0])<<8 | int(body[1])
		rest := body[2+n:]
		if p.qos > 0 {
			p.id = uint16(rest[0])<<8 | uint16(rest[1])
			rest = rest[2:]
		}
		p.body = string(rest)
		if i := strings.Index(p.body, `"seq":`); i >= 0 {
			j := i + len(`"seq":`)
			k := j
			for k < len(p.body) && p.body[k] >= '0' && p.body[k] <= '9' {
				k++
			}
			p.seq, _ = strconv.ParseInt(p.body[j:k], 10, 64)
		}
		if strings.HasPrefix(p.body, `{"id":`) {
			return p
		}
	}
}

// Past --resume-max missed messages of one conversation, the session gets
// a resync event, then the newest ones.
func TestPersistentSessionResync(t *testing.T) {
	s := imtest.Start(t, imtest.Options{Config: func(c *app.Config) { c.ResumeMax = 5 }})
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv := single(alice.UID, bob.UID)
	clean := false
	id := fmt.Sprintf("u%d-laptop", bob.UID)
	b := s.Connect(t, bob, imtest.ClientOptions{ClientID: id, Clean: &clean})
	b.MustSubscribe(t, inbox(bob.UID))
	sendText(t, s, alice, bob.UID, 1, 1)
	expectSeqs(t, b, conv, 1, 1)
	b.Paho.Disconnect(100)

	sendText(t, s, alice, bob.UID, 2, 12) // seqs 2..13
	b = s.Connect(t, bob, imtest.ClientOptions{ClientID: id, Clean: &clean})
	var ev wire.ResyncEvent
	m := b.In.Next(t)
	m.Decode(t, &ev)
	if ev.Event != wire.EventResync || ev.Conv != conv || ev.AfterSeq != 1 {
		t.Fatalf("first after reconnecting: %s, want a resync of %s after 1", m.Payload, conv)
	}
	expectSeqs(t, b, conv, 9, 13)
}

// mosquitto_sub -c, the command-line client, misses nothing across a
// disconnect and a restart. It exits without acknowledging the last
// messages it printed, at times: those come again (MQTT's at-least-once),
// before the new ones.
func TestMosquittoSubPersistentSession(t *testing.T) {
	if _, err := exec.LookPath("mosquitto_sub"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("mosquitto_sub is not installed (apt-get install mosquitto-clients)")
		}
		t.Skip("mosquitto_sub is not installed")
	}
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
		id := fmt.Sprintf("u%d-mosq", bob.UID)
		// sub runs mosquitto_sub -c for 2 s and returns the seqs it
		// printed; ready is called once it has subscribed.
		sub := func(s *imtest.Server, ready func()) []int64 {
			host, port, _ := net.SplitHostPort(s.MQTTAddr)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "mosquitto_sub", "-h", host, "-p", port, "-i", id, "-c", "-q", "1",
				"-u", bob.Username, "-P", bob.Token, "-t", inbox(bob.UID), "-W", "2")
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if ready != nil {
				time.Sleep(500 * time.Millisecond) // its SUBSCRIBE
				ready()
			}
			var seqs []int64
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				var env wire.Envelope
				if err := json.Unmarshal(sc.Bytes(), &env); err == nil && env.Seq > 0 {
					seqs = append(seqs, env.Seq)
				}
			}
			_ = cmd.Wait() // it ends with the timeout's exit code
			return seqs
		}
		// check: got is increasing and ends with want, before which it
		// may repeat what the session had been sent already (up to last).
		last := int64(0)
		check := func(when string, got []int64, want ...int64) {
			t.Helper()
			i := len(got) - len(want)
			if i < 0 || fmt.Sprint(got[i:]) != fmt.Sprint(want) {
				t.Fatalf("%s got seqs %v, want them to end with %v", when, got, want)
			}
			for j, seq := range got {
				if (j > 0 && seq <= got[j-1]) || (j < i && seq > last) {
					t.Fatalf("%s got seqs %v: out of order, or new ones before %v", when, got, want)
				}
			}
			last = want[len(want)-1]
		}
		check("the first run", sub(s, func() { sendText(t, s, alice, bob.UID, 1, 1) }), 1)
		sendText(t, s, alice, bob.UID, 2, 3)
		check("after a disconnect", sub(s, nil), 2, 3, 4)
		sendText(t, s, alice, bob.UID, 5, 2)
		dbURL := s.DBURL
		s.Close()
		s = imtest.Start(t, imtest.Options{Engine: s.Engine, DBURL: dbURL})
		sendText(t, s, alice, bob.UID, 7, 1)
		check("after a restart", sub(s, nil), 5, 6, 7)
	})
}
