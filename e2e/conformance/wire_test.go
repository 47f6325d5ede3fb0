package conformance

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imserver/imserver/app"
	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/wire"
)

// The same checks on the wire, with the raw client: exactly which packets
// and codes arrive, for QoS 1 and 2, whatever a library would make of them.

// TestWireRefusals sends every refusal at QoS 1 and 2 on 3.1.1 and 5 and
// reads the answer: a PUBACK (QoS 1) or PUBREC (QoS 2), on MQTT 5 with the
// contract's reason code, never a DISCONNECT on 3.1.1, the error event on
// the inbox, and the connection still usable.
func TestWireRefusals(t *testing.T) {
	srv := imtest.Start(t, imtest.Options{})
	f := newFixture(t, srv, newShop(t, srv))
	for _, version := range []byte{4, 5} {
		for _, qos := range []byte{1, 2} {
			t.Run(fmt.Sprintf("v%d/qos%d", version, qos), func(t *testing.T) {
				for _, r := range f.refusals() {
					t.Run(r.name, func(t *testing.T) { wireRefusal(t, f, version, qos, r) })
				}
			})
		}
	}
}

func wireRefusal(t *testing.T, f *fixture, version, qos byte, r refusal) {
	n := f.n.Add(1)
	c, ack := rawDial(t, f.srv.MQTTAddr, version, fmt.Sprintf("u%d-raw-%d", f.a.UID, n), f.a.Token, nil)
	if ack == nil || ack.ReasonCode != 0 {
		t.Fatalf("connect: %v", ack)
	}
	inbox := fmt.Sprintf("im/u/%d", f.a.UID)
	if codes := c.subscribe(t, 1, inbox); len(codes) != 1 || codes[0] >= 0x80 {
		t.Fatalf("subscribe to the inbox: % x", codes)
	}
	c.publish(t, 7, r.topic, qos, r.payload)
	wantType := byte(packets.Puback)
	if qos == 2 {
		wantType = packets.Pubrec
	}
	var problems []string
	var answer *packets.Packet
	var event *wire.ErrorEvent
	closed := false
	deadline := time.Now().Add(wait)
	for (answer == nil || event == nil) && time.Now().Before(deadline) {
		pk, err := c.read(time.Until(deadline))
		if err != nil {
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				closed = true
			}
			break
		}
		switch {
		case (pk.FixedHeader.Type == packets.Puback || pk.FixedHeader.Type == packets.Pubrec) && pk.PacketID == 7:
			answer = &pk
		case pk.FixedHeader.Type == packets.Publish && pk.TopicName == inbox:
			var e wire.ErrorEvent
			if json.Unmarshal(pk.Payload, &e) == nil && e.Event == wire.EventError && e.Topic == r.topic {
				event = &e
			}
		}
	}
	switch {
	case answer == nil && closed:
		problems = append(problems, fmt.Sprintf("the connection was closed without a %s", packets.PacketNames[wantType]))
	case answer == nil:
		problems = append(problems, fmt.Sprintf("no %s within %v", packets.PacketNames[wantType], wait))
	case answer.FixedHeader.Type != wantType:
		problems = append(problems, fmt.Sprintf("a %s (0x%02x) answered a QoS %d publish, want a %s", packets.PacketNames[answer.FixedHeader.Type], answer.ReasonCode, qos, packets.PacketNames[wantType]))
	case version == 5 && !pubackCodes[int(answer.ReasonCode)]:
		problems = append(problems, fmt.Sprintf("%s reason code 0x%02x is not one MQTT 5 allows there (want 0x%02x)", packets.PacketNames[wantType], answer.ReasonCode, reasonFor[r.code]))
	case version == 5 && int(answer.ReasonCode) != reasonFor[r.code]:
		problems = append(problems, fmt.Sprintf("%s reason code 0x%02x, want 0x%02x (%s)", packets.PacketNames[wantType], answer.ReasonCode, reasonFor[r.code], r.code))
	}
	switch {
	case event == nil:
		problems = append(problems, fmt.Sprintf("no error event for %q on the inbox", r.topic))
	case event.Code != r.code:
		problems = append(problems, fmt.Sprintf("error event code %q, want %q", event.Code, r.code))
	}
	if version == 4 && c.sawDisconnect() {
		problems = append(problems, "a DISCONNECT packet was sent to a 3.1.1 client")
	}
	if !closed && answer != nil && answer.FixedHeader.Type == packets.Pubrec && answer.ReasonCode < 0x80 {
		c.write(t, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel, Qos: 1}, PacketID: 7}, (*packets.Packet).PubrelEncode)
		if _, err := c.until(packets.Pubcomp, 7, wait); err != nil {
			problems = append(problems, "no PUBCOMP: "+err.Error())
		}
	}
	if !closed { // still usable
		cid := fmt.Sprintf("probe-raw-%d", n)
		c.publish(t, 8, fmt.Sprintf("im/u/%d", f.b.UID), 1, textPayload(cid, "still there?"))
		if pk, err := c.until(packets.Puback, 8, wait); err != nil {
			problems = append(problems, "a normal publish afterwards: "+err.Error())
		} else if pk.ReasonCode != 0 {
			problems = append(problems, fmt.Sprintf("a normal publish afterwards: PUBACK 0x%02x", pk.ReasonCode))
		}
	}
	if len(problems) > 0 {
		t.Errorf("MQTT %s QoS %d, %s (publish to %q):\n  %s\n  packets read: %v", versionName(version), qos, r.name, r.topic, strings.Join(problems, "\n  "), c.types())
	}
}

