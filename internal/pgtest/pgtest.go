// Package pgtest gives tests a real PostgreSQL database. It uses the server
// named by IM_TEST_POSTGRES_URL when set; otherwise it starts a throwaway
// cluster (initdb and pg_ctl on a temporary directory, a free loopback
// port) once per test binary and stops it when the binary's tests end. Each
// test gets its own schema, dropped when the test ends.
//
// A package using it runs its tests through Main:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
package pgtest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"

	_ "github.com/lib/pq" // registers "postgres"
)

// EnvURL names the variable that points the tests at an existing server.
const EnvURL = "IM_TEST_POSTGRES_URL"

var (
	once     sync.Once
	baseURL  string
	setupErr error
	cluster  *throwaway
)

// Main runs the package's tests and stops the throwaway cluster, if one was
// started, before the process exits.
func Main(m *testing.M) {
	code := m.Run()
	if cluster != nil {
		cluster.stop()
	}
	os.Exit(code)
}

// URL returns the URL of a fresh, empty schema for t on a PostgreSQL
// server. Without a server and without PostgreSQL binaries, it fails the
// test under CI (CI set) and skips it, loudly, elsewhere.
func URL(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		if u := os.Getenv(EnvURL); u != "" {
			baseURL = u
			return
		}
		cluster, setupErr = start()
		if setupErr == nil {
			baseURL = cluster.url
		}
	})
	if setupErr != nil {
		msg := fmt.Sprintf("PostgreSQL is not available: %v\n"+
			"Install PostgreSQL (Debian: apt-get install -y postgresql) so initdb and pg_ctl are found, "+
			"or point %s at a server.", setupErr, EnvURL)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPING POSTGRESQL TESTS: " + msg)
	}
	db, err := sql.Open("postgres", baseURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer db.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := db.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("pgtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("postgres", baseURL)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
	})
	u, err := url.Parse(baseURL)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", EnvURL, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

type throwaway struct {
	dir   string
	pgCtl string
	url   string
	cred  *syscall.Credential
}

// start initialises and starts a cluster. As root (initdb refuses root) it
// runs the server as the postgres user.
func start() (*throwaway, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "imserver-pg-")
	if err != nil {
		return nil, err
	}
	c := &throwaway{dir: dir, pgCtl: filepath.Join(bin, "pg_ctl")}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs a postgres user to run the server as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := c.run(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"); err != nil {
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=64MB", port, dir)
	if out, err := c.run(c.pgCtl, "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		return nil, fmt.Errorf("pg_ctl start: %v: %s\n%s", err, out, log)
	}
	c.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	return c, nil
}

func (c *throwaway) run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = c.dir
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd.CombinedOutput()
}

func (c *throwaway) stop() {
	_, _ = c.run(c.pgCtl, "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "-w", "-t", "30", "stop")
	_ = os.RemoveAll(c.dir)
}

// findBin finds the directory of initdb and pg_ctl: on PATH, or in
// Debian's /usr/lib/postgresql/<version>/bin.
func findBin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("pg_ctl"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	return "", fmt.Errorf("initdb not found on PATH nor in /usr/lib/postgresql/*/bin")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
