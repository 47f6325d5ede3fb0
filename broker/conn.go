package broker

import (
	"net"
	"time"
)

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