func versionName(v byte) string {
	if v == 5 {
		return "5"
	}
	return "3.1.1"
}

// TestWireConnect checks CONNACKs on the wire: client ids over 128 bytes
// refused (0x85 / 2), 128 accepted; MQTT 5 CONNACK properties; a CONNECT
// with receive maximum 0 or maximum packet size 0 refused as the protocol
// error it is.
func TestWireConnect(t *testing.T) {
	srv := imtest.Start(t, imtest.Options{})
	u := srv.Register(t, "w")
	prefix := fmt.Sprintf("u%d-", u.UID)
	for _, version := range []byte{4, 5} {
		t.Run("client id/v"+versionName(version), func(t *testing.T) {
			_, ack := rawDial(t, srv.MQTTAddr, version, prefix+strings.Repeat("x", 128-len(prefix)), u.Token, nil)
			if ack == nil || ack.ReasonCode != 0 {
				t.Errorf("MQTT %s, client id of 128 bytes: CONNACK %v, want accepted", versionName(version), ack)
			}
			want := byte(2)
			if version == 5 {
				want = 0x85
			}
			_, ack = rawDial(t, srv.MQTTAddr, version, prefix+strings.Repeat("x", 129-len(prefix)), u.Token, nil)
			switch {
			case ack == nil:
				t.Errorf("MQTT %s, client id of 129 bytes: closed without CONNACK, want CONNACK 0x%02x", versionName(version), want)
			case ack.ReasonCode != want:
				t.Errorf("MQTT %s, client id of 129 bytes: CONNACK 0x%02x, want 0x%02x", versionName(version), ack.ReasonCode, want)
			}
		})
	}
	for _, version := range []byte{4, 5} {
		t.Run("refusals/v"+versionName(version), func(t *testing.T) {
			other := srv.Register(t, "o")
			want := byte(5)
			if version == 5 {
				want = 0x87
			}
			for _, r := range []struct{ name, id, token string }{
				{"bad token", prefix + "bad", u.Token[:len(u.Token)-4] + "AAAA"},
				{"another user's client id", fmt.Sprintf("u%d-phone", other.UID), u.Token},
				{"no password", prefix + "nopw", noPassword},
				{"empty password", prefix + "empty", ""},
			} {
				_, ack := rawDial(t, srv.MQTTAddr, version, r.id, r.token, nil)
				switch {
				case ack == nil:
					t.Errorf("MQTT %s, %s: closed without CONNACK, want 0x%02x", versionName(version), r.name, want)
				case ack.ReasonCode != want:
					t.Errorf("MQTT %s, %s: CONNACK 0x%02x, want 0x%02x", versionName(version), r.name, ack.ReasonCode, want)
				}
			}
		})
	}
	t.Run("properties", func(t *testing.T) {
		_, ack := rawDial(t, srv.MQTTAddr, 5, prefix+"props", u.Token, nil)
		if ack == nil || ack.ReasonCode != 0 {
			t.Fatalf("connect: %v", ack)
		}
		p := ack.Properties
		var problems []string
		if p.MaximumPacketSize != maxPacketSize {
			problems = append(problems, fmt.Sprintf("maximum packet size %d, want %d", p.MaximumPacketSize, maxPacketSize))
		}
		for _, b := range []struct {
			name string
			flag bool
			v    byte
		}{{"retain available", p.RetainAvailableFlag, p.RetainAvailable}, {"wildcard subscription available", p.WildcardSubAvailableFlag, p.WildcardSubAvailable}, {"shared subscription available", p.SharedSubAvailableFlag, p.SharedSubAvailable}} {
			if !b.flag || b.v != 0 {
				problems = append(problems, fmt.Sprintf("%s: present %v, value %d; want present, 0", b.name, b.flag, b.v))
			}
		}
		if len(problems) > 0 {
			t.Errorf("the MQTT 5 CONNACK does not announce what the server enforces:\n  %s", strings.Join(problems, "\n  "))
		}
	})
	for _, zero := range []struct {
		name string
		prop []byte
	}{{"receive maximum 0", []byte{0x21, 0, 0}}, {"maximum packet size 0", []byte{0x27, 0, 0, 0, 0}}} {
		t.Run(zero.name, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", srv.MQTTAddr, wait)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write(connect5(prefix+"zero", u.Token, zero.prop)); err != nil {
				t.Fatal(err)
			}
			c := &raw{conn: conn, r: newReader(conn), version: 5}
			pk, err := c.read(wait)
			switch {
			case err != nil:
				t.Logf("closed without CONNACK (%v): a protocol error", err)
			case pk.FixedHeader.Type != packets.Connack:
				t.Errorf("CONNECT with %s: got %s", zero.name, packets.PacketNames[pk.FixedHeader.Type])
			case pk.ReasonCode == 0:
				t.Errorf("CONNECT with %s (a protocol error) was accepted: CONNACK 0x00", zero.name)
			case pk.ReasonCode != 0x82:
				t.Errorf("CONNECT with %s: CONNACK 0x%02x, want 0x82 (protocol error)", zero.name, pk.ReasonCode)
			}
		})
	}
}

