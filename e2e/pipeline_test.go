package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/wire"
)

// A connection's publishes are pipelined (hooks/pipeline.go): these tests
// send hundreds of QoS 1 publishes back to back, more than the server
// takes in flight, mixed with refused ones, without waiting for any ack,
// from a raw client that checks what Paho would hide: every PUBACK comes,
// in the order of the PUBLISHes, with the right code, and every
// acknowledged message is in history, in publish order, seqs contiguous.

// rawDial opens a TCP connection and completes a CONNECT of the given
// protocol version (4: 3.1.1, 5) with the user's token.
func rawDial(t *testing.T, s *imtest.Server, u imtest.User, version byte) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", s.MQTTAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: version,
		Connect: packets.ConnectParams{
			ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 60,
			ClientIdentifier: fmt.Sprintf("u%d-pipe-%d", u.UID, time.Now().UnixNano()),
			UsernameFlag:     true, Username: []byte(u.Username),
			PasswordFlag: true, Password: []byte(u.Token),
		},
	}
	writePacket(t, conn, pk, (*packets.Packet).ConnectEncode)
	r := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, body := readRaw(t, r)
	if typ != packets.Connack || len(body) < 2 || body[1] != 0 {
		t.Fatalf("raw connect v%d: type %d % x", version, typ, body)
	}
	conn.SetReadDeadline(time.Time{})
	return conn, r
}

// readRaw reads one MQTT packet: its type and what follows the fixed
// header.
func readRaw(t *testing.T, r *bufio.Reader) (byte, []byte) {
	t.Helper()
	first, err := r.ReadByte()
	if err != nil {
		t.Fatalf("read packet: %v", err)
	}
	n, shift := 0, 0
	for {
		b, err := r.ReadByte()
		if err != nil {
			t.Fatalf("read packet length: %v", err)
		}
		n |= int(b&0x7f) << shift
		if b&0x80 == 0 {
			break
		}
		shift += 7
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatalf("read packet body: %v", err)
	}
	return first >> 4, body
}

// pipelined is one publish of a burst, and what it must be answered.
type pipelined struct {
	topic   string
	payload string
	code    byte // MQTT 5 PUBACK reason code (3.1.1: always a plain PUBACK)
	cid     string
}

func TestPipelinedPublishes(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		for _, version := range []byte{4, 5} {
			t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
				alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
				conn, r := rawDial(t, s, alice, version)

				// 600 publishes (the server takes 256 in flight per
				// connection): every 10th is not JSON, every 15th goes
				// to a shop that does not exist, every 45th is a
				// broadcast, which only admins may send; the rest are
				// for bob.
				const n = 600
				var burst []pipelined
				var out bytes.Buffer
				for i := 1; i <= n; i++ {
					p := pipelined{topic: inbox(bob.UID), cid: fmt.Sprintf("p-%d", i), code: 0}
					p.payload = fmt.Sprintf(`{"cid":%q,"type":"text","body":"message %d"}`, p.cid, i)
					switch {
					case i%45 == 0:
						p.topic, p.code, p.cid = "im/sys/broadcast", 0x87, ""
					case i%15 == 0:
						p.topic, p.code, p.cid = "im/s/999999", 0x90, ""
					case i%10 == 0:
						p.payload, p.code, p.cid = `{"cid":`, 0x99, ""
					}
					burst = append(burst, p)
					pk := packets.Packet{
						FixedHeader:     packets.FixedHeader{Type: packets.Publish, Qos: 1},
						ProtocolVersion: version, TopicName: p.topic, PacketID: uint16(i), Payload: []byte(p.payload),
					}
					if err := pk.PublishEncode(&out); err != nil {
						t.Fatal(err)
					}
				}
				werr := make(chan error, 1)
				go func() { _, err := conn.Write(out.Bytes()); werr <- err }()

				conn.SetReadDeadline(time.Now().Add(60 * time.Second))
				for i := 1; i <= n; {
					typ, body := readRaw(t, r)
					if typ != packets.Puback {
						continue // a delivery (alice subscribed to nothing: none expected, but harmless)
					}
					id := int(body[0])<<8 | int(body[1])
					if id != i {
						t.Fatalf("PUBACK %d came where %d was due: acks out of order", id, i)
					}
					code := byte(0)
					if len(body) > 2 {
						code = body[2]
					}
					want := burst[i-1].code
					if version == 4 {
						want = 0
					}
					if code != want {
						t.Fatalf("PUBACK %d (%s %.20s): code 0x%02x, want 0x%02x", id, burst[i-1].topic, burst[i-1].payload, code, want)
					}
					i++
				}
				if err := <-werr; err != nil {
					t.Fatalf("write the burst: %v", err)
				}

				// Every acknowledged message is stored, in publish order,
				// with contiguous seqs from 1.
				var want []string
				for _, p := range burst {
					if p.code == 0 {
						want = append(want, p.cid)
					}
				}
				var got []wire.Envelope
				for after := int64(0); ; {
					var page []wire.Envelope
					s.MustDo(t, http.MethodGet, fmt.Sprintf("/api/v1/conversations/%s/messages?after_seq=%d&limit=100", single(alice.UID, bob.UID), after), alice.Token, nil, 200, &page)
					if len(page) == 0 {
						break
					}
					got = append(got, page...)
					after = page[len(page)-1].Seq
				}
				if len(got) != len(want) {
					t.Fatalf("history has %d messages, want %d", len(got), len(want))
				}
				for i, m := range got {
					if m.Seq != int64(i+1) || m.CID != want[i] {
						t.Fatalf("history[%d] is seq %d cid %q, want seq %d cid %q", i, m.Seq, m.CID, i+1, want[i])
					}
				}
			})
		}
	})
}

