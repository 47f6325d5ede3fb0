// Package e2e tests the whole server end to end: the real binary's
// assembly (package app) in-process on loopback ports, real SQLite and
// PostgreSQL, and real MQTT clients (Paho 3.1.1 over TCP and WebSocket,
// Paho 5 over TCP).
package e2e

import (
	"fmt"
	"testing"

	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// eachEngine runs fn on a fresh server per database engine.
func eachEngine(t *testing.T, fn func(t *testing.T, s *imtest.Server)) {
	eachEngineWith(t, imtest.Options{}, fn)
}

// eachEngineWith is eachEngine with servers started with o.
func eachEngineWith(t *testing.T, o imtest.Options, fn func(t *testing.T, s *imtest.Server)) {
	for _, e := range imtest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			o := o
			o.Engine = e
			fn(t, imtest.Start(t, o))
		})
	}
}

// eachTransport runs fn once per MQTT transport on the same server.
func eachTransport(t *testing.T, fn func(t *testing.T, tr imtest.Transport)) {
	for _, tr := range imtest.Transports {
		t.Run(string(tr), func(t *testing.T) { fn(t, tr) })
	}
}

func text(cid, body string) map[string]any {
	m := map[string]any{"type": "text", "body": body}
	if cid != "" {
		m["cid"] = cid
	}
	return m
}

func inbox(uid int64) string { return fmt.Sprintf("im/u/%d", uid) }

func single(a, b int64) string {
	if a > b {
		a, b = b, a
	}
	return fmt.Sprintf("u:%d:%d", a, b)
}