// connect5 encodes an MQTT 5 CONNECT with the given property bytes, which
// mochi's encoder would leave out when zero.
func connect5(clientID, token string, props []byte) []byte {
	str := func(b *bytes.Buffer, s string) {
		_ = binary.Write(b, binary.BigEndian, uint16(len(s)))
		b.WriteString(s)
	}
	var body bytes.Buffer
	str(&body, "MQTT")
	body.WriteByte(5)
	body.WriteByte(0xC2)                                  // username, password, clean start
	_ = binary.Write(&body, binary.BigEndian, uint16(60)) // keepalive
	body.WriteByte(byte(len(props)))
	body.Write(props)
	str(&body, clientID)
	str(&body, "raw")
	str(&body, token)
	var out bytes.Buffer
	out.WriteByte(0x10)
	n := body.Len()
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		out.WriteByte(b)
		if n == 0 {
			break
		}
	}
	out.Write(body.Bytes())
	return out.Bytes()
}

// TestWire311NeverGetsDisconnect ends connections from the server's side
// and reads every byte they got: a 3.1.1 client is closed without a
// DISCONNECT packet; an MQTT 5 client gets DISCONNECT 0x8E (session taken
// over) or 0x98 (administrative action: its token was revoked).
func TestWire311NeverGetsDisconnect(t *testing.T) {
	srv := imtest.Start(t, imtest.Options{})
	for _, version := range []byte{4, 5} {
		t.Run("takeover/v"+versionName(version), func(t *testing.T) {
			u := srv.Register(t, "t")
			id := fmt.Sprintf("u%d-same", u.UID)
			old, ack := rawDial(t, srv.MQTTAddr, version, id, u.Token, nil)
			if ack == nil || ack.ReasonCode != 0 {
				t.Fatalf("connect: %v", ack)
			}
			if _, ack := rawDial(t, srv.MQTTAddr, version, id, u.Token, nil); ack == nil || ack.ReasonCode != 0 {
				t.Fatalf("second connect: %v", ack)
			}
			checkWireEnd(t, old, version, 0x8E)
		})
		t.Run("logout/v"+versionName(version), func(t *testing.T) {
			u := srv.Register(t, "l")
			c, ack := rawDial(t, srv.MQTTAddr, version, fmt.Sprintf("u%d-out", u.UID), u.Token, nil)
			if ack == nil || ack.ReasonCode != 0 {
				t.Fatalf("connect: %v", ack)
			}
			srv.MustDo(t, "POST", "/api/v1/auth/logout", u.Token, nil, http.StatusNoContent, nil)
			checkWireEnd(t, c, version, 0x98)
		})
	}
}

