package broker

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/packets"
)

// connectBytes encodes a 3.1.1 CONNECT whose password is pw.
func connectBytes(t testing.TB, pw string) []byte {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 30, ClientIdentifier: "c1",
			UsernameFlag: true, Username: []byte("u"), PasswordFlag: true, Password: []byte(pw)}}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCheckConnectHeader(t *testing.T) {
	for _, tc := range []struct {
		desc      string
		b         []byte
		remaining int
		n         int
		err       error
	}{
		{"empty", nil, 0, 0, errShortHeader},
		{"type only", []byte{0x10}, 0, 0, errShortHeader},
		{"one-byte length", []byte{0x10, 12}, 12, 2, nil},
		{"two-byte length", []byte{0x10, 0x80 | 0x10, 0x02}, 0x10 + 2*128, 3, nil},
		{"two-byte length, cut", []byte{0x10, 0x80}, 0, 0, errShortHeader},
		{"exactly the limit", []byte{0x10, 0x80, 0x80, 0x04}, 64 << 10, 4, nil},
		{"one over the limit", []byte{0x10, 0x81, 0x80, 0x04}, 0, 0, ErrConnectTooLarge},
		{"262,000 bytes", []byte{0x10, 0xf0, 0xff, 0x0f}, 0, 0, ErrConnectTooLarge},
		{"too large, judged before the end", []byte{0x10, 0xff, 0xff, 0xff}, 0, 0, ErrConnectTooLarge},
		{"five length bytes", []byte{0x10, 0x80, 0x80, 0x80, 0x80, 0x00}, 0, 0, ErrMalformedLength},
		{"PUBLISH first", []byte{0x30, 2}, 0, 0, ErrNotConnect},
		{"CONNECT with flags", []byte{0x12, 2}, 0, 0, ErrNotConnect},
		{"HTTP request", []byte("GET / HTTP/1.1\r\n"), 0, 0, ErrNotConnect},
		{"TLS hello", []byte{0x16, 0x03, 0x01}, 0, 0, ErrNotConnect},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			rem, n, err := CheckConnectHeader(tc.b, MaxConnectSize)
			if !errors.Is(err, tc.err) || (err == nil && (rem != tc.remaining || n != tc.n)) {
				t.Fatalf("= %d, %d, %v; want %d, %d, %v", rem, n, err, tc.remaining, tc.n, tc.err)
			}
		})
	}
}

// FuzzCheckConnectHeader checks the pre-authentication header check
// against mochi's own decoder: whatever it accepts, mochi reads as a
// CONNECT of the same length with the same header size, within the limit;
// and it never asks for more bytes than a header can have.
func FuzzCheckConnectHeader(f *testing.F) {
	for _, s := range [][]byte{
		{0x10, 12}, {0x10, 0x80, 0x80, 0x04}, {0x10, 0x81, 0x80, 0x04}, {0x10, 0xf0, 0xff, 0x0f},
		{0x10, 0x80, 0x80, 0x80, 0x80, 0x01}, {0x10, 0x80, 0x00}, {0x30, 0}, {0x12, 0}, {0x10},
		connectBytes(f, "token"), []byte("GET /mqtt HTTP/1.1\r\n"),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rem, n, err := CheckConnectHeader(b, MaxConnectSize)
		if errors.Is(err, errShortHeader) {
			if len(b) >= 5 {
				t.Fatalf("% x: wants more than 5 bytes", b)
			}
			return
		}
		if err != nil {
			return
		}
		if rem > MaxConnectSize || n < 2 || n > 5 || n > len(b) {
			t.Fatalf("% x: remaining %d, header %d", b, rem, n)
		}
		var fh packets.FixedHeader
		if err := fh.Decode(b[0]); err != nil || fh.Type != packets.Connect {
			t.Fatalf("% x: mochi decodes type %d, %v", b, fh.Type, err)
		}
		mrem, mbu, err := packets.DecodeLength(bytes.NewReader(b[1:]))
		if err != nil || mrem != rem || mbu+1 != n {
			t.Fatalf("% x: mochi reads length %d in %d bytes (%v), we %d in %d", b, mrem, mbu+1, err, rem, n)
		}
	})
}

