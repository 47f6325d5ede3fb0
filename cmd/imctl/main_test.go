package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/wire"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// user is an imctl user with its own config file.
type user struct {
	t      *testing.T
	server *imtest.Server
	cfg    string
}

func newUser(t *testing.T, s *imtest.Server) *user {
	return &user{t: t, server: s, cfg: filepath.Join(t.TempDir(), "imctl", "config.json")}
}

// run runs imctl with args and returns stdout, failing the test on error.
func (u *user) run(stdin string, args ...string) string {
	u.t.Helper()
	out, err := u.try(context.Background(), stdin, args...)
	if err != nil {
		u.t.Fatalf("imctl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (u *user) try(ctx context.Context, stdin string, args ...string) (string, error) {
	var stdout, stderr syncBuffer
	err := run(ctx, append([]string{"--server", u.server.URL}, args...), u.env(stdin, &stdout, &stderr))
	return stdout.String(), err
}

func (u *user) env(stdin string, stdout, stderr *syncBuffer) env {
	return env{
		getenv: func(k string) string {
			if k == "IMCTL_CONFIG" {
				return u.cfg
			}
			return ""
		},
		stdin: strings.NewReader(stdin), stdout: stdout, stderr: stderr,
	}
}

func TestIMCtl(t *testing.T) {
	s := imtest.Start(t, imtest.Options{})
	alice, bob := newUser(t, s), newUser(t, s)

	out := alice.run("", "register", "alice", "--password", "secret1")
	if !strings.Contains(out, "registered alice") || !strings.Contains(out, "logged in as alice") {
		t.Fatalf("register said %q", out)
	}
	info, err := os.Stat(alice.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("config mode %v, want 0600", info.Mode().Perm())
	}
	var acc wire.Account
	if err := json.Unmarshal([]byte(bob.run("secret2\n", "--json", "register", "bob")), &acc); err != nil || acc.UID == 0 {
		t.Fatalf("register --json: %v %+v", err, acc)
	}
	// The server is remembered: no --server needed any more.
	var stdout, stderr syncBuffer
	if err := run(context.Background(), []string{"whoami"}, bob.env("", &stdout, &stderr)); err != nil || !strings.Contains(stdout.String(), "bob (uid") {
		t.Fatalf("whoami: %v %q", err, stdout.String())
	}

	// Bob listens; alice writes to him by uid.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var lout, lerr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--json", "listen", "--count", "2"}, bob.env("", &lout, &lerr))
	}()
	imtest.WaitFor(t, 10*time.Second, func() error {
		if !strings.Contains(lerr.String(), "listening as bob") {
			return fmt.Errorf("listen has not started: %q", lerr.String())
		}
		return nil
	})
	uid := fmt.Sprint(acc.UID)
	if out := alice.run("", "send", uid, "hello", "bob"); !strings.Contains(out, "sent u:") {
		t.Fatalf("send said %q", out)
	}
	alice.run("", "send", uid, "--cid", "c-2", "second")
	if err := <-done; err != nil {
		t.Fatalf("listen: %v (%s)", err, lerr.String())
	}
	var got []wire.Envelope
	for _, line := range strings.Split(strings.TrimSpace(lout.String()), "\n") {
		var e wire.Envelope
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("listen printed %q: %v", line, err)
		}
		got = append(got, e)
	}
	if len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 2 || got[1].CID != "c-2" {
		t.Fatalf("listen got %+v", got)
	}

	// A message sent while nobody listens is shown by the next listen.
	alice.run("", "send", uid, "while you were away")
	lout, lerr = syncBuffer{}, syncBuffer{}
	if err := run(ctx, []string{"listen", "--count", "1"}, bob.env("", &lout, &lerr)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(lout.String(), "#3 uid ") || !strings.Contains(lout.String(), ": while you were away") {
		t.Fatalf("second listen printed %q", lout.String())
	}

	if out := bob.run("", "history", "--limit", "2", fmt.Sprint(alice.uid(t))); !strings.Contains(out, "#2 uid") || !strings.Contains(out, "#3 uid") || strings.Contains(out, "#1 ") {
		t.Fatalf("history printed %q", out)
	}
	if out := bob.run("", "conversations"); !strings.Contains(out, "unread 3") {
		t.Fatalf("conversations printed %q", out)
	}
	if out := bob.run("", "read", fmt.Sprint(alice.uid(t)), "3"); !strings.Contains(out, "read up to #3, 0 unread") {
		t.Fatalf("read printed %q", out)
	}
	if _, err := alice.try(ctx, "", "send", "999999", "anyone?"); err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Fatalf("send to nobody: %v", err)
	}
	if _, err := alice.try(ctx, "", "broadcast", "hi all"); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("broadcast by a user: %v", err)
	}
	admin := newUser(t, s)
	admin.run("", "login", "admin", "--password", imtest.AdminPassword)
	if out := admin.run("", "broadcast", "maintenance", "at", "22:00"); !strings.Contains(out, "broadcast sent") {
		t.Fatalf("broadcast printed %q", out)
	}
	alice.run("", "logout")
	if _, err := alice.try(ctx, "", "whoami"); err == nil || !strings.Contains(err.Error(), "not logged in") {
		t.Fatalf("whoami after logout: %v", err)
	}
}

// uid reads the logged-in uid from the user's config.
func (u *user) uid(t *testing.T) int64 {
	c, err := loadConfig(u.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c.UID
}

// Every shop subcommand, as an admin, an agent and a customer run them.
func TestIMCtlShop(t *testing.T) {
	s := imtest.Start(t, imtest.Options{})
	admin, agent, cust := newUser(t, s), newUser(t, s), newUser(t, s)
	admin.run("", "login", "admin", "--password", imtest.AdminPassword)
	agent.run("", "register", "agent", "--password", "secret1")
	cust.run("", "register", "cust", "--password", "secret2")
	agentUID := s.Login(t, "agent", "secret1").UID
	custUID := s.Login(t, "cust", "secret2").UID

	if out := admin.run("", "shop", "create", "--welcome", "hello!", "Tea", "Shop"); !strings.Contains(out, `created shop:1 "Tea Shop"`) {
		t.Fatalf("create: %q", out)
	}
	if out := admin.run("", "shop", "list"); !strings.Contains(out, "shop:1") || !strings.Contains(out, "Tea Shop") {
		t.Fatalf("list: %q", out)
	}
	if out := admin.run("", "shop", "show", "1"); !strings.Contains(out, `"welcome_message":"hello!"`) {
		t.Fatalf("show: %q", out)
	}
	if out := admin.run("", "shop", "add-agent", "1", fmt.Sprint(agentUID)); !strings.Contains(out, "add-agent") {
		t.Fatalf("add-agent: %q", out)
	}
	if out := admin.run("", "shop", "agents", "1"); !strings.Contains(out, "agent") || !strings.Contains(out, "open sessions 0") {
		t.Fatalf("agents: %q", out)
	}
	cust.run("", "shop", "send", "1", "where", "is", "my", "tea?")
	if out := agent.run("", "shop", "sessions", "--status", "queued", "1"); !strings.Contains(out, fmt.Sprintf("customer uid %-6d agent uid -", custUID)) {
		t.Fatalf("sessions: %q", out) // nobody listens: queued
	}
	agent.run("", "shop", "reply", "1", fmt.Sprint(custUID), "on", "its", "way")
	if out := agent.run("", "--json", "shop", "sessions", "1"); !strings.Contains(out, fmt.Sprintf(`"agent":%d`, agentUID)) {
		t.Fatalf("the reply did not take the session: %q", out)
	}
	if _, err := agent.try(context.Background(), "", "shop", "transfer", "1", fmt.Sprint(custUID)); err == nil {
		t.Fatal("transfer to a customer accepted")
	}
	if out := agent.run("", "shop", "close", "1"); !strings.Contains(out, "session 1 closed") {
		t.Fatalf("close: %q", out)
	}
	if out := admin.run("", "shop", "remove-agent", "1", fmt.Sprint(agentUID)); !strings.Contains(out, "remove-agent") {
		t.Fatalf("remove-agent: %q", out)
	}
	for _, args := range [][]string{{"shop", "fly"}, {"shop", "show"}, {"shop", "show", "x"}, {"shop", "reply", "1", "2"}} {
		if _, err := admin.try(context.Background(), "", args...); err == nil {
			t.Errorf("imctl %v accepted", args)
		}
	}
}
