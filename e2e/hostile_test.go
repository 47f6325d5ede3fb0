package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imserver/imserver/wire"
)

// Hostile clients against the real binary (GitHub issue 11). Each test
// logs the figures it measured; IM_TEST_BINARY runs the same tests against
// another build. Run them alone with
//
//	go test ./e2e -run Hostile -v

// mqttConnect sends a CONNECT (protocol version 4 or 5) from the loopback
// address ip and returns the CONNACK's return code.
func mqttConnect(addr, ip, token string, version byte, timeout time.Duration) (byte, net.Conn, error) {
	c, err := dialFrom(ip, addr, timeout)
	if err != nil {
		return 0, nil, err
	}
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: version,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 60,
			UsernameFlag: true, Username: []byte("u"), PasswordFlag: true, Password: []byte(token)}}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		c.Close()
		return 0, nil, err
	}
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(buf.Bytes()); err != nil {
		c.Close()
		return 0, nil, err
	}
	r := bufio.NewReader(c)
	h, err := r.ReadByte()
	if err != nil {
		c.Close()
		return 0, nil, fmt.Errorf("CONNACK: %w", err)
	}
	if h>>4 != packets.Connack {
		c.Close()
		return 0, nil, fmt.Errorf("got packet type %d, want CONNACK", h>>4)
	}
	n, err := r.ReadByte()
	if err != nil || n < 2 {
		c.Close()
		return 0, nil, fmt.Errorf("CONNACK length %d: %v", n, err)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		c.Close()
		return 0, nil, err
	}
	c.SetDeadline(time.Time{})
	return body[1], &bufConn{Conn: c, r: r}, nil
}

// bufConn is a connection whose reads go through r.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// restLogin registers (if register) and logs in a user from 127.0.0.1
// through client c, returning the access token.
func restLogin(c *http.Client, base, user string, register bool) (string, error) {
	do := func(path string) (*http.Response, error) {
		b, _ := json.Marshal(creds(user, "password1"))
		return c.Post(base+path, "application/json", bytes.NewReader(b))
	}
	if register {
		resp, err := do("/api/v1/auth/register")
		if err != nil {
			return "", err
		}
		resp.Body.Close()
		if resp.StatusCode != 201 {
			return "", fmt.Errorf("register: %s", resp.Status)
		}
	}
	resp, err := do("/api/v1/auth/login")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tok wire.Token
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("login: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

// closedWithin waits for the server to close c (reading and discarding
// what it sends) and reports how long that took, or false after d.
func closedWithin(c net.Conn, d time.Duration) (time.Duration, bool) {
	start := time.Now()
	c.SetReadDeadline(start.Add(d))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return time.Since(start), false
	}
	return time.Since(start), true
}

// The acceptance test of finding 1: while a client keeps opening silent
// sockets against a server limited to 1,024 descriptors, a normal REST
// login and an MQTT connect from another address succeed within 15 s.
func TestHostileSilentSocketsDoNotLockOut(t *testing.T) {
	if testing.Short() {
		t.Skip("opens thousands of sockets")
	}
	c := startChild(t, childOptions{NoFile: 1024})
	stop := make(chan struct{})
	var (
		mu     sync.Mutex
		held   []net.Conn
		opened atomic.Int64
		done   = make(chan struct{})
	)
	go func() { // the attacker, from 127.0.0.2: at most 6,000 sockets, one per ms
		defer close(done)
		for i := 0; i < 6000; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			addr := c.MQTTAddr
			if i%3 == 2 {
				addr = c.HTTPAddr
			}
			conn, err := dialFrom("127.0.0.2", addr, 2*time.Second)
			if err != nil {
				continue
			}
			mu.Lock()
			held = append(held, conn)
			mu.Unlock()
			opened.Add(1)
		}
	}()
	defer func() {
		close(stop)
		<-done
		mu.Lock()
		for _, conn := range held {
			conn.Close()
		}
		mu.Unlock()
	}()
	for opened.Load() < 1100 {
		select {
		case <-done:
			t.Fatalf("the attacker could open only %d sockets", opened.Load())
		case <-time.After(10 * time.Millisecond):
		}
	}

	start := time.Now()
	hc := clientFrom("127.0.0.1")
	hc.Timeout = 15 * time.Second
	tok, err := restLogin(hc, c.URL, "legit_user", true)
	if err != nil {
		t.Fatalf("REST register and login during the attack (%d silent sockets opened): %v after %v", opened.Load(), err, time.Since(start).Round(time.Millisecond))
	}
	rest := time.Since(start)
	code, conn, err := mqttConnect(c.MQTTAddr, "127.0.0.1", tok, 4, 15*time.Second-rest)
	if err != nil || code != 0 {
		t.Fatalf("MQTT connect during the attack (%d silent sockets opened): code %d, %v after %v", opened.Load(), code, err, time.Since(start).Round(time.Millisecond))
	}
	conn.Close()
	t.Logf("with %d silent sockets opened from 127.0.0.2 (limit 1,024 descriptors): REST register+login %v, then MQTT CONNACK %v",
		opened.Load(), rest.Round(time.Millisecond), (time.Since(start) - rest).Round(time.Millisecond))
}