func TestReadConnect(t *testing.T) {
	want := connectBytes(t, strings.Repeat("t", 3000))
	got, err := readConnect(iotestOneByte{bytes.NewReader(append(want, 0xe0, 0))}, MaxConnectSize)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("readConnect = %d bytes, %v; want the %d bytes of the CONNECT", len(got), err, len(want))
	}
	if _, err := readConnect(bytes.NewReader(want[:len(want)-1]), MaxConnectSize); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut CONNECT: %v", err)
	}
	if _, err := readConnect(bytes.NewReader([]byte{0x10, 0xf0, 0xff, 0x0f}), MaxConnectSize); !errors.Is(err, ErrConnectTooLarge) {
		t.Fatalf("262,000-byte CONNECT: %v", err)
	}
}

// iotestOneByte reads one byte at a time.
type iotestOneByte struct{ r io.Reader }

func (o iotestOneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

// TestReadConnectHoldsWhatArrived checks that a client announcing a large
// CONNECT and sending little makes the server hold little: the buffer
// grows with the bytes received, not with the length announced.
func TestReadConnectHoldsWhatArrived(t *testing.T) {
	r, w := net.Pipe()
	defer w.Close()
	done := make(chan struct{})
	var buf []byte
	go func() {
		defer close(done)
		buf, _ = readConnect(&capturing{Reader: r, seen: func(b []byte) {
			if cap(b) > 4096 {
				t.Errorf("a buffer of %d bytes for 100 bytes received", cap(b))
			}
		}}, MaxConnectSize)
	}()
	w.Write([]byte{0x10, 0x80, 0x80, 0x04}) // 64 KiB announced
	w.Write(make([]byte, 100))
	w.Close()
	<-done
	if buf != nil {
		t.Fatal("a cut CONNECT was returned")
	}
}

type capturing struct {
	io.Reader
	seen func([]byte)
}

func (c *capturing) Read(p []byte) (int, error) {
	c.seen(p[:cap(p)])
	return c.Reader.Read(p)
}

// startBroker serves a broker that lets everyone in, on 127.0.0.1, with
// its WebSocket listener on an httptest server.
func startBroker(t *testing.T, o Options) (tcpAddr, wsURL string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.TCPListener = ln
	o.Log = slog.New(slog.DiscardHandler)
	b, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Serve(); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(b.WebSocket())
	t.Cleanup(func() { hs.Close(); b.Close() })
	return b.TCPAddr(), "ws" + strings.TrimPrefix(hs.URL, "http")
}

// closedWithin reports whether the server closes c within d (reading
// nothing).
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

func TestSilentConnectionsAreClosed(t *testing.T) {
	tcp, ws := startBroker(t, Options{ConnectTimeout: 300 * time.Millisecond})
	t.Run("tcp", func(t *testing.T) {
		c, err := net.Dial("tcp", tcp)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if !closedWithin(c, 10*time.Second) {
			t.Fatal("a silent TCP connection is still open")
		}
	})
	t.Run("websocket", func(t *testing.T) {
		c, _, err := websocket.DefaultDialer.Dial(ws, map[string][]string{"Sec-WebSocket-Protocol": {"mqtt"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if !closedWithin(c.UnderlyingConn(), 10*time.Second) {
			t.Fatal("a silent WebSocket is still open")
		}
	})
	t.Run("trickled CONNECT", func(t *testing.T) {
		c, err := net.Dial("tcp", tcp)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		b := connectBytes(t, "token")
		closed := make(chan struct{})
		go func() {
			defer close(closed)
			c.Read(make([]byte, 1))
		}()
		for i := 0; i < len(b)-1; i++ {
			select {
			case <-closed:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := c.Write(b[i : i+1]); err != nil {
				return
			}
		}
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatal("a CONNECT trickled byte by byte is still being read")
		}
	})
}

func TestRefusedAtOnce(t *testing.T) {
	tcp, ws := startBroker(t, Options{ConnectTimeout: time.Hour})
	for _, tc := range []struct {
		desc  string
		bytes []byte
	}{
		{"CONNECT declaring 262,000 bytes", []byte{0x10, 0xf0, 0xff, 0x0f}},
		{"PUBLISH first", []byte{0x30, 0x05, 0, 1, 'x', 'h', 'i'}},
		{"HTTP on the MQTT port", []byte("GET / HTTP/1.1\r\n\r\n")},
	} {
		t.Run("tcp/"+tc.desc, func(t *testing.T) {
			c, err := net.Dial("tcp", tcp)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write(tc.bytes)
			if !closedWithin(c, 10*time.Second) {
				t.Fatal("still open")
			}
		})
		t.Run("websocket/"+tc.desc, func(t *testing.T) {
			c, _, err := websocket.DefaultDialer.Dial(ws, map[string][]string{"Sec-WebSocket-Protocol": {"mqtt"}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.WriteMessage(websocket.BinaryMessage, tc.bytes)
			if !closedWithin(c.UnderlyingConn(), 10*time.Second) {
				t.Fatal("still open")
			}
		})
	}
}

// A real client still connects, over TCP and WebSocket, also when its
// CONNECT arrives in pieces.
func TestClientsStillConnect(t *testing.T) {
	tcp, ws := startBroker(t, Options{})
	for _, url := range []string{"tcp://" + tcp, ws} {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("ok").SetAutoReconnect(false))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("%s: connect: %v", url, tok.Error())
		}
		c.Disconnect(0)
	}
	c, err := net.Dial("tcp", tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := connectBytes(t, strings.Repeat("t", 5000))
	for i := 0; i < len(b); i += 700 {
		c.Write(b[i:min(i+700, len(b))])
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	h, err := bufio.NewReader(c).ReadByte()
	if err != nil || h != packets.Connack<<4 {
		t.Fatalf("CONNACK: %x %v", h, err)
	}
}

func TestPendingPerIP(t *testing.T) {
	tcp, _ := startBroker(t, Options{PendingPerIP: 2})
	dialFrom := func(ip string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		c, err := d.Dial("tcp", tcp)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	silent := []net.Conn{dialFrom("127.0.0.2"), dialFrom("127.0.0.2")}
	if !closedWithin(dialFrom("127.0.0.2"), 10*time.Second) {
		t.Fatal("a third silent connection from one address is open")
	}
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + tcp).SetClientID("ok").SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("a client from another address: %v", tok.Error())
	}
	defer c.Disconnect(0)
	// Once one of them connects, it is no longer pending.
	silent[0].Write(connectBytes(t, "x"))
	silent[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	if h, err := bufio.NewReader(silent[0]).ReadByte(); err != nil || h != packets.Connack<<4 {
		t.Fatalf("CONNACK: %x %v", h, err)
	}
	third := dialFrom("127.0.0.2")
	third.Write(connectBytes(t, "x"))
	third.SetReadDeadline(time.Now().Add(10 * time.Second))
	if h, err := bufio.NewReader(third).ReadByte(); err != nil || h != packets.Connack<<4 {
		t.Fatalf("after one was answered, a new one from the same address: %x %v", h, err)
	}
}

func TestZeroLimitConnect(t *testing.T) {
	// An MQTT 5 CONNECT whose properties are props, client id "c".
	connect := func(level byte, props ...byte) []byte {
		body := []byte{0, 4, 'M', 'Q', 'T', 'T', level, 0x02, 0, 30}
		if level == 5 {
			body = append(body, byte(len(props)))
			body = append(body, props...)
		}
		body = append(body, 0, 1, 'c')
		return append([]byte{0x10, byte(len(body))}, body...)
	}
	for _, tc := range []struct {
		desc string
		pkt  []byte
		want bool
	}{
		{"no properties", connect(5), false},
		{"receive maximum 0", connect(5, 0x21, 0, 0), true},
		{"receive maximum 1", connect(5, 0x21, 0, 1), false},
		{"maximum packet size 0", connect(5, 0x27, 0, 0, 0, 0), true},
		{"maximum packet size 1 KiB", connect(5, 0x27, 0, 0, 4, 0), false},
		{"after other properties", connect(5, 0x11, 0, 0, 0, 60, 0x26, 0, 1, 'k', 0, 1, 'v', 0x21, 0, 0), true},
		{"MQTT 3.1.1", connect(4), false},
		{"truncated", connect(5, 0x21, 0, 0)[:12], false},
		{"unknown property", connect(5, 0x99, 0x21, 0, 0), false},
	} {
		if got := zeroLimitConnect(tc.pkt); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.desc, got, tc.want)
		}
	}
}
