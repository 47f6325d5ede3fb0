package e2e

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imserver/imserver/internal/imtest"
)

// rawConnect opens a TCP connection and sends a 3.1.1 CONNECT built with
// mochi's packet codec, for what the Paho clients will not do (a Will, a
// client that stops reading).
func rawConnect(t *testing.T, s *imtest.Server, u imtest.User, modify func(*packets.Packet)) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", s.MQTTAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: 4,
		Connect: packets.ConnectParams{
			ProtocolName:     []byte("MQTT"),
			Clean:            true,
			Keepalive:        60,
			ClientIdentifier: fmt.Sprintf("u%d-raw-%d", u.UID, time.Now().UnixNano()),
			UsernameFlag:     true,
			Username:         []byte(u.Username),
			PasswordFlag:     true,
			Password:         []byte(u.Token),
		},
	}
	if modify != nil {
		modify(&pk)
	}
	writePacket(t, conn, pk, (*packets.Packet).ConnectEncode)
	ack := make([]byte, 4)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(ack); err != nil || ack[0] != packets.Connack<<4 || ack[3] != 0 {
		t.Fatalf("raw connect: % x %v", ack, err)
	}
	conn.SetReadDeadline(time.Time{})
	return conn
}

func writePacket(t *testing.T, conn net.Conn, pk packets.Packet, enc func(*packets.Packet, *bytes.Buffer) error) {
	t.Helper()
	var buf bytes.Buffer
	if err := enc(&pk, &buf); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
}

func rawConnectWithWill(t *testing.T, s *imtest.Server, u imtest.User, topic, payload string) net.Conn {
	return rawConnect(t, s, u, func(pk *packets.Packet) {
		pk.Connect.WillFlag = true
		pk.Connect.WillTopic = topic
		pk.Connect.WillPayload = []byte(payload)
		pk.Connect.WillQos = 1
	})
}

// rawSubscribe subscribes at QoS 0 and reads the SUBACK.
func rawSubscribe(t *testing.T, conn net.Conn, topic string) { rawSubscribeQoS(t, conn, topic, 0) }

// rawSubscribeQoS subscribes at qos and reads the SUBACK.
func rawSubscribeQoS(t *testing.T, conn net.Conn, topic string, qos byte) {
	t.Helper()
	writePacket(t, conn, packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Subscribe, Qos: 1},
		ProtocolVersion: 4,
		PacketID:        1,
		Filters:         packets.Subscriptions{{Filter: topic, Qos: qos}},
	}, (*packets.Packet).SubscribeEncode)
	ack := make([]byte, 5)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(ack); err != nil || ack[0] != packets.Suback<<4 || ack[4] >= 0x80 {
		t.Fatalf("raw subscribe: % x %v", ack, err)
	}
	conn.SetReadDeadline(time.Time{})
}
