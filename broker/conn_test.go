package broker

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t testing.TB) (client, server net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// A client that does not read never blocks its writer: writes return at
// once, and once more than maxBehind bytes wait for its socket the
// connection is closed and writes fail.
func TestWriteBehindNeverBlocks(t *testing.T) {
	client, server := tcpPair(t)
	_ = client // never reads
	c := newTCPConn(server, time.Minute)
	chunk := make([]byte, 64<<10)
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		start := time.Now()
		_, err = c.Write(chunk)
		if d := time.Since(start); d > time.Second {
			t.Fatalf("write %d took %v: the writer waited for a client that does not read", i, d)
		}
	}
	if !errors.Is(err, errSlowReader) {
		t.Fatalf("64 MB to a client that does not read: %v, want errSlowReader", err)
	}
	c.w.wait()
}

// What is written behind arrives whole and in order.
func TestWriteBehindKeepsOrder(t *testing.T) {
	client, server := tcpPair(t)
	c := newTCPConn(server, 10*time.Second)
	const n = 2000
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(client, n*300))
		got <- b
	}()
	for i := 0; i < n; i++ {
		p := bytes.Repeat([]byte{byte(i)}, 300)
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	b := <-got
	if len(b) != n*300 {
		t.Fatalf("read %d bytes, want %d", len(b), n*300)
	}
	for i := 0; i < n; i++ {
		if b[i*300] != byte(i) || b[i*300+299] != byte(i) {
			t.Fatalf("write %d out of place", i)
		}
	}
	server.Close()
	c.w.wait()
}

// BenchmarkTCPConnWrite measures one delivery's socket write (a 300-byte
// publish) through tcpConn, with a reader draining the other end.
//
//	go test ./broker -run '^$' -bench TCPConnWrite
func BenchmarkTCPConnWrite(b *testing.B) {
	client, server := tcpPair(b)
	go func() { _, _ = io.Copy(io.Discard, client) }()
	c := newTCPConn(server, 10*time.Second)
	p := make([]byte, 300)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(p); err != nil {
			b.Fatal(err)
		}
	}
}
