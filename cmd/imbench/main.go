// Command imbench is the load tool of imserver. It creates its users over
// REST, drives the server over MQTT, shows a live progress line, and ends
// with a table of results (and JSON with --json):
//
//   - W1 single chat: N users sending QoS 1 text to random peers: accepted
//     and delivered msgs/s, p50/p90/p99 publish-to-receive latency;
//   - W2 fan-out: one room of M members and one sender: deliveries/s, p99;
//   - W3 connections: K idle authenticated connections: connect rate, and
//     the server's RSS per connection (from /proc);
//   - W4 customer service: C customers writing to a shop of A agents:
//     routed msgs/s and the spread of open sessions per agent; then the
//     agents replying to their customers, one reply in flight each
//     (phase "replies"): replies delivered per second.
//
// With --baseline mochi (the default) each workload also runs, with the
// same client counts, payload and QoS, against a bare mochi broker (no
// hooks, no storage), and every figure is shown next to that ceiling as a
// ratio. --baseline mosquitto does the same with mosquitto from PATH.
//
// By default it starts the real server itself, built from package app, in a
// child process of imbench (SQLite in a temporary directory, or --db
// postgres://…), so that `go run ./cmd/imbench` needs no setup and the
// server's RSS and CPU are its own. Every run is bounded in messages and
// time, and talks to loopback addresses only unless pointed elsewhere.
//
//	go run ./cmd/imbench                                   # all workloads, small sizes, about a minute
//	go run ./cmd/imbench -workloads w1 -sweep 0.25,0.5,0.75 -json w1.json
//	go run ./cmd/imbench -workloads w3 -conns 50000        # 50,000 idle connections (needs RLIMIT_NOFILE > 50,000)
//	go run ./cmd/imbench -server http://127.0.0.1:8080 -mqtt-addr 127.0.0.1:1883 -pid $(pidof imserver)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		err = serveMain(os.Args[2:], os.Stdout, os.Stderr)
	} else {
		err = run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "imbench:", err)
		os.Exit(1)
	}
}

