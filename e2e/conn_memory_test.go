package e2e

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/topics"
)

// BenchmarkIdleConnMemory measures what an idle authenticated client costs
// the server, over TCP and over WebSocket: 2,000 clients of distinct users
// connect and subscribe to their inbox and the broadcast topic (as W3 of
// cmd/imbench does), then the process's goroutine stacks, live heap and
// goroutines are compared with before, after three collections. The
// clients are plain sockets without goroutines, so nearly everything
// measured is the server's (the clients' socket descriptors, a few hundred
// bytes each, are included). RSS is measured by imbench, whose server runs
// in a process of its own; this shows where the bytes go and the
// difference between the transports.
//
//	go test ./e2e -run '^$' -bench IdleConnMemory -benchtime 1x
func BenchmarkIdleConnMemory(b *testing.B) {
	const n = 2000
	for _, transport := range []string{"tcp", "ws"} {
		b.Run(transport, func(b *testing.B) {
			s := imtest.Start(b, imtest.Options{})
			dial := func() (net.Conn, error) { return net.Dial("tcp", s.MQTTAddr) }
			if transport == "ws" {
				dial = func() (net.Conn, error) { return dialWS(s.App.HTTPAddr()) }
			}
			users := make([]imtest.User, 50) // each with many devices
			for i := range users {
				users[i] = s.Register(b, "idle")
			}
			for range b.N {
				before := settledMemStats()
				conns := make([]net.Conn, 0, n)
				for i := range n {
					u := users[i%len(users)]
					c, err := dial()
					if err != nil {
						b.Fatal(err)
					}
					conns = append(conns, c)
					if err := idleLogin(c, u.UID, fmt.Sprintf("u%d-idle-%d", u.UID, i), u.Token); err != nil {
						b.Fatalf("client %d: %v", i, err)
					}
				}
				after := settledMemStats()
				per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / n / 1024 }
				b.ReportMetric(per(after.stack, before.stack), "stack-KiB/conn")
				b.ReportMetric(per(after.heap, before.heap), "heap-KiB/conn")
				b.ReportMetric(float64(after.goroutines-before.goroutines)/n, "goroutines/conn")
				for _, c := range conns {
					c.Close()
				}
			}
		})
	}
}

type memFigures struct {
	stack, heap uint64
	goroutines  int
}

func settledMemStats() memFigures {
	for range 3 { // each collection shrinks idle stacks by at most half
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memFigures{stack: m.StackInuse, heap: m.HeapAlloc, goroutines: runtime.NumGoroutine()}
}

// idleLogin sends CONNECT and SUBSCRIBE (inbox and broadcast) over c and
// waits for CONNACK and SUBACK.
func idleLogin(c net.Conn, uid int64, clientID, token string) error {
	r := bufio.NewReader(c)
	connect := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 120,
			ClientIdentifier: clientID, UsernameFlag: true, Username: []byte("idle"),
			PasswordFlag: true, Password: []byte(token)}}
	var buf bytes.Buffer
	if err := connect.ConnectEncode(&buf); err != nil {
		return err
	}
	if _, err := c.Write(buf.Bytes()); err != nil {
		return err
	}
	if t, err := readPacketType(r); err != nil || t != packets.Connack {
		return fmt.Errorf("CONNACK: got type %d, %v", t, err)
	}
	sub := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, ProtocolVersion: 4, PacketID: 1,
		Filters: packets.Subscriptions{{Filter: topics.Inbox(uid), Qos: 1}, {Filter: topics.Broadcast, Qos: 1}}}
	buf.Reset()
	if err := sub.SubscribeEncode(&buf); err != nil {
		return err
	}
	if _, err := c.Write(buf.Bytes()); err != nil {
		return err
	}
	if t, err := readPacketType(r); err != nil || t != packets.Suback {
		return fmt.Errorf("SUBACK: got type %d, %v", t, err)
	}
	return nil
}

// readPacketType reads one MQTT packet and returns its type.
func readPacketType(r *bufio.Reader) (byte, error) {
	h, err := r.ReadByte()
	if err != nil {
		return 0, err
	}
	n, err := binary.ReadUvarint(r) // MQTT's remaining length is a base-128 varint
	if err != nil {
		return 0, err
	}
	_, err = io.CopyN(io.Discard, r, int64(n))
	return h >> 4, err
}

// dialWS opens a WebSocket to /mqtt with no client library (which would
// add its own buffers to what is measured) and returns it as a stream of
// MQTT bytes.
func dialWS(addr string) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(c, "GET /mqtt HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n", addr)
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		c.Close()
		return nil, fmt.Errorf("upgrade: %q, %v", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			c.Close()
			return nil, err
		}
		if line == "\r\n" {
			break
		}
	}
	return &wsStream{Conn: c, r: br}, nil
}

// wsStream writes each Write as one masked binary frame (with a zero
// mask, so the payload is unchanged) and reads the payloads of the
// server's frames as one stream.
type wsStream struct {
	net.Conn
	r    *bufio.Reader
	left int // bytes left in the current frame
}

func (s *wsStream) Write(p []byte) (int, error) {
	hdr := []byte{0x82}
	switch {
	case len(p) < 126:
		hdr = append(hdr, 0x80|byte(len(p)))
	case len(p) <= 0xffff:
		hdr = append(hdr, 0x80|126, byte(len(p)>>8), byte(len(p)))
	default:
		return 0, fmt.Errorf("frame of %d bytes", len(p))
	}
	hdr = append(hdr, 0, 0, 0, 0) // the mask
	if _, err := s.Conn.Write(append(hdr, p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (s *wsStream) Read(p []byte) (int, error) {
	for s.left == 0 {
		var h [2]byte
		if _, err := io.ReadFull(s.r, h[:]); err != nil {
			return 0, err
		}
		n := int(h[1] & 0x7f)
		if n == 126 {
			var l [2]byte
			if _, err := io.ReadFull(s.r, l[:]); err != nil {
				return 0, err
			}
			n = int(l[0])<<8 | int(l[1])
		} else if n == 127 {
			return 0, fmt.Errorf("frame too long")
		}
		s.left = n
	}
	if len(p) > s.left {
		p = p[:s.left]
	}
	n, err := s.r.Read(p)
	s.left -= n
	return n, err
}
