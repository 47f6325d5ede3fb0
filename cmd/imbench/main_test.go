package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs every workload with tiny sizes against the real server
// and the bare-broker baseline, both in this process, so that the tool
// cannot rot. It checks that work was done, not how fast.
func TestSmoke(t *testing.T) {
	out := filepath.Join(t.TempDir(), "results.json")
	var stdout bytes.Buffer
	stderr := &lockedWriter{w: new(bytes.Buffer)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := run(ctx, []string{
		"-server", "inproc", "-baseline", "mochi", "-json", out,
		"-duration", "300ms", "-warmup", "100ms", "-users", "3", "-sweep", "0.5",
		"-members", "3", "-conns", "12", "-conn-users", "3", "-conn-parallel", "4",
		"-customers", "2", "-agents", "1", "-timeout", "90s",
	}, &stdout, stderr)
	if err != nil {
		stderr.mu.Lock()
		defer stderr.mu.Unlock()
		t.Fatalf("imbench: %v\n%s\n%s", err, stdout.String(), stderr.w.(*bytes.Buffer).String())
	}
	for _, want := range []string{"accepted msgs/s", "p99 ms", "connects/s", "RSS/conn KiB", "of W1 closed loop"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the table has no %q:\n%s", want, stdout.String())
		}
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range rep.Results {
		seen[r.Workload+" "+r.Target+" "+r.Phase] = true
		if r.Skipped != "" {
			continue
		}
		switch r.Workload {
		case "W1", "W2", "W4":
			if r.Metrics["acked"] == 0 || r.Metrics["lost"] != 0 || r.Metrics["refused"] != 0 {
				t.Errorf("%s on %s (%s): %v", r.Workload, r.Target, r.Phase, r.Metrics)
			}
		case "W3":
			if r.Metrics["connects_per_s"] <= 0 {
				t.Errorf("W3 on %s: %v", r.Target, r.Metrics)
			}
		}
	}
	for _, want := range []string{"W1 imserver/sqlite max", "W1 imserver/sqlite 50%", "W1 imserver/sqlite pipelined", "W1 mochi max", "W1 mochi pipelined", "W3 imserver/sqlite 12", "W3 mochi 12", "W2 mochi max", "W4 mochi max", "W4 imserver/sqlite replies", "W4 mochi replies"} {
		if !seen[want] {
			t.Errorf("no result for %s: %v", want, seen)
		}
	}
}

func TestPayloadAndParsing(t *testing.T) {
	p := payload(1732330000000000000, "c-1", 128)
	if len(p) != 128 || !json.Valid(p) {
		t.Fatalf("payload %q (%d bytes)", p, len(p))
	}
	if got := intAfter(p, bodyField); got != 1732330000000000000 {
		t.Fatalf("timestamp %d", got)
	}
	env := []byte(`{"id":"x","conv":"u:1:2","seq":5,"from":12,"to":2,"type":"text","body":"17|xx","ts":1}`)
	if intAfter(env, fromField) != 12 || intAfter(env, bodyField) != 17 {
		t.Fatal("envelope fields")
	}
	if intAfter([]byte(`{"a":1}`), fromField) != -1 {
		t.Fatal("missing field")
	}
}

func TestSourceAddr(t *testing.T) {
	if a := sourceAddr(0).IP.String(); a != "127.0.0.2" {
		t.Fatal(a)
	}
	if a := sourceAddr(perSourceAddr).IP.String(); a != "127.0.0.3" {
		t.Fatal(a)
	}
	if a := sourceAddr(300 * perSourceAddr).IP.String(); a != "127.0.1.46" {
		t.Fatal(a)
	}
	if !isLoopback("127.0.0.1:1883") || isLoopback("10.0.0.1:1883") {
		t.Fatal("isLoopback")
	}
}

func TestFlags(t *testing.T) {
	getenv := func(string) string { return "" }
	o, err := parseFlags([]string{"-server-env", "GOGC=50", "-server-env", "GOMEMLIMIT=900MiB", "-baseline-env", "GOGC=50",
		"-sub-qos", "0", "-server-pending-writes", "128", "-baseline-read-buffer", "1024"}, getenv, new(bytes.Buffer))
	if err != nil {
		t.Fatal(err)
	}
	if len(o.serverEnv) != 2 || o.serverEnv[1] != "GOMEMLIMIT=900MiB" || len(o.baselineEnv) != 1 {
		t.Errorf("env: %q, %q", o.serverEnv, o.baselineEnv)
	}
	if o.s.SubQoS != 0 || o.serverSizes.PendingWrites != 128 || o.baselineSizes.ReadBuffer != 1024 {
		t.Errorf("parsed %+v, %+v, %+v", o.s, o.serverSizes, o.baselineSizes)
	}
	if o, _ := parseFlags(nil, getenv, new(bytes.Buffer)); o.s.SubQoS != 1 {
		t.Errorf("default -sub-qos %d, want 1", o.s.SubQoS)
	}
	for _, bad := range [][]string{{"-server-env", "GOGC"}, {"-sub-qos", "3"}} {
		if _, err := parseFlags(bad, getenv, new(bytes.Buffer)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