// options are imbench's flags.
type options struct {
	server, mqttAddr, db, baseline, workloads, jsonOut, sweep string
	adminUser, adminPassword                                  string
	pid                                                       int
	timeout                                                   time.Duration
	cpuProfile, memProfile, pprofAddr, baselineCPUProfile     string
	serverEnv, baselineEnv                                    []string
	serverSizes, baselineSizes                                brokerSizes
	s                                                         settings
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("imbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.server, "server", "child", "child (the real server in a child process of imbench), inproc (in this process: RSS includes the load generator), or the URL of a running server, e.g. http://127.0.0.1:8080")
	fs.StringVar(&o.mqttAddr, "mqtt-addr", "", "MQTT over TCP address of a running server (default: the server URL's host, port 1883)")
	fs.StringVar(&o.db, "db", "", "database of the server imbench starts: empty for SQLite in a temporary directory, or postgres://…")
	fs.IntVar(&o.pid, "pid", 0, "pid of a running server on this machine, to read its RSS and CPU from /proc")
	fs.StringVar(&o.adminUser, "admin-user", "admin", "admin username of a running server (W4 creates a shop)")
	fs.StringVar(&o.adminPassword, "admin-password", getenv("IM_ADMIN_PASSWORD"), "admin password of a running server [IM_ADMIN_PASSWORD]")
	fs.StringVar(&o.baseline, "baseline", "mochi", "bare broker to compare with: mochi, mosquitto (from PATH) or none")
	fs.StringVar(&o.workloads, "workloads", "w1,w2,w3,w4", "comma-separated workloads to run")
	fs.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Minute, "give up after this long")
	fs.DurationVar(&o.s.Duration, "duration", 5*time.Second, "measured time of each phase")
	fs.DurationVar(&o.s.Warmup, "warmup", time.Second, "unmeasured time before each phase")
	fs.IntVar(&o.s.Payload, "payload", 128, "bytes of each publish")
	fs.IntVar(&o.s.Inflight, "inflight", 64, "W1: unacknowledged publishes per user in the pipelined phase, after the closed-loop ones (1: no pipelined phase)")
	subQoS := fs.Uint("sub-qos", 1, "QoS of the subscriptions: both imserver and the bare broker deliver at it (1: a PUBACK per delivery)")
	fs.Int64Var(&o.s.MaxMessages, "max-messages", 5_000_000, "at most this many publishes per phase")
	fs.IntVar(&o.s.Users, "users", 20, "W1: users, each with one connection")
	fs.Float64Var(&o.s.Rate, "rate", 0, "W1: offered msgs/s over all users; 0 = as fast as the acks allow")
	fs.StringVar(&o.sweep, "sweep", "", "W1: after the max phase, phases at these fractions of each target's max, e.g. 0.25,0.5,0.75")
	fs.IntVar(&o.s.Members, "members", 50, "W2: room members")
	fs.IntVar(&o.s.Conns, "conns", 1000, "W3: idle connections")
	fs.IntVar(&o.s.ConnUsers, "conn-users", 50, "W3: users the connections are spread over")
	fs.IntVar(&o.s.ConnParallel, "conn-parallel", 64, "W3: connections opened at once")
	fs.DurationVar(&o.s.Hold, "hold", 2*time.Second, "W3: how long the connections stay idle before RSS is read (inspect the server meanwhile with -server-pprof)")
	fs.BoolVar(&o.s.Spread, "spread", true, "W3: open connections from 127.0.0.2, 127.0.0.3, … (20,000 each) to a loopback server, past one address's ephemeral ports")
	fs.IntVar(&o.s.Customers, "customers", 20, "W4: customers")
	fs.IntVar(&o.s.Agents, "agents", 4, "W4: agents of the shop")
	fs.StringVar(&o.cpuProfile, "server-cpuprofile", "", "write the child server's CPU profile of the whole run to this file")
	fs.StringVar(&o.memProfile, "server-memprofile", "", "write the child server's heap profile at its end to this file")
	fs.StringVar(&o.pprofAddr, "server-pprof", "", "serve the child server's net/http/pprof on this loopback address")
	fs.StringVar(&o.baselineCPUProfile, "baseline-cpuprofile", "", "write the bare mochi baseline's CPU profile of the whole run to this file")
	fs.Func("server-env", "set `NAME=VALUE` in the child server's environment, e.g. GOGC=50 or GOMEMLIMIT=900MiB (repeatable)", envFlag(&o.serverEnv))
	fs.Func("baseline-env", "set `NAME=VALUE` in the child baseline broker's environment (repeatable)", envFlag(&o.baselineEnv))
	fs.IntVar(&o.serverSizes.PendingWrites, "server-pending-writes", 0, "each client's outbound queue in the server imbench starts (0: its default)")
	fs.IntVar(&o.serverSizes.ReadBuffer, "server-read-buffer", 0, "each client's socket read buffer in bytes in the server imbench starts (0: its default)")
	fs.IntVar(&o.baselineSizes.PendingWrites, "baseline-pending-writes", 0, "each client's outbound queue in the bare mochi baseline (0: 1024)")
	fs.IntVar(&o.baselineSizes.ReadBuffer, "baseline-read-buffer", 0, "each client's socket read buffer in bytes in the bare mochi baseline (0: 2048)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: imbench [flags]\n\nLoad tool of imserver: W1 single chat, W2 fan-out, W3 connections, W4 customer service,\neach next to a bare-broker baseline. Flags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *subQoS > 2 {
		return o, fmt.Errorf("--sub-qos %d: want 0, 1 or 2", *subQoS)
	}
	o.s.SubQoS = byte(*subQoS)
	for _, f := range strings.Split(o.sweep, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 || v > 1 {
			return o, fmt.Errorf("--sweep %q: want fractions in (0, 1]", f)
		}
		o.s.Sweep = append(o.s.Sweep, v)
	}
	switch o.baseline {
	case "none":
		o.baseline = ""
	case kindMochi, kindMosquitto:
	default:
		return o, fmt.Errorf("--baseline %q: want mochi, mosquitto or none", o.baseline)
	}
	for _, w := range strings.Split(o.workloads, ",") {
		if !slices.Contains([]string{"w1", "w2", "w3", "w4"}, strings.ToLower(strings.TrimSpace(w))) {
			return o, fmt.Errorf("--workloads: unknown %q (w1, w2, w3, w4)", w)
		}
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	stderr = &lockedWriter{w: stderr} // the log, the progress line and servers write at once
	o, err := parseFlags(args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	want := uint64(max(o.s.Conns, o.s.Users, o.s.Members, o.s.Customers)*2 + 1024)
	got, err := raiseFileLimit(want)
	if err != nil {
		return err
	}
	if strings.Contains(strings.ToLower(o.workloads), "w3") && uint64(o.s.Conns)+512 > got {
		return fmt.Errorf("-conns %d needs as many open files in imbench and in the server, but RLIMIT_NOFILE is %d and its hard limit cannot be raised here (raise it with ulimit -Hn as root, or lower -conns)", o.s.Conns, got)
	}
	rep := &report{Started: time.Now().UTC(), Machine: machineInfo(), Args: args}
	prog := newProgress(stderr)

	kinds := []string{kindIM}
	if o.baseline != "" {
		kinds = append(kinds, o.baseline)
	}
	for _, kind := range kinds {
		t, err := o.target(ctx, kind, log)
		if err != nil {
			return err
		}
		rep.Targets = append(rep.Targets, t)
		fmt.Fprintf(stderr, "imbench: %s at %s (pid %d)\n", t.name(), t.MQTT, t.PID)
		results, err := runWorkloads(ctx, o, t, prog, log, stderr)
		rep.Results = append(rep.Results, results...)
		if t.stop != nil {
			if serr := t.stop(); serr != nil {
				log.Warn("stop server", "target", t.name(), "error", serr)
			}
		}
		if err != nil {
			printTable(stdout, rep, o.baseline)
			return fmt.Errorf("%s: %w", t.name(), err)
		}
	}
	printTable(stdout, rep, o.baseline)
	if o.jsonOut != "" {
		if err := writeJSON(o.jsonOut, rep); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "imbench: results written to %s\n", o.jsonOut)
	}
	return nil
}

// target starts (or names) the server of one kind.
func (o options) target(ctx context.Context, kind string, log *slog.Logger) (*target, error) {
	if kind != kindIM || o.server == "child" || o.server == "inproc" {
		mode := o.server
		if mode != "inproc" {
			mode = "child"
		}
		p := childOptions{CPU: o.baselineCPUProfile, Env: o.baselineEnv, Sizes: o.baselineSizes}
		if kind == kindIM {
			p = childOptions{CPU: o.cpuProfile, Mem: o.memProfile, Addr: o.pprofAddr, Env: o.serverEnv, Sizes: o.serverSizes}
		}
		return startServer(ctx, kind, mode, o.db, p, log)
	}
	u, err := url.Parse(o.server)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("--server %q: want child, inproc or an http(s) URL", o.server)
	}
	mqttAddr := o.mqttAddr
	if mqttAddr == "" {
		mqttAddr = net.JoinHostPort(u.Hostname(), "1883")
	}
	if !isLoopback(mqttAddr) || !isLoopback(u.Host) {
		log.Warn("the target is not on this machine's loopback: you asked for it", "server", o.server, "mqtt", mqttAddr)
	}
	return &target{Kind: kindIM, Engine: "external", HTTP: strings.TrimRight(o.server, "/"), MQTT: mqttAddr, PID: o.pid,
		AdminUser: o.adminUser, AdminPassword: o.adminPassword, stop: func() error { return nil }}, nil
}

