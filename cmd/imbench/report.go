package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// result is one measured phase of one workload against one target.
type result struct {
	Workload string             `json:"workload"` // W1, W2, W3, W4
	Target   string             `json:"target"`   // imserver/sqlite, mochi, …
	Phase    string             `json:"phase"`    // "max", or the offered rate
	Offered  float64            `json:"offered_rate,omitempty"`
	Metrics  map[string]float64 `json:"metrics"`
	Skipped  string             `json:"skipped,omitempty"`
	Note     string             `json:"note,omitempty"`
}

// report is everything a run measured.
type report struct {
	Started time.Time         `json:"started"`
	Machine map[string]string `json:"machine"`
	Args    []string          `json:"args"`
	Targets []*target         `json:"targets"`
	Results []result          `json:"results"`
}

func machineInfo() map[string]string {
	m := map[string]string{
		"go":    runtime.Version(),
		"os":    runtime.GOOS + "/" + runtime.GOARCH,
		"cpus":  fmt.Sprint(runtime.NumCPU()),
		"model": "",
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["model"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				m["memory"] = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// Metric names, with their units in the table.
var metricOrder = []struct{ key, label string }{
	{"accepted_per_s", "accepted msgs/s"},
	{"delivered_per_s", "delivered msgs/s"},
	{"deliveries_per_s", "deliveries/s"},
	{"routed_per_s", "routed msgs/s"},
	{"p50_ms", "p50 ms"},
	{"p90_ms", "p90 ms"},
	{"p99_ms", "p99 ms"},
	{"connects_per_s", "connects/s"},
	{"rss_per_conn_kib", "RSS/conn KiB"},
	{"rss_mib", "RSS MiB"},
	{"rss_base_mib", "RSS before MiB"},
	{"rss_50k_mib", "RSS at 50k (extrap.) MiB"},
	{"rss_peak_mib", "peak RSS MiB"},
	{"stack_per_conn_kib", "stacks/conn KiB"},
	{"heap_per_conn_kib", "heap in use/conn KiB"},
	{"live_heap_per_conn_kib", "live heap/conn KiB"},
	{"goroutines_per_conn", "goroutines/conn"},
	{"cpu_per_msg_us", "server CPU µs/msg"},
	{"writes_per_msg", "server writes/msg"},
	{"w1_ratio", "of W1 closed loop"},
	{"sessions_min", "open sessions min"},
	{"sessions_max", "open sessions max"},
	{"refused", "refused"},
	{"lost", "lost"},
}

// printTable writes the results, each imserver figure next to the
// baseline's of the same workload and phase, with their ratio.
func printTable(w io.Writer, rep *report, baseline string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "workload\tphase\tmetric\ttarget\tvalue\t%s\tratio\t\n", orDash(baseline))
	for _, r := range rep.Results {
		if strings.HasPrefix(r.Target, kindIM) || baseline == "" {
			if r.Skipped != "" {
				fmt.Fprintf(tw, "%s\t%s\t-\t%s\tskipped\t\t\t\n", r.Workload, r.Phase, r.Target)
				continue
			}
			base := findBase(rep, r, baseline)
			for _, m := range metricOrder {
				v, ok := r.Metrics[m.key]
				if !ok {
					continue
				}
				bv, ratio := "", ""
				if base != nil {
					if b, ok := base.Metrics[m.key]; ok {
						bv = format(b)
						if b != 0 {
							ratio = fmt.Sprintf("%.2f", v/b)
						}
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Workload, r.Phase, m.label, r.Target, format(v), bv, ratio)
			}
		}
	}
	tw.Flush()
	for _, r := range rep.Results {
		if r.Note != "" {
			fmt.Fprintf(w, "note: %s %s: %s\n", r.Workload, r.Target, r.Note)
		}
		if r.Skipped != "" {
			fmt.Fprintf(w, "skipped: %s %s: %s\n", r.Workload, r.Target, r.Skipped)
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func findBase(rep *report, r result, baseline string) *result {
	if baseline == "" {
		return nil
	}
	for i := range rep.Results {
		b := &rep.Results[i]
		if b.Target == baseline && b.Workload == r.Workload && b.Phase == r.Phase && b.Skipped == "" {
			return b
		}
	}
	// Sweep phases are rates relative to each target's own maximum.
	return nil
}

func format(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func writeJSON(path string, rep *report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// latencies collects publish-to-receive latencies.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// percentiles returns p50, p90 and p99 in milliseconds.
func (l *latencies) percentiles() (p50, p90, p99 float64, n int) {
	l.mu.Lock()
	d := slices.Clone(l.d)
	l.mu.Unlock()
	if len(d) == 0 {
		return 0, 0, 0, 0
	}
	slices.Sort(d)
	at := func(p float64) float64 {
		i := int(p * float64(len(d)-1))
		return float64(d[i]) / float64(time.Millisecond)
	}
	return at(0.50), at(0.90), at(0.99), len(d)
}

// progress prints a live status line to stderr while a phase runs.
type progress struct {
	w                            io.Writer
	tty                          bool
	label                        atomic.Value // string
	start                        time.Time
	sent, acked, received, conns atomic.Int64
	stop                         chan struct{}
	done                         chan struct{}
}

func newProgress(w io.Writer) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, tty: tty}
}

// begin starts a phase's status line.
func (p *progress) begin(label string) {
	p.label.Store(label)
	p.start = time.Now()
	p.sent.Store(0)
	p.acked.Store(0)
	p.received.Store(0)
	p.conns.Store(0)
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.done)
		every := time.Second
		if !p.tty {
			every = 5 * time.Second
		}
		t := time.NewTicker(every)
		defer t.Stop()
		var lastRecv int64
		last := time.Now()
		for {
			select {
			case <-p.stop:
				if p.tty {
					fmt.Fprint(p.w, "\r\033[K")
				}
				return
			case now := <-t.C:
				recv := p.received.Load()
				rate := float64(recv-lastRecv) / now.Sub(last).Seconds()
				lastRecv, last = recv, now
				line := fmt.Sprintf("%s %5.1fs  conns %d  sent %d  acked %d  received %d (%.0f/s)",
					p.label.Load(), now.Sub(p.start).Seconds(), p.conns.Load(), p.sent.Load(), p.acked.Load(), recv, rate)
				if p.tty {
					fmt.Fprint(p.w, "\r\033[K"+line)
				} else {
					fmt.Fprintln(p.w, line)
				}
			}
		}
	}()
}

func (p *progress) end() {
	close(p.stop)
	<-p.done
}
