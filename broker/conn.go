package broker

import (
	"net"
	"time"
)

// deadlineListener wraps accepted connections in deadlineConn.
type deadlineListener struct {
	net.Listener
	writeTimeout time.Duration
}

func (l *deadlineListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return &deadlineConn{Conn: c, writeTimeout: l.writeTimeout}, nil
}

// deadlineConn bounds every write by its own deadline. mochi sets one
// deadline for reads and writes from the keepalive (1.5 × keepalive after the
// last packet read), so a client that stops reading could hold its writer,
// and anyone waiting on that writer, for minutes. Here reads keep mochi's
// deadline and writes get writeTimeout each.
type deadlineConn struct {
	net.Conn
	writeTimeout time.Duration
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	return c.Conn.Write(p)
}

// SetDeadline applies mochi's keepalive deadline to reads only.
func (c *deadlineConn) SetDeadline(t time.Time) error { return c.Conn.SetReadDeadline(t) }
