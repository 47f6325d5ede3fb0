package broker

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// tcpListener serves MQTT over TCP. It differs from mochi's listeners.Net in
// two ways: each connection's writes are bounded by their own deadline
// (deadlineConn), and a client going away is logged at debug level, not as
// a warning.
type tcpListener struct {
	id           string
	ln           net.Listener
	writeTimeout time.Duration
	closeClients func(listener string) // instead of mochi's (see Broker.closeClients)
	log          *slog.Logger

	mu     sync.Mutex
	closed bool
}

var _ listeners.Listener = (*tcpListener)(nil)

func (l *tcpListener) ID() string       { return l.id }
func (l *tcpListener) Address() string  { return l.ln.Addr().String() }
func (l *tcpListener) Protocol() string { return "tcp" }

func (l *tcpListener) Init(log *slog.Logger) error {
	l.log = log
	return nil
}

// Serve accepts connections until Close.
func (l *tcpListener) Serve(establish listeners.EstablishFn) {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			l.mu.Lock()
			closed := l.closed
			l.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			l.log.Warn("mqtt accept", "error", err)
			time.Sleep(50 * time.Millisecond) // e.g. out of file descriptors: don't spin
			continue
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		go func() {
			err := establish(l.id, &deadlineConn{Conn: c, writeTimeout: l.writeTimeout})
			if err != nil && !errors.Is(err, io.EOF) {
				l.log.Debug("mqtt client ended", "error", err, "remote", c.RemoteAddr())
			}
		}()
	}
}

// Close stops accepting and closes every client of this listener.
func (l *tcpListener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	already := l.closed
	l.closed = true
	l.mu.Unlock()
	if !already {
		_ = l.ln.Close()
	}
	if l.closeClients != nil {
		l.closeClients(l.id)
		return
	}
	closeClients(l.id)
}
