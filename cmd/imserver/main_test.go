package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// env is a lookup of the environment m.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestFlagsWinOverEnvironment(t *testing.T) {
	cfg, _, err := parseConfig([]string{"--http", "127.0.0.1:1", "--db", "sqlite:/tmp/x.db"}, env(map[string]string{
		"IM_HTTP_ADDR": ":9999", "IM_MQTT_ADDR": ":7777", "IM_DATABASE_URL": "postgres://x", "IM_JWT_SECRET": "s3cr3t",
		"IM_ADMIN_USERNAME": "root", "IM_ADMIN_PASSWORD": "pw", "IM_PUBLISH_RATE": "5", "IM_MQTT_QUEUE": "1024",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != "127.0.0.1:1" || cfg.DatabaseURL != "sqlite:/tmp/x.db" {
		t.Fatalf("flags did not win: %+v", cfg)
	}
	if cfg.MQTTAddr != ":7777" || cfg.JWTSecret != "s3cr3t" || cfg.AdminUsername != "root" || cfg.AdminPassword != "pw" || cfg.PublishRate != 5 || cfg.MQTTPendingWrites != 1024 {
		t.Fatalf("environment not used: %+v", cfg)
	}
}

func TestDefaults(t *testing.T) {
	cfg, _, err := parseConfig(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != ":8080" || cfg.MQTTAddr != ":1883" || cfg.DatabaseURL != "sqlite:data/im.db" || cfg.AdminUsername != "admin" || cfg.TokenTTL != 7*24*time.Hour {
		t.Fatalf("defaults: %+v", cfg)
	}
	// An empty --mqtt disables TCP, and so does an empty IM_MQTT_ADDR.
	cfg, _, _ = parseConfig([]string{"--mqtt", ""}, env(nil), io.Discard)
	if cfg.MQTTAddr != "" {
		t.Fatalf("--mqtt '' = %q", cfg.MQTTAddr)
	}
	cfg, _, _ = parseConfig(nil, env(map[string]string{"IM_MQTT_ADDR": ""}), io.Discard)
	if cfg.MQTTAddr != "" {
		t.Fatalf("IM_MQTT_ADDR='' gives %q, want TCP disabled", cfg.MQTTAddr)
	}
	// Other empty variables take the default.
	cfg, _, _ = parseConfig(nil, env(map[string]string{"IM_HTTP_ADDR": "", "IM_CONN_RATE": ""}), io.Discard)
	if cfg.HTTPAddr != ":8080" || cfg.ConnRate != 500 || cfg.PendingPerIP != 32 || cfg.RegisterRate != 60 || cfg.MQTTPendingWrites != 256 {
		t.Fatalf("defaults of the limits: %+v", cfg)
	}
}

func TestBadConfiguration(t *testing.T) {
	for _, args := range [][]string{
		{"--token-ttl", "soon"}, {"--publish-rate", "-1"}, {"--log-level", "loud"}, {"extra"}, {"--nope"},
		{"--conn-rate", "-1"}, {"--pending-per-ip", "x"}, {"--register-rate", "-5"}, {"--trusted-proxies", "10.0.0.0/99"},
		{"--public-url", "chat.example.com"}, {"--public-url", "ftp://x"}, {"--mqtt-queue", "8"}, {"--mqtt-queue", "3000000000"},
	} {
		if _, _, err := parseConfig(args, env(nil), io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// The binary's run: starts on SQLite with nothing configured, answers
// /healthz, keeps its generated secret private, and returns nil (exit 0)
// when its context ends, as on SIGINT/SIGTERM.
func TestRunAndGracefulStop(t *testing.T) {
	dir := t.TempDir()
	httpAddr, mqttAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var logs bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--http", httpAddr, "--mqtt", mqttAddr, "--db", "sqlite:" + filepath.Join(dir, "data", "im.db")}, env(nil), io.Discard, &syncWriter{w: &logs})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not become healthy: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c, err := net.Dial("tcp", mqttAddr); err != nil {
		t.Fatalf("mqtt port: %v", err)
	} else {
		c.Close()
	}
	fi, err := os.Stat(filepath.Join(dir, "data", "jwt.secret"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("jwt.secret: %v %v", fi, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no graceful stop within 30s")
	}
	if n := strings.Count(logs.String(), "generated password"); n != 1 {
		t.Fatalf("the generated admin password was logged %d times, want once:\n%s", n, logs.String())
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// String returns what was written, if the writer is a bytes.Buffer.
func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.w.(*bytes.Buffer); ok {
		return b.String()
	}
	return ""
}
