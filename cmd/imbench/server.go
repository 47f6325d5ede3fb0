package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/imserver/imserver/app"
	imauth "github.com/imserver/imserver/auth"
)

// Kinds of target.
const (
	kindIM        = "imserver"
	kindMochi     = "mochi"
	kindMosquitto = "mosquitto"
)

// target is a server under test: ours, or a bare broker for the baseline.
type target struct {
	Kind   string `json:"kind"`   // imserver, mochi, mosquitto
	Engine string `json:"engine"` // imserver: sqlite, postgres or external
	HTTP   string `json:"http,omitempty"`
	MQTT   string `json:"mqtt"`          // host:port
	PID    int    `json:"pid,omitempty"` // 0: unknown (no RSS)
	// SameProcess is true when the server runs inside imbench: its RSS
	// then includes the load generator's.
	SameProcess   bool   `json:"same_process,omitempty"`
	AdminUser     string `json:"-"`
	AdminPassword string `json:"-"`
	stop          func() error
}

func (t *target) name() string {
	if t.Kind == kindIM {
		return t.Kind + "/" + t.Engine
	}
	return t.Kind
}

// ready is what a child server prints on its first stdout line.
type ready struct {
	HTTP          string `json:"http,omitempty"`
	MQTT          string `json:"mqtt"`
	PID           int    `json:"pid"`
	AdminUser     string `json:"admin_user,omitempty"`
	AdminPassword string `json:"admin_password,omitempty"`
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func engineOf(db string) string {
	if u, err := url.Parse(db); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		return "postgres"
	}
	return "sqlite"
}

// startServer starts the kind of server in a child process of imbench
// (child) or in this process (inproc). db is "" for a fresh SQLite file in
// a temporary directory, or a postgres:// URL.
func startServer(ctx context.Context, kind, mode, db string, profile profiles, log *slog.Logger) (*target, error) {
	engine := ""
	if kind == kindIM {
		engine = engineOf(db)
	}
	var tmp string
	if kind == kindIM && db == "" {
		var err error
		if tmp, err = os.MkdirTemp("", "imbench-"); err != nil {
			return nil, err
		}
		db = "sqlite:" + filepath.Join(tmp, "im.db")
	}
	cleanup := func() {
		if tmp != "" {
			_ = os.RemoveAll(tmp)
		}
	}
	var (
		t   *target
		err error
	)
	switch {
	case kind == kindMosquitto:
		t, err = startMosquitto(ctx, log)
	case mode == "inproc":
		t, err = startInProc(ctx, kind, db, log)
	default:
		t, err = startChild(ctx, kind, db, profile)
	}
	if err != nil {
		cleanup()
		return nil, err
	}
	t.Kind, t.Engine = kind, engine
	stop := t.stop
	t.stop = func() error {
		defer cleanup()
		return stop()
	}
	return t, nil
}

// profiles asks a child server for CPU and heap profiles, and for a live
// pprof endpoint.
type profiles struct{ CPU, Mem, Addr string }

func startChild(ctx context.Context, kind, db string, p profiles) (*target, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find imbench's own binary: %w", err)
	}
	args := []string{"serve", "--kind", kind, "--db", db}
	if p.CPU != "" {
		args = append(args, "--cpuprofile", p.CPU)
	}
	if p.Mem != "" {
		args = append(args, "--memprofile", p.Mem)
	}
	if p.Addr != "" {
		args = append(args, "--pprof", p.Addr)
	}
	cmd := exec.Command(exe, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s server: %w", kind, err)
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	stop := func() error {
		stdin.Close() // the child stops when its stdin closes
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			return err
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			return errors.New("the server did not stop within 60s: killed")
		}
	}
	var line string
	select {
	case l, ok := <-lines:
		if !ok {
			_ = stop()
			return nil, fmt.Errorf("the %s server exited before it was ready", kind)
		}
		line = l
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("the %s server was not ready within 60s", kind)
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		return nil, ctx.Err()
	}
	var r ready
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		_ = stop()
		return nil, fmt.Errorf("the %s server said %q: %w", kind, line, err)
	}
	return &target{HTTP: r.HTTP, MQTT: r.MQTT, PID: cmd.Process.Pid, AdminUser: r.AdminUser, AdminPassword: r.AdminPassword, stop: stop}, nil
}

