package broker

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

func quietLogger(level slog.Level) (*slog.Logger, *bytes.Buffer, *quietState) {
	var buf bytes.Buffer
	h := QuietHandler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level})).(*quietHandler)
	return slog.New(h), &buf, h.st
}

func TestQuietHandlerHidesPackets(t *testing.T) {
	log, buf, _ := quietLogger(slog.LevelDebug)
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, TopicName: "im/u/7", PacketID: 3,
		Payload: []byte("secret message"), Connect: packets.ConnectParams{Password: []byte("a-token")}}
	log.With("component", "mqtt").Error("publish packet error", "error", "not authorized", "packet", pk)
	log.Warn("error processing packet", "pk", &pk, "raw", []byte("secret message"))
	log.Info("something", slog.Group("g", "packet", pk))
	out := buf.String()
	for _, secret := range []string{"secret", "a-token", "115 101 99"} {
		if strings.Contains(out, secret) {
			t.Fatalf("%q is in the log:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, `topic=\"im/u/7\" payload=(14 bytes)`) || !strings.Contains(out, "raw=\"(14 bytes)\"") {
		t.Fatalf("no summary of the packet:\n%s", out)
	}
	// The client's refusals are demoted to debug.
	if strings.Contains(out, "level=ERROR") || strings.Contains(out, "level=WARN") {
		t.Fatalf("a client's refused packet logged above debug:\n%s", out)
	}
}

func TestQuietHandlerDemotedAreDroppedAtInfo(t *testing.T) {
	log, buf, _ := quietLogger(slog.LevelInfo)
	log.Error("publish packet error", "error", "x")
	log.Error("the database is gone")
	if out := buf.String(); strings.Contains(out, "publish packet error") || !strings.Contains(out, "the database is gone") {
		t.Fatalf("log:\n%s", out)
	}
}

func TestQuietHandlerRateLimitsRepeats(t *testing.T) {
	log, buf, st := quietLogger(slog.LevelDebug)
	now := time.Unix(1_700_000_000, 0)
	st.now = func() time.Time { return now }
	for range 100 {
		log.Warn("disconnecting a client that does not keep up", "client", "x")
		log.Debug("debug records are not limited")
	}
	log.Warn("another message")
	if n := strings.Count(buf.String(), "does not keep up"); n != quietBurst {
		t.Fatalf("%d repeats written, want %d", n, quietBurst)
	}
	if n := strings.Count(buf.String(), "debug records"); n != 100 {
		t.Fatalf("%d debug records, want 100", n)
	}
	if !strings.Contains(buf.String(), "another message") {
		t.Fatal("another message was dropped")
	}
	now = now.Add(quietWindow)
	buf.Reset()
	log.Warn("disconnecting a client that does not keep up", "client", "x")
	if !strings.Contains(buf.String(), "suppressed_similar=95") {
		t.Fatalf("no count of the dropped records: %s", buf.String())
	}
}