// A silent TCP socket and an upgraded-but-silent WebSocket are closed
// about 10 s after they were opened.
func TestHostileSilentConnectionsClosed(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 10 s")
	}
	t.Parallel()
	c := startChild(t, childOptions{})
	var wg sync.WaitGroup
	for _, kind := range []string{"tcp", "websocket"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var conn net.Conn
			var err error
			if kind == "tcp" {
				conn, err = net.Dial("tcp", c.MQTTAddr)
			} else {
				conn, err = dialWS(c.HTTPAddr)
			}
			if err != nil {
				t.Errorf("%s: %v", kind, err)
				return
			}
			defer conn.Close()
			took, closed := closedWithin(conn, 30*time.Second)
			if !closed {
				t.Errorf("a silent %s connection is still open after %v", kind, took.Round(time.Second))
				return
			}
			t.Logf("silent %s connection closed after %v", kind, took.Round(100*time.Millisecond))
		}()
	}
	wg.Wait()
}

// A request body trickled one byte per half second is cut off.
func TestHostileTrickledBody(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 20 s")
	}
	t.Parallel()
	c := startChild(t, childOptions{})
	conn, err := net.Dial("tcp", c.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "POST /api/v1/auth/login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", c.HTTPAddr)
	ended := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(conn, 1<<20))
		ended <- string(b)
	}()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case answer := <-ended:
			status, _, _ := strings.Cut(answer, "\r\n")
			t.Logf("trickled body cut off after %v (answer: %q)", time.Since(start).Round(100*time.Millisecond), status)
			return
		case <-tick.C:
			if time.Since(start) > 60*time.Second {
				t.Fatal("a body trickled for 60 s is still being read")
			}
			conn.Write([]byte(" "))
		}
	}
}

// 400 connections announcing a 262,000-byte CONNECT (and sending 200,000
// bytes of it) are refused at once, and the server's memory stays flat.
func TestHostileOversizeConnects(t *testing.T) {
	if testing.Short() {
		t.Skip("400 connections")
	}
	c := startChild(t, childOptions{})
	time.Sleep(time.Second) // let the start settle before measuring
	before, _ := c.RSS(t)
	const n = 400
	conns := make([]net.Conn, 0, n)
	var wg sync.WaitGroup
	for i := range n {
		ip := fmt.Sprintf("127.0.%d.%d", 1+i/250, 1+i%250) // one address each: no per-address limit applies
		conn, err := dialFrom(ip, c.MQTTAddr, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		defer conn.Close()
		conns = append(conns, conn)
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := conn.Write([]byte{0x10, 0xf0, 0xff, 0x0f}); err != nil { // remaining length 262,000
				return
			}
			conn.Write(make([]byte, 200_000))
		}()
	}
	wg.Wait()
	time.Sleep(500 * time.Millisecond) // let the server read what arrived
	after, _ := c.RSS(t)
	open := 0
	for _, conn := range conns {
		if _, closed := closedWithin(conn, 100*time.Millisecond); !closed {
			open++
		}
	}
	t.Logf("RSS %s before, %s after %d CONNECTs of 262,000 bytes (+%s); %d of them still open",
		mib(before), mib(after), n, mib(after-before), open)
	if open > 0 {
		t.Errorf("%d of %d oversize CONNECTs are still open", open, n)
	}
	if after-before > 16<<20 {
		t.Errorf("RSS grew by %s", mib(after-before))
	}
}