func startInProc(ctx context.Context, kind, db string, log *slog.Logger) (*target, error) {
	r, stop, err := serveKind(ctx, kind, db, log)
	if err != nil {
		return nil, err
	}
	return &target{HTTP: r.HTTP, MQTT: r.MQTT, PID: os.Getpid(), SameProcess: true, AdminUser: r.AdminUser, AdminPassword: r.AdminPassword, stop: stop}, nil
}

// serveKind starts a server of the kind in this process on 127.0.0.1
// ports.
func serveKind(ctx context.Context, kind, db string, log *slog.Logger) (ready, func() error, error) {
	switch kind {
	case kindIM:
		return serveIM(ctx, db, log)
	case kindMochi:
		return serveMochi()
	}
	return ready{}, nil, fmt.Errorf("unknown server kind %q", kind)
}

// serveIM runs the real server (package app) with the per-user publish
// limit off and a cheap password hash (creating bench users is not what
// is measured).
func serveIM(ctx context.Context, db string, log *slog.Logger) (ready, func() error, error) {
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return ready{}, nil, err
	}
	mqttLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		httpLn.Close()
		return ready{}, nil, err
	}
	pw := randomHex(12)
	a, err := app.New(ctx, app.Config{
		DatabaseURL: db, JWTSecret: randomHex(32), AdminUsername: "admin", AdminPassword: pw,
		TokenTTL: 24 * time.Hour, PublishRate: 0, HTTPListener: httpLn, MQTTListener: mqttLn,
		Passwords: imauth.Argon2{Memory: 1024, Time: 1, Threads: 1}, Log: log,
	})
	if err != nil {
		httpLn.Close()
		mqttLn.Close()
		return ready{}, nil, fmt.Errorf("start imserver: %w", err)
	}
	if err := a.Start(); err != nil {
		return ready{}, nil, fmt.Errorf("start imserver: %w", err)
	}
	stop := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := a.Shutdown(sctx)
		httpLn.Close()
		return err
	}
	return ready{HTTP: "http://" + a.HTTPAddr(), MQTT: a.MQTTAddr(), PID: os.Getpid(), AdminUser: "admin", AdminPassword: pw}, stop, nil
}

// serveMochi runs a bare mochi broker, the baseline: no hooks but
// allow-all authentication, no storage, and the same buffer sizes as
// imserver's broker, so that the ratio measures what our hooks and
// storage cost. The allow-all hook is fine here and only here.
func serveMochi() (ready, func() error, error) {
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumClientWritesPending = 1024
	caps.MaximumInflight = 1024
	caps.ReceiveMaximum = 256
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil)) // mochi logs every client that goes away
	s := mqtt.New(&mqtt.Options{Capabilities: caps, SysTopicResendInterval: 3600, Logger: quiet})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		return ready{}, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return ready{}, nil, err
	}
	if err := s.AddListener(listeners.NewNet("tcp", ln)); err != nil {
		ln.Close()
		return ready{}, nil, err
	}
	if err := s.Serve(); err != nil {
		return ready{}, nil, err
	}
	return ready{MQTT: ln.Addr().String(), PID: os.Getpid()}, s.Close, nil
}

// serveMain is `imbench serve`: the child process side of startChild. It
// prints one JSON line (ready) and serves until its stdin closes or it is
// signalled.
func serveMain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("imbench serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kind := fs.String("kind", kindIM, "imserver or mochi")
	db := fs.String("db", "", "database URL (imserver)")
	cpu := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	mem := fs.String("memprofile", "", "write a heap profile at the end to this file")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this loopback address, e.g. 127.0.0.1:6060")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if *cpu != "" {
		f, err := os.Create(*cpu)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	if *pprofAddr != "" {
		if !isLoopback(*pprofAddr) {
			return fmt.Errorf("--pprof %s: only a loopback address is allowed", *pprofAddr)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", httppprof.Index)
		mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
		ps := &http.Server{Addr: *pprofAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = ps.ListenAndServe() }()
		defer ps.Close()
	}
	r, stop, err := serveKind(ctx, *kind, *db, log)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(r)
	fmt.Fprintln(stdout, string(b))
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	<-ctx.Done()
	if *mem != "" {
		if f, err := os.Create(*mem); err == nil {
			_ = pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	return stop()
}
