package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The hostile-client tests run the real binary as a child process, as an
// operator would, so that descriptor limits and memory are the process's
// own. IM_TEST_BINARY runs them against another build (for example one
// from before a fix, to measure the difference the same way).

var (
	buildOnce sync.Once
	builtPath string
	buildErr  error
)

// imserverBinary returns the binary to test: IM_TEST_BINARY, or
// cmd/imserver built once per test run.
func imserverBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("IM_TEST_BINARY"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		// One place per user, rebuilt (incrementally) by every run and
		// replaced atomically, so runs leave no copies behind.
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("imserver-e2e-%d", os.Getuid()))
		if buildErr = os.MkdirAll(dir, 0o700); buildErr != nil {
			return
		}
		goTool, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("the go command is needed to build the server: %w", err)
			return
		}
		tmp, err := os.CreateTemp(dir, "imserver-*")
		if err != nil {
			buildErr = err
			return
		}
		tmp.Close()
		out, err := exec.Command(goTool, "build", "-o", tmp.Name(), "github.com/imserver/imserver/cmd/imserver").CombinedOutput()
		if err != nil {
			os.Remove(tmp.Name())
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		builtPath = filepath.Join(dir, "imserver")
		buildErr = os.Rename(tmp.Name(), builtPath)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtPath
}

// child is the server running as a child process.
type child struct {
	cmd      *exec.Cmd
	HTTPAddr string // 127.0.0.1:port
	MQTTAddr string
	URL      string
	LogPath  string
}

// childOptions adjust a child server.
type childOptions struct {
	NoFile int      // descriptor limit (soft and hard); 0 leaves it
	Args   []string // more flags
	Env    []string // more environment
}

// startChild runs the server on 127.0.0.1 with SQLite in a temporary
// directory and waits until /healthz answers.
func startChild(t *testing.T, o childOptions) *child {
	t.Helper()
	dir := t.TempDir()
	c := &child{HTTPAddr: freePort(t), MQTTAddr: freePort(t), LogPath: filepath.Join(dir, "server.log")}
	c.URL = "http://" + c.HTTPAddr
	args := append([]string{"--http", c.HTTPAddr, "--mqtt", c.MQTTAddr, "--db", "sqlite:" + filepath.Join(dir, "data", "im.db")}, o.Args...)
	bin := imserverBinary(t)
	if o.NoFile > 0 {
		// The shell sets soft and hard limits, so the Go runtime cannot
		// raise its soft limit back up.
		args = append([]string{"-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, o.NoFile), bin}, args...)
		bin = "/bin/sh"
	}
	c.cmd = exec.Command(bin, args...)
	c.cmd.Env = append(os.Environ(), "IM_JWT_SECRET="+strings.Repeat("s", 32), "IM_ADMIN_PASSWORD=admin-secret", "IM_LOG_LEVEL=info")
	c.cmd.Env = append(c.cmd.Env, o.Env...)
	logf, err := os.Create(c.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = c.cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(c.LogPath)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("server log (end):\n%s", b)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(c.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(c.LogPath)
			t.Fatalf("the server exited: %v\n%s", err, b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not become healthy: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if o.NoFile > 0 {
		if lim := c.limit(t, "Max open files"); lim != strconv.Itoa(o.NoFile) {
			t.Fatalf("the child's descriptor limit is %s, want %d", lim, o.NoFile)
		}
	}
	return c
}

// limit returns the soft limit named in /proc/PID/limits.
func (c *child) limit(t *testing.T, name string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", c.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, name); ok {
			return strings.Fields(rest)[0]
		}
	}
	return ""
}

// RSS returns the child's resident set size in bytes; peak, its largest.
func (c *child) RSS(t *testing.T) (rss, peak int64) {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return rss, peak
}

// LogSize returns the size of the child's log so far.
func (c *child) LogSize(t *testing.T) int64 {
	fi, err := os.Stat(c.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// dialFrom opens a TCP connection from the loopback address ip.
func dialFrom(ip, addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: timeout}
	return d.Dial("tcp", addr)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
