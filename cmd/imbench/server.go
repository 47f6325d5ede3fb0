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
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
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
	// stats returns the server's Go runtime figures (nil: unknown, e.g.
	// mosquitto or an external server); with gc it collects first.
	stats func(gc bool) (*runtimeStats, error)
}

// runtimeStats is what a Go server says about its memory: the runtime's
// own view, to split the RSS into stacks and heap.
type runtimeStats struct {
	Goroutines   int    `json:"goroutines"`
	StackInuse   uint64 `json:"stack_inuse"`
	HeapInuse    uint64 `json:"heap_inuse"`
	HeapAlloc    uint64 `json:"heap_alloc"`
	HeapIdle     uint64 `json:"heap_idle"`
	HeapReleased uint64 `json:"heap_released"`
	NextGC       uint64 `json:"next_gc"`
	NumGC        uint32 `json:"num_gc"`
	Sys          uint64 `json:"sys"`
}

// readRuntimeStats reads this process's runtime figures, after a full
// collection if gc is set.
func readRuntimeStats(gc bool) *runtimeStats {
	if gc {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return &runtimeStats{
		Goroutines: runtime.NumGoroutine(), StackInuse: m.StackInuse, HeapInuse: m.HeapInuse, HeapAlloc: m.HeapAlloc,
		HeapIdle: m.HeapIdle, HeapReleased: m.HeapReleased, NextGC: m.NextGC, NumGC: m.NumGC, Sys: m.Sys,
	}
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
func startServer(ctx context.Context, kind, mode, db string, profile childOptions, log *slog.Logger) (*target, error) {
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
		t, err = startInProc(ctx, kind, db, profile.Sizes, log)
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

// childOptions asks a child server for CPU and heap profiles and a live
// pprof endpoint, sets variables in its environment (GOGC, GOMEMLIMIT,
// …), and sizes its broker's per-client buffers.
type childOptions struct {
	CPU, Mem, Addr string
	Env            []string
	Sizes          brokerSizes
}

// brokerSizes are the per-client sizes of a broker; 0 takes the server's
// defaults (imserver: its broker's; the bare mochi baseline: 1,024
// pending writes and 2 KiB read buffers, imserver's sizes before they
// were tuned for idle connections).
type brokerSizes struct {
	PendingWrites int // outbound queue, in packets
	ReadBuffer    int // socket read buffer, in bytes
}

func startChild(ctx context.Context, kind, db string, p childOptions) (*target, error) {
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
	if p.Sizes.PendingWrites > 0 {
		args = append(args, "--pending-writes", strconv.Itoa(p.Sizes.PendingWrites))
	}
	if p.Sizes.ReadBuffer > 0 {
		args = append(args, "--read-buffer", strconv.Itoa(p.Sizes.ReadBuffer))
	}
	cmd := exec.Command(exe, args...)
	if len(p.Env) > 0 {
		cmd.Env = append(os.Environ(), p.Env...)
	}
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
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var statsMu sync.Mutex
	stats := func(gc bool) (*runtimeStats, error) {
		statsMu.Lock()
		defer statsMu.Unlock()
		cmd := "stats\n"
		if gc {
			cmd = "gc\n"
		}
		if _, err := io.WriteString(stdin, cmd); err != nil {
			return nil, err
		}
		select {
		case l, ok := <-lines:
			if !ok {
				return nil, errors.New("the server has exited")
			}
			var st runtimeStats
			if err := json.Unmarshal([]byte(l), &st); err != nil {
				return nil, fmt.Errorf("the server said %q: %w", l, err)
			}
			return &st, nil
		case <-time.After(30 * time.Second):
			return nil, errors.New("the server did not report its memory within 30s")
		}
	}
	stop := func() error {
		statsMu.Lock()
		defer statsMu.Unlock()
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
	return &target{HTTP: r.HTTP, MQTT: r.MQTT, PID: cmd.Process.Pid, AdminUser: r.AdminUser, AdminPassword: r.AdminPassword, stop: stop, stats: stats}, nil
}

func startInProc(ctx context.Context, kind, db string, sizes brokerSizes, log *slog.Logger) (*target, error) {
	r, stop, err := serveKind(ctx, kind, db, sizes, log)
	if err != nil {
		return nil, err
	}
	stats := func(gc bool) (*runtimeStats, error) { return readRuntimeStats(gc), nil }
	return &target{HTTP: r.HTTP, MQTT: r.MQTT, PID: os.Getpid(), SameProcess: true, AdminUser: r.AdminUser, AdminPassword: r.AdminPassword, stop: stop, stats: stats}, nil
}

// serveKind starts a server of the kind in this process on 127.0.0.1
// ports.
func serveKind(ctx context.Context, kind, db string, sizes brokerSizes, log *slog.Logger) (ready, func() error, error) {
	switch kind {
	case kindIM:
		return serveIM(ctx, db, sizes, log)
	case kindMochi:
		return serveMochi(sizes)
	}
	return ready{}, nil, fmt.Errorf("unknown server kind %q", kind)
}

// serveIM runs the real server (package app) with the per-user publish
// limit and the abuse limits off (one client address opens everything)
// and a cheap password hash (creating bench users is not what is
// measured).
func serveIM(ctx context.Context, db string, sizes brokerSizes, log *slog.Logger) (ready, func() error, error) {
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
		Passwords: imauth.Argon2{Memory: 1024, Time: 1, Threads: 1}, PasswordChecksPerIP: 1024, Log: log,
		MQTTPendingWrites: int32(sizes.PendingWrites), MQTTReadBuffer: sizes.ReadBuffer,
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
// allow-all authentication, no storage. Its per-client sizes are
// imserver's before they were tuned for idle connections (1,024 pending
// writes, 2 KiB read buffer) unless sizes says otherwise: pass imserver's
// to see what the hooks and storage alone cost. The allow-all hook is
// fine here and only here.
func serveMochi(sizes brokerSizes) (ready, func() error, error) {
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumClientWritesPending = 1024
	if sizes.PendingWrites > 0 {
		caps.MaximumClientWritesPending = int32(sizes.PendingWrites)
	}
	caps.MaximumInflight = 1024
	caps.ReceiveMaximum = 256
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil)) // mochi logs every client that goes away
	s := mqtt.New(&mqtt.Options{Capabilities: caps, SysTopicResendInterval: 3600, Logger: quiet, ClientNetReadBufferSize: sizes.ReadBuffer})
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
// signalled. Each line "stats" (or "gc": collect first) on its stdin is
// answered with one JSON line of runtimeStats.
func serveMain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("imbench serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kind := fs.String("kind", kindIM, "imserver or mochi")
	db := fs.String("db", "", "database URL (imserver)")
	cpu := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	mem := fs.String("memprofile", "", "write a heap profile at the end to this file")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this loopback address, e.g. 127.0.0.1:6060")
	var sizes brokerSizes
	fs.IntVar(&sizes.PendingWrites, "pending-writes", 0, "each client's outbound queue (0: the server's default)")
	fs.IntVar(&sizes.ReadBuffer, "read-buffer", 0, "each client's socket read buffer in bytes (0: the server's default)")
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
		mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
		ps := &http.Server{Addr: *pprofAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = ps.ListenAndServe() }()
		defer ps.Close()
	}
	r, stop, err := serveKind(ctx, *kind, *db, sizes, log)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(r)
	fmt.Fprintln(stdout, string(b))
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if cmd := sc.Text(); cmd == "stats" || cmd == "gc" {
				b, _ := json.Marshal(readRuntimeStats(cmd == "gc"))
				fmt.Fprintln(stdout, string(b))
			}
		}
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
