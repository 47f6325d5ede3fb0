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
// these ways: its listener is guarded (netguard: connection rate, pending
// connections per IP, descriptor exhaustion); a connection must send a
// CONNECT of at most MaxConnectSize within connectTimeout, read here before
// mochi sees the connection (see preauth); each connection's writes are
// bounded by their own deadline (deadlineConn); and a client going away is
// logged at debug level, not as a warning.
type tcpListener struct {
	id             string
	ln             net.Listener
	writeTimeout   time.Duration
	connectTimeout time.Duration
	closeClients   func(id string) // the broker's; see Broker.closeListenerClients
	log            *slog.Logger

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
			time.Sleep(50 * time.Millisecond) // not expected: the guard handles descriptor exhaustion
			continue
		}
		go func() {
			tc := newTCPConn(c, l.writeTimeout)
			defer tc.w.wait() // its writer, once the connection is closed
			defer tc.Close()
			conn, err := preauth(tc, c, l.connectTimeout)
			if err != nil {
				l.log.Debug("mqtt connection closed before CONNECT", "error", err, "remote", c.RemoteAddr())
				return // closed by the deferred Close, after what it was answered
			}
			err = establish(l.id, conn)
			if err != nil && !errors.Is(err, io.EOF) {
				l.log.Debug("mqtt client ended", "error", err, "remote", c.RemoteAddr())
			}
		}()
	}
}

// Close stops accepting and closes every client of this listener (with
// the broker's closer, not mochi's, which can deadlock).
func (l *tcpListener) Close(_ listeners.CloseFn) {
	l.mu.Lock()
	already := l.closed
	l.closed = true
	l.mu.Unlock()
	if !already {
		_ = l.ln.Close()
	}
	l.closeClients(l.id)
}