// Over the per-user rate an MQTT publisher is slowed down, never refused
// (PROTOCOL.md §9); REST keeps answering 429.
func TestPublishBackpressure(t *testing.T) {
	eachEngineWith(t, imtest.Options{PublishRate: 20, PublishBurst: 5}, func(t *testing.T, s *imtest.Server) {
		alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
		a := s.Connect(t, alice, imtest.ClientOptions{})
		a.MustSubscribe(t, inbox(alice.UID))

		const n = 45
		start := time.Now()
		var toks []interface{ WaitTimeout(time.Duration) bool }
		for i := 0; i < n; i++ {
			toks = append(toks, a.Paho.Publish(inbox(bob.UID), 1, false, fmt.Sprintf(`{"cid":"r-%d","type":"text","body":"%d"}`, i, i)))
		}
		for i, tok := range toks {
			if !tok.WaitTimeout(30 * time.Second) {
				t.Fatalf("publish %d: no PUBACK", i)
			}
		}
		took := time.Since(start)
		// 5 at once, then 20/s: the last ack cannot come before 2 s.
		if took < 1500*time.Millisecond {
			t.Fatalf("%d publishes over a rate of 20/s (burst 5) were all acknowledged in %v: nothing slowed them", n, took)
		}
		var hist []wire.Envelope
		s.MustDo(t, http.MethodGet, "/api/v1/conversations/"+single(alice.UID, bob.UID)+"/messages?limit=100", alice.Token, nil, 200, &hist)
		if len(hist) != n {
			t.Fatalf("history has %d of the %d acknowledged messages", len(hist), n)
		}
		// Every echo, and no error event: nothing was refused.
		for i := 0; i < n; i++ {
			m := a.In.Next(t)
			if ev := m.Event(); ev != "" {
				t.Fatalf("inbox got event %q: %s", ev, m.Payload)
			}
		}

		// REST is refused over the rate, with 429.
		limited := false
		for i := 0; i < 30 && !limited; i++ {
			code, body := s.Do(t, http.MethodPost, "/api/v1/conversations/"+single(alice.UID, bob.UID)+"/messages", alice.Token,
				map[string]any{"type": "text", "body": "rest"})
			switch {
			case code == 429 && imtest.ErrorCode(body) == "rate_limited":
				limited = true
			case code != 200 && code != 201:
				t.Fatalf("REST send: %d %s", code, strings.TrimSpace(string(body)))
			}
		}
		if !limited {
			t.Fatal("30 REST sends over a rate of 20/s: none refused with 429")
		}
	})
}
