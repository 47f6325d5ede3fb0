// Package imtest runs the real server in-process for end-to-end tests: SQLite
// in a temporary directory or PostgreSQL (pgtest), MQTT over TCP and
// WebSocket and the REST API on 127.0.0.1:0 ports, and real MQTT clients
// (Paho 3.1.1 and Paho 5) talking to it.
package imtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imserver/imserver/app"
	"github.com/imserver/imserver/auth"
	"github.com/imserver/imserver/internal/pgtest"
	"github.com/imserver/imserver/wire"
)

// Engine selects the database of a test server.
type Engine string

// Engines.
const (
	SQLite   Engine = "sqlite"
	Postgres Engine = "postgres"
)

// Engines lists both, for tests that run on each.
var Engines = []Engine{SQLite, Postgres}

// Server is a running in-process server.
type Server struct {
	App      *app.App
	URL      string // http://127.0.0.1:port
	MQTTAddr string // 127.0.0.1:port
	WSURL    string // ws://127.0.0.1:port/mqtt
	DBURL    string
	Engine   Engine
	Admin    User
	t        testing.TB
	seq      atomic.Int64
	stop     func()
}

// Options tweak a test server.
type Options struct {
	Engine Engine
	// PublishRate is the per-user limit; 0 (the default here) disables it.
	PublishRate  float64
	PublishBurst int
	// DBURL reuses a database (to restart a server on the same data).
	DBURL string
	// UploadMax is the upload size limit; 0 is the server's default.
	UploadMax int64
	// HTTPAddr is the REST and WebSocket address, "127.0.0.1:0" by default;
	// give a stopped server's HTTPAddr to restart it where clients expect it.
	HTTPAddr string
	Log      *slog.Logger
	// Config, when set, adjusts the server's configuration before it
	// starts (limits, a password hasher, …).
	Config func(*app.Config)
}

// AdminPassword is the admin password of every test server.
const AdminPassword = "admin-secret"

// Start runs a server for the test and stops it at cleanup.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Engine == "" {
		o.Engine = SQLite
	}
	if o.DBURL == "" {
		switch o.Engine {
		case SQLite:
			o.DBURL = "sqlite:" + filepath.Join(t.TempDir(), "im.db")
		case Postgres:
			o.DBURL = pgtest.URL(t)
		}
	}
	if o.Log == nil {
		o.Log = testLogger(t)
	}
	if o.HTTPAddr == "" {
		o.HTTPAddr = "127.0.0.1:0"
	}
	httpLn, err := net.Listen("tcp", o.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	mqttLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := app.Config{
		DatabaseURL:   o.DBURL,
		JWTSecret:     strings.Repeat("s", 32),
		AdminUsername: "admin",
		AdminPassword: AdminPassword,
		TokenTTL:      time.Hour,
		PublishRate:   o.PublishRate,
		PublishBurst:  o.PublishBurst,
		UploadDir:     filepath.Join(t.TempDir(), "uploads"),
		UploadMax:     o.UploadMax,
		HTTPListener:  httpLn,
		MQTTListener:  mqttLn,
		Passwords:     auth.Argon2{Memory: 1024, Time: 1, Threads: 1}, // real argon2id, test-sized
		Log:           o.Log,
	}
	if o.Config != nil {
		o.Config(&cfg)
	}
	a, err := app.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	if err := a.Start(); err != nil {
		t.Fatalf("start server: %v", err)
	}
	s := &Server{App: a, URL: "http://" + a.HTTPAddr(), MQTTAddr: a.MQTTAddr(), WSURL: "ws://" + a.HTTPAddr() + "/mqtt", DBURL: o.DBURL, Engine: o.Engine, t: t}
	s.stop = sync.OnceFunc(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Shutdown(ctx)
		httpLn.Close()
	})
	t.Cleanup(s.stop)
	s.Admin = s.Login(t, "admin", AdminPassword)
	return s
}

// Close stops the server gracefully, before the test's cleanup does; its
// HTTP address is free again when Close returns.
func (s *Server) Close() { s.stop() }

// testLogger logs warnings and errors through t (and everything with
// IM_TEST_LOG=debug).
func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("IM_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: level}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // the test may have ended
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// User is a registered, logged-in user.
type User struct {
	UID      int64
	Username string
	Token    string
	Role     string
}

// Register creates a user with a unique name based on prefix and logs in.
func (s *Server) Register(t testing.TB, prefix string) User {
	t.Helper()
	name := fmt.Sprintf("%s_%03d", prefix, s.seq.Add(1))
	var acc wire.Account
	s.MustDo(t, "POST", "/api/v1/auth/register", "", wire.Credentials{Username: name, Password: "password1"}, http.StatusCreated, &acc)
	return s.Login(t, name, "password1")
}

// Login logs a user in.
func (s *Server) Login(t testing.TB, name, password string) User {
	t.Helper()
	var tok wire.Token
	s.MustDo(t, "POST", "/api/v1/auth/login", "", wire.Credentials{Username: name, Password: password}, http.StatusOK, &tok)
	return User{UID: tok.UID, Username: tok.Username, Token: tok.AccessToken, Role: tok.Role}
}

// Do sends a JSON request (body may be nil, a string sent as is, or a value
// encoded as JSON) and returns the status and the body.
func (s *Server) Do(t testing.TB, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// MustDo is Do that fails the test unless the status is want, and decodes
// the answer into out when out is not nil.
func (s *Server) MustDo(t testing.TB, method, path, token string, body any, want int, out any) {
	t.Helper()
	status, b := s.Do(t, method, path, token, body)
	if status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// ErrorCode returns the code of an error envelope, or "" if b is not one.
func ErrorCode(b []byte) string {
	var e wire.ErrorResponse
	_ = json.Unmarshal(b, &e)
	return e.Error.Code
}

// WaitFor polls cond until it returns nil or the timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
