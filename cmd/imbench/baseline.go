package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// The baselines: the same publish/subscribe shapes against a bare broker
// in the same run, so that every figure of imserver comes with the
// ceiling the embedded broker sets on this machine. The bare mochi broker
// is started by serveMochi (server.go); mosquitto, when on PATH, by
// startMosquitto.

// startMosquitto runs mosquitto on a free 127.0.0.1 port, anonymous, with
// no persistence.
func startMosquitto(ctx context.Context, log *slog.Logger) (*target, error) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		return nil, fmt.Errorf("--baseline mosquitto: mosquitto is not on PATH (apt-get install mosquitto)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	l.Close()
	dir, err := os.MkdirTemp("", "imbench-mosquitto-")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "mosquitto.conf")
	body := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 1024\nmax_inflight_messages 1024\nlog_dest stderr\nlog_type error\n", port)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-c", conf)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start mosquitto: %w", err)
	}
	stop := func() error {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		return os.RemoveAll(dir)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = stop()
			return nil, fmt.Errorf("mosquitto did not listen on %s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	log.Debug("mosquitto started", "addr", addr, "pid", cmd.Process.Pid)
	return &target{MQTT: addr, PID: cmd.Process.Pid, stop: stop}, nil
}
