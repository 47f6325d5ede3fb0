package broker

import (
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

// TestWriteDeadline checks that a write to a client that does not read
// fails once the write timeout has passed, instead of blocking.
func TestWriteDeadline(t *testing.T) {
	client, server := tcpPair(t)
	_ = client // never reads
	c := &deadlineConn{Conn: server, writeTimeout: 50 * time.Millisecond}
	chunk := make([]byte, 64<<10)
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := c.Write(chunk); err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			t.Fatalf("write failed with %v, want a timeout", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("a write to a client that does not read never failed")
	}
}

// BenchmarkDeadlineConnWrite measures one delivery's socket write (a
// 300-byte publish) through deadlineConn, with a reader draining the
// other end.
//
//	go test ./broker -run '^$' -bench DeadlineConnWrite
func BenchmarkDeadlineConnWrite(b *testing.B) {
	client, server := tcpPair(b)
	go func() { _, _ = io.Copy(io.Discard, client) }()
	c := &deadlineConn{Conn: server, writeTimeout: 10 * time.Second}
	p := make([]byte, 300)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(p); err != nil {
			b.Fatal(err)
		}
	}
}