func runWorkloads(ctx context.Context, o options, t *target, prog *progress, log *slog.Logger, stderr io.Writer) ([]result, error) {
	b := newBench(o.s, t, prog, log)
	var out []result
	for _, w := range strings.Split(strings.ToLower(o.workloads), ",") {
		var (
			rs  []result
			err error
		)
		switch strings.TrimSpace(w) {
		case "w1":
			rs, err = b.w1(ctx)
		case "w2":
			rs, err = b.w2(ctx)
		case "w3":
			rs, err = b.w3(ctx)
		case "w4":
			rs, err = b.w4(ctx)
		}
		var skip errSkip
		if errors.As(err, &skip) {
			out = append(out, result{Workload: strings.ToUpper(strings.TrimSpace(w)), Target: t.name(), Phase: "max", Skipped: skip.why})
			fmt.Fprintf(stderr, "imbench: %s on %s skipped: %s\n", strings.ToUpper(w), t.name(), skip.why)
			continue
		}
		out = append(out, rs...)
		if err != nil {
			return out, fmt.Errorf("%s: %w", strings.ToUpper(w), err)
		}
	}
	relateW4(out)
	return out, nil
}

// relateW4 puts customer service next to single chat: W4's routed msgs/s
// as a fraction of W1's closed-loop accepted msgs/s on the same target.
func relateW4(rs []result) {
	var w1 float64
	for _, r := range rs {
		if r.Workload == "W1" && r.Phase == "max" && r.Skipped == "" {
			w1 = r.Metrics["accepted_per_s"]
		}
	}
	for _, r := range rs {
		if r.Workload == "W4" && r.Phase == "max" && r.Skipped == "" && w1 > 0 {
			r.Metrics["w1_ratio"] = r.Metrics["routed_per_s"] / w1
		}
	}
}

// envFlag appends NAME=VALUE flags to env.
func envFlag(env *[]string) func(string) error {
	return func(v string) error {
		if name, _, ok := strings.Cut(v, "="); !ok || name == "" {
			return fmt.Errorf("want NAME=VALUE, got %q", v)
		}
		*env = append(*env, v)
		return nil
	}
}

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
