package broker

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/imserver/imserver/internal/netguard"
)

// Limits of a connection before it is authenticated (PROTOCOL.md §9).
const (
	// DefaultConnectTimeout is how long a new connection has to send its
	// CONNECT and be answered; after it the connection is closed.
	DefaultConnectTimeout = 10 * time.Second
	// MaxConnectSize is the largest CONNECT packet accepted (its remaining
	// length, in bytes). A client sends an access token and a client id:
	// anything close to this is not a client.
	MaxConnectSize = 64 << 10
)

// Why a connection is closed before its CONNECT reaches the broker.
var (
	ErrNotConnect      = errors.New("the first packet is not a CONNECT")
	ErrConnectTooLarge = fmt.Errorf("CONNECT packet over %d bytes", MaxConnectSize)
	ErrMalformedLength = errors.New("malformed packet length")
	// errShortHeader means more bytes are needed to judge the header.
	errShortHeader = errors.New("incomplete fixed header")
)

// CheckConnectHeader looks at the start of a connection's byte stream and
// reports, from the fixed header alone, whether it is a CONNECT the server
// will read: type CONNECT with the reserved flags zero (the first byte is
// exactly 0x10) and a remaining length, a variable byte integer of at most
// 4 bytes, no larger than max. It returns the remaining length and the
// size of the fixed header. If b ends before the header does, the error is
// errShortHeader; every other error means the connection must be closed.
// It never reads past the header, so it is safe on any prefix.
func CheckConnectHeader(b []byte, max int) (remaining, headerLen int, err error) {
	if len(b) == 0 {
		return 0, 0, errShortHeader
	}
	if b[0] != 0x10 {
		return 0, 0, ErrNotConnect
	}
	mult := 1
	for i := 1; i <= 4; i++ {
		if i >= len(b) {
			return 0, 0, errShortHeader
		}
		remaining += int(b[i]&0x7f) * mult
		if remaining > max {
			return 0, 0, ErrConnectTooLarge
		}
		if b[i]&0x80 == 0 {
			return remaining, i + 1, nil
		}
		mult *= 128
	}
	return 0, 0, ErrMalformedLength
}

// readConnect reads the first packet of a connection, which must be a
// CONNECT of at most max bytes, and returns its bytes. The fixed header
// is judged as it arrives, so a wrong type or a declared length over max
// is refused at once, and the body is read into a buffer that grows with
// what has actually arrived: a client that announces a large packet and
// sends it slowly makes the server hold only what it sent.
func readConnect(r io.Reader, max int) ([]byte, error) {
	hdr := make([]byte, 0, 5)
	var one [1]byte
	remaining, n := 0, 0
	for {
		if _, err := io.ReadFull(r, one[:]); err != nil {
			return nil, err
		}
		hdr = append(hdr, one[0])
		var err error
		remaining, n, err = CheckConnectHeader(hdr, max)
		if err == nil {
			break
		}
		if !errors.Is(err, errShortHeader) {
			return nil, err
		}
	}
	buf := make([]byte, n, n+min(remaining, 1024))
	copy(buf, hdr)
	for len(buf) < n+remaining {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), n+min(remaining, 2*(cap(buf)-n)))
			copy(grown, buf)
			buf = grown
		}
		k, err := r.Read(buf[len(buf):min(cap(buf), n+remaining)])
		buf = buf[:len(buf)+k]
		if err != nil && len(buf) < n+remaining {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}

// preauth reads a new connection's CONNECT within timeout, and returns the
// connection for the broker with those bytes put back in front. The
// connection's first write (the CONNACK, whatever it says) admits
// connection admit (see netguard): from then on the client is no longer
// pending. On error the caller closes the connection.
func preauth(c net.Conn, admit net.Conn, timeout time.Duration) (net.Conn, error) {
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	b, err := readConnect(c, MaxConnectSize)
	if err != nil {
		return nil, err
	}
	return &replayConn{Conn: c, pending: b, admit: admit}, nil
}

// replayConn is a connection whose first bytes were already read: Read
// returns them first. Its first Write admits the underlying connection.
type replayConn struct {
	net.Conn
	pending []byte
	admit   net.Conn
	once    sync.Once
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		if len(c.pending) == 0 {
			c.pending = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *replayConn) Write(p []byte) (int, error) {
	c.once.Do(func() { netguard.Admit(c.admit) })
	return c.Conn.Write(p)
}
