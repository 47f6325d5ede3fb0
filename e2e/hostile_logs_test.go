package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// marker is in every refused payload; it must never reach the log, as
// text or as mochi prints a []byte (decimal numbers).
const marker = "PAYLOAD-MARKER"

func decimalBytes(s string) string {
	var parts []string
	for _, b := range []byte(s) {
		parts = append(parts, fmt.Sprint(b))
	}
	return strings.Join(parts, " ")
}

// publishRefused publishes QoS 1 over MQTT 5 to topics the user may not
// use, one at a time (each waits for its PUBACK), for d or n publishes,
// and returns how many were answered.
func publishRefused(t *testing.T, conn net.Conn, d time.Duration, n int) int {
	t.Helper()
	big := strings.Repeat("x", 70<<10) // over the 64 KiB payload limit
	deadline := time.Now().Add(d)
	acked := 0
	for i := 0; i < n && time.Now().Before(deadline); i++ {
		topic, body := "im/s/999/u/1", fmt.Sprintf("%s-%d secret text", marker, i)
		if i%10 == 9 {
			topic, body = "im/u/1", marker+big
		}
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, ProtocolVersion: 5,
			TopicName: topic, PacketID: uint16(i%60000 + 1),
			Payload: fmt.Appendf(nil, `{"cid":"c%d","type":"text","body":%q}`, i, body)}
		var buf bytes.Buffer
		if err := pk.PublishEncode(&buf); err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write(buf.Bytes()); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		for { // skip whatever else arrives (error events) until the PUBACK
			typ, err := readPacket(conn)
			if err != nil {
				t.Fatalf("after publish %d: %v", i, err)
			}
			if typ == packets.Puback {
				break
			}
		}
		acked++
	}
	return acked
}

// readPacket reads one MQTT packet and returns its type.
func readPacket(r io.Reader) (byte, error) {
	var h [1]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, err
	}
	n, mult := 0, 1
	for {
		var b [1]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, err
		}
		n += int(b[0]&0x7f) * mult
		if b[0]&0x80 == 0 {
			break
		}
		mult *= 128
	}
	_, err := io.CopyN(io.Discard, r, int64(n))
	return h[0] >> 4, err
}

// Finding 4: a client publishing refused messages over MQTT 5 as fast as
// it is answered grows the log by less than 10 KB/s at the default level,
// and no payload ever reaches the log, at any level.
func TestHostileRefusedPublishLog(t *testing.T) {
	if testing.Short() {
		t.Skip("a 10 s flood")
	}
	for _, level := range []string{"info", "debug"} {
		t.Run(level, func(t *testing.T) {
			c := startChild(t, childOptions{Env: []string{"IM_LOG_LEVEL=" + level}})
			tok, err := restLogin(clientFrom("127.0.0.1"), c.URL, "flooder", true)
			if err != nil {
				t.Fatal(err)
			}
			code, conn, err := mqttConnect(c.MQTTAddr, "127.0.0.1", tok, 5, 10*time.Second)
			if err != nil || code != 0 {
				t.Fatalf("connect: %d %v", code, err)
			}
			defer conn.Close()
			time.Sleep(200 * time.Millisecond)
			before := c.LogSize(t)
			start := time.Now()
			n := publishRefused(t, conn, 5*time.Second, 20000)
			took := time.Since(start)
			time.Sleep(200 * time.Millisecond)
			grown := c.LogSize(t) - before
			rate := float64(grown) / took.Seconds()
			t.Logf("level %s: %d refused publishes in %v grew the log by %d bytes (%.0f B/s)", level, n, took.Round(time.Millisecond), grown, rate)
			log, _ := os.ReadFile(c.LogPath)
			if bytes.Contains(log, []byte(marker)) || bytes.Contains(log, []byte(decimalBytes(marker))) {
				i := max(bytes.Index(log, []byte(marker)), bytes.Index(log, []byte(decimalBytes(marker))))
				t.Errorf("a payload is in the log: …%s…", log[max(0, i-200):min(len(log), i+100)])
			}
			if level == "info" && rate > 10_000 {
				t.Errorf("the log grows by %.0f B/s, want under 10 KB/s", rate)
			}
		})
	}
}
