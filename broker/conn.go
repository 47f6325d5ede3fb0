package broker

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// Writes to a client never block its writer for long. mochi writes a
// client's packets holding the client's lock, and takes that lock to give
// a QoS 1 delivery its packet id: a client that stops reading would stall
// every publisher delivering to it (and the server's one delivering
// goroutine with them) for as long as a socket write can wait. So a write
// goes to the socket at once if it takes it, and what it does not take is
// written behind, by a goroutine, in order; a client with more than
// maxBehind bytes waiting, or whose socket takes nothing for writeTimeout,
// is disconnected (it catches up from history, or from its persistent
// session).

// maxBehind is how many bytes may wait for one client's socket.
const maxBehind = 1 << 20

// quickWrite is how long a write may wait for the socket before the rest
// is written behind.
const quickWrite = 2 * time.Millisecond

// errSlowReader ends a connection whose client does not read.
var errSlowReader = errors.New("the client does not read: more than 1 MiB waits for its socket")

// writeBehind is the write side of a client connection.
type writeBehind struct {
	// write writes p to the socket within timeout. With partial, it may
	// write part of p at the timeout, and be called again with the rest
	// (TCP); without, p is written whole or the connection is broken
	// (WebSocket: always written behind).
	write   func(p []byte, timeout time.Duration) (int, error)
	partial bool
	close   func() error
	timeout time.Duration

	wmu     sync.Mutex // one Write at a time
	mu      sync.Mutex
	buf     []byte // waiting for the socket
	busy    bool   // a goroutine is writing buf
	closing bool   // Close was called while busy: close once buf is written
	err     error  // the connection failed: every write fails
	done    sync.WaitGroup
}

// closeGrace is how long Close lets what waits reach the socket (a
// refusal's CONNACK, an MQTT 5 DISCONNECT) before the connection is cut.
const closeGrace = time.Second

// Write writes p, or queues what the socket does not take at once.
func (w *writeBehind) Write(p []byte) (int, error) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return 0, err
	}
	if w.busy || !w.partial {
		err := w.queueLocked(p)
		w.mu.Unlock()
		if err != nil {
			return 0, err
		}
		return len(p), nil
	}
	w.mu.Unlock()
	n, err := w.write(p, quickWrite)
	if err == nil {
		return n, nil
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		w.fail(err)
		return n, err
	}
	w.mu.Lock()
	err = w.queueLocked(p[n:])
	w.mu.Unlock()
	if err != nil {
		return n, err
	}
	return len(p), nil
}

// queueLocked adds p to what waits, and starts the writer. w.mu is held.
func (w *writeBehind) queueLocked(p []byte) error {
	if len(w.buf)+len(p) > maxBehind {
		w.err = errSlowReader
		w.buf = nil
		go w.close() //nolint:errcheck // the connection is over
		return errSlowReader
	}
	w.buf = append(w.buf, p...)
	if !w.busy {
		w.busy = true
		w.done.Add(1)
		go w.drain()
	}
	return nil
}

// drain writes what waits, until nothing does.
func (w *writeBehind) drain() {
	defer w.done.Done()
	for {
		w.mu.Lock()
		if len(w.buf) == 0 || w.err != nil {
			w.busy = false
			closing := w.closing && w.err == nil
			w.mu.Unlock()
			if closing {
				_ = w.close()
			}
			return
		}
		b := w.buf
		w.buf = nil
		w.mu.Unlock()
		for len(b) > 0 {
			n, err := w.write(b, w.timeout)
			if err != nil {
				w.fail(err)
				return
			}
			b = b[n:]
		}
	}
}

// fail ends the connection after a write failed.
func (w *writeBehind) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.buf = nil
	w.busy = false
	w.mu.Unlock()
	_ = w.close()
}

// Close closes the connection once what waits for its socket is written,
// or closeGrace later, whichever comes first; it does not wait.
func (w *writeBehind) Close() error {
	w.mu.Lock()
	if w.busy && w.err == nil {
		w.closing = true
		w.mu.Unlock()
		time.AfterFunc(closeGrace, func() { _ = w.close() })
		return nil
	}
	w.mu.Unlock()
	return w.close()
}

// wait waits for the writer; close the connection first.
func (w *writeBehind) wait() { w.done.Wait() }

// tcpConn is a client's TCP connection: writes are written behind (see
// writeBehind), each with its own deadline; mochi sets one deadline for
// reads and writes from the keepalive, which reads keep.
type tcpConn struct {
	net.Conn
	w *writeBehind
}

func newTCPConn(c net.Conn, writeTimeout time.Duration) *tcpConn {
	t := &tcpConn{Conn: c}
	t.w = &writeBehind{partial: true, close: c.Close, timeout: writeTimeout,
		write: func(p []byte, timeout time.Duration) (int, error) {
			_ = c.SetWriteDeadline(time.Now().Add(timeout))
			return c.Write(p)
		}}
	return t
}

func (c *tcpConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// Close closes the connection once what waits is written (see
// writeBehind.Close).
func (c *tcpConn) Close() error { return c.w.Close() }

// SetDeadline applies mochi's keepalive deadline to reads only.
func (c *tcpConn) SetDeadline(t time.Time) error { return c.Conn.SetReadDeadline(t) }

// SetWriteDeadline is ignored: every write has its own.
func (c *tcpConn) SetWriteDeadline(time.Time) error { return nil }
