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
	if zeroLimitConnect(b) {
		// MQTT 5 §3.1.2.11: a Receive Maximum or a Maximum Packet Size of
		// 0 is a protocol error. mochi reads 0 as "not given": answer
		// here, CONNACK 0x82, and close.
		_ = c.SetWriteDeadline(time.Now().Add(timeout))
		_, _ = c.Write([]byte{0x20, 0x03, 0x00, 0x82, 0x00})
		return nil, ErrProtocolError
	}
	return &replayConn{Conn: c, pending: b, admit: admit}, nil
}

// ErrProtocolError closes an MQTT 5 CONNECT that sets Receive Maximum or
// Maximum Packet Size to 0 (after a CONNACK 0x82).
var ErrProtocolError = errors.New("MQTT 5 CONNECT with a Receive Maximum or Maximum Packet Size of 0")

// zeroLimitConnect reports whether pkt, a whole CONNECT packet, is MQTT 5
// and sets Receive Maximum or Maximum Packet Size to 0. A packet it cannot
// read is left to the broker to refuse.
func zeroLimitConnect(pkt []byte) bool {
	_, n, err := CheckConnectHeader(pkt, len(pkt))
	if err != nil {
		return false
	}
	b := pkt[n:]
	if len(b) < 2 {
		return false
	}
	nameLen := int(b[0])<<8 | int(b[1])
	b = b[2:]
	if len(b) < nameLen+4 || b[nameLen] != 5 { // protocol level 5
		return false
	}
	b = b[nameLen+4:] // name, level, flags, keepalive
	propLen, k := 0, 0
	for mult := 1; ; mult *= 128 {
		if k >= len(b) || k == 4 {
			return false
		}
		propLen += int(b[k]&0x7f) * mult
		k++
		if b[k-1]&0x80 == 0 {
			break
		}
	}
	b = b[k:]
	if propLen > len(b) {
		return false
	}
	b = b[:propLen]
	for len(b) > 0 {
		id := b[0]
		b = b[1:]
		var size int
		switch id {
		case 0x21, 0x22: // receive maximum, topic alias maximum: two bytes
			size = 2
			if id == 0x21 && len(b) >= 2 && b[0] == 0 && b[1] == 0 {
				return true
			}
		case 0x11, 0x27: // session expiry, maximum packet size: four bytes
			size = 4
			if id == 0x27 && len(b) >= 4 && b[0]|b[1]|b[2]|b[3] == 0 {
				return true
			}
		case 0x17, 0x19: // request problem / response information: a byte
			size = 1
		case 0x15, 0x16: // authentication method, data: length-prefixed
			if len(b) < 2 {
				return false
			}
			size = 2 + (int(b[0])<<8 | int(b[1]))
		case 0x26: // user property: two length-prefixed strings
			if len(b) < 2 {
				return false
			}
			first := 2 + (int(b[0])<<8 | int(b[1]))
			if len(b) < first+2 {
				return false
			}
			size = first + 2 + (int(b[first])<<8 | int(b[first+1]))
		default:
			return false
		}
		if size > len(b) {
			return false
		}
		b = b[size:]
	}
	return false
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
