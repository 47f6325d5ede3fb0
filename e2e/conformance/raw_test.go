package conformance

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// raw is an MQTT client on a bare TCP connection, built on mochi's packet
// codec: it sends exactly what a test asks and shows every packet that
// arrives, which no library does.
type raw struct {
	conn    net.Conn
	r       *bufio.Reader
	version byte
	seen    []packets.Packet // every packet read, in order
}

// noPassword as rawDial's token sends a CONNECT without a password.
const noPassword = "\x00no password"

// rawDial connects and sends CONNECT; it returns the client and the
// CONNACK, or a nil CONNACK when the server closed the connection first.
func rawDial(t *testing.T, addr string, version byte, clientID, token string, props *packets.Properties) (*raw, *packets.Packet) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &raw{conn: conn, r: bufio.NewReader(conn), version: version}
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: version,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 60, ClientIdentifier: clientID,
			UsernameFlag: true, Username: []byte("raw"), PasswordFlag: true, Password: []byte(token)}}
	if props != nil {
		pk.Properties = *props
	}
	if token == noPassword {
		pk.Connect.PasswordFlag, pk.Connect.Password = false, nil
	}
	c.write(t, pk, (*packets.Packet).ConnectEncode)
	ack, err := c.read(wait)
	if err != nil {
		return c, nil
	}
	if ack.FixedHeader.Type != packets.Connack {
		t.Fatalf("raw connect: got packet type %d, want CONNACK", ack.FixedHeader.Type)
	}
	return c, &ack
}

func (c *raw) write(t *testing.T, pk packets.Packet, enc func(*packets.Packet, *bytes.Buffer) error) {
	t.Helper()
	pk.ProtocolVersion = c.version
	var buf bytes.Buffer
	if err := enc(&pk, &buf); err != nil {
		t.Fatal(err)
	}
	c.conn.SetWriteDeadline(time.Now().Add(wait))
	if _, err := c.conn.Write(buf.Bytes()); err != nil {
		t.Fatalf("raw write: %v", err)
	}
}

// read reads the next packet, within d.
func (c *raw) read(d time.Duration) (packets.Packet, error) {
	c.conn.SetReadDeadline(time.Now().Add(d))
	defer c.conn.SetReadDeadline(time.Time{})
	hb, err := c.r.ReadByte()
	if err != nil {
		return packets.Packet{}, err
	}
	pk := packets.Packet{ProtocolVersion: c.version}
	if err := pk.FixedHeader.Decode(hb); err != nil {
		return pk, err
	}
	n, _, err := packets.DecodeLength(c.r)
	if err != nil {
		return pk, err
	}
	pk.FixedHeader.Remaining = n
	body := make([]byte, n)
	if _, err := io.ReadFull(c.r, body); err != nil {
		return pk, err
	}
	switch pk.FixedHeader.Type {
	case packets.Connack:
		err = pk.ConnackDecode(body)
	case packets.Puback:
		err = pk.PubackDecode(body)
	case packets.Pubrec:
		err = pk.PubrecDecode(body)
	case packets.Pubcomp:
		err = pk.PubcompDecode(body)
	case packets.Publish:
		err = pk.PublishDecode(body)
	case packets.Disconnect:
		if c.version == 5 {
			err = pk.DisconnectDecode(body)
		}
	case packets.Suback:
		err = pk.SubackDecode(body)
	}
	c.seen = append(c.seen, pk)
	return pk, err
}

// until reads packets until one of type typ with packet id id (0: any)
// arrives, or d passes.
func (c *raw) until(typ byte, id uint16, d time.Duration) (packets.Packet, error) {
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return packets.Packet{}, fmt.Errorf("no %s within %v", packets.PacketNames[typ], d)
		}
		pk, err := c.read(left)
		if err != nil {
			return pk, err
		}
		if pk.FixedHeader.Type == typ && (id == 0 || pk.PacketID == id) {
			return pk, nil
		}
	}
}

// closedWithin reads until the server closes the connection or d passes;
// it reports whether the connection was closed.
func (c *raw) closedWithin(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if _, err := c.read(time.Until(deadline)); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return false
			}
			return true
		}
	}
	return false
}

// types lists the names of the packets read so far.
func (c *raw) types() []string {
	var out []string
	for _, pk := range c.seen {
		s := packets.PacketNames[pk.FixedHeader.Type]
		if pk.FixedHeader.Type == packets.Disconnect && c.version == 5 {
			s += fmt.Sprintf("(0x%02x)", pk.ReasonCode)
		}
		out = append(out, s)
	}
	return out
}

func (c *raw) sawDisconnect() bool {
	for _, pk := range c.seen {
		if pk.FixedHeader.Type == packets.Disconnect {
			return true
		}
	}
	return false
}

func (c *raw) subscribe(t *testing.T, id uint16, topic string) []byte {
	t.Helper()
	c.write(t, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: id,
		Filters: packets.Subscriptions{{Filter: topic, Qos: 1}}}, (*packets.Packet).SubscribeEncode)
	pk, err := c.until(packets.Suback, id, wait)
	if err != nil {
		t.Fatalf("raw subscribe %s: %v", topic, err)
	}
	return pk.ReasonCodes
}

func (c *raw) publish(t *testing.T, id uint16, topic string, qos byte, payload []byte) {
	t.Helper()
	c.write(t, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos}, PacketID: id,
		TopicName: topic, Payload: payload}, (*packets.Packet).PublishEncode)
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }
