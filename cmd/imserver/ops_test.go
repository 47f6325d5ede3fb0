package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// server is run() serving in the background.
type server struct {
	httpAddr string
	logs     *syncWriter
	stop     func() error
}

// serve runs the server with args (plus loopback addresses) and the
// environment m, and waits until it is healthy.
func serve(t *testing.T, db string, m map[string]string, args ...string) *server {
	t.Helper()
	s := &server{httpAddr: freeAddr(t), logs: &syncWriter{w: new(bytes.Buffer)}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"--http", s.httpAddr, "--mqtt", "", "--db", db}, args...), env(m), io.Discard, s.logs)
	}()
	s.stop = func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("no stop within 30 s")
			return nil
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if resp, err := http.Get("http://" + s.httpAddr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		select {
		case err := <-done:
			t.Fatalf("the server stopped: %v\n%s", err, s.logs)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("not healthy:\n%s", s.logs)
		}
	}
}

func (s *server) login(t *testing.T, user, pw string) int {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"username": user, "password": pw})
	resp, err := http.Post("http://"+s.httpAddr+"/api/v1/auth/login", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestHealthcheck(t *testing.T) {
	s := serve(t, "sqlite:"+filepath.Join(t.TempDir(), "im.db"), nil)
	defer s.stop()
	_, port, _ := net.SplitHostPort(s.httpAddr)
	var out bytes.Buffer
	// The address the server was given, flag or environment, an
	// unspecified host meaning this machine.
	for _, tc := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"--http", s.httpAddr}, nil},
		{nil, map[string]string{"IM_HTTP_ADDR": ":" + port}},
		{nil, map[string]string{"IM_HTTP_ADDR": "0.0.0.0:" + port}},
	} {
		out.Reset()
		if err := run(context.Background(), append([]string{"healthcheck"}, tc.args...), env(tc.env), &out, io.Discard); err != nil || strings.TrimSpace(out.String()) != "ok" {
			t.Fatalf("healthcheck %v %v: %v %q", tc.args, tc.env, err, out.String())
		}
	}
	if err := run(context.Background(), []string{"healthcheck", "--http", freeAddr(t)}, env(nil), io.Discard, io.Discard); err == nil {
		t.Fatal("healthcheck of a closed port succeeded")
	}
}

var generatedPassword = regexp.MustCompile(`password=(\S+)`)

// The generated admin password can be lost (a start whose log nobody
// kept): reset-password sets a new one, generated and printed, or the
// one in IM_ADMIN_PASSWORD.
func TestAdminResetPassword(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "im.db")
	s := serve(t, db, nil)
	if !strings.Contains(s.logs.String(), "imserver admin reset-password") {
		t.Fatalf("the generated-password line does not say how to reset it:\n%s", s.logs)
	}
	b, _ := json.Marshal(map[string]string{"username": "bob_user", "password": "password1"})
	if resp, err := http.Post("http://"+s.httpAddr+"/api/v1/auth/register", "application/json", bytes.NewReader(b)); err != nil || resp.StatusCode != 201 {
		t.Fatalf("register: %v %v", resp, err)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := run(context.Background(), []string{"admin", "reset-password", "--db", db}, env(nil), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`new password for admin: (\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no new password printed: %q", out.String())
	}
	s = serve(t, db, nil)
	if got := s.login(t, "admin", m[1]); got != 200 {
		t.Fatalf("login with the new password: %d", got)
	}
	s.stop()

	out.Reset()
	if err := run(context.Background(), []string{"admin", "reset-password"}, env(map[string]string{"IM_DATABASE_URL": db, "IM_ADMIN_PASSWORD": "chosen-one"}), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "chosen-one") {
		t.Fatalf("the chosen password was printed: %q", out.String())
	}
	s = serve(t, db, map[string]string{"IM_ADMIN_PASSWORD": "chosen-one"})
	defer s.stop()
	if got := s.login(t, "admin", "chosen-one"); got != 200 {
		t.Fatalf("login with IM_ADMIN_PASSWORD's password: %d", got)
	}
	if strings.Contains(s.logs.String(), "is not the admin account's password") {
		t.Fatalf("warned although IM_ADMIN_PASSWORD matches:\n%s", s.logs)
	}

	for _, args := range [][]string{
		{"admin", "reset-password", "--db", db, "--username", "nobody"},
		{"admin", "reset-password", "--db", db, "--username", "bob_user"},
		{"admin", "reset-password", "--db", db, "extra"},
		{"admin", "other"},
	} {
		if err := run(context.Background(), args, env(nil), io.Discard, io.Discard); err == nil {
			t.Errorf("%v succeeded", args)
		}
	}
	if err := run(context.Background(), []string{"admin", "reset-password", "--db", db}, env(map[string]string{"IM_ADMIN_PASSWORD": "short"}), io.Discard, io.Discard); err == nil {
		t.Error("a 5-character password was set")
	}
}

// A start with IM_ADMIN_PASSWORD that is not the account's password says
// that the variable only matters when the account is created.
func TestAdminPasswordMismatchWarns(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "im.db")
	serve(t, db, map[string]string{"IM_ADMIN_PASSWORD": "first-password"}).stop()
	s := serve(t, db, map[string]string{"IM_ADMIN_PASSWORD": "second-password"})
	defer s.stop()
	if !strings.Contains(s.logs.String(), "IM_ADMIN_PASSWORD is not the admin account's password") ||
		!strings.Contains(s.logs.String(), "imserver admin reset-password") {
		t.Fatalf("no warning:\n%s", s.logs)
	}
}

// If the HTTP port is taken, the start fails before the admin account is
// created, so no generated password is printed and then lost; the next
// start creates it and prints it.
func TestPortInUseCreatesNoAdmin(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	db := "sqlite:" + filepath.Join(t.TempDir(), "im.db")
	var logs bytes.Buffer
	err = run(context.Background(), []string{"--http", taken.Addr().String(), "--mqtt", "", "--db", db}, env(nil), io.Discard, &logs)
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("start on a taken port: %v", err)
	}
	if strings.Contains(logs.String(), "password") {
		t.Fatalf("a failed start logged a password:\n%s", logs.String())
	}
	s := serve(t, db, nil)
	defer s.stop()
	m := generatedPassword.FindStringSubmatch(s.logs.String())
	if m == nil {
		t.Fatalf("the next start did not create the admin:\n%s", s.logs)
	}
	if got := s.login(t, "admin", m[1]); got != 200 {
		t.Fatalf("login with the generated password: %d", got)
	}
}

// The start log names the database and the data directory as absolute
// paths.
func TestStartLogNamesAbsolutePaths(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	s := serve(t, "sqlite:data/im.db", nil)
	defer s.stop()
	abs, _ := filepath.EvalSymlinks(dir)
	logs := s.logs.String()
	if !strings.Contains(logs, "database=sqlite:"+filepath.Join(abs, "data", "im.db")) && !strings.Contains(logs, "database=sqlite:"+filepath.Join(dir, "data", "im.db")) {
		t.Fatalf("the database is not named by its absolute path:\n%s", logs)
	}
	if !strings.Contains(logs, "data_dir="+filepath.Join(dir, "data")) && !strings.Contains(logs, "data_dir="+filepath.Join(abs, "data")) {
		t.Fatalf("the data directory is not named by its absolute path:\n%s", logs)
	}
}