func checkWireEnd(t *testing.T, c *raw, version byte, want byte) {
	t.Helper()
	if !c.closedWithin(wait) {
		t.Fatalf("MQTT %s: the connection is still open after %v; packets read: %v", versionName(version), wait, c.types())
	}
	switch {
	case version == 4 && c.sawDisconnect():
		t.Errorf("MQTT 3.1.1: a DISCONNECT packet was sent (packets read: %v); 3.1.1 has no server DISCONNECT, the socket must just be closed", c.types())
	case version == 5 && !c.sawDisconnect():
		t.Errorf("MQTT 5: closed without DISCONNECT 0x%02x (packets read: %v)", want, c.types())
	case version == 5:
		for _, pk := range c.seen {
			if pk.FixedHeader.Type == packets.Disconnect && pk.ReasonCode != want {
				t.Errorf("MQTT 5: DISCONNECT 0x%02x, want 0x%02x", pk.ReasonCode, want)
			}
		}
	}
}

// TestWireSessionCap fills a user's allowance of connections
// (--max-sessions, 2 here) and checks the refusal of one more: CONNACK 3
// (server unavailable) on 3.1.1, never a code above 5; 0x97 (quota
// exceeded) on MQTT 5.
func TestWireSessionCap(t *testing.T) {
	srv := imtest.Start(t, imtest.Options{Config: func(c *app.Config) { c.MaxSessions = 2 }})
	for _, version := range []byte{4, 5} {
		t.Run("v"+versionName(version), func(t *testing.T) {
			u := srv.Register(t, "cap")
			for i := range 2 {
				if _, ack := rawDial(t, srv.MQTTAddr, version, fmt.Sprintf("u%d-dev%d", u.UID, i), u.Token, nil); ack == nil || ack.ReasonCode != 0 {
					t.Fatalf("connection %d: %v", i+1, ack)
				}
			}
			want := byte(3)
			if version == 5 {
				want = 0x97
			}
			c, ack := rawDial(t, srv.MQTTAddr, version, fmt.Sprintf("u%d-dev2", u.UID), u.Token, nil)
			switch {
			case ack == nil:
				t.Errorf("MQTT %s, one connection too many: closed without CONNACK (packets: %v), want 0x%02x", versionName(version), c.types(), want)
			case ack.ReasonCode != want:
				t.Errorf("MQTT %s, one connection too many: CONNACK 0x%02x, want 0x%02x", versionName(version), ack.ReasonCode, want)
			}
		})
	}
}
